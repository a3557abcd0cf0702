import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { Rng } from '../../src/common/rng.js';
import { BenchRuns, openDatabase } from '../../src/store/index.js';
import { FaultyDevice } from '../link/helpers/test-macro.js';
import { DEMO_NETWORK, tempDir, testDevice } from './helpers.js';

const entry = fileURLToPath(new URL('../helpers/cli-entry.ts', import.meta.url));

interface Child {
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  stderr: string;
}

function startCli(args: string[]): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const child: Child = { proc, exited: new Promise((resolve) => proc.once('exit', (code) => resolve(code))), stderr: '' };
  proc.stderr?.on('data', (d: Buffer) => (child.stderr += d.toString()));
  proc.stdout?.resume();
  return child;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('SIGKILL at random points of a campaign (mid-programming too): store intact, nothing left running, --resume completes, every cell exactly once', { timeout: 300_000 }, async () => {
  // The chip lives in this process (as a real chip outlives the host program); the campaign runs in
  // a child process that is killed and resumed.
  const dev = testDevice({ seed: 11 });
  const faulty = new FaultyDevice(dev.endpoint, 3);
  faulty.faults.delayMs = 12; // slow replies: programming takes seconds, so kills land inside it
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    const conn = faulty.connect(
      (b) => {
        if (!socket.destroyed) socket.write(b);
      },
      () => socket.destroy(),
    );
    socket.on('data', (d: Buffer) => conn.fromHost(new Uint8Array(d.buffer, d.byteOffset, d.byteLength)));
    socket.on('close', () => conn.detach());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const dir = tempDir('cimbench-crash-');
  const dbPath = join(dir, 'bench.db');
  const campaignPath = join(dir, 'campaign.json');
  writeFileSync(
    campaignPath,
    JSON.stringify({
      name: 'crash',
      network: DEMO_NETWORK,
      link: { kind: 'tcp', url: `tcp://127.0.0.1:${port}` },
      testSet: { count: 40 },
      programming: { blockCells: 256 },
      drift: { initial: 1, points: ['1 h'], clock: 'emulated' },
      seeds: [1],
      mvm: { vectors: 2 },
    }),
  );

  const rng = new Rng(2024);
  const state = (): { runId: number | null; done: number; started: Set<string>; ended: Set<string> } => {
    const empty = { runId: null, done: 0, started: new Set<string>(), ended: new Set<string>() };
    let db: ReturnType<typeof openDatabase>;
    try {
      db = openDatabase(dbPath, { readonly: true });
    } catch {
      return empty; // not created yet
    }
    try {
      const run = db.prepare('SELECT id FROM runs ORDER BY id DESC LIMIT 1').get() as { id: number } | undefined;
      if (!run) return { runId: null, done: 0, started: new Set(), ended: new Set() };
      const done = (db.prepare("SELECT COUNT(*) AS n FROM program_blocks WHERE run_id = ? AND state = 'done'").get(run.id) as { n: number }).n;
      const steps = db.prepare('SELECT step_key, status FROM run_steps WHERE run_id = ?').all(run.id) as Array<{ step_key: string; status: string }>;
      return { runId: run.id, done, started: new Set(steps.map((s) => s.step_key)), ended: new Set(steps.filter((s) => s.status === 'ended').map((s) => s.step_key)) };
    } catch {
      return empty; // schema not there yet
    } finally {
      db.close();
    }
  };
  let firstDone = 0;
  // Kill points, each a condition on the journal plus a random delay; the first two are mid-programming.
  const points: Array<{ name: string; when: (s: ReturnType<typeof state>) => boolean }> = [
    { name: 'mid-programming (early)', when: (s) => (firstDone = s.done) >= 1 + rng.int(8) },
    { name: 'mid-programming (later)', when: (s) => s.done >= firstDone + 5 + rng.int(15) },
    { name: 'read-back after programming', when: (s) => s.started.has('readback@0') },
    { name: 'on-chip measurement', when: (s) => s.started.has('measure@0') },
    { name: 'drift point', when: (s) => s.started.has('settle@1') || s.started.has('readback@1') },
  ];

  let runId: number | null = null;
  let kills = 0;
  const killedAt: string[] = [];
  for (const point of points) {
    const child = startCli(runId === null ? ['run', campaignPath, '--db', dbPath] : ['run', '--resume', String(runId), '--db', dbPath]);
    let exited = false;
    void child.exited.then(() => (exited = true));
    for (;;) {
      if (exited) break;
      const s = state();
      runId ??= s.runId;
      if (s.runId !== null && point.when(s)) {
        await sleep(rng.int(25));
        child.proc.kill('SIGKILL');
        kills++;
        killedAt.push(point.name);
        break;
      }
      await sleep(10);
    }
    const code = await child.exited;
    assert.ok(code === null || code !== 0 || exited, `child ended unexpectedly: ${child.stderr}`);
    assert.ok(runId !== null, `no run was created: ${child.stderr}`);
    const db = openDatabase(dbPath);
    try {
      assert.deepEqual(db.pragma('integrity_check'), [{ integrity_check: 'ok' }]);
      const runs = new BenchRuns(db);
      runs.recoverInterrupted();
      const running = db.prepare("SELECT COUNT(*) AS n FROM runs WHERE status IN ('running', 'paused')").get() as { n: number };
      assert.equal(running.n, 0, 'a run stayed running after the kill');
      const s = runs.summary(runId);
      assert.equal(s.run.status, 'interrupted', `after the kill at ${point.name}: ${s.run.status} (${child.stderr})`);
      assert.ok(s.cells.accountedExactlyOnce, `accounting after the kill at ${point.name}`);
      if (point.name.startsWith('mid-programming')) {
        const total = Object.values(s.blocks).reduce((a, b) => a + b, 0);
        assert.ok(!s.steps.some((st) => st.key === 'program' && st.status === 'ended'), 'the kill landed after programming');
        assert.ok((s.blocks.planned ?? 0) > 0 && (s.blocks.planned ?? 0) < total, `not mid-programming: ${JSON.stringify(s.blocks)}`);
      }
    } finally {
      db.close();
    }
  }
  assert.ok(kills >= 5, `only ${kills} kills landed (${killedAt.join(', ')})`);

  const last = startCli(['run', '--resume', String(runId), '--db', dbPath]);
  const code = await last.exited;
  assert.equal(code, 0, last.stderr);
  server.close();
  const db = openDatabase(dbPath);
  const runs = new BenchRuns(db);
  const s = runs.summary(runId as number);
  assert.equal(s.run.status, 'completed');
  assert.equal(s.run.exitStatus, 'success');
  assert.ok(s.run.sessions >= 6);
  assert.ok(s.cells.accountedExactlyOnce);
  assert.equal(s.cells.planned, 0);
  assert.equal(s.cells.total, s.run.cellsPlanned);
  const distinct = db.prepare('SELECT COUNT(*) AS n FROM (SELECT DISTINCT array_no, row_no, col_no FROM cells WHERE run_id = ?)').get(runId) as { n: number };
  assert.equal(distinct.n, s.run.cellsPlanned);
  const reads = db.prepare('SELECT point, COUNT(*) AS n FROM readbacks WHERE run_id = ? GROUP BY point').all(runId) as Array<{ point: number; n: number }>;
  assert.deepEqual(reads, [
    { point: 0, n: s.run.cellsPlanned },
    { point: 1, n: s.run.cellsPlanned },
  ]);
  assert.ok(s.points.every((p) => p.measured !== null && p.simulated !== null));
  // Programming was never replayed: the device saw each block's PROGRAM at most once.
  assert.equal(new Set(dev.programmed).size, dev.programmed.length, 'a block was programmed twice');
  db.close();
});
