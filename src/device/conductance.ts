import type { Rng } from '../common/rng.js';
import { weightMagnitudeBits, type HardwareProfile } from '../hardware/index.js';
import type { NoiseProfile } from './profile.js';

/**
 * Weight-to-conductance mapping and the per-cell noise draws of the simulator.
 *
 * Cell layout of one weight matrix [rows x outChannels]: one plane of conductances per
 * (slice, polarity), plane index s * pair + p, each plane [rows x outChannels] row-major, the way
 * LOAD_NETWORK placements address tiles (one slice and polarity per tile). Slice s = 0 holds the
 * least significant `bitsPerCell` bits; p = 0 is the positive member of a differential pair.
 * A digit d in [0, 2^bitsPerCell - 1] is programmed to g = minUs + d * (maxUs - minUs) /
 * (2^bitsPerCell - 1). Without differential pairs weights are offset-encoded: u = w + 2^(bits - 1),
 * and the offset is removed digitally.
 */
export interface CellLayout {
  readonly slices: number;
  readonly pair: 1 | 2;
  readonly bitsPerCell: number;
  readonly levelsPerCell: number;
  readonly weightBits: number;
  readonly minUs: number;
  readonly maxUs: number;
  /** Conductance per digit step. */
  readonly stepUs: number;
}

export function cellLayout(hw: HardwareProfile): CellLayout {
  const bitsPerCell = hw.weights.bitsPerCell;
  const levelsPerCell = 2 ** bitsPerCell;
  return {
    slices: Math.ceil(weightMagnitudeBits(hw) / bitsPerCell),
    pair: hw.weights.differential ? 2 : 1,
    bitsPerCell,
    levelsPerCell,
    weightBits: hw.weights.bits,
    minUs: hw.conductance.minUs,
    maxUs: hw.conductance.maxUs,
    stepUs: (hw.conductance.maxUs - hw.conductance.minUs) / (levelsPerCell - 1),
  };
}

/** Weight range the layout holds: symmetric with pairs, two's-complement range when offset-encoded. */
export function weightRangeOf(layout: CellLayout): { min: number; max: number } {
  const max = 2 ** (layout.weightBits - 1) - 1;
  return { min: layout.pair === 2 ? -max : -max - 1, max };
}

/**
 * Target conductances, planes [slices * pair][rows x outChannels], for integer weights
 * [rows x outChannels] (row-major). Throws RangeError for a weight the layout cannot hold.
 */
export function weightsToTargets(weights: Int8Array | Int16Array, rows: number, outChannels: number, layout: CellLayout): Float32Array {
  const planeSize = rows * outChannels;
  const targets = new Float32Array(planeSize * layout.slices * layout.pair).fill(layout.minUs);
  const mask = layout.levelsPerCell - 1;
  const range = weightRangeOf(layout);
  const offset = layout.pair === 2 ? 0 : 2 ** (layout.weightBits - 1);
  for (let i = 0; i < planeSize; i++) {
    const w = weights[i] as number;
    if (w < range.min || w > range.max) {
      throw new RangeError(`weight ${w} at row ${Math.floor(i / outChannels)}, column ${i % outChannels} is outside ${range.min}..${range.max}`);
    }
    let magnitude = layout.pair === 2 ? Math.abs(w) : w + offset;
    // Negative weights of a pair go to the p = 1 planes; the other member stays at minUs.
    const polarity = layout.pair === 2 && w < 0 ? 1 : 0;
    for (let s = 0; s < layout.slices; s++) {
      const digit = magnitude & mask;
      magnitude >>>= layout.bitsPerCell;
      targets[(s * layout.pair + polarity) * planeSize + i] = layout.minUs + digit * layout.stepUs;
    }
  }
  return targets;
}

/**
 * The weights that conductances (planes as weightsToTargets lays them out) represent, in integer
 * weight units: real-valued, since noise makes them fractional.
 */
export function conductancesToWeights(g: Float32Array, rows: number, outChannels: number, layout: CellLayout): Float32Array {
  const planeSize = rows * outChannels;
  const out = new Float32Array(planeSize);
  const offset = layout.pair === 2 ? 0 : 2 ** (layout.weightBits - 1);
  let sliceWeight = 1;
  for (let s = 0; s < layout.slices; s++) {
    const pos = s * layout.pair * planeSize;
    const neg = pos + planeSize;
    const scale = sliceWeight / layout.stepUs;
    for (let i = 0; i < planeSize; i++) {
      const digit = layout.pair === 2 ? (g[pos + i] as number) - (g[neg + i] as number) : (g[pos + i] as number) - layout.minUs;
      out[i] = (out[i] as number) + digit * scale;
    }
    sliceWeight *= layout.levelsPerCell;
  }
  if (offset !== 0) for (let i = 0; i < planeSize; i++) out[i] = (out[i] as number) - offset;
  return out;
}

export const STUCK_NONE = 0;
export const STUCK_LOW = 1;
export const STUCK_HIGH = 2;

/** One programming event's draws: kept so drift and reads can be evaluated at any later time. */
export interface ProgrammedCells {
  /** Conductance right after programming (uS). */
  readonly programmedUs: Float32Array;
  readonly stuck: Uint8Array;
  /** Per-device standard normal behind its drift (log spread or power-law exponent). */
  readonly driftZ: Float32Array;
  /** 1: write-verify left the cell alone (programming.unpulsed); it relaxes as a cell that old. */
  readonly settled?: Uint8Array;
}

/** The row of a per-target table for a target: the nearest table target within a quarter of the table's spacing, else -1. */
export function nearestTargetIndex(targetsUs: readonly number[], x: number): number {
  let best = -1;
  let bestD = Number.POSITIVE_INFINITY;
  let spacing = Number.POSITIVE_INFINITY;
  for (let k = 0; k < targetsUs.length; k++) {
    const d = Math.abs((targetsUs[k] as number) - x);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
    if (k > 0) spacing = Math.min(spacing, (targetsUs[k] as number) - (targetsUs[k - 1] as number));
  }
  return bestD <= (Number.isFinite(spacing) ? spacing / 4 : 0.5) ? best : -1;
}

/** Piecewise-linear interpolation through (xs, ys), constant outside; xs ascending. */
function interpolate(xs: readonly number[], ys: readonly number[], x: number): number {
  const last = xs.length - 1;
  if (x <= (xs[0] as number)) return ys[0] as number;
  if (x >= (xs[last] as number)) return ys[last] as number;
  let lo = 0;
  let hi = last;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if ((xs[mid] as number) <= x) lo = mid;
    else hi = mid;
  }
  const x0 = xs[lo] as number;
  const f = (x - x0) / ((xs[hi] as number) - x0);
  return (ys[lo] as number) * (1 - f) + (ys[hi] as number) * f;
}

/** Sigma of the programming error at a target: the per-level table when the profile has one, else the polynomial. */
export function programmingSigmaUs(targetUs: number, noise: NoiseProfile): number {
  const p = noise.programming;
  if (p.levels) return Math.max(0, interpolate(p.levels.targetsUs, p.levels.sigmaUs, targetUs) * p.scale);
  const x = Math.min(1, Math.max(0, targetUs / p.referenceUs));
  let sigma = 0;
  let xi = 1;
  for (const c of p.coefficientsUs) {
    sigma += c * xi;
    xi *= x;
  }
  return Math.max(0, sigma * p.scale);
}

/** Mean programming error (bias) at a target: from the per-level table, 0 without one. */
export function programmingBiasUs(targetUs: number, noise: NoiseProfile): number {
  const l = noise.programming.levels;
  return l ? interpolate(l.targetsUs, l.meanUs, targetUs) : 0;
}

/** Variance of N(0, s^2) truncated to [-w, w] (Simpson's rule on the density; 128 panels). */
function truncatedVariance(s: number, w: number): number {
  const n = 128;
  const h = (2 * w) / n;
  let mass = 0;
  let second = 0;
  for (let k = 0; k <= n; k++) {
    const x = -w + k * h;
    const weight = k === 0 || k === n ? 1 : k % 2 === 1 ? 4 : 2;
    const d = weight * Math.exp(-0.5 * (x / s) ** 2);
    mass += d;
    second += d * x * x;
  }
  return second / mass;
}

/**
 * The sigma of the normal that, truncated to +-w, has standard deviation `sigma`. A truncated normal
 * is at most as wide as the uniform on +-w (w / sqrt 3): at or beyond that, 20 w (practically uniform).
 */
export function untruncatedSigma(sigma: number, w: number): number {
  if (sigma * 6 <= w) return sigma;
  if (sigma >= 0.999 * (w / Math.sqrt(3))) return 20 * w;
  let lo = sigma;
  let hi = 20 * w;
  for (let k = 0; k < 50; k++) {
    const mid = 0.5 * (lo + hi);
    if (Math.sqrt(truncatedVariance(mid, w)) < sigma) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/**
 * A programming error draw: mean + N(0, sigma), or with write-verify's acceptance w, a normal
 * truncated to mean +- w whose own standard deviation is sigma (rejection; uniform after 64 misses).
 * `widen` caches untruncatedSigma per sigma.
 */
function programmingError(mean: number, sigma: number, w: number | undefined, rng: Rng, widen: Map<number, number>): number {
  if (w === undefined || !(sigma > 0)) return mean + sigma * rng.normal();
  let su = widen.get(sigma);
  if (su === undefined) {
    su = untruncatedSigma(sigma, w);
    widen.set(sigma, su);
  }
  for (let k = 0; k < 64; k++) {
    const e = su * rng.normal();
    if (e >= -w && e <= w) return mean + e;
  }
  return mean + (2 * rng.next() - 1) * w;
}

/** A healthy, freshly programmed cell's conductance at a target: bias, sigma and acceptance from the profile. */
function freshlyProgrammedUs(target: number, noise: NoiseProfile, rng: Rng, widen: Map<number, number>): number {
  return Math.max(0, target + programmingError(programmingBiasUs(target, noise), programmingSigmaUs(target, noise), noise.programming.acceptanceUs, rng, widen));
}

/** Draws programming noise, stuck cells and drift coefficients for every target. */
export function programCells(targetsUs: Float32Array, layout: CellLayout, noise: NoiseProfile, rng: Rng): ProgrammedCells {
  const n = targetsUs.length;
  const programmedUs = new Float32Array(n);
  const stuck = new Uint8Array(n);
  const driftZ = new Float32Array(n);
  const { lowRate, highRate } = noise.stuck;
  const unpulsed = noise.programming.unpulsed;
  // Draws for the unpulsed choice only when the profile has the table, so other profiles keep their streams.
  const settled = unpulsed ? new Uint8Array(n) : undefined;
  let lastTarget = Number.NaN;
  let row = -1;
  const accept = noise.programming.acceptanceUs;
  const widen = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const target = targetsUs[i] as number;
    const u = rng.next();
    if (u < lowRate) {
      stuck[i] = STUCK_LOW;
      programmedUs[i] = layout.minUs;
    } else if (u < lowRate + highRate) {
      stuck[i] = STUCK_HIGH;
      programmedUs[i] = layout.maxUs;
    } else if (unpulsed && settled) {
      if (target !== lastTarget) {
        row = nearestTargetIndex(unpulsed.targetsUs, target);
        lastTarget = target;
      }
      if (row >= 0 && rng.next() < (unpulsed.fraction[row] as number)) {
        settled[i] = 1;
        programmedUs[i] = Math.max(0, target + programmingError(unpulsed.meanUs[row] as number, unpulsed.sigmaUs[row] as number, accept, rng, widen));
      } else {
        programmedUs[i] = freshlyProgrammedUs(target, noise, rng, widen);
      }
    } else {
      programmedUs[i] = freshlyProgrammedUs(target, noise, rng, widen);
    }
    driftZ[i] = rng.normal();
  }
  return settled ? { programmedUs, stuck, driftZ, settled } : { programmedUs, stuck, driftZ };
}

/**
 * Conditions one programming event's draws on what the profile knows of the chip's cells
 * (stuck.cells, via knownCells): a known stuck cell is stuck at its measured conductance; a tested
 * cell not listed as stuck, which the draw made stuck, is programmed as a healthy cell instead
 * (its draw from `rng`, a stream of its own, so no other cell's numbers move). `arrayCell(i)`
 * gives cell i's place on the chip, undefined where unplaced.
 */
export function applyKnownCells(
  cells: ProgrammedCells,
  targetsUs: Float32Array,
  layout: CellLayout,
  noise: NoiseProfile,
  rng: Rng,
  known: (array: number, row: number, col: number) => number | null | undefined,
  arrayCell: (i: number) => readonly [number, number, number] | undefined,
): void {
  const mid = (layout.minUs + layout.maxUs) / 2;
  const widen = new Map<number, number>();
  const programmed = cells.programmedUs as Float32Array;
  const stuck = cells.stuck as Uint8Array;
  for (let i = 0; i < targetsUs.length; i++) {
    const at = arrayCell(i);
    if (!at) continue;
    const k = known(at[0], at[1], at[2]);
    if (k === undefined) continue;
    if (k !== null) {
      stuck[i] = k < mid ? STUCK_LOW : STUCK_HIGH;
      programmed[i] = k;
    } else if (stuck[i] !== STUCK_NONE) {
      const target = targetsUs[i] as number;
      stuck[i] = STUCK_NONE;
      programmed[i] = freshlyProgrammedUs(target, noise, rng, widen);
    }
  }
}

/** Conductances `tSeconds` after programming (deterministic given the programming event). */
export function conductanceAt(cells: ProgrammedCells, tSeconds: number, noise: NoiseProfile, out?: Float32Array): Float32Array {
  const g = freshConductanceAt(cells, tSeconds, noise, out);
  const settled = cells.settled;
  const ageS = noise.programming.unpulsed?.ageS;
  if (!settled || ageS === undefined) return g;
  // Cells left alone relax as old ones: by the drift's increment from ageS to ageS + t.
  const d = noise.drift;
  const t = Math.max(0, tSeconds);
  let mean = 0;
  let spread = 0;
  let lnRatio = 0;
  if (d.form === 'log') {
    const at = (x: number): [number, number] => {
      if (d.onset === 'smooth') {
        const u = x / d.t0S;
        return [d.meanUsPerLn * Math.log1p(u), d.spread0Us * -Math.expm1(-u) + d.spreadUsPerLn * Math.log1p(u)];
      }
      const lnT = Math.log(Math.max(x, d.t0S) / d.t0S);
      return x > d.t0S ? [d.meanUsPerLn * lnT, d.spread0Us + d.spreadUsPerLn * lnT] : [0, 0];
    };
    const [m1, s1] = at(ageS + t);
    const [m0, s0] = at(ageS);
    mean = m1 - m0;
    spread = s1 - s0;
  } else {
    lnRatio = Math.log((ageS + t + d.t0S) / (ageS + d.t0S));
  }
  for (let i = 0; i < g.length; i++) {
    if (settled[i] !== 1 || cells.stuck[i] !== STUCK_NONE) continue;
    const g0 = cells.programmedUs[i] as number;
    const z = cells.driftZ[i] as number;
    g[i] = d.form === 'log' ? Math.max(0, g0 + mean + spread * z) : g0 * Math.exp(-(d.nuMean + d.nuStd * z) * lnRatio);
  }
  return g;
}

/** Every non-stuck cell as freshly programmed. */
function freshConductanceAt(cells: ProgrammedCells, tSeconds: number, noise: NoiseProfile, out?: Float32Array): Float32Array {
  const n = cells.programmedUs.length;
  const g = out ?? new Float32Array(n);
  const d = noise.drift;
  if (d.form === 'log' && d.onset === 'smooth') {
    const t = Math.max(0, tSeconds) / d.t0S;
    const L = Math.log1p(t);
    const mean = d.meanUsPerLn * L;
    const spread = d.spread0Us * -Math.expm1(-t) + d.spreadUsPerLn * L;
    for (let i = 0; i < n; i++) {
      const g0 = cells.programmedUs[i] as number;
      g[i] = cells.stuck[i] !== STUCK_NONE ? g0 : Math.max(0, g0 + mean + spread * (cells.driftZ[i] as number));
    }
  } else if (d.form === 'log') {
    const lnT = Math.log(Math.max(tSeconds, d.t0S) / d.t0S);
    const mean = d.meanUsPerLn * lnT;
    const spread = d.spread0Us + d.spreadUsPerLn * lnT;
    // No relaxation before t0 (the time the programming-noise fit refers to).
    const active = tSeconds > d.t0S ? 1 : 0;
    for (let i = 0; i < n; i++) {
      const g0 = cells.programmedUs[i] as number;
      g[i] = cells.stuck[i] !== STUCK_NONE ? g0 : Math.max(0, g0 + active * (mean + spread * (cells.driftZ[i] as number)));
    }
  } else {
    const ratio = (Math.max(0, tSeconds) + d.t0S) / d.t0S;
    const lnRatio = Math.log(ratio);
    for (let i = 0; i < n; i++) {
      const g0 = cells.programmedUs[i] as number;
      const nu = d.nuMean + d.nuStd * (cells.driftZ[i] as number);
      g[i] = cells.stuck[i] !== STUCK_NONE ? g0 : g0 * Math.exp(-nu * lnRatio);
    }
  }
  return g;
}

/** Relative read-noise sigma `tSeconds` after programming. */
export function readSigmaRelative(noise: NoiseProfile, tSeconds: number): number {
  const r = noise.read;
  if (r.form === 'relative') return r.relative;
  return r.q * Math.sqrt(Math.max(0, Math.log((tSeconds + r.trS) / (2 * r.trS))));
}

/** One read of every cell `tSeconds` after programming: adds read noise (drawn on every call). */
export function readCells(gUs: Float32Array, tSeconds: number, noise: NoiseProfile, rng: Rng, out?: Float32Array): Float32Array {
  const n = gUs.length;
  const g = out ?? new Float32Array(n);
  const rel = readSigmaRelative(noise, tSeconds);
  if (rel === 0) {
    g.set(gUs);
    return g;
  }
  for (let i = 0; i < n; i++) {
    const v = gUs[i] as number;
    g[i] = Math.max(0, v + v * rel * rng.normal());
  }
  return g;
}
