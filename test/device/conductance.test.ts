import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError } from '../../src/common/errors.js';
import { Rng } from '../../src/common/rng.js';
import {
  STUCK_HIGH,
  STUCK_LOW,
  STUCK_NONE,
  applyKnownCells,
  cellLayout,
  conductanceAt,
  conductancesToWeights,
  knownCells,
  loadNoiseProfile,
  noiseForChip,
  noiseProfilePath,
  parseNoiseProfile,
  programCells,
  programmingSigmaUs,
  readCells,
  untruncatedSigma,
  weightsToTargets,
  type NoiseProfile,
} from '../../src/device/index.js';
import { hardwareProfilePath, loadHardwareProfile, type HardwareProfile } from '../../src/hardware/index.js';

const macro = loadHardwareProfile(hardwareProfilePath('nas4cim-macro'));
const wan = loadNoiseProfile(noiseProfilePath('rram-wan2022'));
const ideal = loadNoiseProfile(noiseProfilePath('ideal'));

function meanStd(xs: ArrayLike<number>): [number, number] {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < xs.length; i++) {
    s += xs[i] as number;
    s2 += (xs[i] as number) ** 2;
  }
  const m = s / xs.length;
  return [m, Math.sqrt(s2 / xs.length - m * m)];
}

describe('weight-to-conductance mapping', () => {
  it('maps 4-bit weights onto differential pairs of 8-level cells and back', () => {
    const layout = cellLayout(macro);
    assert.deepEqual([layout.slices, layout.pair, layout.levelsPerCell], [1, 2, 8]);
    const w = Int8Array.from([7, -7, 0, 3, -1, 5]); // 3 rows x 2 channels
    const g = weightsToTargets(w, 3, 2, layout);
    assert.equal(g.length, 2 * 3 * 2);
    // Planes: positive [rows x channels] then negative. w = 7 sits at g_max on the positive plane,
    // w = -7 at g_max on the negative plane; w = -1 one step up on the negative plane.
    assert.deepEqual(Array.from(g.slice(0, 6), (x) => Number(x.toFixed(4))), [40, 2, 2, Number((2 + 3 * 38 / 7).toFixed(4)), 2, Number((2 + 5 * 38 / 7).toFixed(4))]);
    assert.deepEqual(Array.from(g.slice(6, 12), (x) => Number(x.toFixed(4))), [2, 40, 2, 2, Number((2 + 38 / 7).toFixed(4)), 2]);
    const back = conductancesToWeights(g, 3, 2, layout);
    assert.deepEqual(Array.from(back, (x) => Math.round(x * 1e4) / 1e4), [7, -7, 0, 3, -1, 5]);
    assert.throws(() => weightsToTargets(Int8Array.from([8]), 1, 1, layout), /outside -7\.\.7/);
  });

  it('bit-slices wider weights and offset-encodes without pairs', () => {
    const sliced: HardwareProfile = { ...macro, weights: { bits: 8, bitsPerCell: 2, differential: true } };
    const layout = cellLayout(sliced);
    assert.equal(layout.slices, 4);
    const w = Int8Array.from([127, -100, 45]);
    assert.deepEqual(Array.from(conductancesToWeights(weightsToTargets(w, 3, 1, layout), 3, 1, layout), Math.round), [127, -100, 45]);
    const offset: HardwareProfile = { ...macro, weights: { bits: 4, bitsPerCell: 2, differential: false } };
    const ol = cellLayout(offset);
    assert.deepEqual([ol.slices, ol.pair], [2, 1]);
    const w2 = Int8Array.from([-8, 7, 0, -3]);
    assert.deepEqual(Array.from(conductancesToWeights(weightsToTargets(w2, 4, 1, ol), 4, 1, ol), Math.round), [-8, 7, 0, -3]);
  });
});

describe('noise draws', () => {
  const layout = cellLayout(macro);
  const n = 200_000;
  const target = 20; // x = 0.5
  const targets = new Float32Array(n).fill(target);

  it('programming noise follows the profile polynomial and the stuck rates', () => {
    const cells = programCells(targets, layout, wan, new Rng(1));
    const healthy = Array.from(cells.programmedUs).filter((_, i) => cells.stuck[i] === 0);
    const [m, s] = meanStd(healthy);
    const expected = programmingSigmaUs(target, wan); // about 2 uS at x = 0.5
    assert.ok(Math.abs(expected - (0.348 + 16.03 * 0.5 - 43.85 * 0.25 + 45.39 * 0.125 - 16.82 * 0.0625)) < 1e-12);
    assert.ok(Math.abs(m - target) < 0.02, `mean ${m}`);
    assert.ok(Math.abs(s / expected - 1) < 0.02, `sigma ${s} vs ${expected}`);
    const low = cells.stuck.filter((x) => x === STUCK_LOW).length / n;
    const high = cells.stuck.filter((x) => x === STUCK_HIGH).length / n;
    assert.ok(Math.abs(low - 0.001) < 0.0003 && Math.abs(high - 0.001) < 0.0003, `${low} ${high}`);
  });

  it('is the same for the same seed', () => {
    const a = programCells(targets.subarray(0, 1000), layout, wan, new Rng(5));
    const b = programCells(targets.subarray(0, 1000), layout, wan, new Rng(5));
    assert.deepEqual(a, b);
  });

  it('log relaxation shifts the mean and widens the spread with log time', () => {
    const cells = programCells(targets, layout, { ...wan, stuck: { lowRate: 0, highRate: 0 } }, new Rng(2));
    const [m0, s0] = meanStd(conductanceAt(cells, 1, wan));
    const [mDay, sDay] = meanStd(conductanceAt(cells, 86_400, wan));
    const ln = Math.log(86_400);
    assert.ok(Math.abs(mDay - m0 - -0.089 * ln) < 0.03, `mean shift ${mDay - m0}`);
    const extra = 0.412 + 0.042 * ln;
    assert.ok(Math.abs(sDay - Math.sqrt(s0 * s0 + extra * extra)) < 0.05, `spread ${sDay}`);
  });

  it('cells write-verify left alone keep their old state and relax only by the increment from their age', () => {
    const noStuck = { ...wan, stuck: { lowRate: 0, highRate: 0 } };
    // Mid-window, where no cell relaxes down to 0 uS (the floor would bend the mean).
    const bottom = new Float32Array(20_000).fill(20);
    const withTable: NoiseProfile = {
      ...noStuck,
      programming: { ...noStuck.programming, unpulsed: { targetsUs: [20], fraction: [0.3], meanUs: [0.5], sigmaUs: [0.2], ageS: 86_400 } },
    };
    const cells = programCells(bottom, layout, withTable, new Rng(4));
    const settled = cells.settled as Uint8Array;
    const share = settled.reduce((s, v) => s + v, 0) / settled.length;
    assert.ok(Math.abs(share - 0.3) < 0.015, `left alone: ${share}`);
    const g0 = conductanceAt(cells, 1, withTable);
    const gDay = conductanceAt(cells, 86_400, withTable);
    const shift = (flag: number): number => {
      let s = 0;
      let n = 0;
      for (let i = 0; i < settled.length; i++) if (settled[i] === flag) (s += (gDay[i] as number) - (g0[i] as number)), n++;
      return s / n;
    };
    // Fresh cells: -0.089 ln(86400); a day-old state: -0.089 (ln(172800) - ln(86401)), about ln 2.
    assert.ok(Math.abs(shift(0) - -0.089 * Math.log(86_400)) < 0.03, `fresh shift ${shift(0)}`);
    assert.ok(Math.abs(shift(1) - -0.089 * Math.log(2)) < 0.03, `left-alone shift ${shift(1)}`);
    // Other targets are not in the table; without a table nothing is drawn for it (same streams as before).
    const mid = programCells(new Float32Array(2000).fill(30), layout, withTable, new Rng(4));
    assert.equal((mid.settled as Uint8Array).reduce((s, v) => s + v, 0), 0);
    assert.equal(programCells(bottom, layout, noStuck, new Rng(4)).settled, undefined);
  });

  it('power-law drift decays as ((t + t0) / t0)^-nu', () => {
    const pcm = loadNoiseProfile(noiseProfilePath('pcm-like'));
    const flat: NoiseProfile = { ...pcm, drift: { form: 'power-law', t0S: 20, nuMean: 0.05, nuStd: 0 }, stuck: { lowRate: 0, highRate: 0 } };
    const cells = programCells(new Float32Array(10).fill(20), layout, { ...flat, programming: { ...flat.programming, scale: 0 } }, new Rng(3));
    const g = conductanceAt(cells, 1000, flat);
    assert.ok(Math.abs((g[0] as number) - 20 * ((1000 + 20) / 20) ** -0.05) < 1e-4);
  });

  it('read noise is drawn per read; the ideal profile adds none anywhere', () => {
    const cells = programCells(targets.subarray(0, 50_000), layout, ideal, new Rng(4));
    const g = conductanceAt(cells, 86_400, ideal);
    assert.ok(g.every((v) => v === target));
    const [, s] = meanStd(readCells(g, 1, wan, new Rng(6)));
    assert.ok(Math.abs(s - 0.01 * target) < 0.01, `read sigma ${s}`);
    assert.deepEqual(readCells(g, 1, ideal, new Rng(6)), g);
  });

  it('ships presets that parse; rejects a profile without provenance naming the field', () => {
    for (const name of ['rram-wan2022', 'rram-crosssim', 'pcm-like', 'ideal']) loadNoiseProfile(noiseProfilePath(name));
    const names = (pattern: RegExp) => (err: unknown) => err instanceof InputError && pattern.test(err.describe());
    assert.throws(() => parseNoiseProfile({ ...wan, provenance: { ...wan.provenance, drift: '' } }, 'n.json'), names(/^n\.json: provenance\.drift/));
    assert.throws(() => parseNoiseProfile({ ...wan, drift: { form: 'linear' } }, 'n.json'), names(/^n\.json: drift\.form/));
  });

  it('puts a chip\'s known stuck cells where they are and keeps tested healthy cells healthy; untested cells keep their draws', () => {
    // 2 x 8 cells of array 1: row 0 tested, row 1 not; (0, 3) found stuck high at 47 uS.
    const tested = Buffer.alloc(2);
    tested[0] = 0xff;
    const map = { chipId: 'chip-A', rows: 2, cols: 8, arrays: [{ array: 1, tested: tested.toString('base64'), stuck: [[0, 3, 47]] as Array<[number, number, number]> }] };
    const everyCellStuck: NoiseProfile = { ...wan, stuck: { lowRate: 1, highRate: 0, cells: map } };
    const lookup = knownCells(everyCellStuck);
    assert.ok(lookup);
    assert.equal(lookup(1, 0, 3), 47);
    assert.equal(lookup(1, 0, 4), null);
    assert.equal(lookup(1, 1, 4), undefined);
    assert.equal(lookup(0, 0, 4), undefined);
    const targetsUs = new Float32Array(16).fill(20);
    const cells = programCells(targetsUs, layout, everyCellStuck, new Rng(8));
    assert.ok(cells.stuck.every((s) => s === STUCK_LOW));
    applyKnownCells(cells, targetsUs, layout, everyCellStuck, new Rng(9), lookup, (i) => [1, Math.floor(i / 8), i % 8]);
    for (let i = 0; i < 16; i++) {
      if (i === 3) {
        assert.equal(cells.stuck[i], STUCK_HIGH);
        assert.equal(cells.programmedUs[i], 47);
      } else if (i < 8) {
        assert.equal(cells.stuck[i], STUCK_NONE, `cell ${i}`);
        assert.ok(Math.abs((cells.programmedUs[i] as number) - 20) < 5, `cell ${i}: ${cells.programmedUs[i]}`);
      } else {
        assert.equal(cells.stuck[i], STUCK_LOW, `untested cell ${i}`);
      }
    }
    // The map is that chip's: another chip, or an unknown one, gets the rates alone.
    assert.ok(noiseForChip(everyCellStuck, 'chip-A').noise.stuck.cells);
    assert.equal(noiseForChip(everyCellStuck, 'chip-B').noise.stuck.cells, undefined);
    assert.equal(noiseForChip(everyCellStuck, null).noise.stuck.cells, undefined);
    assert.throws(() => parseNoiseProfile({ ...wan, stuck: { lowRate: 0, highRate: 0, cells: { ...map, arrays: [{ array: 1, tested: 'not base64!', stuck: [] }] } } }, 'n.json'), /stuck\.cells\.arrays\[0\]\.tested/);
  });

  it('with write-verify\'s acceptance the programming error is bounded and keeps the profile\'s sigma', () => {
    const targetsUs = new Float32Array(40_000).fill(20);
    for (const sigma of [0.2, 0.45, 0.56]) {
      const bounded: NoiseProfile = { ...wan, stuck: { lowRate: 0, highRate: 0 }, programming: { ...wan.programming, acceptanceUs: 1, levels: { targetsUs: [2, 40], meanUs: [0.1, 0.1], sigmaUs: [sigma, sigma] } } };
      const cells = programCells(targetsUs, layout, bounded, new Rng(12));
      const errors = Float32Array.from(cells.programmedUs, (g) => g - 20.1);
      const [m, s] = meanStd(errors);
      assert.ok(errors.every((e) => Math.abs(e) <= 1 + 1e-5), `sigma ${sigma}: an error beyond the acceptance`);
      assert.ok(Math.abs(m) < 0.01 && Math.abs(s - sigma) < 0.02 * sigma + 0.003, `sigma ${sigma}: mean ${m}, std ${s}`);
    }
    assert.equal(untruncatedSigma(0.1, 1), 0.1);
    assert.ok(untruncatedSigma(0.55, 1) > 1, 'a sigma near the uniform limit needs a much wider normal');
    assert.equal(untruncatedSigma(0.7, 1), 20);
  });
});
