import * as tf from '@tensorflow/tfjs';
import { CimbenchError, InputError } from '../common/errors.js';
import { Rng } from '../common/rng.js';
import type { ImageDataset } from './datasets.js';
import type { SpecNetwork } from './model.js';
import { DataParallelPool } from './parallel.js';

/**
 * Training loop: Adam (with optional decoupled weight decay on weights only), linear warm-up then
 * cosine decay, seeded shuffling, progress callbacks, batched evaluation. With `workers` > 1 it runs
 * synchronous data parallelism: the batch is split into shards, worker_threads (each with its own
 * wasm backend) compute gradients on theirs while this thread computes its own, gradients are
 * averaged (weighted by shard size) and one optimiser step is taken here; workers receive the new
 * parameters with their next shard, so every replica always holds identical weights.
 */

export type LrSchedule = 'constant' | 'cosine';

export interface BatchInfo {
  readonly epoch: number;
  /** Batch index inside the epoch, from 0. */
  readonly batch: number;
  readonly batchesPerEpoch: number;
  /** Optimiser steps taken so far (including this one). */
  readonly step: number;
  readonly loss: number;
  readonly learningRate: number;
  /** Images in this batch divided by its wall time. */
  readonly imagesPerSecond: number;
}

export interface EvalResult {
  /** Fraction correct in [0, 1]. */
  readonly accuracy: number;
  readonly loss: number;
  readonly count: number;
}

export interface EpochInfo {
  readonly epoch: number;
  readonly loss: number;
  readonly images: number;
  readonly seconds: number;
  readonly imagesPerSecond: number;
  readonly validation?: EvalResult;
}

export interface TrainOptions {
  readonly epochs: number;
  readonly batchSize?: number;
  readonly learningRate?: number;
  readonly schedule?: LrSchedule;
  /** Warm-up steps; default min(200, 5% of all steps). */
  readonly warmupSteps?: number;
  /** AdamW-style decay applied to weight matrices only (not biases or steps). */
  readonly weightDecay?: number;
  readonly labelSmoothing?: number;
  /**
   * Images per epoch (default: the training set once). Fewer takes a slice of the shuffled set;
   * more makes several shuffled passes, so a tiny training set still gets a training budget.
   */
  readonly imagesPerEpoch?: number;
  /** Training-time augmentation (random shifts, horizontal flips), seeded with the run. */
  readonly augment?: AugmentOptions;
  readonly seed?: number;
  /** Evaluated after every epoch (reported in onEpochEnd). */
  readonly validation?: ImageDataset;
  /** Data-parallel replicas including this thread; default 1. */
  readonly workers?: number;
  /** Passed to worker threads' initBackend (default: the same request as this process). */
  readonly backend?: string;
  readonly onBatchEnd?: (info: BatchInfo) => void | Promise<void>;
  readonly onEpochEnd?: (info: EpochInfo) => void | Promise<void>;
  readonly signal?: AbortSignal;
  /**
   * Resume: epochs already done (their shuffles are replayed, the schedule continues at their last
   * step) and the optimiser state saved with them. The network must hold the parameters saved then.
   */
  readonly startEpoch?: number;
  readonly optimizerState?: AdamState;
  /** After every epoch: completed epochs and the optimiser state, for an epoch-granular checkpoint. */
  readonly onCheckpoint?: (epochsDone: number, optimizer: AdamState) => void | Promise<void>;
}

export interface AugmentOptions {
  /** Largest shift in pixels along each axis (zero fill); 0 = none. */
  readonly shift: number;
  /** Mirror left-right with probability 1/2. */
  readonly flip: boolean;
}

export interface TrainResult {
  readonly epochs: readonly EpochInfo[];
  readonly steps: number;
  readonly images: number;
  readonly seconds: number;
  readonly workers: number;
}

export interface AdamState {
  readonly t: number;
  readonly m: readonly Float32Array[];
  readonly v: readonly Float32Array[];
}

/** Adam on tf.Variables; decoupled weight decay for the variables flagged `decay`. */
export class Adam {
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];
  private t = 0;

  constructor(
    private readonly vars: readonly tf.Variable[],
    private readonly decay: readonly boolean[],
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly eps = 1e-7,
  ) {
    this.m = tf.tidy(() => vars.map((x) => tf.variable(tf.zerosLike(x), false)));
    this.v = tf.tidy(() => vars.map((x) => tf.variable(tf.zerosLike(x), false)));
  }

  /** Step count and moments (copies), for checkpoints that resume training exactly. */
  getState(): AdamState {
    return {
      t: this.t,
      m: this.m.map((x) => (x.dataSync() as Float32Array).slice()),
      v: this.v.map((x) => (x.dataSync() as Float32Array).slice()),
    };
  }

  setState(state: AdamState): void {
    if (state.m.length !== this.m.length || state.v.length !== this.v.length) {
      throw new InputError('INVALID_INPUT', `optimiser state has ${state.m.length} moments, the network ${this.m.length}`, { where: 'optimiser state' });
    }
    const load = (dst: tf.Variable[], src: readonly Float32Array[]): void =>
      dst.forEach((x, i) => {
        const v = src[i] as Float32Array;
        if (v.length !== x.size) throw new InputError('INVALID_INPUT', `optimiser moment ${i} has ${v.length} values, expected ${x.size}`, { where: 'optimiser state' });
        tf.tidy(() => x.assign(tf.tensor(v, x.shape)));
      });
    load(this.m, state.m);
    load(this.v, state.v);
    this.t = state.t;
  }

  /** One update with gradients in the same order as the variables. */
  apply(grads: readonly tf.Tensor[], lr: number, weightDecay = 0): void {
    this.t++;
    const c1 = 1 - this.beta1 ** this.t;
    const c2 = 1 - this.beta2 ** this.t;
    tf.tidy(() => {
      this.vars.forEach((x, i) => {
        const g = grads[i] as tf.Tensor;
        const m = this.m[i] as tf.Variable;
        const v = this.v[i] as tf.Variable;
        m.assign(tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1)));
        v.assign(tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2)));
        let update = tf.div(tf.mul(m, lr / c1), tf.add(tf.sqrt(tf.div(v, c2)), this.eps));
        if (weightDecay > 0 && this.decay[i]) update = tf.add(update, tf.mul(x, lr * weightDecay));
        x.assign(tf.sub(x, update));
      });
    });
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}

export function learningRateAt(step: number, totalSteps: number, base: number, schedule: LrSchedule, warmup: number): number {
  if (warmup > 0 && step < warmup) return (base * (step + 1)) / warmup;
  if (schedule === 'constant') return base;
  const span = Math.max(1, totalSteps - warmup);
  const p = Math.min(1, (step - warmup) / span);
  return base * 0.5 * (1 + Math.cos(Math.PI * p));
}

/** Images [n, H, W, C] scaled to [0, 1] and labels for indices[start..end) (null: images start..end). */
export function gatherBatch(
  data: ImageDataset,
  indices: ArrayLike<number> | null,
  start: number,
  end: number,
): { images: Float32Array; labels: Int32Array } {
  const per = data.height * data.width * data.channels;
  const n = end - start;
  const images = new Float32Array(n * per);
  const labels = new Int32Array(n);
  const scale = 1 / 255;
  for (let b = 0; b < n; b++) {
    const idx = indices ? (indices[start + b] as number) : start + b;
    const src = idx * per;
    const dst = b * per;
    for (let p = 0; p < per; p++) images[dst + p] = (data.images[src + p] as number) * scale;
    labels[b] = data.labels[idx] as number;
  }
  return { images, labels };
}

/**
 * Random shift (zero fill) and optional mirror of every image of a batch, NHWC, in place. Shifts
 * are uniform in [-shift, shift] per axis; FashionMNIST's garments are centred with a few pixels of
 * background, so small shifts keep the object and teach translation tolerance.
 */
export function augmentBatch(images: Float32Array, n: number, h: number, w: number, c: number, opts: AugmentOptions, rng: Rng): void {
  if (opts.shift <= 0 && !opts.flip) return;
  const per = h * w * c;
  const src = new Float32Array(per);
  for (let b = 0; b < n; b++) {
    const dy = opts.shift > 0 ? rng.int(2 * opts.shift + 1) - opts.shift : 0;
    const dx = opts.shift > 0 ? rng.int(2 * opts.shift + 1) - opts.shift : 0;
    const flip = opts.flip && rng.next() < 0.5;
    if (dy === 0 && dx === 0 && !flip) continue;
    const base = b * per;
    src.set(images.subarray(base, base + per));
    for (let y = 0; y < h; y++) {
      const sy = y - dy;
      for (let x = 0; x < w; x++) {
        const sx0 = flip ? w - 1 - x : x;
        const sx = sx0 - dx;
        const dst = base + (y * w + x) * c;
        if (sy < 0 || sy >= h || sx < 0 || sx >= w) {
          for (let k = 0; k < c; k++) images[dst + k] = 0;
        } else {
          const from = (sy * w + sx) * c;
          for (let k = 0; k < c; k++) images[dst + k] = src[from + k] as number;
        }
      }
    }
  }
}

/** Softmax cross-entropy (mean over the batch), with optional label smoothing. */
export function classificationLoss(logits: tf.Tensor2D, labels: tf.Tensor1D, classes: number, labelSmoothing = 0): tf.Scalar {
  const oneHot = tf.oneHot(labels, classes).toFloat();
  return tf.losses.softmaxCrossEntropy(oneHot, logits, undefined, labelSmoothing) as tf.Scalar;
}

/**
 * Loss and gradients for one shard, in net.parameters() order, as one flat Float32Array (the form
 * workers exchange). Everything stays inside tidy except the returned arrays.
 */
export function shardGradients(
  net: SpecNetwork,
  images: Float32Array,
  labels: Int32Array,
  labelSmoothing: number,
): { loss: number; grads: Float32Array } {
  const vars = net.trainableVariables();
  const [h, w, c] = net.spec.input;
  const n = labels.length;
  const flat = tf.tidy(() => {
    const x = tf.tensor4d(images, [n, h, w, c]);
    const y = tf.tensor1d(labels, 'int32');
    const { value, grads } = tf.variableGrads(
      () => classificationLoss(net.apply(x, true), y, net.spec.classes, labelSmoothing),
      vars,
    );
    const parts = vars.map((v) => (grads[v.name] ?? tf.zerosLike(v)).reshape([-1]));
    return tf.concat([value.reshape([1]), ...parts]);
  });
  const data = flat.dataSync() as Float32Array;
  flat.dispose();
  return { loss: data[0] as number, grads: data.subarray(1) };
}

/** All parameters as one flat array in net.parameters() order. */
export function flattenParameters(net: SpecNetwork): Float32Array {
  const t = tf.tidy(() => tf.concat(net.trainableVariables().map((v) => v.reshape([-1]))));
  const out = t.dataSync() as Float32Array;
  t.dispose();
  return out;
}

/** Inverse of flattenParameters. */
export function loadFlatParameters(net: SpecNetwork, flat: Float32Array): void {
  let at = 0;
  for (const v of net.trainableVariables()) {
    const n = v.size;
    tf.tidy(() => v.assign(tf.tensor(flat.subarray(at, at + n), v.shape)));
    at += n;
  }
  if (at !== flat.length) throw new CimbenchError('INTERNAL', `flat parameters have ${flat.length} values, the network ${at}`);
}

function checkCompatible(net: SpecNetwork, data: ImageDataset, what: string): void {
  const [h, w, c] = net.spec.input;
  if (data.height !== h || data.width !== w || data.channels !== c) {
    throw new InputError('INVALID_INPUT', `${data.name} images are ${data.height}x${data.width}x${data.channels} but network ${net.spec.name} takes ${h}x${w}x${c}`, {
      where: what,
    });
  }
  if (data.classes > net.spec.classes) {
    throw new InputError('INVALID_INPUT', `${data.name} has ${data.classes} classes but network ${net.spec.name} outputs ${net.spec.classes}`, { where: what });
  }
}

/** Accuracy and mean loss over a dataset, in batches (inference only: quantisers in eval mode). */
export function evaluate(net: SpecNetwork, data: ImageDataset, batchSize = 500): EvalResult {
  checkCompatible(net, data, 'evaluation data');
  const [h, w, c] = net.spec.input;
  let correct = 0;
  let lossSum = 0;
  for (let start = 0; start < data.count; start += batchSize) {
    const end = Math.min(data.count, start + batchSize);
    const { images, labels } = gatherBatch(data, null, start, end);
    const n = end - start;
    const out = tf.tidy(() => {
      const logits = net.apply(tf.tensor4d(images, [n, h, w, c]), false);
      const y = tf.tensor1d(labels, 'int32');
      const loss = classificationLoss(logits, y, net.spec.classes).mul(n);
      const hits = tf.equal(tf.argMax(logits, 1).toInt(), y).sum();
      return tf.stack([loss, hits.toFloat()]);
    });
    const v = out.dataSync();
    out.dispose();
    lossSum += v[0] as number;
    correct += v[1] as number;
  }
  return { accuracy: data.count > 0 ? correct / data.count : 0, loss: data.count > 0 ? lossSum / data.count : 0, count: data.count };
}

function abortError(): CimbenchError {
  return new CimbenchError('ABORTED', 'training was cancelled');
}

/** Trains `net` in place. Calibrates the LSQ steps on the first batch if that was not done yet. */
export async function trainNetwork(net: SpecNetwork, data: ImageDataset, options: TrainOptions): Promise<TrainResult> {
  checkCompatible(net, data, 'training data');
  const epochs = options.epochs;
  if (!Number.isInteger(epochs) || epochs < 1) throw new InputError('INVALID_INPUT', `epochs must be a positive integer, got ${epochs}`, { where: 'epochs' });
  const batchSize = options.batchSize ?? 128;
  const baseLr = options.learningRate ?? 2e-3;
  const schedule = options.schedule ?? 'cosine';
  const weightDecay = options.weightDecay ?? 0;
  const labelSmoothing = options.labelSmoothing ?? 0;
  const workers = Math.max(1, Math.floor(options.workers ?? 1));
  const perEpoch = Math.max(1, Math.floor(options.imagesPerEpoch ?? data.count));
  const augment = options.augment;
  const batchesPerEpoch = Math.ceil(perEpoch / batchSize);
  const totalSteps = batchesPerEpoch * epochs;
  const warmup = options.warmupSteps ?? Math.min(200, Math.floor(totalSteps * 0.05));
  const rng = new Rng(options.seed ?? 1);
  const [h, w, c] = net.spec.input;

  const params = net.parameters();
  const vars = params.map((p) => p.variable);
  const adam = new Adam(vars, params.map((p) => p.kind === 'weight'));
  const startEpoch = Math.max(0, Math.floor(options.startEpoch ?? 0));
  if (options.optimizerState) adam.setState(options.optimizerState);
  const pool = workers > 1 ? await DataParallelPool.start(net, workers - 1, options.backend) : undefined;
  // One epoch's image order: ceil(perEpoch / count) shuffled passes, cut at perEpoch.
  const order = new Int32Array(Math.ceil(perEpoch / data.count) * data.count);
  const history: EpochInfo[] = [];
  const t0 = performance.now();
  let step = startEpoch * batchesPerEpoch;
  let imagesSeen = 0;
  // Replays the skipped epochs' forks so later epochs shuffle exactly as in an uninterrupted run.
  for (let epoch = 0; epoch < Math.min(startEpoch, epochs); epoch++) rng.fork(epoch);

  try {
    for (let epoch = startEpoch; epoch < epochs; epoch++) {
      const er = rng.fork(epoch);
      for (let pass = 0; pass * data.count < order.length; pass++) {
        const at = pass * data.count;
        for (let i = 0; i < data.count; i++) order[at + i] = i;
        for (let i = data.count - 1; i > 0; i--) {
          const j = er.int(i + 1);
          const tmp = order[at + i] as number;
          order[at + i] = order[at + j] as number;
          order[at + j] = tmp;
        }
      }
      const augmentRng = er.fork(1);
      const e0 = performance.now();
      let lossSum = 0;
      let epochImages = 0;
      for (let b = 0; b < batchesPerEpoch; b++) {
        if (options.signal?.aborted) throw abortError();
        const b0 = performance.now();
        const start = b * batchSize;
        const end = Math.min(perEpoch, start + batchSize);
        const n = end - start;
        if (!net.quantCalibrated && net.quant) {
          const cal = gatherBatch(data, order, start, end);
          const x = tf.tensor4d(cal.images, [n, h, w, c]);
          net.calibrate(x);
          x.dispose();
        }
        const lr = learningRateAt(step, totalSteps, baseLr, schedule, warmup);
        const batch = gatherBatch(data, order, start, end);
        if (augment) augmentBatch(batch.images, n, h, w, c, augment, augmentRng);
        const { loss, grads } = pool
          ? await pool.step(net, batch.images, batch.labels, labelSmoothing)
          : shardGradients(net, batch.images, batch.labels, labelSmoothing);
        const gradTensors: tf.Tensor[] = [];
        let at = 0;
        for (const v of vars) {
          gradTensors.push(tf.tensor(grads.subarray(at, at + v.size), v.shape));
          at += v.size;
        }
        adam.apply(gradTensors, lr, weightDecay);
        for (const g of gradTensors) g.dispose();
        if (net.quant) net.clampSteps();
        step++;
        lossSum += loss * n;
        epochImages += n;
        imagesSeen += n;
        if (!Number.isFinite(loss)) throw new CimbenchError('INTERNAL', `training diverged: loss ${loss} at epoch ${epoch}, batch ${b}`);
        await options.onBatchEnd?.({
          epoch,
          batch: b,
          batchesPerEpoch,
          step,
          loss,
          learningRate: lr,
          imagesPerSecond: n / ((performance.now() - b0) / 1000),
        });
      }
      const seconds = (performance.now() - e0) / 1000;
      const info: EpochInfo = {
        epoch,
        loss: lossSum / Math.max(1, epochImages),
        images: epochImages,
        seconds,
        imagesPerSecond: epochImages / seconds,
        ...(options.validation ? { validation: evaluate(net, options.validation) } : {}),
      };
      history.push(info);
      await options.onEpochEnd?.(info);
      if (options.onCheckpoint) await options.onCheckpoint(epoch + 1, adam.getState());
    }
  } finally {
    adam.dispose();
    await pool?.close();
  }
  return { epochs: history, steps: step, images: imagesSeen, seconds: (performance.now() - t0) / 1000, workers };
}
