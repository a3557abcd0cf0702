import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { main } from '../../src/cli/main.js';
import { serveTcp } from '../../src/link/device/serve.js';
import { createTestDevice } from './helpers/test-macro.js';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = process.stdout.write.bind(process.stdout);
  const e = process.stderr.write.bind(process.stderr);
  // Only strings are ours: the test runner itself writes binary reports to stdout meanwhile.
  process.stdout.write = ((s: string | Uint8Array, ...rest: unknown[]) => (typeof s === 'string' ? ((out += s), true) : (o as (...a: unknown[]) => boolean)(s, ...rest))) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array, ...rest: unknown[]) => (typeof s === 'string' ? ((err += s), true) : (e as (...a: unknown[]) => boolean)(s, ...rest))) as typeof process.stderr.write;
  try {
    const code = await main(['node', 'cimbench', ...args]);
    return { code, out, err };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}

test('cimbench hello --json prints the device information', async () => {
  const { endpoint } = createTestDevice();
  const server = await serveTcp(endpoint);
  const port = (server.address() as AddressInfo).port;
  try {
    const r = await run(['hello', '--port', `tcp://127.0.0.1:${port}`, '--json']);
    assert.equal(r.code, 0, r.err);
    const info = JSON.parse(r.out) as Record<string, unknown>;
    assert.equal(info.chipId, 'TEST-0001');
    assert.equal(info.bootId, `0x${endpoint.bootId.toString(16).padStart(8, '0')}`);
    assert.ok((info.capabilities as string[]).includes('PROGRAM'));
    const text = await run(['hello', '--port', `tcp://127.0.0.1:${port}`]);
    assert.match(text.out, /arrays\s+2 x 64x64/);
  } finally {
    await new Promise((r) => server.close(r));
  }
});

test('cimbench hello on a missing port fails with PORT_NOT_FOUND and exit 1', async () => {
  const r = await run(['hello', '--port', '/dev/ttyUSB-cimbench-none']);
  assert.equal(r.code, 1);
  assert.match(r.err, /PORT_NOT_FOUND.*cimbench ports/);
});

test('cimbench ports never crashes, even without udevadm', async () => {
  const r = await run(['ports', '--json']);
  assert.equal(r.code, 0, r.err);
  const listing = JSON.parse(r.out) as { source: string; ports: unknown[]; note?: string };
  assert.ok(['udev', 'dev-scan'].includes(listing.source));
  if (listing.source === 'dev-scan') assert.match(listing.note ?? '', /scanning \/dev/);
});
