import * as tf from '@tensorflow/tfjs';
import { CimbenchError } from '../common/errors.js';
import { Rng } from '../common/rng.js';
import type { HardwareProfile } from '../hardware/index.js';
import { buildNetwork, classificationLoss, gatherBatch, learningRateAt, takeDataset } from '../nn/index.js';
import type { ImageDataset, QuantOptions, SpecNetwork } from '../nn/index.js';
import { BatchStream } from './dde.js';
import { scoreChoices, type ScoredCandidate } from './hardware-stage.js';
import { nsga2Async, type Individual } from './nsga2.js';
import { PRESETS, type SelectionWeights } from './select.js';
import { allLayerOptions } from './significance.js';
import type { SearchSpace } from './space.js';
import { SparseAdam, SupernetStage } from './supernet.js';
import { searchableLayerIndex, teacherChoices, teacherSpec } from './teacher.js';

/**
 * The baseline (rram-nas-edge-compilation's recipe): a single-path one-shot supernet (SPOS,
 * Guo et al. 2020) trained with one uniformly random path per batch, then NSGA-II over
 * (1 - accuracy with inherited supernet weights on a held-out validation split, simulator EDP),
 * candidates that do not fit the macro excluded. The supernet uses the same stages as DDE-GSCST
 * (same operators, same width sharing, same LSQ quantisation) inside a frame with the teacher's
 * skeleton (stem and head trained jointly here; there is no teacher), so the two methods differ
 * only in how the supernet is trained and how the network is picked.
 */

export interface SposOptions {
  /** Supernet training images in total (equal to DDE-GSCST's images per stage x stages). */
  readonly images: number;
  readonly batchSize: number;
  readonly learningRate: number;
  /** The last `validationImages` of the training set are held out for NSGA-II's accuracy. */
  readonly validationImages: number;
  readonly quant: QuantOptions | null;
  readonly seed: number;
  readonly signal?: AbortSignal;
  readonly onStep?: (step: number, steps: number, loss: number) => void;
}

/**
 * Per-channel RMS normalisation over the batch and positions, without centring (stage outputs
 * follow a ReLU and feed unsigned input quantisers) and without parameters. Paths of this
 * batch-norm-free supernet differ in output scale by large factors (a residual 5x5/64 against a
 * conv 3x3/16, or the null op), so with one random path per batch the shared head sees a new
 * scale every step. SPOS keeps batch norm in its supernet for the same reason; this is its
 * parameter-free form. Measured on FashionMNIST, batch 64, Adam 3e-3: without it (and without the
 * slower LSQ step rate below) the loss stayed at ln 10 = 2.30 for 300 steps; with both it fell
 * to 2.04 (any single fixed path reaches ~1 within 60 steps). Masked (zero) channels stay zero.
 * Used only inside the supernet: the retrained network is the plain spec.
 */
function rmsNormalise(h: tf.Tensor4D): tf.Tensor4D {
  const ms = tf.mean(tf.square(h), [0, 1, 2], true);
  return tf.div(h, tf.sqrt(tf.add(ms, 1e-6)));
}

export class SposSupernet {
  readonly frame: SpecNetwork;
  readonly stages: SupernetStage[];
  private readonly first: number;
  private readonly afterLast: number;

  constructor(
    readonly space: SearchSpace,
    quant: QuantOptions | null,
    seed: number,
  ) {
    this.frame = buildNetwork(teacherSpec(space), { quant, seed });
    this.first = searchableLayerIndex(space, 0);
    this.afterLast = searchableLayerIndex(space, space.strides.length);
    this.stages = space.strides.map(
      (_, i) =>
        new SupernetStage({
          space,
          layer: i,
          inShape: (this.frame.analysis.layers[searchableLayerIndex(space, i)] as { inShape: readonly [number, number, number] }).inShape,
          quant,
          seed: seed * 7919 + i,
          // Later stages pass gradients back to the earlier ones; the first one reads the stem's
          // output, which needs them only if the stem has parameters.
          inputGrad: i > 0 || this.frame.analysis.layers.slice(0, this.first).some((l) => l.matrices.length > 0),
        }),
    );
  }

  /** Stem and head parameters of the frame (its searchable layers are replaced by the stages). */
  frameVariables(): tf.Variable[] {
    return this.frame
      .parameters()
      .filter((p) => {
        const m = /^layers\[(\d+)\]/.exec(p.name);
        const li = m ? Number(m[1]) : -1;
        return li < this.first || li >= this.afterLast;
      })
      .map((p) => p.variable);
  }

  /** Every LSQ step variable (frame and stages). */
  stepVariables(): Set<tf.Variable> {
    const out = new Set<tf.Variable>();
    for (const p of this.frame.parameters()) if (p.kind === 'weightStep' || p.kind === 'activationStep') out.add(p.variable);
    for (const s of this.stages) for (const p of s.parameters()) if (p.kind === 'step') out.add(p.variable);
    return out;
  }

  logits(x: tf.Tensor4D, path: readonly number[]): tf.Tensor2D {
    let h = this.frame.applyLayers(x, 0, this.first);
    this.stages.forEach((s, i) => {
      h = rmsNormalise(s.forwardPath(h, path[i] as number));
    });
    const out = this.frame.applyLayers(h, this.afterLast, this.frame.spec.layers.length);
    return out.reshape([x.shape[0], this.frame.spec.classes]);
  }

  /**
   * LSQ steps from one batch: the frame's own (teacher-shaped) forward pass, then each stage on the
   * output of the previous stage's teacher-like option. Calibrating on a real path matters: on the
   * softmax-uniform mixture the activations are several times smaller, the steps come out too
   * small, and Adam (which moves every parameter by about the learning rate) drives them through
   * zero within a few steps, killing the path.
   */
  calibrate(x: tf.Tensor4D): void {
    this.frame.calibrate(x);
    const reference = teacherChoices(this.space);
    tf.tidy(() => {
      let h = this.frame.applyLayers(x, 0, this.first);
      this.stages.forEach((s, i) => {
        s.calibrate(h);
        const t = reference[i];
        const option = s.options.findIndex((o) => o.op === t?.op && o.kernel === t.kernel && o.out === t.out);
        h = rmsNormalise(s.forwardPath(h, Math.max(0, option)));
      });
    });
  }

  /** Accuracy of one path on a dataset (eval mode, batches of 500). */
  accuracy(data: ImageDataset, path: readonly number[]): number {
    const [h, w, c] = this.frame.spec.input;
    let correct = 0;
    for (let start = 0; start < data.count; start += 500) {
      const end = Math.min(data.count, start + 500);
      const b = gatherBatch(data, null, start, end);
      const hits = tf.tidy(() => {
        const logits = this.logits(tf.tensor4d(b.images, [end - start, h, w, c]), path);
        return tf.equal(tf.argMax(logits, 1).toInt(), tf.tensor1d(b.labels, 'int32')).sum();
      });
      correct += hits.dataSync()[0] as number;
      hits.dispose();
    }
    return data.count > 0 ? correct / data.count : 0;
  }

  getValues(): Map<string, Float32Array> {
    const out = this.frame.getParameterValues();
    for (const s of this.stages) for (const [k, v] of s.getValues()) out.set(k, v);
    return out;
  }

  setValues(values: ReadonlyMap<string, Float32Array>, where: string): void {
    const frameValues = new Map([...values].filter(([k]) => k.startsWith('layers[')));
    this.frame.setParameterValues(frameValues, where);
    for (const s of this.stages) s.setValues(values, where);
  }

  dispose(): void {
    this.frame.dispose();
    for (const s of this.stages) s.dispose();
  }
}

/**
 * LSQ steps learn at a tenth of the weights' rate here. Adam moves every parameter by about the
 * learning rate per step whatever its gradient scale (LSQ's gradient scaling assumes SGD), and a
 * step of ~0.02 shared by very different random paths otherwise collapses towards zero within a
 * few dozen steps (measured: input steps of 0.03 fell to 8e-4 in 60 steps).
 */
const STEP_LR_SCALE = 0.1;

/** Trains the supernet with a uniformly random path per batch. */
export async function trainSpos(net: SposSupernet, data: ImageDataset, opts: SposOptions): Promise<{ steps: number; images: number; finalLoss: number }> {
  const [h, w, c] = net.frame.spec.input;
  const classes = net.frame.spec.classes;
  const trainCount = Math.max(1, data.count - opts.validationImages);
  const stream = new BatchStream(data, new Rng(opts.seed).fork(101), trainCount);
  const pathRng = new Rng(opts.seed).fork(202);
  const adam = new SparseAdam();
  const frameVars = net.frameVariables();
  const isStep = net.stepVariables();
  const steps = Math.max(1, Math.ceil(opts.images / opts.batchSize));
  const warmup = Math.min(50, Math.floor(steps * 0.1));
  const tail = Math.max(1, Math.floor(steps / 4));
  let lossSum = 0;
  let images = 0;
  try {
    for (let step = 0; step < steps; step++) {
      if (opts.signal?.aborted) throw new CimbenchError('ABORTED', 'search was cancelled');
      const batch = stream.next(opts.batchSize);
      const n = batch.labels.length;
      images += n;
      const x = tf.tensor4d(batch.images, [n, h, w, c]);
      const y = tf.tensor1d(batch.labels, 'int32');
      if (step === 0) net.calibrate(x);
      const path = net.stages.map((s) => pathRng.int(s.options.length));
      const vars = [...frameVars, ...net.stages.flatMap((s, i) => s.pathVariables(path[i] as number))];
      const lr = learningRateAt(step, steps, opts.learningRate, 'cosine', warmup);
      const loss = tf.tidy(() => {
        const r = tf.variableGrads(() => classificationLoss(net.logits(x, path), y, classes), vars);
        adam.apply(vars.filter((v) => !isStep.has(v)), r.grads, lr);
        adam.apply(vars.filter((v) => isStep.has(v)), r.grads, lr * STEP_LR_SCALE);
        return r.value;
      });
      const v = loss.dataSync()[0] as number;
      tf.dispose([loss, x, y]);
      if (net.frame.quant) net.frame.clampSteps();
      for (const s of net.stages) s.clampSteps();
      if (!Number.isFinite(v)) throw new CimbenchError('INTERNAL', `SPOS supernet training diverged: loss ${v} at step ${step}`);
      if (step >= steps - tail) lossSum += v;
      opts.onStep?.(step + 1, steps, v);
      if (step % 4 === 3) await new Promise<void>((r) => setImmediate(r));
    }
  } finally {
    adam.dispose();
  }
  return { steps, images, finalLoss: lossSum / tail };
}

export interface ParetoMember {
  readonly indices: readonly number[];
  readonly accuracy: number;
  readonly candidate: ScoredCandidate;
}

/**
 * NSGA-II over the supernet's paths: objectives (1 - validation accuracy, EDP), fitting candidates
 * only. Returns the Pareto front (distinct genomes).
 */
export async function nsga2Search(
  net: SposSupernet,
  hw: HardwareProfile,
  validation: ImageDataset,
  opts: { population: number; generations: number; seed: number; signal?: AbortSignal; onGeneration?: (g: number, total: number) => void },
): Promise<{ front: ParetoMember[]; evaluations: number }> {
  const space = net.space;
  const options = allLayerOptions(space);
  const scored = new Map<string, ScoredCandidate>();
  const score = (g: readonly number[]): ScoredCandidate => {
    const key = g.join(',');
    let s = scored.get(key);
    if (!s) {
      s = scoreChoices(space, hw, g, options);
      scored.set(key, s);
    }
    return s;
  };
  const accuracy = new Map<string, number>();
  const { front, evaluations } = await nsga2Async(
    async (g) => {
      // Let Ctrl-C and progress output run between evaluations.
      await new Promise<void>((r) => setImmediate(r));
      if (opts.signal?.aborted) throw new CimbenchError('ABORTED', 'search was cancelled');
      const acc = net.accuracy(validation, g);
      accuracy.set(g.join(','), acc);
      return [1 - acc, score(g).edpMsMj];
    },
    {
      cardinalities: options.map((row) => row.length),
      population: opts.population,
      generations: opts.generations,
      seed: opts.seed,
      isValid: (g) => score(g).fits,
      onGeneration: (g) => opts.onGeneration?.(g, opts.generations),
    },
  );
  return {
    front: front.map((ind: Individual) => ({
      indices: ind.genome,
      accuracy: accuracy.get(ind.genome.join(',')) ?? 1 - (ind.objectives[0] as number),
      candidate: score(ind.genome),
    })),
    evaluations,
  };
}

/**
 * Picks from the Pareto front with the same weights as NAS4CIM's selection: accuracy and EDP are
 * min-max normalised over the front (EDP on a log scale, higher is better for both) and combined
 * as w_task * accuracy + w_hw * EDP-goodness. Ties go to the more accurate member.
 */
export function pickFromFront(front: readonly ParetoMember[], weights: SelectionWeights = PRESETS.balanced): ParetoMember {
  if (front.length === 0) throw new CimbenchError('INTERNAL', 'empty Pareto front');
  const accs = front.map((m) => m.accuracy);
  const edps = front.map((m) => Math.log(m.candidate.edpMsMj));
  const [aLo, aHi] = [Math.min(...accs), Math.max(...accs)];
  const [eLo, eHi] = [Math.min(...edps), Math.max(...edps)];
  const norm = (v: number, lo: number, hi: number): number => (hi > lo ? (v - lo) / (hi - lo) : 1);
  let best = front[0] as ParetoMember;
  let bestScore = -Infinity;
  front.forEach((m, i) => {
    const s = weights.task * norm(accs[i] as number, aLo, aHi) + weights.hardware * (1 - norm(edps[i] as number, eLo, eHi));
    if (s > bestScore + 1e-12 || (Math.abs(s - bestScore) <= 1e-12 && m.accuracy > best.accuracy)) {
      best = m;
      bestScore = s;
    }
  });
  return best;
}

/** The held-out validation split used by NSGA-II (the last images of the training set). */
export function validationSplit(data: ImageDataset, images: number): ImageDataset {
  const n = Math.min(images, Math.max(0, data.count - 1));
  return takeDataset(data, n, data.count - n);
}
