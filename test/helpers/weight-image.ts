import { Rng } from '../../src/common/rng.js';
import type { WeightImage, WeightImageMatrix } from '../../src/nn/export.js';
import type { NetworkAnalysis } from '../../src/spec/index.js';

/**
 * A weight image with random levels for a network, without training (for mapping and protocol
 * tests). Bytes are not laid out: tests that need the binary file use src/nn's exporter.
 */
export function syntheticWeightImage(net: NetworkAnalysis, weightBits: number, activationBits: number, seed = 1): WeightImage {
  const rng = new Rng(seed);
  const qmax = 2 ** (weightBits - 1) - 1;
  const matrices: WeightImageMatrix[] = [];
  for (const layer of net.layers) {
    for (const m of layer.matrices) {
      const levels = new Int8Array(m.rows * m.outChannels);
      for (let i = 0; i < levels.length; i++) levels[i] = rng.int(2 * qmax + 1) - qmax;
      const scales = Float32Array.from({ length: m.outChannels }, () => 0.01 + 0.02 * rng.next());
      const bias = Float32Array.from({ length: m.outChannels }, () => 0.1 * rng.normal());
      matrices.push({
        info: {
          name: `layers[${layer.index}].${m.role}`,
          layer: layer.index,
          op: layer.op,
          role: m.role,
          kernel: m.kernel,
          stride: m.stride,
          padding: m.padding,
          inChannels: m.inChannels,
          rows: m.rows,
          cols: m.outChannels,
          levels: { offset: 0, count: levels.length, dtype: 'int8', min: -qmax, max: qmax },
          scales: { offset: 0, count: scales.length },
          bias: { offset: 0, count: bias.length },
          input: { name: `layers[${layer.index}].in`, step: 1 / (2 ** activationBits - 1), bits: activationBits, signed: false, qmin: 0, qmax: 2 ** activationBits - 1 },
        },
        levels,
        scales,
        bias,
      });
    }
  }
  return {
    index: {
      format: 'cimbench-weight-image',
      version: 1,
      network: net.spec.name,
      weightBits,
      activationBits,
      perChannel: true,
      byteLength: 0,
      sha256: '0'.repeat(64),
      layout: 'synthetic',
      matrices: matrices.map((m) => m.info),
    },
    bytes: new Uint8Array(0),
    matrices,
  };
}
