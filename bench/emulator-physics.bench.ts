/**
 * Emulator device-physics throughput on one core (no protocol): bit-serial MVM on a 128x128 region
 * with 8-bit inputs, write-verify of a 128x128 block and READ_CELLS, on the typical chip profile.
 * The region is programmed by write-verify to uniform random targets and aged 60 emulated seconds
 * first, as a real run would be.
 * Usage: npm run bench:emulator-physics [-- --seconds 3 --seed 1 --batch 256 --chip typical]
 */
import { parseArgs } from 'node:util';
import { Rng } from '../src/common/rng.js';
import { CHIP_NAMES, chipProfilePath, createChip, loadChipProfile, mvm, readCells, writeVerify, type ChipName } from '../fixtures/emulated-macro/physics/index.js';
import { report } from './report.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    seed: { type: 'string', default: '1' },
    batch: { type: 'string', default: '256' },
    chip: { type: 'string', default: 'typical' },
  },
});
const seconds = Number(values.seconds);
const seed = Number(values.seed);
const batch = Number(values.batch);
const chipName = values.chip as ChipName;
if (!CHIP_NAMES.includes(chipName)) throw new Error(`--chip must be one of ${CHIP_NAMES.join(', ')}`);

const profile = loadChipProfile(chipProfilePath(chipName));
const chip = createChip(profile, seed);
const rng = new Rng(seed);
const rows = 128;
const cols = 128;
const region = { array: 0, row: 0, col: 0, rows, cols };
const { gMinUs, gMaxUs } = profile.conductance;

// Write-verify of one full block.
const targets = new Float32Array(rows * cols);
for (let i = 0; i < targets.length; i++) targets[i] = gMinUs + (gMaxUs - gMinUs) * rng.next();
let start = performance.now();
const wv = writeVerify(chip, region, targets);
let elapsed = (performance.now() - start) / 1000;
report('emulator.write_verify_cells_per_s', Math.round(targets.length / elapsed), '1/s', {
  chip: profile.name,
  cells: targets.length,
  seconds: Number(elapsed.toFixed(3)),
  passes: wv.passes,
  ok_fraction: Number((wv.cellsOk / targets.length).toFixed(4)),
  emulated_seconds: Number(wv.elapsedS.toFixed(3)),
});
report('emulator.write_verify_pulses_per_s', Math.round(wv.pulsesApplied / elapsed), '1/s', { pulses: wv.pulsesApplied });
chip.advanceClock(60);

// READ_CELLS of the block (8 samples per cell).
start = performance.now();
let cellsRead = 0;
while (performance.now() - start < 1000 * Math.min(seconds, 1)) {
  readCells(chip, region);
  cellsRead += rows * cols;
}
elapsed = (performance.now() - start) / 1000;
report('emulator.read_cells_per_s', Math.round(cellsRead / elapsed), '1/s', { reads_per_cell: profile.writeVerify.reads });

/** Vectors per second of mvm() on batches of `n` vectors drawn by `draw`. */
function measureMvm(n: number, draw: () => number): { perS: number; vectors: number; seconds: number } {
  const inputs = new Float32Array(n * rows);
  for (let i = 0; i < inputs.length; i++) inputs[i] = draw();
  let sink = 0;
  const warmUntil = performance.now() + 300;
  while (performance.now() < warmUntil) sink += mvm(chip, region, inputs).outputs[0] as number;
  let vectors = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  while (performance.now() < deadline) {
    sink += mvm(chip, region, inputs).outputs[0] as number;
    vectors += n;
  }
  const s = (performance.now() - t0) / 1000;
  if (!Number.isFinite(sink)) process.exitCode = 1;
  return { perS: vectors / s, vectors, seconds: s };
}

const dense = measureMvm(batch, () => rng.int(256));
report('emulator.mvm_vectors_per_s', Math.round(dense.perS), '1/s', {
  region: '128x128',
  input_bits: 8,
  inputs: 'uniform 0..255',
  batch,
  vectors: dense.vectors,
  seconds: Number(dense.seconds.toFixed(2)),
});
report('emulator.mvm_macs_per_s', Math.round(dense.perS * rows * cols), '1/s', {
  note: 'emulator.mvm_vectors_per_s x 128 x 128 (one MAC = one 8-bit input times one cell, all 8 bit planes included)',
});
// ReLU-like activations: half zeros, the rest exponential with mean 40, clipped to 255.
const relu = measureMvm(batch, () => (rng.next() < 0.5 ? 0 : Math.min(255, Math.floor(-40 * Math.log(1 - rng.next())))));
report('emulator.mvm_vectors_per_s_relu_inputs', Math.round(relu.perS), '1/s', {
  region: '128x128',
  input_bits: 8,
  inputs: '50% zeros, else exponential mean 40 clipped to 255',
  batch,
  vectors: relu.vectors,
});
const single = measureMvm(1, () => rng.int(256));
report('emulator.mvm_vectors_per_s_batch1', Math.round(single.perS), '1/s', { region: '128x128', input_bits: 8, batch: 1, vectors: single.vectors });
