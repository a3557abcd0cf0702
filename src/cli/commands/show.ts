import type { Command } from 'commander';
import { BenchRuns, openDatabase } from '../../store/index.js';
import { renderSummary } from './campaign-common.js';
import { parseRunId } from './run.js';

interface ShowOptions {
  db: string;
  json: boolean;
}

export function registerShow(program: Command): void {
  program
    .command('show <run>')
    .description('one bench run: settings, hashes, device, cells, simulated vs measured accuracy, discrepancies, MVM probes, warnings')
    .option('--db <file>', 'SQLite store of the runs', './cimbench.db')
    .option('--json', 'machine-readable output', false)
    .action((runArg: string, opts: ShowOptions) => {
      const id = parseRunId(runArg, 'run');
      const db = openDatabase(opts.db);
      try {
        const runs = new BenchRuns(db);
        runs.recoverInterrupted();
        const summary = runs.summary(id);
        if (opts.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
        else process.stdout.write(renderSummary(summary));
      } finally {
        db.close();
      }
    });
}
