/**
 * Builds the golden frames of firmware-protocol/vectors/ from hand-chosen messages. The committed
 * files are the reference; vectors.test.ts checks they equal this output (run with
 * UPDATE_VECTORS=1 to rewrite them after a deliberate protocol change) and decodes every one.
 */
import { cobsEncode } from '../../../src/link/cobs.js';
import { crc32 } from '../../../src/link/crc32.js';
import { buildRawFrame } from '../../../src/link/frame.js';
import * as M from '../../../src/link/messages.js';
import { DEFAULT_DEVICE_CONFIG } from '../../../src/link/device/endpoint.js';
import { Capability, ErrCode, EventCode, Flag, MsgType, msgTypeName } from '../../../src/link/protocol.js';
import { NETWORK_PROGRAM_FORMAT, type NetworkProgramInput } from '../../../src/link/network-program.js';

export type Expect = 'ok' | 'crc' | 'short' | 'length' | 'cobs' | 'flags' | 'version' | 'oversize';

export interface Vector {
  readonly name: string;
  readonly direction: 'host->device' | 'device->host';
  readonly description: string;
  readonly expect: Expect;
  /**
   * What the receiver does with a frame the codec accepts when that is not "decode and act":
   * an error code the device answers with (UNKNOWN_TYPE, BAD_VERSION, BAD_LENGTH), IGNORED (the
   * device counts badHeader and sends nothing), or HOST_REJECTS (a reply the host refuses to decode).
   */
  readonly dispatch?: string;
  readonly wire_hex: string;
  readonly raw_hex: string;
  readonly header?: { version: number; flags: number; type: number; type_name: string; seq: number; request_id: number; payload_length: number };
  readonly payload_hex?: string;
  readonly meaning?: unknown;
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** JSON view of a decoded payload: typed arrays become plain arrays, floats rounded to f32 text. */
export function jsonable(v: unknown): unknown {
  if (v instanceof Float32Array) return Array.from(v, (x) => Number(x.toPrecision(7)));
  if (ArrayBuffer.isView(v)) return Array.from(v as Uint8Array);
  if (Array.isArray(v)) return v.map(jsonable);
  if (typeof v === 'number' && !Number.isInteger(v)) return Number(v.toPrecision(7));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonable(x)]));
  return v;
}

interface Msg {
  name: string;
  description: string;
  type: number;
  flags: number;
  requestId: number;
  seq: number;
  payload: Uint8Array;
  meaning: unknown;
  version?: number;
  dispatch?: string;
  /** Overrides the direction implied by the RESPONSE flag (a host frame that wrongly sets it). */
  direction?: Vector['direction'];
}

const region = { array: 0, row: 4, col: 8, rows: 2, cols: 2 };

export const VECTOR_INFO = {
  protocolMajor: 1,
  protocolMinor: 0,
  maxPayload: 4096,
  capabilities: Capability.PROGRAM | Capability.READ_CELLS | Capability.MVM | Capability.NETWORK | Capability.EVENTS | Capability.CANCEL,
  bootId: 0x1badb002,
  firmwareVersion: { major: 1, minor: 2, patch: 3 },
  arrays: 16,
  rows: 128,
  cols: 128,
  levels: 16,
  gMinUs: 2,
  gMaxUs: 40,
  adcBits: 8,
  dacBits: 1,
  window: 4,
  clockMs: 123456,
  firmwareName: 'rram-fw',
  chipId: 'CIM-A1-0042',
} satisfies M.DeviceInfo;

export const VECTOR_NETWORK: NetworkProgramInput = {
  format: NETWORK_PROGRAM_FORMAT,
  name: 'tiny',
  input: [1, 1, 2],
  classes: 2,
  inputBits: 4,
  conductance: { minUs: 2, maxUs: 40 },
  layers: [
    {
      op: 'dense',
      input: [1, 1, 2],
      output: [1, 1, 2],
      activation: 'none',
      matrices: [
        {
          name: 'dense',
          rows: 2,
          cols: 2,
          weightBits: 4,
          slices: 1,
          bitsPerSlice: 4,
          differential: true,
          weightScale: 0.5,
          bias: [0.25, -0.25],
          input: { scale: 0.0625, qmin: 0, qmax: 15 },
          placements: [
            { array: 0, row: 0, col: 0, rows: 2, cols: 2, srcRow: 0, srcCol: 0, slice: 0, polarity: 'pos' },
            { array: 0, row: 0, col: 2, rows: 2, cols: 2, srcRow: 0, srcCol: 0, slice: 0, polarity: 'neg' },
          ],
        },
      ],
    },
  ],
};

function messages(): Msg[] {
  const R = Flag.RESPONSE;
  const out: Msg[] = [];
  const add = (m: Omit<Msg, 'seq'> & { seq?: number }): void => {
    out.push({ seq: out.length & 0xff, ...m });
  };
  const hello = { protocolMajor: 1, protocolMinor: 0, hostMaxPayload: 65535 };
  add({ name: 'hello_request', description: 'HELLO: host speaks 1.0 and accepts replies up to 65535 bytes', type: MsgType.HELLO, flags: 0, requestId: 1, payload: M.encodeHelloRequest(hello), meaning: hello });
  add({ name: 'hello_reply', description: 'HELLO reply: geometry, conductance range, capabilities, boot id', type: MsgType.HELLO, flags: R, requestId: 1, payload: M.encodeHelloReply(VECTOR_INFO), meaning: VECTOR_INFO });
  const ping = new Uint8Array([1, 2, 3, 4]);
  add({ name: 'ping_request', description: 'PING with 4 echo bytes', type: MsgType.PING, flags: 0, requestId: 2, payload: ping, meaning: { echo: [1, 2, 3, 4] } });
  add({ name: 'ping_reply', description: 'PING reply echoes the bytes', type: MsgType.PING, flags: R, requestId: 2, payload: ping, meaning: { echo: [1, 2, 3, 4] } });
  const long = new Uint8Array(300).fill(0x55);
  add({ name: 'ping_request_long', description: 'PING with 300 non-zero bytes: exercises the COBS 0xFF block code', type: MsgType.PING, flags: 0, requestId: 3, payload: long, meaning: { echo_length: 300, echo_byte: 0x55 } });
  add({ name: 'get_config_request', description: 'GET_CONFIG (empty payload)', type: MsgType.GET_CONFIG, flags: 0, requestId: 4, payload: new Uint8Array(0), meaning: {} });
  add({ name: 'get_config_reply', description: 'GET_CONFIG reply: the 28-byte config record', type: MsgType.GET_CONFIG, flags: R, requestId: 4, payload: M.encodeConfig(DEFAULT_DEVICE_CONFIG), meaning: DEFAULT_DEVICE_CONFIG });
  const cfg = { ...DEFAULT_DEVICE_CONFIG, vSetV: 1.5, maxPulses: 50 };
  add({ name: 'set_config_request', description: 'SET_CONFIG: SET pulse 1.5 V, 50 pulses per cell', type: MsgType.SET_CONFIG, flags: 0, requestId: 5, payload: M.encodeConfig(cfg), meaning: cfg });
  add({ name: 'set_config_reply', description: 'SET_CONFIG reply: the applied config', type: MsgType.SET_CONFIG, flags: R, requestId: 5, payload: M.encodeConfig(cfg), meaning: cfg });
  const limit = { code: ErrCode.LIMIT, arg: 0, message: 'vSetV = 5 outside the safe limits 0.3..3' };
  add({ name: 'set_config_error_limit', description: 'ERROR reply to SET_CONFIG: field 0 (vSetV) outside the safe limits', type: MsgType.SET_CONFIG, flags: R | Flag.ERROR, requestId: 6, payload: M.encodeErrorBody(limit), meaning: limit });
  add({ name: 'get_counters_request', description: 'GET_COUNTERS (empty payload)', type: MsgType.GET_COUNTERS, flags: 0, requestId: 7, payload: new Uint8Array(0), meaning: {} });
  const counters = Array.from({ length: 20 }, (_, i) => i * 3);
  add({ name: 'get_counters_reply', description: 'GET_COUNTERS reply: 20 u32 counters in table order', type: MsgType.GET_COUNTERS, flags: R, requestId: 7, payload: M.encodeCounters(counters), meaning: { values: counters } });
  const evReq = { sinceSeq: 10, max: 2 };
  add({ name: 'get_events_request', description: 'GET_EVENTS from seq 10, at most 2', type: MsgType.GET_EVENTS, flags: 0, requestId: 8, payload: M.encodeEventsRequest(evReq), meaning: evReq });
  const evRep = {
    nextSeq: 12,
    lost: 0,
    events: [
      { seq: 10, code: EventCode.CONFIG_CHANGED, clockMs: 5000, arg0: 0, arg1: 0 },
      { seq: 11, code: EventCode.OP_START, clockMs: 5012, arg0: 9, arg1: MsgType.PROGRAM },
    ],
  };
  add({ name: 'get_events_reply', description: 'GET_EVENTS reply: CONFIG_CHANGED then OP_START of request 9 (PROGRAM)', type: MsgType.GET_EVENTS, flags: R, requestId: 8, payload: M.encodeEventsReply(evRep), meaning: evRep });
  const prog = { region, maxPulses: 0, maxIterations: 0, toleranceUs: 0.5, targetsUs: new Float32Array([10, 20, 30, 2]) };
  add({ name: 'program_request', description: 'PROGRAM 2x2 cells at (4, 8) of array 0, tolerance 0.5 uS, config pulse budgets', type: MsgType.PROGRAM, flags: 0, requestId: 9, payload: M.encodeProgramRequest(prog), meaning: prog });
  const progress = { done: 2, total: 4 };
  add({ name: 'program_progress', description: 'PROGRESS reply: 2 of 4 cells done', type: MsgType.PROGRAM, flags: R | Flag.PROGRESS, requestId: 9, payload: M.encodeProgress(progress), meaning: progress });
  const progReply = {
    outcome: 'COMPLETE' as const,
    totalPulses: 17,
    finalUs: new Float32Array([10.25, 19.75, 30, 2]),
    pulses: new Uint16Array([5, 6, 6, 0]),
    status: new Uint8Array([0, 0, 0, 0]),
  };
  add({ name: 'program_reply', description: 'PROGRAM reply: all 4 cells OK, 17 pulses', type: MsgType.PROGRAM, flags: R, requestId: 9, payload: M.encodeProgramReply(progReply), meaning: progReply });
  add({ name: 'program_reply_duplicate', description: 'The same reply re-sent from the cache for a retransmitted request 9 (DUPLICATE flag): no second pulse', type: MsgType.PROGRAM, flags: R | Flag.DUPLICATE, requestId: 9, payload: M.encodeProgramReply(progReply), meaning: progReply });
  const cancelledReply = {
    outcome: 'CANCELLED' as const,
    totalPulses: 5,
    finalUs: new Float32Array([10.25, 2, 2, 2]),
    pulses: new Uint16Array([5, 0, 0, 0]),
    status: new Uint8Array([0, 3, 3, 3]),
  };
  add({ name: 'program_reply_cancelled', description: 'PROGRAM reply after CANCEL: one cell done, three NOT_ATTEMPTED', type: MsgType.PROGRAM, flags: R, requestId: 10, payload: M.encodeProgramReply(cancelledReply), meaning: cancelledReply });
  add({ name: 'cancel_request', description: 'CANCEL request 10', type: MsgType.CANCEL, flags: 0, requestId: 11, payload: M.encodeU16(10), meaning: { target: 10 } });
  add({ name: 'cancel_reply', description: 'CANCEL reply: CANCELLING (the target was running)', type: MsgType.CANCEL, flags: R, requestId: 11, payload: M.encodeU8(0), meaning: { result: 'CANCELLING' } });
  const read = { region, averages: 8 };
  add({ name: 'read_cells_request', description: 'READ_CELLS 2x2, 8 reads averaged per cell', type: MsgType.READ_CELLS, flags: 0, requestId: 12, payload: M.encodeReadCellsRequest(read), meaning: read });
  const readReply = { averages: 8, valuesUs: new Float32Array([10.5, 20, 29.5, 2]) };
  add({ name: 'read_cells_reply', description: 'READ_CELLS reply: 4 f32 conductances (uS)', type: MsgType.READ_CELLS, flags: R, requestId: 12, payload: M.encodeReadCellsReply(readReply), meaning: readReply });
  const mvm = { region: { array: 1, row: 0, col: 0, rows: 4, cols: 3 }, inputBits: 2, inputs: new Uint32Array([3, 0, 1, 2]) };
  add({ name: 'mvm_request', description: 'MVM: inputs [3,0,1,2] at 2 bits on 4 rows x 3 cols of array 1; bit planes 0x05 (LSB) and 0x09', type: MsgType.MVM, flags: 0, requestId: 13, payload: M.encodeMvmRequest(mvm), meaning: mvm });
  const mvmReply = { cols: 3, planes: 2, adcBits: 8, codes: new Uint16Array([10, 20, 30, 11, 21, 31]) };
  add({ name: 'mvm_reply', description: 'MVM reply: 2 planes x 3 columns of ADC codes', type: MsgType.MVM, flags: R, requestId: 13, payload: M.encodeMvmReply(mvmReply), meaning: mvmReply });
  const doc = new TextEncoder().encode(JSON.stringify(VECTOR_NETWORK));
  const chunk = { networkId: crc32(doc), totalLength: doc.length, offset: 0, data: doc };
  add({ name: 'load_network_request', description: 'LOAD_NETWORK: the whole tiny network document in one chunk; network id = CRC-32 of the document', type: MsgType.LOAD_NETWORK, flags: 0, requestId: 14, payload: M.encodeLoadNetworkChunk(chunk), meaning: { networkId: chunk.networkId, totalLength: chunk.totalLength, offset: 0, document: VECTOR_NETWORK } });
  const lnReply = { received: doc.length, complete: true, layers: 1 };
  add({ name: 'load_network_reply', description: 'LOAD_NETWORK reply: complete, validated, 1 layer', type: MsgType.LOAD_NETWORK, flags: R, requestId: 14, payload: M.encodeLoadNetworkReply(lnReply), meaning: lnReply });
  const infer = { networkId: chunk.networkId, count: 2, shape: [1, 1, 2] as [number, number, number], images: new Uint8Array([0, 255, 128, 64]) };
  add({ name: 'infer_request', description: 'INFER: 2 images of 1x1x2 as u8', type: MsgType.INFER, flags: 0, requestId: 15, payload: M.encodeInferRequest(infer), meaning: infer });
  const inferReply = { count: 2, classes: 2, logits: new Float32Array([1.5, -0.5, 0.25, 0.75]) };
  add({ name: 'infer_reply', description: 'INFER reply: 2 x 2 logits', type: MsgType.INFER, flags: R, requestId: 15, payload: M.encodeInferReply(inferReply), meaning: inferReply });
  add({ name: 'reset_request', description: 'RESET (transport reset)', type: MsgType.RESET, flags: 0, requestId: 16, payload: new Uint8Array(0), meaning: {} });
  add({ name: 'reset_reply', description: 'RESET reply: the boot id (unchanged: no reboot)', type: MsgType.RESET, flags: R, requestId: 16, payload: M.encodeU32(VECTOR_INFO.bootId), meaning: { bootId: VECTOR_INFO.bootId } });
  add({ name: 'safe_state_request', description: 'SAFE_STATE enter (mode 1)', type: MsgType.SAFE_STATE, flags: 0, requestId: 17, payload: M.encodeU8(1), meaning: { mode: 1 } });
  add({ name: 'safe_state_reply', description: 'SAFE_STATE reply: safe = 1', type: MsgType.SAFE_STATE, flags: R, requestId: 17, payload: M.encodeU8(1), meaning: { safe: 1 } });
  add({ name: 'advance_clock_request', description: 'ADVANCE_CLOCK by 3600 s (test-only capability)', type: MsgType.ADVANCE_CLOCK, flags: 0, requestId: 18, payload: M.encodeU32(3600), meaning: { seconds: 3600 } });
  add({ name: 'advance_clock_reply', description: 'ADVANCE_CLOCK reply: device clock 3723456 ms (u64)', type: MsgType.ADVANCE_CLOCK, flags: R, requestId: 18, payload: M.encodeU64(3_723_456), meaning: { clockMs: 3_723_456 } });
  const busy = { code: ErrCode.BUSY, arg: 0, message: '4 operations already queued' };
  add({ name: 'program_error_busy', description: 'ERROR BUSY: the queue was full; retry later with the same request id (not cached)', type: MsgType.PROGRAM, flags: R | Flag.ERROR, requestId: 19, payload: M.encodeErrorBody(busy), meaning: busy });
  add({ name: 'unknown_type_request', description: 'A well-formed frame of unknown type 0x7F: the codec accepts it, the device answers ERROR UNKNOWN_TYPE', type: 0x7f, flags: 0, requestId: 20, payload: new Uint8Array([0xaa]), meaning: { payload: [0xaa] }, dispatch: 'UNKNOWN_TYPE' });
  const unk = { code: ErrCode.UNKNOWN_TYPE, arg: 0x7f, message: 'unknown message type 0x7f' };
  add({ name: 'unknown_type_reply', description: 'ERROR UNKNOWN_TYPE reply to request 20 (arg = the type)', type: 0x7f, flags: R | Flag.ERROR, requestId: 20, payload: M.encodeErrorBody(unk), meaning: unk });
  const badv = { code: ErrCode.BAD_VERSION, arg: 1, message: 'device speaks protocol v1' };
  add({ name: 'bad_version_reply', description: 'ERROR BAD_VERSION reply to a v2 frame: arg = the version the device speaks', type: MsgType.HELLO, flags: R | Flag.ERROR, requestId: 21, payload: M.encodeErrorBody(badv), meaning: badv });

  // Progress of every long operation: u32 done, u32 total, in the operation's unit (PROTOCOL.md 3.3-3.6).
  const progressOf = (name: string, type: number, requestId: number, done: number, total: number, unit: string): void => {
    add({ name, description: `PROGRESS reply: ${done} of ${total} ${unit} done`, type, flags: R | Flag.PROGRESS, requestId, payload: M.encodeProgress({ done, total }), meaning: { done, total } });
  };
  progressOf('read_cells_progress', MsgType.READ_CELLS, 12, 2, 4, 'cells read');
  progressOf('mvm_progress', MsgType.MVM, 13, 1, 2, 'bit planes applied and digitised');
  progressOf('load_network_progress', MsgType.LOAD_NETWORK, 14, 0, doc.length, 'document bytes received (this chunk not yet stored)');
  progressOf('infer_progress', MsgType.INFER, 15, 1, 2, 'images');

  // Well-framed requests whose payload is wrong: the codec accepts them, the device answers BAD_LENGTH.
  const badLength = (name: string, description: string, type: number, payload: Uint8Array, defect: string): void => {
    add({ name, description, type, flags: 0, requestId: 30 + out.length, payload, meaning: { defect }, dispatch: 'BAD_LENGTH' });
  };
  badLength('program_request_bad_length', 'PROGRAM of a 2x2 region carrying 3 targets (32 bytes instead of 36)', MsgType.PROGRAM, M.encodeProgramRequest(prog).subarray(0, 32), '2x2 region needs 20 + 4 * 4 = 36 bytes');
  badLength('get_config_request_bad_length', 'GET_CONFIG with one stray byte (the payload must be empty)', MsgType.GET_CONFIG, new Uint8Array([0x01]), 'payload must be empty');
  badLength('read_cells_request_bad_length', 'READ_CELLS with 11 bytes: the u16 averages lacks its high byte', MsgType.READ_CELLS, M.encodeReadCellsRequest(read).subarray(0, 11), 'READ_CELLS request is exactly 12 bytes');
  badLength('safe_state_request_bad_mode', 'SAFE_STATE mode 2: a bad enum value is a BAD_LENGTH too', MsgType.SAFE_STATE, M.encodeU8(2), 'mode must be 0 or 1');
  const badLen = { code: ErrCode.BAD_LENGTH, arg: 0, message: 'PROGRAM request: 4 bytes missing' };
  add({ name: 'program_error_bad_length', description: 'ERROR BAD_LENGTH reply to program_request_bad_length', type: MsgType.PROGRAM, flags: R | Flag.ERROR, requestId: out.find((m) => m.name === 'program_request_bad_length')!.requestId, payload: M.encodeErrorBody(badLen), meaning: badLen });
  // A reply with a bad payload: the host refuses it (PROTOCOL error) exactly like the device refuses requests.
  const shortRead = M.encodeReadCellsReply(readReply).subarray(0, 16);
  add({ name: 'read_cells_reply_bad_length', description: 'READ_CELLS reply whose count says 4 values but carries 3: the host rejects it', type: MsgType.READ_CELLS, flags: R, requestId: 12, payload: shortRead, meaning: { defect: 'count 4 needs 4 + 4 * 4 = 20 bytes' }, dispatch: 'HOST_REJECTS' });
  // A host frame that sets RESPONSE: the device counts badHeader and does not answer.
  add({ name: 'host_frame_response_flag', description: 'PING sent by a host with the RESPONSE flag set: the device counts badHeader and ignores it', type: MsgType.PING, flags: R, requestId: 29, payload: ping, meaning: { echo: [1, 2, 3, 4] }, dispatch: 'IGNORED', direction: 'host->device' });

  // One ERROR reply for every code of the error table not shown above.
  const errorReply = (name: string, type: number, requestId: number, code: number, arg: number, message: string, description: string): void => {
    const body = { code, arg, message };
    add({ name, description, type, flags: R | Flag.ERROR, requestId, payload: M.encodeErrorBody(body), meaning: body });
  };
  errorReply('program_error_out_of_range', MsgType.PROGRAM, 40, ErrCode.OUT_OF_RANGE, 3, 'target[3] = 55 uS outside 2..40 uS', 'ERROR OUT_OF_RANGE: cell 3 of the block has a target outside the conductance range (arg = cell index)');
  errorReply('read_cells_error_safe_state', MsgType.READ_CELLS, 41, ErrCode.SAFE_STATE, 0, 'the device is in SAFE_STATE', 'ERROR SAFE_STATE: an array operation while the drivers are off');
  errorReply('advance_clock_error_unsupported', MsgType.ADVANCE_CLOCK, 42, ErrCode.UNSUPPORTED, 0, 'ADVANCE_CLOCK is a test-only capability', 'ERROR UNSUPPORTED: a real chip refuses the test-only ADVANCE_CLOCK');
  errorReply('read_cells_error_cancelled', MsgType.READ_CELLS, 43, ErrCode.CANCELLED, 0, 'stopped by CANCELLED', 'ERROR CANCELLED: final reply of a READ_CELLS stopped by CANCEL');
  errorReply('load_network_error_bad_network', MsgType.LOAD_NETWORK, 44, ErrCode.BAD_NETWORK, 0, 'document CRC-32 does not match the network id', 'ERROR BAD_NETWORK: the uploaded document failed its CRC, JSON, schema or placement check');
  errorReply('infer_error_no_network', MsgType.INFER, 45, ErrCode.NO_NETWORK, 0, 'no network 0xdeadbeef is loaded', 'ERROR NO_NETWORK: INFER names a network the device does not hold');
  errorReply('read_cells_error_too_large', MsgType.READ_CELLS, 46, ErrCode.TOO_LARGE, 0, 'the reply would need 4100 bytes', 'ERROR TOO_LARGE: the reply would exceed the payload limit');
  errorReply('mvm_error_internal', MsgType.MVM, 47, ErrCode.INTERNAL, 0, 'ADC calibration fault', 'ERROR INTERNAL: a firmware fault');
  return out;
}

function fromMsg(m: Msg): Vector {
  const raw = buildRawFrame({ version: m.version ?? 1, flags: m.flags, type: m.type, seq: m.seq, requestId: m.requestId, payload: m.payload });
  const wire = new Uint8Array([...cobsEncode(raw), 0]);
  return {
    name: m.name,
    direction: m.direction ?? (m.flags & Flag.RESPONSE ? 'device->host' : 'host->device'),
    description: m.description,
    expect: 'ok',
    ...(m.dispatch ? { dispatch: m.dispatch } : {}),
    wire_hex: hex(wire),
    raw_hex: hex(raw),
    header: { version: m.version ?? 1, flags: m.flags, type: m.type, type_name: msgTypeName(m.type), seq: m.seq, request_id: m.requestId, payload_length: m.payload.length },
    payload_hex: hex(m.payload),
    meaning: jsonable(m.meaning),
  };
}

function malformed(name: string, description: string, expect: Expect, raw: Uint8Array, wire?: Uint8Array): Vector {
  const w = wire ?? new Uint8Array([...cobsEncode(raw), 0]);
  return { name, direction: 'host->device', description, expect, wire_hex: hex(w), raw_hex: hex(raw) };
}

export function buildVectors(): { format: string; protocol: string; crc: string; max_payload: number; vectors: Vector[] } {
  const vectors = messages().map(fromMsg);
  const ping = buildRawFrame({ flags: 0, type: MsgType.PING, seq: 0x40, requestId: 0x0102, payload: new Uint8Array([1, 2, 3, 4]) });
  const badCrc = ping.slice();
  badCrc[badCrc.length - 1] = (badCrc[badCrc.length - 1] as number) ^ 0x01;
  vectors.push(malformed('bad_crc', 'PING whose last CRC byte has one bit flipped', 'crc', badCrc));
  const flipped = ping.slice();
  flipped[9] = (flipped[9] as number) ^ 0x80;
  vectors.push(malformed('bad_crc_payload_bit', 'PING with one payload bit flipped in transit', 'crc', flipped));
  vectors.push(malformed('truncated', 'PING whose last 3 bytes were lost: length field says 4 payload bytes, only 1 present with CRC', 'length', ping.slice(0, ping.length - 3)));
  vectors.push(malformed('short', 'Five bytes: shorter than header + CRC (12 bytes)', 'short', ping.slice(0, 5)));
  const cobsBad = new Uint8Array([0x05, 0x01, 0x02, 0x00]);
  vectors.push(malformed('bad_cobs', 'COBS code byte 0x05 promises 4 data bytes but the frame ends after 2', 'cobs', new Uint8Array(0), cobsBad));
  const v2 = buildRawFrame({ version: 2, flags: 0, type: MsgType.HELLO, seq: 0, requestId: 21, payload: new Uint8Array([2, 0, 0xff, 0xff]) });
  vectors.push({ ...malformed('wrong_version', 'HELLO from a protocol v2 host: dropped by the codec; the device answers ERROR BAD_VERSION (see bad_version_reply)', 'version', v2), dispatch: 'BAD_VERSION' });
  const badFlags = buildRawFrame({ flags: 0x80, type: MsgType.PING, seq: 0, requestId: 22, payload: new Uint8Array(0) });
  vectors.push(malformed('unknown_flags', 'PING with reserved flag bit 7 set: dropped (a receiver must not guess what it means)', 'flags', badFlags));
  const big = buildRawFrame({ flags: 0, type: MsgType.PING, seq: 0, requestId: 23, payload: new Uint8Array(4097).fill(0x11) });
  vectors.push(malformed('oversize', 'PING with a 4097-byte payload against a 4096-byte max payload: dropped before decoding', 'oversize', big));
  return { format: 'cimbench.protocol-vectors/1', protocol: '1.0', crc: 'CRC-32/ISO-HDLC (poly 0x04C11DB7 reflected, init 0xFFFFFFFF, xorout 0xFFFFFFFF)', max_payload: 4096, vectors };
}

/** One line per vector for C and other small consumers: name expect wire version flags type seq request_id payload. */
export function vectorsTsv(vectors: readonly Vector[]): string {
  const lines = ['# name\texpect\twire_hex\tversion\tflags\ttype\tseq\trequest_id\tpayload_hex'];
  for (const v of vectors) {
    const h = v.header;
    lines.push([v.name, v.expect, v.wire_hex, h?.version ?? '-', h?.flags ?? '-', h?.type ?? '-', h?.seq ?? '-', h?.request_id ?? '-', v.payload_hex === undefined ? '-' : v.payload_hex || '.'].join('\t'));
  }
  return `${lines.join('\n')}\n`;
}
