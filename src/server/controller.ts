import { existsSync, readdirSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { executeRun, loadCampaign, type Campaign, type CampaignEngine, type ExecuteOptions } from '../bench/index.js';
import { CimbenchError, InputError, reviveError } from '../common/errors.js';
import { spawnModuleWorker } from '../common/worker.js';
import type { CampaignWorkerData, WorkerControl, WorkerMessage, WorkerRun } from './campaign-worker.js';
import { HttpError } from './http.js';
import type { LiveHub } from './live.js';

export interface ControllerDeps {
  readonly dbPath: string;
  /** The folder of stored campaign files a client may start (by file name only). */
  readonly campaignsDir: string;
  readonly openLink: ExecuteOptions['openLink'];
  /**
   * Run each campaign in a worker thread, opening its link with the `openLink` this module (a file
   * URL) exports; `cimbench serve` does. Without it campaigns run in the server's thread with
   * `openLink`, and the simulator's prediction stalls every request and live event while it runs.
   */
  readonly linkModule?: string;
  readonly hub: LiveHub;
  readonly log?: (line: string) => void;
}

export interface ActiveCampaign {
  readonly runId: number;
  readonly campaign: string;
  readonly file: string;
  readonly state: string;
}

type ControlAction = 'pause' | 'resume' | 'abort';

/** A running campaign, in this thread or in a worker. */
interface Running {
  readonly runId: number;
  readonly campaign: string;
  readonly file: string;
  readonly state: string;
  control(action: ControlAction, reason: string): Promise<{ ok: boolean; state: string }>;
}



/** A spawned worker, warming up or warm, not yet given a campaign. */
interface Spare {
  readonly worker: Worker;
  /** Resolves once it has loaded everything (or died). */
  readonly ready: Promise<void>;
  /** Set when it died before being used (a broken link module, say): the next start spawns anew. */
  dead: Error | undefined;
}

/** How long shutdown waits for an aborted campaign worker before terminating it. */
const SHUTDOWN_GRACE_MS = 30_000;

/**
 * Starts stored campaign files, one at a time, and relays pause / resume / abort to the running
 * engine. Input problems (a campaign that does not parse, a network that does not fit) reject the
 * start before a run row exists, as on the CLI.
 */
export class CampaignController {
  private active: Running | undefined;
  private done: Promise<unknown> = Promise.resolve();
  private starting: Promise<unknown> | undefined;
  private worker: Worker | undefined;
  private spare: Spare | undefined;
  private closed = false;

  constructor(private readonly deps: ControllerDeps) {}

  /**
   * With a link module: makes sure a warmed-up worker waits for the next campaign (files() calls
   * it: the Live page lists the files before anyone can press start).
   */
  prewarm(): Promise<void> {
    const linkModule = this.deps.linkModule;
    if (!linkModule || this.closed) return Promise.resolve();
    if (this.spare && !this.spare.dead) return this.spare.ready;
    const worker = spawnModuleWorker(import.meta.url, 'campaign-worker', { linkModule, progressIntervalMs: this.deps.hub.progressIntervalMs } satisfies CampaignWorkerData);
    let warm: () => void = () => undefined;
    const spare: Spare = { worker, ready: new Promise<void>((r) => (warm = r)), dead: undefined };
    const died = (err: Error): void => {
      spare.dead ??= err;
      warm();
    };
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') warm();
    });
    worker.on('error', died);
    worker.on('exit', (code) => died(new Error(`exited (code ${code}) while warming up`)));
    // An idle spare must not keep the process alive.
    worker.unref();
    this.spare = spare;
    return spare.ready;
  }

  /** Campaign files in the campaign folder. */
  files(): string[] {
    void this.prewarm();
    const dir = this.deps.campaignsDir;
    return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).sort() : [];
  }

  current(): ActiveCampaign | null {
    const a = this.active;
    return a ? { runId: a.runId, campaign: a.campaign, file: a.file, state: a.state } : null;
  }

  /** Resolves with the new run's id once its row exists and the engine is about to run. */
  async start(file: string, mode: 'full' | 'program'): Promise<{ runId: number }> {
    if (this.closed) throw new HttpError(409, 'CONFLICT', 'the bench server is shutting down');
    if (this.active || this.starting) throw new HttpError(409, 'CONFLICT', `a campaign is already running in this server (run ${this.active?.runId ?? '(starting)'}); abort it or wait`);
    const path = resolve(this.deps.campaignsDir, file);
    if (!path.startsWith(resolve(this.deps.campaignsDir) + sep) || !existsSync(path)) {
      throw new HttpError(404, 'NOT_FOUND', `no campaign file ${file} in the campaign folder`, 'body.file');
    }
    const campaign = loadCampaign(path);
    const started = this.deps.linkModule ? this.startWorker(campaign, path, file, mode) : this.startInline(campaign, path, file, mode);
    this.starting = started;
    try {
      return await started;
    } finally {
      this.starting = undefined;
    }
  }

  private startInline(campaign: Campaign, path: string, file: string, mode: 'full' | 'program'): Promise<{ runId: number }> {
    return new Promise<{ runId: number }>((resolveStart, rejectStart) => {
      let started = false;
      const done = executeRun({
        dbPath: this.deps.dbPath,
        mode,
        campaign,
        source: path,
        openLink: this.deps.openLink,
        onEngine: (engine: CampaignEngine, runId) => {
          engine.subscribe(this.deps.hub.campaignSubscriber(runId, campaign.name));
          this.active = {
            runId,
            campaign: campaign.name,
            file,
            get state() {
              return engine.state;
            },
            control: async (action, reason) => ({ ok: action === 'resume' ? engine.resume() : engine[action](reason), state: engine.state }),
          };
          started = true;
          resolveStart({ runId });
        },
        ...(this.deps.log ? { log: this.deps.log } : {}),
      });
      this.done = done
        .then(
          (r) => this.deps.log?.(`run ${r.runId} ended: ${r.outcome.exitStatus}${r.outcome.reason ? ` (${r.outcome.reason})` : ''}`),
          (err: unknown) => {
            if (!started) rejectStart(err);
            else this.deps.hub.publish({ kind: 'error', code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) }, this.active?.runId ?? null);
          },
        )
        .finally(() => {
          if (started) this.active = undefined;
        });
    });
  }

  private startWorker(campaign: Campaign, path: string, file: string, mode: 'full' | 'program'): Promise<{ runId: number }> {
    return new Promise<{ runId: number }>((resolveStart, rejectStart) => {
      void this.prewarm();
      const spare = this.spare as Spare;
      this.spare = undefined;
      const worker = spare.worker;
      worker.ref();
      if (spare.dead) {
        void worker.terminate();
        rejectStart(new CimbenchError('INTERNAL', `the campaign worker failed before the run: ${spare.dead.message}`));
        return;
      }
      this.worker = worker;
      let started = false;
      let ended = false;
      let finished: () => void = () => undefined;
      this.done = new Promise<void>((r) => (finished = r));
      const replies = new Map<number, (r: { ok: boolean; state: string }) => void>();
      let nextId = 1;
      const running = {
        runId: -1,
        campaign: campaign.name,
        file,
        state: 'starting',
        control: (action: ControlAction, reason: string) =>
          new Promise<{ ok: boolean; state: string }>((resolveReply) => {
            if (ended) return resolveReply({ ok: false, state: 'done' });
            const id = nextId++;
            replies.set(id, resolveReply);
            worker.postMessage({ type: 'control', id, action, reason } satisfies WorkerControl);
          }),
      };
      const fail = (err: CimbenchError): void => {
        if (!started) rejectStart(err);
        else this.deps.hub.publish({ kind: 'error', code: err.code, message: err.describe() }, running.runId);
      };
      const end = (): void => {
        if (ended) return;
        ended = true;
        for (const r of replies.values()) r({ ok: false, state: 'done' });
        replies.clear();
        if (started) this.active = undefined;
        if (this.worker === worker) this.worker = undefined;
        void worker.terminate();
        finished();
      };
      worker.on('message', (m: WorkerMessage) => {
        switch (m.type) {
          case 'ready':
            return;
          case 'started':
            started = true;
            running.runId = m.runId;
            running.state = m.state;
            this.active = running;
            resolveStart({ runId: m.runId });
            return;
          case 'live':
            if (m.event.kind === 'state') running.state = m.event.to;
            this.deps.hub.relay(m.event);
            return;
          case 'control-reply':
            if (m.ok) running.state = m.state;
            replies.get(m.id)?.({ ok: m.ok, state: m.state });
            replies.delete(m.id);
            return;
          case 'log':
            this.deps.log?.(m.line);
            return;
          case 'done':
            this.deps.log?.(`run ${m.runId} ended: ${m.exitStatus}${m.reason ? ` (${m.reason})` : ''}`);
            end();
            return;
          case 'failed':
            fail(reviveError(m.error));
            end();
            return;
        }
      });
      worker.on('error', (err) => {
        fail(new CimbenchError('INTERNAL', `campaign worker: ${err.message}`, { cause: err }));
        end();
      });
      worker.on('exit', (code) => {
        if (!ended) fail(new CimbenchError('INTERNAL', `campaign worker exited (code ${code}) before the run ended`));
        end();
      });
      worker.postMessage({ type: 'run', dbPath: this.deps.dbPath, mode, source: path, campaign: campaign as unknown as Record<string, unknown> } satisfies WorkerRun);
    });
  }

  private require(runId: number): Running {
    const a = this.active;
    if (!a || a.runId !== runId) throw new HttpError(404, 'NOT_FOUND', `run ${runId} is not running in this server${a ? ` (run ${a.runId} is)` : ''}`, 'path.id');
    return a;
  }

  async pause(runId: number, reason?: string): Promise<{ state: string }> {
    const r = await this.require(runId).control('pause', reason ?? 'paused from the bench UI');
    if (!r.ok) throw new HttpError(409, 'CONFLICT', `run ${runId} is ${r.state}: only a running run can pause`);
    return { state: r.state };
  }

  async resume(runId: number): Promise<{ state: string }> {
    const r = await this.require(runId).control('resume', '');
    if (!r.ok) throw new HttpError(409, 'CONFLICT', `run ${runId} is ${r.state}: only a paused run can resume`);
    return { state: r.state };
  }

  async abort(runId: number, reason?: string): Promise<{ state: string }> {
    const r = await this.require(runId).control('abort', reason ?? 'aborted from the bench UI');
    if (!r.ok) throw new HttpError(409, 'CONFLICT', `run ${runId} is ${r.state}: it cannot be aborted`);
    return { state: r.state };
  }

  /** Waits for the running campaign (if any) to end. */
  async settled(): Promise<void> {
    await this.done;
  }

  /** Aborts a running campaign and waits for it (server shutdown); a worker that does not stop in time is terminated. */
  async shutdown(): Promise<void> {
    this.closed = true;
    const spare = this.spare;
    this.spare = undefined;
    if (spare) await spare.worker.terminate();
    await this.starting?.catch(() => undefined);
    const a = this.active;
    if (!a) return;
    const worker = this.worker;
    await a.control('abort', 'bench server shutting down');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), SHUTDOWN_GRACE_MS)));
    const outcome = await Promise.race([this.done.then(() => 'done' as const), late]);
    clearTimeout(timer);
    if (outcome === 'late' && worker) {
      this.deps.log?.(`run ${a.runId}: the campaign worker did not stop within ${SHUTDOWN_GRACE_MS / 1000} s of the abort; terminated (the run is recovered as interrupted)`);
      await worker.terminate();
      await this.done;
    }
  }
}
