import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { CimbenchError, InputError } from '../../common/errors.js';
import { hardwareProfilePath, loadHardwareProfile } from '../../hardware/index.js';
import { backendName, initBackend } from '../../nn/index.js';
import { budgetByName, checkTeacherDir, loadSearchSpace, loadWarmupDir, presetWeights, SEARCH_METHODS, defaultWorkers, runSearch, type SearchConfig, type SearchHooks, type SearchMethod } from '../../search/index.js';
import { openDatabase, SearchRuns } from '../../store/index.js';
import { renderTable } from '../format.js';

interface SearchOptions {
  space?: string;
  preset?: string;
  weights?: string;
  budget: string;
  method: string;
  seed: string;
  hardware: string;
  data?: string;
  db: string;
  workers?: string;
  teacher?: string;
  warmup?: string;
  topM?: string;
  out?: string;
  resume?: string;
  force: boolean;
  backend?: string;
  json: boolean;
}

function parseWeights(text: string): { task: number; hardware: number } {
  const parts = text.split(',').map((s) => Number(s.trim()));
  const [task, hardware] = parts as [number, number];
  if (parts.length !== 2 || !parts.every((v) => Number.isFinite(v) && v >= 0) || task + hardware <= 0) {
    throw new InputError('INVALID_INPUT', `expected two non-negative numbers "task,hw" (e.g. 0.7,0.3), got "${text}"`, { where: '--weights', details: { field: 'weights' } });
  }
  return { task, hardware };
}

function parseInt(text: string, what: string, min: number): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v < min) throw new InputError('INVALID_INPUT', `expected an integer >= ${min}, got "${text}"`, { where: what, details: { field: what.replace(/^--/, '') } });
  return v;
}

/** Builds a new run's config from the options; every bad value is reported before any work. */
function configFrom(opts: SearchOptions): SearchConfig {
  if (!opts.space) throw new InputError('INVALID_INPUT', 'pass --space (or --resume <dir>)', { where: '--space', details: { field: 'space' } });
  const space = loadSearchSpace(opts.space);
  if (!(SEARCH_METHODS as readonly string[]).includes(opts.method)) {
    throw new InputError('INVALID_INPUT', `unknown method "${opts.method}" (expected one of ${SEARCH_METHODS.join(', ')})`, { where: '--method', details: { field: 'method' } });
  }
  let preset: string | null = opts.preset ?? 'balanced';
  let weights = presetWeights(preset);
  if (opts.weights !== undefined) {
    weights = parseWeights(opts.weights);
    if (opts.preset === undefined) preset = null;
    else throw new InputError('INVALID_INPUT', 'pass either --preset or --weights, not both', { where: '--weights' });
  }
  const hwPath = hardwareProfilePath(opts.hardware);
  if (opts.teacher !== undefined && opts.warmup !== undefined) {
    throw new InputError('INVALID_INPUT', 'pass either --teacher or --warmup (which reuses its teacher too), not both', { where: '--warmup', details: { field: 'warmup' } });
  }
  if (opts.teacher !== undefined) {
    if (opts.method !== 'nas4cim') throw new InputError('INVALID_INPUT', `--method ${opts.method} trains no teacher`, { where: '--teacher', details: { field: 'teacher' } });
    checkTeacherDir(resolve(opts.teacher), space);
  }
  if (opts.warmup !== undefined) {
    if (opts.method !== 'nas4cim') throw new InputError('INVALID_INPUT', `--method ${opts.method} has no DDE-GSCST warm-up to reuse`, { where: '--warmup', details: { field: 'warmup' } });
    loadWarmupDir(resolve(opts.warmup), space);
  }
  const budget = budgetByName(opts.budget);
  return {
    space,
    method: opts.method as SearchMethod,
    preset,
    weights,
    budgetName: opts.budget,
    budget: opts.topM === undefined ? budget : { ...budget, hardware: { ...budget.hardware, topM: parseInt(opts.topM, '--top-m', 1) } },
    seed: parseInt(opts.seed, '--seed', 0),
    hardware: loadHardwareProfile(hwPath),
    hardwareSource: hwPath,
    dataDir: opts.data ?? null,
    workers: opts.workers !== undefined ? parseInt(opts.workers, '--workers', 1) : defaultWorkers(),
    ...(opts.teacher !== undefined ? { teacherDir: resolve(opts.teacher) } : {}),
    ...(opts.warmup !== undefined ? { warmupDir: resolve(opts.warmup) } : {}),
  };
}

/**
 * One cli-progress bar per stage on stderr. When stderr is not a terminal (a run logged with nohup
 * or under CI), plain lines instead: each stage's start and end, and every tenth of its work.
 */
function progressHooks(): SearchHooks & { stop(): void } {
  const tty = Boolean(process.stderr.isTTY);
  let bar: cliProgress.SingleBar | undefined;
  let logged = { total: 0, unit: '', tenth: 0 };
  const stop = (): void => {
    bar?.stop();
    bar = undefined;
  };
  return {
    onStageStart(stage, total, unit) {
      stop();
      if (!tty) {
        logged = { total, unit, tenth: 0 };
        process.stderr.write(`${stage}: started, ${total} ${unit}\n`);
        return;
      }
      bar = new cliProgress.SingleBar(
        { stream: process.stderr, format: `${stage.padEnd(9)} [{bar}] {percentage}% {value}/{total} ${unit} {detail}`, hideCursor: true, clearOnComplete: false },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0, { detail: '' });
    },
    onProgress(stage, done, detail) {
      if (tty) {
        bar?.update(done, { detail: detail ?? '' });
        return;
      }
      const tenth = logged.total > 0 ? Math.floor((10 * done) / logged.total) : 0;
      if (tenth > logged.tenth && tenth < 10) {
        logged.tenth = tenth;
        process.stderr.write(`${stage}: ${tenth * 10}% (${done}/${logged.total} ${logged.unit})${detail ? ` ${detail}` : ''}\n`);
      }
    },
    onStageEnd(stage, seconds, skipped) {
      if (bar) bar.update(bar.getTotal());
      stop();
      process.stderr.write(`${stage}: ${skipped ? 'done earlier (checkpoint)' : `${seconds.toFixed(1)} s`}\n`);
    },
    stop,
  };
}

export function registerSearch(program: Command): void {
  program
    .command('search')
    .description('NAS4CIM search (teacher, DDE-GSCST, Top-K hardware statistics, selection, QAT retraining) or the spos-nsga2 baseline')
    .option('-s, --space <name|space.json>', 'search space: fashion-mnist, cifar10, imagenet or a JSON file')
    .option('-p, --preset <name>', 'selection preset: accuracy, balanced, edp (default balanced)')
    .option('--weights <task,hw>', 'explicit selection weights instead of a preset, e.g. 0.7,0.3')
    .option('-b, --budget <name>', 'tiny (~3 min), small, full', 'small')
    .option('-m, --method <name>', 'nas4cim or spos-nsga2', 'nas4cim')
    .option('--seed <n>', 'seed of every random choice', '1')
    .option('-w, --hardware <name|profile.json>', 'hardware profile the network must fit', 'nas4cim-macro')
    .option('--data <dir>', 'dataset directory (default: the Debian package path or $CIMBENCH_FASHION_MNIST)')
    .option('--db <file>', 'SQLite store that records the run', './cimbench.db')
    .option('--workers <n>', 'data-parallel training replicas (default: min(2, cores))')
    .option('--teacher <dir>', 'reuse a trained teacher: the teacher/ folder of an earlier search of the same space')
    .option('--warmup <dir>', 'reuse the teacher and DDE-GSCST warm-up of an earlier nas4cim search of the same space (its output directory): only the hardware stage, selection and retraining run')
    .option('--top-m <n>', 'hardware stage: draw candidates from the n options per layer with the highest task significance (default: full budget 9, tiny and small half of them, at least 3)')
    .option('-o, --out <dir>', 'output directory (must not exist or be empty, unless --force)')
    .option('--resume <dir>', 'continue an interrupted search from its checkpoint (uses its stored settings)')
    .option('--force', 'replace the search outputs in an existing --out directory', false)
    .option('--backend <name>', 'TensorFlow.js backend: auto, node, wasm, cpu (default $CIMBENCH_TF_BACKEND or auto)')
    .option('--json', 'print metrics.json to stdout', false)
    .action(async (opts: SearchOptions) => {
      if (opts.resume !== undefined && opts.out !== undefined && opts.out !== opts.resume) {
        throw new InputError('INVALID_INPUT', '--resume continues in its own directory; drop --out', { where: '--out' });
      }
      const config = opts.resume === undefined ? configFrom(opts) : undefined;
      const outDir = opts.resume ?? opts.out;
      if (!outDir) throw new InputError('INVALID_INPUT', 'pass --out <dir> (or --resume <dir>)', { where: '--out', details: { field: 'out' } });
      await initBackend(opts.backend !== undefined ? { backend: opts.backend } : {});
      const db = openDatabase(opts.db);
      const runs = new SearchRuns(db);
      runs.recoverInterrupted();
      const controller = new AbortController();
      const hooks = progressHooks();
      let interrupts = 0;
      const onSigint = (): void => {
        interrupts++;
        if (interrupts > 1) process.exit(130);
        hooks.stop();
        process.stderr.write('\ninterrupting at the next step (Ctrl-C again to quit at once; the last checkpoint stays)\n');
        controller.abort();
      };
      process.on('SIGINT', onSigint);
      try {
        const metrics = await runSearch({
          outDir,
          ...(config ? { config } : {}),
          resume: opts.resume !== undefined,
          force: opts.force,
          runs,
          signal: controller.signal,
          hooks,
        });
        hooks.stop();
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(metrics, null, 2)}\n`);
          return;
        }
        const m = metrics as Record<string, any>;
        const stages = Object.entries(m.stageSeconds as Record<string, number>).map(([k, v]) => [k, v.toFixed(1)]);
        process.stdout.write(
          [
            `search ${m.space} (${m.method}, ${m.preset ?? `weights ${m.weights.task},${m.weights.hardware}`}, budget ${m.budget}, seed ${m.seed}) on ${m.hardwareProfile}, backend ${backendName()}`,
            `chosen: ${(m.chosen as string[]).join(' | ')}${m.fellBack ? ' (best fitting candidate: the per-layer best did not fit)' : ''}`,
            `test accuracy ${(100 * m.testAccuracy).toFixed(2)}% on ${m.testImages} images (quantised, ${m.quant.weightBits}-bit weights, ${m.quant.activationBits}-bit inputs)` +
              (m.teacherAccuracy !== undefined ? `; teacher ${(100 * m.teacherAccuracy).toFixed(2)}% on ${m.teacherTestImages}` : ''),
            `EDP ${m.edpMsMj.toExponential(4)} ms*mJ, latency ${m.latencyMs.toFixed(4)} ms, energy ${m.energyMj.toExponential(4)} mJ, ${m.params} params, ${m.mops.toFixed(2)} MOPs, ${m.arrays}/${m.arraysAvailable} arrays`,
            '',
            renderTable(['stage', 'seconds'], stages),
            '',
            `outputs in ${outDir}`,
            '',
          ].join('\n'),
        );
      } catch (err) {
        hooks.stop();
        if (err instanceof CimbenchError && err.code === 'ABORTED') {
          throw new CimbenchError('ABORTED', `search interrupted; continue with: cimbench search --resume ${outDir}`, { cause: err });
        }
        throw err;
      } finally {
        process.off('SIGINT', onSigint);
        db.close();
      }
    });
}
