import { InputError } from '../common/errors.js';
import { Rng } from '../common/rng.js';
import { simulate, type HardwareProfile, type SimulationResult } from '../hardware/index.js';
import { analyzeNetwork } from '../spec/index.js';
import { allLayerOptions, normaliseRows, type SignificanceMatrix } from './significance.js';
import { buildCandidate, type LayerChoice, type SearchSpace } from './space.js';

/**
 * NAS4CIM stage 2, hardware-driven operator evaluation by Top-K statistics: sample whole candidate
 * networks by the task-significance ranking, cost each one with the whole-network simulator (so
 * array partitioning, inter-array traffic and ADC overhead are all in the figure), keep the K best,
 * and count how often each operator appears in them. That frequency is the operator's hardware
 * significance; no per-operator cost table or learned predictor is involved.
 */

export type HardwareObjective = 'edp' | 'latency' | 'energy';
export type LatencyMode = 'layerByLayer' | 'pipelined';

export interface HardwareStageOptions {
  /** Candidates to draw (duplicates are drawn again, not re-scored). */
  samples: number;
  topK: number;
  /** Per layer, sample only among the top-M options by task significance (default: half, at least 3). */
  topM?: number;
  objective?: HardwareObjective;
  latencyMode?: LatencyMode;
  /** Only candidates that fit the macro's arrays count (default true). */
  requireFit?: boolean;
  seed: number;
  onProgress?: (done: number, total: number) => void;
}

export interface ScoredCandidate {
  /** Option index per layer (into allLayerOptions(space)). */
  readonly indices: readonly number[];
  readonly choices: readonly LayerChoice[];
  readonly cost: number;
  readonly latencyMs: number;
  readonly energyMj: number;
  readonly edpMsMj: number;
  readonly params: number;
  readonly mops: number;
  readonly arrays: number;
  readonly fits: boolean;
}

export interface HardwareStageResult {
  readonly hardware: SignificanceMatrix;
  readonly topK: readonly ScoredCandidate[];
  /** Every distinct candidate scored (the selection stage falls back on them). */
  readonly pool: readonly ScoredCandidate[];
  readonly evaluated: number;
  readonly fitting: number;
  readonly seconds: number;
}

function objectiveOf(r: SimulationResult, objective: HardwareObjective, mode: LatencyMode): number {
  const t = r.totals[mode];
  return objective === 'edp' ? t.edpMsMj : objective === 'latency' ? t.latencyMs : t.energyMj;
}

export function scoreChoices(
  space: SearchSpace,
  hw: HardwareProfile,
  indices: readonly number[],
  options: readonly (readonly LayerChoice[])[],
  objective: HardwareObjective = 'edp',
  mode: LatencyMode = 'layerByLayer',
): ScoredCandidate {
  const choices = indices.map((j, layer) => options[layer]?.[j] as LayerChoice);
  const net = analyzeNetwork(buildCandidate(space, choices));
  const r = simulate(net, hw);
  const t = r.totals[mode];
  return {
    indices,
    choices,
    cost: objectiveOf(r, objective, mode),
    latencyMs: t.latencyMs,
    energyMj: t.energyMj,
    edpMsMj: t.edpMsMj,
    params: net.params,
    mops: net.mops,
    arrays: r.fit.arraysRequired,
    fits: r.fit.fits,
  };
}

/** Cumulative sampling weights per layer over its top-M options by task significance. */
function samplingTables(task: SignificanceMatrix, topM: number | undefined): { index: number[]; cumulative: number[] }[] {
  const rows = normaliseRows(task.layers.map((l) => l.values));
  return rows.map((row) => {
    const m = Math.min(row.length, topM ?? Math.max(3, Math.ceil(row.length / 2)));
    const ranked = row.map((v, j) => [v, j] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, m);
    const total = ranked.reduce((s, [v]) => s + v, 0);
    let acc = 0;
    const cumulative = ranked.map(([v]) => (acc += total > 0 ? v / total : 1 / ranked.length));
    return { index: ranked.map(([, j]) => j), cumulative };
  });
}

export function hardwareStage(
  space: SearchSpace,
  hw: HardwareProfile,
  task: SignificanceMatrix,
  opts: HardwareStageOptions,
): HardwareStageResult {
  const started = performance.now();
  const options = allLayerOptions(space);
  if (task.layers.length !== options.length || task.layers.some((l, i) => l.values.length !== options[i]?.length)) {
    throw new InputError('INVALID_INPUT', `task significance matrix does not match search space ${space.name}`, {
      details: { field: 'layers' },
    });
  }
  const objective = opts.objective ?? 'edp';
  const mode = opts.latencyMode ?? 'layerByLayer';
  const requireFit = opts.requireFit ?? true;
  const tables = samplingTables(task, opts.topM);
  const rng = new Rng(opts.seed);
  const seen = new Set<string>();
  const pool: ScoredCandidate[] = [];
  let fitting = 0;

  for (let s = 0; s < opts.samples; s++) {
    const indices = tables.map((t) => {
      const u = rng.next();
      let k = t.cumulative.findIndex((c) => u < c);
      if (k < 0) k = t.cumulative.length - 1;
      return t.index[k] as number;
    });
    const key = indices.join(',');
    if (!seen.has(key)) {
      seen.add(key);
      const scored = scoreChoices(space, hw, indices, options, objective, mode);
      pool.push(scored);
      if (scored.fits) fitting++;
    }
    if (opts.onProgress && (s + 1) % 1000 === 0) opts.onProgress(s + 1, opts.samples);
  }
  opts.onProgress?.(opts.samples, opts.samples);

  const eligible = requireFit ? pool.filter((c) => c.fits) : pool;
  if (eligible.length === 0) {
    const fewest = pool.reduce((m, c) => Math.min(m, c.arrays), Infinity);
    throw new InputError(
      'DOES_NOT_FIT',
      `none of ${pool.length} sampled ${space.name} candidates fits ${hw.name} (${fewest} arrays at the fewest, ${hw.array.tiles * hw.array.arraysPerTile} available)`,
    );
  }
  const topK = [...eligible].sort((a, b) => a.cost - b.cost).slice(0, opts.topK);
  const counts = options.map((row) => row.map(() => 0));
  for (const c of topK) {
    c.indices.forEach((j, layer) => {
      const row = counts[layer] as number[];
      row[j] = (row[j] ?? 0) + 1;
    });
  }
  const values = normaliseRows(counts);

  return {
    hardware: {
      kind: 'hardware',
      space: space.name,
      meta: {
        method: 'top-k',
        hardwareProfile: hw.name,
        samples: opts.samples,
        distinctCandidates: pool.length,
        fittingCandidates: fitting,
        k: topK.length,
        objective,
        latencyMode: mode,
        requireFit,
        seed: opts.seed,
      },
      layers: options.map((row, i) => ({ options: row, values: values[i] as number[] })),
    },
    topK,
    pool,
    evaluated: pool.length,
    fitting,
    seconds: (performance.now() - started) / 1000,
  };
}
