import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError } from '../../src/common/errors.js';
import { conv2dTrainable, convGeometry } from '../../src/nn/conv.js';
import { SpecNetwork } from '../../src/nn/model.js';
import { NetworkSpecSchema } from '../../src/spec/schema.js';
import { maxAbs, maxAbsDiff, useBackend, values } from './helpers.js';
import { ALL_OPS, WITH_GAP } from './specs.js';

const quant = { weightBits: 4, activationBits: 8 };

test('matrices and weight shapes agree with analyzeNetwork for every op', async () => {
  await useBackend('wasm');
  for (const input of [ALL_OPS, WITH_GAP]) {
    const net = new SpecNetwork(NetworkSpecSchema.parse(input), { quant });
    const expected = net.analysis.layers.flatMap((l) => l.matrices);
    assert.equal(net.matrices.length, expected.length);
    net.matrices.forEach((m, i) => {
      const e = expected[i]!;
      assert.equal(m.role, e.role);
      assert.equal(m.weight.size, e.rows * e.outChannels, `${input.name} ${m.role}: weights`);
      const shape = e.role === 'dense' ? [e.rows, e.outChannels] : [e.kernel, e.kernel, e.inChannels, e.outChannels];
      assert.deepEqual(m.weight.shape, shape);
      assert.deepEqual(m.bias.shape, [e.outChannels]);
      assert.deepEqual(m.weightStep!.shape, [e.outChannels]);
      assert.ok(m.input, 'every matrix has an input quantiser');
    });
    const params = net.parameters().filter((p) => p.kind === 'weight' || p.kind === 'bias');
    assert.equal(params.reduce((a, p) => a + p.variable.size, 0), net.analysis.params, 'weights + biases = analysis params');
    // A residual's projection shares the layer-input quantiser with the main conv.
    for (const proj of net.matrices.filter((m) => m.role === 'projection')) {
      const main = net.matrices.find((m) => m.layer === proj.layer && m.role !== 'projection')!;
      assert.equal(proj.input, main.input);
    }
    net.dispose();
  }
  const signed = new SpecNetwork(NetworkSpecSchema.parse(WITH_GAP), { quant });
  assert.equal(signed.matrices[2]!.input!.signed, true, 'input after activation none is signed');
  assert.equal(signed.matrices[0]!.input!.signed, false);
  signed.dispose();
});

test('forward gives [N, classes] and every parameter gets a gradient on wasm (quantised)', async () => {
  await useBackend('wasm');
  for (const input of [ALL_OPS, WITH_GAP]) {
    const spec = NetworkSpecSchema.parse(input);
    const net = new SpecNetwork(spec, { quant, seed: 5 });
    const [h, w, c] = spec.input;
    const x = tf.tensor4d(values(4 * h * w * c, 3).map((v) => Math.abs(v)), [4, h, w, c]);
    net.calibrate(x);
    const vars = net.trainableVariables();
    const { shape, norms } = tf.tidy(() => {
      const out = net.apply(x, true);
      const { grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d([0, 1, 2, 3], 'int32'), 10), net.apply(x, true)) as tf.Scalar, vars);
      return { shape: out.shape, norms: vars.map((v) => (grads[v.name] ? tf.norm(grads[v.name]!).dataSync()[0]! : 0)) };
    });
    assert.deepEqual(shape, [4, 10]);
    net.parameters().forEach((p, i) => {
      assert.ok(Number.isFinite(norms[i]!) && norms[i]! > 0, `${input.name}: ${p.name} has gradient norm ${norms[i]}`);
    });
    x.dispose();
    net.dispose();
  }
});

test('conv weights flattened row-major are rows in the spec im2col order (ky, kx, cin) x cout', async () => {
  await useBackend('wasm');
  const spec = NetworkSpecSchema.parse({ name: 'im2col', input: [6, 5, 3], classes: 2, layers: [{ op: 'conv', kernel: 3, out: 2, stride: 2 }, { op: 'gap' }] });
  const net = new SpecNetwork(spec, { seed: 9 });
  const m = net.matrices[0]!;
  const [h, w, cin] = spec.input;
  const k = 3;
  const s = 2;
  const cout = 2;
  const xv = values(h * w * cin, 4);
  const wflat = m.weight.dataSync();
  const y = tf.tidy(() => conv2dTrainable(tf.tensor4d(xv, [1, h, w, cin]), m.weight as unknown as tf.Tensor4D, s, 'same').dataSync());
  const g = convGeometry(h, w, k, s, 'same');
  const manual: number[] = [];
  for (let oy = 0; oy < g.outHeight; oy++) {
    for (let ox = 0; ox < g.outWidth; ox++) {
      // im2col row vector of this output position
      const patch: number[] = [];
      for (let ky = 0; ky < k; ky++) {
        for (let kx = 0; kx < k; kx++) {
          for (let c = 0; c < cin; c++) {
            const iy = oy * s + ky - g.padTop;
            const ix = ox * s + kx - g.padLeft;
            patch.push(iy >= 0 && iy < h && ix >= 0 && ix < w ? xv[(iy * w + ix) * cin + c]! : 0);
          }
        }
      }
      assert.equal(patch.length, m.matrix.rows);
      for (let o = 0; o < cout; o++) manual.push(patch.reduce((a, p, r) => a + p * wflat[r * cout + o]!, 0));
    }
  }
  assert.ok(maxAbsDiff(y, manual) < 1e-5 * Math.max(1, maxAbs(manual)));
  net.dispose();
});

test('bit widths the weight image cannot hold are rejected with a clear InputError', () => {
  const spec = NetworkSpecSchema.parse(WITH_GAP);
  assert.throws(
    () => new SpecNetwork(spec, { quant: { weightBits: 9, activationBits: 8 } }),
    (err: unknown) => err instanceof InputError && err.where === 'quant.weightBits',
  );
  assert.throws(() => new SpecNetwork(spec, { quant: { weightBits: 4, activationBits: 1 } }), InputError);
});
