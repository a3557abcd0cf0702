/**
 * The bench UI's figures, measured (npm run bench:ui):
 *   ui.event_rate_per_s   live events per second a connected socket.io client receives, from
 *                         run-start to run-stop, during a short emulated campaign started through
 *                         the server as the Live page starts one (in a campaign worker thread);
 *                         the longest silence between two events is reported with it (maxGapS)
 *   ui.campaign_slowdown  campaign wall time (start to end) with the server and a connected client
 *                         over the same campaign (same chip seed, same everything) run alone with
 *                         executeRun, minus 1: medians of interleaved repetitions. The client runs
 *                         in this process, so its work counts against the campaign (a browser
 *                         would be another process).
 *   ui.first_paint_ms     headless chromium (playwright-core), fresh browser context each time:
 *                         navigation start to the run-detail page's plots drawn with data, for a
 *                         run recorded by a real campaign of the largest network that packs into
 *                         the emulated macro (120,864 of its 131,072 cells); median of 5 loads
 * Options (env): UI_BENCH_REPEATS (default 5), UI_BENCH_IMAGES (test images of the live campaign,
 * 200), UI_BENCH_SKIP_PAINT=1 (no chromium part), UI_BENCH_TRACE=1 (every live event on stderr,
 * when published and when received).
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { io as connectClient, type Socket } from 'socket.io-client';
import { z } from 'zod';
import { ensureUiBuilt } from '../bench-ui/build.js';
import { executeRun, parseCampaign } from '../src/bench/index.js';
import { openLink } from '../src/cli/commands/campaign-common.js';
import { parseWith } from '../src/common/validate.js';
import { exportNetwork, initBackend, SpecNetwork } from '../src/nn/index.js';
import { createBenchServer, newToken, type BenchServer } from '../src/server/index.js';
import { NetworkSpecSchema } from '../src/spec/index.js';
import { report } from './report.js';

const Env = z.object({
  UI_BENCH_REPEATS: z.coerce.number().int().min(1).max(50).default(5),
  UI_BENCH_IMAGES: z.coerce.number().int().min(10).max(1000).default(200),
});
const env = parseWith(Env, { UI_BENCH_REPEATS: process.env.UI_BENCH_REPEATS, UI_BENCH_IMAGES: process.env.UI_BENCH_IMAGES }, 'environment');
const REPEATS = env.UI_BENCH_REPEATS;
const CHROMIUM = '/usr/bin/chromium';
const root = mkdtempSync(join(tmpdir(), 'cimbench-ui-bench-'));
const DEMO_NETWORK = new URL('../fixtures/networks/demo', import.meta.url).pathname;
const LINK_MODULE = new URL('../src/cli/commands/campaign-common.ts', import.meta.url).href;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
let dbNo = 0;
const freshDb = (): string => join(root, `run-${dbNo++}.db`);

/** The live campaign: the demo network on the in-process emulated macro, programming, measurement, one drift point. */
const liveCampaign = {
  name: 'ui-bench',
  network: DEMO_NETWORK,
  link: { kind: 'emulator', chip: 'typical', seed: 4 },
  testSet: { dataset: 'fashion-mnist-subset', count: env.UI_BENCH_IMAGES },
  drift: { initial: 1, points: ['1 h'], clock: 'emulated' },
  seeds: [1],
  mvm: { vectors: 4 },
};
const campaignsDir = join(root, 'campaigns');
mkdirSync(campaignsDir, { recursive: true });
writeFileSync(join(campaignsDir, 'live.json'), JSON.stringify(liveCampaign));

async function startServer(dbPath: string, uiDir?: string): Promise<{ server: BenchServer; url: string }> {
  // As `cimbench serve`: campaigns started from the UI run in a worker thread.
  const server = createBenchServer({ dbPath, token: newToken(), campaignsDir, openLink, linkModule: LINK_MODULE, loopbackOnly: true, ...(uiDir ? { uiDir } : {}) });
  const url = await server.listen(0, '127.0.0.1');
  return { server, url };
}

/** The campaign alone: executeRun as `cimbench run` does, nothing subscribed but the recorder. */
async function aloneSeconds(): Promise<number> {
  const campaign = parseCampaign(liveCampaign, 'ui bench campaign', process.cwd());
  const t0 = performance.now();
  const r = await executeRun({ dbPath: freshDb(), mode: 'full', campaign, openLink });
  const s = (performance.now() - t0) / 1000;
  if (r.outcome.exitStatus !== 'success') throw new Error(`campaign ended ${r.outcome.exitStatus}: ${r.outcome.reason}`);
  return s;
}

/** The same campaign started through the server (POST /api/campaigns' path) with a socket.io client connected. */
async function servedSeconds(): Promise<{ seconds: number; events: number; eventSeconds: number; kinds: Record<string, number>; maxGapS: number; startDelayS: number }> {
  const { server, url } = await startServer(freshDb());
  const client: Socket = connectClient(url, { transports: ['websocket'], reconnection: false });
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('connect_error', reject);
    });
    let runId: number | null = null;
    const received: Array<{ t: number; kind: string; runId: number | null; at: number; key: string }> = [];
    let wall0 = Date.now();
    let stopped: () => void = () => undefined;
    const stop = new Promise<void>((resolve) => (stopped = resolve));
    client.on('live', (e: { kind: string; runId: number | null; at: number; key?: string }) => {
      received.push({ t: performance.now(), kind: e.kind, runId: e.runId, at: e.at, key: e.key ?? '' });
      if (e.kind === 'run-stop') stopped();
    });
    // As the Live page: it lists the campaign files (which warms a campaign worker) before anyone
    // can press start; a person takes longer to press it than the worker takes to warm up.
    const files = await fetch(`${url}/api/campaigns`);
    if (!files.ok) throw new Error(`GET /api/campaigns: ${files.status}`);
    await server.controller.prewarm();
    const t0 = performance.now();
    wall0 = Date.now();
    ({ runId } = await server.controller.start('live.json', 'full'));
    await server.controller.settled();
    const seconds = (performance.now() - t0) / 1000;
    await Promise.race([stop, new Promise((r) => setTimeout(r, 5000))]);
    const mine = received.filter((e) => e.runId === runId);
    const first = mine.find((e) => e.kind === 'run-start');
    const last = mine.find((e) => e.kind === 'run-stop');
    if (!first || !last) throw new Error(`the client missed run-start or run-stop (${mine.length} events)`);
    const kinds: Record<string, number> = {};
    for (const e of mine) kinds[e.kind] = (kinds[e.kind] ?? 0) + 1;
    // The longest silence between two events the client received while the run was live.
    let maxGapS = 0;
    for (let i = 1; i < mine.length; i++) maxGapS = Math.max(maxGapS, ((mine[i] as { t: number }).t - (mine[i - 1] as { t: number }).t) / 1000);
    if (process.env.UI_BENCH_TRACE === '1') process.stderr.write(`${mine.map((e) => `received ${((e.t - t0) / 1000).toFixed(3)} s, published ${((e.at - wall0) / 1000).toFixed(3)} s: ${e.kind} ${e.key}`).join('\n')}\n`);
    return { seconds, events: mine.length, eventSeconds: (last.t - first.t) / 1000, kinds, maxGapS, startDelayS: (first.t - t0) / 1000 };
  } finally {
    client.close();
    await server.close();
  }
}

// ---- live events and slowdown ----
await initBackend();
await aloneSeconds(); // warm-up: module loading, JIT, dataset cache
const alone: number[] = [];
const served: Array<Awaited<ReturnType<typeof servedSeconds>>> = [];
for (let i = 0; i < REPEATS; i++) {
  // Interleaved, alternating which goes first, so load changes on the shared machine hit both.
  if (i % 2 === 0) {
    alone.push(await aloneSeconds());
    served.push(await servedSeconds());
  } else {
    served.push(await servedSeconds());
    alone.push(await aloneSeconds());
  }
}
const rates = served.map((s) => s.events / s.eventSeconds);
report('ui.event_rate_per_s', median(rates), '/s', {
  target: 10,
  runs: REPEATS,
  eventsPerRun: median(served.map((s) => s.events)),
  kinds: served[0]?.kinds,
  liveSeconds: median(served.map((s) => s.eventSeconds)),
  maxGapS: Number(Math.max(...served.map((s) => s.maxGapS)).toFixed(3)),
  startDelayS: Number(median(served.map((s) => s.startDelayS)).toFixed(3)),
  campaignImages: env.UI_BENCH_IMAGES,
  perRun: rates.map((r) => Number(r.toFixed(1))),
});
const withServer = median(served.map((s) => s.seconds));
const without = median(alone);
report('ui.campaign_slowdown', withServer / without - 1, 'fraction', {
  target: 0.05,
  runs: REPEATS,
  medianWithServerS: Number(withServer.toFixed(3)),
  medianAloneS: Number(without.toFixed(3)),
  withServerS: served.map((s) => Number(s.seconds.toFixed(3))),
  aloneS: alone.map((s) => Number(s.toFixed(3))),
  load1: Number(loadavg()[0]?.toFixed(2)),
});

// ---- first paint of a large run ----
if (process.env.UI_BENCH_SKIP_PAINT === '1') process.exit(0);
if (!existsSync(CHROMIUM)) {
  process.stderr.write(`${CHROMIUM} is not installed: ui.first_paint_ms not measured\n`);
  process.exit(0);
}
/** 3x3 convs 48, 56, 64 (stride 2), global average pool, dense 48, dense 10: 120,864 cells, the most found to pack into 8 arrays of 128x128. */
const bigSpec = NetworkSpecSchema.parse({
  name: 'ui-bench-120k',
  description: 'bench:ui: the largest network found that packs into the nas4cim-macro (120,864 of 131,072 cells); seeded initial weights, not trained',
  input: [28, 28, 1],
  classes: 10,
  layers: [
    { op: 'conv', kernel: 3, out: 48, stride: 2 },
    { op: 'conv', kernel: 3, out: 56, stride: 2 },
    { op: 'conv', kernel: 3, out: 64, stride: 2 },
    { op: 'gap' },
    { op: 'dense', out: 48 },
    { op: 'dense', out: 10 },
  ],
});
const netDir = join(root, 'net-120k');
await exportNetwork(new SpecNetwork(bigSpec, { quant: { weightBits: 4, activationBits: 8 }, seed: 11 }), netDir);
const bigDb = join(root, 'big.db');
const tBig = performance.now();
const big = await executeRun({
  dbPath: bigDb,
  mode: 'full',
  campaign: parseCampaign(
    { name: 'ui-bench-120k', network: netDir, link: { kind: 'emulator', chip: 'typical', seed: 5 }, testSet: { dataset: 'fashion-mnist-subset', count: 100 }, drift: { initial: 1, points: ['1 h'], clock: 'emulated' }, seeds: [1], mvm: { vectors: 4 } },
    'ui bench 120k campaign',
    process.cwd(),
  ),
  openLink,
});
const bigSeconds = (performance.now() - tBig) / 1000;
if (big.outcome.exitStatus !== 'success') throw new Error(`120k campaign ended ${big.outcome.exitStatus}: ${big.outcome.reason}`);
const cells = big.summary.cells.total;

const uiDir = await ensureUiBuilt();
const { server, url } = await startServer(bigDb, uiDir);
const { chromium } = await import('playwright-core');
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'] });
const charts = ['heatmap-error', 'heatmap-pulses', 'histograms', 'drift-accuracy', 'drift-conductance'];
const paints: number[] = [];
const routeMs: number[] = [];
try {
  for (let i = 0; i < REPEATS + 1; i++) {
    // A fresh context: no cached bundle, no cached API answers, as a first visit.
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${url}/#/runs/${big.runId}`);
    await page.waitForFunction(() => document.body.dataset.painted === '1' && document.body.dataset.view === 'run', undefined, { timeout: 30_000 });
    // The plots hold data: every chart drawn, with points.
    for (const chart of charts) {
      const c = page.locator(`canvas[data-chart="${chart}"]`);
      if ((await c.getAttribute('data-drawn')) !== '1' || !(Number(await c.getAttribute('data-points')) > 0)) throw new Error(`${chart} not drawn with data`);
    }
    const t = await page.evaluate(() => ({ mark: performance.getEntriesByName('cimbench-painted')[0]?.startTime ?? null, route: (window as unknown as { cimbench: { paintMs: number | null } }).cimbench.paintMs }));
    if (errors.length > 0) throw new Error(`page errors: ${errors.join('; ')}`);
    if (t.mark === null || t.route === null) throw new Error('no paint mark');
    // The first load also warms chromium itself (process start, code caches): not counted.
    if (i > 0) {
      paints.push(t.mark);
      routeMs.push(t.route);
    }
    await context.close();
  }
  // The API alone, for the record.
  const t0 = performance.now();
  const res = await fetch(`${url}/api/runs/${big.runId}`);
  await res.arrayBuffer();
  const detailMs = performance.now() - t0;
  report('ui.first_paint_ms', median(paints), 'ms', {
    target: 1000,
    cells,
    runs: paints.length,
    perLoad: paints.map((p) => Math.round(p)),
    routeToPaintMs: Math.round(median(routeMs)),
    apiRunDetailMs: Math.round(detailMs),
    campaignSeconds: Number(bigSeconds.toFixed(1)),
  });
} finally {
  await browser.close();
  await server.close();
}
