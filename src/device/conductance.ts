import type { Rng } from '../common/rng.js';
import { weightMagnitudeBits, type HardwareProfile } from '../hardware/index.js';
import type { NoiseProfile } from './profile.js';

/**
 * Weight-to-conductance mapping and the per-cell noise draws of the simulator.
 *
 * Cell layout of one weight matrix (rows = im2col rows, out channels c): each weight occupies
 * `slices` x `pair` physical columns, column index (c * slices + s) * pair + p, where slice s = 0
 * holds the least significant `bitsPerCell` bits and p = 0 is the positive column of a
 * differential pair (p = 1 negative). A digit d in [0, 2^bitsPerCell - 1] is programmed to
 * g = minUs + d * (maxUs - minUs) / (2^bitsPerCell - 1). Without differential pairs weights are
 * offset-encoded: u = w + 2^(bits - 1), and the offset is removed digitally.
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
 * Target conductances [rows x physical columns] for integer weights [rows x outChannels]
 * (row-major). Throws RangeError for a weight the layout cannot hold.
 */
export function weightsToTargets(weights: Int8Array | Int16Array, rows: number, outChannels: number, layout: CellLayout): Float32Array {
  const cols = outChannels * layout.slices * layout.pair;
  const targets = new Float32Array(rows * cols);
  const mask = layout.levelsPerCell - 1;
  const range = weightRangeOf(layout);
  const offset = layout.pair === 2 ? 0 : 2 ** (layout.weightBits - 1);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < outChannels; c++) {
      const w = weights[r * outChannels + c] as number;
      if (w < range.min || w > range.max) {
        throw new RangeError(`weight ${w} at row ${r}, column ${c} is outside ${range.min}..${range.max}`);
      }
      let magnitude = layout.pair === 2 ? Math.abs(w) : w + offset;
      const base = r * cols + c * layout.slices * layout.pair;
      for (let s = 0; s < layout.slices; s++) {
        const digit = magnitude & mask;
        magnitude >>>= layout.bitsPerCell;
        const g = layout.minUs + digit * layout.stepUs;
        if (layout.pair === 2) {
          targets[base + s * 2] = w > 0 ? g : layout.minUs;
          targets[base + s * 2 + 1] = w < 0 ? g : layout.minUs;
        } else {
          targets[base + s] = g;
        }
      }
    }
  }
  return targets;
}

/**
 * The weights that conductances represent, in integer weight units (real-valued: noise makes them
 * fractional). Inverse of weightsToTargets for noise-free conductances.
 */
export function conductancesToWeights(g: Float32Array, rows: number, outChannels: number, layout: CellLayout): Float32Array {
  const cols = outChannels * layout.slices * layout.pair;
  const out = new Float32Array(rows * outChannels);
  const offset = layout.pair === 2 ? 0 : 2 ** (layout.weightBits - 1);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < outChannels; c++) {
      const base = r * cols + c * layout.slices * layout.pair;
      let value = 0;
      let weight = 1;
      for (let s = 0; s < layout.slices; s++) {
        const digit =
          layout.pair === 2
            ? ((g[base + s * 2] as number) - (g[base + s * 2 + 1] as number)) / layout.stepUs
            : ((g[base + s] as number) - layout.minUs) / layout.stepUs;
        value += digit * weight;
        weight *= layout.levelsPerCell;
      }
      out[r * outChannels + c] = value - offset;
    }
  }
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
}

export function programmingSigmaUs(targetUs: number, noise: NoiseProfile): number {
  const p = noise.programming;
  const x = Math.min(1, Math.max(0, targetUs / p.referenceUs));
  let sigma = 0;
  let xi = 1;
  for (const c of p.coefficientsUs) {
    sigma += c * xi;
    xi *= x;
  }
  return Math.max(0, sigma * p.scale);
}

/** Draws programming noise, stuck cells and drift coefficients for every target. */
export function programCells(targetsUs: Float32Array, layout: CellLayout, noise: NoiseProfile, rng: Rng): ProgrammedCells {
  const n = targetsUs.length;
  const programmedUs = new Float32Array(n);
  const stuck = new Uint8Array(n);
  const driftZ = new Float32Array(n);
  const { lowRate, highRate } = noise.stuck;
  for (let i = 0; i < n; i++) {
    const target = targetsUs[i] as number;
    const u = rng.next();
    if (u < lowRate) {
      stuck[i] = STUCK_LOW;
      programmedUs[i] = layout.minUs;
    } else if (u < lowRate + highRate) {
      stuck[i] = STUCK_HIGH;
      programmedUs[i] = layout.maxUs;
    } else {
      programmedUs[i] = Math.max(0, target + programmingSigmaUs(target, noise) * rng.normal());
    }
    driftZ[i] = rng.normal();
  }
  return { programmedUs, stuck, driftZ };
}

/** Conductances `tSeconds` after programming (deterministic given the programming event). */
export function conductanceAt(cells: ProgrammedCells, tSeconds: number, noise: NoiseProfile, out?: Float32Array): Float32Array {
  const n = cells.programmedUs.length;
  const g = out ?? new Float32Array(n);
  const d = noise.drift;
  if (d.form === 'log') {
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
