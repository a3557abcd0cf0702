import type { Command } from 'commander';
import { BenchRuns, openDatabase } from '../../store/index.js';
import { renderTable } from '../format.js';

interface RunsOptions {
  db: string;
  limit: string;
  json: boolean;
}

export function registerRuns(program: Command): void {
  program
    .command('runs')
    .description('list bench runs (campaign runs) in the store, newest first')
    .option('--db <file>', 'SQLite store of the runs', './cimbench.db')
    .option('--limit <n>', 'at most this many runs', '50')
    .option('--json', 'machine-readable output', false)
    .action((opts: RunsOptions) => {
      const db = openDatabase(opts.db);
      try {
        const runs = new BenchRuns(db);
        runs.recoverInterrupted();
        const list = runs.list(Math.max(1, Number(opts.limit) || 50));
        const rows = list.map((r) => {
          const s = runs.summary(r.id);
          const last = [...s.points].reverse().find((p) => p.measured !== null);
          return { run: r, cells: s.cells, last };
        });
        if (opts.json) {
          process.stdout.write(
            `${JSON.stringify(
              rows.map(({ run, cells, last }) => ({
                id: run.id,
                campaign: run.campaignName,
                mode: run.mode,
                status: run.status,
                exitStatus: run.exitStatus,
                reason: run.reason,
                createdAt: run.createdAt,
                endedAt: run.endedAt,
                network: run.networkName,
                chipId: run.chipId,
                cells,
                lastPoint: last ?? null,
              })),
              null,
              2,
            )}\n`,
          );
          return;
        }
        if (rows.length === 0) {
          process.stdout.write('no bench runs recorded yet\n');
          return;
        }
        process.stdout.write(
          `${renderTable(
            ['id', 'campaign', 'mode', 'status', 'exit', 'started', 'network', 'chip', 'cells ok/fail/int', 'simulated', 'measured'],
            rows.map(({ run, cells, last }) => [
              run.id,
              run.campaignName,
              run.mode,
              run.status,
              run.exitStatus ?? '-',
              run.createdAt.replace('T', ' ').slice(0, 19),
              run.networkName,
              run.chipId ?? '-',
              `${cells.programmed}/${cells.failed}/${cells.interrupted}`,
              last?.simulated ? `${(100 * last.simulated.mean).toFixed(1)}%` : '-',
              last?.measured != null ? `${(100 * last.measured).toFixed(1)}%` : '-',
            ]),
          )}\n`,
        );
      } finally {
        db.close();
      }
    });
}
