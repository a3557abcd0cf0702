import { InputError } from '../common/errors.js';
import { Rng } from '../common/rng.js';
import { Capability, type ChipLink, type Region } from '../link/index.js';
import type { CalibrationDataset, MvmPatterns, ReadbackSet } from './dataset.js';

/**
 * The calibration plan: first (precondition) programs a seeded random pattern and ignores it, so
 * that the measured programming starts from random earlier levels as reprogramming a used chip does
 * (write-verify's per-level bias depends on the side cells come from); then programs a known pattern
 * (every target level equally often in every block, seeded placement) through a ChipLink, notes the device clock after every PROGRAM so each
 * cell's age is known, reads each block back right after programming and then all cells at a
 * series of ages (ADVANCE_CLOCK or waiting), repeats single reads on a subset (read noise) and
 * drives MVM patterns with known active rows (ADC gain/offset, IR drop).
 */
export interface CalibrationPlanOptions {
  /** Arrays to program (from 0). */
  readonly arrays: number;
  /** Rows per PROGRAM block (small blocks keep the per-cell age precise). */
  readonly blockRows?: number;
  /** Target levels spread evenly over the device window. */
  readonly levels?: number;
  /** Ages (s after the end of programming) of the later read-backs, ascending. */
  readonly agesS?: readonly number[];
  /** Reads averaged per read-back value. */
  readonly averages?: number;
  /** Back-to-back single reads of the first `repeatCells` cells, at the last age. */
  readonly repeats?: number;
  readonly repeatCells?: number;
  /** MVM vectors per array (0: none), at the last age; each drives a random subset of rows. */
  readonly mvmVectors?: number;
  readonly seed?: number;
  readonly toleranceUs?: number;
  /** Program a seeded random pattern first (default true; false measures programming from the cells' present state). */
  readonly precondition?: boolean;
  readonly onProgress?: (label: string, done: number, total: number) => void;
  /** Wall-clock wait when the device cannot ADVANCE_CLOCK (default: refuse). */
  readonly sleep?: (ms: number) => Promise<void>;
}


export async function runCalibrationPlan(link: ChipLink, options: CalibrationPlanOptions): Promise<CalibrationDataset> {
  const info = link.info ?? (await link.connect());
  const config = await link.getConfig();
  const { rows, cols } = info;
  if (options.arrays < 1 || options.arrays > info.arrays) throw new InputError('INVALID_INPUT', `arrays must be 1..${info.arrays}`, { where: 'calibration plan: arrays' });
  const blockRows = Math.max(1, Math.min(rows, options.blockRows ?? 2));
  const levels = options.levels ?? 16;
  const ages = options.agesS ?? [1, 2, 3, 5, 10, 100, 3600, 86_400];
  const averages = options.averages ?? config.readAverages;
  const rng = new Rng(options.seed ?? 1);
  const n = options.arrays * rows * cols;
  const targetUs = new Float32Array(n);
  const status = new Uint8Array(n).fill(255);
  const finalUs = new Float32Array(n).fill(Number.NaN);
  const pulses = new Uint16Array(n).fill(65535);
  const progClockMs = new Float64Array(n);
  const immediate: ReadbackSet = { ageS: new Float32Array(n), averages, valuesUs: new Float32Array(n).fill(Number.NaN) };
  const step = (info.gMaxUs - info.gMinUs) / (levels - 1);
  const blocks: Array<{ region: Region; offset: number }> = [];
  for (let a = 0; a < options.arrays; a++) {
    for (let r = 0; r < rows; r += blockRows) blocks.push({ region: { array: a, row: r, col: 0, rows: Math.min(blockRows, rows - r), cols }, offset: (a * rows + r) * cols });
  }
  const programOptions = options.toleranceUs !== undefined ? { toleranceUs: options.toleranceUs } : {};
  if (options.precondition ?? true) {
    const pre = rng.fork(1);
    let k = 0;
    for (const b of blocks) {
      const size = b.region.rows * b.region.cols;
      await link.program(b.region, Float32Array.from({ length: size }, () => info.gMinUs + pre.int(levels) * step), programOptions);
      options.onProgress?.('calibration: precondition', (k += size), n);
    }
  }
  let done = 0;
  // Device clock when each PROGRAM starts: the cells of a block are programmed one after another
  // during it, so their mean programming time is the middle of the PROGRAM, not its end (taking the
  // end would make every age short by half a PROGRAM and bias the onset time t0 up by as much).
  let startMs = (await link.hello()).clockMs;
  for (const b of blocks) {
    const size = b.region.rows * b.region.cols;
    // Every level equally often in every block, in a seeded order.
    const order = Array.from({ length: size }, (_, k) => k % levels);
    for (let k = size - 1; k > 0; k--) {
      const j = rng.int(k + 1);
      [order[k], order[j]] = [order[j] as number, order[k] as number];
    }
    const targets = Float32Array.from(order, (l) => info.gMinUs + l * step);
    targetUs.set(targets, b.offset);
    const res = await link.program(b.region, targets, programOptions);
    const after = await link.hello();
    status.set(res.status, b.offset);
    finalUs.set(res.finalUs, b.offset);
    pulses.set(res.pulses, b.offset);
    const programmedMs = (startMs + after.clockMs) / 2;
    progClockMs.fill(programmedMs, b.offset, b.offset + size);
    const values = await link.readCells(b.region, { averages });
    const read = await link.hello();
    startMs = read.clockMs;
    immediate.valuesUs.set(values, b.offset);
    // Programmed during the PROGRAM (mean: its middle); read during the read-back (its middle).
    immediate.ageS.fill(Math.max(1e-3, ((after.clockMs + read.clockMs) / 2 - programmedMs) / 1000), b.offset, b.offset + size);
    options.onProgress?.('calibration: program', (done += size), n);
  }
  const endMs = (await link.hello()).clockMs;
  const readbacks: ReadbackSet[] = [immediate];
  const emulatedClock = (info.capabilities & Capability.ADVANCE_CLOCK) !== 0;
  const arraysRegion = (a: number): Region => ({ array: a, row: 0, col: 0, rows, cols });
  for (const age of ages) {
    const now = (await link.hello()).clockMs;
    const need = age - (now - endMs) / 1000;
    if (need > 0) {
      // ADVANCE_CLOCK takes whole seconds; ages are taken from the clock anyway.
      if (emulatedClock) await link.advanceClock(Math.ceil(need));
      else if (options.sleep) await options.sleep(need * 1000);
      else throw new InputError('INVALID_INPUT', 'the device cannot ADVANCE_CLOCK and no wall-clock wait was allowed', { where: 'calibration plan: agesS' });
    }
    const set: ReadbackSet = { ageS: new Float32Array(n), averages, valuesUs: new Float32Array(n) };
    for (let a = 0; a < options.arrays; a++) {
      const before = (await link.hello()).clockMs;
      const values = await link.readCells(arraysRegion(a), { averages });
      const after = (await link.hello()).clockMs;
      const off = a * rows * cols;
      set.valuesUs.set(values, off);
      const mid = (before + after) / 2;
      for (let i = off; i < off + rows * cols; i++) set.ageS[i] = (mid - (progClockMs[i] as number)) / 1000;
    }
    readbacks.push(set);
    options.onProgress?.('calibration: read-back', readbacks.length - 1, ages.length);
  }
  const repeats = options.repeats ?? 0;
  let repeatedReads: CalibrationDataset['repeatedReads'];
  if (repeats >= 2) {
    const cells = Math.min(n, Math.max(cols, Math.floor((options.repeatCells ?? 4096) / cols) * cols));
    const region: Region = { array: 0, row: 0, col: 0, rows: cells / cols, cols };
    const values = new Float32Array(cells * repeats);
    for (let k = 0; k < repeats; k++) {
      const v = await link.readCells(region, { averages: 1 });
      for (let i = 0; i < cells; i++) values[i * repeats + k] = v[i] as number;
    }
    repeatedReads = { cells: Uint32Array.from({ length: cells }, (_, i) => i), repeats, valuesUs: values };
  }
  const mvm: MvmPatterns[] = [];
  const vectors = options.mvmVectors ?? 0;
  if (vectors > 0 && (info.capabilities & Capability.MVM) !== 0) {
    // One column group per MVM so the reply fits the payload.
    const groupCols = Math.max(1, Math.min(cols, Math.floor((info.maxPayload - 4) / 2)));
    for (let a = 0; a < options.arrays; a++) {
      const g = await link.readCells(arraysRegion(a), { averages: Math.max(averages, 16) });
      const inputs = new Uint8Array(vectors * rows);
      const codes = new Float32Array(vectors * cols);
      for (let v = 0; v < vectors; v++) {
        // Active-row counts from 1 to all rows: currents over the whole ADC range.
        const p = (v + 1) / vectors;
        const x = new Uint32Array(rows);
        for (let r = 0; r < rows; r++) x[r] = rng.next() < p ? 1 : 0;
        inputs.set(x, v * rows);
        for (let c0 = 0; c0 < cols; c0 += groupCols) {
          const w = Math.min(groupCols, cols - c0);
          const reply = await link.mvm({ array: a, row: 0, col: c0, rows, cols: w }, x, 1);
          for (let c = 0; c < w; c++) codes[v * cols + c0 + c] = reply.codes[c] as number;
        }
      }
      mvm.push({ rows, cols, vReadV: config.vReadV, fullCurrentUa: rows * config.vReadV * info.gMaxUs, gUs: g, inputs, codes, adcBits: info.adcBits, array: a });
    }
  }
  const fw = `${info.firmwareVersion.major}.${info.firmwareVersion.minor}.${info.firmwareVersion.patch}`;
  return {
    source: {
      runs: [],
      chipId: info.chipId,
      firmware: fw,
      firmwareName: info.firmwareName,
      dates: [new Date().toISOString()],
      description: `calibration plan: ${n} cells on ${options.arrays} arrays${(options.precondition ?? true) ? ' (preconditioned with a random pattern)' : ''}, ${levels} levels, ${ages.length + 1} read-backs${repeats >= 2 ? `, ${repeats} repeated reads` : ''}${mvm.length ? `, ${vectors} MVM vectors per array` : ''}`,
    },
    gMinUs: info.gMinUs,
    gMaxUs: info.gMaxUs,
    toleranceUs: options.toleranceUs ?? config.toleranceUs,
    targetUs,
    status,
    finalUs,
    pulses,
    readbacks,
    ...(repeatedReads ? { repeatedReads } : {}),
    ...(mvm.length ? { mvm } : {}),
    // Cell i is array floor(i / (rows * cols)), row-major inside it.
    places: {
      rows,
      cols,
      array: Uint16Array.from({ length: n }, (_, i) => Math.floor(i / (rows * cols))),
      row: Uint16Array.from({ length: n }, (_, i) => Math.floor(i / cols) % rows),
      col: Uint16Array.from({ length: n }, (_, i) => i % cols),
    },
  };
}
