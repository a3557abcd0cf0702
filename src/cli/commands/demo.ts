import type { Command } from 'commander';
import { join, resolve } from 'node:path';
import { InputError } from '../../common/errors.js';
import { packageDir } from '../../common/paths.js';
import { parseWith } from '../../common/validate.js';
import { hardwareProfilePath, loadHardwareProfile } from '../../hardware/index.js';
import { fashionMnistSubsetDir, initBackend } from '../../nn/index.js';
import { budgetByName, defaultWorkers, loadSearchSpace, presetWeights, runSearch } from '../../search/index.js';
import { openDatabase, SearchRuns } from '../../store/index.js';
import { campaignFromObject, runFromCli, formatDuration } from './campaign-common.js';
import { reportOutcome } from './run.js';
import { addListenOptions, ListenOptionsSchema, serveUntilInterrupted } from './serve.js';

interface DemoOptions {
  skipSearch: boolean;
  db: string;
  chip: string;
  seed: string;
  images: string;
  seeds: string;
  drift: string;
  searchOut: string;
  json: boolean;
  serve: boolean;
  port?: string;
  host?: string;
}

/** The committed demo network (fixtures/networks/demo), used with --skip-search. */
export function demoNetworkDir(): string {
  return join(packageDir('fixtures', 'networks'), 'demo');
}

export function registerDemo(program: Command): void {
  const cmd = program
    .command('demo')
    .description(
      'the whole bench on embedded defaults: an in-process emulated macro, a tiny search on the bundled FashionMNIST subset (or the committed demo network), ' +
        'program, measure, one accelerated drift point, all recorded in SQLite, and a summary',
    )
    .option('--skip-search', 'use the committed demo network instead of running a tiny search', false)
    .option('--db <file>', 'SQLite store', './cimbench.db')
    .option('--chip <name>', 'emulated chip profile: typical or degraded', 'typical')
    .option('--seed <n>', 'emulated chip seed (and search seed)', '1')
    .option('--images <n>', 'test images for the prediction and the on-chip measurement (subset has 1000)', '1000')
    .option('--seeds <n>', 'Monte Carlo seeds of the prediction (each one simulated programming of the whole network; the prediction is most of the demo\'s time)', '2')
    .option('--drift <duration>', 'the accelerated drift point (emulated device clock)', '1 d')
    .option('--search-out <dir>', 'where the tiny search writes its outputs', './cimbench-demo-search')
    .option('--json', 'print the run summary as JSON', false)
    .option('--serve', 'then keep the bench UI (cimbench serve) up on the demo database until Ctrl-C, printing its URL and control token', false);
  addListenOptions(cmd, ' with --serve')
    .addHelpText('after', '\nWith --serve the demo run stays on view at the printed URL (a failed run too); Ctrl-C closes the server, and the exit status is the demo\'s.')
    .action(async (opts: DemoOptions) => {
      if (!opts.serve && (opts.port !== undefined || opts.host !== undefined)) throw new InputError('INVALID_INPUT', '--port and --host only go with --serve', { where: opts.port !== undefined ? '--port' : '--host' });
      // Checked before the demo runs, so a bad --port does not cost a demo.
      const listen = opts.serve ? parseWith(ListenOptionsSchema, { port: opts.port, host: opts.host }, 'demo --serve options') : undefined;
      const seed = Number(opts.seed);
      const images = Number(opts.images);
      if (!Number.isInteger(seed) || seed < 0) throw new InputError('INVALID_INPUT', `not a seed: ${opts.seed}`, { where: '--seed' });
      if (!Number.isInteger(images) || images < 1) throw new InputError('INVALID_INPUT', `not an image count: ${opts.images}`, { where: '--images' });
      const seeds = Number(opts.seeds);
      if (!Number.isInteger(seeds) || seeds < 1 || seeds > 64) throw new InputError('INVALID_INPUT', `not a seed count 1..64: ${opts.seeds}`, { where: '--seeds' });
      await initBackend();
      const t0 = performance.now();
      let network = demoNetworkDir();
      if (!opts.skipSearch) {
        const hwPath = hardwareProfilePath('nas4cim-macro');
        const db = openDatabase(opts.db);
        try {
          process.stderr.write('tiny NAS4CIM search on the bundled FashionMNIST subset (--skip-search uses the committed demo network)\n');
          await runSearch({
            outDir: resolve(opts.searchOut),
            force: true,
            runs: new SearchRuns(db),
            config: {
              space: loadSearchSpace('fashion-mnist'),
              method: 'nas4cim',
              preset: 'balanced',
              weights: presetWeights('balanced'),
              budgetName: 'tiny',
              budget: budgetByName('tiny'),
              seed,
              hardware: loadHardwareProfile(hwPath),
              hardwareSource: hwPath,
              dataDir: fashionMnistSubsetDir(),
              workers: defaultWorkers(),
            },
          });
        } finally {
          db.close();
        }
        network = resolve(opts.searchOut);
      }
      const campaign = campaignFromObject(
        {
          name: opts.skipSearch ? 'demo' : 'demo-search',
          description: 'cimbench demo: in-process emulated macro, FashionMNIST subset, one accelerated drift point',
          network,
          hardware: 'nas4cim-macro',
          link: { kind: 'emulator', chip: opts.chip, seed },
          testSet: { dataset: 'fashion-mnist-subset', count: images },
          drift: { initial: 1, points: [opts.drift], clock: 'emulated' },
          seeds: Array.from({ length: seeds }, (_, i) => i + 1),
        },
        process.cwd(),
        'demo campaign',
      );
      const result = await runFromCli({ dbPath: opts.db, mode: 'full', campaign, source: null });
      const s = result.summary;
      if (!opts.json) {
        const lines = [`\ndemo finished in ${formatDuration((performance.now() - t0) / 1000)}: run ${result.runId} recorded in ${resolve(opts.db)}`];
        for (const p of s.points) {
          lines.push(
            `  after ${formatDuration(p.nominalS)}: simulated ${p.simulated ? `${(100 * p.simulated.mean).toFixed(1)}% +- ${(100 * p.simulated.std).toFixed(1)}` : '-'}, ` +
              `measured ${p.measured !== null ? `${(100 * p.measured).toFixed(1)}%` : '-'}`,
          );
        }
        lines.push(
          `  EDP ${s.run.cost.edpMsMj.toExponential(3)} ms*mJ per image; ${s.cells.programmed} of ${s.run.cellsPlanned} cells programmed, mean ${s.cells.meanPulses?.toFixed(2) ?? '-'} pulses; ${s.discrepancies.length + s.arrayDiscrepancies.length} discrepancy rows`,
          `  next: cimbench show ${result.runId} --db ${opts.db}; cimbench export ${result.runId} --db ${opts.db} --format csv --out ./run-${result.runId}`,
        );
        process.stderr.write(`${lines.join('\n')}\n`);
      }
      if (!listen) {
        reportOutcome(result, opts.json);
        return;
      }
      let failure: unknown;
      try {
        reportOutcome(result, opts.json);
      } catch (err) {
        // Ctrl-C during the demo means stop, not serve; a failed run is worth a look in the UI.
        if (result.outcome.exitStatus === 'abort') throw err;
        failure = err;
        process.stderr.write(`run ${result.runId} failed (recorded); serving it anyway, the exit status stays a failure\n`);
      }
      await serveUntilInterrupted({
        dbPath: opts.db,
        port: listen.port,
        host: listen.host,
        campaignsDir: '.',
        // With --json stdout holds only the summary document.
        ...(opts.json ? { print: (text: string) => void process.stderr.write(text) } : {}),
      });
      if (failure !== undefined) throw failure;
    });
}
