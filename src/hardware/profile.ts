import { createHash } from 'node:crypto';
import { z } from 'zod';
import { loadJsonFile, parseWith } from '../common/validate.js';

/**
 * Hardware profile: everything the cost model knows about a CIM macro. Units are in the field
 * names' comments: ns, pJ, mW, MHz, Gbit/s. Every section must cite where its figures come from in
 * `provenance` (same key as the section), so a profile can always be traced back to a paper, a
 * simulator's source or a measurement.
 */

const positive = z.number().positive();
const nonNegative = z.number().nonnegative();
const count = z.int().min(1);

export const HardwareProfileSchema = z
  .strictObject({
    name: z.string().min(1),
    description: z.string().optional(),
    array: z.strictObject({
      rows: count.max(4096),
      cols: count.max(4096),
      /** Arrays sharing one tile's buffer and bus. Arrays available = tiles * arraysPerTile. */
      arraysPerTile: count,
      tiles: count,
    }),
    weights: z.strictObject({
      /** Signed weight precision. With differential pairs the sign lives in the pair, so the
       * magnitude takes bits - 1; without them weights are offset-encoded over all bits. */
      bits: z.int().min(1).max(16),
      bitsPerCell: z.int().min(1).max(8),
      differential: z.boolean(),
    }),
    conductance: z.strictObject({
      /** Programmable window of one cell (uS): weight 0 sits at minUs, full scale at maxUs. */
      minUs: nonNegative,
      maxUs: positive,
      readVoltageV: positive,
    }),
    inputs: z.strictObject({
      /** Activation precision fed bit-serially through the DACs. */
      bits: z.int().min(1).max(16),
    }),
    dac: z.strictObject({
      bits: z.int().min(1).max(16),
      perArray: count,
      latencyNs: nonNegative,
      /** Per row driven per input bit cycle. */
      energyPj: nonNegative,
    }),
    adc: z.strictObject({
      bits: z.int().min(1).max(16),
      perArray: count,
      latencyNs: nonNegative,
      /** Per conversion. */
      energyPj: nonNegative,
      /** Full-scale input current as a fraction of the largest column current
       * (array rows x read voltage x conductance.maxUs); currents above it clip. */
      fullScaleFraction: z.number().positive().max(1),
      /** Which rows set the ADC reference: 'array' (every conversion uses the array's full scale
       * above) or 'block' (the controller sets the reference per weight matrix to
       * fullScaleFraction x the rows of its largest row block x read voltage x maxUs, so a matrix
       * with few rows is not resolved by a handful of codes). */
      range: z.enum(['array', 'block']).default('array'),
    }),
    crossbar: z.strictObject({
      readLatencyNs: nonNegative,
      /** Per active cell per read (one input bit cycle). */
      cellReadEnergyPj: nonNegative,
    }),
    shiftAdd: z.strictObject({
      /** Tail latency after the last conversion of a vector (earlier shift-adds overlap conversions). */
      latencyNs: nonNegative,
      /** Per ADC output shifted and added. */
      energyPj: nonNegative,
    }),
    digital: z.strictObject({
      clockMHz: positive,
      /** Parallel lanes for element-wise work (activation, pooling, skip additions). */
      lanes: count,
      /** Per element-wise operation or partial-sum addition. */
      energyPjPerOp: nonNegative,
      /** Width of partial sums sent between arrays. */
      partialSumBits: z.int().min(1).max(64),
    }),
    buffer: z.strictObject({
      cycleNs: nonNegative,
      widthBits: count,
      energyPjPerBit: nonNegative,
    }),
    interconnect: z.strictObject({
      bandwidthGbps: positive,
      energyPjPerBit: nonNegative,
    }),
    leakage: z.strictObject({
      powerMw: nonNegative,
    }),
    mapping: z.strictObject({
      /** MNSIM-style: keep each input channel's k*k kernel rows inside one array. */
      kernelPacking: z.boolean(),
      /**
       * Tiles of different layers may share an array (see packing.ts); false gives every tile an
       * array of its own (ISAAC-like).
       */
      shareArrays: z.boolean().default(false),
    }),
    calibration: z.strictObject({
      /** Multipliers applied to every latency and energy (1 = uncalibrated). */
      latencyFactor: positive,
      energyFactor: positive,
    }),
    provenance: z.record(z.string(), z.string().min(1)),
  })
  .superRefine((profile, ctx) => {
    for (const section of PROVENANCE_SECTIONS) {
      if (!profile.provenance[section]) {
        ctx.addIssue({
          code: 'custom',
          path: ['provenance', section],
          message: `missing: every section must cite its source (add provenance.${section})`,
        });
      }
    }
    if (profile.conductance.minUs >= profile.conductance.maxUs) {
      ctx.addIssue({ code: 'custom', path: ['conductance', 'maxUs'], message: 'must be above conductance.minUs' });
    }
    if (profile.dac.bits > profile.inputs.bits) {
      ctx.addIssue({ code: 'custom', path: ['dac', 'bits'], message: 'DAC bits exceed input bits' });
    }
    if (profile.dac.perArray > profile.array.rows) {
      ctx.addIssue({ code: 'custom', path: ['dac', 'perArray'], message: `more DACs than array rows (${profile.array.rows})` });
    }
    if (profile.adc.perArray > profile.array.cols) {
      ctx.addIssue({ code: 'custom', path: ['adc', 'perArray'], message: `more ADCs than array columns (${profile.array.cols})` });
    }
  });

export const PROVENANCE_SECTIONS = [
  'array',
  'weights',
  'conductance',
  'inputs',
  'dac',
  'adc',
  'crossbar',
  'shiftAdd',
  'digital',
  'buffer',
  'interconnect',
  'leakage',
  'mapping',
  'calibration',
] as const;

export type HardwareProfile = z.output<typeof HardwareProfileSchema>;

export function parseHardwareProfile(value: unknown, source = 'hardware profile'): HardwareProfile {
  return parseWith(HardwareProfileSchema, value, source);
}

export function loadHardwareProfile(path: string): HardwareProfile {
  return loadJsonFile(HardwareProfileSchema, path);
}

/** Arrays the macro offers. */
export function arraysAvailable(hw: HardwareProfile): number {
  return hw.array.tiles * hw.array.arraysPerTile;
}

/** Bits of weight magnitude stored in cells (the sign rides on the differential pair). */
export function weightMagnitudeBits(hw: HardwareProfile): number {
  return hw.weights.differential ? Math.max(1, hw.weights.bits - 1) : hw.weights.bits;
}

/** Cells per weight along the columns: bit slices times 2 for a differential pair. */
export function columnsPerWeight(hw: HardwareProfile): number {
  const slices = Math.ceil(weightMagnitudeBits(hw) / hw.weights.bitsPerCell);
  return slices * (hw.weights.differential ? 2 : 1);
}

/**
 * Full-scale current (uA) of the ADC conversions of a weight matrix whose largest row block has
 * `blockRows` rows: the array's full scale, or with adc.range 'block' the block's own.
 */
export function adcFullScaleUa(hw: HardwareProfile, blockRows: number): number {
  const rows = hw.adc.range === 'block' ? Math.min(hw.array.rows, Math.max(1, blockRows)) : hw.array.rows;
  return hw.adc.fullScaleFraction * rows * hw.conductance.readVoltageV * hw.conductance.maxUs;
}

/** SHA-256 of the profile's canonical JSON (keys sorted): recorded with every result. */
export function hardwareProfileHash(hw: HardwareProfile): string {
  // Cached per profile object: the search scores thousands of networks against one profile.
  let hash = hashCache.get(hw);
  if (hash === undefined) {
    hash = createHash('sha256').update(canonicalJson(hw)).digest('hex');
    hashCache.set(hw, hash);
  }
  return hash;
}

const hashCache = new WeakMap<HardwareProfile, string>();

export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const sorted: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
      return sorted;
    }
    return v;
  });
}
