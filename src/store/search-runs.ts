import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import type { Db } from './db.js';

export const RunStatusSchema = z.enum(['running', 'finished', 'failed', 'interrupted']);
export type RunStatus = z.infer<typeof RunStatusSchema>;

export interface NewSearchRun {
  space: string;
  method: string;
  preset: string;
  budget: string;
  seed: number;
  backend: string;
  hardwareProfile: string;
  hardwareSha256: string;
  outDir: string | null;
  /** Every setting the run used, so it can be repeated. */
  config: Record<string, unknown>;
}

export interface SearchRunRow extends NewSearchRun {
  id: number;
  guid: string;
  startedAt: string;
  finishedAt: string | null;
  status: RunStatus;
  statusReason: string | null;
  host: string;
  pid: number;
  stageSeconds: Record<string, number>;
  metrics: Record<string, unknown> | null;
}

interface RawRow {
  id: number;
  guid: string;
  started_at: string;
  finished_at: string | null;
  status: RunStatus;
  status_reason: string | null;
  space: string;
  method: string;
  preset: string;
  budget: string;
  seed: number;
  backend: string;
  hardware_profile: string;
  hardware_sha256: string;
  out_dir: string | null;
  host: string;
  pid: number;
  config_json: string;
  stage_seconds_json: string;
  metrics_json: string | null;
}

function fromRaw(r: RawRow): SearchRunRow {
  return {
    id: r.id,
    guid: r.guid,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    status: r.status,
    statusReason: r.status_reason,
    space: r.space,
    method: r.method,
    preset: r.preset,
    budget: r.budget,
    seed: r.seed,
    backend: r.backend,
    hardwareProfile: r.hardware_profile,
    hardwareSha256: r.hardware_sha256,
    outDir: r.out_dir,
    host: r.host,
    pid: r.pid,
    config: JSON.parse(r.config_json) as Record<string, unknown>,
    stageSeconds: JSON.parse(r.stage_seconds_json) as Record<string, number>,
    metrics: r.metrics_json === null ? null : (JSON.parse(r.metrics_json) as Record<string, unknown>),
  };
}

/** Search runs: one row per `cimbench search`, written when it starts and updated as stages end. */
export class SearchRuns {
  constructor(private readonly db: Db) {}

  start(run: NewSearchRun): SearchRunRow {
    const info = this.db
      .prepare(
        `INSERT INTO search_runs (guid, started_at, status, space, method, preset, budget, seed, backend,
           hardware_profile, hardware_sha256, out_dir, host, pid, config_json)
         VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        randomUUID(),
        new Date().toISOString(),
        run.space,
        run.method,
        run.preset,
        run.budget,
        run.seed,
        run.backend,
        run.hardwareProfile,
        run.hardwareSha256,
        run.outDir,
        hostname(),
        process.pid,
        JSON.stringify(run.config),
      );
    return this.get(Number(info.lastInsertRowid)) as SearchRunRow;
  }

  recordStage(id: number, stage: string, seconds: number): void {
    const row = this.get(id);
    if (!row) return;
    const stages = { ...row.stageSeconds, [stage]: seconds };
    this.db.prepare('UPDATE search_runs SET stage_seconds_json = ? WHERE id = ? AND status = \'running\'').run(JSON.stringify(stages), id);
  }

  /** Ends a run; finished runs are never changed again. */
  finish(id: number, status: Exclude<RunStatus, 'running'>, metrics: Record<string, unknown> | null, reason: string | null = null): void {
    this.db
      .prepare(
        `UPDATE search_runs SET status = ?, status_reason = ?, finished_at = ?, metrics_json = ?
         WHERE id = ? AND status = 'running'`,
      )
      .run(status, reason, new Date().toISOString(), metrics === null ? null : JSON.stringify(metrics), id);
  }

  get(id: number): SearchRunRow | undefined {
    const raw = this.db.prepare('SELECT * FROM search_runs WHERE id = ?').get(id) as RawRow | undefined;
    return raw ? fromRaw(raw) : undefined;
  }

  list(limit = 100): SearchRunRow[] {
    return (this.db.prepare('SELECT * FROM search_runs ORDER BY id DESC LIMIT ?').all(limit) as RawRow[]).map(fromRaw);
  }

  /**
   * Marks runs left 'running' by a process on this host that no longer exists as interrupted, so no
   * run stays 'running' after a crash. Runs of live processes (or other hosts) are left alone.
   */
  recoverInterrupted(isAlive: (pid: number) => boolean = pidAlive): number {
    const stale = (this.db.prepare("SELECT * FROM search_runs WHERE status = 'running' AND host = ?").all(hostname()) as RawRow[]).filter(
      (r) => !isAlive(r.pid),
    );
    for (const r of stale) this.finish(r.id, 'interrupted', null, `process ${r.pid} ended without finishing the run`);
    return stale.length;
  }
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
