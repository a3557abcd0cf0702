import { InputError } from '../common/errors.js';
import { Rng } from '../common/rng.js';
import type { HardwareProfile } from '../hardware/index.js';
import { applyKnownCells, cellLayout, conductanceAt, programCells, readSigmaRelative } from './conductance.js';
import { columnTrims, knownCells, type NoiseProfile } from './profile.js';

/**
 * The simulator's prediction of the bench's per-array MVM probes (src/bench engine, readback step):
 * random 1-bit input vectors on every programmed tile, one ADC conversion per column, codes compared
 * with the ideal code from the target conductances. The measured probe and this prediction use the
 * same vectors (probeInputs) and the same figure of merit, RMS(code - ideal) / RMS(ideal) per array,
 * so the discrepancy table can say which arrays the noise model gets wrong.
 *
 * Per seed (one simulated programming event): every tile's cells get programming noise, stuck
 * faults and drift draws (conductance.ts); every array column's ADC gets a gain and offset error.
 * At time t the cells relax; each probe vector is one read (fresh read noise, ADC noise). The ADC
 * model is simulateOnChip's: I = V_read * sum(G), I * (1 - irDrop * I / I_max), code =
 * clamp(floor(I / LSB * gain + offset + noise + 0.5), 0, 2^bits - 1).
 */

export interface ProbeTile {
  readonly array: number;
  /** Column of the tile's first cell in its array (ADC columns belong to array columns). */
  readonly col: number;
  /** Row of the tile's first cell; with it, cells the profile knows (stuck.cells) are stuck where the chip's are. */
  readonly row?: number;
  readonly rows: number;
  readonly cols: number;
  /** Target conductances (uS), rows x cols row-major. */
  readonly targetsUs: Float32Array;
  /** 0/1 inputs, vectors x rows (probeInputs). */
  readonly inputs: Uint8Array;
}

/** Running sums of one array's probes; rel error = sqrt(errSq / refSq). */
export interface ProbeSums {
  conversions: number;
  clipped: number;
  sumCode: number;
  errSq: number;
  refSq: number;
}

export interface ArrayProbePrediction {
  readonly array: number;
  readonly conversions: number;
  readonly clipFraction: number;
  /** Mean over seeds of RMS(code - ideal from targets) / RMS(ideal), and its spread over seeds. */
  readonly relErrorVsTarget: { readonly mean: number; readonly std: number; readonly perSeed: readonly number[] };
}

export function newProbeSums(): ProbeSums {
  return { conversions: 0, clipped: 0, sumCode: 0, errSq: 0, refSq: 0 };
}

/**
 * The probe vectors, tile after tile in the given order: `vectors` x rows inputs of 0/1 each, drawn
 * from one seeded stream (the engine forks it per time point).
 */
export function probeInputs(tiles: ReadonlyArray<{ readonly rows: number }>, vectors: number, rng: Rng): Uint8Array[] {
  return tiles.map((t) => {
    const x = new Uint8Array(vectors * t.rows);
    for (let i = 0; i < x.length; i++) x[i] = rng.next() < 0.5 ? 1 : 0;
    return x;
  });
}

/** ADC geometry shared by the measured and the simulated probe. */
export function probeAdc(hw: HardwareProfile, adcBits: number, vReadV: number): { lsbUa: number; maxCode: number; maxColumnUa: number } {
  return {
    lsbUa: (hw.adc.fullScaleFraction * hw.array.rows * vReadV * hw.conductance.maxUs) / 2 ** adcBits,
    maxCode: 2 ** adcBits - 1,
    maxColumnUa: hw.array.rows * vReadV * hw.conductance.maxUs,
  };
}

/** Adds one conversion (code against the ideal code) to an array's sums. */
export function addConversion(s: ProbeSums, code: number, ideal: number, maxCode: number): void {
  s.conversions++;
  if (code >= maxCode) s.clipped++;
  s.sumCode += code;
  s.errSq += (code - ideal) ** 2;
  s.refSq += ideal * ideal;
}

export function relError(s: ProbeSums): number {
  return s.refSq > 0 ? Math.sqrt(s.errSq / s.refSq) : 0;
}

export interface ProbeSimulationOptions {
  readonly seeds: readonly number[];
  /** Seconds after programming. */
  readonly tS: number;
  /** Row drive voltage (default the hardware profile's). */
  readonly vReadV?: number;
  /** ADC bits (default the hardware profile's). */
  readonly adcBits?: number;
}

export function simulateProbes(tiles: readonly ProbeTile[], hw: HardwareProfile, noise: NoiseProfile, opts: ProbeSimulationOptions): ArrayProbePrediction[] {
  if (opts.seeds.length === 0) throw new InputError('INVALID_INPUT', 'needs at least one seed', { where: 'seeds' });
  const layout = cellLayout(hw);
  const vRead = opts.vReadV ?? hw.conductance.readVoltageV;
  const { lsbUa, maxCode, maxColumnUa } = probeAdc(hw, opts.adcBits ?? hw.adc.bits, vRead);
  const irK = noise.irDrop.factor / maxColumnUa;
  const adcSigma = noise.adc.noiseFullScale * 2 ** (opts.adcBits ?? hw.adc.bits);
  const rel = readSigmaRelative(noise, opts.tS);
  const arrays = [...new Set(tiles.map((t) => t.array))].sort((a, b) => a - b);
  const trimAt = noise.adc.columns ? columnTrims(noise) : undefined;
  const known = knownCells(noise);
  const perSeed = new Map<number, ProbeSums[]>(arrays.map((a) => [a, []]));
  for (const seed of opts.seeds) {
    const rng = new Rng(seed).fork(3000);
    // ADC trims per array column, drawn once per simulated chip.
    const gain = new Map<number, Float32Array>();
    const offset = new Map<number, Float32Array>();
    for (const a of arrays) {
      const ga = Float32Array.from({ length: hw.array.cols }, () => 1 + noise.adc.gainStd * rng.normal());
      const oa = Float32Array.from({ length: hw.array.cols }, () => noise.adc.offsetStdLsb * rng.normal());
      // Measured trims of this chip (adc.columns) replace the draws where they exist.
      for (let c = 0; trimAt && c < hw.array.cols; c++) {
        const trim = trimAt(a, c);
        if (trim) {
          ga[c] = trim.gain;
          oa[c] = trim.offsetLsb;
        }
      }
      gain.set(a, ga);
      offset.set(a, oa);
    }
    const sums = new Map<number, ProbeSums>(arrays.map((a) => [a, newProbeSums()]));
    tiles.forEach((t, ti) => {
      const r = rng.fork(ti);
      const cells = programCells(t.targetsUs, layout, noise, r);
      const row = t.row;
      if (known && row !== undefined) applyKnownCells(cells, t.targetsUs, layout, noise, r.fork(4000), known, (k) => [t.array, row + Math.floor(k / t.cols), t.col + (k % t.cols)]);
      const g = conductanceAt(cells, opts.tS, noise);
      const s = sums.get(t.array) as ProbeSums;
      const ga = gain.get(t.array) as Float32Array;
      const oa = offset.get(t.array) as Float32Array;
      const vectors = t.inputs.length / t.rows;
      const current = new Float64Array(t.cols);
      const ideal = new Float64Array(t.cols);
      for (let v = 0; v < vectors; v++) {
        current.fill(0);
        ideal.fill(0);
        for (let row = 0; row < t.rows; row++) {
          if (t.inputs[v * t.rows + row] === 0) continue;
          const base = row * t.cols;
          for (let c = 0; c < t.cols; c++) {
            const gc = g[base + c] as number;
            // One read per vector: fresh read noise on every cell it touches.
            current[c] = (current[c] as number) + (rel > 0 ? Math.max(0, gc + gc * rel * r.normal()) : gc);
            ideal[c] = (ideal[c] as number) + (t.targetsUs[base + c] as number);
          }
        }
        for (let c = 0; c < t.cols; c++) {
          let i = vRead * (current[c] as number);
          i *= 1 - irK * i;
          const col = t.col + c;
          const v0 = (i / lsbUa) * (ga[col] as number) + (oa[col] as number) + (adcSigma > 0 ? adcSigma * r.normal() : 0);
          const code = Math.min(maxCode, Math.max(0, Math.floor(v0 + 0.5)));
          addConversion(s, code, (vRead * (ideal[c] as number)) / lsbUa, maxCode);
        }
      }
    });
    for (const a of arrays) (perSeed.get(a) as ProbeSums[]).push(sums.get(a) as ProbeSums);
  }
  return arrays.map((array) => {
    const list = perSeed.get(array) as ProbeSums[];
    const errs = list.map(relError);
    const mean = errs.reduce((x, y) => x + y, 0) / errs.length;
    const std = Math.sqrt(errs.reduce((x, y) => x + (y - mean) ** 2, 0) / Math.max(1, errs.length - 1));
    const conversions = list.reduce((x, s) => x + s.conversions, 0);
    const clipped = list.reduce((x, s) => x + s.clipped, 0);
    return { array, conversions: conversions / list.length, clipFraction: conversions > 0 ? clipped / conversions : 0, relErrorVsTarget: { mean, std, perSeed: errs } };
  });
}

export interface ReadbackSimulationOptions {
  /** One simulated programming event. */
  readonly seed: number;
  /** Seconds after programming. */
  readonly tS: number;
  /** Reads averaged per value (read noise shrinks by its square root); default 1. */
  readonly averages?: number;
}

export interface SimulatedReadback {
  /** Per tile, row-major: what a read-back would return (uS). */
  readonly valuesUs: Float32Array[];
  /** Per tile, row-major: STUCK_NONE / STUCK_LOW / STUCK_HIGH of each cell. */
  readonly stuck: Uint8Array[];
}

/**
 * The simulator's read-back of programmed tiles: one programming event per seed (programming noise
 * and bias, stuck cells, drift draws: conductance.ts), relaxed to tS, read once with the profile's
 * read noise reduced by averaging. What the per-array conductance-error distributions of a run are
 * compared with (cimbench compare).
 */
export function simulateReadback(
  tiles: ReadonlyArray<{ readonly targetsUs: Float32Array; readonly placement?: { readonly array: number; readonly row: number; readonly col: number; readonly cols: number } }>,
  hw: HardwareProfile,
  noise: NoiseProfile,
  opts: ReadbackSimulationOptions,
): SimulatedReadback {
  const layout = cellLayout(hw);
  // Tiles with a placement: cells the profile knows (stuck.cells) are stuck where the chip's are.
  const known = knownCells(noise);
  const rng = new Rng(opts.seed).fork(5000);
  const rel = readSigmaRelative(noise, opts.tS) / Math.sqrt(Math.max(1, opts.averages ?? 1));
  const valuesUs: Float32Array[] = [];
  const stuck: Uint8Array[] = [];
  tiles.forEach((t, ti) => {
    const r = rng.fork(ti);
    const cells = programCells(t.targetsUs, layout, noise, r);
    const pl = t.placement;
    if (known && pl) applyKnownCells(cells, t.targetsUs, layout, noise, r.fork(4000), known, (k) => [pl.array, pl.row + Math.floor(k / pl.cols), pl.col + (k % pl.cols)]);
    const g = conductanceAt(cells, opts.tS, noise);
    if (rel > 0) for (let i = 0; i < g.length; i++) g[i] = Math.max(0, (g[i] as number) * (1 + rel * r.normal()));
    valuesUs.push(g);
    stuck.push(cells.stuck);
  });
  return { valuesUs, stuck };
}
