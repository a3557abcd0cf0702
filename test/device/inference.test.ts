/**
 * simulateOnChip on the committed demo network and the FashionMNIST subset: noise-free equals the
 * quantised network, seeds reproduce, noise costs accuracy, drift moves conductances as the profile
 * says, drift compensation recovers a common conductance loss, and the probe prediction.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { Rng } from '../../src/common/rng.js';
import { loadJsonFile } from '../../src/common/validate.js';
import { cellLayout, loadNoiseProfile, noiseProfilePath, parseNoiseProfile, probeInputs, simulateOnChip, simulateProbes, weightsToTargets, type NoiseProfile } from '../../src/device/index.js';
import { hardwareProfilePath, loadHardwareProfile, parseHardwareProfile, type HardwareProfile } from '../../src/hardware/index.js';
import { initBackend, loadFashionMnistSubset, loadWeightImage, takeDataset, type ImageDataset, type WeightImage } from '../../src/nn/index.js';
import { analyzeNetwork, NetworkSpecSchema, type NetworkAnalysis } from '../../src/spec/index.js';
import { compileNetwork } from '../../src/bench/compile.js';
import { placementsOf } from '../../src/bench/engine.js';
import { repoPath } from '../helpers/paths.js';

const DEMO = repoPath('fixtures/networks/demo');
let net: NetworkAnalysis;
let image: WeightImage;
let hw: HardwareProfile;
let data: ImageDataset;
let ideal: NoiseProfile;
let wan: NoiseProfile;

const withNoise = (base: NoiseProfile, patch: Partial<Record<keyof NoiseProfile, unknown>>): NoiseProfile => parseNoiseProfile({ ...structuredClone(base), ...patch }, 'test noise profile');

before(async () => {
  await initBackend();
  net = analyzeNetwork(loadJsonFile(NetworkSpecSchema, `${DEMO}/spec.json`), 'demo spec');
  image = loadWeightImage(DEMO);
  hw = loadHardwareProfile(hardwareProfilePath('nas4cim-macro'));
  data = takeDataset(loadFashionMnistSubset().test, 100);
  ideal = loadNoiseProfile(noiseProfilePath('ideal'));
  wan = loadNoiseProfile(noiseProfilePath('rram-wan2022'));
});

describe('simulateOnChip', () => {
  it('without device noise and with a fine ADC it is the quantised network; the 8-bit ADC alone only rounds', () => {
    // 16-bit ADC: rounding of each bit plane's code is far below one weight step.
    const fine = parseHardwareProfile({ ...structuredClone(hw), adc: { ...hw.adc, bits: 16 } }, 'fine adc');
    const r = simulateOnChip(net, image, fine, ideal, data, { seeds: [1], timesS: [1, 86_400], batchSize: 100 });
    assert.equal(r.images, 100);
    for (const t of r.times) {
      assert.equal(t.accuracy.mean, r.digitalAccuracy);
      assert.equal(t.accuracy.std, 0);
      for (const m of t.matrices) {
        assert.equal(m.conductanceErrorUs.std, 0);
        assert.equal(m.stuckFraction, 0);
        assert.ok(m.relativeOutputError < 1e-3, `${m.name}: ${m.relativeOutputError}`);
      }
    }
    const coarse = simulateOnChip(net, image, hw, ideal, data, { seeds: [1], timesS: [1], batchSize: 100 });
    const first = coarse.times[0]?.matrices[0];
    assert.ok(first && first.relativeOutputError > 1e-3 && first.relativeOutputError < 0.15, `8-bit ADC rounding error of ${first?.name}: ${first?.relativeOutputError}`);
  });

  it('same seeds, same numbers; other seeds, other draws; more programming noise costs accuracy', () => {
    const opts = { timesS: [1], batchSize: 100 } as const;
    const a = simulateOnChip(net, image, hw, wan, data, { ...opts, seeds: [4] });
    const b = simulateOnChip(net, image, hw, wan, data, { ...opts, seeds: [4] });
    const c = simulateOnChip(net, image, hw, wan, data, { ...opts, seeds: [5] });
    assert.deepEqual(a.times, b.times);
    assert.notDeepEqual(a.times[0]?.matrices, c.times[0]?.matrices);
    const loud = withNoise(wan, { programming: { ...wan.programming, scale: 4 } });
    const l = simulateOnChip(net, image, hw, loud, data, { ...opts, seeds: [4] });
    const la = l.times[0] as (typeof l.times)[number];
    const aa = a.times[0] as (typeof a.times)[number];
    assert.ok(la.accuracy.mean < aa.accuracy.mean - 0.1, `4x programming noise: ${la.accuracy.mean} vs ${aa.accuracy.mean}`);
    assert.ok((la.matrices[1]?.conductanceErrorUs.std ?? 0) > 3 * (aa.matrices[1]?.conductanceErrorUs.std ?? 1));
  });

  it('drift follows the profile and drift compensation recovers a common conductance loss', () => {
    // Power-law drift without spread: every cell keeps ((t + t0) / t0)^-0.1 of its conductance, so
    // both members of a pair shrink alike and the layer outputs lose a common gain (~68% after a day).
    // (A uniform additive log drift would cancel in the differential pairs.)
    const sag = withNoise(ideal, { drift: { form: 'power-law', t0S: 1, nuMean: 0.1, nuStd: 0 } });
    const times = [1, 86_400];
    const plain = simulateOnChip(net, image, hw, sag, data, { seeds: [1], timesS: times, batchSize: 100 });
    const comp = simulateOnChip(net, image, hw, sag, data, { seeds: [1], timesS: times, batchSize: 100, driftCompensation: true });
    const layout = cellLayout(hw);
    image.matrices.forEach((m, i) => {
      const targets = weightsToTargets(m.levels, m.info.rows, m.info.cols, layout);
      const meanTarget = targets.reduce((a, b) => a + b, 0) / targets.length;
      times.forEach((t, ti) => {
        const expected = meanTarget * ((t + 1) ** -0.1 - 1);
        const got = plain.times[ti]?.matrices[i]?.conductanceErrorUs.mean as number;
        assert.ok(Math.abs(got - expected) < 1e-3 * Math.abs(expected), `${m.info.name} at ${t} s: ${got} uS vs ${expected}`);
      });
    });
    assert.equal(plain.times[0]?.accuracy.mean, comp.times[0]?.accuracy.mean, 'at the reference time compensation changes nothing');
    const p1 = plain.times[1]?.accuracy.mean as number;
    const c1 = comp.times[1]?.accuracy.mean as number;
    assert.ok(c1 > p1 + 0.05, `compensated ${c1} vs uncompensated ${p1} after a day`);
    assert.ok(Math.abs(c1 - (comp.times[0]?.accuracy.mean as number)) <= 0.05, 'compensation brings it back near the 1 s accuracy');
    assert.equal(comp.driftCompensation, true);
    assert.equal(plain.driftCompensation, false);
  });
});

describe('simulateOnChip conditioned on a chip', () => {
  it('puts the chip\'s known stuck cells where the placements say, and nowhere else it tested', () => {
    const compiled = compileNetwork(net, image, hw);
    const placements = placementsOf(compiled);
    const first = compiled.tiles[0];
    assert.ok(first);
    const { rows, cols } = hw.array;
    const arrays = [...new Set(compiled.tiles.map((t) => t.placement.array))];
    const everything = Buffer.alloc((rows * cols) / 8, 0xff).toString('base64');
    const map = (stuck: Array<[number, number, number]>) => ({
      chipId: 'chip-A',
      rows,
      cols,
      arrays: arrays.map((array) => ({ array, tested: everything, stuck: array === first.placement.array ? stuck : [] })),
    });
    // Every cell would be stuck by the rates; the map says the chip has one stuck cell, the tile's first.
    const oneStuck = withNoise(ideal, { stuck: { lowRate: 0, highRate: 1, cells: map([[first.placement.row, first.placement.col, 45]]) } });
    const r = simulateOnChip(net, image, hw, oneStuck, data, { seeds: [1], timesS: [1], batchSize: 100, placements });
    const t = r.times[0] as (typeof r.times)[number];
    t.matrices.forEach((m, i) => assert.equal(m.stuckFraction, i === first.matrix ? 1 / m.cells : 0, m.name));
    // Without placements the simulator cannot know where cells are: the rates decide.
    const blind = simulateOnChip(net, image, hw, oneStuck, data, { seeds: [1], timesS: [1], batchSize: 100 });
    assert.ok((blind.times[0] as (typeof r.times)[number]).matrices.every((m) => m.stuckFraction === 1));
  });

  it('given conductances replace the model\'s: the targets give the quantised network, an erased chip gives chance', () => {
    const layout = cellLayout(hw);
    const targets = image.matrices.map((m) => weightsToTargets(m.levels, m.info.rows, m.info.cols, layout));
    const fine = parseHardwareProfile({ ...structuredClone(hw), adc: { ...hw.adc, bits: 16 } }, 'fine adc');
    const opts = { seeds: [1], timesS: [1, 3600], batchSize: 100 } as const;
    // A profile whose programming noise would ruin the network: the given conductances win.
    const ruinous = withNoise(ideal, { programming: { ...ideal.programming, coefficientsUs: [30], scale: 1 } });
    const everyTime = (of: (m: number) => Float32Array) => opts.timesS.map(() => targets.map((_, m) => ({ valuesUs: of(m) })));
    const exact = simulateOnChip(net, image, fine, ruinous, data, { ...opts, conductances: everyTime((m) => targets[m] as Float32Array) });
    for (const t of exact.times) assert.equal(t.accuracy.mean, exact.digitalAccuracy);
    const erased = simulateOnChip(net, image, fine, ideal, data, { ...opts, conductances: everyTime((m) => new Float32Array((targets[m] as Float32Array).length).fill(layout.minUs)) });
    for (const t of erased.times) assert.ok(t.accuracy.mean < 0.3, `erased chip ${t.accuracy.mean}`);
    assert.throws(() => simulateOnChip(net, image, hw, ideal, data, { ...opts, conductances: everyTime(() => new Float32Array(3)) }), /3 given conductances for matrix/);
 
  });

  it('carried given conductances: the later points are the first point\'s plus the model\'s relaxation since then', () => {
    // Every cell keeps ((t + 1) / 1)^-0.1 of its programmed conductance (no spread, no programming noise).
    const sag = withNoise(ideal, { drift: { form: 'power-law', t0S: 1, nuMean: 0.1, nuStd: 0 } });
    const layout = cellLayout(hw);
    const targets = image.matrices.map((m) => weightsToTargets(m.levels, m.info.rows, m.info.cols, layout));
    const times = [1, 86_400];
    const firstOnly = [targets.map((t) => ({ valuesUs: t }))];
    const carried = simulateOnChip(net, image, hw, sag, data, { seeds: [1], timesS: times, batchSize: 100, conductances: firstOnly, carryGiven: true });
    const modelLater = simulateOnChip(net, image, hw, sag, data, { seeds: [1], timesS: times, batchSize: 100, conductances: firstOnly });
    targets.forEach((t, i) => {
      const meanTarget = t.reduce((a, b) => a + b, 0) / t.length;
      const name = image.matrices[i]?.info.name;
      assert.ok(Math.abs(carried.times[0]?.matrices[i]?.conductanceErrorUs.mean as number) < 1e-6, `${name}: the given conductances at the first point`);
      const since = meanTarget * (86_401 ** -0.1 - 2 ** -0.1);
      const got = carried.times[1]?.matrices[i]?.conductanceErrorUs.mean as number;
      assert.ok(Math.abs(got - since) < 1e-3 * Math.abs(since), `${name} carried to a day: ${got} uS vs ${since}`);
      // Without carryGiven a point with none given is the model's own draw.
      const own = meanTarget * (86_401 ** -0.1 - 1);
      const later = modelLater.times[1]?.matrices[i]?.conductanceErrorUs.mean as number;
      assert.ok(Math.abs(later - own) < 1e-3 * Math.abs(own), `${name} model at a day: ${later} uS vs ${own}`);
    });
  });
});

describe('simulateOnChip on a searched residual network (identity first, 9-row conv and 1-row projection)', () => {
  const RESIDUAL = repoPath('fixtures/networks/searched-residual');
  let rnet: NetworkAnalysis;
  let rimage: WeightImage;
  before(() => {
    rnet = analyzeNetwork(loadJsonFile(NetworkSpecSchema, `${RESIDUAL}/spec.json`), 'searched-residual spec');
    rimage = loadWeightImage(RESIDUAL);
  });

  it('without device noise the macro computes the quantised network: identity skipped, projection on the skip path', () => {
    assert.equal(hw.adc.range, 'block');
    const r = simulateOnChip(rnet, rimage, hw, ideal, data, { seeds: [1], timesS: [1] });
    const t = r.times[0] as (typeof r.times)[number];
    assert.ok(r.digitalAccuracy > 0.6, `digital ${r.digitalAccuracy}`);
    // 8-bit ADC rounding alone flips a few of the 100 images (measured: 3).
    assert.ok(Math.abs(t.accuracy.mean - r.digitalAccuracy) <= 0.05, `ideal ${t.accuracy.mean} vs digital ${r.digitalAccuracy}`);
    for (const m of t.matrices) assert.ok(m.relativeOutputError < 0.1, `${m.name}: ${m.relativeOutputError}`);
  });

  it('an ADC range per row block keeps few-row matrices above the noise; one array-wide range drowns them', () => {
    const arrayRange = parseHardwareProfile({ ...structuredClone(hw), adc: { ...hw.adc, range: 'array' } }, 'array-wide adc range');
    const opts = { seeds: [1], timesS: [60] } as const;
    const block = simulateOnChip(rnet, rimage, hw, wan, data, opts);
    const wide = simulateOnChip(rnet, rimage, arrayRange, wan, data, opts);
    const b = block.times[0] as (typeof block.times)[number];
    const w = wide.times[0] as (typeof wide.times)[number];
    const projection = (t: typeof b) => t.matrices.find((m) => m.name === 'layers[1].projection')?.relativeOutputError ?? Number.NaN;
    assert.ok(projection(w) > 1, `1-row projection with the array-wide range: ${projection(w)}`);
    assert.ok(projection(b) < 0.5, `1-row projection with its own range: ${projection(b)}`);
    assert.ok(b.accuracy.mean > w.accuracy.mean + 0.3, `accuracy per-block range ${b.accuracy.mean} vs array-wide ${w.accuracy.mean}`);
  });
});

describe('simulateProbes', () => {
  it('an ideal device gives only ADC rounding; the default profile predicts more error, growing with time', () => {
    const compiled = compileNetwork(net, image, hw);
    const inputs = probeInputs(compiled.tiles.map((t) => t.placement), 8, new Rng(1));
    const tiles = compiled.tiles.map((t, i) => ({ array: t.placement.array, col: t.placement.col, rows: t.placement.rows, cols: t.placement.cols, targetsUs: t.targetsUs, inputs: inputs[i] as Uint8Array }));
    const clean = simulateProbes(tiles, hw, ideal, { seeds: [1, 2], tS: 1 });
    assert.deepEqual(clean.map((a) => a.array), [...new Set(tiles.map((t) => t.array))].sort((x, y) => x - y));
    for (const a of clean) {
      assert.equal(a.relErrorVsTarget.std, 0);
      assert.ok(a.relErrorVsTarget.mean > 0 && a.relErrorVsTarget.mean < 0.05, `array ${a.array}: ${a.relErrorVsTarget.mean}`);
    }
    const now = simulateProbes(tiles, hw, wan, { seeds: [1, 2], tS: 1 });
    const day = simulateProbes(tiles, hw, wan, { seeds: [1, 2], tS: 86_400 });
    now.forEach((a, i) => {
      assert.ok(a.relErrorVsTarget.mean > 2 * (clean[i]?.relErrorVsTarget.mean ?? 1), `array ${a.array}`);
      assert.ok((day[i]?.relErrorVsTarget.mean ?? 0) > a.relErrorVsTarget.mean, `array ${a.array} after a day`);
    });
    assert.deepEqual(simulateProbes(tiles, hw, wan, { seeds: [1, 2], tS: 1 }), now, 'same seeds, same prediction');
  });
});
