import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { activationRange, lsqInitialStep, lsqQuantize, quantizeToLevels, weightRange } from '../../src/nn/quant.js';
import { useBackend } from './helpers.js';

test('weight levels are symmetric -(2^(b-1)-1)..2^(b-1)-1, activations 0..2^a-1 (or symmetric when signed)', () => {
  assert.deepEqual(weightRange(4), { qn: 7, qp: 7 });
  assert.deepEqual(weightRange(8), { qn: 127, qp: 127 });
  assert.deepEqual(activationRange(8, false), { qn: 0, qp: 255 });
  assert.deepEqual(activationRange(4, true), { qn: 7, qp: 7 });
  assert.throws(() => weightRange(1), RangeError);
  assert.ok(Math.abs(lsqInitialStep(0.5, weightRange(4)) - 1 / Math.sqrt(7)) < 1e-12);
});

test('lsqQuantize: forward rounds and clips; gradients follow LSQ (STE inside, step gradient scaled)', async () => {
  await useBackend('wasm');
  const range = weightRange(3); // levels -3..3
  const v = [0.24, -0.26, 0.5, 1.1, -2.0, 0.0];
  const s = 0.25;
  const g = 0.5;
  const upstream = [1, 2, 3, 4, 5, 6];
  const { out, dv, ds } = tf.tidy(() => {
    const vt = tf.tensor1d(v);
    const st = tf.tensor1d([s]);
    const dy = tf.tensor1d(upstream);
    const out = lsqQuantize(vt, st, range, g);
    const [dv, ds] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(lsqQuantize(a, b, range, g), dy)))([vt, st]);
    return { out: Array.from(out.dataSync()), dv: Array.from(dv!.dataSync()), ds: Array.from(ds!.dataSync()) };
  });
  // v/s = 0.96, -1.04, 2, 4.4 (clipped to 3), -8 (clipped to -3), 0
  const expectOut = [0.25, -0.25, 0.5, 0.75, -0.75, 0];
  out.forEach((o, i) => assert.ok(Math.abs(o - (expectOut[i] as number)) < 1e-6, `out[${i}] = ${o}`));
  assert.deepEqual(dv, [1, 2, 3, 0, 0, 6]);
  // dq/ds: round(v/s) - v/s inside, the clip level outside.
  const perElem = [1 - 0.96, -1 + 1.04, 0, 3, -3, 0];
  const expectDs = g * perElem.reduce((a, p, i) => a + p * (upstream[i] as number), 0);
  assert.equal(ds.length, 1);
  assert.ok(Math.abs((ds[0] as number) - expectDs) < 1e-5, `ds ${ds[0]} vs ${expectDs}`);
});

test('per-channel steps: one step per last-axis channel, step gradient reduced per channel', async () => {
  await useBackend('wasm');
  const range = activationRange(4, false); // 0..15
  const { levels, ds } = tf.tidy(() => {
    const v = tf.tensor2d([0.3, 3.0, 0.6, 1.0], [2, 2]);
    const st = tf.tensor1d([0.1, 1.0]);
    const levels = quantizeToLevels(v, st, range).dataSync();
    const [ds] = tf.grads((b: tf.Tensor) => tf.sum(lsqQuantize(v, b, range, 1)))([st]);
    return { levels: Array.from(levels), ds: Array.from(ds!.dataSync()) };
  });
  assert.deepEqual(levels, [3, 3, 6, 1]);
  assert.equal(ds.length, 2);
  assert.ok(Math.abs((ds[0] as number) - 0) < 1e-5); // 3-3 + 6-6
  assert.ok(Math.abs((ds[1] as number) - 0) < 1e-5); // 3-3 + 1-1
});
