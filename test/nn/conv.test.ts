import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { conv2dTrainable, convGeometry } from '../../src/nn/conv.js';
import { maxAbs, maxAbsDiff, useBackend, values } from './helpers.js';

type Case = { k: number; s: number; p: 'same' | 'valid'; h: number; w: number; cin: number; cout: number };
const cases: Case[] = [];
for (const k of [1, 3, 5]) {
  for (const s of [1, 2]) {
    for (const p of ['same', 'valid'] as const) {
      // Odd and even input sizes: stride 2 leaves a trailing row unused for some of them.
      cases.push({ k, s, p, h: 7, w: 8, cin: 3, cout: 4 });
      cases.push({ k, s, p, h: 10, w: 9, cin: 5, cout: 2 });
    }
  }
}

/** Built-in cpu-backend gradients of sum(conv2d(x, w) * r), the reference. */
async function reference(c: Case, x: Float32Array, wv: Float32Array, r: Float32Array) {
  await useBackend('cpu');
  return tf.tidy(() => {
    const xt = tf.tensor4d(x, [2, c.h, c.w, c.cin]);
    const wt = tf.tensor4d(wv, [c.k, c.k, c.cin, c.cout]);
    const y = tf.conv2d(xt, wt, c.s, c.p);
    const rt = tf.tensor(r, y.shape);
    const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.p), rt)))([xt, wt]);
    return { y: y.dataSync().slice(), yShape: y.shape, dx: dx!.dataSync().slice(), dw: dw!.dataSync().slice() };
  });
}

test('conv2dTrainable gradients match the cpu backend for k 1/3/5, stride 1/2, same/valid (on wasm)', async () => {
  for (const c of cases) {
    const label = `k${c.k} s${c.s} ${c.p} ${c.h}x${c.w}`;
    const x = values(2 * c.h * c.w * c.cin, 11 + c.k);
    const wv = values(c.k * c.k * c.cin * c.cout, 23 + c.s);
    const g = convGeometry(c.h, c.w, c.k, c.s, c.p);
    const r = values(2 * g.outHeight * g.outWidth * c.cout, 37);
    const ref = await reference(c, x, wv, r);
    assert.deepEqual(ref.yShape, [2, g.outHeight, g.outWidth, c.cout], `${label}: geometry`);

    await useBackend('wasm');
    const ours = tf.tidy(() => {
      const xt = tf.tensor4d(x, [2, c.h, c.w, c.cin]);
      const wt = tf.tensor4d(wv, [c.k, c.k, c.cin, c.cout]);
      const rt = tf.tensor(r, ref.yShape);
      const y = conv2dTrainable(xt, wt, c.s, c.p);
      const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv2dTrainable(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.p), rt)))([xt, wt]);
      return { y: y.dataSync().slice(), dx: dx!.dataSync().slice(), dxShape: dx!.shape, dw: dw!.dataSync().slice(), dwShape: dw!.shape };
    });
    assert.deepEqual(ours.dxShape, [2, c.h, c.w, c.cin], `${label}: dx shape`);
    assert.deepEqual(ours.dwShape, [c.k, c.k, c.cin, c.cout], `${label}: dw shape`);
    const tol = (ref: ArrayLike<number>) => 1e-5 * Math.max(1, maxAbs(ref));
    assert.ok(maxAbsDiff(ours.y, ref.y) <= tol(ref.y), `${label}: forward differs`);
    assert.ok(maxAbsDiff(ours.dx, ref.dx) <= tol(ref.dx), `${label}: dx differs by ${maxAbsDiff(ours.dx, ref.dx)}`);
    assert.ok(maxAbsDiff(ours.dw, ref.dw) <= tol(ref.dw), `${label}: dw differs by ${maxAbsDiff(ours.dw, ref.dw)}`);
  }
});

test('the wasm backend really lacks the built-in filter gradient (why conv2dTrainable exists)', async () => {
  await useBackend('wasm');
  const x = tf.ones([1, 5, 5, 2]) as tf.Tensor4D;
  const w = tf.ones([3, 3, 2, 2]) as tf.Tensor4D;
  assert.throws(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')))([x, w]), /Conv2DBackpropFilter/);
  tf.dispose([x, w]);
});

test('convGeometry follows the spec rules (same: ceil(H/s), valid: floor((H-k)/s)+1)', () => {
  assert.deepEqual(convGeometry(28, 28, 3, 2, 'same'), { padTop: 0, padLeft: 0, outHeight: 14, outWidth: 14 });
  assert.deepEqual(convGeometry(28, 28, 5, 1, 'same'), { padTop: 2, padLeft: 2, outHeight: 28, outWidth: 28 });
  assert.deepEqual(convGeometry(7, 7, 3, 2, 'valid'), { padTop: 0, padLeft: 0, outHeight: 3, outWidth: 3 });
});
