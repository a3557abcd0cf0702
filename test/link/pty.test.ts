import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SerialPortStream } from '@serialport/stream';
import { LinkError } from '../../src/common/errors.js';
import { MacroClient, tileRegion } from '../../src/link/client.js';
import { maxProgramCells } from '../../src/link/messages.js';
import { serveStream } from '../../src/link/device/serve.js';
import { loadNativeBinding, serialTransport } from '../../src/link/transports/serial.js';
import { transportFor } from '../../src/link/transports/open.js';
import { createTestDevice } from './helpers/test-macro.js';
import { hasSocat, ptyPair } from './helpers/pty.js';

const skip = hasSocat ? false : 'socat is not installed (apt-get install socat): the pty end-to-end test needs it';

test('end to end through a real pty pair with the serialport transport', { skip, timeout: 20_000 }, async () => {
  const pair = await ptyPair();
  const binding = await loadNativeBinding();
  const devicePort = new SerialPortStream({ binding, path: pair.b, baudRate: 921_600, autoOpen: false });
  await new Promise<void>((res, rej) => devicePort.open((e) => (e ? rej(e) : res())));
  const { endpoint, macro } = createTestDevice({ cellDelayMs: 0 });
  serveStream(endpoint, devicePort);
  const client = new MacroClient(transportFor(pair.a), { timeoutMs: 300 });
  try {
    const info = await client.connect();
    assert.equal(info.bootId, endpoint.bootId);
    assert.ok((await client.ping()) >= 0);
    const region = { array: 0, row: 0, col: 0, rows: 64, cols: 64 };
    const targets = new Float32Array(4096).map((_, i) => 2 + (i % 97));
    const r = await client.program(region, targets, { toleranceUs: 0.5 });
    assert.equal(r.counts.OK, 4096);
    const back = await client.readCells(region);
    assert.ok(back.every((v, i) => Math.abs(v - targets[i]!) < 0.6));
    assert.equal(macro.programCalls, tileRegion(region, maxProgramCells(info.maxPayload)).length, 'each block executed once');
    // A second opener of the same pty is refused with PORT_LOCKED.
    const other = new MacroClient(serialTransport({ path: pair.a }));
    await assert.rejects(other.connect(), (e: unknown) => e instanceof LinkError && e.code === 'PORT_LOCKED');
    const st = client.stats();
    assert.equal(st.crcErrors + st.cobsErrors + st.shortFrames, 0, 'a clean pty never corrupts a frame');
    // close() releases the port and its lock: the next client in this process can open it.
    await client.close();
    const again = new MacroClient(transportFor(pair.a), { timeoutMs: 300 });
    assert.equal((await again.connect()).bootId, endpoint.bootId);
    await again.close();
  } finally {
    await client.close();
    await new Promise<void>((res) => devicePort.close(() => res()));
    await pair.stop();
  }
});

test('a missing device path is PORT_NOT_FOUND with advice', { skip }, async () => {
  const client = new MacroClient(transportFor('/dev/ttyUSB-cimbench-missing'));
  await assert.rejects(client.connect(), (e: unknown) => e instanceof LinkError && e.code === 'PORT_NOT_FOUND' && /cimbench ports/.test(e.message));
});

test('a pty with nothing behind it is a silent device (TIMEOUT)', { skip, timeout: 10_000 }, async () => {
  const pair = await ptyPair();
  const client = new MacroClient(transportFor(pair.a), { timeoutMs: 50, retries: 1 });
  try {
    await assert.rejects(client.connect(), (e: unknown) => e instanceof LinkError && e.code === 'TIMEOUT' && /device silent/.test(e.message));
  } finally {
    await client.close();
    await pair.stop();
  }
});
