import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError } from '../../src/common/errors.js';
import {
  defaultHardwareProfilePath,
  hardwareProfileHash,
  hardwareProfilePath,
  loadHardwareProfile,
  parseHardwareProfile,
  simulate,
  type HardwareProfile,
} from '../../src/hardware/index.js';
import { parseNetworkSpec } from '../../src/spec/index.js';

/** Equal to the last printed digit: relative 1e-12 absorbs only floating-point summation order. */
function close(actual: number | undefined, expected: number, what: string): void {
  assert.ok(actual !== undefined, `${what} missing`);
  assert.ok(Math.abs(actual - expected) <= 1e-12 * Math.max(1, Math.abs(expected)), `${what}: ${actual} != ${expected}`);
}

const hw = loadHardwareProfile(defaultHardwareProfilePath());

describe('cost model against a hand calculation (nas4cim-macro)', () => {
  // The figures below were worked out by hand from these profile values; if the profile changes,
  // this check says so before the arithmetic does.
  it('uses the profile values of the hand calculation', () => {
    assert.deepEqual(
      [hw.array.rows, hw.array.cols, hw.weights.bits, hw.weights.bitsPerCell, hw.weights.differential, hw.inputs.bits],
      [128, 128, 4, 3, true, 8],
    );
    assert.deepEqual([hw.dac.bits, hw.dac.perArray, hw.dac.latencyNs, hw.dac.energyPj], [1, 128, 3, 0.012]);
    assert.deepEqual([hw.adc.perArray, hw.adc.latencyNs, hw.adc.energyPj], [8, 7.8125, 15.625]);
    assert.deepEqual([hw.crossbar.readLatencyNs, hw.crossbar.cellReadEnergyPj], [3.16, 0.0000238]);
    assert.deepEqual([hw.shiftAdd.latencyNs, hw.shiftAdd.energyPj], [2, 0.05]);
    assert.deepEqual([hw.digital.clockMHz, hw.digital.lanes, hw.digital.energyPjPerOp, hw.digital.partialSumBits], [500, 16, 0.05, 16]);
    assert.deepEqual([hw.buffer.cycleNs, hw.buffer.widthBits, hw.buffer.energyPjPerBit], [20, 64, 0.703]);
    assert.deepEqual([hw.interconnect.bandwidthGbps, hw.interconnect.energyPjPerBit, hw.leakage.powerMw], [20, 0.1, 8.86]);
    assert.deepEqual([hw.calibration.latencyFactor, hw.calibration.energyFactor], [1, 1]);
    assert.deepEqual([hw.mapping.kernelPacking, hw.mapping.shareArrays], [true, true]);
  });

  const net = parseNetworkSpec({
    name: 'hand',
    input: [8, 8, 4],
    classes: 10,
    layers: [
      { op: 'conv', kernel: 3, out: 8 },
      { op: 'dense', out: 10 },
    ],
  });
  const r = simulate(net, hw);
  const [conv, dense] = r.layers;

  it('layer 0: conv 3x3, 4 -> 8 channels on 8x8', () => {
    // rows 3*3*4 = 36; cols 8 channels x 1 slice (3 magnitude bits / 3 bits per cell) x 2 (pair) = 16
    assert.equal(conv?.rows, 36);
    assert.equal(conv?.cols, 16);
    assert.equal(conv?.arrays, 1);
    close(conv?.utilisation, (36 * 16) / (128 * 128), 'utilisation');
    // 64 vectors x 8 bit cycles x 16 columns x 1 row block
    assert.equal(conv?.adcConversions, 8192);
    // t_analog = 8 bits x ceil(36/128)=1 x ceil(16/8)=2 x (3 + 3.16 + 7.8125) = 223.56 ns
    // t_buffer = ceil((36 + 8) x 8 / 64) = 6 cycles x 20 = 120 ns; t_link = 8 x 8 / 20 = 3.2 ns
    // t_vector = 223.56 + shift-add 2 + merge of 2 columns ceil(log2 2) = 1 cycle x 2 = 227.56 ns
    close(conv?.matrices[0]?.vectorLatencyNs, 227.56, 'vector latency');
    // 64 x 227.56 + activations ceil(64 x 8 / 16) = 32 cycles x 2 ns = 14563.84 + 64
    close(conv?.latencyNs, 14627.84, 'latency');
    const e = conv?.energy;
    close(e?.dac, 64 * 8 * 36 * 0.012, 'dac'); // 221.184
    close(e?.crossbar, 64 * 8 * 36 * 16 * 0.0000238, 'crossbar'); // 7.0189056
    close(e?.adc, 128000, 'adc');
    close(e?.shiftAdd, 409.6, 'shift-add');
    close(e?.accumulate, 25.6, 'accumulate'); // 64 vectors x 8 channels x 1 merge add x 0.05
    close(e?.buffer, 15837.184, 'buffer'); // 64 x 352 bits x 0.703
    close(e?.interconnect, 409.6, 'interconnect'); // 64 x 64 bits x 0.1
    close(e?.digital, 25.6, 'digital'); // 512 activations x 0.05
    close(e?.leakage, 129602.6624, 'leakage'); // 8.86 mW x 14627.84 ns
    close(conv?.energyPj, 221.184 + 7.0189056 + 128000 + 409.6 + 25.6 + 15837.184 + 409.6 + 25.6 + 129602.6624, 'energy');
  });

  it('layer 1: dense 512 -> 10 (logits, no activation)', () => {
    // rows 512 -> 4 row blocks of 128; cols 10 x 2 = 20 -> 1 column block
    assert.equal(dense?.rows, 512);
    assert.equal(dense?.cols, 20);
    assert.equal(dense?.arrays, 4);
    assert.equal(dense?.adcConversions, 8 * 20 * 4);
    // t_analog = 8 x 1 x ceil(20/8)=3 x 13.9725 = 335.34; t_buffer = ceil(522 x 8 / 64) = 66 x 20 = 1320
    // t_link = (3 x 10 x 16 + 10 x 8) / 20 = 28; merge of 2 x 4 = 8 inputs: 3 cycles = 6 ns
    close(dense?.latencyNs, 1320 + 2 + 6, 'latency');
    const e = dense?.energy;
    close(e?.dac, 8 * 512 * 0.012, 'dac');
    close(e?.crossbar, 8 * 512 * 20 * 0.0000238, 'crossbar');
    close(e?.adc, 640 * 15.625, 'adc');
    close(e?.accumulate, 10 * 7 * 0.05, 'accumulate');
    close(e?.buffer, 4176 * 0.703, 'buffer');
    close(e?.interconnect, 560 * 0.1, 'interconnect');
    close(e?.digital, 0, 'digital');
    close(e?.leakage, 8.86 * 1328, 'leakage');
  });

  const unshared: HardwareProfile = { ...hw, mapping: { ...hw.mapping, shareArrays: false } };
  const r1 = simulate(net, unshared);

  it('totals in both latency modes, one array per tile (shareArrays false)', () => {
    const energyPj = (conv?.energyPj ?? 0) + (dense?.energyPj ?? 0);
    close(r1.totals.layerByLayer.latencyMs, (14627.84 + 1328) * 1e-6, 'layer-by-layer latency');
    close(r1.totals.layerByLayer.energyMj, energyPj * 1e-9, 'energy');
    close(r1.totals.layerByLayer.edpMsMj, (14627.84 + 1328) * 1e-6 * energyPj * 1e-9, 'EDP');
    // Pipelined: the conv layer is the slowest stage; leakage only over that interval.
    close(r1.totals.pipelined.latencyMs, 14627.84e-6, 'pipelined latency');
    const dynamic = energyPj - 8.86 * (14627.84 + 1328);
    close(r1.totals.pipelined.energyMj, (dynamic + 8.86 * 14627.84) * 1e-9, 'pipelined energy');
    assert.equal(r1.totals.pipelined.bottleneckLayer, 0);
    close(r1.totals.pipelined.throughputImagesPerS, 1e9 / 14627.84, 'throughput');
    assert.deepEqual(r1.fit, { fits: true, arraysRequired: 5, arraysAvailable: 8, shortfall: 0, utilisation: (36 * 16 + 512 * 20) / (5 * 16384) });
  });

  it('totals with shared arrays: the conv tile sits beside a dense tile, so the pipeline serialises them', () => {
    // Tiles: dense 4 x (128 x 20) each on an array of its own (one layer never shares), conv 36 x 16
    // beside the first dense tile: 4 arrays. Layer-by-layer figures do not change.
    const energyPj = (conv?.energyPj ?? 0) + (dense?.energyPj ?? 0);
    close(r.totals.layerByLayer.latencyMs, (14627.84 + 1328) * 1e-6, 'layer-by-layer latency');
    close(r.totals.layerByLayer.edpMsMj, (14627.84 + 1328) * 1e-6 * energyPj * 1e-9, 'EDP');
    // Pipelined: the shared array serves both layers for every image.
    close(r.totals.pipelined.latencyMs, (14627.84 + 1328) * 1e-6, 'pipelined latency');
    assert.deepEqual(r.fit, { fits: true, arraysRequired: 4, arraysAvailable: 8, shortfall: 0, utilisation: (36 * 16 + 512 * 20) / (4 * 16384) });
  });

  it('duplicates the slowest layer into free arrays when asked', () => {
    const dup = simulate(net, unshared, { duplicate: true });
    // 3 free arrays: the 1-array conv layer is the slowest and gets all of them (4 copies).
    assert.equal(dup.layers[0]?.duplicates, 4);
    assert.equal(dup.layers[0]?.arrays, 4);
    close(dup.layers[0]?.latencyNs, 16 * 227.56 + 64, 'duplicated latency'); // ceil(64/4) vectors
    assert.ok(dup.totals.layerByLayer.latencyMs < r1.totals.layerByLayer.latencyMs);
    // Duplication moves work, it does not add any: dynamic energy is unchanged.
    close(dup.energyBreakdownPj.adc, r1.energyBreakdownPj.adc, 'adc energy');
    // Shared: 4 free arrays, so 5 copies, ceil(64/5) = 13 vectors each.
    const dupShared = simulate(net, hw, { duplicate: true });
    assert.equal(dupShared.layers[0]?.duplicates, 5);
    close(dupShared.layers[0]?.latencyNs, 13 * 227.56 + 64, 'duplicated latency, shared');
  });

  it('applies calibration factors to every latency and energy', () => {
    const calibrated: HardwareProfile = { ...hw, calibration: { latencyFactor: 1.4, energyFactor: 1.22 } };
    const c = simulate(net, calibrated);
    close(c.totals.layerByLayer.latencyMs, r.totals.layerByLayer.latencyMs * 1.4, 'latency');
    close(c.energyBreakdownPj.adc, r.energyBreakdownPj.adc * 1.22, 'adc');
    close(c.energyBreakdownPj.leakage, r.energyBreakdownPj.leakage * 1.4 * 1.22, 'leakage');
  });
});

describe('fit check', () => {
  it('says by how much a network does not fit', () => {
    const big = parseNetworkSpec({
      name: 'big',
      input: [8, 8, 64],
      classes: 10,
      layers: [{ op: 'conv', kernel: 3, out: 64 }, { op: 'dense', out: 10 }],
    });
    const r = simulate(big, hw, { duplicate: true });
    // conv: 576 rows -> packing 14 channels x 9 = 126 rows per block -> 5 blocks; 128 cols -> 1
    // dense: 4096 rows -> 32 blocks; total 37 arrays
    assert.equal(r.layers[0]?.matrices[0]?.rowsPerBlock, 126);
    assert.equal(r.fit.arraysRequired, 37);
    assert.equal(r.fit.fits, false);
    assert.equal(r.fit.shortfall, 29);
    assert.equal(r.layers[0]?.duplicates, 1, 'no duplication when it does not fit');
  });
});

describe('hardware profiles', () => {
  it('ships presets that parse and cite a source for every section', () => {
    for (const name of ['nas4cim-macro', 'multitile-256']) {
      const p = loadHardwareProfile(hardwareProfilePath(name));
      assert.equal(p.name, name);
      assert.match(hardwareProfileHash(p), /^[0-9a-f]{64}$/);
    }
  });

  it('rejects a profile without provenance or with impossible fields, naming the field', () => {
    const { provenance: _drop, ...noProvenance } = hw;
    assert.throws(() => parseHardwareProfile({ ...noProvenance, provenance: {} }, 'p.json'), (err: unknown) => {
      assert.ok(err instanceof InputError);
      assert.match(err.describe(), /p\.json: provenance\.array: missing/);
      return true;
    });
    assert.throws(() => parseHardwareProfile({ ...hw, adc: { ...hw.adc, perArray: 0 } }, 'p.json'), /adc\.perArray/);
    assert.throws(() => parseHardwareProfile({ ...hw, adc: { ...hw.adc, perArray: 512 } }, 'p.json'), /adc\.perArray: more ADCs than array columns/);
    assert.throws(() => parseHardwareProfile({ ...hw, array: { ...hw.array, rowz: 3 } }, 'p.json'), /rowz/);
  });
});
