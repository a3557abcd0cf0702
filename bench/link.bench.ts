/**
 * Link figures through a real pty pair (socat) with the serialport transport:
 * - link.payload_efficiency: payload bytes / wire bytes (both directions) while bulk-programming
 *   four 128x128 arrays (target >= 0.95);
 * - link.requests_per_s: small requests (8-byte PING) one at a time, and with a window of 4.
 * The device is the emulated macro (fixtures/emulated-macro, typical chip, real write-verify physics).
 * Run: npm run bench:link
 */
import { performance } from 'node:perf_hooks';
import { MacroClient } from '../src/link/client.js';
import { transportFor } from '../src/link/transports/open.js';
import { EmulatorDevice, servePty, socatAvailable } from '../fixtures/emulated-macro/index.js';

const emit = (metric: string, value: number, unit: string, extra: Record<string, unknown> = {}): void => {
  process.stdout.write(`${JSON.stringify({ metric, value, unit, ...extra })}\n`);
};

if (!socatAvailable()) {
  process.stderr.write('bench:link needs socat (apt-get install socat)\n');
  process.exit(1);
}

const arrays = 4;
const device = new EmulatorDevice({ chip: 'typical', seed: 1, workers: 0, progressIntervalMs: 100 });
const pty = await servePty(device, `/tmp/cimbench-bench-link-${process.pid}`);
const client = new MacroClient(transportFor(pty.path), { timeoutMs: 2000 });

try {
  await client.connect();
  const s0 = client.stats();
  const t0 = performance.now();
  let cells = 0;
  for (let a = 0; a < arrays; a++) {
    const region = { array: a, row: 0, col: 0, rows: 128, cols: 128 };
    const targets = new Float32Array(128 * 128).map((_, i) => 2.5 + ((i * 13 + a) % 370) / 10);
    const r = await client.program(region, targets);
    if (r.counts.OK < 0.99 * targets.length || r.counts.NOT_ATTEMPTED > 0) throw new Error(`programming failed: ${JSON.stringify(r.counts)}`);
    cells += targets.length;
  }
  const dt = (performance.now() - t0) / 1000;
  const s1 = client.stats();
  const payload = s1.txPayloadBytes - s0.txPayloadBytes + (s1.rxPayloadBytes - s0.rxPayloadBytes);
  const wire = s1.txBytes - s0.txBytes + (s1.rxBytes - s0.rxBytes);
  emit('link.payload_efficiency', Number((payload / wire).toFixed(4)), 'ratio', { payloadBytes: payload, wireBytes: wire, cells, frames: s1.txFrames - s0.txFrames + (s1.rxFrames - s0.rxFrames), transport: 'pty (socat)' });
  emit('link.program_cells_per_s', Math.round(cells / dt), 'cells/s', { transport: 'pty (socat)', note: 'emulated macro (typical chip): write-verify physics included' });

  const ping = new Uint8Array(8);
  for (let i = 0; i < 200; i++) await client.ping(ping); // warm-up
  const n = 3000;
  let t = performance.now();
  for (let i = 0; i < n; i++) await client.ping(ping);
  emit('link.requests_per_s', Math.round(n / ((performance.now() - t) / 1000)), 'requests/s', { request: 'PING 8 B', inFlight: 1, transport: 'pty (socat)' });
  t = performance.now();
  await Promise.all(Array.from({ length: n }, () => client.ping(ping)));
  emit('link.requests_per_s_window4', Math.round(n / ((performance.now() - t) / 1000)), 'requests/s', { request: 'PING 8 B', inFlight: 4, transport: 'pty (socat)' });
  const st = client.stats();
  if (st.retransmits + st.crcErrors + st.cobsErrors > 0) process.stderr.write(`warning: ${st.retransmits} retransmits, ${st.crcErrors} CRC errors during the bench\n`);
} finally {
  await client.close();
  await pty.stop();
  await device.close();
}
