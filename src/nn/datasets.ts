import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { InputError } from '../common/errors.js';
import { packageDir } from '../common/paths.js';

/**
 * Image classification datasets as flat typed arrays: images are uint8 pixels, NHWC, one image
 * after another (image i starts at i * height * width * channels); training scales them to [0, 1].
 */
export interface ImageDataset {
  readonly name: string;
  readonly images: Uint8Array;
  readonly labels: Uint8Array;
  readonly count: number;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  readonly classes: number;
}

export interface DatasetSplits {
  readonly train: ImageDataset;
  readonly test: ImageDataset;
  /** Directory the files came from. */
  readonly source: string;
}

export const FASHION_MNIST_ENV_VAR = 'CIMBENCH_FASHION_MNIST';
export const FASHION_MNIST_DEFAULT_DIR = '/usr/share/datasets/fashion-mnist';
export const FASHION_MNIST_PACKAGE = 'dataset-fashion-mnist';
export const FASHION_MNIST_FILES = {
  trainImages: 'train-images-idx3-ubyte.gz',
  trainLabels: 'train-labels-idx1-ubyte.gz',
  testImages: 't10k-images-idx3-ubyte.gz',
  testLabels: 't10k-labels-idx1-ubyte.gz',
} as const;

/** The committed 2,000 + 1,000 image subset (fixtures/datasets/fashion-mnist-subset, MIT). */
export function fashionMnistSubsetDir(): string {
  return packageDir('fixtures', 'datasets', 'fashion-mnist-subset');
}

function readMaybeGz(path: string): Uint8Array {
  const raw = readFileSync(path);
  const gz = raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b;
  try {
    return new Uint8Array(gz ? gunzipSync(raw) : raw);
  } catch (err) {
    throw new InputError('INVALID_INPUT', `cannot decompress (${(err as Error).message})`, { where: path });
  }
}

/** Parses an idx file (magic 0x0000 0x08 ndim, big-endian dims, uint8 data). */
export function parseIdx(bytes: Uint8Array, where: string): { dims: number[]; data: Uint8Array } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 || view.getUint16(0) !== 0 || view.getUint8(2) !== 0x08) {
    throw new InputError('INVALID_INPUT', 'not an idx file of unsigned bytes (bad magic number)', { where });
  }
  const ndim = view.getUint8(3);
  const header = 4 + 4 * ndim;
  if (ndim < 1 || bytes.length < header) throw new InputError('INVALID_INPUT', 'truncated idx header', { where });
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(view.getUint32(4 + 4 * i));
  const size = dims.reduce((a, b) => a * b, 1);
  if (bytes.length - header < size) {
    throw new InputError('INVALID_INPUT', `truncated idx data: ${bytes.length - header} bytes, expected ${size}`, { where });
  }
  return { dims, data: bytes.subarray(header, header + size) };
}

/** Encodes an idx file (used to write the committed subset and by tests). */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Uint8Array {
  const header = 4 + 4 * dims.length;
  const out = new Uint8Array(header + data.length);
  const view = new DataView(out.buffer);
  view.setUint8(2, 0x08);
  view.setUint8(3, dims.length);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(data, header);
  return out;
}

function loadIdxSplit(dir: string, imagesFile: string, labelsFile: string, name: string): ImageDataset {
  const imgPath = join(dir, imagesFile);
  const lblPath = join(dir, labelsFile);
  const images = parseIdx(readMaybeGz(imgPath), imgPath);
  const labels = parseIdx(readMaybeGz(lblPath), lblPath);
  if (images.dims.length !== 3) throw new InputError('INVALID_INPUT', `expected 3 image dims, got ${images.dims.length}`, { where: imgPath });
  const [count, height, width] = images.dims as [number, number, number];
  if (labels.dims.length !== 1 || labels.dims[0] !== count) {
    throw new InputError('INVALID_INPUT', `label count ${labels.dims.join('x')} does not match ${count} images`, { where: lblPath });
  }
  for (let i = 0; i < count; i++) {
    if ((labels.data[i] as number) > 9) throw new InputError('INVALID_INPUT', `label ${labels.data[i]} at index ${i} is not a class 0..9`, { where: lblPath });
  }
  return { name, images: images.data.slice(), labels: labels.data.slice(), count, height, width, channels: 1, classes: 10 };
}

export interface FashionMnistOptions {
  /** Directory with the four idx(.gz) files; default $CIMBENCH_FASHION_MNIST or the Debian path. */
  readonly dir?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Where the Debian package puts it; overridable for unusual installs and tests. */
  readonly defaultDir?: string;
}

/**
 * Loads FashionMNIST (Xiao et al. 2017, MIT licence) from idx files, gzipped or not. Missing files
 * throw NOT_FOUND naming the path and how to get it.
 */
export function loadFashionMnist(options: FashionMnistOptions = {}): DatasetSplits {
  const env = options.env ?? process.env;
  const fromEnv = env[FASHION_MNIST_ENV_VAR];
  const dir = options.dir ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : (options.defaultDir ?? FASHION_MNIST_DEFAULT_DIR));
  const how =
    options.dir !== undefined
      ? 'check the dataset path'
      : fromEnv
        ? `check ${FASHION_MNIST_ENV_VAR}`
        : `install the Debian package ${FASHION_MNIST_PACKAGE} (apt-get update && apt-get install -y ${FASHION_MNIST_PACKAGE}) or point ${FASHION_MNIST_ENV_VAR} at a directory with the idx files`;
  for (const file of Object.values(FASHION_MNIST_FILES)) {
    const p = join(dir, file);
    if (!existsSync(p) && !existsSync(p.replace(/\.gz$/, ''))) {
      throw new InputError('NOT_FOUND', `FashionMNIST file ${file} not found in ${dir}: ${how}`, {
        where: p,
        details: { dataset: 'fashion-mnist', dir, package: FASHION_MNIST_PACKAGE },
      });
    }
  }
  const pick = (file: string): string => (existsSync(join(dir, file)) ? file : file.replace(/\.gz$/, ''));
  return {
    train: loadIdxSplit(dir, pick(FASHION_MNIST_FILES.trainImages), pick(FASHION_MNIST_FILES.trainLabels), 'fashion-mnist/train'),
    test: loadIdxSplit(dir, pick(FASHION_MNIST_FILES.testImages), pick(FASHION_MNIST_FILES.testLabels), 'fashion-mnist/test'),
    source: dir,
  };
}

/** The committed subset (same format, 2,000 train + 1,000 test images). */
export function loadFashionMnistSubset(): DatasetSplits {
  return loadFashionMnist({ dir: fashionMnistSubsetDir() });
}

export const CIFAR10_RECORD_BYTES = 1 + 3072;

/**
 * Parses CIFAR-10 binary batches (data_batch_N.bin / test_batch.bin): records of 1 label byte and
 * 3072 pixel bytes stored channel-planar (1024 R, 1024 G, 1024 B, rows of 32); converted to NHWC.
 */
export function parseCifar10(bytes: Uint8Array, where: string): ImageDataset {
  if (bytes.length === 0 || bytes.length % CIFAR10_RECORD_BYTES !== 0) {
    throw new InputError('INVALID_INPUT', `size ${bytes.length} is not a multiple of the ${CIFAR10_RECORD_BYTES}-byte CIFAR-10 record`, { where });
  }
  const count = bytes.length / CIFAR10_RECORD_BYTES;
  const images = new Uint8Array(count * 3072);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const rec = i * CIFAR10_RECORD_BYTES;
    const label = bytes[rec] as number;
    if (label > 9) throw new InputError('INVALID_INPUT', `record ${i} has label ${label}, expected 0..9`, { where });
    labels[i] = label;
    const out = i * 3072;
    for (let p = 0; p < 1024; p++) {
      images[out + p * 3] = bytes[rec + 1 + p] as number;
      images[out + p * 3 + 1] = bytes[rec + 1 + 1024 + p] as number;
      images[out + p * 3 + 2] = bytes[rec + 1 + 2048 + p] as number;
    }
  }
  return { name: 'cifar-10', images, labels, count, height: 32, width: 32, channels: 3, classes: 10 };
}

export const CIFAR10_ENV_VAR = 'CIMBENCH_CIFAR10';

/**
 * Loads CIFAR-10 from a directory of the binary version (cifar-10-batches-bin): data_batch_1..5.bin
 * for training (those present, at least one) and test_batch.bin.
 */
export function loadCifar10(options: { dir?: string; env?: NodeJS.ProcessEnv } = {}): DatasetSplits {
  const env = options.env ?? process.env;
  const dir = options.dir ?? env[CIFAR10_ENV_VAR];
  if (!dir) {
    throw new InputError('NOT_FOUND', `no CIFAR-10 directory given: pass one or set ${CIFAR10_ENV_VAR} to the cifar-10-batches-bin directory (binary version from https://www.cs.toronto.edu/~kriz/cifar.html)`, {
      where: CIFAR10_ENV_VAR,
      details: { dataset: 'cifar-10' },
    });
  }
  const trainFiles = [1, 2, 3, 4, 5].map((n) => join(dir, `data_batch_${n}.bin`)).filter((p) => existsSync(p));
  const testPath = join(dir, 'test_batch.bin');
  if (trainFiles.length === 0 || !existsSync(testPath)) {
    throw new InputError('NOT_FOUND', `CIFAR-10 binary batches (data_batch_N.bin and test_batch.bin) not found in ${dir}`, {
      where: trainFiles.length === 0 ? join(dir, 'data_batch_1.bin') : testPath,
      details: { dataset: 'cifar-10', dir },
    });
  }
  const parts = trainFiles.map((p) => parseCifar10(new Uint8Array(readFileSync(p)), p));
  return { train: concatDatasets(parts, 'cifar-10/train'), test: { ...parseCifar10(new Uint8Array(readFileSync(testPath)), testPath), name: 'cifar-10/test' }, source: dir };
}

export function concatDatasets(parts: readonly ImageDataset[], name: string): ImageDataset {
  const first = parts[0];
  if (!first) throw new RangeError('concatDatasets needs at least one part');
  const count = parts.reduce((a, p) => a + p.count, 0);
  const per = first.height * first.width * first.channels;
  const images = new Uint8Array(count * per);
  const labels = new Uint8Array(count);
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * per);
    labels.set(p.labels, at);
    at += p.count;
  }
  return { ...first, name, images, labels, count };
}

/** The first `count` images (or fewer) of a dataset, sharing no memory with it. */
export function takeDataset(d: ImageDataset, count: number, start = 0): ImageDataset {
  const n = Math.max(0, Math.min(count, d.count - start));
  const per = d.height * d.width * d.channels;
  return {
    ...d,
    images: d.images.slice(start * per, (start + n) * per),
    labels: d.labels.slice(start, start + n),
    count: n,
  };
}
