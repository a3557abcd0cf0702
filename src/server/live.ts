import type { CampaignDocument } from '../bench/documents.js';
import type { SearchHooks } from '../search/pipeline.js';
import type { LiveEvent } from './events.js';

/** LiveEvent without the fields the hub fills in. */
type Draft = LiveEvent extends infer E ? (E extends LiveEvent ? Omit<E, 'seq' | 'at' | 'runId'> : never) : never;

export interface LiveHubOptions {
  /** Progress events of one key are coalesced to at most one per this many ms (the last one wins). */
  readonly progressIntervalMs?: number;
  /** Recent events kept for clients that connect late. */
  readonly keep?: number;
}

/**
 * Turns campaign documents and search hooks into small LiveEvents and hands them to listeners
 * (socket.io). Runs inside the engine's synchronous emit, so it only copies a few numbers: the
 * per-cell arrays of program-result are reduced to counts here and never serialised. Progress is
 * coalesced per key so a fast step cannot flood the browser.
 */
export class LiveHub {
  private seq = 0;
  private readonly recent: LiveEvent[] = [];
  private readonly listeners = new Set<(e: LiveEvent) => void>();
  /** Progress events of one key are published at most once per this many ms. */
  readonly progressIntervalMs: number;
  private readonly keep: number;
  private readonly lastProgress = new Map<string, number>();
  private readonly pendingProgress = new Map<string, { draft: Draft; runId: number | null; timer: NodeJS.Timeout }>();

  constructor(options: LiveHubOptions = {}) {
    this.progressIntervalMs = options.progressIntervalMs ?? 50;
    this.keep = options.keep ?? 500;
  }

  on(fn: (e: LiveEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Events after `since` (all kept ones for -1). */
  replay(since: number): LiveEvent[] {
    return this.recent.filter((e) => e.seq > since);
  }

  publish(draft: Draft, runId: number | null): LiveEvent {
    const event = { ...draft, seq: this.seq++, at: Date.now(), runId } as LiveEvent;
    this.recent.push(event);
    if (this.recent.length > this.keep) this.recent.splice(0, this.recent.length - this.keep);
    for (const l of this.listeners) l(event);
    return event;
  }

  /** Publishes an event another hub built (a campaign worker's), with this hub's seq and clock. */
  relay(event: LiveEvent): LiveEvent {
    const { seq: _seq, at: _at, runId, ...draft } = event;
    return this.publish(draft as Draft, runId);
  }

  private progress(key: string, draft: Draft, runId: number | null): void {
    const now = performance.now();
    const last = this.lastProgress.get(key) ?? -Infinity;
    const pending = this.pendingProgress.get(key);
    if (now - last >= this.progressIntervalMs && !pending) {
      this.lastProgress.set(key, now);
      this.publish(draft, runId);
      return;
    }
    if (pending) {
      pending.draft = draft;
      return;
    }
    const timer = setTimeout(() => this.flushProgress(key), Math.max(0, this.progressIntervalMs - (now - last)));
    timer.unref();
    this.pendingProgress.set(key, { draft, runId, timer });
  }

  private flushProgress(key: string): void {
    const p = this.pendingProgress.get(key);
    if (!p) return;
    clearTimeout(p.timer);
    this.pendingProgress.delete(key);
    this.lastProgress.set(key, performance.now());
    this.publish(p.draft, p.runId);
  }

  private flushAll(): void {
    for (const key of [...this.pendingProgress.keys()]) this.flushProgress(key);
  }

  /** A campaign-engine subscriber publishing this run's documents. */
  campaignSubscriber(runId: number, campaign: string): (doc: CampaignDocument) => void {
    // Per-array programming progress, from the map and each block's result.
    const blockArray = new Map<number, number>();
    const arrays = new Map<number, { done: number; total: number; failed: number; pulses: number }>();
    return (doc) => {
      switch (doc.type) {
        case 'run-start':
          this.publish({ kind: 'run-start', campaign, mode: doc.plan.mode, steps: doc.plan.steps.map((s) => (s.point === undefined ? s.kind : `${s.kind}@${s.point}`)) }, runId);
          return;
        case 'mapped': {
          for (const b of doc.blocks) {
            blockArray.set(b.block, b.region.array);
            const a = arrays.get(b.region.array) ?? { done: 0, total: 0, failed: 0, pulses: 0 };
            a.total += b.region.rows * b.region.cols;
            arrays.set(b.region.array, a);
          }
          for (const [array, a] of arrays) this.publish({ kind: 'array-progress', array, ...a }, runId);
          return;
        }
        case 'program-result': {
          const array = blockArray.get(doc.block);
          const a = array === undefined ? undefined : arrays.get(array);
          if (array === undefined || !a) return;
          let failed = 0;
          for (let i = 0; i < doc.status.length; i++) if (doc.status[i] !== 0) failed++;
          a.done += doc.status.length;
          a.failed += failed;
          a.pulses += doc.totalPulses;
          this.publish({ kind: 'array-progress', array, ...a }, runId);
          return;
        }
        case 'state':
          this.publish({ kind: 'state', from: doc.from, to: doc.to, ...(doc.reason ? { reason: doc.reason } : {}) }, runId);
          return;
        case 'step-start':
          this.publish({ kind: 'step', phase: 'start', key: doc.key, status: 'started' }, runId);
          return;
        case 'step-end':
          this.flushAll();
          this.publish({ kind: 'step', phase: 'end', key: doc.key, status: doc.status, seconds: doc.seconds }, runId);
          return;
        case 'progress':
          this.progress(`${runId}:${doc.key}`, { kind: 'progress', key: doc.key, label: doc.label, done: doc.done, total: doc.total }, runId);
          return;
        case 'prediction':
          this.publish({ kind: 'prediction', digitalAccuracy: doc.digitalAccuracy, points: doc.points.map((p) => ({ point: p.point, tS: p.tS, mean: p.accuracy.mean, std: p.accuracy.std })) }, runId);
          return;
        case 'accuracy':
          this.publish({ kind: 'accuracy', point: doc.point, value: doc.value, images: doc.images }, runId);
          return;
        case 'event':
          this.publish({ kind: 'event', level: doc.level, message: doc.message }, runId);
          return;
        case 'run-stop':
          this.flushAll();
          this.publish({ kind: 'run-stop', exitStatus: doc.exitStatus, reason: doc.reason }, runId);
          return;
        default:
          return;
      }
    };
  }

  /** Search pipeline hooks publishing a search run's stages and progress. */
  searchHooks(runId: number | null = null): SearchHooks {
    return {
      onStageStart: (stage, total, unit) => this.publish({ kind: 'search-stage', phase: 'start', stage, total, unit }, runId),
      onProgress: (stage, done, detail) => this.progress(`search:${runId}:${stage}`, { kind: 'search-progress', stage, done, ...(detail !== undefined ? { detail } : {}) }, runId),
      onStageEnd: (stage, seconds) => {
        this.flushAll();
        this.publish({ kind: 'search-stage', phase: 'end', stage, seconds }, runId);
      },
    };
  }
}
