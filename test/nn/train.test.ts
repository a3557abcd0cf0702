import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CimbenchError } from '../../src/common/errors.js';
import { loadFashionMnistSubset, takeDataset } from '../../src/nn/datasets.js';
import { SpecNetwork } from '../../src/nn/model.js';
import { DataParallelPool } from '../../src/nn/parallel.js';
import { evaluate, gatherBatch, learningRateAt, shardGradients, trainNetwork } from '../../src/nn/train.js';
import type { BatchInfo, EpochInfo } from '../../src/nn/train.js';
import { NetworkSpecSchema } from '../../src/spec/schema.js';
import { maxAbs, maxAbsDiff, useBackend } from './helpers.js';

const fmMacro = NetworkSpecSchema.parse(JSON.parse(readFileSync(new URL('../../fixtures/networks/fm-macro.json', import.meta.url), 'utf8')));
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
    const net = new SpecNetwork(fmMacro, { quant, seed: 7 });
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

test('quantisation-aware training learns: fm-macro, 4-bit weights, 8-bit inputs, subset, 2 replicas', async (t) => {
  await useBackend('wasm');
  const net = new SpecNetwork(fmMacro, { quant, seed: 1 });
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
  const net = new SpecNetwork(fmMacro, { quant, seed: 2 });
  const order = Int32Array.from({ length: 96 }, (_, i) => 95 - i);
  const cal = gatherBatch(data.train, order, 0, 96);
  const x = tf.tensor4d(cal.images, [96, 28, 28, 1]);
  net.calibrate(x);
  x.dispose();
  const whole = shardGradients(net, cal.images, cal.labels, 0);
  const pool = await DataParallelPool.start(net, 1, 'wasm');
  try {
    const split = await pool.step(net, data.train, order, 0, 96, 0);
    assert.ok(Math.abs(split.loss - whole.loss) < 1e-5, `loss ${split.loss} vs ${whole.loss}`);
    assert.ok(maxAbsDiff(split.grads, whole.grads) < 1e-4 * Math.max(1, maxAbs(whole.grads)), 'gradients differ');
  } finally {
    await pool.close();
  }
  net.dispose();
});

test('an aborted signal stops training with ABORTED; a diverging input shape is an InputError', async () => {
  await useBackend('wasm');
  const net = new SpecNetwork(fmMacro, { quant, seed: 2 });
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
  const net = new SpecNetwork(fmMacro, { quant, seed: 3 });
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
