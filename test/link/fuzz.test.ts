import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/common/rng.js';
import { cobsEncode } from '../../src/link/cobs.js';
import { FrameDecoder, buildRawFrame, droppedFrames, encodeFrame, type Frame } from '../../src/link/frame.js';
import { MacroClient, tileRegion } from '../../src/link/client.js';
import { maxProgramCells } from '../../src/link/messages.js';
import { inProcessTransport } from '../../src/link/transports/in-process.js';
import { createTestDevice, FaultyDevice } from './helpers/test-macro.js';

/**
 * 120,000 segments, each ending in 0x00: valid frames, mutated frames (bit flips, byte changes,
 * truncation, insertion, wrong length, oversize) and random garbage. Every segment must end as one
 * decoded frame or one counted error, the valid ones must come out intact and in order, and
 * nothing may throw or stall.
 */
test('fuzz: 120k random and mutated frames, every bad frame counted, no false accept', () => {
  const rng = new Rng(2024);
  const MAX = 512;
  const got: Frame[] = [];
  let errors = 0;
  const dec = new FrameDecoder({ maxPayload: MAX, onFrame: (f) => got.push(f), onError: () => errors++ });
  const expected: number[] = [];
  let segments = 0;
  let bad = 0;
  const chunks: Uint8Array[] = [];
  const flush = (): void => {
    const all = Buffer.concat(chunks);
    chunks.length = 0;
    for (let i = 0; i < all.length; ) {
      const k = 1 + rng.int(4096);
      dec.push(new Uint8Array(all.buffer, all.byteOffset + i, Math.min(k, all.length - i)));
      i += k;
    }
  };
  for (let i = 0; i < 120_000; i++) {
    const payload = new Uint8Array(rng.int(rng.next() < 0.05 ? 700 : 64)).map(() => (rng.next() < 0.2 ? 0 : rng.int(256)));
    const f = { flags: rng.int(16), type: 1 + rng.int(30), seq: i & 0xff, requestId: i & 0xffff, payload };
    const kind = rng.int(10);
    if (kind < 4) {
      // Valid (unless it is oversize).
      const wire = encodeFrame(f);
      chunks.push(wire);
      segments++;
      if (payload.length <= MAX) expected.push(i & 0xffff);
      else bad++;
    } else if (kind < 9) {
      const raw = buildRawFrame(f);
      let m: Uint8Array = raw;
      switch (kind) {
        case 4: {
          m = raw.slice();
          const at = rng.int(m.length);
          m[at] = (m[at] as number) ^ (1 << rng.int(8));
          break;
        }
        case 5: {
          m = raw.slice();
          const at = rng.int(m.length);
          m[at] = ((m[at] as number) + 1 + rng.int(255)) & 0xff;
          break;
        }
        case 6:
          m = raw.slice(0, rng.int(raw.length));
          break;
        case 7: {
          const at = rng.int(raw.length + 1);
          m = new Uint8Array([...raw.subarray(0, at), rng.int(256), ...raw.subarray(at)]);
          break;
        }
        case 8: {
          m = raw.slice();
          m[6] = ((m[6] as number) + 1) & 0xff;
          break;
        }
      }
      if (m.length === 0) continue;
      chunks.push(cobsEncode(m), new Uint8Array([0]));
      segments++;
      bad++;
    } else {
      // Garbage: random non-zero bytes.
      const g = new Uint8Array(1 + rng.int(80)).map(() => 1 + rng.int(255));
      chunks.push(g, new Uint8Array([0]));
      segments++;
      bad++;
    }
    if (chunks.length > 512) flush();
  }
  flush();
  // A flipped bit can never pass CRC-32, and random garbage passes with odds of 2^-32 per segment.
  assert.deepEqual(
    got.map((f) => f.requestId),
    expected,
  );
  assert.equal(dec.stats.frames, expected.length);
  assert.equal(droppedFrames(dec.stats), bad);
  assert.equal(errors, bad);
  assert.equal(dec.stats.frames + droppedFrames(dec.stats), segments);
  assert.ok(segments >= 100_000);
  // Recovery: the next valid frame decodes.
  dec.push(encodeFrame({ flags: 0, type: 2, seq: 0, requestId: 4242, payload: new Uint8Array([1]) }));
  assert.equal(got[got.length - 1]?.requestId, 4242);
});

test('fuzz: the link recovers after bursts of garbage and corrupted replies', async () => {
  const { endpoint, macro } = createTestDevice();
  const faulty = new FaultyDevice(endpoint, 5);
  const client = new MacroClient(inProcessTransport(faulty), { timeoutMs: 60, retries: 6 });
  await client.connect();
  const rng = new Rng(9);
  faulty.faults.flipToHost = 0.3;
  const region = { array: 1, row: 0, col: 0, rows: 32, cols: 32 };
  const targets = new Float32Array(32 * 32).map(() => 5 + rng.int(80));
  for (let round = 0; round < 20; round++) {
    faulty.garbage(new Uint8Array(1 + rng.int(300)).map(() => rng.int(256)));
    assert.equal((await client.ping(new Uint8Array([round]))) >= 0, true);
  }
  const result = await client.program(region, targets);
  faulty.faults.flipToHost = 0;
  assert.equal(result.counts.OK, 32 * 32);
  const st = client.stats();
  assert.ok(st.crcErrors + st.cobsErrors + st.shortFrames + st.badHeader > 0, 'corruption was seen and counted');
  const blocks = tileRegion(region, maxProgramCells(client.info!.maxPayload)).length;
  assert.equal(macro.programCalls, blocks, 'each block executed once despite retries');
  const dev = await client.getCounters();
  assert.equal(dev.duplicateRequests! > 0 || st.retransmits === 0, true);
  await client.close();
});
