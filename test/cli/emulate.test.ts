import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MacroClient } from '../../src/link/client.js';
import { transportFor } from '../../src/link/transports/open.js';
import { socatAvailable } from '../../fixtures/emulated-macro/index.js';

const entry = fileURLToPath(new URL('../helpers/cli-entry.ts', import.meta.url));
const skip = socatAvailable() ? false : 'socat is not installed (apt-get install socat)';

function start(args: string[]): { child: ChildProcessWithoutNullStreams; lines: () => Promise<string>; stderr: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, 'emulate', ...args], { stdio: 'pipe' });
  let out = '';
  let err = '';
  const waiting: Array<() => void> = [];
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of waiting.splice(0)) w();
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.on('exit', () => {
    for (const w of waiting.splice(0)) w();
  });
  const lines = async (): Promise<string> => {
    const deadline = Date.now() + 20_000;
    while (!out.includes('\n')) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`emulate produced no line (exit ${child.exitCode}): ${err}`);
      await new Promise<void>((r) => {
        waiting.push(r);
        setTimeout(r, 200);
      });
    }
    const i = out.indexOf('\n');
    const line = out.slice(0, i);
    out = out.slice(i + 1);
    return line;
  };
  return { child, lines, stderr: () => err };
}

async function stop(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGINT');
  return exited;
}

test('cimbench emulate --link serves the macro on a pty until SIGINT, then prints its counters', { skip, timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cimbench-emulate-cli-'));
  const path = join(dir, 'macro');
  const { child, lines, stderr } = start(['--link', path, '--seed', '3', '--chip', 'degraded', '--json', '--workers', '0']);
  try {
    const up = JSON.parse(await lines()) as { listening: string; chipId: string; bootId: string; transport: string };
    assert.equal(up.listening, path);
    assert.equal(up.transport, 'pty');
    assert.match(up.chipId, /^EMU-emulated-degraded-00000003$/);
    const client = new MacroClient(transportFor(path), { timeoutMs: 1000 });
    const info = await client.connect();
    assert.equal(info.chipId, up.chipId);
    assert.equal(`0x${info.bootId.toString(16).padStart(8, '0')}`, up.bootId);
    const r = await client.program({ array: 0, row: 0, col: 0, rows: 4, cols: 16 }, new Float32Array(64).fill(20));
    await client.close();
    assert.equal(await stop(child), 0, stderr());
    const done = JSON.parse(await lines()) as { stopped: string; pulses: number };
    assert.equal(done.stopped, 'SIGINT');
    assert.equal(done.pulses, r.totalPulses);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cimbench emulate --tcp 0 serves on loopback and reports the port', { timeout: 60_000 }, async () => {
  const { child, lines, stderr } = start(['--tcp', '0', '--json', '--workers', '0']);
  try {
    const up = JSON.parse(await lines()) as { listening: string; transport: string };
    assert.match(up.listening, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    const client = new MacroClient(transportFor(up.listening), { timeoutMs: 1000 });
    const info = await client.connect();
    assert.equal(info.firmwareName, 'cimbench-emulated-macro');
    await client.close();
    assert.equal(await stop(child), 0, stderr());
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('cimbench emulate refuses bad options with exit 2 and names the problem', () => {
  const run = (args: string[], env: NodeJS.ProcessEnv = process.env) => spawnSync(process.execPath, ['--import', 'tsx', entry, 'emulate', ...args], { encoding: 'utf8', env, timeout: 30_000 });
  let r = run(['--seed', '1']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /exactly one of --link <path> or --tcp <port>/);
  r = run(['--tcp', '0', '--faults', 'loss=2']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /loss/);
  r = run(['--tcp', '0', '--faults', 'jitter=5ms']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown fault "jitter"/);
  r = run(['--tcp', '0', '--chip', 'shiny']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown chip "shiny"/);
  // Without socat on PATH the pty form says how to get it.
  r = run(['--link', join(tmpdir(), 'cimbench-no-socat')], { ...process.env, PATH: '/nonexistent' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /apt-get install socat/);
});
