import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FrameDecoder, decodeWireFrame, encodeFrame, type FrameErrorKind } from '../../src/link/frame.js';
import * as M from '../../src/link/messages.js';
import { ErrCode, Flag, MsgType } from '../../src/link/protocol.js';
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
      return reply ? M.decodeConfig(p) : {};
    case MsgType.SET_CONFIG:
      return M.decodeConfig(p);
    case MsgType.GET_COUNTERS:
      if (!reply) return {};
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
      return reply ? { bootId: M.decodeU32(p, 'x') } : {};
    case MsgType.SAFE_STATE:
      return reply ? { safe: M.decodeU8(p, 'x') } : { mode: M.decodeU8(p, 'x') };
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
