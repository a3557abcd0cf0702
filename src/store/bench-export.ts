import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { InputError } from '../common/errors.js';
import type { BenchRuns } from './bench-runs.js';

/**
 * Export of one run: every table's rows for that run, as CSV files (one per table, plus run.csv
 * with the run row) or as one JSON document (tables as { columns, rows } to stay compact).
 * Every file carries the run id; discrepancy rows also carry the hashes, firmware version and
 * noise parameters behind them.
 */
export const EXPORT_TABLES = [
  'run_steps',
  'run_events',
  'program_tiles',
  'program_blocks',
  'cells',
  'time_points',
  'readbacks',
  'matrix_stats',
  'mvm_stats',
  'accuracy',
  'discrepancies',
  'array_discrepancies',
] as const;

export type ExportFormat = 'csv' | 'json';

const ORDER: Readonly<Record<(typeof EXPORT_TABLES)[number], string>> = {
  run_steps: 'id',
  run_events: 'id',
  program_tiles: 'tile',
  program_blocks: 'block',
  cells: 'array_no, row_no, col_no',
  time_points: 'point',
  readbacks: 'point, array_no, row_no, col_no',
  matrix_stats: 'point, source, matrix',
  mvm_stats: 'point, array_no',
  accuracy: 'point, source',
  discrepancies: 'point, layer, metric',
  array_discrepancies: 'point, array_no, metric',
};

/** Blobs (a block's float32 targets) travel as base64. */
function plain(v: unknown): unknown {
  return Buffer.isBuffer(v) ? v.toString('base64') : v;
}

function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = String(plain(v));
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export interface ExportResult {
  readonly files: readonly string[];
  readonly rows: Readonly<Record<string, number>>;
}

export async function exportRun(runs: BenchRuns, runId: number, format: ExportFormat, outDir: string): Promise<ExportResult> {
  runs.require(runId);
  if (format !== 'csv' && format !== 'json') throw new InputError('INVALID_INPUT', `unknown format ${String(format)} (csv or json)`, { where: '--format' });
  mkdirSync(outDir, { recursive: true });
  const db = runs.db;
  const runRow = db.prepare('SELECT * FROM runs WHERE id = ?').get(runId) as Record<string, unknown>;
  const campaign = db.prepare('SELECT * FROM campaigns WHERE id = ?').get(runRow.campaign_id) as Record<string, unknown>;
  const counts: Record<string, number> = {};
  const files: string[] = [];
  if (format === 'json') {
    const tables: Record<string, { columns: string[]; rows: unknown[][] }> = {};
    for (const t of EXPORT_TABLES) {
      const stmt = db.prepare(`SELECT * FROM ${t} WHERE run_id = ? ORDER BY ${ORDER[t]}`);
      const columns = stmt.columns().map((c) => c.name);
      const rows = (stmt.raw(true).all(runId) as unknown[][]).map((r) => r.map(plain));
      tables[t] = { columns, rows };
      counts[t] = rows.length;
    }
    const path = join(outDir, `run-${runId}.json`);
    writeFileSync(path, `${JSON.stringify({ format: 'cimbench.run-export/1', run: runRow, campaign, summary: runs.summary(runId), tables })}\n`);
    files.push(path);
    return { files, rows: counts };
  }
  const runPath = join(outDir, 'run.csv');
  writeFileSync(runPath, `field,value\n${Object.entries({ ...runRow, campaign_name: campaign.name, campaign_sha256: campaign.sha256 }).map(([k, v]) => `${csvField(k)},${csvField(v)}`).join('\n')}\n`);
  files.push(runPath);
  for (const t of EXPORT_TABLES) {
    const stmt = db.prepare(`SELECT * FROM ${t} WHERE run_id = ? ORDER BY ${ORDER[t]}`);
    const path = join(outDir, `${t}.csv`);
    const out = createWriteStream(path);
    let chunk = `${stmt.columns().map((c) => csvField(c.name)).join(',')}\n`;
    let n = 0;
    for (const row of stmt.raw(true).iterate(runId) as Iterable<unknown[]>) {
      chunk += `${row.map(csvField).join(',')}\n`;
      n++;
      if (chunk.length > 1 << 16) {
        if (!out.write(chunk)) await once(out, 'drain');
        chunk = '';
      }
    }
    out.end(chunk);
    await once(out, 'finish');
    counts[t] = n;
    files.push(path);
  }
  return { files, rows: counts };
}
