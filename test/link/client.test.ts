import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError, LinkError } from '../../src/common/errors.js';
import { MacroClient, tileRegion } from '../../src/link/client.js';
import { DEFAULT_DEVICE_CONFIG, DeviceEndpoint } from '../../src/link/device/endpoint.js';
import { encodeFrame } from '../../src/link/frame.js';
import { maxProgramCells, encodeErrorBody } from '../../src/link/messages.js';
import { CellStatus, EventCode, Flag } from '../../src/link/protocol.js';
import { classifyOpenError, serialTransport } from '../../src/link/transports/serial.js';
import { inProcessBinding, inProcessTransport, type InProcessDevice } from '../../src/link/transports/in-process.js';
import { DeviceStateUnknownError, type LinkEvent } from '../../src/link/chip-link.js';
import { ConcurrencyProbe, createTestDevice, FaultyDevice, TEST_IDENTITY, TestMacro } from './helpers/test-macro.js';
import { VECTOR_NETWORK } from './helpers/vectors.js';

const isLinkError = (code: string) => (e: unknown) => e instanceof LinkError && e.code === code;

async function setup(opts: { cellDelayMs?: number; timeoutMs?: number; retries?: number; window?: number } = {}) {
  const { endpoint, macro } = createTestDevice({ cellDelayMs: opts.cellDelayMs ?? 0, progressIntervalMs: 5 });
  const faulty = new FaultyDevice(endpoint);
  const client = new MacroClient(inProcessTransport(faulty), {
    timeoutMs: opts.timeoutMs ?? 80,
    retries: opts.retries ?? 4,
    window: opts.window ?? 4,
    reconnect: { attempts: 10, delayMs: 20 },
  });
  const events: LinkEvent[] = [];
  client.on((e) => events.push(e));
  const info = await client.connect();
  return { endpoint, macro, faulty, client, info, events };
}

const ramp = (n: number, lo = 5, span = 80): Float32Array => new Float32Array(n).map((_, i) => lo + ((i * 7) % span));

test('HELLO reports the device; PING echoes; config round-trips and is checked on both sides', async () => {
  const { client, info, endpoint } = await setup();
  assert.equal(info.protocolMajor, 1);
  assert.equal(info.bootId, endpoint.bootId);
  assert.equal(info.rows, TEST_IDENTITY.rows);
  assert.equal(info.firmwareName, 'cimbench-test-device');
  assert.ok((await client.ping(new Uint8Array([9, 8, 7]))) >= 0);
  const cfg = await client.getConfig();
  for (const [k, v] of Object.entries(DEFAULT_DEVICE_CONFIG)) assert.ok(Math.abs(cfg[k as keyof typeof cfg] - v) < 1e-6 * Math.max(1, v), k);
  const applied = await client.setConfig({ ...cfg, maxPulses: 40, vSetV: 1.5 });
  assert.equal(applied.maxPulses, 40);
  const before = (await client.getCounters()).rxFrames!;
  await assert.rejects(client.setConfig({ ...cfg, vSetV: 9 }), (e: unknown) => e instanceof InputError && /vSetV/.test(e.describe()));
  assert.equal((await client.getCounters()).rxFrames!, before + 1, 'the bad config never reached the device');
  await client.close();
});

test('device refuses a config outside the safe limits even from a host that skips the check', async () => {
  const { endpoint } = createTestDevice();
  const out: Uint8Array[] = [];
  endpoint.attach((b) => out.push(b));
  const cfg = new Uint8Array(28);
  const dv = new DataView(cfg.buffer);
  dv.setFloat32(0, 9, true); // vSetV far above 3 V
  endpoint.receive(encodeFrame({ flags: 0, type: 0x04, seq: 0, requestId: 77, payload: cfg }));
  const { decodeWireFrame } = await import('../../src/link/frame.js');
  const r = decodeWireFrame(out[0]!);
  assert.ok(r.ok && r.frame.flags & Flag.ERROR);
  if (r.ok) assert.deepEqual(Array.from(r.frame.payload.subarray(0, 4)), Array.from(encodeErrorBody({ code: 5, arg: 0, message: '' }).subarray(0, 4)));
  assert.equal(endpoint.currentConfig.vSetV, DEFAULT_DEVICE_CONFIG.vSetV);
});

test('PROGRAM write-verifies a whole array in pipelined blocks; READ_CELLS reads it back', async () => {
  const { client, macro, info } = await setup();
  const region = { array: 0, row: 0, col: 0, rows: 64, cols: 64 };
  const targets = ramp(64 * 64);
  const seen: number[] = [];
  const r = await client.program(region, targets, { toleranceUs: 0.5, onProgress: (d) => seen.push(d) });
  assert.equal(r.outcome, 'COMPLETE');
  assert.equal(r.counts.OK, 4096);
  assert.equal(r.totalPulses, Array.from(r.pulses).reduce((a, b) => a + b, 0));
  assert.equal(seen[seen.length - 1], 4096);
  assert.equal(macro.programCalls, tileRegion(region, maxProgramCells(info.maxPayload)).length);
  const back = await client.readCells(region, { averages: 8 });
  for (let i = 0; i < targets.length; i++) assert.ok(Math.abs(back[i]! - targets[i]!) < 0.6, `cell ${i}: ${back[i]} vs ${targets[i]}`);
  await assert.rejects(client.program({ ...region, rows: 65 }, new Float32Array(65 * 64).fill(5)), InputError);
  await assert.rejects(client.program({ ...region, rows: 1, cols: 1 }, new Float32Array([500])), /outside the device range/);
  await client.close();
});

test('a lost reply is answered from the device cache: retried with the same id, pulsed once', async () => {
  const { client, macro, faulty } = await setup();
  const region = { array: 1, row: 0, col: 0, rows: 8, cols: 8 };
  faulty.faults.dropToHost = 1; // the PROGRAM reply vanishes
  const r = await client.program(region, ramp(64));
  assert.equal(r.counts.OK, 64);
  assert.equal(macro.programCalls, 1);
  const pulses = macro.pulsesApplied;
  assert.equal(r.totalPulses, pulses);
  const st = client.stats();
  assert.ok(st.retransmits >= 1);
  assert.ok(st.duplicateReplies >= 1, 'the retry was answered from the cache');
  assert.ok((await client.getCounters()).duplicateRequests! >= 1);
  faulty.faults.dropToDevice = 1; // now the request itself is lost
  await client.readCells(region);
  assert.ok(client.stats().retransmits >= 2);
  await client.close();
});

test('a silent device gives TIMEOUT after the retries, with advice', async () => {
  const { client, faulty } = await setup({ timeoutMs: 20, retries: 2 });
  faulty.faults.stalled = true;
  await assert.rejects(client.ping(), (e: unknown) => isLinkError('TIMEOUT')(e) && /device silent.*3 attempts/.test((e as Error).message));
  faulty.faults.stalled = false;
  assert.ok((await client.ping()) >= 0, 'and the link works again afterwards');
  await client.close();
});

/** A client behind a ConcurrencyProbe that records how many requests were outstanding at once. */
async function probed(deviceWindow: number, clientWindow: number) {
  const { endpoint, macro } = createTestDevice({ progressIntervalMs: 5, window: deviceWindow, maxPayload: 512 });
  const faulty = new FaultyDevice(endpoint);
  const probe = new ConcurrencyProbe(faulty);
  const client = new MacroClient(inProcessTransport(probe), { timeoutMs: 200, retries: 4, window: clientWindow });
  await client.connect();
  return { client, probe, faulty, macro };
}

test('the window keeps several requests in flight, never more than min(host, device window); split and delayed bytes are fine', async () => {
  // Device window 4 caps a host window of 8.
  const { client, probe, faulty } = await probed(4, 8);
  faulty.faults.chunk = 7;
  faulty.faults.delayMs = 2;
  const region = (i: number) => ({ array: 0, row: i * 4, col: 0, rows: 4, cols: 16 });
  const reads = await Promise.all(Array.from({ length: 12 }, (_, i) => client.readCells(region(i))));
  assert.equal(reads.length, 12);
  assert.equal(probe.requests, 12);
  assert.equal(probe.maxOutstanding, 4, 'four requests were outstanding at once, and never more');
  assert.equal((await client.getCounters()).busyRejects, 0, 'so the device queue never overflowed');
  await client.close();

  // A host window of 3 below the device's 4: a bulk PROGRAM pipelines exactly 3 blocks.
  const second = await probed(4, 3);
  const big = { array: 1, row: 0, col: 0, rows: 32, cols: 64 };
  const blocks = tileRegion(big, maxProgramCells(512)).length;
  const r = await second.client.program(big, ramp(32 * 64), { toleranceUs: 0.5 });
  assert.equal(r.counts.OK, 32 * 64);
  assert.ok(blocks > 3);
  assert.equal(second.probe.requests, blocks);
  assert.equal(second.probe.maxOutstanding, 3);
  assert.equal(second.macro.programCalls, blocks);
  await second.client.close();
});

test('CANCEL stops a long PROGRAM at a cell boundary and every cell is accounted for', async () => {
  const { client, macro } = await setup({ cellDelayMs: 1, timeoutMs: 300 });
  const region = { array: 0, row: 0, col: 0, rows: 64, cols: 64 };
  const ac = new AbortController();
  const r = await client.program(region, ramp(4096), {
    signal: ac.signal,
    onProgress: (done) => {
      if (done >= 20) ac.abort();
    },
  });
  assert.equal(r.outcome, 'CANCELLED');
  assert.ok(r.counts.NOT_ATTEMPTED > 0);
  assert.equal(r.counts.OK + r.counts.NOT_ATTEMPTED + r.counts.PULSE_LIMIT + r.counts.ITER_LIMIT + r.counts.STUCK, 4096);
  for (let i = 0; i < 4096; i++) if (r.status[i] === CellStatus.NOT_ATTEMPTED) assert.equal(r.pulses[i], 0);
  assert.equal(r.totalPulses, macro.pulsesApplied, 'pulses reported = pulses applied');
  const c = await client.getCounters();
  assert.ok(c.cancels! >= 1);
  const ev = await client.getEvents();
  assert.ok(ev.events.some((e) => e.code === EventCode.OP_CANCELLED));
  await client.close();
});

test('RESET, SAFE_STATE and the test clock', async () => {
  const { client, macro } = await setup();
  await client.reset();
  assert.equal((await client.getCounters()).resets, 1);
  assert.equal(await client.safeState(true), true);
  assert.equal(macro.safe, true);
  await assert.rejects(client.readCells({ array: 0, row: 0, col: 0, rows: 1, cols: 1 }), (e: unknown) => isLinkError('DEVICE_ERROR')(e) && (e as LinkError).details?.deviceCode === 'SAFE_STATE');
  assert.equal(await client.safeState(false), false);
  await client.readCells({ array: 0, row: 0, col: 0, rows: 1, cols: 1 });
  const clock = await client.advanceClock(3600);
  assert.ok(clock >= 3_600_000);
  assert.equal(macro.clockAdvancedS, 3600);
  const codes = (await client.getEvents()).events.map((e) => e.code);
  for (const c of [EventCode.BOOT, EventCode.RESET, EventCode.SAFE_STATE_ENTER, EventCode.SAFE_STATE_LEAVE, EventCode.CLOCK_ADVANCED]) assert.ok(codes.includes(c), `event ${c}`);
  await client.close();
});

test('MVM returns per-plane ADC codes; LOAD_NETWORK validates on both sides; INFER returns logits', async () => {
  const { client } = await setup();
  const region = { array: 1, row: 0, col: 0, rows: 4, cols: 2 };
  await client.program(region, new Float32Array([100, 1, 100, 1, 100, 1, 100, 1]), { toleranceUs: 0.5 });
  const mvm = await client.mvm(region, new Uint32Array([1, 1, 3, 0]), 2);
  assert.equal(mvm.planes, 2);
  assert.ok(mvm.codes[0]! > mvm.codes[1]!, 'high-conductance column gives the larger code');
  assert.ok(mvm.codes[0]! > mvm.codes[2]!, 'plane 0 has three active rows, plane 1 one');
  const net = await client.loadNetwork(VECTOR_NETWORK);
  assert.equal(net.layers, 1);
  const out = await client.infer(net.networkId, new Uint8Array([0, 255, 128, 64, 10, 10]), [1, 1, 2]);
  assert.equal(out.count, 3);
  assert.deepEqual(Array.from(out.logits), [127.5, 255, 96, 192, 10, 20]);
  const badPlace = structuredClone(VECTOR_NETWORK);
  badPlace.layers[0]!.matrices![0]!.placements[0]!.array = 9;
  await assert.rejects(client.loadNetwork(badPlace), (e: unknown) => isLinkError('DEVICE_ERROR')(e) && /array 9 but the chip has 2/.test((e as Error).message));
  const badShape = structuredClone(VECTOR_NETWORK);
  badShape.layers[0]!.matrices![0]!.bias = [1];
  await assert.rejects(client.loadNetwork(badShape), (e: unknown) => e instanceof InputError && /bias/.test(e.describe()));
  await assert.rejects(client.infer(0xdead, new Uint8Array(2), [1, 1, 2]), (e: unknown) => isLinkError('DEVICE_ERROR')(e) && (e as LinkError).details?.deviceCode === 'NO_NETWORK');
  await client.close();
});

test('unplug mid-operation: reconnect, same boot id, requests resume without a second pulse', async () => {
  const { client, macro, faulty, events, info } = await setup({ cellDelayMs: 1, timeoutMs: 200 });
  const region = { array: 0, row: 0, col: 0, rows: 32, cols: 64 };
  let unplugged = false;
  const r = await client.program(region, ramp(2048), {
    onProgress: (done) => {
      if (!unplugged && done > 100) {
        unplugged = true;
        faulty.unplug('cable pulled');
      }
    },
  });
  assert.ok(unplugged);
  assert.equal(r.counts.OK, 2048);
  assert.equal(macro.programCalls, tileRegion(region, maxProgramCells(info.maxPayload)).length, 'no block ran twice');
  assert.ok(events.some((e) => e.type === 'disconnect'));
  assert.ok(events.some((e) => e.type === 'reconnect' && !e.rebooted));
  assert.equal(client.stats().reconnects, 1);
  assert.ok(faulty.connections >= 2);
  await client.close();
});

test('a reboot (new boot id) fails requests in flight with DISCONNECTED and emits reboot', async () => {
  const { client, faulty, events, endpoint } = await setup({ cellDelayMs: 1, timeoutMs: 200 });
  const region = { array: 0, row: 0, col: 0, rows: 16, cols: 16 };
  const p = client.program(region, ramp(256));
  await new Promise((r) => setTimeout(r, 30));
  const fresh = new DeviceEndpoint({ backend: new TestMacro(), testClock: true });
  faulty.target = fresh;
  faulty.unplug('power cycle');
  await assert.rejects(p, (e: unknown) => isLinkError('DISCONNECTED')(e) && (e as LinkError).details?.rebooted === true && /read cell state back/.test((e as Error).message));
  const reboot = events.find((e) => e.type === 'reboot');
  assert.deepEqual(reboot, { type: 'reboot', previousBootId: endpoint.bootId, bootId: fresh.bootId });
  assert.equal(client.info?.bootId, fresh.bootId);
  assert.ok((await client.ping()) >= 0, 'the link is usable after the reboot');
  await client.close();
});

test('a power cycle mid-PROGRAM: no queued block reaches the new boot; PROGRAM is refused until the read-back is acknowledged', async () => {
  // 256-byte payloads: 16x16 cells become 16 one-row blocks, window 2, so most blocks wait for a slot.
  const { endpoint } = createTestDevice({ cellDelayMs: 1, progressIntervalMs: 5, maxPayload: 256 });
  const faulty = new FaultyDevice(endpoint);
  const client = new MacroClient(inProcessTransport(faulty), { timeoutMs: 200, retries: 4, window: 2, reconnect: { attempts: 10, delayMs: 20 } });
  await client.connect();
  const region = { array: 0, row: 0, col: 0, rows: 16, cols: 16 };
  const blocks = tileRegion(region, maxProgramCells(256)).length;
  assert.equal(blocks, 16);
  let cycled = false;
  const freshMacro = new TestMacro({ cellDelayMs: 1 });
  const fresh = new DeviceEndpoint({ backend: freshMacro, testClock: true, maxPayload: 256 });
  const p = client.program(region, ramp(256), {
    onProgress: (done) => {
      if (!cycled && done >= 5) {
        cycled = true;
        faulty.target = fresh;
        faulty.unplug('power cycle');
      }
    },
  });
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(cycled);
  assert.ok(isLinkError('DISCONNECTED')(err), String(err));
  const details = (err as LinkError).details!;
  assert.equal(details.rebooted, true);
  assert.equal(details.blocks, blocks);
  assert.equal(details.blocksDone, 0);
  // Give any block that might still be queued every chance to go out.
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(freshMacro.programCalls, 0, 'no block of the interrupted PROGRAM ran on the new boot');
  assert.equal(freshMacro.pulsesApplied, 0);
  assert.deepEqual(client.stateUnknown, { previousBootId: endpoint.bootId, bootId: fresh.bootId });

  // State unknown: PROGRAM is refused without sending anything; reads still work.
  const rxBefore = (await client.getCounters()).rxFrames!;
  await assert.rejects(
    client.program(region, ramp(256)),
    (e: unknown) => e instanceof DeviceStateUnknownError && e.code === 'DISCONNECTED' && e.details?.stateUnknown === true && /acknowledgeStateReadBack/.test(e.message),
  );
  assert.equal((await client.getCounters()).rxFrames!, rxBefore + 1, 'only the GET_COUNTERS itself reached the device');
  assert.equal(freshMacro.programCalls, 0);
  const back = await client.readCells(region);
  assert.equal(back.length, 256);
  assert.equal(client.stateUnknown?.bootId, fresh.bootId, 'a read alone does not clear the condition');

  // Acknowledging a stale boot id is refused; the current one re-enables PROGRAM.
  assert.throws(() => client.acknowledgeStateReadBack(endpoint.bootId), (e: unknown) => e instanceof InputError && /not the unacknowledged reboot/.test(e.message));
  assert.ok(client.stateUnknown);
  client.acknowledgeStateReadBack(fresh.bootId);
  assert.equal(client.stateUnknown, undefined);
  const r = await client.program(region, ramp(256), { toleranceUs: 0.5 });
  assert.equal(r.counts.OK, 256);
  assert.equal(freshMacro.programCalls, blocks);
  await client.close();
});

test('a reboot between operations (nothing in flight) still requires a read-back before PROGRAM', async () => {
  const { client, faulty, endpoint } = await setup();
  const fresh = new DeviceEndpoint({ backend: new TestMacro(), testClock: true });
  faulty.target = fresh;
  const reconnected = new Promise<void>((resolve) => client.on((e) => e.type === 'reconnect' && resolve()));
  faulty.unplug('power cycle while idle');
  await reconnected;
  assert.ok((await client.ping()) >= 0);
  assert.deepEqual(client.stateUnknown, { previousBootId: endpoint.bootId, bootId: fresh.bootId });
  const one = { array: 0, row: 0, col: 0, rows: 1, cols: 1 };
  await assert.rejects(client.program(one, new Float32Array([50])), DeviceStateUnknownError);
  await client.readCells(one);
  client.acknowledgeStateReadBack(fresh.bootId);
  assert.equal((await client.program(one, new Float32Array([50]), { toleranceUs: 0.5 })).counts.OK, 1);
  await client.close();
});

test('a device speaking another protocol version is reported as such', async () => {
  const v2: InProcessDevice = {
    connect(toHost) {
      return {
        fromHost(bytes) {
          // Answer any HELLO in v2 framing (same header positions, version byte 2).
          const id = bytes.length > 6 ? 1 : 0;
          if (id) toHost(encodeFrame({ version: 2, flags: Flag.RESPONSE, type: 1, seq: 0, requestId: 1, payload: new Uint8Array(4) }));
        },
        detach() {},
      };
    },
  };
  const client = new MacroClient(inProcessTransport(v2), { timeoutMs: 50, retries: 1 });
  await assert.rejects(client.connect(), (e: unknown) => isLinkError('PROTOCOL')(e) && /protocol v2.*v1/.test((e as Error).message));
});

test('port errors: missing, locked, permission (with the dialout advice)', async () => {
  const { endpoint } = createTestDevice();
  const binding = inProcessBinding(new Map([['inproc://a', endpoint]]));
  const missing = new MacroClient(serialTransport({ path: 'inproc://nope', binding }));
  await assert.rejects(missing.connect(), isLinkError('PORT_NOT_FOUND'));
  const first = new MacroClient(serialTransport({ path: 'inproc://a', binding }));
  await first.connect();
  const second = new MacroClient(serialTransport({ path: 'inproc://a', binding }));
  await assert.rejects(second.connect(), (e: unknown) => isLinkError('PORT_LOCKED')(e) && /another process/.test((e as Error).message));
  await first.close();
  const perm = classifyOpenError(new Error('Error: Permission denied, cannot open /dev/ttyUSB0'), '/dev/ttyUSB0');
  assert.equal(perm.code, 'PORT_PERMISSION');
  assert.match(perm.message, /dialout group.*udev rule/);
  assert.equal(classifyOpenError(new Error('Error: No such file or directory, cannot open /dev/ttyUSB9'), 'x').code, 'PORT_NOT_FOUND');
  assert.equal(classifyOpenError(new Error('Error Resource temporarily unavailable Cannot lock port'), 'x').code, 'PORT_LOCKED');
});
