import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildPlan, CampaignEngine, executeRun, stepKey, TRANSITIONS, type CampaignDocument } from '../../src/bench/index.js';
import { BenchRuns, openDatabase } from '../../src/store/index.js';
import { repoPath } from '../helpers/paths.js';
import { tempDir, testCampaign, testDevice } from './helpers.js';

describe('campaign plans', () => {
  it('are plain data: the steps of a full campaign, a resume and a programming-only plan', () => {
    const c = testCampaign({ drift: { initial: 1, points: ['1 min', '1 h', '1 d'] } });
    const full = buildPlan(c, 'full');
    assert.deepEqual(full.points.map((p) => p.nominalS), [1, 60, 3600, 86_400]);
    assert.deepEqual(full.steps.map(stepKey).slice(0, 8), ['connect', 'map', 'predict', 'program', 'settle@0', 'readback@0', 'measure@0', 'settle@1']);
    assert.equal(full.steps.at(-1)?.kind, 'compare');
    assert.deepEqual(buildPlan(c, 'full', { resume: true }).steps.map(stepKey).slice(0, 3), ['connect', 'map', 'recover']);
    const program = buildPlan(c, 'program');
    assert.deepEqual(program.steps.map(stepKey), ['connect', 'map', 'program', 'settle@0', 'readback@0']);
    assert.deepEqual(buildPlan(c, 'drift').points.map((p) => p.index), [1, 2, 3]);
    assert.equal(JSON.stringify(JSON.parse(JSON.stringify(full))), JSON.stringify(full));
  });

  it('allow only the transitions in the table', () => {
    assert.deepEqual(TRANSITIONS.paused, ['running', 'aborting']);
    assert.deepEqual(TRANSITIONS.done, []);
    assert.ok(!TRANSITIONS.aborting.includes('running'));
  });
});

describe('campaign engine against the in-process test device', () => {
  it('runs a whole campaign: every cell accounted for once, both time points measured and compared, run immutable', async () => {
    const dir = tempDir();
    const dev = testDevice({ seed: 3 });
    const docs: CampaignDocument['type'][] = [];
    const r = await executeRun({ dbPath: join(dir, 'bench.db'), mode: 'full', campaign: testCampaign(), openLink: dev.openLink, subscribers: [(d) => void docs.push(d.type)] });
    assert.equal(r.outcome.exitStatus, 'success', String(r.outcome.reason));
    const s = r.summary;
    assert.equal(s.run.status, 'completed');
    assert.equal(s.cells.total, s.run.cellsPlanned);
    assert.equal(s.cells.planned, 0);
    assert.ok(s.cells.accountedExactlyOnce);
    assert.equal(s.cells.programmed + s.cells.failed + s.cells.interrupted, s.run.cellsPlanned);
    assert.ok(s.cells.meanPulses !== null && s.cells.meanPulses > 0);
    assert.equal(s.points.length, 2);
    for (const p of s.points) {
      assert.ok(p.simulated && p.measured !== null && p.actualS !== null, `point ${p.point} incomplete`);
      assert.equal(p.clock, 'emulated');
    }
    assert.ok((s.points[1]?.actualS ?? 0) >= 3600);
    assert.equal(dev.macro.clockAdvancedS >= 3599, true);
    assert.ok(s.discrepancies.some((d) => d.metric === 'accuracy' && d.layer === -1));
    assert.ok(s.discrepancies.some((d) => d.metric === 'conductance_error_std_us' && d.layer >= 0));
    assert.ok(s.mvm.length > 0);
    assert.ok(s.steps.every((st) => st.status === 'ended'));
    assert.equal(new Set(dev.programmed).size, dev.programmed.length, 'a region was programmed twice');
    // Documents: start first, stop last, an intent before every result.
    assert.equal(docs.find((t) => t !== 'state'), 'run-start');
    assert.equal(docs.at(-2), 'run-stop');
    const db = openDatabase(join(dir, 'bench.db'));
    const runs = new BenchRuns(db);
    assert.equal(runs.summary(r.runId).run.firmwareVersion, '0.1.0');
    const blocks = db.prepare('SELECT COUNT(*) AS n FROM program_blocks WHERE run_id = ? AND state = ?').get(r.runId, 'done') as { n: number };
    assert.equal(blocks.n, s.blocks.done);
    const reads = db.prepare('SELECT COUNT(*) AS n FROM readbacks WHERE run_id = ?').get(r.runId) as { n: number };
    assert.equal(reads.n, 2 * s.run.cellsPlanned);
    const disc = db.prepare("SELECT * FROM discrepancies WHERE run_id = ? AND metric = 'accuracy' AND point = 1").get(r.runId) as Record<string, unknown>;
    assert.equal(disc.weight_image_sha256, s.run.weightImageSha256);
    assert.equal(disc.firmware_version, '0.1.0');
    assert.ok(JSON.parse(String(disc.noise_params_json)).drift);
    // Completed runs are immutable.
    assert.throws(() => db.prepare("UPDATE runs SET reason = 'x' WHERE id = ?").run(r.runId), /immutable/);
    assert.throws(() => db.prepare('UPDATE cells SET final_us = 0 WHERE run_id = ?').run(r.runId), /immutable/);
    assert.throws(() => db.prepare('DELETE FROM readbacks WHERE run_id = ?').run(r.runId), /immutable/);
    assert.throws(() => db.prepare("INSERT INTO run_events (run_id, at, level, message) VALUES (?, 't', 'info', 'late')").run(r.runId), /immutable/);
    db.close();
  });

  it('pauses at a checkpoint (no PROGRAM sent while paused) and resumes to success', async () => {
    const dir = tempDir();
    const dev = testDevice({ seed: 4 });
    let engine: CampaignEngine | undefined;
    const seen: string[] = [];
    let results = 0;
    let pausedAt = -1;
    const r = await executeRun({
      dbPath: join(dir, 'bench.db'),
      mode: 'program',
      campaign: testCampaign({ programming: { blockCells: 512 } }),
      openLink: dev.openLink,
      onEngine: (e) => (engine = e),
      subscribers: [
        (d) => {
          seen.push(d.type === 'state' ? `state:${d.to}` : d.type);
          if (d.type === 'program-result' && ++results === 2) engine?.pause('test pause');
          if (d.type === 'state' && d.to === 'paused') {
            pausedAt = seen.length;
            const db = openDatabase(join(dir, 'bench.db'), { readonly: true });
            const row = db.prepare('SELECT status FROM runs').get() as { status: string };
            db.close();
            assert.equal(row.status, 'paused');
            const calls = dev.programmed.length;
            setTimeout(() => {
              assert.equal(dev.programmed.length, calls, 'PROGRAM sent while paused');
              engine?.resume();
            }, 150);
          }
        },
      ],
    });
    assert.equal(r.outcome.exitStatus, 'success');
    assert.ok(pausedAt > 0, 'never paused');
    assert.ok(seen.slice(pausedAt).includes('state:running'));
    assert.ok(r.summary.cells.accountedExactlyOnce);
    assert.equal(r.summary.cells.planned, 0);
    assert.equal(new Set(dev.programmed).size, dev.programmed.length);
  });

  it('aborts mid-programming: exit status abort with the reason, unsent cells interrupted, nothing lost', async () => {
    const dir = tempDir();
    const dev = testDevice({ seed: 5 });
    let engine: CampaignEngine | undefined;
    let results = 0;
    const r = await executeRun({
      dbPath: join(dir, 'bench.db'),
      mode: 'full',
      campaign: testCampaign({ programming: { blockCells: 512 } }),
      openLink: dev.openLink,
      onEngine: (e) => (engine = e),
      subscribers: [(d) => d.type === 'program-result' && ++results === 3 && engine?.abort('operator stop')],
    });
    assert.equal(r.outcome.exitStatus, 'abort');
    assert.equal(r.outcome.reason, 'operator stop');
    const s = r.summary;
    assert.equal(s.run.status, 'completed');
    assert.equal(s.run.exitStatus, 'abort');
    assert.ok(s.cells.accountedExactlyOnce);
    assert.ok(s.cells.interrupted > 0);
    assert.equal(s.cells.programmed + s.cells.failed + s.cells.interrupted, s.run.cellsPlanned);
    assert.ok((s.blocks.skipped ?? 0) > 0);
    assert.ok(s.steps.some((st) => st.key === 'program' && st.status === 'aborted'));
    assert.ok(!s.steps.some((st) => st.key.startsWith('measure')));
  });
});

describe('program, then measure and drift as separate runs on the same chip', () => {
  it('measure and drift count time from the programming run and journal no cells of their own', async () => {
    const dir = tempDir();
    const dev = testDevice({ seed: 8 });
    const dbPath = join(dir, 'bench.db');
    const campaign = testCampaign({ drift: { initial: 1, points: ['1 min', '1 h'], clock: 'emulated' } });
    const prog = await executeRun({ dbPath, mode: 'program', campaign, openLink: dev.openLink });
    assert.equal(prog.outcome.exitStatus, 'success');
    assert.equal(prog.summary.cells.programmed + prog.summary.cells.failed, prog.summary.run.cellsPlanned);
    const pulses = dev.macro.pulsesApplied;
    const common = { dbPath, campaign, openLink: dev.openLink, after: prog.runId, allowVolatileLink: true } as const;
    const meas = await executeRun({ ...common, mode: 'measure' });
    assert.equal(meas.outcome.exitStatus, 'success', String(meas.outcome.reason));
    assert.equal(meas.summary.run.parentRunId, prog.runId);
    assert.equal(meas.summary.cells.total, 0);
    assert.ok(meas.summary.points[0]?.measured !== null && meas.summary.points[0]?.simulated !== null);
    assert.ok(!meas.summary.discrepancies.some((d) => d.metric === 'stuck_fraction'));
    const drift = await executeRun({ ...common, mode: 'drift' });
    assert.equal(drift.outcome.exitStatus, 'success', String(drift.outcome.reason));
    assert.deepEqual(drift.summary.points.map((p) => p.point), [1, 2]);
    assert.ok((drift.summary.points[1]?.actualS ?? 0) >= 3600);
    assert.equal(dev.macro.pulsesApplied, pulses, 'measure or drift applied pulses');
    await assert.rejects(executeRun({ ...common, mode: 'measure', allowVolatileLink: false }), /in-process emulator/);
  });
});

describe('bad campaigns: one clear error before any pulse', () => {
  it('wrong types, unknown network, missing profile, network larger than the profile or the chip', async () => {
    assert.throws(() => testCampaign({ testSet: { count: 'ten' as unknown as number } }), (e: Error) => /testSet\.count/.test(e.message));
    assert.throws(() => testCampaign({ drift: { points: ['soon'] } }), /drift\.points\[0\]/);
    assert.throws(() => testCampaign({ link: { kind: 'usb' } as never }), /link/);
    const dir = tempDir();
    const dev = testDevice({ seed: 6 });
    const run = (campaign: ReturnType<typeof testCampaign>) => executeRun({ dbPath: join(dir, 'bench.db'), mode: 'full', campaign, openLink: dev.openLink });
    await assert.rejects(run(testCampaign({ network: join(dir, 'nope') })), (e: Error & { code?: string }) => e.code === 'NOT_FOUND' && /network directory/.test(e.message));
    await assert.rejects(run(testCampaign({ noise: 'no-such-noise' })), (e: Error & { code?: string; where?: string }) => e.code === 'NOT_FOUND' && /noise profile/.test(e.message));
    const hw = JSON.parse(readFileSync(repoPath('calibration/hardware/nas4cim-macro.json'), 'utf8'));
    hw.array.arraysPerTile = 2;
    writeFileSync(join(dir, 'small.json'), JSON.stringify(hw));
    await assert.rejects(run(testCampaign({ hardware: join(dir, 'small.json') })), (e: Error & { code?: string }) => e.code === 'DOES_NOT_FIT' && /needs 3 arrays/.test(e.message));
    const db = openDatabase(join(dir, 'bench.db'));
    assert.equal(new BenchRuns(db).list().length, 0, 'a rejected campaign created a run');
    db.close();
    // The device has fewer arrays than the network needs: found at connect, before any pulse.
    const small = testDevice({ seed: 7, identity: { ...dev.macro.identity, arrays: 2 } });
    const r = await executeRun({ dbPath: join(dir, 'bench.db'), mode: 'full', campaign: testCampaign(), openLink: small.openLink });
    assert.equal(r.outcome.exitStatus, 'fail');
    assert.equal((r.outcome.error as { code?: string }).code, 'DOES_NOT_FIT');
    assert.equal(small.macro.pulsesApplied, 0);
    assert.equal(small.programmed.length, 0);
    assert.equal(r.summary.cells.programmed, 0);
    assert.ok(r.summary.cells.accountedExactlyOnce);
  });
});
