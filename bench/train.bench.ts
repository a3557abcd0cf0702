/**
 * Training throughput on the wasm backend: quantisation-aware training (LSQ, 4-bit weights, 8-bit
 * inputs as in calibration/hardware/nas4cim-macro.json) of a ~5.6 M-MAC-per-image FashionMNIST CNN
 * (3x3 convs with 32-64-64 channels, max-pool, global average pool, dense; platform-facts.md's
 * network as a spec), Adam, batch 128, one epoch slice. Runs with 1 replica (this thread) and with
 * N data-parallel replicas (this thread + N-1 worker_threads), timing only batches after warm-up.
 * Also times the strided-conv input gradient (ours vs tfjs' conv2dTranspose) for the record.
 * Usage: npm run bench:train [-- --images 3840 --workers 2 --warmup 3]
 */
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { convInputGrad } from '../src/nn/conv.js';
import { initBackend, loadFashionMnist, loadFashionMnistSubset, SpecNetwork, trainNetwork } from '../src/nn/index.js';
import type { DatasetSplits } from '../src/nn/index.js';
import { NetworkSpecSchema } from '../src/spec/index.js';
import { report } from './report.js';

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '3840' },
    workers: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '3' },
    batch: { type: 'string', default: '128' },
  },
});
const sliceImages = Number(values.images);
const maxWorkers = Number(values.workers);
const warmup = Number(values.warmup);
const batchSize = Number(values.batch);

const info = await initBackend({ backend: 'wasm' });
const spec = NetworkSpecSchema.parse({
  name: 'fm-cnn3-32-64-64',
  input: [28, 28, 1],
  classes: 10,
  layers: [
    { op: 'conv', kernel: 3, out: 32 },
    { op: 'pool', kind: 'max', size: 2 },
    { op: 'conv', kernel: 3, out: 64 },
    { op: 'pool', kind: 'max', size: 2 },
    { op: 'conv', kernel: 3, out: 64 },
    { op: 'gap' },
    { op: 'dense', out: 10 },
  ],
});
let data: DatasetSplits;
let dataset = 'fashion-mnist';
try {
  data = loadFashionMnist();
} catch {
  data = loadFashionMnistSubset();
  dataset = 'fashion-mnist-subset';
}
const quant = { weightBits: 4, activationBits: 8 };
const common = { backend: info.name, network: spec.name, batch: batchSize, weightBits: quant.weightBits, activationBits: quant.activationBits, dataset };

for (const workers of [...new Set([1, maxWorkers])]) {
  const net = new SpecNetwork(spec, { quant, seed: 1 });
  const macs = net.analysis.macs;
  let timedImages = 0;
  let t0 = 0;
  const images = Math.min(sliceImages + warmup * batchSize, data.train.count);
  await trainNetwork(net, data.train, {
    epochs: 1,
    batchSize,
    imagesPerEpoch: images,
    learningRate: 2e-3,
    workers,
    onBatchEnd: (b) => {
      if (b.batch === warmup - 1) t0 = performance.now();
      else if (b.batch >= warmup) timedImages += Math.min(batchSize, images - b.batch * batchSize);
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  report('train.images_per_s', Math.round((timedImages / seconds) * 10) / 10, 'images/s', { ...common, workers, macsPerImage: macs, timedImages });
  net.dispose();
}

// Strided conv input gradient, x [128,14,14,32], w [3,3,32,64], stride 2, 'same'.
const x = tf.randomNormal([128, 14, 14, 32]) as tf.Tensor4D;
const w = tf.randomNormal([3, 3, 32, 64]) as tf.Tensor4D;
const dy = tf.randomNormal([128, 7, 7, 64]) as tf.Tensor4D;
/** Mean wall time of f (result read back and disposed) over 5 runs after 2 warm-up runs. */
const time = (f: () => tf.Tensor): number => {
  const reps = 5;
  let start = 0;
  for (let i = 0; i < reps + 2; i++) {
    if (i === 2) start = performance.now();
    const t = f();
    t.dataSync();
    t.dispose();
  }
  return (performance.now() - start) / reps;
};
const oursMs = time(() => convInputGrad(dy, w, x.shape, 2, 'same'));
const builtinMs = time(() => tf.conv2dTranspose(dy, w, x.shape, 2, 'same'));
const shape = { x: x.shape, w: w.shape, stride: 2 };
report('train.conv_dx_ms', Math.round(oursMs * 10) / 10, 'ms', { ...shape, backend: info.name, method: 'zero-dilated dy + flipped-kernel conv2d' });
report('train.conv_dx_ms', Math.round(builtinMs * 10) / 10, 'ms', { ...shape, backend: info.name, method: 'tf.conv2dTranspose (Conv2DBackpropInput)' });
tf.dispose([x, w, dy]);
