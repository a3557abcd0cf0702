import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import { CimbenchError, InputError } from '../common/errors.js';
import type { BlockState, PredictionState, ResumeState } from '../bench/engine.js';
import type { ArrayMvmStat, CampaignDocument, MatrixStat, TimeReference } from '../bench/documents.js';
import type { Plan, PlanMode } from '../bench/plan.js';
import { CellStatus } from '../link/protocol.js';
import type { Db } from './db.js';

/**
 * Bench runs in SQLite: the repository (create, list, recover, resume state, summaries) and the
 * recorder, a document subscriber of the campaign engine. Every document is written in one
 * transaction that has committed when the subscriber returns (synchronous=FULL): an intent is on
 * disk before its command is sent, a result as soon as it arrived.
 */

export const BenchRunStatusSchema = z.enum(['running', 'paused', 'interrupted', 'completed']);
export type BenchRunStatus = z.infer<typeof BenchRunStatusSchema>;

export interface NewBenchRun {
  readonly campaign: { readonly name: string; readonly source: string | null; readonly config: unknown };
  readonly mode: PlanMode;
  readonly plan: Plan;
  readonly parentRunId: number | null;
  readonly networkName: string;
  readonly networkDir: string;
  readonly weightImageSha256: string;
  readonly hardwareProfile: string;
  readonly hardwareSha256: string;
  readonly hardware: unknown;
  readonly noiseProfile: string;
  readonly noiseSha256: string;
  readonly noise: unknown;
  readonly seeds: readonly number[];
  readonly backend: string;
  readonly link: string;
  readonly arraysUsed: number;
  readonly cellsPlanned: number;
  readonly cost: { readonly latencyMs: number; readonly energyMj: number; readonly edpMsMj: number };
}

export interface BenchRunRow {
  readonly id: number;
  readonly guid: string;
  readonly campaignId: number;
  readonly campaignName: string;
  readonly parentRunId: number | null;
  readonly mode: PlanMode;
  readonly status: BenchRunStatus;
  readonly exitStatus: 'success' | 'abort' | 'fail' | null;
  readonly reason: string | null;
  readonly error: Record<string, unknown> | null;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly endedAt: string | null;
  readonly host: string;
  readonly pid: number;
  readonly sessions: number;
  readonly config: Record<string, unknown>;
  readonly plan: Plan;
  readonly networkName: string;
  readonly networkDir: string;
  readonly weightImageSha256: string;
  readonly hardwareProfile: string;
  readonly hardwareSha256: string;
  readonly noiseProfile: string;
  readonly noiseSha256: string;
  readonly seeds: number[];
  readonly backend: string;
  readonly link: string;
  readonly firmwareName: string | null;
  readonly firmwareVersion: string | null;
  readonly chipId: string | null;
  readonly bootIds: number[];
  readonly arraysUsed: number;
  readonly cellsPlanned: number;
  readonly cost: { latencyMs: number; energyMj: number; edpMsMj: number };
  readonly timeReference: TimeReference | undefined;
  readonly stepSeconds: Record<string, number>;
}

interface RawRun {
  id: number;
  guid: string;
  campaign_id: number;
  campaign_name: string;
  parent_run_id: number | null;
  mode: PlanMode;
  status: BenchRunStatus;
  exit_status: 'success' | 'abort' | 'fail' | null;
  reason: string | null;
  error_json: string | null;
  created_at: string;
  updated_at: string;
  ended_at: string | null;
  host: string;
  pid: number;
  sessions: number;
  config_json: string;
  plan_json: string;
  network_name: string;
  network_dir: string;
  weight_image_sha256: string;
  hardware_profile: string;
  hardware_sha256: string;
  noise_profile: string;
  noise_sha256: string;
  seeds_json: string;
  backend: string;
  link: string;
  firmware_name: string | null;
  firmware_version: string | null;
  chip_id: string | null;
  boot_ids_json: string;
  arrays_used: number;
  cells_planned: number;
  cost_json: string;
  ref_wall_ms: number | null;
  ref_clock_ms: number | null;
  ref_boot_id: number | null;
  ref_source: TimeReference['source'] | null;
  ref_programming_s: number | null;
  step_seconds_json: string;
}

function fromRaw(r: RawRun): BenchRunRow {
  return {
    id: r.id,
    guid: r.guid,
    campaignId: r.campaign_id,
    campaignName: r.campaign_name,
    parentRunId: r.parent_run_id,
    mode: r.mode,
    status: r.status,
    exitStatus: r.exit_status,
    reason: r.reason,
    error: r.error_json === null ? null : (JSON.parse(r.error_json) as Record<string, unknown>),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    endedAt: r.ended_at,
    host: r.host,
    pid: r.pid,
    sessions: r.sessions,
    config: JSON.parse(r.config_json) as Record<string, unknown>,
    plan: JSON.parse(r.plan_json) as Plan,
    networkName: r.network_name,
    networkDir: r.network_dir,
    weightImageSha256: r.weight_image_sha256,
    hardwareProfile: r.hardware_profile,
    hardwareSha256: r.hardware_sha256,
    noiseProfile: r.noise_profile,
    noiseSha256: r.noise_sha256,
    seeds: JSON.parse(r.seeds_json) as number[],
    backend: r.backend,
    link: r.link,
    firmwareName: r.firmware_name,
    firmwareVersion: r.firmware_version,
    chipId: r.chip_id,
    bootIds: JSON.parse(r.boot_ids_json) as number[],
    arraysUsed: r.arrays_used,
    cellsPlanned: r.cells_planned,
    cost: JSON.parse(r.cost_json) as BenchRunRow['cost'],
    timeReference:
      r.ref_wall_ms === null || r.ref_clock_ms === null || r.ref_boot_id === null || r.ref_source === null
        ? undefined
        : {
            wallMs: r.ref_wall_ms,
            clockMs: r.ref_clock_ms,
            bootId: r.ref_boot_id,
            source: r.ref_source,
            ...(r.ref_programming_s !== null && r.ref_programming_s !== undefined ? { programmingS: r.ref_programming_s } : {}),
          },
    stepSeconds: JSON.parse(r.step_seconds_json) as Record<string, number>,
  };
}

const now = (): string => new Date().toISOString();

/** Keys sorted, so the same campaign always hashes the same. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]));
    }
    return v;
  });
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface CellCounts {
  readonly planned: number;
  readonly programmed: number;
  readonly failed: number;
  readonly interrupted: number;
  readonly total: number;
}

export interface RunSummary {
  readonly run: BenchRunRow;
  readonly cells: CellCounts & { readonly pulsesTotal: number; readonly meanPulses: number | null; readonly accountedExactlyOnce: boolean };
  readonly blocks: Record<string, number>;
  readonly digitalAccuracy: number | null;
  readonly points: ReadonlyArray<{
    point: number;
    nominalS: number;
    actualS: number | null;
    clock: string | null;
    simulated: { mean: number; std: number } | null;
    measured: number | null;
    difference: number | null;
  }>;
  readonly discrepancies: ReadonlyArray<{ point: number; tS: number; layer: number; layerName: string; metric: string; simulated: number; simulatedStd: number | null; measured: number; difference: number }>;
  readonly mvm: ReadonlyArray<{ point: number; array: number; clipFraction: number; relErrorVsTarget: number; relErrorVsReadback: number }>;
  /** Per-array rows of the discrepancy table (MVM probes, simulated vs measured). */
  readonly arrayDiscrepancies: ReadonlyArray<{ point: number; tS: number; array: number; metric: string; simulated: number; simulatedStd: number | null; measured: number; difference: number }>;
  readonly steps: ReadonlyArray<{ key: string; attempt: number; status: string; seconds: number | null }>;
  readonly events: ReadonlyArray<{ at: string; level: string; message: string }>;
}

/** Campaign runs: one row per `cimbench run/program/measure/drift`, written as the engine goes. */
export class BenchRuns {
  constructor(readonly db: Db) {}

  create(run: NewBenchRun): BenchRunRow {
    const configJson = canonical(run.campaign.config);
    const sha = createHash('sha256').update(configJson).digest('hex');
    const id = this.db.transaction(() => {
      const existing = this.db.prepare('SELECT id FROM campaigns WHERE sha256 = ?').get(sha) as { id: number } | undefined;
      const campaignId =
        existing?.id ??
        Number(
          this.db
            .prepare('INSERT INTO campaigns (name, sha256, source, config_json, created_at) VALUES (?, ?, ?, ?, ?)')
            .run(run.campaign.name, sha, run.campaign.source, configJson, now()).lastInsertRowid,
        );
      const t = now();
      return Number(
        this.db
          .prepare(
            `INSERT INTO runs (guid, campaign_id, parent_run_id, mode, status, created_at, updated_at, host, pid, config_json, plan_json,
               network_name, network_dir, weight_image_sha256, hardware_profile, hardware_sha256, hardware_json, noise_profile, noise_sha256,
               noise_json, seeds_json, backend, link, arrays_used, cells_planned, cost_json)
             VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            randomUUID(),
            campaignId,
            run.parentRunId,
            run.mode,
            t,
            t,
            hostname(),
            process.pid,
            configJson,
            JSON.stringify(run.plan),
            run.networkName,
            run.networkDir,
            run.weightImageSha256,
            run.hardwareProfile,
            run.hardwareSha256,
            canonical(run.hardware),
            run.noiseProfile,
            run.noiseSha256,
            canonical(run.noise),
            JSON.stringify(run.seeds),
            run.backend,
            run.link,
            run.arraysUsed,
            run.cellsPlanned,
            JSON.stringify(run.cost),
          ).lastInsertRowid,
      );
    })();
    return this.get(id) as BenchRunRow;
  }

  get(id: number): BenchRunRow | undefined {
    const raw = this.db.prepare('SELECT runs.*, campaigns.name AS campaign_name FROM runs JOIN campaigns ON campaigns.id = runs.campaign_id WHERE runs.id = ?').get(id) as RawRun | undefined;
    return raw ? fromRaw(raw) : undefined;
  }

  /** The run or a NOT_FOUND InputError naming it. */
  require(id: number): BenchRunRow {
    const run = this.get(id);
    if (!run) throw new InputError('NOT_FOUND', `no run ${id} in this database`, { where: `run ${id}` });
    return run;
  }

  list(limit = 50): BenchRunRow[] {
    return (this.db.prepare('SELECT runs.*, campaigns.name AS campaign_name FROM runs JOIN campaigns ON campaigns.id = runs.campaign_id ORDER BY runs.id DESC LIMIT ?').all(limit) as RawRun[]).map(fromRaw);
  }

  /**
   * Marks runs left running or paused by a process of this host that no longer exists as
   * interrupted: their unfinished steps interrupted, blocks whose PROGRAM was sent without a
   * recorded reply 'unknown' and those cells 'interrupted' (until a resume reads them back).
   */
  recoverInterrupted(isAlive: (pid: number) => boolean = pidAlive): number[] {
    const stale = (this.db.prepare("SELECT id, pid FROM runs WHERE status IN ('running', 'paused') AND host = ?").all(hostname()) as Array<{ id: number; pid: number }>).filter(
      (r) => !isAlive(r.pid),
    );
    for (const r of stale) {
      this.db.transaction(() => {
        const t = now();
        this.db.prepare("UPDATE run_steps SET status = 'interrupted', ended_at = ? WHERE run_id = ? AND status = 'started'").run(t, r.id);
        for (const b of this.db.prepare("SELECT * FROM program_blocks WHERE run_id = ? AND state = 'sent'").all(r.id) as BlockRow[]) insertInterrupted(this.db, r.id, b.block, b);
        this.db.prepare("UPDATE program_blocks SET state = 'unknown', note = 'PROGRAM sent, no reply recorded before the process ended' WHERE run_id = ? AND state = 'sent'").run(r.id);
        this.db
          .prepare("UPDATE runs SET status = 'interrupted', reason = ?, updated_at = ? WHERE id = ?")
          .run(`process ${r.pid} ended without finishing the run (crash or kill); resume with --resume ${r.id}`, t, r.id);
        this.db
          .prepare("INSERT INTO run_events (run_id, at, level, message) VALUES (?, ?, 'warning', ?)")
          .run(r.id, t, `recovered: process ${r.pid} is gone; run marked interrupted`);
      })();
    }
    return stale.map((r) => r.id);
  }

  /** Checks that a run may be resumed and marks it running for this process. */
  claimForResume(id: number): BenchRunRow {
    const run = this.require(id);
    if (run.status === 'completed') {
      throw new InputError('INVALID_INPUT', `run ${id} is completed (${run.exitStatus}) and immutable; start a new run`, { where: `--resume ${id}` });
    }
    if ((run.status === 'running' || run.status === 'paused') && (run.host !== hostname() || pidAlive(run.pid))) {
      throw new InputError('INVALID_INPUT', `run ${id} is ${run.status} in process ${run.pid} on ${run.host}`, { where: `--resume ${id}` });
    }
    this.db.prepare("UPDATE runs SET status = 'running', pid = ?, host = ?, reason = NULL, updated_at = ? WHERE id = ?").run(process.pid, hostname(), now(), id);
    return this.require(id);
  }

  /** What the journal says about an unfinished run, for the engine. */
  resumeState(id: number): ResumeState {
    const run = this.require(id);
    const db = this.db;
    const steps = db.prepare('SELECT step_key, status, attempt FROM run_steps WHERE run_id = ?').all(id) as Array<{ step_key: string; status: string; attempt: number }>;
    const endedSteps = new Set(steps.filter((s) => s.status === 'ended').map((s) => s.step_key));
    const attempts = new Map<string, number>();
    for (const s of steps) attempts.set(s.step_key, Math.max(attempts.get(s.step_key) ?? 0, s.attempt));
    const blocks = new Map<number, BlockState>();
    for (const b of db.prepare("SELECT block, state FROM program_blocks WHERE run_id = ? AND state != 'planned'").all(id) as Array<{ block: number; state: BlockState }>) {
      blocks.set(b.block, b.state);
    }
    const tiles = db.prepare('SELECT tile, row_no, col_no, rows, cols FROM program_tiles WHERE run_id = ?').all(id) as Array<{ tile: number; row_no: number; col_no: number; rows: number; cols: number }>;
    const cellStatus = new Map<number, Uint8Array>();
    const cellFinal = new Map<number, Float32Array>();
    const cellStmt = db.prepare('SELECT row_no, col_no, device_status, final_us FROM cells WHERE run_id = ? AND tile = ?').raw(true);
    for (const t of tiles) {
      const st = new Uint8Array(t.rows * t.cols).fill(255);
      const fi = new Float32Array(t.rows * t.cols).fill(Number.NaN);
      for (const row of cellStmt.iterate(id, t.tile) as Iterable<[number, number, number | null, number | null]>) {
        const i = (row[0] - t.row_no) * t.cols + (row[1] - t.col_no);
        if (row[2] !== null) st[i] = row[2];
        if (row[3] !== null) fi[i] = row[3];
      }
      cellStatus.set(t.tile, st);
      cellFinal.set(t.tile, fi);
    }
    const stats = db.prepare('SELECT * FROM matrix_stats WHERE run_id = ? ORDER BY point, matrix').all(id) as RawMatrixStat[];
    const statsFor = (point: number, source: string): MatrixStat[] => stats.filter((s) => s.point === point && s.source === source).map(matrixStatFromRaw);
    const acc = db.prepare('SELECT * FROM accuracy WHERE run_id = ?').all(id) as RawAccuracy[];
    const simulated = acc.filter((a) => a.source === 'simulated');
    const digital = acc.find((a) => a.source === 'digital');
    let prediction: PredictionState | undefined;
    if (digital && simulated.length > 0) {
      prediction = {
        digitalAccuracy: digital.value,
        points: new Map(
          simulated.map((a) => [
            a.point,
            { tS: a.t_s ?? 0, accuracy: { mean: a.value, std: a.std ?? 0, perSeed: JSON.parse(a.per_seed_json ?? '[]') as number[] }, matrices: statsFor(a.point, 'simulated') },
          ]),
        ),
      };
    }
    const measuredAccuracy = new Map(acc.filter((a) => a.source === 'measured').map((a) => [a.point, a.value]));
    const measuredStats = new Map<number, MatrixStat[]>();
    for (const p of new Set(stats.filter((s) => s.source === 'measured').map((s) => s.point))) measuredStats.set(p, statsFor(p, 'measured'));
    const actualS = new Map(
      (db.prepare('SELECT point, actual_s FROM time_points WHERE run_id = ?').all(id) as Array<{ point: number; actual_s: number | null }>).map((t) => [t.point, t.actual_s]),
    );
    const measuredMvm = new Map<number, ArrayMvmStat[]>();
    for (const m of db.prepare('SELECT * FROM mvm_stats WHERE run_id = ? ORDER BY point, array_no').all(id) as Array<{
      point: number;
      array_no: number;
      vectors: number;
      conversions: number;
      clip_fraction: number;
      mean_code: number;
      rel_error_vs_target: number;
      rel_error_vs_readback: number;
    }>) {
      const list = measuredMvm.get(m.point) ?? [];
      list.push({ array: m.array_no, vectors: m.vectors, conversions: m.conversions, clipFraction: m.clip_fraction, meanCode: m.mean_code, relErrorVsTarget: m.rel_error_vs_target, relErrorVsReadback: m.rel_error_vs_readback });
      measuredMvm.set(m.point, list);
    }
    return {
      measuredMvm,
      endedSteps,
      attempts,
      blocks,
      cellStatus,
      cellFinal,
      timeReference: run.timeReference,
      bootIds: run.bootIds,
      prediction,
      measuredAccuracy,
      measuredStats,
      actualS,
    };
  }

  cellCounts(id: number): CellCounts {
    const rows = this.db.prepare('SELECT state, COUNT(*) AS n FROM cells WHERE run_id = ? GROUP BY state').all(id) as Array<{ state: keyof CellCounts; n: number }>;
    const c = { planned: 0, programmed: 0, failed: 0, interrupted: 0, total: 0 };
    for (const r of rows) {
      c[r.state] = r.n;
      c.total += r.n;
    }
    // Not yet attempted: still in their planned blocks, no row yet.
    c.planned = (this.db.prepare("SELECT COALESCE(SUM(rows * cols), 0) AS n FROM program_blocks WHERE run_id = ? AND state = 'planned'").get(id) as { n: number }).n;
    return c;
  }

  summary(id: number): RunSummary {
    const run = this.require(id);
    const db = this.db;
    const counts = this.cellCounts(id);
    const pulses = db.prepare('SELECT COALESCE(SUM(pulses), 0) AS total, COUNT(pulses) AS n FROM cells WHERE run_id = ?').get(id) as { total: number; n: number };
    const planTiles = db.prepare('SELECT COALESCE(SUM(rows * cols), 0) AS n FROM program_tiles WHERE run_id = ?').get(id) as { n: number };
    const planBlocks = db.prepare('SELECT COALESCE(SUM(rows * cols), 0) AS n FROM program_blocks WHERE run_id = ?').get(id) as { n: number };
    const distinct = db.prepare('SELECT COUNT(*) AS n FROM (SELECT DISTINCT array_no, row_no, col_no FROM cells WHERE run_id = ?)').get(id) as { n: number };
    const blocks: Record<string, number> = {};
    for (const b of db.prepare('SELECT state, COUNT(*) AS n FROM program_blocks WHERE run_id = ? GROUP BY state').all(id) as Array<{ state: string; n: number }>) blocks[b.state] = b.n;
    const acc = db.prepare('SELECT * FROM accuracy WHERE run_id = ?').all(id) as RawAccuracy[];
    const tps = db.prepare('SELECT * FROM time_points WHERE run_id = ?').all(id) as Array<{ point: number; nominal_s: number; actual_s: number | null; clock: string }>;
    const points = run.plan.points.map((p) => {
      const sim = acc.find((a) => a.source === 'simulated' && a.point === p.index);
      const meas = acc.find((a) => a.source === 'measured' && a.point === p.index);
      const tp = tps.find((t) => t.point === p.index);
      return {
        point: p.index,
        nominalS: p.nominalS,
        actualS: tp?.actual_s ?? null,
        clock: tp?.clock ?? null,
        simulated: sim ? { mean: sim.value, std: sim.std ?? 0 } : null,
        measured: meas?.value ?? null,
        difference: sim && meas ? meas.value - sim.value : null,
      };
    });
    const discrepancies = (
      db.prepare('SELECT point, t_s, layer, layer_name, metric, simulated, simulated_std, measured, difference FROM discrepancies WHERE run_id = ? ORDER BY point, layer, metric').all(id) as Array<{
        point: number;
        t_s: number;
        layer: number;
        layer_name: string;
        metric: string;
        simulated: number;
        simulated_std: number | null;
        measured: number;
        difference: number;
      }>
    ).map((d) => ({ point: d.point, tS: d.t_s, layer: d.layer, layerName: d.layer_name, metric: d.metric, simulated: d.simulated, simulatedStd: d.simulated_std, measured: d.measured, difference: d.difference }));
    const mvm = (db.prepare('SELECT point, array_no, clip_fraction, rel_error_vs_target, rel_error_vs_readback FROM mvm_stats WHERE run_id = ? ORDER BY point, array_no').all(id) as Array<{
      point: number;
      array_no: number;
      clip_fraction: number;
      rel_error_vs_target: number;
      rel_error_vs_readback: number;
    }>).map((m) => ({ point: m.point, array: m.array_no, clipFraction: m.clip_fraction, relErrorVsTarget: m.rel_error_vs_target, relErrorVsReadback: m.rel_error_vs_readback }));
    const arrayDiscrepancies = (
      db.prepare('SELECT point, t_s, array_no, metric, simulated, simulated_std, measured, difference FROM array_discrepancies WHERE run_id = ? ORDER BY point, array_no, metric').all(id) as Array<{
        point: number;
        t_s: number;
        array_no: number;
        metric: string;
        simulated: number;
        simulated_std: number | null;
        measured: number;
        difference: number;
      }>
    ).map((d) => ({ point: d.point, tS: d.t_s, array: d.array_no, metric: d.metric, simulated: d.simulated, simulatedStd: d.simulated_std, measured: d.measured, difference: d.difference }));
    const steps = (db.prepare('SELECT step_key, attempt, status, seconds FROM run_steps WHERE run_id = ? ORDER BY id').all(id) as Array<{ step_key: string; attempt: number; status: string; seconds: number | null }>).map(
      (s) => ({ key: s.step_key, attempt: s.attempt, status: s.status, seconds: s.seconds }),
    );
    const events = db.prepare('SELECT at, level, message FROM run_events WHERE run_id = ? ORDER BY id').all(id) as Array<{ at: string; level: string; message: string }>;
    const hasProgram = run.plan.steps.some((s) => s.kind === 'program');
    return {
      run,
      cells: {
        ...counts,
        pulsesTotal: pulses.total,
        meanPulses: pulses.n > 0 ? pulses.total / pulses.n : null,
        // Rows plus not-yet-attempted cells equal the plan, no cell twice; a completed run has no cell left without an outcome.
        accountedExactlyOnce:
          !hasProgram ||
          // A run that ended before its map step journalled no cells at all.
          (planTiles.n === 0 && planBlocks.n === 0 && counts.total === 0) ||
          (counts.total + counts.planned === run.cellsPlanned &&
            planTiles.n === run.cellsPlanned &&
            planBlocks.n === run.cellsPlanned &&
            distinct.n === counts.total &&
            (run.status !== 'completed' || counts.planned === 0)),
      },
      blocks,
      digitalAccuracy: acc.find((a) => a.source === 'digital')?.value ?? null,
      points,
      discrepancies,
      mvm,
      arrayDiscrepancies,
      steps,
      events,
    };
  }
}

interface RawMatrixStat {
  point: number;
  source: string;
  matrix: number;
  layer: number;
  name: string;
  cells: number;
  stuck_fraction: number;
  g_err_mean_us: number;
  g_err_std_us: number;
  adc_clip_fraction: number | null;
  relative_output_error: number | null;
}

function matrixStatFromRaw(s: RawMatrixStat): MatrixStat {
  return {
    matrix: s.matrix,
    layer: s.layer,
    name: s.name,
    cells: s.cells,
    stuckFraction: s.stuck_fraction,
    gErrMeanUs: s.g_err_mean_us,
    gErrStdUs: s.g_err_std_us,
    adcClipFraction: s.adc_clip_fraction,
    relativeOutputError: s.relative_output_error,
  };
}

interface RawAccuracy {
  point: number;
  source: 'simulated' | 'measured' | 'digital';
  t_s: number | null;
  value: number;
  std: number | null;
  per_seed_json: string | null;
  images: number;
}

/**
 * Writes one run's documents. Bound to a run row created by BenchRuns.create (or claimed for a
 * resume). Each handled document is one committed transaction when `write` returns.
 */
export class RunRecorder {
  private readonly db: Db;
  private firmwareVersion: string | null;
  private readonly run: BenchRunRow;
  private readonly stmts;

  constructor(
    private readonly runs: BenchRuns,
    readonly runId: number,
  ) {
    this.db = runs.db;
    this.run = runs.require(runId);
    this.firmwareVersion = this.run.firmwareVersion;
    const db = this.db;
    this.stmts = {
      cellInsert: db.prepare(
        'INSERT INTO cells (run_id, array_no, row_no, col_no, tile, block, target_us, state, final_us, pulses, device_status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      cellUnknown: db.prepare("UPDATE cells SET final_us = ? WHERE run_id = ? AND array_no = ? AND row_no = ? AND col_no = ? AND state = 'interrupted'"),
      readback: db.prepare('INSERT INTO readbacks (run_id, point, array_no, row_no, col_no, g_us) VALUES (?, ?, ?, ?, ?, ?)'),
      event: db.prepare('INSERT INTO run_events (run_id, at, level, message, data_json) VALUES (?, ?, ?, ?, ?)'),
    };
  }

  /** The engine subscriber. */
  readonly write = (doc: CampaignDocument): void => {
    if (doc.type === 'progress') return;
    this.db.transaction(() => this.handle(doc))();
  };

  private touch(): void {
    this.db.prepare('UPDATE runs SET updated_at = ? WHERE id = ?').run(now(), this.runId);
  }

  private handle(doc: Exclude<CampaignDocument, { type: 'progress' }>): void {
    const db = this.db;
    const id = this.runId;
    switch (doc.type) {
      case 'run-start':
        db.prepare("UPDATE runs SET status = 'running', pid = ?, host = ?, sessions = sessions + 1, updated_at = ? WHERE id = ?").run(doc.pid, hostname(), now(), id);
        this.event('info', doc.resumed ? 'run resumed' : 'run started', { pid: doc.pid });
        return;
      case 'state':
        if (doc.to === 'paused' || (doc.to === 'running' && doc.from !== 'idle')) {
          db.prepare('UPDATE runs SET status = ?, updated_at = ? WHERE id = ?').run(doc.to === 'paused' ? 'paused' : 'running', now(), id);
        }
        if (doc.from !== 'idle' && doc.to !== 'done') this.event('info', `engine ${doc.from} -> ${doc.to}`, doc.reason ? { reason: doc.reason } : undefined);
        return;
      case 'device': {
        const fw = `${doc.info.firmwareVersion.major}.${doc.info.firmwareVersion.minor}.${doc.info.firmwareVersion.patch}`;
        this.firmwareVersion = fw;
        const row = db.prepare('SELECT boot_ids_json FROM runs WHERE id = ?').get(id) as { boot_ids_json: string };
        const boots = JSON.parse(row.boot_ids_json) as number[];
        if (boots[boots.length - 1] !== doc.info.bootId) boots.push(doc.info.bootId);
        db.prepare('UPDATE runs SET firmware_name = ?, firmware_version = ?, chip_id = ?, device_json = ?, boot_ids_json = ?, link = ?, updated_at = ? WHERE id = ?').run(
          doc.info.firmwareName,
          fw,
          doc.info.chipId,
          JSON.stringify({ info: doc.info, config: doc.config ?? null }),
          JSON.stringify(boots),
          doc.link,
          now(),
          id,
        );
        return;
      }
      case 'mapped': {
        const have = db.prepare('SELECT COUNT(*) AS n FROM program_tiles WHERE run_id = ?').get(id) as { n: number };
        if (have.n > 0) {
          const blocks = db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(rows * cols), 0) AS cells FROM program_blocks WHERE run_id = ?').get(id) as { n: number; cells: number };
          const planned = doc.blocks.reduce((a, b) => a + b.region.rows * b.region.cols, 0);
          if (have.n !== doc.tiles.length || blocks.cells !== planned || blocks.n !== doc.blocks.length) {
            throw new CimbenchError('STORE', `run ${id} was mapped to ${have.n} tiles, ${blocks.n} blocks and ${blocks.cells} cells; now ${doc.tiles.length}, ${doc.blocks.length} and ${planned}`);
          }
          return;
        }
        const tile = db.prepare('INSERT INTO program_tiles (run_id, tile, matrix, layer, name, array_no, row_no, col_no, rows, cols, slice, polarity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
        for (const t of doc.tiles) tile.run(id, t.tile, t.matrix, t.layer, t.name, t.region.array, t.region.row, t.region.col, t.region.rows, t.region.cols, t.slice, t.polarity);
        const block = db.prepare("INSERT INTO program_blocks (run_id, block, tile, array_no, row_no, col_no, rows, cols, state, targets) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'planned', ?)");
        for (const b of doc.blocks) {
          const t = doc.tiles[b.tile];
          if (!t) throw new CimbenchError('STORE', `block ${b.block} names tile ${b.tile}, which the map does not have`);
          const targets = t.targetsUs.slice(b.offset, b.offset + b.region.rows * b.region.cols);
          block.run(id, b.block, b.tile, b.region.array, b.region.row, b.region.col, b.region.rows, b.region.cols, Buffer.from(targets.buffer, targets.byteOffset, targets.byteLength));
        }
        return;
      }
      case 'step-start': {
        db.prepare("INSERT INTO run_steps (run_id, step_key, kind, point, attempt, status, started_at) VALUES (?, ?, ?, ?, ?, 'started', ?)").run(
          id,
          doc.key,
          doc.step.kind,
          doc.step.point ?? null,
          doc.attempt,
          now(),
        );
        // A step that runs again replaces whatever its interrupted attempt left.
        const p = doc.step.point;
        if (doc.step.kind === 'readback' && p !== undefined) {
          db.prepare('DELETE FROM readbacks WHERE run_id = ? AND point = ?').run(id, p);
          db.prepare("DELETE FROM matrix_stats WHERE run_id = ? AND point = ? AND source = 'measured'").run(id, p);
          db.prepare('DELETE FROM mvm_stats WHERE run_id = ? AND point = ?').run(id, p);
        } else if (doc.step.kind === 'compare') {
          db.prepare('DELETE FROM discrepancies WHERE run_id = ?').run(id);
          db.prepare('DELETE FROM array_discrepancies WHERE run_id = ?').run(id);
        }
        return;
      }
      case 'step-end': {
        db.prepare('UPDATE run_steps SET status = ?, ended_at = ?, seconds = ?, detail_json = ? WHERE run_id = ? AND step_key = ? AND status = \'started\'').run(
          doc.status,
          now(),
          doc.seconds,
          doc.detail ? JSON.stringify(doc.detail) : null,
          id,
          doc.key,
        );
        const row = db.prepare('SELECT step_seconds_json FROM runs WHERE id = ?').get(id) as { step_seconds_json: string };
        const s = JSON.parse(row.step_seconds_json) as Record<string, number>;
        s[doc.key] = (s[doc.key] ?? 0) + doc.seconds;
        db.prepare('UPDATE runs SET step_seconds_json = ?, updated_at = ? WHERE id = ?').run(JSON.stringify(s), now(), id);
        return;
      }
      case 'prediction': {
        const acc = db.prepare('INSERT OR REPLACE INTO accuracy (run_id, point, source, t_s, value, std, per_seed_json, images) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
        acc.run(id, -1, 'digital', null, doc.digitalAccuracy, null, null, doc.images);
        db.prepare("DELETE FROM matrix_stats WHERE run_id = ? AND source = 'simulated'").run(id);
        for (const p of doc.points) {
          acc.run(id, p.point, 'simulated', p.tS, p.accuracy.mean, p.accuracy.std, JSON.stringify(p.accuracy.perSeed), doc.images);
          this.matrixStats(p.point, 'simulated', p.matrices);
        }
        return;
      }
      case 'program-intent':
        this.intent(doc.block, doc.bootId);
        return;
      case 'program-result': {
        const b = this.block(doc.block);
        const targets = blockTargets(b);
        const ins = this.stmts.cellInsert;
        for (let r = 0, i = 0; r < b.rows; r++) {
          for (let c = 0; c < b.cols; c++, i++) {
            const status = doc.status[i] as number;
            ins.run(id, b.array_no, b.row_no + r, b.col_no + c, b.tile, doc.block, targets[i] as number, cellState(status), doc.finalUs[i] as number, doc.pulses[i] as number, status);
          }
        }
        db.prepare("UPDATE program_blocks SET state = 'done', done_at = ?, outcome = ?, total_pulses = ? WHERE run_id = ? AND block = ?").run(now(), doc.outcome, doc.totalPulses, id, doc.block);
        if (doc.nextIntent) this.intent(doc.nextIntent.block, doc.nextIntent.bootId);
        return;
      }
      case 'program-unknown': {
        const b = this.block(doc.block);
        // Recovery may already have recorded the cells as interrupted (no value); else record them now.
        if (b.state !== 'unknown') insertInterrupted(db, id, doc.block, b);
        for (let i = 0; i < b.rows * b.cols; i++) {
          const v = doc.readbackUs ? (doc.readbackUs[i] as number) : null;
          this.stmts.cellUnknown.run(v, id, b.array_no, b.row_no + Math.floor(i / b.cols), b.col_no + (i % b.cols));
        }
        db.prepare('UPDATE program_blocks SET state = ?, note = ? WHERE run_id = ? AND block = ?').run(doc.readbackUs ? 'recovered' : 'unknown', doc.reason, id, doc.block);
        return;
      }
      case 'time-reference':
        db.prepare('UPDATE runs SET ref_wall_ms = ?, ref_clock_ms = ?, ref_boot_id = ?, ref_source = ?, ref_programming_s = ?, updated_at = ? WHERE id = ?').run(
          doc.wallMs,
          doc.clockMs,
          doc.bootId,
          doc.source,
          doc.programmingS ?? null,
          now(),
          id,
        );
        return;
      case 'time-point':
        db.prepare('INSERT OR REPLACE INTO time_points (run_id, point, nominal_s, actual_s, clock, device_clock_ms, boot_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
          id,
          doc.point,
          doc.nominalS,
          doc.actualS,
          doc.clock,
          doc.clockMs,
          doc.bootId,
          now(),
        );
        return;
      case 'readback': {
        const t = db.prepare('SELECT array_no, row_no, col_no, rows, cols FROM program_tiles WHERE run_id = ? AND tile = ?').get(id, doc.tile) as TileRow;
        for (let r = 0, i = 0; r < t.rows; r++) {
          for (let c = 0; c < t.cols; c++, i++) this.stmts.readback.run(id, doc.point, t.array_no, t.row_no + r, t.col_no + c, doc.valuesUs[i] as number);
        }
        return;
      }
      case 'matrix-stats':
        this.matrixStats(doc.point, doc.source, doc.stats);
        return;
      case 'mvm-stats': {
        const s = db.prepare(
          'INSERT OR REPLACE INTO mvm_stats (run_id, point, array_no, vectors, conversions, clip_fraction, mean_code, rel_error_vs_target, rel_error_vs_readback) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        );
        for (const a of doc.arrays) s.run(id, doc.point, a.array, a.vectors, a.conversions, a.clipFraction, a.meanCode, a.relErrorVsTarget, a.relErrorVsReadback);
        return;
      }
      case 'accuracy': {
        const tp = db.prepare('SELECT actual_s, nominal_s FROM time_points WHERE run_id = ? AND point = ?').get(id, doc.point) as { actual_s: number | null; nominal_s: number } | undefined;
        db.prepare("INSERT OR REPLACE INTO accuracy (run_id, point, source, t_s, value, std, images, confusion_json) VALUES (?, ?, 'measured', ?, ?, NULL, ?, ?)").run(
          id,
          doc.point,
          tp?.actual_s ?? tp?.nominal_s ?? null,
          doc.value,
          doc.images,
          JSON.stringify(doc.confusion),
        );
        return;
      }
      case 'discrepancies': {
        const s = db.prepare(
          `INSERT OR REPLACE INTO discrepancies (run_id, point, t_s, layer, layer_name, metric, simulated, simulated_std, measured, difference,
             noise_profile, noise_sha256, noise_params_json, weight_image_sha256, hardware_sha256, firmware_version)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        );
        const a = db.prepare(
          `INSERT OR REPLACE INTO array_discrepancies (run_id, point, t_s, array_no, metric, simulated, simulated_std, measured, difference,
             noise_profile, noise_sha256, noise_params_json, weight_image_sha256, hardware_sha256, firmware_version)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        );
        for (const r of doc.rows) {
          if (r.array !== undefined) {
            a.run(id, r.point, r.tS, r.array, r.metric, r.simulated, r.simulatedStd, r.measured, r.difference, this.run.noiseProfile, this.run.noiseSha256, JSON.stringify(r.noiseParams), this.run.weightImageSha256, this.run.hardwareSha256, this.firmwareVersion);
            continue;
          }
          s.run(
            id,
            r.point,
            r.tS,
            r.layer,
            r.layerName,
            r.metric,
            r.simulated,
            r.simulatedStd,
            r.measured,
            r.difference,
            this.run.noiseProfile,
            this.run.noiseSha256,
            JSON.stringify(r.noiseParams),
            this.run.weightImageSha256,
            this.run.hardwareSha256,
            this.firmwareVersion,
          );
        }
        return;
      }
      case 'event':
        this.event(doc.level, doc.message, doc.data);
        return;
      case 'run-stop': {
        const t = now();
        // Account for every planned cell: what was never attempted, or never answered, ends as interrupted.
        for (const b of db.prepare("SELECT * FROM program_blocks WHERE run_id = ? AND state IN ('planned', 'sent')").all(id) as BlockRow[]) insertInterrupted(db, id, b.block, b);
        db.prepare("UPDATE program_blocks SET state = 'skipped', note = 'never sent: the run ended first' WHERE run_id = ? AND state = 'planned'").run(id);
        db.prepare("UPDATE program_blocks SET state = 'unknown', note = 'PROGRAM sent, no reply recorded' WHERE run_id = ? AND state = 'sent'").run(id);
        db.prepare("UPDATE run_steps SET status = 'interrupted', ended_at = ? WHERE run_id = ? AND status = 'started'").run(t, id);
        this.event(doc.exitStatus === 'success' ? 'info' : 'warning', `run stopped: ${doc.exitStatus}${doc.reason ? ` (${doc.reason})` : ''}`);
        db.prepare("UPDATE runs SET status = 'completed', exit_status = ?, reason = ?, error_json = ?, ended_at = ?, updated_at = ? WHERE id = ?").run(
          doc.exitStatus,
          doc.reason,
          doc.error ? JSON.stringify(doc.error) : null,
          t,
          t,
          id,
        );
        return;
      }
    }
  }

  private intent(block: number, bootId: number): void {
    const r = this.db.prepare("UPDATE program_blocks SET state = 'sent', sent_at = ?, boot_id = ? WHERE run_id = ? AND block = ? AND state = 'planned'").run(now(), bootId, this.runId, block);
    if (r.changes !== 1) throw new CimbenchError('STORE', `block ${block} of run ${this.runId} is not planned: its PROGRAM must not be sent (again)`);
  }

  private block(block: number): BlockRow {
    const b = this.db.prepare('SELECT * FROM program_blocks WHERE run_id = ? AND block = ?').get(this.runId, block) as BlockRow | undefined;
    if (!b) throw new CimbenchError('STORE', `run ${this.runId} has no block ${block}`);
    return b;
  }

  private matrixStats(point: number, source: 'simulated' | 'measured', stats: readonly MatrixStat[]): void {
    const s = this.db.prepare(
      `INSERT OR REPLACE INTO matrix_stats (run_id, point, source, matrix, layer, name, cells, stuck_fraction, g_err_mean_us, g_err_std_us, adc_clip_fraction, relative_output_error)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const m of stats) s.run(this.runId, point, source, m.matrix, m.layer, m.name, m.cells, m.stuckFraction, m.gErrMeanUs, m.gErrStdUs, m.adcClipFraction, m.relativeOutputError);
  }

  private event(level: 'info' | 'warning', message: string, data?: Record<string, unknown>): void {
    this.stmts.event.run(this.runId, now(), level, message, data ? JSON.stringify(data) : null);
  }
}

interface TileRow {
  array_no: number;
  row_no: number;
  col_no: number;
  rows: number;
  cols: number;
}

interface BlockRow extends TileRow {
  block: number;
  tile: number;
  state: string;
  targets: Buffer;
}

function blockTargets(b: BlockRow): Float32Array {
  const out = new Float32Array(b.rows * b.cols);
  new Uint8Array(out.buffer).set(b.targets.subarray(0, out.byteLength));
  return out;
}

/** Cells of a block with no outcome (never sent, or no reply): one interrupted row each. */
function insertInterrupted(db: Db, runId: number, block: number, b: BlockRow): void {
  const targets = blockTargets(b);
  const ins = db.prepare("INSERT OR IGNORE INTO cells (run_id, array_no, row_no, col_no, tile, block, target_us, state) VALUES (?, ?, ?, ?, ?, ?, ?, 'interrupted')");
  for (let i = 0; i < targets.length; i++) ins.run(runId, b.array_no, b.row_no + Math.floor(i / b.cols), b.col_no + (i % b.cols), b.tile, block, targets[i] as number);
}

/** OK -> programmed; NOT_ATTEMPTED (cancelled) -> interrupted; budget spent or stuck -> failed. */
function cellState(status: number): 'programmed' | 'failed' | 'interrupted' {
  if (status === CellStatus.OK) return 'programmed';
  if (status === CellStatus.NOT_ATTEMPTED) return 'interrupted';
  return 'failed';
}
