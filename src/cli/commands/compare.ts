import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { compareRun, CompareOptionsSchema, type RunComparison } from '../../bench/index.js';
import { InputError } from '../../common/errors.js';
import { parseWith } from '../../common/validate.js';
import { loadNoiseProfile, noiseProfilePath } from '../../device/index.js';
import { initBackend } from '../../nn/index.js';
import { BenchRuns, openDatabase, Resimulations } from '../../store/index.js';
import { renderTable } from '../format.js';
import { parseRunId } from './run.js';

interface CompareCliOptions {
  run: string;
  noise: string;
  db: string;
  seeds?: string;
  times: string;
  conductances: string;
  images?: string;
  workers?: string;
  json: boolean;
}

const CONDUCTANCE_SOURCES: Record<RunComparison['conductances'], string> = {
  model: 'noise model',
  readback: "run's read-backs",
  'first-readback': "first point's read-backs, carried by the model's relaxation",
};

/** A progress bar on stderr for the re-simulation, started on its first report; none when stderr is not a terminal. */
function progressBar(): { onProgress: ((done: number, total: number) => void) | undefined; stop(): void } {
  if (!process.stderr.isTTY) return { onProgress: undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar({ stream: process.stderr, format: `${'re-simulate'.padEnd(16)} [{bar}] {percentage}% {value}/{total} batches`, hideCursor: true }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    onProgress: (done, total) => {
      if (!started) bar.start(total, done);
      else bar.update(done);
      started = true;
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

/** `--seeds 4` is seeds 1..4; `--seeds 3,7,11` lists them. */
export function parseSeeds(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const nums = parts.map((s) => Number(s));
  if (parts.length === 0 || nums.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new InputError('INVALID_INPUT', `not a seed count or a comma-separated list of seeds: ${text}`, { where: '--seeds' });
  }
  if (parts.length > 1) return nums;
  const count = nums[0] as number;
  if (count < 1) throw new InputError('INVALID_INPUT', 'a seed count must be at least 1', { where: '--seeds' });
  return Array.from({ length: count }, (_, i) => i + 1);
}

const pct = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : `${(100 * v).toFixed(2)}%`);
const pts = (v: number | null): string => (v === null ? '-' : `${v >= 0 ? '+' : ''}${(100 * v).toFixed(2)}`);

export function renderComparison(c: RunComparison, id: number): string {
  const rows = c.points.map((p) => [
    String(p.point),
    p.tS < 100 ? p.tS.toFixed(1) : p.tS.toFixed(0),
    pct(p.measured),
    pct(p.originalSimulated),
    `${pct(p.simulated)} +- ${(100 * p.simulatedStd).toFixed(2)}`,
    pts(p.measured === null || p.originalSimulated === null ? null : p.originalSimulated - p.measured),
    pts(p.measured === null ? null : p.simulated - p.measured),
  ]);
  const arrays = c.arrays.map((a) => [
    String(a.point),
    String(a.array),
    String(a.cells),
    `${a.measured.mean.toFixed(3)} / ${a.measured.std.toFixed(3)}`,
    `${a.simulated.mean.toFixed(3)} / ${a.simulated.std.toFixed(3)}`,
    a.ks.toFixed(3),
    a.ksOriginal.toFixed(3),
  ]);
  return [
    `run ${c.runId} re-simulated with ${c.noiseProfile.name} (sha256 ${c.noiseProfile.sha256.slice(0, 12)}...) against ${c.runNoiseProfile.name}: ${c.images} images, seeds ${c.seeds.join(',')}, ${c.times} times, conductances from the ${CONDUCTANCE_SOURCES[c.conductances]}${c.ageOffsetS > 0 ? ` (+${c.ageOffsetS.toFixed(2)} s: half the programming time)` : ''}, ADC trims ${c.trims}; ${c.seconds.toFixed(1)} s`,
    '',
    renderTable(['point', 't (s)', 'measured', 'sim before (recorded)', 'sim after (+- std)', 'before - measured (pts)', 'after - measured (pts)'], rows),
    '',
    'per-array conductance error (read-back - target, uS), simulated vs measured distributions:',
    renderTable(['point', 'array', 'cells', 'measured mean / std', 'simulated mean / std', 'KS', `KS ${c.runNoiseProfile.name}`], arrays),
    '',
    `recorded as re-simulation ${id} beside the run's own discrepancies (cimbench compare --json for every row)`,
    '',
  ].join('\n');
}

/** `cimbench compare`: re-simulate a recorded run with another noise profile and record the discrepancies beside the old ones. */
export function registerCompare(program: Command): void {
  program
    .command('compare')
    .description("re-simulate a recorded run (its network, test images and drift time points) with another noise profile; record the new simulated-vs-measured discrepancies beside the run's own")
    .requiredOption('--run <id>', 'the recorded run')
    .requiredOption('--noise <profile>', 'noise profile: a preset in calibration/noise or a JSON file (e.g. from cimbench calibrate)')
    .option('--db <file>', 'SQLite store of the runs', './cimbench.db')
    .option('--seeds <n|list>', "Monte Carlo seeds: a count (1..n) or a comma-separated list (default: the run's)")
    .option('--times <basis>', 'actual (recorded device times plus half the programming time) or nominal (the campaign\'s)', 'actual')
    .option('--images <n>', "test images to simulate (default: as many as the run's prediction)")
    .option(
      '--conductances <source>',
      "model (the profile's draws); readback (the run's read-backs at each point: only read noise, ADC and the controller's arithmetic are simulated); first-readback (the first point's read-backs, carried to later points by the profile's relaxation: predicts drift from what the chip held after programming)",
      'model',
    )
    .option('--workers <n>', 'worker threads the Monte Carlo seeds are shared over (default: min(2, cores)); the figures do not depend on it')
    .option('--json', 'machine-readable output', false)
    .action(async (opts: CompareCliOptions) => {
      const id = parseRunId(opts.run, '--run');
      const options = parseWith(
        CompareOptionsSchema,
        {
          ...(opts.seeds !== undefined ? { seeds: parseSeeds(opts.seeds) } : {}),
          times: opts.times,
          conductances: opts.conductances,
          ...(opts.images !== undefined ? { images: Number(opts.images) } : {}),
          ...(opts.workers !== undefined ? { workers: Number(opts.workers) } : {}),
        },
        'compare options',
      );
      if (!existsSync(opts.db)) throw new InputError('NOT_FOUND', 'database file does not exist', { where: opts.db });
      const noise = loadNoiseProfile(noiseProfilePath(opts.noise));
      const db = openDatabase(opts.db);
      try {
        new BenchRuns(db).require(id);
        await initBackend();
        const bar = progressBar();
        let c: RunComparison;
        try {
          c = await compareRun(db, id, noise, options, bar.onProgress);
        } finally {
          bar.stop();
        }
        const resimulation = new Resimulations(db).record(c);
        if (opts.json) {
          const { noiseProfile, ...rest } = c;
          process.stdout.write(`${JSON.stringify({ resimulation, ...rest, noiseProfile: { name: noiseProfile.name, sha256: noiseProfile.sha256 } }, null, 2)}\n`);
        } else process.stdout.write(renderComparison(c, resimulation));
      } finally {
        db.close();
      }
    });
}
