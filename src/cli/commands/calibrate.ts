import type { Command } from 'commander';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { calibrate, loadRunDataset, writeReportPlots, type PlotFiles, mergeDatasets, renderCalibrationReport, runCalibrationPlan, summarise, type CalibrationDataset, type CalibrationPlanOptions } from '../../calibration/index.js';
import { InputError, withContext } from '../../common/errors.js';
import { DEFAULT_NOISE_PROFILE, loadNoiseProfile, noiseProfilePath, parseNoiseProfile } from '../../device/index.js';
import { BenchRuns, openDatabase } from '../../store/index.js';
import { renderTable } from '../format.js';
import { linkConfigForPort, openLink, progressBars } from './campaign-common.js';
import { parseRunId } from './run.js';

interface CalibrateOptions {
  db?: string;
  runs?: string;
  port?: string;
  baud?: string;
  arrays: string;
  repeats: string;
  mvmVectors: string;
  seed: string;
  out: string;
  base?: string;
  name?: string;
  report?: string;
  json: boolean;
}

export const REPORT_FILE = 'calibration-report.html';

/** `cimbench calibrate`: fit a noise profile from recorded runs and write it with provenance. */
export function registerCalibrate(program: Command): void {
  program
    .command('calibrate')
    .description("fit the simulator's noise profile from recorded runs (programming noise, drift, read noise, stuck cells, ADC/IR drop where the data permits); parameters the data cannot determine keep the base profile's value, with the reason")
    .option('--db <file>', 'SQLite store of the runs')
    .option('--runs <ids>', 'comma-separated run ids (runs that programmed the chip)')
    .option('--port <port>', 'also run the calibration plan on a live macro and fit from it (with --runs: from both): emulator[:<chip>[:<seed>]], a serial device or tcp://host:port. It programs known patterns over --arrays whole arrays, erasing what they held')
    .option('-b, --baud <rate>', 'baud rate of --port (ignored by ptys and TCP)')
    .option('--arrays <n>', 'calibration plan: arrays to program, from array 0', '2')
    .option('--repeats <n>', 'calibration plan: back-to-back single reads of 4,096 cells (read noise)', '16')
    .option('--mvm-vectors <n>', 'calibration plan: MVM patterns per array (ADC gain/offset, IR drop)', '24')
    .option('--seed <n>', 'calibration plan: pattern seed', '1')
    .requiredOption('--out <profile.json>', 'where to write the fitted profile (e.g. calibration/noise/<chip>.json)')
    .option('--base <profile>', "noise profile for what cannot be fitted (default: the first run's profile, else rram-wan2022)")
    .option('--name <name>', 'profile name (default: fitted-<chip id>)')
    .option('--report <dir>', `also write <dir>/${REPORT_FILE}: measured vs fitted distributions, drift curves, read noise, stuck rates, ADC spreads and the fit statistics (self-contained HTML with inline SVG, and each plot as PNG)`)
    .option('--json', 'machine-readable output', false)
    .action(async (opts: CalibrateOptions) => {
      const ids = (opts.runs ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0).map((s) => parseRunId(s, '--runs'));
      if (ids.length === 0 && !opts.port) throw new InputError('INVALID_INPUT', 'give run ids (--runs with --db) or a macro to run the calibration plan on (--port)', { where: '--runs' });
      if (ids.length > 0 && !opts.db) throw new InputError('INVALID_INPUT', 'give the store of the runs', { where: '--db' });
      const plan = opts.port ? planOptions(opts) : undefined;
      const datasets: CalibrationDataset[] = [];
      let base = opts.base ? loadNoiseProfile(noiseProfilePath(opts.base)) : undefined;
      if (ids.length > 0) {
        const dbPath = opts.db as string;
        if (!existsSync(dbPath)) throw new InputError('NOT_FOUND', 'database file does not exist', { where: dbPath });
        const db = openDatabase(dbPath, { readonly: true });
        try {
          const runs = new BenchRuns(db);
          const first = runs.require(ids[0] as number);
          base ??= parseNoiseProfile(JSON.parse((db.prepare('SELECT noise_json FROM runs WHERE id = ?').get(first.id) as { noise_json: string }).noise_json), `run ${first.id} noise profile`);
          for (const id of ids) datasets.push(loadRunDataset(db, id));
        } finally {
          db.close();
        }
      }
      if (plan && opts.port) datasets.push(await runPlanOn(opts.port, plan, opts.baud));
      base ??= loadNoiseProfile(noiseProfilePath(DEFAULT_NOISE_PROFILE));
      const data = mergeDatasets(datasets);
      const result = calibrate(data, { base, name: opts.name ?? `fitted-${data.source.chipId ?? 'chip'}` });
      const out = resolve(opts.out);
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, `${JSON.stringify(result.profile, null, 2)}\n`);
      let report: string | undefined;
      let plots: PlotFiles | undefined;
      if (opts.report) {
        const dir = resolve(opts.report);
        mkdirSync(dir, { recursive: true });
        report = join(dir, REPORT_FILE);
        const html = renderCalibrationReport(data, result);
        writeFileSync(report, html);
        plots = await writeReportPlots(html, dir);
        if (plots.pngUnavailable) process.stderr.write(`warning: no PNG plots: ${plots.pngUnavailable}; the SVG files are beside the report\n`);
      }
      const refused = (result.profile.fit?.refused ?? {}) as Record<string, string>;
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ out, ...(report ? { report, plots } : {}), profile: result.profile, statistics: summarise(result.report) }, null, 2)}\n`);
        return;
      }
      const rows = (['programming', 'drift', 'read', 'stuck', 'adc', 'irDrop'] as const).map((s) => [s, refused[s] ? 'kept' : 'fitted', (refused[s] ?? result.profile.provenance[s] ?? '').slice(0, 110)]);
      process.stdout.write(`${renderTable(['section', 'result', 'detail'], rows)}\nwrote ${out}${report ? ` and ${report} (${plots?.png.length ?? 0} PNG and ${plots?.svg.length ?? 0} SVG plots beside it)` : ''}\n`);
    });
}

function count(text: string, flag: string, min: number, max: number): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v < min || v > max) throw new InputError('INVALID_INPUT', `must be an integer ${min}..${max}, not ${text}`, { where: flag });
  return v;
}

function planOptions(opts: CalibrateOptions): Omit<CalibrationPlanOptions, 'onProgress'> {
  return {
    arrays: count(opts.arrays, '--arrays', 1, 4096),
    repeats: count(opts.repeats, '--repeats', 0, 1024),
    repeatCells: 4096,
    mvmVectors: count(opts.mvmVectors, '--mvm-vectors', 0, 256),
    seed: count(opts.seed, '--seed', 0, 2 ** 31 - 1),
  };
}

/** The calibration plan on a live link, with progress bars on stderr. */
async function runPlanOn(port: string, plan: Omit<CalibrationPlanOptions, 'onProgress'>, baud: string | undefined): Promise<CalibrationDataset> {
  const opened = openLink(linkConfigForPort(port, baud !== undefined ? { baudRate: count(baud, '--baud', 1, 100_000_000) } : {}));
  const bars = progressBars();
  try {
    await opened.link.connect();
    return await runCalibrationPlan(opened.link, {
      ...plan,
      onProgress: (label, done, total) => bars.subscriber({ type: 'progress', key: 'calibration', label, done, total }),
    });
  } catch (err) {
    throw withContext(err, `calibration plan on ${opened.description}`);
  } finally {
    bars.stop();
    await opened.close();
  }
}
