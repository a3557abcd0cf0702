/**
 * Training throughput on the wasm backend: quantisation-aware training (LSQ, 4-bit weights, 8-bit
 * inputs as in calibration/hardware/nas4cim-macro.json) of a ~5.6 M-MAC-per-image FashionMNIST CNN
 * (3x3 convs with 32-64-64 channels, max-pool, global average pool, dense; platform-facts.md's
 * network as a spec), Adam, batch 128, one epoch slice. Runs with 1 replica (this thread) and with
 * N data-parallel replicas (this thread + N-1 worker_threads), timing only batches after warm-up.
 * Also times the strided-conv input gradient (ours vs tfjs' conv2dTranspose) for the record.
 * Then (unless --search none) runs `cimbench search` end to end with the given budget (default
 * tiny, preset accuracy) and prints search.stage_seconds per stage, search.test_accuracy, and
 * train.images_per_s for the network that search retrained.
 * Usage: npm run bench:train [-- --images 3840 --workers 2 --warmup 3 --search tiny|small|full|none]
 */
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { convInputGrad } from '../src/nn/conv.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hardwareProfilePath, loadHardwareProfile } from '../src/hardware/index.js';
import { fashionMnistSubsetDir, initBackend, loadFashionMnist, loadFashionMnistSubset, SpecNetwork, trainNetwork } from '../src/nn/index.js';
import type { DatasetSplits } from '../src/nn/index.js';
import { budgetByName, defaultWorkers, loadSearchSpace, presetWeights, runSearch } from '../src/search/index.js';
import { NetworkSpecSchema } from '../src/spec/index.js';
import { report } from './report.js';

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '3840' },
    workers: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '3' },
    batch: { type: 'string', default: '128' },
    search: { type: 'string', default: 'tiny' },
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

/** Training throughput of `net` with `workers` replicas over one epoch slice, after `warmup` batches. */
async function timeTraining(net: SpecNetwork, workers: number): Promise<{ imagesPerSecond: number; timedImages: number }> {
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
  return { imagesPerSecond: Math.round((timedImages / ((performance.now() - t0) / 1000)) * 10) / 10, timedImages };
}

for (const workers of [...new Set([1, maxWorkers])]) {
  const net = new SpecNetwork(spec, { quant, seed: 1 });
  const r = await timeTraining(net, workers);
  report('train.images_per_s', r.imagesPerSecond, 'images/s', { ...common, workers, macsPerImage: net.analysis.macs, timedImages: r.timedImages });
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

// End-to-end search with the accuracy preset: wall time per stage, then the retrained network's
// training throughput.
if (values.search !== 'none') {
  const budgetName = values.search ?? 'tiny';
  const out = mkdtempSync(join(tmpdir(), 'cimbench-bench-search-'));
  const hwPath = hardwareProfilePath('nas4cim-macro');
  try {
    const t0 = performance.now();
    const m = (await runSearch({
      outDir: join(out, 'run'),
      config: {
        space: loadSearchSpace('fashion-mnist'),
        method: 'nas4cim',
        preset: 'accuracy',
        weights: presetWeights('accuracy'),
        budgetName,
        budget: budgetByName(budgetName),
        seed: 1,
        hardware: loadHardwareProfile(hwPath),
        hardwareSource: hwPath,
        dataDir: dataset === 'fashion-mnist' ? null : fashionMnistSubsetDir(),
        workers: defaultWorkers(),
      },
    })) as Record<string, any>;
    const wall = (performance.now() - t0) / 1000;
    const extra = { backend: info.name, budget: budgetName, preset: 'accuracy', dataset, workers: defaultWorkers() };
    for (const [stage, seconds] of Object.entries(m.stageSeconds as Record<string, number>)) {
      report('search.stage_seconds', Math.round(seconds * 10) / 10, 's', { ...extra, stage });
    }
    report('search.total_seconds', Math.round(wall * 10) / 10, 's', extra);
    report('search.test_accuracy', m.testAccuracy, 'fraction', { ...extra, testImages: m.testImages, chosen: m.chosen, edpMsMj: m.edpMsMj });
    const chosen = NetworkSpecSchema.parse(JSON.parse(readFileSync(join(out, 'run', 'chosen-spec.json'), 'utf8')));
    const net = new SpecNetwork(chosen, { quant, seed: 1 });
    const r = await timeTraining(net, maxWorkers);
    report('train.images_per_s', r.imagesPerSecond, 'images/s', { ...common, network: chosen.name, chosen: m.chosen, workers: maxWorkers, macsPerImage: net.analysis.macs, timedImages: r.timedImages });
    net.dispose();
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
