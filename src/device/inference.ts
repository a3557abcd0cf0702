import * as tf from '@tensorflow/tfjs';
import { CimbenchError, InputError } from '../common/errors.js';
import { Rng } from '../common/rng.js';
import { adcFullScaleUa, rowsPerBlock, type HardwareProfile } from '../hardware/index.js';
import type { ImageDataset, WeightImage, WeightImageMatrix } from '../nn/index.js';
import { convGeometry } from '../nn/index.js';
import type { NetworkAnalysis, WeightMatrix } from '../spec/index.js';
import {
  STUCK_NONE,
  applyKnownCells,
  cellLayout,
  conductanceAt,
  programCells,
  readSigmaRelative,
  weightsToTargets,
  type CellLayout,
  type ProgrammedCells,
} from './conductance.js';
import { columnTrims, knownCells, noiseProfileHash, type NoiseProfile } from './profile.js';

/**
 * Noise-aware simulated inference of a quantised network on the macro: what the bench predicts
 * before it programs a chip.
 *
 * Per Monte Carlo seed (one programming event): every matrix's cells get programming noise,
 * stuck faults and drift coefficients (src/device/conductance.ts); each array's ADC columns get a
 * gain and offset error. At each time after programming, conductances relax; every batch of
 * images is one read epoch with fresh read noise. Each matrix is computed as the macro does:
 * inputs quantised to integer levels and applied bit-serially (1-bit DACs); per array (row block)
 * and physical column (slice, polarity) the current V_read * sum(bit * G) is converted by the ADC
 * (gain, offset, Gaussian noise, rounding, clipping at full scale); codes are shift-added over
 * input bits and slices, the negative member of each pair subtracted, row blocks summed, and
 * the result scaled back to weight units with the nominal step (no calibration: a real host
 * does not know the errors). IR drop scales each column current by (1 - factor * I / I_max).
 * Everything after the MVMs (bias, activation, skip additions, pooling) is digital, as on chip,
 * and mirrors src/nn's forward pass so the noise-free result equals the trained network.
 *
 * Drift compensation (optional): the first batch at the first time point is the reference;
 * later, each matrix column is multiplied by mean|acc_ref| / mean|acc_t| measured on that batch.
 */

export interface OnChipSimulationOptions {
  readonly seeds: readonly number[];
  /** Seconds after programming; evaluated in ascending order. */
  readonly timesS: readonly number[];
  readonly driftCompensation?: boolean;
  /** Images per read epoch (default 100). */
  readonly batchSize?: number;
  /** Evaluate only the first N images of the dataset. */
  readonly maxImages?: number;
  readonly onProgress?: (done: number, total: number) => void;
  /**
   * Where each matrix's tiles sit on the chip (the compiler's placements). With them, columns for
   * which the profile has measured ADC trims (adc.columns) use those instead of random draws, and
   * cells the profile knows (stuck.cells) are stuck exactly where the chip's are.
   */
  readonly placements?: readonly ColumnPlacement[];
  /**
   * Conductances to use instead of the noise model's, per matrix and time index (planes as
   * weightsToTargets lays them out, NaN where unknown): e.g. a run's read-backs, so the prediction
   * is conditioned on what one chip holds and only the inference path (read noise, ADC, IR drop)
   * is simulated. A NaN cell falls back to the model's draw; `stuck` marks cells known stuck.
   */
  readonly conductances?: GivenConductances;
  /**
   * With `conductances`: a time index that has none for a matrix takes the latest earlier given
   * ones plus each cell's change under the model since that time (the seed's relaxation draw). So
   * one read-back, e.g. the first after programming, predicts the later drift points.
   */
  readonly carryGiven?: boolean;
}

/** Conductances given per time index (of the ascending times) and matrix; plain data, so it can go to a worker thread. */
export type GivenConductances = ReadonlyArray<ReadonlyArray<{ readonly valuesUs: Float32Array; readonly stuck?: Uint8Array } | undefined> | undefined>;


/** One tile of a matrix on the chip: plane (slice, polarity), source rows/columns, array columns. */
export interface ColumnPlacement {
  readonly matrix: number;
  readonly array: number;
  /** First array row and column of the tile. */
  readonly row: number;
  readonly rows: number;
  readonly col: number;
  readonly cols: number;
  /** First matrix row (the row block's start) and first output column of the tile. */
  readonly srcRow: number;
  readonly srcCol: number;
  readonly slice: number;
  readonly polarity: 'pos' | 'neg';
}

export interface AccuracySpread {
  readonly mean: number;
  readonly std: number;
  readonly perSeed: readonly number[];
}

export interface MatrixStatistics {
  readonly name: string;
  readonly layer: number;
  readonly role: string;
  readonly cells: number;
  readonly stuckFraction: number;
  /** Conductance minus target over healthy cells (uS), mean and std over seeds' cells. */
  readonly conductanceErrorUs: { readonly mean: number; readonly std: number };
  /** Fraction of ADC conversions at full scale. */
  readonly adcClipFraction: number;
  /** RMS of (chip output - exact integer output) / RMS of the exact output, same inputs. */
  readonly relativeOutputError: number;
}

export interface TimePointResult {
  readonly tS: number;
  readonly accuracy: AccuracySpread;
  readonly matrices: readonly MatrixStatistics[];
}

export interface OnChipSimulationResult {
  readonly images: number;
  /** Integer arithmetic with exact accumulation: the quantised network without the macro. */
  readonly digitalAccuracy: number;
  readonly times: readonly TimePointResult[];
  readonly noiseProfile: { readonly name: string; readonly sha256: string };
  readonly seeds: readonly number[];
  readonly driftCompensation: boolean;
}

interface MatrixPlan {
  readonly index: number;
  readonly image: WeightImageMatrix;
  readonly spec: WeightMatrix;
  readonly rows: number;
  readonly cols: number;
  readonly targets: Float32Array;
  readonly blocks: ReadonlyArray<readonly [number, number]>;
  /** ADC LSB (uA) of this matrix's conversions (hardware adc.range). */
  readonly lsbUa: number;
  readonly levels: tf.Tensor2D;
  readonly scale: tf.Tensor;
  readonly bias: tf.Tensor1D;
}

/** Per-seed state of one matrix. */
interface MatrixChip {
  readonly cells: ProgrammedCells;
  /** ADC gain and offset (LSB) per row block, per physical column [planes * cols]. */
  readonly gain: Float32Array[];
  readonly offset: Float32Array[];
  referenceMeanAbs?: Float32Array;
}

/** Running sums for one matrix at one time point of one seed. */
export interface MatrixAccumulator {
  conversions: number;
  clipped: number;
  errSq: number;
  refSq: number;
  gErr: number;
  gErrSq: number;
  gCount: number;
  stuck: number;
  cells: number;
}

function newAccumulator(): MatrixAccumulator {
  return { conversions: 0, clipped: 0, errSq: 0, refSq: 0, gErr: 0, gErrSq: 0, gCount: 0, stuck: 0, cells: 0 };
}

/** Cell i of a matrix's planes -> its (array, row, col) on the chip, from the tile placements. */
function arrayCellOf(p: MatrixPlan, placements: readonly ColumnPlacement[], layout: CellLayout): (i: number) => readonly [number, number, number] | undefined {
  const planeSize = p.rows * p.cols;
  const at = new Int32Array(p.targets.length).fill(-1);
  const cells: Array<readonly [number, number, number]> = [];
  for (const pl of placements) {
    if (pl.matrix !== p.index) continue;
    const q = pl.slice * layout.pair + (pl.polarity === 'neg' ? 1 : 0);
    for (let r = 0; r < pl.rows; r++) {
      for (let c = 0; c < pl.cols; c++) {
        at[q * planeSize + (pl.srcRow + r) * p.cols + pl.srcCol + c] = cells.length;
        cells.push([pl.array, pl.row + r, pl.col + c]);
      }
    }
  }
  return (i) => {
    const k = at[i] as number;
    return k >= 0 ? cells[k] : undefined;
  };
}

function matrixFor(net: NetworkAnalysis, m: WeightImageMatrix): WeightMatrix {
  const sm = net.layers[m.info.layer]?.matrices.find((x) => x.role === m.info.role);
  if (!sm || sm.rows !== m.info.rows || sm.outChannels !== m.info.cols) {
    throw new InputError('INVALID_INPUT', `weight image matrix ${m.info.name} does not match network ${net.spec.name}`, { where: 'weight image' });
  }
  return sm;
}

export function simulateOnChip(
  net: NetworkAnalysis,
  image: WeightImage,
  hw: HardwareProfile,
  noise: NoiseProfile,
  data: ImageDataset,
  opts: OnChipSimulationOptions,
): OnChipSimulationResult {
  return finishSimulation(image, noise, opts, [simulateShare(net, image, hw, noise, data, opts, true)]);
}

/**
 * What one share of the seeds computed: per time point (ascending), each seed's accuracy and
 * per-matrix sums, in the order of the share's seeds. Plain data (it crosses worker threads).
 */
export interface SimulationShare {
  readonly images: number;
  /** Correct digital-reference predictions, when this share computed the reference. */
  readonly digitalCorrect: number | undefined;
  readonly perTime: ReadonlyArray<{ readonly correct: readonly number[]; readonly stats: ReadonlyArray<readonly MatrixAccumulator[]> }>;
}

/** Progress units of a whole simulation: one per batch of the reference and of every seed and time. */
export function simulationWork(data: ImageDataset, opts: OnChipSimulationOptions): number {
  const count = Math.min(data.count, opts.maxImages ?? data.count);
  const batches = Math.ceil(count / (opts.batchSize ?? 100));
  return opts.seeds.length * opts.timesS.length * batches + batches;
}

/** Simulates opts.seeds (and the digital reference when `digital`); progress counts this share's own work. */
export function simulateShare(
  net: NetworkAnalysis,
  image: WeightImage,
  hw: HardwareProfile,
  noise: NoiseProfile,
  data: ImageDataset,
  opts: OnChipSimulationOptions,
  digital: boolean,
): SimulationShare {
  if (hw.dac.bits !== 1) throw new InputError('INVALID_INPUT', 'simulated inference models 1-bit DACs only', { where: 'dac.bits' });
  if (opts.seeds.length === 0 || opts.timesS.length === 0) throw new InputError('INVALID_INPUT', 'needs at least one seed and one time point');
  const layout = cellLayout(hw);
  const planes = layout.slices * layout.pair;
  const times = [...opts.timesS].sort((a, b) => a - b);
  const count = Math.min(data.count, opts.maxImages ?? data.count);
  const batchSize = opts.batchSize ?? 100;
  const [h, w, c] = net.spec.input;
  const adcMax = 2 ** hw.adc.bits - 1;
  const maxColumnUa = hw.array.rows * hw.conductance.readVoltageV * hw.conductance.maxUs;
  const readRel = (t: number): number => readSigmaRelative(noise, t);
  const trimAt = noise.adc.columns && opts.placements ? columnTrims(noise) : undefined;
  const known = opts.placements ? knownCells(noise) : undefined;

  const plans: MatrixPlan[] = image.matrices.map((m, index) => {
    const spec = matrixFor(net, m);
    const perBlock = rowsPerBlock(spec, hw);
    const blocks: Array<readonly [number, number]> = [];
    for (let r0 = 0; r0 < m.info.rows; r0 += perBlock) blocks.push([r0, Math.min(m.info.rows, r0 + perBlock)]);
    return {
      index,
      image: m,
      spec,
      rows: m.info.rows,
      cols: m.info.cols,
      targets: weightsToTargets(m.levels, m.info.rows, m.info.cols, layout),
      blocks,
      lsbUa: adcFullScaleUa(hw, Math.min(m.info.rows, perBlock)) / 2 ** hw.adc.bits,
      levels: tf.tensor2d(Float32Array.from(m.levels), [m.info.rows, m.info.cols]),
      scale: tf.tensor1d(m.scales),
      bias: tf.tensor1d(m.bias),
    };
  });
  const cellMaps = known ? plans.map((p) => arrayCellOf(p, opts.placements ?? [], layout)) : [];
  const byLayer = new Map<number, MatrixPlan[]>();
  for (const p of plans) byLayer.set(p.image.info.layer, [...(byLayer.get(p.image.info.layer) ?? []), p]);

  // Per physical column: weight of its slice and the sign of its pair member, [planes * cols].
  const columnCoefficient = (cols: number, lsbUa: number): tf.Tensor1D => {
    // One ADC code in integer weight units of the least significant slice.
    const codeToUnits = lsbUa / (hw.conductance.readVoltageV * layout.stepUs);
    const coef = new Float32Array(planes * cols);
    for (let q = 0; q < planes; q++) {
      const slice = Math.floor(q / layout.pair);
      const sign = layout.pair === 2 && q % 2 === 1 ? -1 : 1;
      coef.fill(sign * layout.levelsPerCell ** slice * codeToUnits, q * cols, (q + 1) * cols);
    }
    return tf.tensor1d(coef);
  };
  const coefficients = plans.map((p) => columnCoefficient(p.cols, p.lsbUa));

  // Largest ADC conversion count of one bit plane of one row block of one batch, pool twice that.
  const maxConversions = Math.max(1, ...plans.map((p) => batchSize * p.spec.outShape[0] * p.spec.outShape[1] * planes * p.cols));
  const adcPoolSize = Math.max(1 << 20, 2 ** Math.ceil(Math.log2(2 * maxConversions)));

  const total = opts.seeds.length * times.length * Math.ceil(count / batchSize) + (digital ? Math.ceil(count / batchSize) : 0);
  let done = 0;
  const tick = (): void => opts.onProgress?.(++done, total);

  // ---- the forward pass, with a pluggable matrix product ----
  type MatMul = (plan: MatrixPlan, levelsIn: tf.Tensor2D) => tf.Tensor2D;

  const quantise = (x: tf.Tensor, m: WeightImageMatrix): tf.Tensor =>
    tf.clipByValue(tf.round(tf.div(x, m.info.input.step)), m.info.input.qmin, m.info.input.qmax);

  /** im2col of a [N,H,W,C] tensor into [N*Ho*Wo, k*k*C] rows in (ky, kx, cin) order. */
  const im2col = (x: tf.Tensor4D, spec: WeightMatrix): tf.Tensor2D => {
    const [n, hi, wi, ci] = x.shape;
    const k = spec.kernel;
    const s = spec.stride;
    const g = convGeometry(hi, wi, k, s, spec.padding);
    const padBottom = Math.max(0, (g.outHeight - 1) * s + k - hi - g.padTop);
    const padRight = Math.max(0, (g.outWidth - 1) * s + k - wi - g.padLeft);
    const xp = tf.pad(x, [[0, 0], [g.padTop, padBottom], [g.padLeft, padRight], [0, 0]]);
    const parts: tf.Tensor4D[] = [];
    for (let ky = 0; ky < k; ky++) {
      for (let kx = 0; kx < k; kx++) {
        parts.push(
          tf.stridedSlice(xp, [0, ky, kx, 0], [n, ky + (g.outHeight - 1) * s + 1, kx + (g.outWidth - 1) * s + 1, ci], [1, s, s, 1]) as tf.Tensor4D,
        );
      }
    }
    const patches = parts.length === 1 ? (parts[0] as tf.Tensor4D) : tf.concat(parts, 3);
    return patches.reshape([n * g.outHeight * g.outWidth, k * k * ci]);
  };

  /** One matrix on a layer input x (float NHWC): quantise, multiply, scale, bias. */
  const applyMatrix = (plan: MatrixPlan, x: tf.Tensor4D, matmul: MatMul): tf.Tensor4D => {
    const n = x.shape[0];
    const q = quantise(x, plan.image) as tf.Tensor4D;
    const spec = plan.spec;
    const rows2d = spec.role === 'dense' ? q.reshape([n, plan.rows]) : im2col(q, spec);
    const acc = matmul(plan, rows2d as tf.Tensor2D);
    const y = tf.add(tf.mul(acc, tf.mul(plan.scale, plan.image.info.input.step)), plan.bias);
    const [ho, wo] = spec.outShape;
    return y.reshape([n, ho, wo, plan.cols]);
  };

  const activate = (x: tf.Tensor4D, a: string): tf.Tensor4D => (a === 'relu' ? tf.relu(x) : a === 'relu6' ? tf.relu6(x) : x);

  const forward = (input: tf.Tensor4D, matmul: MatMul): tf.Tensor2D => {
    let x = input;
    for (const layer of net.layers) {
      const s = layer.spec;
      if (s.op === 'identity') continue;
      if (s.op === 'pool') {
        x = s.kind === 'max' ? tf.maxPool(x, s.size, s.stride ?? s.size, 'valid') : tf.avgPool(x, s.size, s.stride ?? s.size, 'valid');
        continue;
      }
      if (s.op === 'gap') {
        x = tf.mean(x, [1, 2], true);
        continue;
      }
      const mats = byLayer.get(layer.index) ?? [];
      const main = mats.filter((m) => m.spec.role !== 'projection');
      const first = mats[0] as MatrixPlan;
      // The layer input is quantised once and shared by its first matrix, projection and skip.
      const xq = tf.mul(quantise(x, first.image), first.image.info.input.step) as tf.Tensor4D;
      let hcur = xq;
      main.forEach((m, i) => {
        hcur = applyMatrix(m, hcur, matmul);
        if (i < main.length - 1) hcur = tf.relu(hcur);
      });
      if (s.op === 'residual' || s.op === 'resblock' || s.op === 'bottleneck') {
        const proj = mats.find((m) => m.spec.role === 'projection');
        hcur = tf.add(hcur, proj ? applyMatrix(proj, xq, matmul) : xq);
      }
      x = activate(hcur, layer.activation);
    }
    return x.reshape([x.shape[0], net.spec.classes]);
  };

  const exactMatMul: MatMul = (plan, levelsIn) => tf.matMul(levelsIn, plan.levels);

  const batchInput = (start: number, n: number): { x: tf.Tensor4D; labels: Uint8Array } => {
    const px = data.images.subarray(start * h * w * c, (start + n) * h * w * c);
    const x = tf.tidy(() => tf.div(tf.tensor4d(Float32Array.from(px), [n, h, w, c]), 255) as tf.Tensor4D);
    return { x, labels: data.labels.subarray(start, start + n) };
  };

  const correctIn = (logits: tf.Tensor2D, labels: Uint8Array): number => {
    const pred = tf.tidy(() => tf.argMax(logits, 1));
    const values = pred.dataSync();
    pred.dispose();
    let correct = 0;
    for (let i = 0; i < labels.length; i++) if (values[i] === labels[i]) correct++;
    return correct;
  };

  // ---- digital reference ----
  let digitalCorrect = 0;
  for (let start = 0; digital && start < count; start += batchSize) {
    const n = Math.min(batchSize, count - start);
    const { x, labels } = batchInput(start, n);
    const logits = tf.tidy(() => forward(x, exactMatMul));
    digitalCorrect += correctIn(logits, labels);
    logits.dispose();
    x.dispose();
    tick();
  }

  // ---- Monte Carlo over programming events ----
  const perTime = times.map(() => ({ correct: [] as number[], stats: [] as MatrixAccumulator[][] }));
  for (const seed of opts.seeds) {
    const rng = new Rng(seed);
    const chips: MatrixChip[] = plans.map((p) => {
      const r = rng.fork(p.index);
      const cells = programCells(p.targets, layout, noise, r);
      if (known) applyKnownCells(cells, p.targets, layout, noise, rng.fork(4000 + p.index), known, cellMaps[p.index] as (i: number) => readonly [number, number, number] | undefined);
      const gain: Float32Array[] = [];
      const offset: Float32Array[] = [];
      for (let b = 0; b < p.blocks.length; b++) {
        gain.push(Float32Array.from({ length: planes * p.cols }, () => 1 + noise.adc.gainStd * r.normal()));
        offset.push(Float32Array.from({ length: planes * p.cols }, () => noise.adc.offsetStdLsb * r.normal()));
      }
      // Measured trims replace the draws of the columns they cover (the draws are still made, so
      // the other columns' numbers do not depend on which trims exist).
      if (trimAt) {
        for (const pl of opts.placements ?? []) {
          if (pl.matrix !== p.index) continue;
          const b = p.blocks.findIndex(([r0]) => r0 === pl.srcRow);
          if (b < 0) continue;
          const q = pl.slice * layout.pair + (pl.polarity === 'neg' ? 1 : 0);
          for (let c = 0; c < pl.cols; c++) {
            const trim = trimAt(pl.array, pl.col + c);
            if (!trim) continue;
            (gain[b] as Float32Array)[q * p.cols + pl.srcCol + c] = trim.gain;
            (offset[b] as Float32Array)[q * p.cols + pl.srcCol + c] = trim.offsetLsb;
          }
        }
      }
      return { cells, gain, offset };
    });

    // ADC noise per conversion: a window of a pool of normals drawn once per seed, at a seeded
    // offset per call (tf.randomNormal per conversion was more than half of the run time).
    const adcSigma = noise.adc.noiseFullScale * 2 ** hw.adc.bits;
    const pool = adcSigma > 0 ? tf.keep(tf.mul(tf.randomNormal([adcPoolSize], 0, 1, 'float32', rng.fork(2000).nextU32()), adcSigma)) : undefined;
    const adcNoise = (shape: [number, number], seed: number): tf.Tensor => {
      const size = shape[0] * shape[1];
      const start = seed % (adcPoolSize - size + 1);
      return tf.slice(pool as tf.Tensor1D, [start], [size]).reshape(shape);
    };

    times.forEach((tS, ti) => {
      const slot = perTime[ti] as (typeof perTime)[number];
      const seedStats = plans.map(() => newAccumulator());
      slot.stats.push(seedStats);
      // Conductances at this time, per matrix, as block tensors [blockRows, planes * cols].
      const readRng = rng.fork(1000 + ti);
      const gNow = plans.map((p, mi) => {
        const chip = chips[mi] as MatrixChip;
        const g = conductanceAt(chip.cells, tS, noise);
        let givenAt = ti;
        let given = opts.conductances?.[ti]?.[mi];
        while (!given && opts.carryGiven && givenAt > 0) given = opts.conductances?.[--givenAt]?.[mi];
        let stuck = chip.cells.stuck;
        if (given) {
          if (given.valuesUs.length !== g.length) throw new InputError('INVALID_INPUT', `${given.valuesUs.length} given conductances for matrix ${p.image.info.name}, which has ${g.length} cells`, { where: 'conductances' });
          // Carried from an earlier time: the model's change of each cell since then.
          const then = givenAt < ti ? conductanceAt(chip.cells, times[givenAt] as number, noise) : undefined;
          for (let i = 0; i < g.length; i++) {
            if (!Number.isNaN(given.valuesUs[i])) g[i] = (given.valuesUs[i] as number) + (then ? (g[i] as number) - (then[i] as number) : 0);
          }
          if (given.stuck) stuck = given.stuck;
        }
        const acc = seedStats[mi] as MatrixAccumulator;
        for (let i = 0; i < g.length; i++) {
          acc.cells++;
          if (stuck[i] !== STUCK_NONE) {
            acc.stuck++;
            continue;
          }
          const e = (g[i] as number) - (p.targets[i] as number);
          acc.gErr += e;
          acc.gErrSq += e * e;
          acc.gCount++;
        }
        return p.blocks.map(([r0, r1]) => {
          const block = new Float32Array((r1 - r0) * planes * p.cols);
          const planeSize = p.rows * p.cols;
          for (let r = r0; r < r1; r++) {
            for (let q = 0; q < planes; q++) {
              block.set(g.subarray(q * planeSize + r * p.cols, q * planeSize + (r + 1) * p.cols), ((r - r0) * planes + q) * p.cols);
            }
          }
          return tf.tensor2d(block, [r1 - r0, planes * p.cols]);
        });
      });
      const gainT = chips.map((chip) => chip.gain.map((g) => tf.tensor1d(g)));
      const offsetT = chips.map((chip) => chip.offset.map((o) => tf.tensor1d(o)));
      const compensation: Array<tf.Tensor1D | undefined> = plans.map(() => undefined);
      let firstBatch = true;

      const chipMatMul: MatMul = (plan, levelsIn) => {
        const mi = plan.index;
        const chip = chips[mi] as MatrixChip;
        const stats = seedStats[mi] as MatrixAccumulator;
        const signed = plan.image.info.input.qmin < 0;
        const bits = signed ? plan.image.info.input.bits - 1 : plan.image.info.input.bits;
        const parts = signed ? [tf.relu(levelsIn), tf.relu(tf.neg(levelsIn))] : [levelsIn];
        const rel = readRel(tS);
        // Accumulated outside tidy scopes so each bit plane's intermediates are freed at once:
        // they are [vectors x physical columns] and would otherwise pile up for the whole batch.
        let acc = tf.keep(tf.zeros([levelsIn.shape[0], plan.cols])) as tf.Tensor2D;
        let clipped = tf.keep(tf.scalar(0));
        parts.forEach((part, pi) => {
          plan.blocks.forEach(([r0, r1], bi) => {
            const gBlock = (gNow[mi] as tf.Tensor2D[])[bi] as tf.Tensor2D;
            const gain = (gainT[mi] as tf.Tensor1D[])[bi] as tf.Tensor1D;
            const offset = (offsetT[mi] as tf.Tensor1D[])[bi] as tf.Tensor1D;
            // One read epoch per batch: fresh read noise on every cell.
            const gRead = tf.keep(
              tf.tidy(() => (rel > 0 ? tf.mul(gBlock, tf.add(1, tf.mul(rel, tf.randomNormal(gBlock.shape, 0, 1, 'float32', readRng.nextU32())))) : tf.clone(gBlock))),
            ) as tf.Tensor2D;
            const xBlock = tf.keep(tf.slice(part, [0, r0], [-1, r1 - r0])) as tf.Tensor2D;
            for (let b = 0; b < bits; b++) {
              const noiseSeed = readRng.nextU32();
              const [nextAcc, nextClipped] = tf.tidy(() => {
                const bitPlane = tf.mod(tf.floor(tf.div(xBlock, 2 ** b)), 2) as tf.Tensor2D;
                let current = tf.mul(tf.matMul(bitPlane, gRead), hw.conductance.readVoltageV);
                if (noise.irDrop.factor > 0) current = tf.mul(current, tf.sub(1, tf.mul(noise.irDrop.factor / maxColumnUa, current)));
                let codes = tf.add(tf.mul(tf.div(current, plan.lsbUa), gain), offset);
                if (noise.adc.noiseFullScale > 0) codes = tf.add(codes, adcNoise(codes.shape as [number, number], noiseSeed));
                const quantised = tf.clipByValue(tf.floor(tf.add(codes, 0.5)), 0, adcMax);
                const n = quantised.shape[0] as number;
                // Physical columns to output channels: slice weights and pair signs, summed over planes.
                const units = tf.sum(tf.mul(quantised, coefficients[mi] as tf.Tensor1D).reshape([n, planes, plan.cols]), 1);
                return [
                  tf.add(acc, tf.mul(units, (pi === 0 ? 1 : -1) * 2 ** b)) as tf.Tensor2D,
                  tf.add(clipped, tf.sum(tf.greaterEqual(quantised, adcMax))),
                ] as const;
              });
              acc.dispose();
              clipped.dispose();
              acc = nextAcc;
              clipped = nextClipped;
              stats.conversions += (levelsIn.shape[0] as number) * planes * plan.cols;
            }
            gRead.dispose();
            xBlock.dispose();
          });
        });
        stats.clipped += clipped.dataSync()[0] as number;
        clipped.dispose();
        // Hand the caller's tidy a tensor it owns (kept tensors would outlive it).
        let result = tf.clone(acc) as tf.Tensor2D;
        acc.dispose();
        if (opts.driftCompensation) {
          const meanAbs = tf.mean(tf.abs(result), 0) as tf.Tensor1D;
          if (firstBatch && ti === 0) chip.referenceMeanAbs = meanAbs.dataSync().slice() as Float32Array;
          if (firstBatch && chip.referenceMeanAbs) {
            const now = meanAbs.dataSync();
            const alpha = Float32Array.from(chip.referenceMeanAbs, (ref, j) => ((now[j] as number) > 0 ? ref / (now[j] as number) : 1));
            compensation[mi]?.dispose();
            compensation[mi] = tf.keep(tf.tensor1d(alpha));
          }
          const comp = compensation[mi];
          if (comp) result = tf.mul(result, comp) as tf.Tensor2D;
        }
        // Exact product on the same inputs: how far the macro is from the integer arithmetic.
        const exact = tf.matMul(levelsIn, plan.levels);
        const err = tf.sum(tf.square(tf.sub(result, exact))).dataSync()[0] as number;
        const ref = tf.sum(tf.square(exact)).dataSync()[0] as number;
        stats.errSq += err;
        stats.refSq += ref;
        return result;
      };

      let correct = 0;
      for (let start = 0; start < count; start += batchSize) {
        const n = Math.min(batchSize, count - start);
        const { x, labels } = batchInput(start, n);
        const logits = tf.tidy(() => forward(x, chipMatMul));
        correct += correctIn(logits, labels);
        logits.dispose();
        x.dispose();
        firstBatch = false;
        tick();
      }
      slot.correct.push(correct / count);
      for (const blocks of gNow) for (const t of blocks) t.dispose();
      for (const list of [...gainT, ...offsetT]) for (const t of list) t.dispose();
      for (const t of compensation) t?.dispose();
    });
    pool?.dispose();
  }
  for (const p of plans) {
    p.levels.dispose();
    p.scale.dispose();
    p.bias.dispose();
  }
  for (const t of coefficients) t.dispose();

  return { images: count, digitalCorrect: digital ? digitalCorrect : undefined, perTime };
}

/** The result of shares that together cover opts.seeds in order (the first one with the digital reference). */
export function finishSimulation(image: WeightImage, noise: NoiseProfile, opts: OnChipSimulationOptions, shares: readonly SimulationShare[]): OnChipSimulationResult {
  const first = shares[0];
  if (!first || first.digitalCorrect === undefined) throw new CimbenchError('INTERNAL', 'the first simulation share must carry the digital reference');
  const count = first.images;
  const times = [...opts.timesS].sort((a, b) => a - b);
  return {
    images: count,
    digitalAccuracy: first.digitalCorrect / count,
    times: times.map((tS, ti) => {
      const correct = shares.flatMap((sh) => [...(sh.perTime[ti]?.correct ?? [])]);
      // Summed seed by seed in seed order, so the figures do not depend on how seeds were shared out.
      const sums = image.matrices.map(() => newAccumulator());
      for (const sh of shares) {
        for (const seedStats of sh.perTime[ti]?.stats ?? []) {
          seedStats.forEach((a, mi) => {
            const t = sums[mi] as MatrixAccumulator;
            for (const k of Object.keys(t) as Array<keyof MatrixAccumulator>) t[k] += a[k];
          });
        }
      }
      if (correct.length !== opts.seeds.length) throw new CimbenchError('INTERNAL', `${correct.length} seeds simulated at ${tS} s, ${opts.seeds.length} asked for`);
      const mean = correct.reduce((s, v) => s + v, 0) / correct.length;
      const variance = correct.reduce((s, v) => s + (v - mean) ** 2, 0) / Math.max(1, correct.length - 1);
      return {
        tS,
        accuracy: { mean, std: Math.sqrt(variance), perSeed: correct },
        matrices: image.matrices.map((m, mi) => {
          const a = sums[mi] as MatrixAccumulator;
          const gMean = a.gCount > 0 ? a.gErr / a.gCount : 0;
          return {
            name: m.info.name,
            layer: m.info.layer,
            role: m.info.role,
            cells: a.cells / opts.seeds.length,
            stuckFraction: a.cells > 0 ? a.stuck / a.cells : 0,
            conductanceErrorUs: { mean: gMean, std: a.gCount > 0 ? Math.sqrt(Math.max(0, a.gErrSq / a.gCount - gMean * gMean)) : 0 },
            adcClipFraction: a.conversions > 0 ? a.clipped / a.conversions : 0,
            relativeOutputError: a.refSq > 0 ? Math.sqrt(a.errSq / a.refSq) : 0,
          };
        }),
      };
    }),
    noiseProfile: { name: noise.name, sha256: noiseProfileHash(noise) },
    seeds: [...opts.seeds],
    driftCompensation: opts.driftCompensation ?? false,
  };
}

