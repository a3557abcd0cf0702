import { EmulatorDevice, emulatorTransport } from '../fixtures/emulated-macro/index.js';
import { calibrate, runCalibrationPlan } from '../src/calibration/index.js';
import { loadNoiseProfile, noiseProfilePath } from '../src/device/index.js';
import { MacroClient } from '../src/link/index.js';
import { report } from './report.js';

/**
 * calibrate.seconds: the fits (read noise, stuck, relaxation in both forms, spread and programming
 * noise, MVM) over a 131,072-cell dataset (8 arrays of 128x128) with 5 read-back time points,
 * produced by the calibration plan on the in-process emulated macro. Only the fit is timed.
 */
const device = new EmulatorDevice({ chip: 'typical', seed: 7 });
const link = new MacroClient(emulatorTransport(device), { timeoutMs: 60_000 });
await link.connect();
const t0 = performance.now();
const data = await runCalibrationPlan(link, { arrays: 8, agesS: [10, 100, 3600, 86_400], repeats: 16, repeatCells: 4096, mvmVectors: 24, blockRows: 8, seed: 7 });
const planS = (performance.now() - t0) / 1000;
await link.close();
await device.close();
const base = loadNoiseProfile(noiseProfilePath('rram-wan2022'));
const t1 = performance.now();
const result = calibrate(data, { base, name: 'bench' });
const seconds = (performance.now() - t1) / 1000;
report('calibrate.seconds', seconds, 's', { cells: data.targetUs.length, timePoints: data.readbacks.length, target: 30, driftForm: result.profile.drift.form });
report('calibrate.plan_seconds', planS, 's', { cells: data.targetUs.length });
