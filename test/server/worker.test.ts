/**
 * Campaigns started from the bench server run in a worker thread (as `cimbench serve` runs them):
 * the simulator's prediction is seconds of synchronous Monte Carlo, and in the server's own thread
 * it stalled every HTTP answer and live event until it finished. Errors raised in the worker reach
 * the client with the status an inline run gives.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { io as connect, type Socket } from 'socket.io-client';
import { LiveEventSchema, type LiveEvent } from '../../src/server/index.js';
import { getJson, postJson, smallCampaign, startTestServer, tempDir, type TestServer } from './helpers.js';

describe('campaigns in a worker thread', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer(join(tempDir(), 'bench.db'));
    // Prediction of 300 images x 3 seeds x 2 time points: seconds of simulator work.
    writeFileSync(join(srv.campaignsDir, 'predict.json'), JSON.stringify(smallCampaign({ name: 'worker-predict', testSet: { dataset: 'fashion-mnist-subset', count: 300 }, seeds: [1, 2, 3] })));
    writeFileSync(join(srv.campaignsDir, 'nonet.json'), JSON.stringify(smallCampaign({ network: '/nonexistent/network' })));
  });
  after(async () => {
    await srv?.close();
  });

  it('an input error raised in the worker before the run starts is a 404 / 400 as inline, and no campaign stays active', async () => {
    const r = await postJson(`${srv.url}/api/campaigns`, { file: 'nonet.json' }, srv.token);
    assert.equal(r.status, 404, JSON.stringify(r.body));
    assert.match(String(r.body.message), /network directory does not exist/);
    assert.equal((await getJson(`${srv.url}/api/campaigns`)).body.active, null);
  });

  it('while the simulator predicts, the API answers at once and predict progress arrives as it happens', { timeout: 120_000 }, async () => {
    const events: Array<{ e: LiveEvent; t: number }> = [];
    const socket: Socket = connect(srv.url, { transports: ['websocket'], reconnection: false });
    socket.on('live', (raw: unknown) => {
      const p = LiveEventSchema.safeParse(raw);
      if (p.success) events.push({ e: p.data, t: performance.now() });
    });
    await new Promise<void>((resolve, reject) => (socket.once('connect', () => resolve()), socket.once('connect_error', reject)));
    try {
      const started = await postJson(`${srv.url}/api/campaigns`, { file: 'predict.json' }, srv.token);
      assert.equal(started.status, 201, JSON.stringify(started.body));
      const runId = Number(started.body.runId);
      const predicting = (): boolean => events.some((x) => x.e.kind === 'step' && x.e.key === 'predict' && x.e.phase === 'start') && !events.some((x) => x.e.kind === 'step' && x.e.key === 'predict' && x.e.phase === 'end');
      const answers: number[] = [];
      const deadline = performance.now() + 60_000;
      while (!events.some((x) => x.e.kind === 'step' && x.e.key === 'predict' && x.e.phase === 'end') && performance.now() < deadline) {
        if (predicting()) {
          const t = performance.now();
          const r = await getJson(`${srv.url}/api/campaigns`);
          answers.push(performance.now() - t);
          assert.equal((r.body.active as { runId: number } | null)?.runId, runId);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      const predict = events.filter((x) => x.e.kind === 'progress' && x.e.key === 'predict');
      const start = events.find((x) => x.e.kind === 'step' && x.e.key === 'predict' && x.e.phase === 'start');
      const end = events.find((x) => x.e.kind === 'step' && x.e.key === 'predict' && x.e.phase === 'end');
      assert.ok(start && end, 'the predict step started and ended');
      const seconds = (end.t - start.t) / 1000;
      assert.ok(seconds > 0.5, `the prediction took ${seconds.toFixed(2)} s: too short to tell`);
      assert.ok(answers.length >= 3, `only ${answers.length} API calls during the prediction`);
      assert.ok(Math.max(...answers) < 500, `API answers during the prediction took up to ${Math.max(...answers).toFixed(0)} ms`);
      // Progress arrives while the prediction runs, not in one burst at its end.
      const during = predict.filter((x) => x.t < end.t - 200);
      assert.ok(during.length >= 2, `${during.length} of ${predict.length} predict progress events arrived before the last 200 ms of a ${seconds.toFixed(1)} s prediction`);
      await srv.server.controller.settled();
      const stop = events.find((x) => x.e.kind === 'run-stop' && x.e.runId === runId);
      assert.equal(stop?.e.kind === 'run-stop' && stop.e.exitStatus, 'success');
      assert.equal(srv.server.controller.current(), null);
    } finally {
      socket.close();
    }
  });
});
