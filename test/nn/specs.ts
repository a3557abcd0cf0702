import type { NetworkSpecInput } from '../../src/spec/schema.js';

/** Every op of the spec schema, including strided/valid convs, projections and identity skips. */
export const ALL_OPS: NetworkSpecInput = {
  name: 'all-ops',
  input: [16, 16, 2],
  classes: 10,
  layers: [
    { op: 'conv', kernel: 3, out: 4 },
    { op: 'conv', kernel: 3, out: 4, stride: 2, padding: 'valid' }, // 7x7
    { op: 'residual', kernel: 3, out: 6 }, // projection: channels change
    { op: 'resblock', kernel: 3, out: 6, stride: 2 }, // 4x4, projection: stride
    { op: 'bottleneck', kernel: 3, out: 8, expansion: 2 }, // projection: channels change
    { op: 'residual', kernel: 1, out: 8, activation: 'relu6' }, // identity skip
    { op: 'identity' },
    { op: 'pool', kind: 'max', size: 2, stride: 1 }, // 3x3
    { op: 'pool', kind: 'avg', size: 2 }, // 1x1
    { op: 'dense', out: 12 },
    { op: 'dense', out: 10 },
  ],
};

export const WITH_GAP: NetworkSpecInput = {
  name: 'with-gap',
  input: [12, 12, 1],
  classes: 10,
  layers: [
    { op: 'conv', kernel: 5, out: 4, stride: 2 },
    { op: 'conv', kernel: 1, out: 6, activation: 'none' }, // signed input for the next layer
    { op: 'residual', kernel: 3, out: 6 },
    { op: 'gap' },
    { op: 'dense', out: 10 },
  ],
};
