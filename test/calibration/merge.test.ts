import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { calibrate, mergeDatasets, type CalibrationDataset } from '../../src/calibration/index.js';
import { Rng } from '../../src/common/rng.js';
import { knownCells, loadNoiseProfile, noiseProfilePath } from '../../src/device/index.js';

/**
 * Calibrating from several sources at once (a calibration plan and campaign runs): each programs
 * its own level set with its own programming bias, so the mean relaxation fit gives every source
 * its own offset. Pooled under one offset, a plan and a run on the same chip bent the fitted curve
 * (slope -0.032 for a true -0.049, t0 not resolved).
 */

const A = -0.05;
const T0 = 1;
const SIGMA = 0.4;
const base = loadNoiseProfile(noiseProfilePath('rram-wan2022'));

/** Cells at `levels` targets, biased by `offsetUs`, read back at `agesS` (plus per-cell age jitter). */
function source(seed: number, levels: number[], offsetUs: number, agesS: number[], chipId: string): CalibrationDataset {
  const rng = new Rng(seed);
  const n = 8192;
  const targetUs = Float32Array.from({ length: n }, (_, i) => levels[i % levels.length] as number);
  const g0 = Float32Array.from(targetUs, (t) => t + offsetUs + SIGMA * rng.normal());
  return {
    source: { runs: [], chipId, firmware: '1.0.0', firmwareName: 'synthetic', dates: ['2026-12-03T00:00:00Z'], description: `synthetic source ${seed}` },
    gMinUs: 2,
    gMaxUs: 40,
    toleranceUs: 1,
    targetUs,
    status: new Uint8Array(n),
    finalUs: g0.slice(),
    pulses: new Uint16Array(n).fill(5),
    readbacks: agesS.map((age) => {
      const ageS = Float32Array.from({ length: n }, () => age * (0.8 + 0.4 * rng.next()));
      return { ageS, averages: 8, valuesUs: Float32Array.from(g0, (g, i) => g + A * Math.log1p((ageS[i] as number) / T0) + 0.02 * rng.normal()) };
    }),
  };
}

describe('calibrating from several sources', () => {
  it('fits one relaxation curve with an offset per source', () => {
    const plan = source(1, [2, 7, 12, 17, 22, 27, 32, 37], 0, [0.01, 1, 3, 10, 100, 3600, 86_400], 'CHIP');
    const run = source(2, [2, 9.6, 17.2, 24.8, 32.4, 40], 0.4, [5, 15, 105, 3605, 86_405], 'CHIP');
    const merged = mergeDatasets([plan, run]);
    assert.deepEqual([merged.part?.[0], merged.part?.[plan.targetUs.length]], [0, 1]);
    const { profile, report } = calibrate(merged, { base, name: 'merged' });
    assert.equal(profile.drift.form, 'log');
    assert.equal(report.relaxation.status, 'fitted');
    if (report.relaxation.status !== 'fitted' || profile.drift.form !== 'log') return;
    assert.ok(Math.abs(profile.drift.meanUsPerLn / A - 1) < 0.05, `slope ${profile.drift.meanUsPerLn}`);
    assert.ok(Math.abs(profile.drift.t0S / T0 - 1) < 0.15, `t0 ${profile.drift.t0S}`);
    const offsets = report.relaxation.mean.log.params;
    assert.ok(Math.abs((offsets.offsetUs?.value ?? NaN) - 0) < 0.03, `source 1 offset ${offsets.offsetUs?.value}`);
    assert.ok(Math.abs((offsets['offsetUs.source1']?.value ?? NaN) - 0.4) < 0.03, `source 2 offset ${offsets['offsetUs.source1']?.value}`);
  });

  it('makes a family profile, without any chip\'s ADC trims, from different chips', () => {
    const merged = mergeDatasets([source(3, [2, 20, 40], 0, [1, 10, 100], 'A'), source(4, [2, 20, 40], 0, [1, 10, 100], 'B')]);
    assert.equal(merged.source.chipId, null);
    assert.equal(mergeDatasets([source(5, [2, 40], 0, [1, 10, 100], 'A'), source(6, [2, 40], 0, [1, 10, 100], 'A')]).source.chipId, 'A');
  });

  it('maps where the chip\'s stuck cells are, over every source that programmed them', () => {
    // Two sources on arrays 0 and 1 of a 64 x 128 chip; one stuck cell in each.
    const placed = (seed: number, array: number, stuck: [number, number, number]): CalibrationDataset => {
      const d = source(seed, [2, 20, 40], 0, [1, 10, 100], 'A');
      const n = d.targetUs.length;
      const status = d.status.slice();
      const finalUs = d.finalUs.slice();
      const i = stuck[0] * 128 + stuck[1];
      status[i] = 4;
      finalUs[i] = stuck[2];
      const readbacks = d.readbacks.map((r) => ({ ...r, valuesUs: Float32Array.from(r.valuesUs, (v, k) => (k === i ? stuck[2] : v)) }));
      return {
        ...d,
        status,
        finalUs,
        readbacks,
        places: { rows: 64, cols: 128, array: new Uint16Array(n).fill(array), row: Uint16Array.from({ length: n }, (_, k) => Math.floor(k / 128)), col: Uint16Array.from({ length: n }, (_, k) => k % 128) },
      };
    };
    const { profile, report } = calibrate(mergeDatasets([placed(7, 0, [5, 9, 0.4]), placed(8, 1, [63, 127, 48])]), { base, name: 'map' });
    assert.equal(report.knownCells.status, 'fitted');
    const known = knownCells(profile);
    assert.ok(known && profile.stuck.cells?.chipId === 'A');
    assert.ok(Math.abs((known(0, 5, 9) as number) - 0.4) < 1e-6);
    assert.equal(known(1, 63, 127), 48);
    assert.equal(known(0, 63, 127), null);
    assert.equal(known(1, 5, 9), null);
    assert.equal(known(2, 0, 0), undefined);
    // Without positions there is no map, and the rates still fit.
    const unplaced = calibrate(source(9, [2, 20, 40], 0, [1, 10, 100], 'A'), { base, name: 'rates' });
    assert.equal(unplaced.report.knownCells.status, 'refused');
    assert.equal(unplaced.profile.stuck.cells, undefined);
  });
});
