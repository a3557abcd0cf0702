import type { Command } from 'commander';
import { InputError } from '../../common/errors.js';
import { BenchRuns, exportRun, openDatabase, type ExportFormat } from '../../store/index.js';
import { parseRunId } from './run.js';

interface ExportOptions {
  db: string;
  format: string;
  out: string;
  json: boolean;
}

export function registerExport(program: Command): void {
  program
    .command('export <run>')
    .description('export one bench run (every table: cells, read-backs, statistics, accuracy, discrepancies) to CSV files or one JSON file')
    .option('--db <file>', 'SQLite store of the runs', './cimbench.db')
    .option('-f, --format <csv|json>', 'csv: one file per table; json: one document', 'csv')
    .requiredOption('-o, --out <dir>', 'output directory')
    .option('--json', 'print what was written as JSON', false)
    .action(async (runArg: string, opts: ExportOptions) => {
      const id = parseRunId(runArg, 'run');
      if (opts.format !== 'csv' && opts.format !== 'json') throw new InputError('INVALID_INPUT', `unknown format "${opts.format}" (csv or json)`, { where: '--format' });
      const db = openDatabase(opts.db);
      try {
        const runs = new BenchRuns(db);
        runs.recoverInterrupted();
        const result = await exportRun(runs, id, opts.format as ExportFormat, opts.out);
        if (opts.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        else process.stdout.write(`run ${id} exported (${Object.entries(result.rows).map(([t, n]) => `${t} ${n}`).join(', ')}):\n${result.files.map((f) => `  ${f}`).join('\n')}\n`);
      } finally {
        db.close();
      }
    });
}
