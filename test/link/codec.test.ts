import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/common/rng.js';
import { cobsDecode, cobsEncode, cobsMaxEncodedLength } from '../../src/link/cobs.js';
import { crc32 } from '../../src/link/crc32.js';
import { FrameDecoder, encodeFrame, type Frame } from '../../src/link/frame.js';
import * as M from '../../src/link/messages.js';
import { LinkError } from '../../src/common/errors.js';

test('crc32 matches the CRC-32/ISO-HDLC check value and continues across buffers', () => {
  const b = new TextEncoder().encode('123456789');
  assert.equal(crc32(b), 0xcbf43926);
  assert.equal(crc32(b, 4, 9, crc32(b, 0, 4)), 0xcbf43926);
});

test('COBS matches the published examples and round-trips random data', () => {
  const cases: Array<[number[], number[]]> = [
    [[0x00], [0x01, 0x01]],
    [[0x00, 0x00], [0x01, 0x01, 0x01]],
    [[0x11, 0x22, 0x00, 0x33], [0x03, 0x11, 0x22, 0x02, 0x33]],
    [[0x11, 0x00, 0x00, 0x00], [0x02, 0x11, 0x01, 0x01, 0x01]],
  ];
  for (const [plain, enc] of cases) {
    assert.deepEqual(Array.from(cobsEncode(new Uint8Array(plain))), enc);
    assert.deepEqual(Array.from(cobsDecode(new Uint8Array(enc)) ?? []), plain);
  }
  const rng = new Rng(3);
  for (let i = 0; i < 300; i++) {
    const n = rng.int(700);
    const data = new Uint8Array(n).map(() => (rng.next() < 0.2 ? 0 : rng.int(256)));
    const enc = cobsEncode(data);
    assert.ok(enc.length <= cobsMaxEncodedLength(n));
    assert.ok(!enc.includes(0));
    assert.deepEqual(cobsDecode(enc), data);
  }
  assert.equal(cobsDecode(new Uint8Array([0x05, 0x01])), undefined);
});

function frames(n: number, rng: Rng): Array<{ type: number; seq: number; requestId: number; flags: number; payload: Uint8Array }> {
  return Array.from({ length: n }, (_, i) => ({
    flags: i % 2,
    type: 1 + rng.int(20),
    seq: i & 0xff,
    requestId: 1 + rng.int(65535),
    payload: new Uint8Array(rng.int(i % 7 === 0 ? 3000 : 40)).map(() => (rng.next() < 0.3 ? 0 : rng.int(256))),
  }));
}

test('decoder reassembles frames from byte-by-byte, random and merged chunks', () => {
  const rng = new Rng(11);
  const sent = frames(60, rng);
  const stream = Buffer.concat(sent.map((f) => encodeFrame(f)));
  for (const split of ['bytes', 'random', 'merged'] as const) {
    const got: Frame[] = [];
    const dec = new FrameDecoder({ onFrame: (f) => got.push(f) });
    if (split === 'merged') dec.push(new Uint8Array(stream));
    else {
      for (let i = 0; i < stream.length; ) {
        const k = split === 'bytes' ? 1 : 1 + rng.int(300);
        dec.push(new Uint8Array(stream.subarray(i, i + k)));
        i += k;
      }
    }
    assert.equal(got.length, sent.length, split);
    got.forEach((f, i) => {
      const s = sent[i]!;
      assert.deepEqual([f.type, f.seq, f.requestId, f.flags], [s.type, s.seq, s.requestId, s.flags]);
      assert.deepEqual(f.payload, s.payload);
    });
    assert.equal(dec.stats.frames, sent.length);
  }
});

test('idle delimiters are not errors; garbage costs only the frame it lands in', () => {
  const got: Frame[] = [];
  const dec = new FrameDecoder({ onFrame: (f) => got.push(f) });
  const a = encodeFrame({ flags: 0, type: 2, seq: 0, requestId: 1, payload: new Uint8Array([1]) });
  const b = encodeFrame({ flags: 0, type: 2, seq: 1, requestId: 2, payload: new Uint8Array([2]) });
  dec.push(new Uint8Array([0, 0, 0]));
  dec.push(new Uint8Array([0x41, 0x42, 0x43])); // garbage glued to the front of frame a
  dec.push(a);
  dec.push(b);
  assert.deepEqual(got.map((f) => f.requestId), [2]);
  assert.equal(dec.stats.frames, 1);
  assert.equal(dec.stats.cobsErrors + dec.stats.shortFrames + dec.stats.crcErrors + dec.stats.badHeader, 1);
});

test('payload decoders reject short and trailing bytes with PROTOCOL errors', () => {
  const good = M.encodeProgramRequest({ region: { array: 0, row: 0, col: 0, rows: 1, cols: 2 }, maxPulses: 0, maxIterations: 0, toleranceUs: 0, targetsUs: new Float32Array([1, 2]) });
  assert.equal(M.decodeProgramRequest(good).targetsUs.length, 2);
  for (const bad of [good.subarray(0, good.length - 1), new Uint8Array([...good, 0]), good.subarray(0, 3)]) {
    assert.throws(() => M.decodeProgramRequest(bad), (e: unknown) => e instanceof LinkError && e.code === 'PROTOCOL');
  }
  // A reply whose count field lies about its size.
  const reply = M.encodeReadCellsReply({ averages: 1, valuesUs: new Float32Array([1, 2, 3]) });
  reply[0] = 200;
  assert.throws(() => M.decodeReadCellsReply(reply), /too short/);
});

test('MVM bit planes: LSB plane first, bit i of a plane is input i', () => {
  const p = M.encodeMvmRequest({ region: { array: 0, row: 0, col: 0, rows: 9, cols: 1 }, inputBits: 2, inputs: new Uint32Array([1, 2, 3, 0, 0, 0, 0, 0, 3]) });
  assert.deepEqual(Array.from(p.subarray(12)), [0b101, 0b1, 0b110, 0b1]);
  assert.deepEqual(Array.from(M.decodeMvmRequest(p).inputs), [1, 2, 3, 0, 0, 0, 0, 0, 3]);
});

test('config limits: zod names the field on the host, the device check returns its index', () => {
  const r = M.DeviceConfigSchema.safeParse({ vSetV: 5, vResetV: 1, vReadV: 0.1, pulseWidthNs: 100, readAverages: 4, maxPulses: 10, maxIterations: 5, toleranceUs: 1 });
  assert.equal(r.success, false);
  assert.deepEqual(r.error?.issues[0]?.path, ['vSetV']);
  const c = M.decodeConfig(M.encodeConfig({ vSetV: 1.2, vResetV: 1.4, vReadV: 0.1, pulseWidthNs: 100, readAverages: 4, maxPulses: 10, maxIterations: 5, toleranceUs: 0.01 }));
  assert.equal(M.firstConfigViolation(c), -1, 'f32 rounding of limit values is accepted');
  assert.equal(M.firstConfigViolation({ ...c, readAverages: 0 }), 4);
});
