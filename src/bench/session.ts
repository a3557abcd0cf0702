import { parseWith } from '../common/validate.js';
import { CimbenchError, InputError } from '../common/errors.js';
import type { ChipLink } from '../link/index.js';
import { backendName, initBackend } from '../nn/index.js';
import { BenchRuns, openDatabase, RunRecorder, type Db, type RunSummary } from '../store/index.js';
import { CampaignSchema, prepareCampaign, type Campaign, type LinkConfig, type PreparedCampaign } from './campaign.js';
import type { CampaignDocument, TimeReference } from './documents.js';
import { CampaignEngine, type PredictFn, type RunOutcome } from './engine.js';
import { buildPlan, type PlanMode } from './plan.js';

/**
 * One campaign run from start to finish: checks, run row, link, engine, recorder, signals.
 * Shared by the CLI commands (run, program, measure, drift, demo) and the tests; the caller says
 * how to open a link (the CLI knows the emulated macro; src/ does not import it).
 */

export interface OpenedLink {
  readonly link: ChipLink;
  readonly description: string;
  /** False for the in-process emulator: its cells vanish with this process. */
  readonly persistent: boolean;
  close(): Promise<void>;
}

export interface ExecuteOptions {
  readonly dbPath: string;
  readonly mode: PlanMode;
  /** A new run: the campaign and where it was read from. */
  readonly campaign?: Campaign;
  readonly source?: string | null;
  /** Resume this run instead. */
  readonly resume?: number;
  /** measure / drift: the run that programmed the chip (its end of programming is time zero). */
  readonly after?: number;
  /** Tests: allow measure/drift/resume on an in-process device that keeps its cells in this process. */
  readonly allowVolatileLink?: boolean;
  /** Called with the engine and the run id once both exist, before the run starts (pause/abort from outside, live UI). */
  readonly onEngine?: (engine: CampaignEngine, runId: number) => void;
  /** More document subscribers (progress bars); called after the recorder. */
  readonly subscribers?: ReadonlyArray<(doc: CampaignDocument) => void>;
  /** Opens the campaign's link. */
  readonly openLink: (cfg: LinkConfig) => OpenedLink;
  /** The prediction (default: the simulator). */
  readonly predict?: PredictFn;
  /** Install SIGINT/SIGTERM (abort) and SIGUSR1/SIGUSR2 (pause/resume) handlers (CLI). */
  readonly signals?: boolean;
  readonly log?: (line: string) => void;
}

export interface ExecuteResult {
  readonly runId: number;
  readonly outcome: RunOutcome;
  readonly summary: RunSummary;
}

function checkResumeMatches(prepared: PreparedCampaign, run: { weightImageSha256: string; hardwareSha256: string; noiseSha256: string }, id: number): void {
  const pairs: Array<[string, string, string]> = [
    ['weight image', prepared.hashes.weightImage, run.weightImageSha256],
    ['hardware profile', prepared.hashes.hardware, run.hardwareSha256],
    ['noise profile', prepared.hashes.noise, run.noiseSha256],
  ];
  for (const [what, now, then] of pairs) {
    if (now !== then) throw new InputError('INVALID_INPUT', `the ${what} changed since run ${id} started (sha256 ${then.slice(0, 12)}... then, ${now.slice(0, 12)}... now); start a new run`, { where: `--resume ${id}` });
  }
}

/**
 * Everything that can reject the input (campaign, network, profiles, test set, fit) happens before
 * the run row exists and before the link opens; device checks happen in the engine's connect step,
 * before any pulse.
 */
export async function executeRun(opts: ExecuteOptions): Promise<ExecuteResult> {
  const db: Db = openDatabase(opts.dbPath);
  try {
    const runs = new BenchRuns(db);
    runs.recoverInterrupted();
    let campaign: Campaign;
    let mode = opts.mode;
    let parentRef: TimeReference | undefined;
    let parentId: number | null = null;
    const resumeRow = opts.resume !== undefined ? runs.require(opts.resume) : undefined;
    if (resumeRow) {
      if (resumeRow.status === 'completed') {
        throw new InputError('INVALID_INPUT', `run ${resumeRow.id} is completed (${resumeRow.exitStatus}) and immutable; start a new run`, { where: `--resume ${resumeRow.id}` });
      }
      campaign = parseWith(CampaignSchema, resumeRow.config, `run ${resumeRow.id} config snapshot`);
      mode = resumeRow.mode;
      parentId = resumeRow.parentRunId;
    } else {
      if (!opts.campaign) throw new CimbenchError('INTERNAL', 'executeRun needs a campaign or a run to resume');
      campaign = opts.campaign;
    }
    if (parentId === null && opts.after !== undefined) parentId = opts.after;
    if (parentId !== null) {
      const parent = runs.require(parentId);
      parentRef = parent.timeReference;
      if (!parentRef) throw new InputError('INVALID_INPUT', `run ${parentId} has no recorded end of programming`, { where: `--after ${parentId}` });
    }
    if (resumeRow && campaign.link.kind === 'emulator' && !opts.allowVolatileLink) {
      // Its cells, boot and loaded networks lived in the process that ran the run: a new emulator
      // would be a different, unprogrammed chip, and "resuming" on it would record nonsense.
      throw new InputError(
        'INVALID_INPUT',
        `run ${resumeRow.id} used the in-process emulated macro, whose state died with the process that ran it; it cannot be resumed. Start a new run, or serve the emulator (cimbench emulate --link <path> or --tcp <port>) and use a serial or tcp:// link for runs that must survive a restart`,
        { where: `--resume ${resumeRow.id}` },
      );
    }
    if ((mode === 'measure' || mode === 'drift') && campaign.link.kind === 'emulator' && !opts.allowVolatileLink) {
      throw new InputError('INVALID_INPUT', 'the in-process emulator does not keep its cells between commands: use `cimbench run` for the whole campaign, or a serial or tcp:// link', {
        where: 'campaign: link',
      });
    }
    if (mode === 'drift' && campaign.drift.points.length === 0) throw new InputError('INVALID_INPUT', 'drift needs at least one entry in drift.points', { where: 'campaign: drift.points' });
    const prepared = prepareCampaign(campaign);
    if (resumeRow) checkResumeMatches(prepared, resumeRow, resumeRow.id);
    const plan = buildPlan(campaign, mode, { resume: resumeRow !== undefined });
    const predicts = plan.steps.some((s) => s.kind === 'predict');
    if (predicts) await initBackend();

    const run = resumeRow
      ? runs.claimForResume(resumeRow.id)
      : runs.create({
          campaign: { name: campaign.name, source: opts.source ?? null, config: campaign },
          mode,
          plan,
          parentRunId: parentId,
          networkName: prepared.net.spec.name,
          networkDir: prepared.networkDir,
          weightImageSha256: prepared.hashes.weightImage,
          hardwareProfile: prepared.hw.name,
          hardwareSha256: prepared.hashes.hardware,
          hardware: prepared.hw,
          noiseProfile: prepared.noise.name,
          noiseSha256: prepared.hashes.noise,
          noise: prepared.noise,
          seeds: campaign.seeds,
          // The TF.js backend only matters to the prediction.
          backend: predicts ? backendName() : 'none',
          link: campaign.link.kind,
          arraysUsed: prepared.compiled.arraysUsed,
          cellsPlanned: prepared.compiled.cells,
          cost: prepared.cost,
        });
    const resume = resumeRow ? runs.resumeState(run.id) : undefined;
    const opened = opts.openLink(campaign.link);
    const engine = new CampaignEngine({
      prepared,
      plan,
      link: opened.link,
      linkDescription: opened.description,
      ...(resume ? { resume } : {}),
      ...(parentRef ? { timeReference: parentRef } : {}),
      ...(opts.predict ? { predict: opts.predict } : {}),
    });
    const recorder = new RunRecorder(runs, run.id);
    engine.subscribe(recorder.write);
    for (const s of opts.subscribers ?? []) engine.subscribe(s);
    opts.onEngine?.(engine, run.id);
    opts.log?.(`run ${run.id}${resumeRow ? ' (resumed)' : ''}: ${campaign.name}, ${prepared.compiled.cells} cells on ${prepared.compiled.arraysUsed} arrays, link ${opened.description}`);
    // Ctrl-C / SIGTERM abort cleanly (what is collected stays); SIGUSR1 pauses, SIGUSR2 resumes.
    let interrupts = 0;
    const onAbort = (): void => {
      if (++interrupts > 1) process.exit(130);
      opts.log?.('aborting: cancelling the operation in flight (again to quit at once)');
      engine.abort('interrupted by the user (signal)');
    };
    const onPause = (): void => void engine.pause('paused by SIGUSR1');
    const onResume = (): void => void engine.resume();
    if (opts.signals) {
      process.on('SIGINT', onAbort);
      process.on('SIGTERM', onAbort);
      process.on('SIGUSR1', onPause);
      process.on('SIGUSR2', onResume);
    }
    let outcome: RunOutcome;
    try {
      outcome = await engine.run();
    } finally {
      process.off('SIGINT', onAbort);
      process.off('SIGTERM', onAbort);
      process.off('SIGUSR1', onPause);
      process.off('SIGUSR2', onResume);
      await opened.close().catch(() => undefined);
    }
    return { runId: run.id, outcome, summary: runs.summary(run.id) };
  } finally {
    db.close();
  }
}

