import { z } from 'zod';
import { ByteReader, ByteWriter } from './bytes.js';
import { LinkError } from '../common/errors.js';
import { CELL_STATUS_NAMES, OUTCOME_NAMES, type CellStatusName, type OutcomeName, COUNTER_NAMES, type CounterName } from './protocol.js';

/**
 * Binary payload codecs, one encode/decode pair per payload. Layouts are the tables of
 * firmware-protocol/PROTOCOL.md; every decoder is bounds-checked (ByteReader) and rejects trailing
 * bytes, so it throws a PROTOCOL LinkError instead of reading garbage.
 */

// ---------------------------------------------------------------- HELLO

export interface HelloRequest {
  readonly protocolMajor: number;
  readonly protocolMinor: number;
  /** Largest payload the host accepts in replies. */
  readonly hostMaxPayload: number;
}

export function encodeHelloRequest(m: HelloRequest): Uint8Array {
  return new ByteWriter(4).u8(m.protocolMajor).u8(m.protocolMinor).u16(m.hostMaxPayload).done();
}
export function decodeHelloRequest(p: Uint8Array): HelloRequest {
  const r = new ByteReader(p, 'HELLO request');
  const m = { protocolMajor: r.u8('protocolMajor'), protocolMinor: r.u8('protocolMinor'), hostMaxPayload: r.u16('hostMaxPayload') };
  r.end();
  return m;
}

/** What a device says about itself in its HELLO reply. */
export interface DeviceInfo {
  readonly protocolMajor: number;
  readonly protocolMinor: number;
  /** Largest payload the device accepts and sends. */
  readonly maxPayload: number;
  /** Capability bits (see Capability). */
  readonly capabilities: number;
  /** Random per power-up; a new value means the device rebooted and lost volatile state. */
  readonly bootId: number;
  readonly firmwareVersion: { readonly major: number; readonly minor: number; readonly patch: number };
  readonly arrays: number;
  readonly rows: number;
  readonly cols: number;
  /** Programmable conductance levels between gMinUs and gMaxUs. */
  readonly levels: number;
  readonly gMinUs: number;
  readonly gMaxUs: number;
  readonly adcBits: number;
  readonly dacBits: number;
  /** Queued operations the device accepts at once. */
  readonly window: number;
  /** Device clock (ms since boot, plus any ADVANCE_CLOCK). */
  readonly clockMs: number;
  readonly firmwareName: string;
  readonly chipId: string;
}

export function encodeHelloReply(m: DeviceInfo): Uint8Array {
  const name = new TextEncoder().encode(m.firmwareName);
  const chip = new TextEncoder().encode(m.chipId);
  return new ByteWriter(44 + 2 + name.length + chip.length)
    .u8(m.protocolMajor)
    .u8(m.protocolMinor)
    .u16(m.maxPayload)
    .u32(m.capabilities)
    .u32(m.bootId)
    .u8(m.firmwareVersion.major)
    .u8(m.firmwareVersion.minor)
    .u16(m.firmwareVersion.patch)
    .u16(m.arrays)
    .u16(m.rows)
    .u16(m.cols)
    .u16(m.levels)
    .f32(m.gMinUs)
    .f32(m.gMaxUs)
    .u8(m.adcBits)
    .u8(m.dacBits)
    .u8(m.window)
    .u8(0)
    .u64(m.clockMs)
    .shortString(m.firmwareName)
    .shortString(m.chipId)
    .done();
}

export function decodeHelloReply(p: Uint8Array): DeviceInfo {
  const r = new ByteReader(p, 'HELLO reply');
  const m: DeviceInfo = {
    protocolMajor: r.u8('protocolMajor'),
    protocolMinor: r.u8('protocolMinor'),
    maxPayload: r.u16('maxPayload'),
    capabilities: r.u32('capabilities'),
    bootId: r.u32('bootId'),
    firmwareVersion: { major: r.u8('fwMajor'), minor: r.u8('fwMinor'), patch: r.u16('fwPatch') },
    arrays: r.u16('arrays'),
    rows: r.u16('rows'),
    cols: r.u16('cols'),
    levels: r.u16('levels'),
    gMinUs: r.f32('gMinUs'),
    gMaxUs: r.f32('gMaxUs'),
    adcBits: r.u8('adcBits'),
    dacBits: r.u8('dacBits'),
    window: r.u8('window'),
    clockMs: (r.u8('reserved'), r.u64('clockMs')),
    firmwareName: r.shortString('firmwareName'),
    chipId: r.shortString('chipId'),
  };
  r.end();
  return m;
}

// ---------------------------------------------------------------- config and safe limits

/**
 * Pulse and read settings. Both sides check them against SAFE_LIMITS: the host before sending
 * (InputError naming the field), the device on receipt (ERROR LIMIT with the field index as arg).
 */
export interface DeviceConfig {
  /** SET pulse amplitude (V). */
  readonly vSetV: number;
  /** RESET pulse amplitude (V). */
  readonly vResetV: number;
  /** Read voltage (V). */
  readonly vReadV: number;
  readonly pulseWidthNs: number;
  /** Reads averaged per READ_CELLS value when the request says 0. */
  readonly readAverages: number;
  /** Default pulses per cell per verify pass in PROGRAM. */
  readonly maxPulses: number;
  /** Default verify passes over a PROGRAM block. */
  readonly maxIterations: number;
  /** Default write-verify tolerance band (uS). */
  readonly toleranceUs: number;
}

/** Field order = wire order = the index reported by ERROR LIMIT. */
export const CONFIG_FIELDS = ['vSetV', 'vResetV', 'vReadV', 'pulseWidthNs', 'readAverages', 'maxPulses', 'maxIterations', 'toleranceUs'] as const;
export type ConfigField = (typeof CONFIG_FIELDS)[number];

/** Inclusive safe limits. A device may be stricter, never looser. */
export const SAFE_LIMITS: Readonly<Record<ConfigField, readonly [number, number]>> = {
  vSetV: [0.3, 3.0],
  vResetV: [0.3, 3.5],
  vReadV: [0.05, 0.3],
  pulseWidthNs: [10, 100_000],
  readAverages: [1, 256],
  maxPulses: [1, 1000],
  maxIterations: [1, 100],
  toleranceUs: [0.01, 50],
};

const INT_FIELDS: ReadonlySet<ConfigField> = new Set(['pulseWidthNs', 'readAverages', 'maxPulses', 'maxIterations']);

const limited = (field: ConfigField) => {
  const [lo, hi] = SAFE_LIMITS[field];
  const base = INT_FIELDS.has(field) ? z.int() : z.number();
  return base.min(lo, `below the safe limit ${lo}`).max(hi, `above the safe limit ${hi}`);
};

/** The config as a user writes it (CLI, JSON file); host-side validation. */
export const DeviceConfigSchema = z.strictObject({
  vSetV: limited('vSetV'),
  vResetV: limited('vResetV'),
  vReadV: limited('vReadV'),
  pulseWidthNs: limited('pulseWidthNs'),
  readAverages: limited('readAverages'),
  maxPulses: limited('maxPulses'),
  maxIterations: limited('maxIterations'),
  toleranceUs: limited('toleranceUs'),
});

/** Relative slack of the device-side f32 limit check (PROTOCOL.md 3.2). */
export const F32_LIMIT_SLACK = 1e-6;

/**
 * Device-side check of one received value against SAFE_LIMITS: integer fields exactly, f32 fields
 * with a slack of 1e-6 of the limit itself (lo * (1 - 1e-6) .. hi * (1 + 1e-6)), so a limit that
 * went through f32 rounding (at most 6e-8 relative) is accepted and nothing looser is.
 */
export function withinSafeLimit(field: ConfigField, v: number): boolean {
  const [lo, hi] = SAFE_LIMITS[field];
  if (!Number.isFinite(v)) return false;
  if (INT_FIELDS.has(field)) return Number.isInteger(v) && v >= lo && v <= hi;
  return v >= lo - F32_LIMIT_SLACK * Math.abs(lo) && v <= hi + F32_LIMIT_SLACK * Math.abs(hi);
}

/** Index of the first field outside SAFE_LIMITS (device side), or -1. */
export function firstConfigViolation(c: DeviceConfig): number {
  for (let i = 0; i < CONFIG_FIELDS.length; i++) {
    if (!withinSafeLimit(CONFIG_FIELDS[i] as ConfigField, c[CONFIG_FIELDS[i] as ConfigField])) return i;
  }
  return -1;
}

export const CONFIG_SIZE = 28;

export function encodeConfig(c: DeviceConfig): Uint8Array {
  return new ByteWriter(CONFIG_SIZE)
    .f32(c.vSetV)
    .f32(c.vResetV)
    .f32(c.vReadV)
    .u32(c.pulseWidthNs)
    .u16(c.readAverages)
    .u16(c.maxPulses)
    .u16(c.maxIterations)
    .u16(0)
    .f32(c.toleranceUs)
    .done();
}

export function decodeConfig(p: Uint8Array, what = 'config'): DeviceConfig {
  const r = new ByteReader(p, what);
  const vSetV = r.f32('vSetV');
  const vResetV = r.f32('vResetV');
  const vReadV = r.f32('vReadV');
  const pulseWidthNs = r.u32('pulseWidthNs');
  const readAverages = r.u16('readAverages');
  const maxPulses = r.u16('maxPulses');
  const maxIterations = r.u16('maxIterations');
  r.u16('reserved');
  const toleranceUs = r.f32('toleranceUs');
  r.end();
  return { vSetV, vResetV, vReadV, pulseWidthNs, readAverages, maxPulses, maxIterations, toleranceUs };
}

// ---------------------------------------------------------------- regions

/** A rectangle of cells in one array. */
export interface Region {
  readonly array: number;
  readonly row: number;
  readonly col: number;
  readonly rows: number;
  readonly cols: number;
}

function writeRegion(w: ByteWriter, g: Region): void {
  w.u16(g.array).u16(g.row).u16(g.col).u16(g.rows).u16(g.cols);
}
function readRegion(r: ByteReader): Region {
  return { array: r.u16('array'), row: r.u16('row'), col: r.u16('col'), rows: r.u16('rows'), cols: r.u16('cols') };
}

// ---------------------------------------------------------------- PROGRAM

export const PROGRAM_REQUEST_HEADER = 20;
export const PROGRAM_REPLY_HEADER = 8;
export const PROGRAM_CELL_RESULT = 8;

export interface ProgramRequest {
  readonly region: Region;
  /** Per-cell pulse budget; 0 = the config's maxPulses. */
  readonly maxPulses: number;
  /** Per-cell verify-iteration budget; 0 = the config's maxIterations. */
  readonly maxIterations: number;
  /** Tolerance band (uS); 0 = the config's toleranceUs. */
  readonly toleranceUs: number;
  /** rows * cols target conductances (uS), row-major. */
  readonly targetsUs: Float32Array;
}

/** Cells per PROGRAM block that fit a payload limit, in the request and in the reply. */
export function maxProgramCells(maxPayload: number): number {
  return Math.min(Math.floor((maxPayload - PROGRAM_REQUEST_HEADER) / 4), Math.floor((maxPayload - PROGRAM_REPLY_HEADER) / PROGRAM_CELL_RESULT));
}

export function encodeProgramRequest(m: ProgramRequest): Uint8Array {
  const n = m.region.rows * m.region.cols;
  if (m.targetsUs.length !== n) throw new RangeError(`PROGRAM: ${m.targetsUs.length} targets for ${n} cells`);
  const w = new ByteWriter(PROGRAM_REQUEST_HEADER + 4 * n);
  writeRegion(w, m.region);
  w.u16(m.maxPulses).u16(m.maxIterations).u16(0).f32(m.toleranceUs);
  for (let i = 0; i < n; i++) w.f32(m.targetsUs[i] as number);
  return w.done();
}

export function decodeProgramRequest(p: Uint8Array): ProgramRequest {
  const r = new ByteReader(p, 'PROGRAM request');
  const region = readRegion(r);
  const maxPulses = r.u16('maxPulses');
  const maxIterations = r.u16('maxIterations');
  r.u16('reserved');
  const toleranceUs = r.f32('toleranceUs');
  const targetsUs = r.f32Array(region.rows * region.cols, 'targets');
  r.end();
  return { region, maxPulses, maxIterations, toleranceUs, targetsUs };
}

export interface ProgramReply {
  readonly outcome: OutcomeName;
  readonly totalPulses: number;
  /** Final conductance per cell (uS), row-major. */
  readonly finalUs: Float32Array;
  readonly pulses: Uint16Array;
  /** CellStatus code per cell. */
  readonly status: Uint8Array;
}

export function encodeProgramReply(m: ProgramReply): Uint8Array {
  const n = m.finalUs.length;
  const w = new ByteWriter(PROGRAM_REPLY_HEADER + PROGRAM_CELL_RESULT * n);
  w.u16(n).u8(OUTCOME_NAMES.indexOf(m.outcome)).u8(0).u32(m.totalPulses);
  for (let i = 0; i < n; i++) w.f32(m.finalUs[i] as number).u16(m.pulses[i] as number).u8(m.status[i] as number).u8(0);
  return w.done();
}

export function decodeProgramReply(p: Uint8Array): ProgramReply {
  const r = new ByteReader(p, 'PROGRAM reply');
  const n = r.u16('count');
  const oc = r.u8('outcome');
  const outcome = OUTCOME_NAMES[oc];
  if (outcome === undefined) throw new LinkError('PROTOCOL', `unknown outcome ${oc}`, { where: 'PROGRAM reply' });
  r.u8('reserved');
  const totalPulses = r.u32('totalPulses');
  const finalUs = new Float32Array(n);
  const pulses = new Uint16Array(n);
  const status = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    finalUs[i] = r.f32('finalUs');
    pulses[i] = r.u16('pulses');
    const s = r.u8('status');
    if (s >= CELL_STATUS_NAMES.length) throw new LinkError('PROTOCOL', `unknown cell status ${s}`, { where: 'PROGRAM reply' });
    status[i] = s;
    r.u8('reserved');
  }
  r.end();
  return { outcome, totalPulses, finalUs, pulses, status };
}

export function cellStatusName(code: number): CellStatusName {
  return CELL_STATUS_NAMES[code] ?? 'STUCK';
}

// ---------------------------------------------------------------- READ_CELLS

export interface ReadCellsRequest {
  readonly region: Region;
  /** Reads averaged per cell; 0 = the config's readAverages. */
  readonly averages: number;
}

export function maxReadCells(maxPayload: number): number {
  return Math.floor((maxPayload - 4) / 4);
}

export function encodeReadCellsRequest(m: ReadCellsRequest): Uint8Array {
  const w = new ByteWriter(12);
  writeRegion(w, m.region);
  return w.u16(m.averages).done();
}
export function decodeReadCellsRequest(p: Uint8Array): ReadCellsRequest {
  const r = new ByteReader(p, 'READ_CELLS request');
  const m = { region: readRegion(r), averages: r.u16('averages') };
  r.end();
  return m;
}

export interface ReadCellsReply {
  readonly averages: number;
  readonly valuesUs: Float32Array;
}
export function encodeReadCellsReply(m: ReadCellsReply): Uint8Array {
  const n = m.valuesUs.length;
  const w = new ByteWriter(4 + 4 * n).u16(n).u16(m.averages);
  for (let i = 0; i < n; i++) w.f32(m.valuesUs[i] as number);
  return w.done();
}
export function decodeReadCellsReply(p: Uint8Array): ReadCellsReply {
  const r = new ByteReader(p, 'READ_CELLS reply');
  const n = r.u16('count');
  const averages = r.u16('averages');
  const valuesUs = r.f32Array(n, 'values');
  r.end();
  return { averages, valuesUs };
}

// ---------------------------------------------------------------- MVM

export interface MvmRequest {
  /** Rows receive the inputs; every column of the region is digitised. */
  readonly region: Region;
  /** Bits per input element, applied one bit plane at a time (LSB first). */
  readonly inputBits: number;
  /** rows unsigned inputs, each < 2^inputBits. */
  readonly inputs: Uint32Array;
}

/** Bytes of one bit plane for `rows` inputs. */
export function planeBytes(rows: number): number {
  return Math.ceil(rows / 8);
}

export function encodeMvmRequest(m: MvmRequest): Uint8Array {
  const { rows } = m.region;
  if (m.inputs.length !== rows) throw new RangeError(`MVM: ${m.inputs.length} inputs for ${rows} rows`);
  if (m.inputBits < 1 || m.inputBits > 16) throw new RangeError('MVM: inputBits must be 1..16');
  const pb = planeBytes(rows);
  const w = new ByteWriter(12 + m.inputBits * pb);
  writeRegion(w, m.region);
  w.u8(m.inputBits).u8(0);
  const planes = new Uint8Array(m.inputBits * pb);
  for (let i = 0; i < rows; i++) {
    const v = m.inputs[i] as number;
    if (v >= 2 ** m.inputBits) throw new RangeError(`MVM: input ${i} = ${v} needs more than ${m.inputBits} bits`);
    for (let b = 0; b < m.inputBits; b++) {
      if ((v >>> b) & 1) planes[b * pb + (i >>> 3)] = (planes[b * pb + (i >>> 3)] as number) | (1 << (i & 7));
    }
  }
  return w.raw(planes).done();
}

export function decodeMvmRequest(p: Uint8Array): MvmRequest {
  const r = new ByteReader(p, 'MVM request');
  const region = readRegion(r);
  const inputBits = r.u8('inputBits');
  r.u8('flags');
  if (inputBits < 1 || inputBits > 16) throw new LinkError('PROTOCOL', `inputBits ${inputBits} outside 1..16`, { where: 'MVM request' });
  const pb = planeBytes(region.rows);
  const planes = r.raw(inputBits * pb, 'bit planes');
  r.end();
  const inputs = new Uint32Array(region.rows);
  for (let b = 0; b < inputBits; b++) {
    for (let i = 0; i < region.rows; i++) {
      if (((planes[b * pb + (i >>> 3)] as number) >>> (i & 7)) & 1) inputs[i] = (inputs[i] as number) | (1 << b);
    }
  }
  return { region, inputBits, inputs };
}

export interface MvmReply {
  readonly adcBits: number;
  /** planes x cols ADC codes, plane-major (plane 0 = LSB of the inputs). */
  readonly planes: number;
  readonly cols: number;
  readonly codes: Uint16Array;
}
export function encodeMvmReply(m: MvmReply): Uint8Array {
  const w = new ByteWriter(4 + 2 * m.codes.length).u16(m.cols).u8(m.planes).u8(m.adcBits);
  if (m.codes.length !== m.planes * m.cols) throw new RangeError('MVM reply: codes length');
  for (let i = 0; i < m.codes.length; i++) w.u16(m.codes[i] as number);
  return w.done();
}
export function decodeMvmReply(p: Uint8Array): MvmReply {
  const r = new ByteReader(p, 'MVM reply');
  const cols = r.u16('cols');
  const planes = r.u8('planes');
  const adcBits = r.u8('adcBits');
  const codes = new Uint16Array(planes * cols);
  for (let i = 0; i < codes.length; i++) codes[i] = r.u16('codes');
  r.end();
  return { cols, planes, adcBits, codes };
}

// ---------------------------------------------------------------- LOAD_NETWORK (chunked JSON)

export const LOAD_NETWORK_HEADER = 12;

export interface LoadNetworkChunk {
  /** CRC-32 of the whole UTF-8 document; also the network's id for INFER. */
  readonly networkId: number;
  readonly totalLength: number;
  readonly offset: number;
  readonly data: Uint8Array;
}
export function encodeLoadNetworkChunk(m: LoadNetworkChunk): Uint8Array {
  return new ByteWriter(LOAD_NETWORK_HEADER + m.data.length).u32(m.networkId).u32(m.totalLength).u32(m.offset).raw(m.data).done();
}
export function decodeLoadNetworkChunk(p: Uint8Array): LoadNetworkChunk {
  const r = new ByteReader(p, 'LOAD_NETWORK request');
  return { networkId: r.u32('networkId'), totalLength: r.u32('totalLength'), offset: r.u32('offset'), data: r.rest() };
}

export interface LoadNetworkReply {
  /** Bytes of the document received so far. */
  readonly received: number;
  /** True once the whole document arrived, matched its CRC and validated. */
  readonly complete: boolean;
  /** Layers in the loaded network (0 until complete). */
  readonly layers: number;
}
export function encodeLoadNetworkReply(m: LoadNetworkReply): Uint8Array {
  return new ByteWriter(8).u32(m.received).u8(m.complete ? 1 : 0).u8(0).u16(m.layers).done();
}
export function decodeLoadNetworkReply(p: Uint8Array): LoadNetworkReply {
  const r = new ByteReader(p, 'LOAD_NETWORK reply');
  const received = r.u32('received');
  const complete = r.u8('complete') === 1;
  r.u8('reserved');
  const layers = r.u16('layers');
  r.end();
  return { received, complete, layers };
}

// ---------------------------------------------------------------- INFER

export const INFER_REQUEST_HEADER = 14;
export type ImageDtype = 'u8' | 'f32';

export interface InferRequest {
  readonly networkId: number;
  readonly count: number;
  /** One image's [height, width, channels]; must match the loaded network's input. */
  readonly shape: readonly [number, number, number];
  /** count * h * w * c values, NHWC; u8 (0..255) or f32. */
  readonly images: Uint8Array | Float32Array;
}
export function encodeInferRequest(m: InferRequest): Uint8Array {
  const [h, w, c] = m.shape;
  const n = m.count * h * w * c;
  if (m.images.length !== n) throw new RangeError(`INFER: ${m.images.length} values for ${m.count} images of ${h}x${w}x${c}`);
  const f32 = m.images instanceof Float32Array;
  const wr = new ByteWriter(INFER_REQUEST_HEADER + n * (f32 ? 4 : 1))
    .u32(m.networkId)
    .u16(m.count)
    .u8(f32 ? 1 : 0)
    .u8(0)
    .u16(h)
    .u16(w)
    .u16(c);
  if (f32) for (let i = 0; i < n; i++) wr.f32(m.images[i] as number);
  else wr.raw(m.images as Uint8Array);
  return wr.done();
}
export function decodeInferRequest(p: Uint8Array): InferRequest {
  const r = new ByteReader(p, 'INFER request');
  const networkId = r.u32('networkId');
  const count = r.u16('count');
  const dtype = r.u8('dtype');
  r.u8('reserved');
  const shape = [r.u16('height'), r.u16('width'), r.u16('channels')] as const;
  const n = count * shape[0] * shape[1] * shape[2];
  let images: Uint8Array | Float32Array;
  if (dtype === 0) images = r.raw(n, 'images');
  else if (dtype === 1) images = r.f32Array(n, 'images');
  else throw new LinkError('PROTOCOL', `unknown image dtype ${dtype}`, { where: 'INFER request' });
  r.end();
  return { networkId, count, shape: [shape[0], shape[1], shape[2]], images };
}

export interface InferReply {
  readonly count: number;
  readonly classes: number;
  /** count x classes logits, image-major. */
  readonly logits: Float32Array;
}
export function encodeInferReply(m: InferReply): Uint8Array {
  const w = new ByteWriter(4 + 4 * m.logits.length).u16(m.count).u16(m.classes);
  for (let i = 0; i < m.logits.length; i++) w.f32(m.logits[i] as number);
  return w.done();
}
export function decodeInferReply(p: Uint8Array): InferReply {
  const r = new ByteReader(p, 'INFER reply');
  const count = r.u16('count');
  const classes = r.u16('classes');
  const logits = r.f32Array(count * classes, 'logits');
  r.end();
  return { count, classes, logits };
}

// ---------------------------------------------------------------- counters and events

export type DeviceCounters = Partial<Record<CounterName, number>> & { readonly extra: readonly number[] };

export function encodeCounters(values: readonly number[]): Uint8Array {
  const w = new ByteWriter(4 + 4 * values.length).u16(values.length).u16(0);
  for (const v of values) w.u32(Math.min(v, 0xffffffff));
  return w.done();
}
export function decodeCounters(p: Uint8Array): DeviceCounters {
  const r = new ByteReader(p, 'GET_COUNTERS reply');
  const n = r.u16('count');
  r.u16('reserved');
  const out: Record<string, number> = {};
  const extra: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = r.u32('counter');
    const name = COUNTER_NAMES[i];
    if (name) out[name] = v;
    else extra.push(v);
  }
  r.end();
  return { ...out, extra };
}

export interface EventsRequest {
  readonly sinceSeq: number;
  readonly max: number;
}
export function encodeEventsRequest(m: EventsRequest): Uint8Array {
  return new ByteWriter(8).u32(m.sinceSeq).u16(m.max).u16(0).done();
}
export function decodeEventsRequest(p: Uint8Array): EventsRequest {
  const r = new ByteReader(p, 'GET_EVENTS request');
  const m = { sinceSeq: r.u32('sinceSeq'), max: r.u16('max') };
  r.u16('reserved');
  r.end();
  return m;
}

export interface DeviceEvent {
  readonly seq: number;
  readonly code: number;
  readonly clockMs: number;
  readonly arg0: number;
  readonly arg1: number;
}
export const EVENT_SIZE = 24;
export interface EventsReply {
  /** Sequence number to ask from next time. */
  readonly nextSeq: number;
  /** Events older than the log keeps that were lost since sinceSeq. */
  readonly lost: number;
  readonly events: readonly DeviceEvent[];
}
export function encodeEventsReply(m: EventsReply): Uint8Array {
  const w = new ByteWriter(8 + EVENT_SIZE * m.events.length).u32(m.nextSeq).u16(m.events.length).u16(Math.min(m.lost, 0xffff));
  for (const e of m.events) w.u32(e.seq).u16(e.code).u16(0).u64(e.clockMs).u32(e.arg0).u32(e.arg1);
  return w.done();
}
export function decodeEventsReply(p: Uint8Array): EventsReply {
  const r = new ByteReader(p, 'GET_EVENTS reply');
  const nextSeq = r.u32('nextSeq');
  const n = r.u16('count');
  const lost = r.u16('lost');
  const events: DeviceEvent[] = [];
  for (let i = 0; i < n; i++) {
    const seq = r.u32('seq');
    const code = r.u16('code');
    r.u16('reserved');
    events.push({ seq, code, clockMs: r.u64('clockMs'), arg0: r.u32('arg0'), arg1: r.u32('arg1') });
  }
  r.end();
  return { nextSeq, lost, events };
}

// ---------------------------------------------------------------- small control payloads

export function encodeU8(v: number): Uint8Array {
  return new ByteWriter(1).u8(v).done();
}
export function encodeU16(v: number): Uint8Array {
  return new ByteWriter(2).u16(v).done();
}
export function encodeU32(v: number): Uint8Array {
  return new ByteWriter(4).u32(v).done();
}
export function encodeU64(v: number): Uint8Array {
  return new ByteWriter(8).u64(v).done();
}
export function decodeU8(p: Uint8Array, what: string): number {
  const r = new ByteReader(p, what);
  const v = r.u8('value');
  r.end();
  return v;
}
export function decodeU16(p: Uint8Array, what: string): number {
  const r = new ByteReader(p, what);
  const v = r.u16('value');
  r.end();
  return v;
}
export function decodeU32(p: Uint8Array, what: string): number {
  const r = new ByteReader(p, what);
  const v = r.u32('value');
  r.end();
  return v;
}
export function decodeU64(p: Uint8Array, what: string): number {
  const r = new ByteReader(p, what);
  const v = r.u64('value');
  r.end();
  return v;
}

/** CANCEL reply values. */
export const CancelResult = { CANCELLING: 0, NOT_RUNNING: 1, DEQUEUED: 2 } as const;

export interface Progress {
  readonly done: number;
  readonly total: number;
}
export function encodeProgress(m: Progress): Uint8Array {
  return new ByteWriter(8).u32(m.done).u32(m.total).done();
}
export function decodeProgress(p: Uint8Array): Progress {
  const r = new ByteReader(p, 'progress');
  const m = { done: r.u32('done'), total: r.u32('total') };
  r.end();
  return m;
}

export interface ErrorBody {
  readonly code: number;
  /** Code-specific: field index for LIMIT, the device's major version for BAD_VERSION, ... */
  readonly arg: number;
  readonly message: string;
}
export const MAX_ERROR_MESSAGE = 200;
export function encodeErrorBody(m: ErrorBody): Uint8Array {
  let msg = new TextEncoder().encode(m.message);
  if (msg.length > MAX_ERROR_MESSAGE) msg = msg.subarray(0, MAX_ERROR_MESSAGE);
  return new ByteWriter(4 + msg.length).u8(m.code).u8(0).u16(m.arg).raw(msg).done();
}
export function decodeErrorBody(p: Uint8Array): ErrorBody {
  const r = new ByteReader(p, 'error reply');
  const code = r.u8('code');
  r.u8('reserved');
  const arg = r.u16('arg');
  const message = new TextDecoder().decode(r.rest());
  return { code, arg, message };
}
