import { parentPort, workerData } from 'node:worker_threads';
import { z } from 'zod';
import { executeRun, type Campaign, type CampaignEngine, type ExecuteOptions } from '../bench/index.js';
import { CimbenchError, serializeError, type SerializedError } from '../common/errors.js';
import { initBackend } from '../nn/index.js';
import type { LiveEvent } from './events.js';
import { LiveHub } from './live.js';

/**
 * One campaign started from the bench UI, in a worker thread: the simulator's prediction (seconds
 * to minutes of synchronous Monte Carlo) and the in-process emulated macro then never stall the
 * server's event loop, so HTTP answers, socket.io heartbeats and live events keep flowing.
 * The worker runs executeRun with a LiveHub of its own (progress coalesced here, per-cell arrays
 * reduced to counts here) and posts the hub's small events to the server, which relays them.
 * The server keeps one spare worker warmed up (modules, link module, TF.js backend loaded), so a
 * start from the UI does not wait for a thread to boot; each worker runs one campaign.
 *
 * Server -> worker: WorkerControl. Worker -> server: WorkerMessage (controller.ts).
 */

/** At spawn: what the worker loads before any campaign (a spare worker waits warmed up). */
export const CampaignWorkerDataSchema = z.strictObject({
  /** A module exporting `openLink` (ExecuteOptions['openLink']): functions do not cross threads. */
  linkModule: z.string().min(1),
  progressIntervalMs: z.number().min(0),
});
export type CampaignWorkerData = z.output<typeof CampaignWorkerDataSchema>;

/** Server -> worker: the one campaign this worker runs. */
export const WorkerRunSchema = z.strictObject({
  type: z.literal('run'),
  dbPath: z.string().min(1),
  mode: z.enum(['full', 'program']),
  source: z.string().min(1),
  /** The campaign as loadCampaign parsed it in the server (structured-cloned). */
  campaign: z.record(z.string(), z.unknown()),
});
export type WorkerRun = z.output<typeof WorkerRunSchema>;

export const WorkerControlSchema = z.strictObject({
  type: z.literal('control'),
  id: z.int(),
  action: z.enum(['pause', 'resume', 'abort']),
  reason: z.string().optional(),
});
export type WorkerControl = z.output<typeof WorkerControlSchema>;


export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'started'; runId: number; state: string }
  | { type: 'live'; event: LiveEvent }
  | { type: 'control-reply'; id: number; ok: boolean; state: string }
  | { type: 'log'; line: string }
  | { type: 'done'; runId: number; exitStatus: string; reason: string | null }
  | { type: 'failed'; started: boolean; error: SerializedError };


const port = parentPort;
if (!port) throw new Error('campaign-worker.ts runs only as a worker thread');
const post = (m: WorkerMessage): void => port.postMessage(m);
const data = CampaignWorkerDataSchema.parse(workerData);
let engine: CampaignEngine | undefined;
let started = false;
let job: WorkerRun | undefined;
let wake: (run: WorkerRun) => void = () => undefined;
const nextRun = new Promise<WorkerRun>((resolve) => (wake = resolve));

// Messages queue until this listener exists, so the server may send 'run' before 'ready'.
port.on('message', (raw: unknown) => {
  const run = WorkerRunSchema.safeParse(raw);
  if (run.success) {
    if (!job) wake((job = run.data));
    return;
  }
  const m = WorkerControlSchema.safeParse(raw);
  if (!m.success) return;
  const { id, action, reason } = m.data;
  if (!engine) return post({ type: 'control-reply', id, ok: false, state: 'starting' });
  const ok = action === 'resume' ? engine.resume() : engine[action](reason);
  post({ type: 'control-reply', id, ok, state: engine.state });
});

try {
  // Warm-up, before any campaign: the link module (and the emulated macro behind it) and the
  // TF.js backend the prediction uses.
  const mod = (await import(data.linkModule)) as { openLink?: unknown };
  if (typeof mod.openLink !== 'function') throw new CimbenchError('INTERNAL', `${data.linkModule} exports no openLink function`);
  const openLink = mod.openLink as ExecuteOptions['openLink'];
  await initBackend();
  post({ type: 'ready' });
  const run = await nextRun;
  const campaign = run.campaign as unknown as Campaign;
  const hub = new LiveHub({ progressIntervalMs: data.progressIntervalMs, keep: 1 });
  hub.on((event) => post({ type: 'live', event }));
  const r = await executeRun({
    dbPath: run.dbPath,
    mode: run.mode,
    campaign,
    source: run.source,
    openLink,
    onEngine: (e, runId) => {
      engine = e;
      e.subscribe(hub.campaignSubscriber(runId, campaign.name));
      started = true;
      post({ type: 'started', runId, state: e.state });
    },
    log: (line) => post({ type: 'log', line }),
  });
  post({ type: 'done', runId: r.runId, exitStatus: r.outcome.exitStatus, reason: r.outcome.reason ?? null });
} catch (err) {
  post({ type: 'failed', started, error: serializeError(err) });
}
// Nothing more to receive: the thread ends once its link and store are closed (the server also
// terminates it when it has read 'done' or 'failed').
port.removeAllListeners('message');
port.unref();
