import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../common/errors.js';
import { packageDir } from '../common/paths.js';
import { readJsonFile } from '../common/validate.js';
import { SignificanceMatrixSchema, type SignificanceMatrix } from '../search/significance.js';
import { BenchRuns, SearchRuns, type BenchRunRow, type Db, type RunSummary, type SearchRunRow } from '../store/index.js';

/**
 * Read-only views of the store for the JSON API: everything aggregated in SQL or in one pass over
 * typed rows, so a run of 130,000 cells answers in tens of milliseconds and the browser draws
 * hundreds of points, not a point per cell.
 */

export interface RunListItem {
  readonly id: number;
  readonly campaignName: string;
  readonly mode: string;
  readonly status: string;
  readonly exitStatus: string | null;
  readonly createdAt: string;
  readonly endedAt: string | null;
  readonly networkName: string;
  readonly link: string;
  readonly cellsPlanned: number;
  readonly arraysUsed: number;
}

export interface ArrayInfo {
  readonly array: number;
  readonly rows: number;
  readonly cols: number;
  readonly cells: number;
  readonly programmed: number;
  readonly failed: number;
  readonly meanPulses: number | null;
}

export interface LevelHistogram {
  readonly targetUs: number;
  readonly cells: number;
  readonly counts: number[];
}

export interface Histograms {
  /** Bin edges in uS (length bins + 1), shared by every level. */
  readonly edgesUs: number[];
  readonly levels: LevelHistogram[];
}

export interface DriftSeries {
  readonly accuracy: ReadonlyArray<{ point: number; tS: number; simulatedMean: number | null; simulatedStd: number | null; measured: number | null }>;
  /** Cell-weighted over the run's matrices: mean and spread of (conductance - target), per time point. */
  readonly conductance: ReadonlyArray<{
    point: number;
    tS: number;
    simulatedMeanUs: number | null;
    simulatedStdUs: number | null;
    measuredMeanUs: number | null;
    measuredStdUs: number | null;
  }>;
}

export interface RunDetail {
  readonly summary: RunSummary;
  readonly arrays: ArrayInfo[];
  readonly histograms: Histograms;
  readonly drift: DriftSeries;
  readonly matrixStats: ReadonlyArray<{ point: number; source: string; matrix: number; layer: number; name: string; cells: number; stuckFraction: number; gErrMeanUs: number; gErrStdUs: number }>;
}

export interface Heatmap {
  readonly array: number;
  readonly rows: number;
  readonly cols: number;
  /** Cells per bin side. */
  readonly binRows: number;
  readonly binCols: number;
  /** One entry per non-empty bin, parallel arrays. */
  readonly r: number[];
  readonly c: number[];
  /** Mean (final - target) in uS; mean |final - target|; mean pulses; cells with an outcome. */
  readonly errorUs: number[];
  readonly absErrorUs: number[];
  readonly pulses: number[];
  readonly cells: number[];
}

const HIST_BINS = 40;
/** More distinct targets than this are grouped into this many target ranges. */
const MAX_LEVELS = 16;

function arrayGeometry(db: Db, runId: number): { rows: number; cols: number } {
  const row = db.prepare('SELECT hardware_json FROM runs WHERE id = ?').get(runId) as { hardware_json: string } | undefined;
  const hw = row ? (JSON.parse(row.hardware_json) as { array?: { rows?: number; cols?: number } }) : {};
  return { rows: hw.array?.rows ?? 128, cols: hw.array?.cols ?? 128 };
}

interface CellScan {
  readonly arrays: Map<number, { cells: number; programmed: number; failed: number; pulses: number; pulsed: number }>;
  /** Every distinct target of the run (cells with or without an outcome). */
  readonly targets: Set<number>;
  /** Target and final conductance of every cell with a final value, parallel. */
  readonly target: number[];
  readonly final: number[];
  lo: number;
  hi: number;
}

function emptyScan(): CellScan {
  return { arrays: new Map(), targets: new Set(), target: [], final: [], lo: Infinity, hi: -Infinity };
}

/** Programmed conductance per target level (each distinct target, or MAX_LEVELS target ranges), HIST_BINS shared bins. */
function histogramsOf(scan: CellScan): Histograms {
  if (scan.final.length === 0) return { edgesUs: [], levels: [] };
  const lo = scan.lo;
  const width = Math.max(scan.hi - lo, 1e-6) / HIST_BINS;
  const targets = [...scan.targets].sort((a, b) => a - b);
  const groupOf = new Map<number, number>();
  const groupTarget: number[] = [];
  if (targets.length <= MAX_LEVELS) {
    targets.forEach((t, i) => (groupOf.set(t, i), groupTarget.push(t)));
  } else {
    const tLo = targets[0] as number;
    const tW = ((targets.at(-1) as number) - tLo) / MAX_LEVELS || 1;
    for (let g = 0; g < MAX_LEVELS; g++) groupTarget.push(tLo + (g + 0.5) * tW);
    for (const t of targets) groupOf.set(t, Math.min(MAX_LEVELS - 1, Math.floor((t - tLo) / tW)));
  }
  const counts = groupTarget.map(() => new Array<number>(HIST_BINS).fill(0));
  const cells = groupTarget.map(() => 0);
  for (let i = 0; i < scan.final.length; i++) {
    const g = groupOf.get(scan.target[i] as number) as number;
    const b = Math.min(HIST_BINS - 1, Math.max(0, Math.floor(((scan.final[i] as number) - lo) / width)));
    const row = counts[g] as number[];
    row[b] = (row[b] as number) + 1;
    cells[g] = (cells[g] as number) + 1;
  }
  return {
    edgesUs: Array.from({ length: HIST_BINS + 1 }, (_, i) => lo + i * width),
    levels: groupTarget.map((targetUs, g) => ({ targetUs, cells: cells[g] as number, counts: counts[g] as number[] })).filter((l) => l.cells > 0),
  };
}

export class StoreViews {
  private readonly runs: BenchRuns;
  private readonly searches: SearchRuns;

  private scanned: CellScan | undefined;
  private readonly scanStmt: { get(id: number): unknown };

  constructor(private readonly db: Db) {
    this.runs = new BenchRuns(db);
    this.searches = new SearchRuns(db);
    // The aggregate hands its accumulator over through `scanned` (an SQL result can only be a scalar).
    db.aggregate('cimbench_cell_scan', {
      start: emptyScan,
      // Five SQL arguments (better-sqlite3 counts the parameters); the typings know only one.
      step: ((acc: CellScan, array: number, state: number, pulses: number | null, target: number, final: number | null) => {
        let a = acc.arrays.get(array);
        if (!a) acc.arrays.set(array, (a = { cells: 0, programmed: 0, failed: 0, pulses: 0, pulsed: 0 }));
        a.cells++;
        if (state === 1) a.programmed++;
        else if (state === 2) a.failed++;
        if (pulses !== null) {
          a.pulses += pulses;
          a.pulsed++;
        }
        acc.targets.add(target);
        if (final !== null) {
          acc.target.push(target);
          acc.final.push(final);
          if (final < acc.lo) acc.lo = final;
          if (final > acc.hi) acc.hi = final;
        }
        return acc;
      }) as unknown as (acc: CellScan, next: unknown) => CellScan,
      result: (acc: CellScan) => {
        this.scanned = acc;
        return acc.final.length;
      },
    });
    this.scanStmt = db.prepare("SELECT cimbench_cell_scan(array_no, (state = 'programmed') + 2 * (state = 'failed'), pulses, target_us, final_us) FROM cells WHERE run_id = ?").pluck(true);
  }

  listRuns(limit: number): RunListItem[] {
    return this.runs.list(limit).map((r: BenchRunRow) => ({
      id: r.id,
      campaignName: r.campaignName,
      mode: r.mode,
      status: r.status,
      exitStatus: r.exitStatus,
      createdAt: r.createdAt,
      endedAt: r.endedAt,
      networkName: r.networkName,
      link: r.link,
      cellsPlanned: r.cellsPlanned,
      arraysUsed: r.arraysUsed,
    }));
  }

  runDetail(id: number): RunDetail {
    const summary = this.runs.summary(id);
    const db = this.db;
    const geo = arrayGeometry(db, id);
    const scan = this.scanCells(id);
    const arrays = [...scan.arrays]
      .sort((a, b) => a[0] - b[0])
      .map(([array, a]) => ({ array, cells: a.cells, programmed: a.programmed, failed: a.failed, meanPulses: a.pulsed > 0 ? a.pulses / a.pulsed : null, rows: geo.rows, cols: geo.cols }));
    const matrixStats = (
      db.prepare('SELECT point, source, matrix, layer, name, cells, stuck_fraction, g_err_mean_us, g_err_std_us FROM matrix_stats WHERE run_id = ? ORDER BY point, source, matrix').all(id) as Array<{
        point: number;
        source: string;
        matrix: number;
        layer: number;
        name: string;
        cells: number;
        stuck_fraction: number;
        g_err_mean_us: number;
        g_err_std_us: number;
      }>
    ).map((m) => ({ point: m.point, source: m.source, matrix: m.matrix, layer: m.layer, name: m.name, cells: m.cells, stuckFraction: m.stuck_fraction, gErrMeanUs: m.g_err_mean_us, gErrStdUs: m.g_err_std_us }));
    return { summary, arrays, histograms: histogramsOf(scan), drift: this.drift(summary, matrixStats), matrixStats };
  }

  /** Programmed conductance per target level. */
  histograms(id: number): Histograms {
    return histogramsOf(this.scanCells(id));
  }

  /**
   * One pass over a run's cells through a JavaScript aggregate: SQLite's GROUP BY sorts the rows
   * (a temporary B-tree), which for 130,000 cells cost five times the scan itself.
   */
  private scanCells(id: number): CellScan {
    this.scanned = undefined;
    this.scanStmt.get(id);
    const scan = this.scanned as CellScan | undefined;
    this.scanned = undefined;
    return scan ?? emptyScan();
  }

  private drift(summary: RunSummary, stats: RunDetail['matrixStats']): DriftSeries {
    const weighted = (point: number, source: string): { mean: number; std: number } | null => {
      const rows = stats.filter((s) => s.point === point && s.source === source);
      const n = rows.reduce((a, s) => a + s.cells, 0);
      if (n === 0) return null;
      const mean = rows.reduce((a, s) => a + s.cells * s.gErrMeanUs, 0) / n;
      // Pooled spread: within-matrix variance plus the spread of the matrix means.
      const variance = rows.reduce((a, s) => a + s.cells * (s.gErrStdUs ** 2 + (s.gErrMeanUs - mean) ** 2), 0) / n;
      return { mean, std: Math.sqrt(variance) };
    };
    return {
      accuracy: summary.points.map((p) => ({
        point: p.point,
        tS: p.actualS ?? p.nominalS,
        simulatedMean: p.simulated?.mean ?? null,
        simulatedStd: p.simulated?.std ?? null,
        measured: p.measured,
      })),
      conductance: summary.points.map((p) => {
        const sim = weighted(p.point, 'simulated');
        const meas = weighted(p.point, 'measured');
        return {
          point: p.point,
          tS: p.actualS ?? p.nominalS,
          simulatedMeanUs: sim?.mean ?? null,
          simulatedStdUs: sim?.std ?? null,
          measuredMeanUs: meas?.mean ?? null,
          measuredStdUs: meas?.std ?? null,
        };
      }),
    };
  }

  /** One array's programming result averaged into at most bins x bins. */
  heatmap(id: number, array: number, bins: number): Heatmap {
    this.runs.require(id);
    const geo = arrayGeometry(this.db, id);
    if (array >= 4096) throw new InputError('INVALID_INPUT', `no array ${array}`, { where: 'query.array' });
    const binRows = Math.max(1, Math.ceil(geo.rows / bins));
    const binCols = Math.max(1, Math.ceil(geo.cols / bins));
    const rows = this.db
      .prepare(
        `SELECT row_no / CAST(? AS INTEGER) AS r, col_no / CAST(? AS INTEGER) AS c, AVG(final_us - target_us), AVG(ABS(final_us - target_us)), AVG(pulses), COUNT(*)
         FROM cells WHERE run_id = ? AND array_no = ? AND final_us IS NOT NULL GROUP BY r, c`,
      )
      .raw(true)
      .all(binRows, binCols, id, array) as Array<[number, number, number, number, number | null, number]>;
    const out: Heatmap = { array, rows: geo.rows, cols: geo.cols, binRows, binCols, r: [], c: [], errorUs: [], absErrorUs: [], pulses: [], cells: [] };
    for (const [r, c, e, a, p, n] of rows) {
      out.r.push(r);
      out.c.push(c);
      out.errorUs.push(e);
      out.absErrorUs.push(a);
      out.pulses.push(p ?? 0);
      out.cells.push(n);
    }
    return out;
  }

  discrepancies(id: number, filter: { metric?: string | undefined; layer?: number | undefined; point?: number | undefined }): RunSummary['discrepancies'] {
    return this.runs.summary(id).discrepancies.filter(
      (d) => (filter.metric === undefined || d.metric === filter.metric) && (filter.layer === undefined || d.layer === filter.layer) && (filter.point === undefined || d.point === filter.point),
    );
  }

  listSearches(limit: number): Array<Pick<SearchRunRow, 'id' | 'space' | 'method' | 'preset' | 'budget' | 'seed' | 'status' | 'startedAt' | 'finishedAt'> & { testAccuracy: number | null; edpMsMj: number | null }> {
    return this.searches.list(limit).map((s) => ({
      id: s.id,
      space: s.space,
      method: s.method,
      preset: s.preset,
      budget: s.budget,
      seed: s.seed,
      status: s.status,
      startedAt: s.startedAt,
      finishedAt: s.finishedAt,
      testAccuracy: typeof s.metrics?.testAccuracy === 'number' ? s.metrics.testAccuracy : null,
      edpMsMj: typeof s.metrics?.edpMsMj === 'number' ? s.metrics.edpMsMj : null,
    }));
  }

  /** A search run and whatever of its outputs exist on disk (front, top-K, significance matrices). */
  searchDetail(id: number): {
    run: SearchRunRow;
    front: Array<{ edpMsMj: number; accuracy: number; choices: string[] }> | null;
    topK: Array<{ edpMsMj: number; choices: string[] }> | null;
    significance: Partial<Record<'task' | 'hardware' | 'combined', SignificanceMatrix>>;
  } {
    const run = this.searches.get(id);
    if (!run) throw new InputError('NOT_FOUND', `no search run ${id} in this database`, { where: `search ${id}` });
    const file = (name: string): unknown => {
      if (!run.outDir) return undefined;
      const path = join(run.outDir, name);
      if (!existsSync(path)) return undefined;
      try {
        return readJsonFile(path);
      } catch {
        return undefined;
      }
    };
    const significance: Partial<Record<'task' | 'hardware' | 'combined', SignificanceMatrix>> = {};
    for (const kind of ['task', 'hardware', 'combined'] as const) {
      const parsed = SignificanceMatrixSchema.safeParse(file(`${kind}-significance.json`));
      if (parsed.success) significance[kind] = parsed.data;
    }
    const pareto = file('pareto-front.json') as { front?: Array<{ edpMsMj?: unknown; supernetAccuracy?: unknown; choices?: unknown }> } | undefined;
    const front = Array.isArray(pareto?.front)
      ? pareto.front
          .filter((m) => typeof m.edpMsMj === 'number' && typeof m.supernetAccuracy === 'number')
          .map((m) => ({ edpMsMj: m.edpMsMj as number, accuracy: m.supernetAccuracy as number, choices: Array.isArray(m.choices) ? m.choices.map(String) : [] }))
      : null;
    const topRaw = file('hardware-topk.json');
    const topK = Array.isArray(topRaw)
      ? (topRaw as Array<{ edpMsMj?: unknown; choices?: unknown }>)
          .filter((m) => typeof m.edpMsMj === 'number')
          .map((m) => ({ edpMsMj: m.edpMsMj as number, choices: Array.isArray(m.choices) ? m.choices.map(String) : [] }))
      : null;
    return { run, front, topK, significance };
  }
}

export interface ProfileInfo {
  readonly kind: 'noise' | 'hardware';
  readonly name: string;
  readonly file: string;
  readonly description: string | null;
  readonly provenance: unknown;
  /** The profile's parameters (without name, description and provenance), for before/after. */
  readonly parameters: Record<string, unknown>;
}

/** The calibration profiles shipped in calibration/ (and those a calibration wrote there). */
export function listProfiles(root = packageDir('calibration')): ProfileInfo[] {
  const out: ProfileInfo[] = [];
  for (const kind of ['noise', 'hardware'] as const) {
    const dir = join(root, kind);
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.json')).sort()) {
      let value: unknown;
      try {
        value = readJsonFile(join(dir, f));
      } catch {
        continue;
      }
      if (!value || typeof value !== 'object') continue;
      const { name, description, provenance, ...parameters } = value as Record<string, unknown>;
      out.push({ kind, name: typeof name === 'string' ? name : f.slice(0, -5), file: `${kind}/${f}`, description: typeof description === 'string' ? description : null, provenance: provenance ?? null, parameters });
    }
  }
  return out;
}
