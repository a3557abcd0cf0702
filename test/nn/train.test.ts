import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CimbenchError } from '../../src/common/errors.js';
import { loadFashionMnistSubset, takeDataset } from '../../src/nn/datasets.js';
import { SpecNetwork } from '../../src/nn/model.js';
import { DataParallelPool } from '../../src/nn/parallel.js';
import { augmentBatch, evaluate, gatherBatch, learningRateAt, shardGradients, trainNetwork } from '../../src/nn/train.js';
import { Rng } from '../../src/common/rng.js';
import type { BatchInfo, EpochInfo } from '../../src/nn/train.js';
import { NetworkSpecSchema } from '../../src/spec/schema.js';
import { maxAbs, maxAbsDiff, useBackend } from './helpers.js';

const fmSmall = NetworkSpecSchema.parse(JSON.parse(readFileSync(new URL('../../fixtures/networks/fm-small.json', import.meta.url), 'utf8')));
const quant = { weightBits: 4, activationBits: 8 };
const data = loadFashionMnistSubset();

test('learning-rate schedule: linear warm-up, then cosine from the base rate to 0', () => {
  assert.equal(learningRateAt(0, 100, 1, 'cosine', 10), 0.1);
  assert.equal(learningRateAt(9, 100, 1, 'cosine', 10), 1);
  assert.equal(learningRateAt(10, 100, 1, 'cosine', 10), 1);
  assert.ok(Math.abs(learningRateAt(55, 100, 1, 'cosine', 10) - 0.5) < 1e-12);
  assert.ok(learningRateAt(100, 100, 1, 'cosine', 10) < 1e-12);
  assert.equal(learningRateAt(50, 100, 0.3, 'constant', 0), 0.3);
});

test('same seed, same data: identical parameters; callbacks report every batch and epoch', async () => {
  await useBackend('wasm');
  const small = takeDataset(data.train, 192);
  const runs: Map<string, Float32Array>[] = [];
  let batches: BatchInfo[] = [];
  let epochs: EpochInfo[] = [];
  for (let r = 0; r < 2; r++) {
    batches = [];
    epochs = [];
    const net = new SpecNetwork(fmSmall, { quant, seed: 7 });
    const result = await trainNetwork(net, small, {
      epochs: 2,
      batchSize: 64,
      seed: 3,
      validation: takeDataset(data.test, 100),
      onBatchEnd: (b) => void batches.push(b),
      onEpochEnd: (e) => void epochs.push(e),
    });
    assert.equal(result.steps, 6);
    assert.equal(result.images, 384);
    runs.push(net.getParameterValues());
    net.dispose();
  }
  for (const [name, v] of runs[0]!) assert.deepEqual(runs[1]!.get(name), v, `${name} differs between identical runs`);
  assert.deepEqual(
    batches.map((b) => [b.epoch, b.batch, b.step]),
    [[0, 0, 1], [0, 1, 2], [0, 2, 3], [1, 0, 4], [1, 1, 5], [1, 2, 6]],
  );
  assert.equal(epochs.length, 2);
  assert.equal(epochs[1]!.validation!.count, 100);
  assert.ok(batches.every((b) => Number.isFinite(b.loss) && b.learningRate > 0));
});

test('quantisation-aware training learns: fm-small, 4-bit weights, 8-bit inputs, subset, 2 replicas', async (t) => {
  await useBackend('wasm');
  const net = new SpecNetwork(fmSmall, { quant, seed: 1 });
  const before = evaluate(net, data.test);
  await trainNetwork(net, data.train, { epochs: 3, batchSize: 64, learningRate: 4e-3, seed: 1, workers: 2 });
  const after = evaluate(net, data.test);
  t.diagnostic(`subset test accuracy ${before.accuracy} -> ${after.accuracy}`);
  assert.ok(before.accuracy < 0.3, `untrained accuracy ${before.accuracy}`);
  assert.ok(after.accuracy > 0.5, `accuracy after 3 subset epochs: ${after.accuracy}`);
  assert.ok(after.loss < before.loss);
  net.dispose();
});

test('data-parallel workers: averaged shard gradients equal the whole-batch gradient', async () => {
  await useBackend('wasm');
  const net = new SpecNetwork(fmSmall, { quant, seed: 2 });
  const order = Int32Array.from({ length: 96 }, (_, i) => 95 - i);
  const cal = gatherBatch(data.train, order, 0, 96);
  const x = tf.tensor4d(cal.images, [96, 28, 28, 1]);
  net.calibrate(x);
  x.dispose();
  const whole = shardGradients(net, cal.images, cal.labels, 0);
  const pool = await DataParallelPool.start(net, 1, 'wasm');
  try {
    const split = await pool.step(net, cal.images, cal.labels, 0);
    assert.ok(Math.abs(split.loss - whole.loss) < 1e-5, `loss ${split.loss} vs ${whole.loss}`);
    assert.ok(maxAbsDiff(split.grads, whole.grads) < 1e-4 * Math.max(1, maxAbs(whole.grads)), 'gradients differ');
  } finally {
    await pool.close();
  }
  net.dispose();
});

test('augmentation shifts with zero fill and mirrors, seeded', () => {
  const h = 3;
  const w = 4;
  const img = Float32Array.from({ length: 2 * h * w }, (_, i) => i + 1);
  const a = img.slice();
  const b = img.slice();
  augmentBatch(a, 2, h, w, 1, { shift: 1, flip: true }, new Rng(5));
  augmentBatch(b, 2, h, w, 1, { shift: 1, flip: true }, new Rng(5));
  assert.deepEqual(a, b, 'same seed, same augmentation');
  // Mirror only: each row reversed.
  const m = img.slice(0, h * w);
  const rng = new Rng(1);
  let flipped = 0;
  for (let t = 0; t < 20; t++) {
    const x = m.slice();
    augmentBatch(x, 1, h, w, 1, { shift: 0, flip: true }, rng);
    if (x[0] === m[w - 1]) {
      flipped++;
      for (let y = 0; y < h; y++) for (let c = 0; c < w; c++) assert.equal(x[y * w + c], m[y * w + (w - 1 - c)]);
    } else assert.deepEqual(x, m);
  }
  assert.ok(flipped > 3 && flipped < 17, `mirrored ${flipped} of 20`);
  // A shift moves pixels and fills with zeros; no pixel value is invented.
  const s = m.slice();
  augmentBatch(s, 1, h, w, 1, { shift: 1, flip: false }, new Rng(3));
  for (const v of s) assert.ok(v === 0 || m.includes(v));
});

test('an epoch longer than the training set makes several shuffled passes', async () => {
  await useBackend('wasm');
  const net = new SpecNetwork(fmSmall, { quant, seed: 4 });
  const small = takeDataset(data.train, 40);
  const seen: number[] = [];
  const r = await trainNetwork(net, small, { epochs: 1, batchSize: 50, imagesPerEpoch: 100, onBatchEnd: (b) => void seen.push(b.batch) });
  assert.equal(r.images, 100);
  assert.deepEqual(seen, [0, 1]);
  net.dispose();
});

test('an aborted signal stops training with ABORTED; a diverging input shape is an InputError', async () => {
  await useBackend('wasm');
  const net = new SpecNetwork(fmSmall, { quant, seed: 2 });
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(trainNetwork(net, takeDataset(data.train, 64), { epochs: 1, signal: ac.signal }), (e: unknown) => e instanceof CimbenchError && e.code === 'ABORTED');
  const wrong = { ...takeDataset(data.train, 4), height: 14, width: 56 };
  await assert.rejects(trainNetwork(net, wrong, { epochs: 1 }), /28x28x1/);
  net.dispose();
});

test('training, evaluation and dispose leave no tensors behind', async () => {
  await useBackend('wasm');
  const before = tf.memory().numTensors;
  const net = new SpecNetwork(fmSmall, { quant, seed: 3 });
  const counts: number[] = [];
  await trainNetwork(net, takeDataset(data.train, 128), {
    epochs: 2,
    batchSize: 32,
    validation: takeDataset(data.test, 50),
    onBatchEnd: () => void counts.push(tf.memory().numTensors),
  });
  assert.ok(counts.every((c) => c === counts[0]), `tensor count grew during training: ${counts.join(',')}`);
  assert.equal(tf.memory().numTensors - before, net.parameters().length, 'only the parameters remain');
  net.dispose();
  assert.equal(tf.memory().numTensors, before);
});
