import { existsSync, readdirSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { executeRun, loadCampaign, type CampaignEngine, type ExecuteOptions } from '../bench/index.js';
import { HttpError } from './http.js';
import type { LiveHub } from './live.js';

export interface ControllerDeps {
  readonly dbPath: string;
  /** The folder of stored campaign files a client may start (by file name only). */
  readonly campaignsDir: string;
  readonly openLink: ExecuteOptions['openLink'];
  readonly hub: LiveHub;
  readonly log?: (line: string) => void;
}

export interface ActiveCampaign {
  readonly runId: number;
  readonly campaign: string;
  readonly file: string;
  readonly state: string;
}

/**
 * Starts stored campaign files in this process, one at a time, and relays pause / resume / abort
 * to the running engine. Input problems (a campaign that does not parse, a network that does not
 * fit) reject the start before a run row exists, as on the CLI.
 */
export class CampaignController {
  private active: { runId: number; campaign: string; file: string; engine: CampaignEngine } | undefined;
  private done: Promise<unknown> = Promise.resolve();
  private starting = false;

  constructor(private readonly deps: ControllerDeps) {}

  /** Campaign files in the campaign folder. */
  files(): string[] {
    const dir = this.deps.campaignsDir;
    return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).sort() : [];
  }

  current(): ActiveCampaign | null {
    const a = this.active;
    return a ? { runId: a.runId, campaign: a.campaign, file: a.file, state: a.engine.state } : null;
  }

  /** Resolves with the new run's id once its row exists and the engine is about to run. */
  async start(file: string, mode: 'full' | 'program'): Promise<{ runId: number }> {
    if (this.active || this.starting) throw new HttpError(409, 'CONFLICT', `a campaign is already running in this server (run ${this.active?.runId ?? '(starting)'}); abort it or wait`);
    const path = resolve(this.deps.campaignsDir, file);
    if (!path.startsWith(resolve(this.deps.campaignsDir) + sep) || !existsSync(path)) {
      throw new HttpError(404, 'NOT_FOUND', `no campaign file ${file} in the campaign folder`, 'body.file');
    }
    this.starting = true;
    try {
      const campaign = loadCampaign(path);
      return await new Promise<{ runId: number }>((resolveStart, rejectStart) => {
        let started = false;
        const done = executeRun({
          dbPath: this.deps.dbPath,
          mode,
          campaign,
          source: path,
          openLink: this.deps.openLink,
          onEngine: (engine, runId) => {
            engine.subscribe(this.deps.hub.campaignSubscriber(runId, campaign.name));
            this.active = { runId, campaign: campaign.name, file, engine };
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
    } finally {
      this.starting = false;
    }
  }

  private require(runId: number): CampaignEngine {
    const a = this.active;
    if (!a || a.runId !== runId) throw new HttpError(404, 'NOT_FOUND', `run ${runId} is not running in this server${a ? ` (run ${a.runId} is)` : ''}`, 'path.id');
    return a.engine;
  }

  pause(runId: number, reason?: string): { state: string } {
    const e = this.require(runId);
    if (!e.pause(reason ?? 'paused from the bench UI')) throw new HttpError(409, 'CONFLICT', `run ${runId} is ${e.state}: only a running run can pause`);
    return { state: e.state };
  }

  resume(runId: number): { state: string } {
    const e = this.require(runId);
    if (!e.resume()) throw new HttpError(409, 'CONFLICT', `run ${runId} is ${e.state}: only a paused run can resume`);
    return { state: e.state };
  }

  abort(runId: number, reason?: string): { state: string } {
    const e = this.require(runId);
    if (!e.abort(reason ?? 'aborted from the bench UI')) throw new HttpError(409, 'CONFLICT', `run ${runId} is ${e.state}: it cannot be aborted`);
    return { state: e.state };
  }

  /** Waits for the running campaign (if any) to end. */
  async settled(): Promise<void> {
    await this.done;
  }

  /** Aborts a running campaign and waits for it (server shutdown). */
  async shutdown(): Promise<void> {
    const a = this.active;
    if (!a) return;
    a.engine.abort('bench server shutting down');
    await this.done;
  }
}
