/**
 * Campaigns on the real emulated macro (fixtures/emulated-macro), in-process: the issue 6 target
 * (simulated accuracy with the default noise profile vs measured on-chip accuracy on the default
 * chip, before calibration), the discrepancy table per layer, time point and array, cell and pulse
 * accounting against the device's own counters, and the refusal to resume an in-process emulator.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { executeRun, type OpenedLink } from '../../src/bench/index.js';
import { MacroClient } from '../../src/link/index.js';
import { BenchRuns, openDatabase } from '../../src/store/index.js';
import { EmulatorDevice, emulatorTransport } from '../../fixtures/emulated-macro/index.js';
import { DEMO_NETWORK, tempDir, testCampaign } from './helpers.js';

const entry = fileURLToPath(new URL('../helpers/cli-entry.ts', import.meta.url));

/** The emulator of `cimbench demo` (chip typical, seed 1), kept here so its counters can be read. */
function inProcessEmulator(options: ConstructorParameters<typeof EmulatorDevice>[0] = {}): { device: EmulatorDevice; openLink: () => OpenedLink } {
  const device = new EmulatorDevice({ chip: 'typical', seed: 1, ...options });
  return {
    device,
    openLink: () => {
      const client = new MacroClient(emulatorTransport(device), { timeoutMs: 5000 });
      return { link: client, description: 'in-process emulated macro (test)', persistent: false, close: () => client.close() };
    },
  };
}

test('default chip, default noise profile: simulated and measured accuracy of the demo network agree within 1.5 points; the discrepancy table covers every layer and array', { timeout: 240_000 }, async () => {
  const dir = tempDir();
  const dbPath = join(dir, 'bench.db');
  const emu = inProcessEmulator();
  try {
    // The demo's settings (all 1,000 test images of the subset, seeds 1-3) at its first time point.
    // Fewer images are not enough: on the first 500 the two differ by 1.7 points (measured), and one
    // simulated seed spreads by ~1.2 points, so the 1.5-point target sits at the noise level.
    const campaign = testCampaign({
      testSet: { dataset: 'fashion-mnist-subset', count: 1000 },
      drift: { initial: 1, points: [], clock: 'emulated' },
      seeds: [1, 2, 3],
      mvm: { vectors: 8 },
    });
    const r = await executeRun({ dbPath, mode: 'full', campaign, openLink: emu.openLink });
    assert.equal(r.outcome.exitStatus, 'success', String(r.outcome.reason));
    const s = r.summary;
    const p = s.points[0];
    assert.ok(p?.simulated && p.measured !== null && p.difference !== null);
    const digital = s.digitalAccuracy as number;
    // What the demo prints, measured here: digital, simulated (mean of 2 seeds) and measured.
    process.stderr.write(`digital ${(100 * digital).toFixed(1)}%, simulated ${(100 * p.simulated.mean).toFixed(1)}% +- ${(100 * p.simulated.std).toFixed(1)}, measured ${(100 * p.measured).toFixed(1)}%\n`);
    assert.ok(Math.abs(p.difference) <= 0.015, `measured ${p.measured} vs simulated ${p.simulated.mean}: ${(100 * p.difference).toFixed(2)} points apart`);
    // Both lose accuracy to the device: neither equals the noise-free quantised network.
    assert.ok(p.measured < digital - 0.02 && p.simulated.mean < digital - 0.02);

    // The discrepancy table: the network row, every layer with weights (conductance error mean and
    // std, stuck fraction), and every array the network uses (MVM probe error and clipping).
    const layers = [0, 1, 3]; // conv, conv, (pool), dense
    const rows = s.discrepancies.filter((d) => d.point === 0);
    assert.ok(rows.some((d) => d.layer === -1 && d.metric === 'accuracy'));
    for (const layer of layers) {
      for (const metric of ['conductance_error_mean_us', 'conductance_error_std_us', 'stuck_fraction']) {
        assert.ok(rows.some((d) => d.layer === layer && d.metric === metric), `layer ${layer} ${metric}`);
      }
    }
    const arrays = s.mvm.map((m) => m.array);
    assert.equal(arrays.length, s.run.arraysUsed);
    for (const a of arrays) {
      const row = s.arrayDiscrepancies.find((d) => d.array === a && d.metric === 'mvm_rel_error_vs_target');
      assert.ok(row, `array ${a} has an MVM discrepancy row`);
      assert.ok(row.simulated > 0 && row.measured > 0 && Math.abs(row.difference - (row.measured - row.simulated)) < 1e-12);
      // The measured side of the row is the probe recorded in mvm_stats.
      assert.equal(row.measured, s.mvm.find((m) => m.array === a)?.relErrorVsTarget);
    }
    // Same for the export's table, with the noise parameters behind every simulated value.
    const db = openDatabase(dbPath, { readonly: true });
    try {
      const stored = db.prepare('SELECT noise_params_json, noise_sha256, firmware_version FROM array_discrepancies WHERE run_id = ?').all(r.runId) as Array<{ noise_params_json: string; noise_sha256: string; firmware_version: string }>;
      assert.equal(stored.length, 2 * arrays.length);
      for (const row of stored) {
        assert.equal(row.noise_sha256, s.run.noiseSha256);
        assert.equal((JSON.parse(row.noise_params_json) as { profile: string }).profile, 'rram-wan2022');
        assert.equal(row.firmware_version, '1.0.0');
      }
    } finally {
      db.close();
    }

    // Every planned cell accounted for once; the chip applied exactly the pulses the host recorded.
    assert.ok(s.cells.accountedExactlyOnce);
    assert.equal(s.cells.programmed + s.cells.failed, s.run.cellsPlanned);
    assert.equal(s.cells.interrupted, 0);
    assert.equal(emu.device.stats().pulses, s.cells.pulsesTotal);
  } finally {
    await emu.device.close();
  }
});

test('--resume of a killed run on the in-process emulator is refused with a clear error before any link opens', { timeout: 60_000 }, async () => {
  const dir = tempDir();
  const dbPath = join(dir, 'bench.db');
  const campaignPath = join(dir, 'campaign.json');
  writeFileSync(
    campaignPath,
    JSON.stringify({ name: 'volatile', network: DEMO_NETWORK, link: { kind: 'emulator' }, testSet: { count: 200 }, drift: { initial: 1, points: ['1 h'] }, seeds: [1, 2, 3] }),
  );
  // The run (with its in-process emulator) lives in a child process, SIGKILLed once the run row exists.
  const child = spawn(process.execPath, ['--import', 'tsx', entry, 'run', campaignPath, '--db', dbPath], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let runId: number | undefined;
  for (let i = 0; i < 400 && runId === undefined; i++) {
    await new Promise((r) => setTimeout(r, 50));
    if (!existsSync(dbPath)) continue;
    try {
      const db = openDatabase(dbPath, { readonly: true });
      try {
        runId = (db.prepare("SELECT id FROM runs WHERE status = 'running'").get() as { id: number } | undefined)?.id;
      } finally {
        db.close();
      }
    } catch {
      // schema not there yet
    }
  }
  child.kill('SIGKILL');
  await exited;
  assert.ok(runId !== undefined, 'the child started a run');
  let opened = 0;
  await assert.rejects(
    executeRun({
      dbPath,
      mode: 'full',
      resume: runId,
      openLink: () => {
        opened++;
        throw new Error('must not open a link');
      },
    }),
    (e: Error & { code?: string; where?: string }) =>
      e.code === 'INVALID_INPUT' && /in-process emulated macro, whose state died with the process/.test(e.message) && e.where === `--resume ${runId}`,
  );
  assert.equal(opened, 0);
  const db = openDatabase(dbPath);
  try {
    assert.equal(new BenchRuns(db).require(runId).status, 'interrupted', 'the killed run is marked interrupted, not left running');
  } finally {
    db.close();
  }
});
