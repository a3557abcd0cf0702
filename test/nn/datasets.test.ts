import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { InputError } from '../../src/common/errors.js';
import {
  CIFAR10_RECORD_BYTES,
  encodeIdx,
  FASHION_MNIST_ENV_VAR,
  loadCifar10,
  loadFashionMnist,
  loadFashionMnistSubset,
  parseCifar10,
  parseIdx,
} from '../../src/nn/datasets.js';

test('the committed FashionMNIST subset loads: 2,000 train + 1,000 test, 28x28x1, labels 0..9, all classes', () => {
  const d = loadFashionMnistSubset();
  assert.equal(d.train.count, 2000);
  assert.equal(d.test.count, 1000);
  for (const split of [d.train, d.test]) {
    assert.equal(split.height, 28);
    assert.equal(split.width, 28);
    assert.equal(split.channels, 1);
    assert.equal(split.images.length, split.count * 784);
    const seen = new Set(split.labels);
    assert.equal(seen.size, 10);
    assert.ok(split.images.some((v) => v > 200), 'pixels are raw 0..255 bytes');
  }
});

test('a missing FashionMNIST names the Debian package and the directory; the env var picks the path', () => {
  const empty = mkdtempSync(join(tmpdir(), 'cimbench-fm-'));
  assert.throws(
    () => loadFashionMnist({ env: { [FASHION_MNIST_ENV_VAR]: empty } }),
    (err: unknown) => err instanceof InputError && err.code === 'NOT_FOUND' && err.message.includes(empty) && err.message.includes(FASHION_MNIST_ENV_VAR),
  );
  // No env var, no dir: the Debian default; when it is missing the error names the package.
  assert.throws(
    () => loadFashionMnist({ env: {}, defaultDir: empty }),
    (err: unknown) => err instanceof InputError && err.code === 'NOT_FOUND' && err.message.includes('apt-get install -y dataset-fashion-mnist'),
  );
  assert.throws(() => loadFashionMnist({ dir: join(empty, 'nope') }), (err: unknown) => err instanceof InputError && err.code === 'NOT_FOUND' && err.where!.startsWith(join(empty, 'nope')));
  // A directory given through the env var is used (tiny uncompressed idx files written here).
  const dir = mkdtempSync(join(tmpdir(), 'cimbench-fm-'));
  const img = new Uint8Array(3 * 784).map((_, i) => i % 256);
  writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(encodeIdx([3, 28, 28], img)));
  writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(encodeIdx([3], Uint8Array.of(1, 2, 3))));
  writeFileSync(join(dir, 't10k-images-idx3-ubyte'), encodeIdx([1, 28, 28], img.subarray(0, 784)));
  writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), encodeIdx([1], Uint8Array.of(9)));
  const d = loadFashionMnist({ env: { [FASHION_MNIST_ENV_VAR]: dir } });
  assert.equal(d.source, dir);
  assert.deepEqual(Array.from(d.train.labels), [1, 2, 3]);
  assert.deepEqual(Array.from(d.test.labels), [9]);
  assert.equal(d.train.images[785], 785 % 256);
});

test('idx parsing rejects bad magic numbers and truncated data', () => {
  assert.throws(() => parseIdx(Uint8Array.of(0, 0, 9, 1, 0, 0, 0, 1, 5), 'x'), /magic/);
  assert.throws(() => parseIdx(encodeIdx([4], Uint8Array.of(1, 2, 3, 4)).subarray(0, 10), 'x'), /truncated/);
  assert.deepEqual(parseIdx(encodeIdx([2, 2], Uint8Array.of(1, 2, 3, 4)), 'x').dims, [2, 2]);
});

/** CIFAR-10 binary record: label, then 1024 R, 1024 G, 1024 B bytes (row-major 32x32). */
function cifarRecord(label: number, seed: number): Uint8Array {
  const r = new Uint8Array(CIFAR10_RECORD_BYTES);
  r[0] = label;
  for (let i = 0; i < 3072; i++) r[1 + i] = (i * 7 + seed) % 251;
  return r;
}

test('CIFAR-10 binary batches load as NHWC with labels, from a tiny file written here', () => {
  const records = [cifarRecord(3, 1), cifarRecord(9, 2), cifarRecord(0, 3)];
  const bytes = new Uint8Array(records.length * CIFAR10_RECORD_BYTES);
  records.forEach((r, i) => bytes.set(r, i * CIFAR10_RECORD_BYTES));
  const d = parseCifar10(bytes, 'mem');
  assert.equal(d.count, 3);
  assert.deepEqual(Array.from(d.labels), [3, 9, 0]);
  // image 1, pixel (row 2, col 5): R at plane offset p = 2*32+5, G at 1024+p, B at 2048+p
  const p = 2 * 32 + 5;
  const at = 1 * 3072 + p * 3;
  assert.equal(d.images[at], records[1]![1 + p]);
  assert.equal(d.images[at + 1], records[1]![1 + 1024 + p]);
  assert.equal(d.images[at + 2], records[1]![1 + 2048 + p]);

  const dir = mkdtempSync(join(tmpdir(), 'cimbench-cifar-'));
  writeFileSync(join(dir, 'data_batch_1.bin'), bytes.subarray(0, 2 * CIFAR10_RECORD_BYTES));
  writeFileSync(join(dir, 'data_batch_2.bin'), bytes.subarray(2 * CIFAR10_RECORD_BYTES));
  writeFileSync(join(dir, 'test_batch.bin'), bytes.subarray(0, CIFAR10_RECORD_BYTES));
  const splits = loadCifar10({ dir });
  assert.equal(splits.train.count, 3);
  assert.deepEqual(Array.from(splits.train.labels), [3, 9, 0]);
  assert.equal(splits.test.count, 1);
  assert.deepEqual([splits.train.height, splits.train.width, splits.train.channels], [32, 32, 3]);
});

test('CIFAR-10 errors: wrong size, bad label, missing directory', () => {
  assert.throws(() => parseCifar10(new Uint8Array(100), 'f.bin'), (e: unknown) => e instanceof InputError && e.code === 'INVALID_INPUT' && e.where === 'f.bin');
  const bad = cifarRecord(12, 0);
  assert.throws(() => parseCifar10(bad, 'f.bin'), /label 12/);
  const empty = mkdtempSync(join(tmpdir(), 'cimbench-cifar-'));
  assert.throws(() => loadCifar10({ dir: empty }), (e: unknown) => e instanceof InputError && e.code === 'NOT_FOUND' && e.message.includes(empty));
  assert.throws(() => loadCifar10({ env: {} }), (e: unknown) => e instanceof InputError && e.code === 'NOT_FOUND' && e.message.includes('CIMBENCH_CIFAR10'));
});
