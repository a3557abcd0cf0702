import { createHash } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from '../hardware/index.js';
import { packageDir, presetPath } from '../common/paths.js';
import { loadJsonFile, parseWith } from '../common/validate.js';

/**
 * The simulator's device noise model (what the bench predicts; the emulated macro has physics of
 * its own). Conductances in uS; x = g / g_ref is the normalised conductance used by the
 * polynomial fits. Programming noise, drift coefficients and stuck cells are drawn once per
 * programming event; read and ADC noise on every read (see cim-models.md).
 */

const nonNegative = z.number().nonnegative();

export const ProgrammingNoiseSchema = z.strictObject({
  /** sigma(x) = sum_i coefficientsUs[i] * x^i in uS, x = g_target / referenceUs (clamped to [0, 1]). */
  coefficientsUs: z.array(z.number()).min(1).max(8),
  referenceUs: z.number().positive(),
  /** Multiplies the polynomial (calibration knob; 1 for the published fit). */
  scale: nonNegative.default(1),
  /**
   * Write-verify's acceptance (fitted profiles: the verify tolerance, uS): a verified cell ends
   * within it of its target, so the error right after programming is a normal truncated to
   * mean +- acceptanceUs, with the sigma above as the truncated distribution's own (what
   * calibration measures). Without it the error is an untruncated normal.
   */
  acceptanceUs: z.number().positive().optional(),
  /**
   * Measured per-level error after write-verify (fitted profiles): at each target, the mean error
   * (bias; write-verify stops inside the tolerance on the side it came from, and clips at the window's
   * ends) and its sigma. When present the simulator interpolates both, piecewise linear in the target
   * and constant outside the first and last target, instead of the polynomial (still `scale`d);
   * without it the error is unbiased with the polynomial's sigma.
   */
  levels: z
    .strictObject({
      targetsUs: z.array(z.number()).min(2).max(256),
      meanUs: z.array(z.number()).min(2).max(256),
      sigmaUs: z.array(nonNegative).min(2).max(256),
    })
    .superRefine((l, ctx) => {
      if (l.meanUs.length !== l.targetsUs.length) ctx.addIssue({ code: 'custom', path: ['meanUs'], message: `has ${l.meanUs.length} values for ${l.targetsUs.length} targets` });
      if (l.sigmaUs.length !== l.targetsUs.length) ctx.addIssue({ code: 'custom', path: ['sigmaUs'], message: `has ${l.sigmaUs.length} values for ${l.targetsUs.length} targets` });
      l.targetsUs.forEach((t, i) => {
        if (i > 0 && !(t > (l.targetsUs[i - 1] as number))) ctx.addIssue({ code: 'custom', path: ['targetsUs', i], message: 'targets must be strictly ascending' });
      });
    })
    .optional(),
  /**
   * Cells write-verify left alone (fitted profiles): a cell already within tolerance of its target
   * gets no pulse and keeps its earlier state, e.g. the as-formed low-conductance state under
   * targets at the bottom of the window. Per target, the fraction of cells left alone and their
   * error (mean, sigma) at programming; `ageS` is how old that earlier state is at programming, so
   * they relax as old cells do, by the increments of the drift from ageS to ageS + t: far less than
   * fresh ones. Without it every cell counts as freshly programmed.
   */
  unpulsed: z
    .strictObject({
      targetsUs: z.array(z.number()).min(1).max(256),
      fraction: z.array(z.number().min(0).max(1)).min(1).max(256),
      meanUs: z.array(z.number()).min(1).max(256),
      sigmaUs: z.array(nonNegative).min(1).max(256),
      ageS: nonNegative,
    })
    .superRefine((u, ctx) => {
      for (const key of ['fraction', 'meanUs', 'sigmaUs'] as const) {
        if (u[key].length !== u.targetsUs.length) ctx.addIssue({ code: 'custom', path: [key], message: `has ${u[key].length} values for ${u.targetsUs.length} targets` });
      }
      u.targetsUs.forEach((t, i) => {
        if (i > 0 && !(t > (u.targetsUs[i - 1] as number))) ctx.addIssue({ code: 'custom', path: ['targetsUs', i], message: 'targets must be strictly ascending' });
      });
    })
    .optional(),
});

export const DriftSchema = z.discriminatedUnion('form', [
  z.strictObject({
    /** g(t) = g_prog * ((t + t0) / t0)^(-nu), nu ~ N(nuMean, nuStd) per device. */
    form: z.literal('power-law'),
    t0S: z.number().positive(),
    nuMean: z.number(),
    nuStd: nonNegative,
  }),
  z.strictObject({
    /**
     * onset 'step' (default): g(t) = g_prog + meanUsPerLn * ln(t / t0) + N(0, spread0Us + spreadUsPerLn * ln(t / t0))
     * per device for t > t0, no relaxation before t0.
     * onset 'smooth' (what `cimbench calibrate` fits): with L = ln(1 + t / t0), H = 1 - exp(-t / t0),
     * g(t) = g_prog + meanUsPerLn * L + N(0, spread0Us * H + spreadUsPerLn * L); the same for t >> t0,
     * continuous from t = 0 (read-backs seconds after programming).
     */
    form: z.literal('log'),
    t0S: z.number().positive(),
    meanUsPerLn: z.number(),
    spread0Us: nonNegative,
    spreadUsPerLn: nonNegative,
    onset: z.enum(['step', 'smooth']).optional(),
  }),
]);

export const ReadNoiseSchema = z.discriminatedUnion('form', [
  /** sigma = relative * g per read. */
  z.strictObject({ form: z.literal('relative'), relative: nonNegative }),
  /** 1/f (aihwkit): sigma = g * q * sqrt(ln((t + tr) / (2 tr))), t = time since programming, tr = read duration. */
  z.strictObject({ form: z.literal('1/f'), q: nonNegative, trS: z.number().positive() }),
]);

export const NOISE_PROVENANCE_SECTIONS = ['programming', 'drift', 'read', 'stuck', 'adc', 'irDrop'] as const;

export const NoiseProfileSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().optional(),
  programming: ProgrammingNoiseSchema,
  drift: DriftSchema,
  read: ReadNoiseSchema,
  stuck: z.strictObject({
    /** Probability that a cell is stuck at the window's low / high end. */
    lowRate: z.number().min(0).max(1),
    highRate: z.number().min(0).max(1),
    /**
     * Known cells of one chip (fitted profiles): stuck cells are permanent, so where calibration
     * programmed a cell the simulator need not guess. Per array, `tested` is a bitmap (base64,
     * row-major, bit k of byte k>>3 = cell k, rows x cols) of the cells a calibration source
     * programmed; `stuck` lists those found stuck as [row, col, measured uS]. On that chip, a tested
     * cell is stuck exactly when listed (at its measured conductance); untested cells, and other
     * chips, get draws from lowRate and highRate (see noiseForChip).
     */
    cells: z
      .strictObject({
        chipId: z.string().min(1),
        rows: z.int().min(1),
        cols: z.int().min(1),
        arrays: z.array(
          z.strictObject({
            array: z.int().min(0),
            tested: z.base64(),
            stuck: z.array(z.tuple([z.int().min(0), z.int().min(0), z.number().nonnegative()])),
          }),
        ),
      })
      .optional(),
  }),
  adc: z.strictObject({
    /** Gaussian noise at the ADC input as a fraction of full scale. */
    noiseFullScale: nonNegative,
    /** Per-column gain error ~ N(1, gainStd) and offset ~ N(0, offsetStdLsb) LSB, drawn per chip. */
    gainStd: nonNegative,
    offsetStdLsb: nonNegative,
    /**
     * Measured trims of one chip (fitted profiles): per array column, the ADC gain relative to the
     * chip's mean column gain and the offset in LSB; null where a column was not measured. The
     * simulator uses them instead of drawing gain and offset for columns of that chip (see
     * noiseForChip); other columns, and other chips, get draws from gainStd and offsetStdLsb.
     */
    columns: z
      .strictObject({
        chipId: z.string().min(1),
        arrays: z.array(
          z.strictObject({
            array: z.int().min(0),
            gain: z.array(z.number().positive().nullable()),
            offsetLsb: z.array(z.number().nullable()),
          }),
        ),
      })
      .optional(),
  }),
  irDrop: z.strictObject({
    /** Column outputs scale by (1 - factor * column current / full-scale current). */
    factor: z.number().min(0).max(1),
  }),
  provenance: z.record(z.string(), z.string().min(1)),
  /** Present on fitted profiles: which runs, chip, firmware and fit statistics it came from. */
  fit: z.record(z.string(), z.unknown()).optional(),
}).superRefine((profile, ctx) => {
  for (const section of NOISE_PROVENANCE_SECTIONS) {
    if (!profile.provenance[section]) {
      ctx.addIssue({ code: 'custom', path: ['provenance', section], message: `missing: cite the source (add provenance.${section})` });
    }
  }
});

export type NoiseProfile = z.output<typeof NoiseProfileSchema>;
export type DriftModel = z.output<typeof DriftSchema>;

export function parseNoiseProfile(value: unknown, source = 'noise profile'): NoiseProfile {
  return parseWith(NoiseProfileSchema, value, source);
}

export function loadNoiseProfile(path: string): NoiseProfile {
  return loadJsonFile(NoiseProfileSchema, path);
}

export function noiseProfileHash(profile: NoiseProfile): string {
  return createHash('sha256').update(canonicalJson(profile)).digest('hex');
}

/** A preset name (`rram-wan2022`) in calibration/noise/, or a path to a profile JSON file. */
export function noiseProfilePath(nameOrPath: string): string {
  return presetPath(packageDir('calibration', 'noise'), nameOrPath, 'noise profile');
}

export const DEFAULT_NOISE_PROFILE = 'rram-wan2022';

/** Measured ADC trims of one array column, when the profile has them for that chip. */
export interface ColumnTrim {
  readonly gain: number;
  readonly offsetLsb: number;
}

/**
 * The profile as it applies to a chip: measured per-column ADC trims are for the chip they were
 * measured on, so they are dropped (and `trims` says why) for any other chip or an unknown one.
 */
export function noiseForChip(noise: NoiseProfile, chipId: string | null | undefined): { noise: NoiseProfile; trims: 'used' | 'none' | 'other-chip' } {
  let out = noise;
  // The known-cell map is this chip's too.
  if (noise.stuck.cells && !(chipId && noise.stuck.cells.chipId === chipId)) {
    const { cells: _dropped, ...stuck } = noise.stuck;
    out = { ...out, stuck };
  }
  const cols = noise.adc.columns;
  if (!cols) return { noise: out, trims: 'none' };
  if (chipId && cols.chipId === chipId) return { noise: out, trims: 'used' };
  const { columns: _dropped, ...adc } = noise.adc;
  return { noise: { ...out, adc }, trims: 'other-chip' };
}

/** What a profile knows of one array cell: untested (undefined), tested healthy (null), or stuck at this conductance (uS). */
export type KnownCell = number | null | undefined;

/** Known-cell lookup by (array, row, col) from stuck.cells; undefined everywhere without a map. */
export function knownCells(noise: NoiseProfile): ((array: number, row: number, col: number) => KnownCell) | undefined {
  const map = noise.stuck.cells;
  if (!map) return undefined;
  const byArray = new Map(
    map.arrays.map((a) => [a.array, { tested: Buffer.from(a.tested, 'base64'), stuck: new Map(a.stuck.map(([r, c, g]) => [r * map.cols + c, g])) }]),
  );
  return (array, row, col) => {
    const a = byArray.get(array);
    if (!a || row >= map.rows || col >= map.cols) return undefined;
    const k = row * map.cols + col;
    if (((a.tested[k >> 3] ?? 0) & (1 << (k & 7))) === 0) return undefined;
    return a.stuck.get(k) ?? null;
  };
}

/** Trim lookup by (array, column); undefined where the profile has none. */
export function columnTrims(noise: NoiseProfile): (array: number, col: number) => ColumnTrim | undefined {
  const byArray = new Map((noise.adc.columns?.arrays ?? []).map((a) => [a.array, a]));
  return (array, col) => {
    const a = byArray.get(array);
    const gain = a?.gain[col];
    const offsetLsb = a?.offsetLsb[col];
    return gain !== undefined && gain !== null && offsetLsb !== undefined && offsetLsb !== null ? { gain, offsetLsb } : undefined;
  };
}
