import assert from 'node:assert/strict';
import type { AddressInfo, Server } from 'node:net';
import { test } from 'node:test';
import { LinkError, InputError } from '../../src/common/errors.js';
import { MacroClient } from '../../src/link/client.js';
import { serveTcp } from '../../src/link/device/serve.js';
import { parseTcpUrl } from '../../src/link/transports/tcp.js';
import { transportFor } from '../../src/link/transports/open.js';
import type { LinkEvent } from '../../src/link/chip-link.js';
import { createTestDevice } from './helpers/test-macro.js';

const close = (s: Server): Promise<void> => new Promise((r) => s.close(() => r()));

test('tcp:// URLs parse; others fall through to serial paths', () => {
  assert.deepEqual(parseTcpUrl('tcp://127.0.0.1:4000'), { host: '127.0.0.1', port: 4000 });
  assert.deepEqual(parseTcpUrl('tcp://[::1]:5'), { host: '::1', port: 5 });
  assert.equal(parseTcpUrl('/dev/ttyUSB0'), undefined);
  assert.throws(() => parseTcpUrl('tcp://host'), InputError);
});

test('TCP transport on 127.0.0.1: hello, program, read, and reconnect after the server drops us', async () => {
  const { endpoint, macro } = createTestDevice();
  const sockets = new Set<import('node:net').Socket>();
  const server = await serveTcp(endpoint, { host: '127.0.0.1', port: 0 });
  server.on('connection', (s) => sockets.add(s));
  const port = (server.address() as AddressInfo).port;
  const client = new MacroClient(transportFor(`tcp://127.0.0.1:${port}`), { timeoutMs: 200, reconnect: { attempts: 10, delayMs: 20 } });
  const events: LinkEvent[] = [];
  client.on((e) => events.push(e));
  try {
    const info = await client.connect();
    assert.equal(info.bootId, endpoint.bootId);
    const region = { array: 1, row: 8, col: 8, rows: 16, cols: 16 };
    const targets = new Float32Array(256).fill(42);
    assert.equal((await client.program(region, targets)).counts.OK, 256);
    for (const s of sockets) s.destroy();
    const back = await client.readCells(region);
    assert.ok(back.every((v) => Math.abs(v - 42) < 1.1));
    assert.ok(events.some((e) => e.type === 'reconnect' && !e.rebooted));
    assert.equal(macro.programCalls, 1);
  } finally {
    await client.close();
    await close(server);
  }
});

test('nothing listening: PORT_NOT_FOUND', async () => {
  const { endpoint } = createTestDevice();
  const server = await serveTcp(endpoint);
  const port = (server.address() as AddressInfo).port;
  await close(server);
  const client = new MacroClient(transportFor(`tcp://127.0.0.1:${port}`));
  await assert.rejects(client.connect(), (e: unknown) => e instanceof LinkError && e.code === 'PORT_NOT_FOUND');
});
