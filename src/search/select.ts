import { z } from 'zod';
import { InputError } from '../common/errors.js';
import type { HardwareProfile } from '../hardware/index.js';
import type { NetworkSpec } from '../spec/index.js';
import { scoreChoices, type HardwareObjective, type LatencyMode, type ScoredCandidate } from './hardware-stage.js';
import { allLayerOptions, normaliseRows, type SignificanceMatrix } from './significance.js';
import { buildCandidate, type SearchSpace } from './space.js';

/**
 * NAS4CIM stage 3, selection: score = w_task * task significance + w_hw * hardware significance,
 * per layer and operator (both rows normalised to sum 1), and the best operator per layer.
 */
export const SelectionWeightsSchema = z.strictObject({
  task: z.number().nonnegative(),
  hardware: z.number().nonnegative(),
});
export type SelectionWeights = z.output<typeof SelectionWeightsSchema>;

export const PRESETS = {
  accuracy: { task: 0.8, hardware: 0.2 },
  balanced: { task: 0.5, hardware: 0.5 },
  edp: { task: 0.2, hardware: 0.8 },
} as const satisfies Record<string, SelectionWeights>;
export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

export function presetWeights(name: string): SelectionWeights {
  const weights = (PRESETS as Record<string, SelectionWeights>)[name];
  if (!weights) {
    throw new InputError('INVALID_INPUT', `unknown preset "${name}" (expected one of ${PRESET_NAMES.join(', ')})`, {
      details: { field: 'preset' },
    });
  }
  return weights;
}

export function combineSignificance(task: SignificanceMatrix, hardware: SignificanceMatrix, w: SelectionWeights): SignificanceMatrix {
  const t = normaliseRows(task.layers.map((l) => l.values));
  const h = normaliseRows(hardware.layers.map((l) => l.values));
  return {
    kind: 'combined',
    space: task.space,
    meta: { weights: w },
    layers: task.layers.map((l, i) => ({
      options: l.options,
      values: l.values.map((_, j) => w.task * ((t[i] as number[])[j] as number) + w.hardware * ((h[i] as number[])[j] as number)),
    })),
  };
}

export interface Selection {
  readonly combined: SignificanceMatrix;
  readonly chosen: ScoredCandidate;
  readonly spec: NetworkSpec;
  /** True when the per-layer best did not fit and the best fitting evaluated candidate was taken. */
  readonly fellBack: boolean;
}

function combinedScore(combined: SignificanceMatrix, indices: readonly number[]): number {
  return indices.reduce((s, j, layer) => s + (combined.layers[layer]?.values[j] ?? 0), 0);
}

export function selectNetwork(
  space: SearchSpace,
  hw: HardwareProfile,
  task: SignificanceMatrix,
  hardware: SignificanceMatrix,
  weights: SelectionWeights,
  pool: readonly ScoredCandidate[],
  opts: { name: string; requireFit?: boolean; objective?: HardwareObjective; latencyMode?: LatencyMode },
): Selection {
  const combined = combineSignificance(task, hardware, weights);
  const options = allLayerOptions(space);
  const best = combined.layers.map((l) => l.values.reduce((bi, v, j, arr) => (v > (arr[bi] as number) ? j : bi), 0));
  let chosen = scoreChoices(space, hw, best, options, opts.objective, opts.latencyMode);
  let fellBack = false;
  if ((opts.requireFit ?? true) && !chosen.fits) {
    const fitting = pool.filter((c) => c.fits);
    if (fitting.length === 0) {
      throw new InputError('DOES_NOT_FIT', `the selected ${space.name} network needs ${chosen.arrays} arrays and no evaluated candidate fits ${hw.name}`);
    }
    chosen = fitting.reduce((a, b) => (combinedScore(combined, b.indices) > combinedScore(combined, a.indices) ? b : a));
    fellBack = true;
  }
  return { combined, chosen, spec: buildCandidate(space, chosen.choices, opts.name), fellBack };
}
