import { z } from 'zod';
import { ActivationSchema, LAYER_OPS, PaddingSchema } from '../spec/schema.js';

/**
 * The LOAD_NETWORK document: what the macro's controller needs to run a mapped network on its own.
 * Weights are not in it; they were programmed into the arrays beforehand with PROGRAM, and this
 * document says where each weight tile lives, how it was quantised and what to do between layers.
 * Sent as UTF-8 JSON in LOAD_NETWORK chunks and validated with this schema on the device side.
 */

const int0 = z.int().min(0);
const int1 = z.int().min(1);
const ShapeSchema = z.tuple([int1, int1, int1]);

/** One tile of a weight matrix placed on one array. */
export const PlacementSchema = z.strictObject({
  array: int0,
  /** Top-left cell of the tile in the array. */
  row: int0,
  col: int0,
  rows: int1,
  cols: int1,
  /** First weight-matrix row (input index) and column (output index) the tile holds. */
  srcRow: int0,
  srcCol: int0,
  /** Bit slice held by the tile, 0 = least significant. */
  slice: int0.default(0),
  /** Member of a differential pair: the tile holds the positive or the negative part. */
  polarity: z.enum(['pos', 'neg']).default('pos'),
});

/**
 * A weight matrix: fan-in rows (k*k*cin for a conv, im2col order (ky, kx, cin); dense: the
 * flattened (h, w, c) input) by output-channel columns. The controller computes, per column j,
 *   x      = clamp(round(input / input.scale), input.qmin, input.qmax)     (integer levels)
 *   acc[j] = sum over slices s of levelsPerCell^s * (I_pos,s[j] - I_neg,s[j]) / (V_read * stepUs)
 *            (without pairs: I_s[j] / (V_read * stepUs) - (minUs/stepUs) * sum(x), minus the
 *             2^(weightBits-1) offset * sum(x))
 *   out[j] = weightScale[j] * input.scale * acc[j] + bias[j]
 * where I is the column current summed over every row tile of that slice and polarity,
 * stepUs = (conductance.maxUs - conductance.minUs) / (2^bitsPerSlice - 1).
 */
export const WeightMatrixSchema = z
  .strictObject({
    /** Role of the matrix in its layer, as the network spec derives it: conv, conv1, conv2,
     * reduce, spatial, expand, projection, dense. */
    name: z.string().min(1),
    rows: int1,
    cols: int1,
    weightBits: z.int().min(1).max(16),
    slices: z.int().min(1).max(16).default(1),
    bitsPerSlice: z.int().min(1).max(8).default(1),
    differential: z.boolean().default(true),
    /** Real weight = code * weightScale (per tensor or per output column). */
    weightScale: z.union([z.number().positive(), z.array(z.number().positive()).min(1)]),
    /** Per output column, added after scaling; omitted = no bias. */
    bias: z.array(z.number()).optional(),
    /** Quantisation of this matrix's input vector into the integer levels the DACs apply. */
    input: z.strictObject({ scale: z.number().positive(), qmin: z.int(), qmax: z.int() }),
    /** ADC full scale (uA) for this matrix's conversions, set by the controller's ADC reference
     * before its MVMs; omitted = the chip's own full scale (HELLO / chip profile). */
    adcFullScaleUa: z.number().positive().optional(),
    placements: z.array(PlacementSchema).min(1),
  })
  .superRefine((m, ctx) => {
    if (Array.isArray(m.weightScale) && m.weightScale.length !== m.cols) {
      ctx.addIssue({ code: 'custom', path: ['weightScale'], message: `needs ${m.cols} values (one per column), got ${m.weightScale.length}` });
    }
    if (m.bias && m.bias.length !== m.cols) {
      ctx.addIssue({ code: 'custom', path: ['bias'], message: `needs ${m.cols} values (one per column), got ${m.bias.length}` });
    }
    m.placements.forEach((p, i) => {
      if (p.srcRow + p.rows > m.rows || p.srcCol + p.cols > m.cols) {
        ctx.addIssue({ code: 'custom', path: ['placements', i], message: `tile ${p.rows}x${p.cols} at (${p.srcRow}, ${p.srcCol}) lies outside the ${m.rows}x${m.cols} matrix` });
      }
      if (p.slice >= m.slices) ctx.addIssue({ code: 'custom', path: ['placements', i, 'slice'], message: `slice ${p.slice} but the matrix has ${m.slices}` });
      if (!m.differential && p.polarity === 'neg') {
        ctx.addIssue({ code: 'custom', path: ['placements', i, 'polarity'], message: 'negative tile in a non-differential matrix' });
      }
    });
  });

export const NetworkLayerSchema = z.strictObject({
  op: z.enum(LAYER_OPS),
  input: ShapeSchema,
  output: ShapeSchema,
  activation: ActivationSchema.default('none'),
  kernel: int1.optional(),
  stride: int1.optional(),
  padding: PaddingSchema.optional(),
  expansion: int1.optional(),
  pool: z.strictObject({ kind: z.enum(['max', 'avg']), size: int1, stride: int1 }).optional(),
  matrices: z.array(WeightMatrixSchema).default([]),
});

export const NETWORK_PROGRAM_FORMAT = 'cimbench.network-program/1';

export const NetworkProgramSchema = z
  .strictObject({
    format: z.literal(NETWORK_PROGRAM_FORMAT),
    name: z.string().min(1),
    input: ShapeSchema,
    classes: z.int().min(2),
    /** Bits per input element applied bit-serially (MVM inputBits). */
    inputBits: z.int().min(1).max(16),
    /** Conductance window the weights were programmed into: digit d sits at minUs + d * stepUs. */
    conductance: z.strictObject({ minUs: z.number().nonnegative(), maxUs: z.number().positive() }),
    layers: z.array(NetworkLayerSchema).min(1),
  })
  .superRefine((p, ctx) => {
    if (p.conductance.maxUs <= p.conductance.minUs) {
      ctx.addIssue({ code: 'custom', path: ['conductance', 'maxUs'], message: 'must be above conductance.minUs' });
    }
    let prev = p.input;
    p.layers.forEach((l, i) => {
      if (l.input.join('x') !== prev.join('x')) {
        ctx.addIssue({ code: 'custom', path: ['layers', i, 'input'], message: `is ${l.input.join('x')} but the previous output is ${prev.join('x')}` });
      }
      const weighted = l.op !== 'identity' && l.op !== 'pool' && l.op !== 'gap';
      if (weighted && l.matrices.length === 0) ctx.addIssue({ code: 'custom', path: ['layers', i, 'matrices'], message: `a ${l.op} layer needs weights` });
      if (l.op === 'pool' && !l.pool) ctx.addIssue({ code: 'custom', path: ['layers', i, 'pool'], message: 'a pool layer needs pool settings' });
      prev = l.output;
    });
    const last = p.layers[p.layers.length - 1];
    if (last && last.output[0] * last.output[1] * last.output[2] !== p.classes) {
      ctx.addIssue({ code: 'custom', path: ['layers', p.layers.length - 1, 'output'], message: `must hold ${p.classes} logits` });
    }
  });

export type NetworkProgram = z.output<typeof NetworkProgramSchema>;
export type NetworkProgramInput = z.input<typeof NetworkProgramSchema>;
export type Placement = z.output<typeof PlacementSchema>;

/**
 * Device-side check that every tile fits the chip and no two tiles claim the same cell (tiles of
 * different layers may share an array, side by side); returns a message naming the tile, or undefined.
 */
export function checkPlacementsFit(p: NetworkProgram, geometry: { arrays: number; rows: number; cols: number }): string | undefined {
  const placed = new Map<number, Array<{ where: string; tile: Placement }>>();
  for (let i = 0; i < p.layers.length; i++) {
    const layer = p.layers[i];
    if (!layer) continue;
    for (let j = 0; j < layer.matrices.length; j++) {
      const m = layer.matrices[j];
      if (!m) continue;
      for (let k = 0; k < m.placements.length; k++) {
        const t = m.placements[k];
        if (!t) continue;
        const where = `layers[${i}].matrices[${j}].placements[${k}]`;
        if (t.array >= geometry.arrays) return `${where}: array ${t.array} but the chip has ${geometry.arrays}`;
        if (t.row + t.rows > geometry.rows || t.col + t.cols > geometry.cols) {
          return `${where}: tile ${t.rows}x${t.cols} at (${t.row}, ${t.col}) exceeds the ${geometry.rows}x${geometry.cols} array`;
        }
        const onArray = placed.get(t.array) ?? [];
        for (const other of onArray) {
          const o = other.tile;
          if (t.row < o.row + o.rows && o.row < t.row + t.rows && t.col < o.col + o.cols && o.col < t.col + t.cols) {
            return `${where}: tile ${t.rows}x${t.cols} at (${t.row}, ${t.col}) of array ${t.array} overlaps ${other.where}`;
          }
        }
        onArray.push({ where, tile: t });
        placed.set(t.array, onArray);
      }
    }
  }
  return undefined;
}
