import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { InputError } from '../../src/common/errors.js';
import { loadFashionMnistSubset, takeDataset } from '../../src/nn/datasets.js';
import { buildWeightImage, EXPORT_FILES, exportNetwork, loadExportedNetwork, loadWeightImage, sha256Hex } from '../../src/nn/export.js';
import { SpecNetwork } from '../../src/nn/model.js';
import { quantizeToLevels, weightRange } from '../../src/nn/quant.js';
import { gatherBatch, trainNetwork } from '../../src/nn/train.js';
import { NetworkSpecSchema } from '../../src/spec/schema.js';
import { maxAbs, maxAbsDiff, useBackend, values } from './helpers.js';
import { ALL_OPS } from './specs.js';

const data = loadFashionMnistSubset();

async function trainedAllOps(): Promise<SpecNetwork> {
  const spec = NetworkSpecSchema.parse(ALL_OPS);
  const net = new SpecNetwork(spec, { quant: { weightBits: 4, activationBits: 6 }, seed: 4 });
  const [h, w, c] = spec.input;
  // Random non-negative images with random labels: enough to move every parameter away from its init.
  const count = 64;
  const images = Uint8Array.from(values(count * h * w * c, 8), (v) => Math.floor(Math.abs(v) * 255));
  const labels = Uint8Array.from({ length: count }, (_, i) => i % 10);
  await trainNetwork(net, { name: 'random', images, labels, count, height: h, width: w, channels: c, classes: 10 }, { epochs: 2, batchSize: 32 });
  return net;
}

test('export round trip: Layers model reproduces the network, weight image reloads identically', async () => {
  await useBackend('wasm');
  const net = await trainedAllOps();
  const dir = mkdtempSync(join(tmpdir(), 'cimbench-export-'));
  const result = await exportNetwork(net, dir);
  assert.deepEqual([...result.files].sort(), Object.values(EXPORT_FILES).sort());
  assert.equal(result.imageSha256, sha256Hex(new Uint8Array(readFileSync(join(dir, EXPORT_FILES.image)))));

  const loaded = await loadExportedNetwork(dir);
  assert.deepEqual(loaded.spec, net.spec);
  const [h, w, c] = net.spec.input;
  const x = tf.tensor4d(values(16 * h * w * c, 21).map((v) => Math.abs(v)), [16, h, w, c]);
  const ours = tf.tidy(() => net.apply(x).dataSync());
  const theirs = tf.tidy(() => (loaded.model.predict(x) as tf.Tensor).dataSync());
  assert.ok(maxAbsDiff(ours, theirs) <= 1e-4 * Math.max(1, maxAbs(ours)), `Layers model differs by ${maxAbsDiff(ours, theirs)}`);
  assert.ok(loaded.model.layers.some((l) => l.getClassName() === 'CimActQuant'));

  // The image: exactly what buildWeightImage produced, levels in range, and levels x scales = the
  // Layers model's kernel values (so the float model and the chip image describe the same network).
  const image = loadWeightImage(dir);
  const fresh = buildWeightImage(net);
  assert.deepEqual(image.index, fresh.index);
  assert.equal(image.matrices.length, net.matrices.length);
  const range = weightRange(4);
  image.matrices.forEach((m, i) => {
    const p = net.matrices[i]!;
    assert.equal(m.info.rows, p.matrix.rows);
    assert.equal(m.info.cols, p.matrix.outChannels);
    assert.deepEqual(Array.from(m.levels), Array.from(fresh.matrices[i]!.levels));
    const expected = tf.tidy(() => quantizeToLevels(p.weight, p.weightStep!, range).dataSync());
    assert.deepEqual(Array.from(m.levels), Array.from(Int8Array.from(expected)));
    assert.ok(m.levels.every((v) => v >= -7 && v <= 7));
    assert.equal(m.info.input.step, p.input!.step.dataSync()[0]);
    const layer = loaded.model.getLayer(`l${p.layer}_${p.role}`);
    const kernel = layer.getWeights()[0]!.dataSync();
    const deq = Float32Array.from(m.levels, (v, k) => v * m.scales[m.scales.length === 1 ? 0 : k % m.info.cols]!);
    assert.ok(maxAbsDiff(kernel, deq) < 1e-6, `${m.info.name}: kernel is not levels x scales`);
    assert.deepEqual(Array.from(layer.getWeights()[1]!.dataSync()), Array.from(m.bias));
  });
  x.dispose();
  loaded.model.dispose();
  net.dispose();
});

test('a corrupted or truncated weight image is rejected, naming the file', async () => {
  await useBackend('wasm');
  const spec = NetworkSpecSchema.parse(JSON.parse(readFileSync(new URL('../../fixtures/networks/fm-small.json', import.meta.url), 'utf8')));
  const net = new SpecNetwork(spec, { quant: { weightBits: 4, activationBits: 8 }, seed: 1 });
  await trainNetwork(net, takeDataset(data.train, 64), { epochs: 1, batchSize: 64 });
  const dir = mkdtempSync(join(tmpdir(), 'cimbench-export-'));
  await exportNetwork(net, dir);
  const binPath = join(dir, EXPORT_FILES.image);
  const good = new Uint8Array(readFileSync(binPath));
  const bad = good.slice();
  bad[10] = (bad[10]! + 1) & 0xff;
  writeFileSync(binPath, bad);
  assert.throws(() => loadWeightImage(dir), (e: unknown) => e instanceof InputError && /SHA-256 mismatch/.test(e.message) && e.where === binPath);
  writeFileSync(binPath, good.subarray(0, good.length - 4));
  assert.throws(() => loadWeightImage(dir), /bytes, its index says/);
  writeFileSync(binPath, good);
  const index = JSON.parse(readFileSync(join(dir, EXPORT_FILES.imageIndex), 'utf8'));
  delete index.matrices[0].rows;
  writeFileSync(join(dir, EXPORT_FILES.imageIndex), JSON.stringify(index));
  assert.throws(() => loadWeightImage(dir), (e: unknown) => e instanceof InputError && e.message.includes('matrices[0].rows'));
  net.dispose();
});

test('exported quantised model keeps the trained accuracy on real images', async () => {
  await useBackend('wasm');
  const spec = NetworkSpecSchema.parse(JSON.parse(readFileSync(new URL('../../fixtures/networks/fm-small.json', import.meta.url), 'utf8')));
  const net = new SpecNetwork(spec, { quant: { weightBits: 4, activationBits: 8 }, seed: 1 });
  await trainNetwork(net, takeDataset(data.train, 512), { epochs: 1, batchSize: 64 });
  const dir = mkdtempSync(join(tmpdir(), 'cimbench-export-'));
  await exportNetwork(net, dir);
  const { model } = await loadExportedNetwork(dir);
  const b = gatherBatch(data.test, null, 0, 300);
  const agree = tf.tidy(() => {
    const x = tf.tensor4d(b.images, [300, 28, 28, 1]);
    return tf.equal(tf.argMax(net.apply(x), 1), tf.argMax(model.predict(x) as tf.Tensor, 1)).sum().dataSync()[0]!;
  });
  assert.ok(agree >= 297, `argmax agrees on ${agree}/300 images`);
  model.dispose();
  net.dispose();
});

test('float networks export spec and Layers model but no weight image', async () => {
  await useBackend('wasm');
  const net = new SpecNetwork(NetworkSpecSchema.parse(ALL_OPS), { seed: 1 });
  const dir = mkdtempSync(join(tmpdir(), 'cimbench-export-'));
  const r = await exportNetwork(net, dir);
  assert.equal(r.imageSha256, undefined);
  assert.deepEqual([...r.files].sort(), [EXPORT_FILES.model, EXPORT_FILES.spec, EXPORT_FILES.weights].sort());
  assert.throws(() => buildWeightImage(net), InputError);
  const loaded = await loadExportedNetwork(dir);
  assert.equal(loaded.image, undefined);
  loaded.model.dispose();
  net.dispose();
});
