import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { io as connect, type Socket } from 'socket.io-client';
import { LiveEventSchema, type LiveEvent } from '../../src/server/index.js';
import { openDatabase, SearchRuns } from '../../src/store/index.js';
import { getJson, postJson, recordRun, startTestServer, tempDir, type TestServer } from './helpers.js';

/** GET with a raw Host header (fetch will not send a forged one). */
function getWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

function waitFor<T>(events: T[], pred: (e: T) => boolean, ms: number, what: string): Promise<T> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      const hit = events.find(pred);
      if (hit) return resolve(hit);
      if (Date.now() - t0 > ms) return reject(new Error(`timed out waiting for ${what}; saw ${events.length} events`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

describe('bench server JSON API and socket', () => {
  let dir: string;
  let srv: TestServer;
  let runId: number;
  let searchId: number;

  before(async () => {
    dir = tempDir();
    const dbPath = join(dir, 'bench.db');
    const r = await recordRun(dbPath);
    assert.equal(r.outcome.exitStatus, 'success', String(r.outcome.reason));
    runId = r.runId;
    // A search run whose output folder holds a front and a significance matrix.
    const out = join(dir, 'search');
    mkdirSync(out);
    writeFileSync(join(out, 'pareto-front.json'), JSON.stringify({ front: [{ edpMsMj: 1e-4, supernetAccuracy: 0.8, choices: ['conv3x3/16'] }, { edpMsMj: 2e-4, supernetAccuracy: 0.85, choices: ['conv5x5/16'] }] }));
    writeFileSync(
      join(out, 'task-significance.json'),
      JSON.stringify({ kind: 'task', space: 's', meta: {}, layers: [{ options: [{ op: 'identity', kernel: 1, out: 0 }, { op: 'conv', kernel: 3, out: 16 }], values: [0.2, 0.8] }] }),
    );
    const db = openDatabase(dbPath);
    const searches = new SearchRuns(db);
    const row = searches.start({ space: 's', method: 'spos', preset: 'balanced', budget: 'tiny', seed: 1, backend: 'cpu', hardwareProfile: 'nas4cim-macro', hardwareSha256: 'x', outDir: out, config: {} });
    searches.finish(row.id, 'finished', { testAccuracy: 0.81, edpMsMj: 1.5e-4 });
    searchId = row.id;
    db.close();
    srv = await startTestServer(dbPath);
  });

  after(async () => {
    await srv?.close();
  });

  it('GET /api/runs lists runs and refuses bad queries by field', async () => {
    const ok = await getJson(`${srv.url}/api/runs`);
    assert.equal(ok.status, 200);
    const runs = ok.body.runs as Array<{ id: number; status: string; cellsPlanned: number }>;
    assert.equal(runs[0]?.id, runId);
    assert.equal(runs[0]?.status, 'completed');
    for (const [q, field] of [
      ['limit=abc', 'query.limit'],
      ['limit=0', 'query.limit'],
      ['limit=100000', 'query.limit'],
      ['colour=red', 'query'],
    ] as const) {
      const bad = await getJson(`${srv.url}/api/runs?${q}`);
      assert.equal(bad.status, 400, q);
      assert.equal(bad.body.code, 'INVALID_INPUT');
      assert.equal(bad.body.field, field, q);
      assert.match(String(bad.body.message), /query/);
    }
  });

  it('GET /api/runs/:id returns the summary, cells per array, histograms per level and drift series', async () => {
    const r = await getJson(`${srv.url}/api/runs/${runId}`);
    assert.equal(r.status, 200);
    const d = r.body as unknown as import('../../src/server/index.js').RunDetail;
    assert.equal(d.summary.run.id, runId);
    assert.equal(d.arrays.reduce((a, x) => a + x.cells, 0), d.summary.run.cellsPlanned);
    assert.ok(d.histograms.levels.length >= 2, 'expected several target levels');
    assert.equal(d.histograms.edgesUs.length, 41);
    assert.equal(d.histograms.levels.reduce((a, l) => a + l.cells, 0), d.summary.cells.total - d.summary.cells.interrupted);
    assert.equal(d.drift.accuracy.length, 2);
    assert.ok(d.drift.accuracy.every((p) => p.simulatedMean !== null && p.measured !== null));
    assert.ok(d.drift.conductance.every((p) => p.simulatedStdUs !== null && p.measuredStdUs !== null));
    assert.ok(d.summary.discrepancies.length > 0);
    assert.equal((await getJson(`${srv.url}/api/runs/abc`)).body.field, 'path.id');
    const missing = await getJson(`${srv.url}/api/runs/9999`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, 'NOT_FOUND');
    assert.equal((await getJson(`${srv.url}/api/runs/${runId}?x=1`)).status, 400);
  });

  it('GET /api/runs/:id/cells bins one array into a heatmap; bad arrays and bins are refused', async () => {
    const r = await getJson(`${srv.url}/api/runs/${runId}/cells?array=0&bins=32`);
    assert.equal(r.status, 200);
    const h = r.body as unknown as import('../../src/server/index.js').Heatmap;
    assert.equal(h.binRows, 4);
    assert.ok(h.r.length > 0 && h.r.length <= 32 * 32);
    assert.equal(h.cells.reduce((a, n) => a + n, 0) > 0, true);
    assert.ok(h.pulses.every((p) => p >= 0) && h.absErrorUs.every((e) => e >= 0));
    for (const q of ['', 'array=-1', 'array=x', 'array=0&bins=1', 'array=0&bins=999']) {
      const bad = await getJson(`${srv.url}/api/runs/${runId}/cells?${q}`);
      assert.equal(bad.status, 400, q);
      assert.match(String(bad.body.field), /^query\./, q);
    }
    const empty = await getJson(`${srv.url}/api/runs/${runId}/cells?array=7`);
    assert.equal(empty.status, 200);
    assert.equal((empty.body.r as unknown[]).length, 0);
    assert.equal((await getJson(`${srv.url}/api/runs/424242/cells?array=0`)).status, 404);
  });

  it('GET /api/runs/:id/discrepancies filters by metric, layer and point', async () => {
    const r = await getJson(`${srv.url}/api/runs/${runId}/discrepancies?metric=accuracy`);
    const rows = r.body.rows as Array<{ metric: string; layer: number; point: number }>;
    assert.ok(rows.length === 2 && rows.every((x) => x.metric === 'accuracy' && x.layer === -1));
    const one = await getJson(`${srv.url}/api/runs/${runId}/discrepancies?layer=0&point=1`);
    assert.ok((one.body.rows as typeof rows).every((x) => x.layer === 0 && x.point === 1));
    assert.ok((one.body.rows as typeof rows).length > 0);
    const bad = await getJson(`${srv.url}/api/runs/${runId}/discrepancies?metric=colour`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.field, 'query.metric');
  });

  it('GET /api/searches and /api/searches/:id read the front and significance matrices from the output folder', async () => {
    const list = await getJson(`${srv.url}/api/searches`);
    assert.deepEqual((list.body.searches as Array<{ id: number; testAccuracy: number }>).map((s) => [s.id, s.testAccuracy]), [[searchId, 0.81]]);
    const d = await getJson(`${srv.url}/api/searches/${searchId}`);
    assert.equal((d.body.front as unknown[]).length, 2);
    assert.deepEqual(Object.keys(d.body.significance as object), ['task']);
    assert.equal((await getJson(`${srv.url}/api/searches/77`)).status, 404);
    assert.equal((await getJson(`${srv.url}/api/searches/0`)).status, 400);
  });

  it('GET /api/calibration/profiles lists the noise and hardware profiles with provenance', async () => {
    const r = await getJson(`${srv.url}/api/calibration/profiles`);
    const profiles = r.body.profiles as Array<{ kind: string; name: string; provenance: unknown; parameters: Record<string, unknown> }>;
    const wan = profiles.find((p) => p.name === 'rram-wan2022');
    assert.ok(wan && wan.kind === 'noise' && wan.provenance && wan.parameters.drift);
    assert.ok(profiles.some((p) => p.kind === 'hardware' && p.name === 'nas4cim-macro'));
    assert.equal((await getJson(`${srv.url}/api/calibration/profiles?all=1`)).status, 400);
  });

  it('unknown API routes, forged Host headers and oversized or malformed bodies get JSON errors', async () => {
    const nf = await getJson(`${srv.url}/api/nothing`);
    assert.equal(nf.status, 404);
    assert.equal(nf.body.code, 'NOT_FOUND');
    assert.equal(await getWithHost(`${srv.url}/api/runs`, 'evil.example:80'), 403);
    assert.equal(await getWithHost(`${srv.url}/api/runs`, `localhost:${new URL(srv.url).port}`), 200);
    const big = await postJson(`${srv.url}/api/campaigns`, { file: 'small.json', pad: 'x'.repeat(40_000) }, srv.token);
    assert.equal(big.status, 413);
    assert.equal(big.body.code, 'PAYLOAD_TOO_LARGE');
    const malformed = await postJson(`${srv.url}/api/campaigns`, '{"file": ', srv.token);
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.code, 'INVALID_INPUT');
  });

  it('control needs the token; bad bodies are named; a campaign starts, pauses, resumes and aborts while events stream over socket.io', async () => {
    const events: LiveEvent[] = [];
    const invalid: unknown[] = [];
    const socket: Socket = connect(srv.url, { transports: ['websocket'], reconnection: false });
    socket.on('live', (e: unknown) => {
      const p = LiveEventSchema.safeParse(e);
      if (p.success) events.push(p.data);
      else invalid.push(e);
    });
    await new Promise<void>((resolve, reject) => (socket.once('connect', () => resolve()), socket.once('connect_error', reject)));
    try {
      const noToken = await postJson(`${srv.url}/api/campaigns`, { file: 'small.json' });
      assert.equal(noToken.status, 401);
      assert.equal(noToken.body.code, 'UNAUTHORIZED');
      const wrong = await postJson(`${srv.url}/api/campaigns`, { file: 'small.json' }, `${srv.token}x`);
      assert.equal(wrong.status, 403);
      for (const [body, field] of [
        [{}, 'body.file'],
        [{ file: '../etc/passwd.json' }, 'body.file'],
        [{ file: 'small.json', mode: 'drift' }, 'body.mode'],
        [{ file: 'small.json', extra: 1 }, 'body'],
      ] as const) {
        const r = await postJson(`${srv.url}/api/campaigns`, body, srv.token);
        assert.equal(r.status, 400, JSON.stringify(body));
        assert.equal(r.body.field, field, JSON.stringify(body));
      }
      assert.equal((await postJson(`${srv.url}/api/campaigns`, { file: 'absent.json' }, srv.token)).status, 404);
      const broken = await postJson(`${srv.url}/api/campaigns`, { file: 'broken.json' }, srv.token);
      assert.equal(broken.status, 400);
      assert.match(String(broken.body.message), /network/);
      assert.equal((await postJson(`${srv.url}/api/campaigns/1/pause`, {})).status, 401);

      const started = await postJson(`${srv.url}/api/campaigns`, { file: 'small.json', mode: 'program' }, srv.token);
      assert.equal(started.status, 201, JSON.stringify(started.body));
      const live = Number(started.body.runId);
      assert.equal((await postJson(`${srv.url}/api/campaigns`, { file: 'small.json' }, srv.token)).body.code, 'CONFLICT');
      assert.equal((await getJson(`${srv.url}/api/campaigns`)).body.active !== null, true);
      assert.equal((await postJson(`${srv.url}/api/campaigns/${runId}/pause`, {}, srv.token)).status, 404);
      const paused = await postJson(`${srv.url}/api/campaigns/${live}/pause`, { reason: 'api test' }, srv.token);
      assert.equal(paused.status, 200, JSON.stringify(paused.body));
      await waitFor(events, (e) => e.kind === 'state' && e.to === 'paused' && e.runId === live, 20_000, 'paused');
      assert.equal((await postJson(`${srv.url}/api/campaigns/${live}/pause`, {}, srv.token)).status, 409);
      assert.equal((await postJson(`${srv.url}/api/campaigns/${live}/resume`, {}, srv.token)).status, 200);
      await waitFor(events, (e) => e.kind === 'array-progress' && e.runId === live && e.done > 0, 20_000, 'programming progress');
      const aborted = await postJson(`${srv.url}/api/campaigns/${live}/abort`, { reason: 'api test stop' }, srv.token);
      assert.equal(aborted.status, 200);
      const stop = await waitFor(events, (e) => e.kind === 'run-stop' && e.runId === live, 20_000, 'run-stop');
      assert.equal(stop.kind === 'run-stop' && stop.exitStatus, 'abort');
      await srv.server.controller.settled();
      const detail = await getJson(`${srv.url}/api/runs/${live}`);
      assert.equal((detail.body.summary as { run: { exitStatus: string; reason: string } }).run.exitStatus, 'abort');
      assert.ok(events.some((e) => e.kind === 'step' && e.key === 'connect'));
      assert.deepEqual(invalid, []);
      // Bad client events are answered with an error event, the socket stays up.
      socket.emit('replay', { since: 'yesterday' });
      socket.emit('launch', {});
      await waitFor(events, (e) => e.kind === 'error' && /since/.test(e.message), 5000, 'replay error');
      await waitFor(events, (e) => e.kind === 'error' && /unknown event launch/.test(e.message), 5000, 'unknown event error');
      const replay = await new Promise<unknown[]>((resolve) => (socket.once('replay', resolve), socket.emit('replay', { since: 0 })));
      assert.ok(replay.length > 0 && replay.every((e) => LiveEventSchema.safeParse(e).success));
    } finally {
      socket.close();
    }
  });

  it('socket.io refuses a browser Origin other than the page', async () => {
    const socket = connect(srv.url, { transports: ['polling'], reconnection: false, extraHeaders: { origin: 'http://evil.example' } });
    const err = await new Promise<Error | null>((resolve) => (socket.once('connect', () => resolve(null)), socket.once('connect_error', resolve)));
    socket.close();
    assert.ok(err, 'connected from a foreign origin');
    const same = connect(srv.url, { transports: ['polling'], reconnection: false, extraHeaders: { origin: srv.url } });
    const ok = await new Promise<Error | null>((resolve) => (same.once('connect', () => resolve(null)), same.once('connect_error', resolve)));
    same.close();
    assert.equal(ok, null);
  });
});
