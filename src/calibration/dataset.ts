import { InputError } from '../common/errors.js';
import { BenchRuns, type Db } from '../store/index.js';

/**
 * What the fits consume: per-cell programming results and read-backs as typed arrays, whatever
 * produced them (campaign runs in the store, or the calibration plan on a live link).
 *
 * Times: `ageS` of a read-back is, per cell, the time since that cell's programming (seconds).
 * Campaign runs record the end of programming and how long it took; a cell's age there is
 * estimated from its block's place in the programming order (programmingAgeOffsets).
 */
export interface ReadbackSet {
  readonly ageS: Float32Array;
  /** Reads averaged into each value (read noise shrinks by its square root). */
  readonly averages: number;
  /** uS per cell; NaN where the cell was not read. */
  readonly valuesUs: Float32Array;
}

/** Single reads repeated back to back on a set of cells (read noise). */
export interface RepeatedReads {
  /** Indices into the dataset's cells. */
  readonly cells: Uint32Array;
  readonly repeats: number;
  /** cells.length x repeats, cell-major, uS, one sample per value. */
  readonly valuesUs: Float32Array;
}

/**
 * MVM calibration patterns: for each vector, which rows were driven and the codes per column,
 * with the read-back conductances of the region just before (what the columns should sum).
 */
export interface MvmPatterns {
  readonly rows: number;
  readonly cols: number;
  readonly vReadV: number;
  /** Imax = rows * vRead * gMax: the current the IR-drop factor is relative to. */
  readonly fullCurrentUa: number;
  /** rows x cols read-back of the region (uS). */
  readonly gUs: Float32Array;
  /** vectors x rows, 0/1. */
  readonly inputs: Uint8Array;
  /** vectors x cols raw codes (one input bit, so no shift-add). */
  readonly codes: Float32Array;
  readonly adcBits: number;
  /** The array the patterns ran on (per-column trims are recorded against it). */
  readonly array?: number;
}

export interface DatasetSource {
  readonly runs: readonly number[];
  readonly chipId: string | null;
  readonly firmware: string | null;
  readonly firmwareName: string | null;
  readonly dates: readonly string[];
  readonly description: string;
}

/** Where each cell sits on the chip (arrays of rows x cols). */
export interface CellPlaces {
  readonly rows: number;
  readonly cols: number;
  readonly array: Uint16Array;
  readonly row: Uint16Array;
  readonly col: Uint16Array;
}

export interface CalibrationDataset {
  readonly source: DatasetSource;
  readonly gMinUs: number;
  readonly gMaxUs: number;
  readonly toleranceUs: number | null;
  readonly targetUs: Float32Array;
  /** Device CellStatus per cell (0 OK, 1 PULSE_LIMIT, 2 ITER_LIMIT, 3 NOT_ATTEMPTED, 4 STUCK); 255 unknown. */
  readonly status: Uint8Array;
  /** The controller's last verify read (uS), NaN unknown. */
  readonly finalUs: Float32Array;
  /** Pulses PROGRAM applied per cell (0: the cell was already in the window and kept its old state); 65535 unknown. */
  readonly pulses: Uint16Array;
  readonly readbacks: readonly ReadbackSet[];
  /** Which source each cell came from (mergeDatasets); absent: one source. Sources differ in their
   * programming (level sets, history), so fits give each its own programming offset. */
  readonly part?: Uint8Array;
  readonly repeatedReads?: RepeatedReads;
  readonly mvm?: readonly MvmPatterns[];
  /** Cell positions (a chip's known stuck cells are fitted from them); absent: unknown. */
  readonly places?: CellPlaces;
}

/** Concatenates datasets of the same chip window (e.g. several runs). */
function partsOf(parts: readonly CalibrationDataset[], n: number): Uint8Array {
  const out = new Uint8Array(n);
  let o = 0;
  let next = 0;
  for (const p of parts) {
    const own = p.part ?? new Uint8Array(p.targetUs.length);
    let most = 0;
    for (let i = 0; i < own.length; i++) {
      out[o + i] = Math.min(255, next + (own[i] as number));
      most = Math.max(most, own[i] as number);
    }
    o += p.targetUs.length;
    next += most + 1;
  }
  return out;
}

export function mergeDatasets(parts: readonly CalibrationDataset[]): CalibrationDataset {
  const first = parts[0];
  if (!first) throw new InputError('INVALID_INPUT', 'no data to calibrate from', { where: '--runs' });
  if (parts.length === 1) return first;
  for (const p of parts) {
    if (p.gMinUs !== first.gMinUs || p.gMaxUs !== first.gMaxUs) {
      throw new InputError('INVALID_INPUT', `runs use different conductance windows (${first.gMinUs}..${first.gMaxUs} and ${p.gMinUs}..${p.gMaxUs} uS)`, { where: '--runs' });
    }
  }
  const n = parts.reduce((s, p) => s + p.targetUs.length, 0);
  const cat = <T extends Float32Array | Uint8Array | Uint16Array>(make: (n: number) => T, get: (p: CalibrationDataset) => T): T => {
    const out = make(n);
    let o = 0;
    for (const p of parts) {
      out.set(get(p), o);
      o += p.targetUs.length;
    }
    return out;
  };
  // Read-back sets line up by position (time point k of each run); cells of a run without set k are NaN.
  const sets = Math.max(...parts.map((p) => p.readbacks.length));
  const readbacks: ReadbackSet[] = [];
  for (let k = 0; k < sets; k++) {
    const ageS = new Float32Array(n).fill(Number.NaN);
    const valuesUs = new Float32Array(n).fill(Number.NaN);
    let o = 0;
    let averages = 1;
    for (const p of parts) {
      const s = p.readbacks[k];
      if (s) {
        ageS.set(s.ageS, o);
        valuesUs.set(s.valuesUs, o);
        averages = s.averages;
      }
      o += p.targetUs.length;
    }
    readbacks.push({ ageS, valuesUs, averages });
  }
  const mvm = parts.flatMap((p) => p.mvm ?? []);
  const placed = parts.every((p) => p.places && p.places.rows === first.places?.rows && p.places.cols === first.places.cols);
  const places: CellPlaces | undefined =
    placed && first.places
      ? {
          rows: first.places.rows,
          cols: first.places.cols,
          array: cat((k) => new Uint16Array(k), (p) => (p.places as CellPlaces).array),
          row: cat((k) => new Uint16Array(k), (p) => (p.places as CellPlaces).row),
          col: cat((k) => new Uint16Array(k), (p) => (p.places as CellPlaces).col),
        }
      : undefined;
  let offset = 0;
  let repeated: RepeatedReads | undefined;
  for (const p of parts) {
    if (p.repeatedReads && !repeated) repeated = { ...p.repeatedReads, cells: p.repeatedReads.cells.map((c) => c + offset) };
    offset += p.targetUs.length;
  }
  return {
    source: {
      runs: parts.flatMap((p) => p.source.runs),
      // Several chips make a family profile: no chip id, so no chip's measured ADC trims in it.
      chipId: parts.every((p) => p.source.chipId === first.source.chipId) ? first.source.chipId : null,
      firmware: first.source.firmware,
      firmwareName: first.source.firmwareName,
      dates: parts.flatMap((p) => p.source.dates),
      description: parts.map((p) => p.source.description).join('; '),
    },
    gMinUs: first.gMinUs,
    gMaxUs: first.gMaxUs,
    toleranceUs: first.toleranceUs,
    targetUs: cat((k) => new Float32Array(k), (p) => p.targetUs),
    status: cat((k) => new Uint8Array(k), (p) => p.status),
    finalUs: cat((k) => new Float32Array(k), (p) => p.finalUs),
    pulses: cat((k) => new Uint16Array(k), (p) => p.pulses),
    readbacks,
    part: partsOf(parts, n),
    ...(repeated ? { repeatedReads: repeated } : {}),
    ...(mvm.length > 0 ? { mvm } : {}),
    ...(places ? { places } : {}),
  };
}

/**
 * How much older than the end of programming each cell is: blocks were programmed one after another
 * in block order over `programmingS`, so at an even rate per cell a cell of a block is older by the
 * programming time of the cells after its block's middle. (Time points count from the end of
 * programming; taking every cell as programmed then would make early blocks look young.)
 */
function programmingAgeOffsets(blockOfCell: readonly number[], programmingS: number): Float32Array {
  const out = new Float32Array(blockOfCell.length);
  if (!(programmingS > 0) || blockOfCell.length === 0) return out;
  const sizes = new Map<number, number>();
  for (const b of blockOfCell) sizes.set(b, (sizes.get(b) ?? 0) + 1);
  const middle = new Map<number, number>();
  let before = 0;
  for (const b of [...sizes.keys()].sort((x, y) => x - y)) {
    const size = sizes.get(b) as number;
    middle.set(b, (before + size / 2) / blockOfCell.length);
    before += size;
  }
  blockOfCell.forEach((b, i) => (out[i] = programmingS * (1 - (middle.get(b) as number))));
  return out;
}

/**
 * One campaign run from the store: cells with their PROGRAM results, read-backs at every recorded
 * time point (age = the time point's actual seconds after the end of programming, plus how much
 * earlier than that end the cell's block was programmed).
 */
export function loadRunDataset(db: Db, runId: number): CalibrationDataset {
  const runs = new BenchRuns(db);
  const run = runs.require(runId);
  const cellRows = db.prepare('SELECT array_no, row_no, col_no, target_us, final_us, device_status, pulses, block FROM cells WHERE run_id = ? ORDER BY array_no, row_no, col_no').raw(true).all(runId) as Array<
    [number, number, number, number, number | null, number | null, number | null, number]
  >;
  if (cellRows.length === 0) {
    throw new InputError('INVALID_INPUT', `run ${runId} recorded no programmed cells (mode ${run.mode}): calibrate from runs that programmed the chip`, { where: `run ${runId}` });
  }
  const n = cellRows.length;
  const key = new Map<string, number>();
  const targetUs = new Float32Array(n);
  const finalUs = new Float32Array(n);
  const status = new Uint8Array(n);
  const pulses = new Uint16Array(n);
  cellRows.forEach((r, i) => {
    key.set(`${r[0]}:${r[1]}:${r[2]}`, i);
    targetUs[i] = r[3];
    finalUs[i] = r[4] ?? Number.NaN;
    status[i] = r[5] ?? 255;
    pulses[i] = r[6] ?? 65535;
  });
  const olderBy = programmingAgeOffsets(cellRows.map((r) => r[7]), run.timeReference?.programmingS ?? (run.parentRunId !== null ? runs.get(run.parentRunId)?.timeReference?.programmingS : undefined) ?? 0);
  const points = db.prepare('SELECT point, nominal_s, actual_s FROM time_points WHERE run_id = ? ORDER BY point').all(runId) as Array<{ point: number; nominal_s: number; actual_s: number | null }>;
  const config = (run.config as { programming?: { readAverages?: number } }).programming;
  const device = db.prepare('SELECT device_json FROM runs WHERE id = ?').get(runId) as { device_json: string | null };
  const deviceJson = device.device_json ? (JSON.parse(device.device_json) as { info?: { gMinUs?: number; gMaxUs?: number }; config?: { readAverages?: number; toleranceUs?: number } | null }) : undefined;
  const averages = config?.readAverages ?? deviceJson?.config?.readAverages ?? 1;
  const readStmt = db.prepare('SELECT array_no, row_no, col_no, g_us FROM readbacks WHERE run_id = ? AND point = ?').raw(true);
  const readbacks: ReadbackSet[] = [];
  for (const p of points) {
    const valuesUs = new Float32Array(n).fill(Number.NaN);
    for (const r of readStmt.iterate(runId, p.point) as Iterable<[number, number, number, number]>) {
      const i = key.get(`${r[0]}:${r[1]}:${r[2]}`);
      if (i !== undefined) valuesUs[i] = r[3];
    }
    const since = p.actual_s ?? p.nominal_s;
    readbacks.push({ ageS: Float32Array.from(olderBy, (o) => since + o), averages, valuesUs });
  }
  const hw = db.prepare('SELECT hardware_json FROM runs WHERE id = ?').get(runId) as { hardware_json: string };
  const hardware = JSON.parse(hw.hardware_json) as { conductance: { minUs: number; maxUs: number }; array: { rows: number; cols: number } };
  return {
    source: {
      runs: [runId],
      chipId: run.chipId,
      firmware: run.firmwareVersion,
      firmwareName: run.firmwareName,
      dates: [run.createdAt, ...(run.endedAt ? [run.endedAt] : [])],
      description: `run ${runId} (${run.campaignName}, ${run.mode}, ${run.status}${run.exitStatus ? ` ${run.exitStatus}` : ''})`,
    },
    gMinUs: hardware.conductance.minUs,
    gMaxUs: hardware.conductance.maxUs,
    toleranceUs: (run.config as { programming?: { toleranceUs?: number } }).programming?.toleranceUs ?? deviceJson?.config?.toleranceUs ?? null,
    targetUs,
    status,
    finalUs,
    pulses,
    readbacks,
    places: {
      rows: hardware.array.rows,
      cols: hardware.array.cols,
      array: Uint16Array.from(cellRows, (r) => r[0]),
      row: Uint16Array.from(cellRows, (r) => r[1]),
      col: Uint16Array.from(cellRows, (r) => r[2]),
    },
  };
}
