import { z } from 'zod';
import type { SearchSpace, LayerChoice } from './space.js';
import { opsForLayer, SEARCHABLE_OPS } from './space.js';

/**
 * The candidate operators of each searchable layer: the null op plus every (kind, kernel,
 * channels) combination the space allows there. Significance matrices are indexed
 * [layer][option] in this order, which is stable for a given space.
 */
export function layerOptions(space: SearchSpace, layer: number): LayerChoice[] {
  const options: LayerChoice[] = [];
  for (const op of opsForLayer(space, layer)) {
    if (op === 'identity') {
      options.push({ op, kernel: 1, out: 0 });
      continue;
    }
    for (const kernel of space.kernels) {
      for (const out of space.channels) options.push({ op, kernel, out });
    }
  }
  return options;
}

export function allLayerOptions(space: SearchSpace): LayerChoice[][] {
  return space.strides.map((_, i) => layerOptions(space, i));
}

export function optionLabel(o: LayerChoice): string {
  return o.op === 'identity' ? 'identity' : `${o.op}${o.kernel}x${o.kernel}/${o.out}`;
}

const LayerChoiceSchema = z.strictObject({
  op: z.enum(SEARCHABLE_OPS),
  kernel: z.int().min(1),
  out: z.int().min(0),
});

/** A layer x operator matrix with the operator of each column spelled out (saved as JSON). */
export const SignificanceMatrixSchema = z.strictObject({
  kind: z.enum(['task', 'hardware', 'combined']),
  space: z.string(),
  /** How the values were obtained (method, samples, K, weights...). */
  meta: z.record(z.string(), z.unknown()),
  layers: z.array(
    z.strictObject({
      options: z.array(LayerChoiceSchema),
      values: z.array(z.number()),
    }),
  ),
});

export type SignificanceMatrix = z.output<typeof SignificanceMatrixSchema>;

/** Rows normalised to sum to 1 (a row of zeros stays zeros). */
export function normaliseRows(rows: readonly (readonly number[])[]): number[][] {
  return rows.map((row) => {
    const sum = row.reduce((s, v) => s + v, 0);
    return sum > 0 ? row.map((v) => v / sum) : row.map(() => 0);
  });
}

/** Softmax of each row (task significance from architecture coefficients alpha). */
export function softmaxRows(rows: readonly (readonly number[])[]): number[][] {
  return rows.map((row) => {
    const max = Math.max(...row);
    const exps = row.map((v) => Math.exp(v - max));
    const sum = exps.reduce((s, v) => s + v, 0);
    return exps.map((v) => v / sum);
  });
}
