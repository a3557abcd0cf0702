import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { Rng } from '../../src/common/rng.js';
import { NetworkSpecSchema } from '../../src/spec/index.js';
import { buildNetwork, initBackend, trainNetwork, type ImageDataset, type SpecNetwork } from '../../src/nn/index.js';
import {
  ddeStage,
  layerOptions,
  loadParams,
  optionLabel,
  parseSearchSpace,
  pickFromFront,
  saveParams,
  SupernetStage,
  teacherSpec,
  type ParetoMember,
  type ScoredCandidate,
} from '../../src/search/index.js';

/**
 * Toy problem: 8x8 images with one bright bar, vertical (class 0) or horizontal (class 1), at a
 * random position, plus noise. Every pixel-wise operator (identity, 1x1 conv) followed by global
 * pooling sees the same statistics for both classes, so only a 3x3 conv can tell them apart.
 */
const space = parseSearchSpace({
  name: 'toy-bars',
  dataset: 'toy',
  input: [8, 8, 1],
  classes: 2,
  kernels: [1, 3],
  ops: ['identity', 'conv'],
  channels: [4],
  strides: [1],
  head: [{ op: 'pool', kind: 'max', size: 8 }, { op: 'dense', out: 2 }],
  provenance: 'test toy space',
});

function bars(count: number, seed: number): ImageDataset {
  const rng = new Rng(seed);
  const images = new Uint8Array(count * 64);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const label = rng.int(2);
    const at = 1 + rng.int(6);
    labels[i] = label;
    for (let p = 0; p < 64; p++) {
      const [y, x] = [Math.floor(p / 8), p % 8];
      const on = label === 0 ? x === at : y === at;
      images[i * 64 + p] = on ? 200 + rng.int(56) : rng.int(60);
    }
  }
  return { name: 'bars', images, labels, count, height: 8, width: 8, channels: 1, classes: 2 };
}

const quant = { weightBits: 4, activationBits: 8 };
const data = bars(768, 5);
let teacher: SpecNetwork;

before(async () => {
  await initBackend({ backend: 'wasm' });
  teacher = buildNetwork(teacherSpec(space), { seed: 3 });
  await trainNetwork(teacher, data, { epochs: 4, batchSize: 32, learningRate: 1e-2, seed: 1 });
});

describe('supernet stage (DDE-GSCST)', () => {
  it('builds the teacher with the widest channels and a strong operator at every searchable layer', () => {
    assert.deepEqual(teacher.spec.layers[0], { op: 'conv', kernel: 3, out: 4, stride: 1, padding: 'same' });
  });

  it('learns coefficients that prefer the operator that solves a toy problem', async () => {
    const { stage, result } = await ddeStage(teacher, space, 0, data, {
      imagesPerStage: 768 * 3,
      batchSize: 32,
      lambda: 1,
      learningRate: 1e-2,
      alphaLearningRate: 0.05,
      quant,
      seed: 2,
    });
    stage.dispose();
    const labels = layerOptions(space, 0).map(optionLabel);
    const p = Object.fromEntries(labels.map((l, i) => [l, result.significance[i] as number]));
    assert.deepEqual(labels, ['identity', 'conv1x1/4', 'conv3x3/4']);
    assert.ok(Math.abs(result.significance.reduce((a, b) => a + b, 0) - 1) < 1e-5);
    assert.ok((p['conv3x3/4'] ?? 0) > 0.5, `conv3x3 significance ${JSON.stringify(p)}`);
    assert.ok((p['conv3x3/4'] ?? 0) > 2 * Math.max(p['identity'] ?? 0, p['conv1x1/4'] ?? 0), JSON.stringify(p));
  });

  it('trains only its own stage: every teacher parameter is unchanged afterwards', async () => {
    const beforeValues = teacher.getParameterValues();
    const trainable = teacher.trainableVariables().map((v) => v.trainable);
    const { stage, result } = await ddeStage(teacher, space, 0, data, {
      imagesPerStage: 128,
      batchSize: 32,
      lambda: 1,
      learningRate: 1e-2,
      alphaLearningRate: 0.05,
      quant,
      seed: 4,
    });
    const after = teacher.getParameterValues();
    for (const [name, v] of beforeValues) assert.deepEqual(after.get(name), v, `teacher parameter ${name} changed`);
    assert.deepEqual(teacher.trainableVariables().map((v) => v.trainable), trainable, 'trainable flags restored');
    // The stage itself did train: alpha moved away from its zero initialisation.
    assert.ok(result.alpha.some((a) => Math.abs(a) > 1e-3));
    stage.dispose();
  });

  it('shares one weight tensor per (operator, kernel) across widths, exactly (channel masks)', () => {
    const wide = parseSearchSpace({ ...space, channels: [2, 4], kernels: [3], ops: ['conv'] });
    const stage = new SupernetStage({ space: wide, layer: 0, inShape: [8, 8, 1], quant: null, seed: 1 });
    const x = tf.tensor4d(Array.from({ length: 2 * 64 }, (_, i) => (i % 7) / 7), [2, 8, 8, 1]);
    const [narrow, full] = [stage.forwardPath(x, 0), stage.forwardPath(x, 1)];
    const n = narrow.arraySync() as number[][][][];
    const f = full.arraySync() as number[][][][];
    // Width 2 is width 4's first two channels, and zeros in the other two.
    for (const [b, row] of n.entries()) {
      for (const [y, cols] of row.entries()) {
        for (const [xx, ch] of cols.entries()) {
          assert.deepEqual(ch.slice(0, 2), f[b]?.[y]?.[xx]?.slice(0, 2));
          assert.deepEqual(ch.slice(2), [0, 0]);
        }
      }
    }
    // The mixture with all weight on one option is that option.
    const mixed = stage.forwardMixed(x, tf.tensor1d([0, 1]));
    assert.ok(tf.max(tf.abs(tf.sub(mixed, full))).dataSync()[0]! < 1e-6);
    tf.dispose([x, narrow, full, mixed]);
    stage.dispose();
  });
});

describe('supernet blocks (resblock, bottleneck)', () => {
  /** Slices [k, k, Cin, Cout] to the first `cin` input and `cout` output channels. */
  function slice(v: Float32Array, shape: readonly number[], cin: number, cout: number): Float32Array {
    const [k1, k2, ci, co] = shape as [number, number, number, number];
    const out = new Float32Array(k1 * k2 * cin * cout);
    let at = 0;
    for (let a = 0; a < k1 * k2; a++) for (let i = 0; i < cin; i++) for (let o = 0; o < cout; o++) out[at++] = v[(a * ci + i) * co + o] as number;
    return out;
  }

  for (const op of ['resblock', 'bottleneck'] as const) {
    it(`a single ${op} path is exactly the standalone ${op} with the shared tensors sliced to its width`, () => {
      const blocks = parseSearchSpace({ ...space, input: [6, 6, 3], kernels: [3], ops: ['identity', op], channels: [4, 8], strides: [2], bottleneckExpansion: 2 });
      const stage = new SupernetStage({ space: blocks, layer: 0, inShape: [6, 6, 3], quant: null, seed: 5 });
      const values = stage.getValues();
      const shapes = new Map(stage.parameters().map((p) => [p.name, p.variable.shape]));
      const x = tf.tensor4d(Array.from({ length: 2 * 108 }, (_, i) => ((i * 37) % 11) / 11), [2, 6, 6, 3]);
      const options = layerOptions(blocks, 0);
      for (const [index, o] of options.entries()) {
        if (o.op === 'identity') continue;
        const net = buildNetwork(
          NetworkSpecSchema.parse({ name: 'one', input: [6, 6, 3], classes: 2, layers: [o.op === 'bottleneck' ? { op, kernel: 3, out: o.out, stride: 2, expansion: 2 } : { op, kernel: 3, out: o.out, stride: 2 }, { op: 'gap' }, { op: 'dense', out: 2 }] }),
          { seed: 1 },
        );
        const mid = Math.ceil(o.out / 2);
        const roles: Array<[string, string, number, number]> =
          op === 'resblock'
            ? [['conv1', 'conv1', 3, o.out], ['conv2', 'conv2', o.out, o.out], ['projection', 'projection', 3, o.out]]
            : [['reduce', 'reduce', 3, mid], ['spatial', 'spatial', mid, mid], ['expand', 'expand', mid, o.out], ['projection', 'projection', 3, o.out]];
        const params = net.getParameterValues();
        for (const [role, stageRole, cin, cout] of roles) {
          const key = role === 'projection' ? 'stage[0].projection' : `stage[0].${op}3x3.${stageRole}`;
          const w = values.get(`${key}.weight`) as Float32Array;
          params.set(`layers[0].${role}.weight`, slice(w, shapes.get(`${key}.weight`) as number[], cin, cout));
          params.set(`layers[0].${role}.bias`, (values.get(`${key}.bias`) as Float32Array).slice(0, cout));
        }
        net.setParameterValues(params);
        const standalone = net.applyLayers(x, 0, 1);
        const path = stage.forwardPath(x, index);
        const s = standalone.arraySync() as number[][][][];
        const q = path.arraySync() as number[][][][];
        let maxDiff = 0;
        for (const [b, rows] of q.entries()) for (const [y, cols] of rows.entries()) for (const [xx, ch] of cols.entries()) {
          ch.forEach((v, c) => (maxDiff = Math.max(maxDiff, Math.abs(v - (c < o.out ? (s[b]?.[y]?.[xx]?.[c] as number) : 0)))));
        }
        assert.ok(maxDiff < 1e-5, `${optionLabel(o)}: max difference ${maxDiff}`);
        // A mixture with all weight on this option is this option.
        const onehot = tf.oneHot([index], options.length).reshape([options.length]).toFloat() as tf.Tensor1D;
        const mixed = stage.forwardMixed(x, onehot);
        assert.ok(tf.max(tf.abs(tf.sub(mixed, path))).dataSync()[0]! < 1e-5, `${optionLabel(o)}: one-hot mixture`);
        tf.dispose([standalone, path, onehot, mixed]);
        net.dispose();
      }
      x.dispose();
      stage.dispose();
    });
  }

  it('trains a quantised block stage: DDE coefficients move and steps stay positive', async () => {
    const blocks = parseSearchSpace({ ...space, kernels: [3], ops: ['identity', 'resblock', 'bottleneck'], channels: [4], bottleneckExpansion: 2 });
    const t = buildNetwork(teacherSpec(blocks), { seed: 3 });
    await trainNetwork(t, data, { epochs: 1, batchSize: 32, learningRate: 1e-2, seed: 1 });
    const { stage, result } = await ddeStage(t, blocks, 0, data, { imagesPerStage: 256, batchSize: 32, lambda: 1, learningRate: 1e-2, alphaLearningRate: 0.05, quant, seed: 4 });
    assert.ok(result.alpha.some((a) => Math.abs(a) > 1e-3), 'alpha moved');
    for (const p of stage.parameters()) if (p.kind === 'step') assert.ok(p.variable.dataSync().every((v) => v > 0 && Number.isFinite(v)), p.name);
    stage.dispose();
    t.dispose();
  });
});

describe('checkpoint files', () => {
  it('round-trips named arrays and reports a corrupt file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cimbench-ck-'));
    const arrays = new Map([
      ['a', Float32Array.of(1, 2, 3)],
      ['b', Float32Array.of(-0.5)],
    ]);
    saveParams(dir, 'x', arrays, { t: 7 });
    const back = loadParams(dir, 'x');
    assert.deepEqual([...back.arrays], [...arrays]);
    assert.equal(back.meta.t, 7);
    writeFileSync(join(dir, 'x.bin'), new Uint8Array(16));
    assert.throws(() => loadParams(dir, 'x'), /corrupt checkpoint/);
  });
});

describe('spos-nsga2 pick from the Pareto front', () => {
  const member = (accuracy: number, edp: number): ParetoMember => ({ indices: [], accuracy, candidate: { edpMsMj: edp } as ScoredCandidate });
  const front = [member(0.9, 10), member(0.85, 1), member(0.8, 0.5)];
  it('takes the most accurate for accuracy-only weights and the cheapest for EDP-only weights', () => {
    assert.equal(pickFromFront(front, { task: 1, hardware: 0 }).accuracy, 0.9);
    assert.equal(pickFromFront(front, { task: 0, hardware: 1 }).accuracy, 0.8);
    assert.equal(pickFromFront(front, { task: 0.5, hardware: 0.5 }).accuracy, 0.85);
  });
});
