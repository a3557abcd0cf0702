/**
 * The device side (DeviceEndpoint) spoken to frame by frame, as a host that skips the host-side
 * checks would: HELLO's host_max_payload, and the f32 safe-limit slack of PROTOCOL.md 3.2.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32 } from '../../src/link/crc32.js';
import { MacroClient, tileRegion } from '../../src/link/client.js';
import { DEFAULT_DEVICE_CONFIG } from '../../src/link/device/endpoint.js';
import { FrameDecoder, encodeFrame, type Frame } from '../../src/link/frame.js';
import * as M from '../../src/link/messages.js';
import { ErrCode, Flag, MsgType } from '../../src/link/protocol.js';
import { inProcessTransport } from '../../src/link/transports/in-process.js';
import { ConcurrencyProbe, createTestDevice } from './helpers/test-macro.js';

/** A raw host: sends one request and returns the final reply (the endpoint answers control requests synchronously). */
function rawHost(options: Parameters<typeof createTestDevice>[0] = {}) {
  const { endpoint, macro } = createTestDevice(options);
  const replies: Frame[] = [];
  const dec = new FrameDecoder({ maxPayload: 0xffff, onFrame: (f) => replies.push(f) });
  endpoint.attach((b) => dec.push(b));
  let id = 1;
  let seq = 0;
  const send = async (type: number, payload: Uint8Array): Promise<Frame> => {
    const requestId = id++;
    endpoint.receive(encodeFrame({ flags: 0, type, seq: seq++ & 0xff, requestId, payload }));
    for (let i = 0; i < 200; i++) {
      const f = replies.find((r) => r.requestId === requestId && (r.flags & Flag.PROGRESS) === 0);
      if (f) return f;
      await new Promise((r) => setTimeout(r, 1));
    }
    throw new Error(`no reply to request ${requestId}`);
  };
  const errorCode = (f: Frame): number | undefined => (f.flags & Flag.ERROR ? M.decodeErrorBody(f.payload).code : undefined);
  return { endpoint, macro, send, errorCode, replies };
}

const hello = (hostMaxPayload: number): Uint8Array => M.encodeHelloRequest({ protocolMajor: 1, protocolMinor: 0, hostMaxPayload });
const readReq = (rows: number, cols: number): Uint8Array => M.encodeReadCellsRequest({ region: { array: 0, row: 0, col: 0, rows, cols }, averages: 1 });

test('HELLO host_max_payload caps every reply the device sends', async () => {
  const h = rawHost();
  // Before any HELLO the device's own limit (4096) applies.
  assert.equal(h.errorCode(await h.send(MsgType.READ_CELLS, readReq(8, 8))), undefined);
  assert.equal(h.errorCode(await h.send(MsgType.HELLO, hello(256))), undefined);
  // 8x8 cells need a 260-byte reply: refused at once; 63 cells need exactly 256: fine.
  const tooLarge = await h.send(MsgType.READ_CELLS, readReq(8, 8));
  assert.equal(h.errorCode(tooLarge), ErrCode.TOO_LARGE);
  assert.match(M.decodeErrorBody(tooLarge.payload).message, /host accepts replies up to 256/);
  const fits = await h.send(MsgType.READ_CELLS, readReq(7, 9));
  assert.equal(fits.payload.length, 256);
  assert.equal(h.errorCode(await h.send(MsgType.PING, new Uint8Array(257).fill(1))), ErrCode.TOO_LARGE);
  assert.equal((await h.send(MsgType.PING, new Uint8Array(256).fill(1))).payload.length, 256);
  assert.equal(h.errorCode(await h.send(MsgType.PROGRAM, M.encodeProgramRequest({ region: { array: 0, row: 0, col: 0, rows: 1, cols: 32 }, maxPulses: 0, maxIterations: 0, toleranceUs: 0, targetsUs: new Float32Array(32).fill(5) }))), ErrCode.TOO_LARGE);
  // GET_EVENTS returns only as many 24-byte events as fit: (256 - 8) / 24 = 10.
  for (let i = 0; i < 12; i++) await h.send(MsgType.SET_CONFIG, M.encodeConfig(DEFAULT_DEVICE_CONFIG));
  const ev = M.decodeEventsReply((await h.send(MsgType.GET_EVENTS, M.encodeEventsRequest({ sinceSeq: 0, max: 100 }))).payload);
  assert.equal(ev.events.length, 10);
  // A value below the minimum (128) is refused and the previous limit stays.
  assert.equal(h.errorCode(await h.send(MsgType.HELLO, hello(127))), ErrCode.OUT_OF_RANGE);
  assert.equal(h.errorCode(await h.send(MsgType.READ_CELLS, readReq(8, 8))), ErrCode.TOO_LARGE);
  // At 128 even a long error message is cut to fit.
  await h.send(MsgType.HELLO, hello(128));
  const doc = new TextEncoder().encode(JSON.stringify({ format: 'nonsense', name: 1, layers: 'none', classes: -1, input: 'x', inputBits: 99 }));
  const bad = await h.send(MsgType.LOAD_NETWORK, M.encodeLoadNetworkChunk({ networkId: crc32(doc), totalLength: doc.length, offset: 0, data: doc }));
  assert.equal(h.errorCode(bad), ErrCode.BAD_NETWORK);
  assert.equal(bad.payload.length, 128, 'the error body was longer than 128 bytes and was cut');
});

test('a client with a small hostMaxPayload sizes its blocks to it and never receives more', async () => {
  const { endpoint, macro } = createTestDevice({ progressIntervalMs: 5 });
  const probe = new ConcurrencyProbe(endpoint);
  let largest = 0;
  const sizes = new FrameDecoder({ maxPayload: 0xffff, onFrame: (f) => (largest = Math.max(largest, f.payload.length)) });
  const client = new MacroClient(
    inProcessTransport({
      connect: (toHost, hangup) =>
        probe.connect((b) => {
          sizes.push(b);
          toHost(b);
        }, hangup),
    }),
    { hostMaxPayload: 256, timeoutMs: 200 },
  );
  await client.connect();
  const region = { array: 0, row: 0, col: 0, rows: 16, cols: 64 };
  const r = await client.program(region, new Float32Array(16 * 64).map((_, i) => 5 + (i % 60)), { toleranceUs: 0.5 });
  assert.equal(r.counts.OK, 16 * 64);
  assert.equal(macro.programCalls, tileRegion(region, M.maxProgramCells(256)).length);
  assert.equal((await client.readCells(region)).length, 16 * 64);
  assert.ok(largest > 200 && largest <= 256, `largest reply payload ${largest}`);
  assert.equal(client.stats().oversizeFrames, 0);
  assert.throws(() => new MacroClient(inProcessTransport(endpoint), { hostMaxPayload: 64 }), /hostMaxPayload 64/);
  await client.close();
});

test('safe limits on the device: f32 values get a slack of 1e-6 of the limit, nothing looser', async () => {
  const h = rawHost();
  const setConfig = async (patch: Partial<M.DeviceConfig>): Promise<number | undefined> => {
    const f = await h.send(MsgType.SET_CONFIG, M.encodeConfig({ ...DEFAULT_DEVICE_CONFIG, ...patch }));
    return f.flags & Flag.ERROR ? M.decodeErrorBody(f.payload).arg : undefined;
  };
  // Limits as they come out of f32 rounding are accepted (fround(0.01) < 0.01, fround(0.3) > 0.3).
  assert.ok(Math.fround(0.01) < 0.01 && Math.fround(0.3) > 0.3);
  assert.equal(await setConfig({ toleranceUs: 0.01, vReadV: 0.3 }), undefined);
  // 3e-6 relative outside: refused with the field index, also for limits far below 1 (an absolute
  // slack of 1e-6 would let both through).
  assert.equal(await setConfig({ toleranceUs: 0.01 * (1 - 3e-6) }), 7);
  assert.equal(await setConfig({ vReadV: 0.3 * (1 + 3e-6) }), 2);
  assert.equal(await setConfig({ vReadV: 0.05 * (1 - 3e-6) }), 2);
  // Integer fields have no slack.
  assert.equal(await setConfig({ maxPulses: 1001 }), 5);
  // PROGRAM budgets follow the same rule.
  const program = (toleranceUs: number) =>
    h.send(MsgType.PROGRAM, M.encodeProgramRequest({ region: { array: 0, row: 0, col: 0, rows: 1, cols: 1 }, maxPulses: 0, maxIterations: 0, toleranceUs, targetsUs: new Float32Array([5]) }));
  const refused = await program(0.01 * (1 - 3e-6));
  assert.deepEqual([h.errorCode(refused), M.decodeErrorBody(refused.payload).arg], [ErrCode.LIMIT, 7]);
  assert.equal(h.errorCode(await program(0.01)), undefined);
  assert.equal(h.macro.programCalls, 1);
});
