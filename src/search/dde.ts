import * as tf from '@tensorflow/tfjs';
import { CimbenchError } from '../common/errors.js';
import { Rng } from '../common/rng.js';
import { classificationLoss, gatherBatch, learningRateAt } from '../nn/index.js';
import type { ImageDataset, QuantOptions, SpecNetwork } from '../nn/index.js';
import type { Shape } from '../spec/analyze.js';
import { allLayerOptions, type SignificanceMatrix } from './significance.js';
import type { SearchSpace } from './space.js';
import { SparseAdam, SupernetStage } from './supernet.js';
import { searchableLayerIndex } from './teacher.js';

/**
 * DDE-GSCST (NAS4CIM Algorithm 1): decoupled, distillation-enhanced, gradient-based significance
 * coefficient supernet training, one stage at a time against a trained teacher T:
 *
 *   for stage i: S_i (all operators of layer i mixed by softmax(alpha_i)) replaces T_i; every
 *   teacher parameter stays frozen (only theta_i and alpha_i are ever passed to the optimisers).
 *   Per batch x:  f_T = T_1..i(x);  f_S = S_i(T_1..i-1(x));  y_S = T_i+1..L(f_S)
 *     theta step on CE(y_S) + lambda * MSE(f_S, f_T), alpha frozen (not in the gradient list);
 *     forward again with the new theta, alpha step on CE(y_S) only, theta frozen.
 *   Stop when the stage's image budget is used.  Output: softmax(alpha_i) per layer.
 *
 * T_1..i-1(x) and f_T do not depend on anything trained here, so they are computed once per batch
 * outside the gradient tapes. Quantisation-aware: S_i quantises its input and weights with LSQ
 * (bit widths of the hardware profile); the teacher is float.
 */

export interface DdeOptions {
  /** Training images per stage (batches of `batchSize`, reshuffled each pass over the data). */
  readonly imagesPerStage: number;
  readonly batchSize: number;
  /** Weight of the feature-distillation term. */
  readonly lambda: number;
  /** theta: Adam, linear warm-up then cosine decay. */
  readonly learningRate: number;
  /** alpha: Adam, constant. */
  readonly alphaLearningRate: number;
  readonly quant: QuantOptions | null;
  readonly seed: number;
  readonly signal?: AbortSignal;
  readonly onStep?: (layer: number, step: number, steps: number, loss: number) => void;
}

export interface DdeStageResult {
  readonly layer: number;
  readonly alpha: number[];
  /** softmax(alpha), in layerOptions order. */
  readonly significance: number[];
  readonly steps: number;
  readonly images: number;
  readonly seconds: number;
  /** Mean over the last quarter of the steps. */
  readonly finalLoss: number;
  readonly finalCe: number;
}

/** Batches of a shuffled order that reshuffles at every pass over the data. */
export class BatchStream {
  private order: Int32Array;
  private at = 0;
  private pass = 0;

  constructor(
    private readonly data: ImageDataset,
    private readonly rng: Rng,
    /** Images 0..limit-1 only (the rest may be a validation split). */
    private readonly limit = data.count,
  ) {
    this.order = new Int32Array(limit);
    this.shuffle();
  }

  private shuffle(): void {
    for (let i = 0; i < this.order.length; i++) this.order[i] = i;
    const r = this.rng.fork(this.pass++);
    for (let i = this.order.length - 1; i > 0; i--) {
      const j = r.int(i + 1);
      const t = this.order[i] as number;
      this.order[i] = this.order[j] as number;
      this.order[j] = t;
    }
    this.at = 0;
  }

  next(n: number): { images: Float32Array; labels: Int32Array } {
    if (this.at + n > this.order.length) this.shuffle();
    const end = Math.min(this.order.length, this.at + n);
    const b = gatherBatch(this.data, this.order, this.at, end);
    this.at = end;
    return b;
  }
}

function aborted(): CimbenchError {
  return new CimbenchError('ABORTED', 'search was cancelled');
}

/** The input shape of searchable layer `layer` in the teacher. */
export function stageInputShape(teacher: SpecNetwork, space: SearchSpace, layer: number): Shape {
  const la = teacher.analysis.layers[searchableLayerIndex(space, layer)];
  if (!la) throw new RangeError(`layer ${layer} is not in the teacher`);
  return la.inShape;
}

/** Runs DDE-GSCST for one stage; returns the trained stage (caller disposes) and its result. */
export async function ddeStage(
  teacher: SpecNetwork,
  space: SearchSpace,
  layer: number,
  data: ImageDataset,
  opts: DdeOptions,
): Promise<{ stage: SupernetStage; result: DdeStageResult }> {
  const t0 = performance.now();
  const li = searchableLayerIndex(space, layer);
  const end = teacher.spec.layers.length;
  const classes = teacher.spec.classes;
  const [h, w, c] = teacher.spec.input;
  const stage = new SupernetStage({ space, layer, inShape: stageInputShape(teacher, space, layer), quant: opts.quant, seed: opts.seed * 7919 + layer, inputGrad: false });
  const theta = stage.thetaVariables();
  const thetaOpt = new SparseAdam();
  const alphaOpt = new SparseAdam();
  const stream = new BatchStream(data, new Rng(opts.seed).fork(layer));
  const steps = Math.max(1, Math.ceil(opts.imagesPerStage / opts.batchSize));
  const warmup = Math.min(50, Math.floor(steps * 0.1));
  const tail = Math.max(1, Math.floor(steps / 4));
  let lossSum = 0;
  let ceSum = 0;
  let images = 0;
  // Frozen teacher: its convs skip their filter gradients (only dx flows back to f_S).
  const teacherVars = teacher.trainableVariables();
  const wasTrainable = teacherVars.map((v) => v.trainable);
  for (const v of teacherVars) v.trainable = false;
  try {
    for (let step = 0; step < steps; step++) {
      if (opts.signal?.aborted) throw aborted();
      const batch = stream.next(opts.batchSize);
      const n = batch.labels.length;
      images += n;
      const [fPrev, fT] = tf.tidy(() => {
        const x = tf.tensor4d(batch.images, [n, h, w, c]);
        const prev = teacher.applyLayers(x, 0, li);
        return [prev, teacher.applyLayers(prev, li, li + 1)];
      }) as [tf.Tensor4D, tf.Tensor4D];
      if (step === 0) stage.calibrate(fPrev);
      const y = tf.tensor1d(batch.labels, 'int32');
      const lr = learningRateAt(step, steps, opts.learningRate, 'cosine', warmup);
      const losses = tf.tidy(() => {
        const logits = (fS: tf.Tensor4D): tf.Tensor2D => teacher.applyLayers(fS, li + 1, end).reshape([n, classes]);
        // theta step: CE + lambda * MSE(f_S, f_T); alpha enters as a constant.
        const wStep = tf.variableGrads(() => {
          const fS = stage.forwardMixed(fPrev, tf.softmax(stage.alpha) as tf.Tensor1D);
          const ce = classificationLoss(logits(fS), y, classes);
          return tf.add(ce, tf.mul(tf.losses.meanSquaredError(fT, fS), opts.lambda)) as tf.Scalar;
        }, theta);
        thetaOpt.apply(theta, wStep.grads, lr);
        stage.clampSteps();
        // Forward again with the updated theta; alpha step on CE only (theta not in the list).
        const aStep = tf.variableGrads(() => classificationLoss(logits(stage.forwardMixed(fPrev, tf.softmax(stage.alpha) as tf.Tensor1D)), y, classes), [stage.alpha]);
        alphaOpt.apply([stage.alpha], aStep.grads, opts.alphaLearningRate);
        return tf.stack([wStep.value, aStep.value]);
      });
      const v = losses.dataSync();
      tf.dispose([losses, fPrev, fT, y]);
      const loss = v[0] as number;
      if (!Number.isFinite(loss)) throw new CimbenchError('INTERNAL', `DDE-GSCST diverged: loss ${loss} at stage ${layer + 1}, step ${step}`);
      if (step >= steps - tail) {
        lossSum += loss;
        ceSum += v[1] as number;
      }
      opts.onStep?.(layer, step + 1, steps, loss);
      // Yield so Ctrl-C (SIGINT) handlers and progress output can run between steps.
      if (step % 4 === 3) await new Promise<void>((r) => setImmediate(r));
    }
  } catch (err) {
    stage.dispose();
    throw err;
  } finally {
    teacherVars.forEach((v, i) => {
      v.trainable = wasTrainable[i] as boolean;
    });
    thetaOpt.dispose();
    alphaOpt.dispose();
  }
  const alpha = Array.from(stage.alpha.dataSync());
  return {
    stage,
    result: {
      layer,
      alpha,
      significance: stage.probabilities(),
      steps,
      images,
      seconds: (performance.now() - t0) / 1000,
      finalLoss: lossSum / tail,
      finalCe: ceSum / tail,
    },
  };
}

/** The task-significance matrix (softmax of each stage's alphas, layerOptions order). */
export function taskSignificance(space: SearchSpace, stages: readonly DdeStageResult[], meta: Record<string, unknown>): SignificanceMatrix {
  const options = allLayerOptions(space);
  return {
    kind: 'task',
    space: space.name,
    meta: { method: 'dde-gscst', ...meta },
    layers: options.map((row, i) => {
      const s = stages.find((r) => r.layer === i);
      if (!s || s.significance.length !== row.length) throw new CimbenchError('INTERNAL', `no DDE-GSCST result for layer ${i}`);
      return { options: row, values: s.significance };
    }),
  };
}
