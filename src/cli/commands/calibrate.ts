import type { Command } from 'commander';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { calibrate, loadRunDataset, mergeDatasets, summarise } from '../../calibration/index.js';
import { InputError } from '../../common/errors.js';
import { loadNoiseProfile, noiseProfilePath, parseNoiseProfile } from '../../device/index.js';
import { BenchRuns, openDatabase } from '../../store/index.js';
import { renderTable } from '../format.js';
import { parseRunId } from './run.js';

interface CalibrateOptions {
  db: string;
  runs: string;
  out: string;
  base?: string;
  name?: string;
  json: boolean;
}

/** `cimbench calibrate`: fit a noise profile from recorded runs and write it with provenance. */
export function registerCalibrate(program: Command): void {
  program
    .command('calibrate')
    .description("fit the simulator's noise profile from recorded runs (programming noise, drift, read noise, stuck cells, ADC/IR drop where the data permits); parameters the data cannot determine keep the base profile's value, with the reason")
    .requiredOption('--db <file>', 'SQLite store of the runs')
    .requiredOption('--runs <ids>', 'comma-separated run ids (runs that programmed the chip)')
    .requiredOption('--out <profile.json>', 'where to write the fitted profile (e.g. calibration/noise/<chip>.json)')
    .option('--base <profile>', 'noise profile for what cannot be fitted (default: the first run\'s profile)')
    .option('--name <name>', 'profile name (default: fitted-<chip id>)')
    .option('--json', 'machine-readable output', false)
    .action((opts: CalibrateOptions) => {
      const ids = opts.runs.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map((s) => parseRunId(s, '--runs'));
      if (ids.length === 0) throw new InputError('INVALID_INPUT', 'give at least one run id', { where: '--runs' });
      if (!existsSync(opts.db)) throw new InputError('NOT_FOUND', 'database file does not exist', { where: opts.db });
      const db = openDatabase(opts.db, { readonly: true });
      let result: ReturnType<typeof calibrate>;
      try {
        const runs = new BenchRuns(db);
        const first = runs.require(ids[0] as number);
        const base = opts.base
          ? loadNoiseProfile(noiseProfilePath(opts.base))
          : parseNoiseProfile(JSON.parse((db.prepare('SELECT noise_json FROM runs WHERE id = ?').get(first.id) as { noise_json: string }).noise_json), `run ${first.id} noise profile`);
        const data = mergeDatasets(ids.map((id) => loadRunDataset(db, id)));
        result = calibrate(data, { base, name: opts.name ?? `fitted-${data.source.chipId ?? 'chip'}` });
      } finally {
        db.close();
      }
      const out = resolve(opts.out);
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, `${JSON.stringify(result.profile, null, 2)}\n`);
      const refused = (result.profile.fit?.refused ?? {}) as Record<string, string>;
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ out, profile: result.profile, statistics: summarise(result.report) }, null, 2)}\n`);
        return;
      }
      const rows = (['programming', 'drift', 'read', 'stuck', 'adc', 'irDrop'] as const).map((s) => [s, refused[s] ? 'kept' : 'fitted', (refused[s] ?? result.profile.provenance[s] ?? '').slice(0, 110)]);
      process.stdout.write(`${renderTable(['section', 'result', 'detail'], rows)}\nwrote ${out}\n`);
    });
}
