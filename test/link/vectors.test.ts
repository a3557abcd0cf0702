import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { LinkError } from '../../src/common/errors.js';
import { FrameDecoder, decodeWireFrame, encodeFrame, type FrameErrorKind } from '../../src/link/frame.js';
import * as M from '../../src/link/messages.js';
import { ErrCode, Flag, MsgType, QUEUED_TYPES, errCodeName } from '../../src/link/protocol.js';
import { NetworkProgramSchema } from '../../src/link/network-program.js';
import { buildVectors, jsonable, vectorsTsv, type Vector } from './helpers/vectors.js';
import { createTestDevice } from './helpers/test-macro.js';

const dir = fileURLToPath(new URL('../../firmware-protocol/vectors/', import.meta.url));
const built = buildVectors();
if (process.env.UPDATE_VECTORS === '1') {
  writeFileSync(`${dir}frames.json`, `${JSON.stringify(built, null, 2)}\n`);
  writeFileSync(`${dir}frames.tsv`, vectorsTsv(built.vectors));
}
const committed = JSON.parse(readFileSync(`${dir}frames.json`, 'utf8')) as { vectors: Vector[]; max_payload: number };
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));

test('committed vectors equal the generator (format unchanged; UPDATE_VECTORS=1 rewrites)', () => {
  assert.deepEqual(committed, JSON.parse(JSON.stringify(built)));
  assert.equal(readFileSync(`${dir}frames.tsv`, 'utf8'), vectorsTsv(committed.vectors));
});

test('every message type has a request and a reply vector', () => {
  for (const [name, type] of Object.entries(MsgType)) {
    const dirs = new Set(committed.vectors.filter((v) => v.header?.type === type).map((v) => v.direction));
    assert.ok(dirs.has('host->device') && dirs.has('device->host'), `${name} lacks a request or a reply vector`);
  }
  for (const kind of ['crc', 'length', 'short', 'cobs', 'version', 'flags', 'oversize']) {
    assert.ok(committed.vectors.some((v) => v.expect === kind), `no malformed vector of kind ${kind}`);
  }
});

test('an ERROR reply vector for every error code, a PROGRESS vector for every long operation', () => {
  const errorCodes = new Set(committed.vectors.filter((v) => v.header && v.header.flags & Flag.ERROR).map((v) => M.decodeErrorBody(bytes(v.payload_hex!)).code));
  for (const [name, code] of Object.entries(ErrCode)) assert.ok(errorCodes.has(code), `no ERROR reply vector for ${name}`);
  for (const type of QUEUED_TYPES) {
    assert.ok(
      committed.vectors.some((v) => v.header?.type === type && v.header.flags === (Flag.RESPONSE | Flag.PROGRESS)),
      `no PROGRESS vector for type 0x${type.toString(16)}`,
    );
  }
  const dispatched = committed.vectors.filter((v) => v.dispatch === 'BAD_LENGTH');
  assert.ok(dispatched.length >= 3 && dispatched.every((v) => v.expect === 'ok' && v.direction === 'host->device'), 'well-framed BAD_LENGTH requests');
  assert.ok(committed.vectors.some((v) => v.dispatch === 'HOST_REJECTS' && v.direction === 'device->host'));
  assert.ok(committed.vectors.some((v) => v.direction === 'host->device' && v.header && v.header.flags & Flag.RESPONSE && v.dispatch === 'IGNORED'));
});

function empty(p: Uint8Array): Record<string, never> {
  if (p.length !== 0) throw new LinkError('PROTOCOL', `expected an empty payload, got ${p.length} bytes`);
  return {};
}

function decodePayload(v: Vector): unknown {
  const h = v.header!;
  const p = bytes(v.payload_hex!);
  const reply = (h.flags & Flag.RESPONSE) !== 0;
  if (h.flags & Flag.ERROR) return M.decodeErrorBody(p);
  if (h.flags & Flag.PROGRESS) return M.decodeProgress(p);
  switch (h.type) {
    case MsgType.HELLO:
      return reply ? M.decodeHelloReply(p) : M.decodeHelloRequest(p);
    case MsgType.PING:
      return p.length > 8 ? { echo_length: p.length, echo_byte: p[0] } : { echo: Array.from(p) };
    case MsgType.GET_CONFIG:
      return reply ? M.decodeConfig(p) : empty(p);
    case MsgType.SET_CONFIG:
      return M.decodeConfig(p);
    case MsgType.GET_COUNTERS:
      if (!reply) return empty(p);
      return { values: new DataView(p.buffer, p.byteOffset).getUint16(0, true) === 20 ? Array.from({ length: 20 }, (_, i) => new DataView(p.buffer, p.byteOffset).getUint32(4 + 4 * i, true)) : [] };
    case MsgType.GET_EVENTS:
      return reply ? M.decodeEventsReply(p) : M.decodeEventsRequest(p);
    case MsgType.PROGRAM:
      return reply ? M.decodeProgramReply(p) : M.decodeProgramRequest(p);
    case MsgType.CANCEL:
      return reply ? { result: ['CANCELLING', 'NOT_RUNNING', 'DEQUEUED'][M.decodeU8(p, 'x')] } : { target: M.decodeU16(p, 'x') };
    case MsgType.READ_CELLS:
      return reply ? M.decodeReadCellsReply(p) : M.decodeReadCellsRequest(p);
    case MsgType.MVM:
      return reply ? M.decodeMvmReply(p) : M.decodeMvmRequest(p);
    case MsgType.LOAD_NETWORK: {
      if (reply) return M.decodeLoadNetworkReply(p);
      const c = M.decodeLoadNetworkChunk(p);
      const document = JSON.parse(new TextDecoder().decode(c.data)) as unknown;
      assert.ok(NetworkProgramSchema.safeParse(document).success, 'vector network document validates');
      return { networkId: c.networkId, totalLength: c.totalLength, offset: c.offset, document };
    }
    case MsgType.INFER:
      return reply ? M.decodeInferReply(p) : M.decodeInferRequest(p);
    case MsgType.RESET:
      return reply ? { bootId: M.decodeU32(p, 'x') } : empty(p);
    case MsgType.SAFE_STATE: {
      if (reply) return { safe: M.decodeU8(p, 'x') };
      const mode = M.decodeU8(p, 'x');
      if (mode > 1) throw new LinkError('PROTOCOL', `SAFE_STATE mode ${mode}`);
      return { mode };
    }
    case MsgType.ADVANCE_CLOCK:
      return reply ? { clockMs: M.decodeU64(p, 'x') } : { seconds: M.decodeU32(p, 'x') };
    default:
      return { payload: Array.from(p) };
  }
}

for (const v of committed.vectors) {
  test(`vector ${v.name}: ${v.expect}`, () => {
    const wire = bytes(v.wire_hex);
    const frames: unknown[] = [];
    const errors: FrameErrorKind[] = [];
    const dec = new FrameDecoder({ maxPayload: committed.max_payload, onFrame: (f) => frames.push(f), onError: (k) => errors.push(k) });
    dec.push(wire);
    if (v.expect !== 'ok') {
      assert.deepEqual(errors, [v.expect]);
      assert.equal(frames.length, 0);
      if (v.expect !== 'oversize') {
        const r = decodeWireFrame(wire);
        assert.equal(r.ok, false);
        if (!r.ok) assert.equal(r.kind, v.expect);
      }
      return;
    }
    assert.deepEqual(errors, []);
    assert.equal(frames.length, 1);
    const r = decodeWireFrame(wire);
    assert.ok(r.ok);
    const h = v.header!;
    assert.deepEqual(
      { version: r.frame.version, flags: r.frame.flags, type: r.frame.type, seq: r.frame.seq, requestId: r.frame.requestId, payload: Buffer.from(r.frame.payload).toString('hex') },
      { version: h.version, flags: h.flags, type: h.type, seq: h.seq, requestId: h.request_id, payload: v.payload_hex },
    );
    // The encoder reproduces the golden bytes exactly.
    assert.equal(Buffer.from(encodeFrame({ ...r.frame })).toString('hex'), v.wire_hex);
    if (v.dispatch === 'BAD_LENGTH' || v.dispatch === 'HOST_REJECTS') {
      // Well framed, badly sized: the payload decoder refuses it.
      assert.throws(() => decodePayload(v), (e: unknown) => e instanceof LinkError && e.code === 'PROTOCOL');
      return;
    }
    assert.deepEqual(jsonable(decodePayload(v)), v.meaning);
  });
}

test('device answers the unknown-type and wrong-version vectors with the documented errors', async () => {
  const { endpoint } = createTestDevice();
  const replies: Array<{ type: number; flags: number; code: number; arg: number; id: number }> = [];
  const dec = new FrameDecoder({
    maxPayload: 65535,
    onFrame: (f) => {
      const e = M.decodeErrorBody(f.payload);
      replies.push({ type: f.type, flags: f.flags, code: e.code, arg: e.arg, id: f.requestId });
    },
  });
  endpoint.attach((b) => dec.push(b));
  for (const name of ['unknown_type_request', 'wrong_version']) {
    const v = committed.vectors.find((x) => x.name === name)!;
    endpoint.receive(bytes(v.wire_hex));
  }
  assert.deepEqual(replies, [
    { type: 0x7f, flags: Flag.RESPONSE | Flag.ERROR, code: ErrCode.UNKNOWN_TYPE, arg: 0x7f, id: 20 },
    { type: MsgType.HELLO, flags: Flag.RESPONSE | Flag.ERROR, code: ErrCode.BAD_VERSION, arg: 1, id: 21 },
  ]);
});

test('device does what every dispatch vector says: the error it names, or nothing for IGNORED', () => {
  const host = committed.vectors.filter((v) => v.dispatch && v.direction === 'host->device');
  assert.ok(host.length >= 7);
  for (const v of host) {
    const { endpoint } = createTestDevice();
    const replies: Array<{ type: number; flags: number; id: number; code: string }> = [];
    const dec = new FrameDecoder({ maxPayload: 65535, onFrame: (f) => replies.push({ type: f.type, flags: f.flags, id: f.requestId, code: errCodeName(M.decodeErrorBody(f.payload).code) }) });
    endpoint.attach((b) => dec.push(b));
    const before = endpoint.counterValues();
    endpoint.receive(bytes(v.wire_hex));
    if (v.dispatch === 'IGNORED') {
      assert.deepEqual(replies, [], v.name);
      assert.equal(endpoint.counterValues()[8], (before[8] as number) + 1, `${v.name}: badHeader counted`);
      continue;
    }
    // Malformed vectors carry no decoded header: read type and request id from the raw bytes (PROTOCOL.md 1.1).
    const raw = bytes(v.raw_hex);
    const type = v.header?.type ?? (raw[2] as number);
    const id = v.header?.request_id ?? (raw[4]! | (raw[5]! << 8));
    assert.deepEqual(replies, [{ type, flags: Flag.RESPONSE | Flag.ERROR, id, code: v.dispatch }], v.name);
  }
});

/**
 * Frames written out byte by byte from the PROTOCOL.md tables, with the CRC from node's zlib and
 * COBS done by hand: the golden files do not only agree with the codec that generated them.
 */
test('hand-derived frames from the PROTOCOL.md layout equal the golden vectors', () => {
  const byName = (n: string): Vector => committed.vectors.find((v) => v.name === n)!;
  const h = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
  const withCrc = (headerAndPayload: Buffer): Buffer => {
    const c = Buffer.alloc(4);
    c.writeUInt32LE(zlibCrc32(headerAndPayload) >>> 0);
    return Buffer.concat([headerAndPayload, c]);
  };
  const check = (name: string, header: string, payload: string): Buffer => {
    const raw = withCrc(Buffer.concat([h(header), h(payload)]));
    assert.equal(byName(name).raw_hex, raw.toString('hex'), name);
    assert.equal(byName(name).payload_hex, h(payload).toString('hex'), name);
    return raw;
  };

  // Section 9, worked example: raw and wire exactly as printed there.
  check('hello_request', '01 00 01 00 0100 0400', '01 00 ffff');
  assert.equal(byName('hello_request').raw_hex, h('01 00 01 00 01 00 04 00 01 00 ff ff 2c d6 13 5e').toString('hex'));
  assert.equal(byName('hello_request').wire_hex, h('02 01 02 01 02 01 02 04 02 01 07 ff ff 2c d6 13 5e 00').toString('hex'));

  // PROGRAM request (3.3): Region {0, 4, 8, 2, 2}, budgets 0, tolerance 0.5 = 0x3f000000, targets 10, 20, 30, 2 uS.
  check('program_request', '01 00 10 0e 0900 2400', '0000 0400 0800 0200 0200  0000 0000 0000  0000003f  00002041 0000a041 0000f041 00000040');
  // PROGRAM reply: count 4, COMPLETE, 17 pulses; cells (10.25 = 0x41240000, 5 pulses, OK), (19.75 = 0x419e0000, 6), (30, 6), (2, 0).
  check('program_reply', '01 01 10 10 0900 2800', '0400 00 00 11000000  00002441 0500 00 00  00009e41 0600 00 00  0000f041 0600 00 00  00000040 0000 00 00');
  // PROGRESS of READ_CELLS (flags RESPONSE | PROGRESS): u32 done 2, u32 total 4.
  const rp = byName('read_cells_progress').header!;
  check('read_cells_progress', `01 03 11 ${rp.seq.toString(16).padStart(2, '0')} 0c00 0800`, '02000000 04000000');
  // ERROR body (4): code 3 BAD_LENGTH, reserved, arg 0, then the UTF-8 message.
  const eb = byName('program_error_bad_length').header!;
  const msg = Buffer.from('PROGRAM request: 4 bytes missing').toString('hex');
  check('program_error_bad_length', `01 05 10 ${eb.seq.toString(16).padStart(2, '0')} ${Buffer.from([eb.request_id & 0xff, eb.request_id >> 8]).toString('hex')} ${(4 + 32).toString(16)}00`, `03 00 0000 ${msg}`);

  // COBS with a 0xFF block (1): PING of 300 x 0x55, seq 4, id 3. Zeros only at raw[1] and raw[5].
  const longRaw = check('ping_request_long', '01 00 02 04 0300 2c01', '55'.repeat(300));
  const crcBytes = longRaw.subarray(longRaw.length - 4);
  assert.ok(!crcBytes.includes(0), 'this CRC has no zero byte, so the hand COBS below applies');
  const tail = Buffer.concat([h('2c01'), Buffer.alloc(300, 0x55), crcBytes]); // 306 non-zero bytes
  const wire = Buffer.concat([h('02 01'), h('04 02 04 03'), h('ff'), tail.subarray(0, 254), Buffer.from([tail.length - 254 + 1]), tail.subarray(254), h('00')]);
  assert.equal(byName('ping_request_long').wire_hex, wire.toString('hex'));
});
