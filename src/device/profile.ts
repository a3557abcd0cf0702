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
    /** g(t) = g_prog + meanUsPerLn * ln(t / t0) + N(0, spread0Us + spreadUsPerLn * ln(t / t0)) per device. */
    form: z.literal('log'),
    t0S: z.number().positive(),
    meanUsPerLn: z.number(),
    spread0Us: nonNegative,
    spreadUsPerLn: nonNegative,
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
  }),
  adc: z.strictObject({
    /** Gaussian noise at the ADC input as a fraction of full scale. */
    noiseFullScale: nonNegative,
    /** Per-column gain error ~ N(1, gainStd) and offset ~ N(0, offsetStdLsb) LSB, drawn per chip. */
    gainStd: nonNegative,
    offsetStdLsb: nonNegative,
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
