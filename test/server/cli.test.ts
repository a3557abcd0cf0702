/**
 * `cimbench serve` and `cimbench demo --serve` through the real CLI entry (main() with every
 * registered command) as child processes: help, listening, the API answering over the demo's
 * database, and a clean exit on SIGINT. (serve once went unregistered and no test noticed.)
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { ensureUiBuilt } from '../../bench-ui/build.js';
import { getJson, postJson, tempDir } from './helpers.js';

const entry = fileURLToPath(new URL('../helpers/cli-entry.ts', import.meta.url));
const repo = fileURLToPath(new URL('../..', import.meta.url));

function cli(args: string[], timeout = 60_000): ReturnType<typeof spawnSync> & { stdout: string; stderr: string } {
  // From the checkout: tsx resolves from the working directory.
  return spawnSync(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: repo, encoding: 'utf8', timeout }) as ReturnType<typeof spawnSync> & { stdout: string; stderr: string };
}

interface Running {
  readonly child: ChildProcess;
  readonly url: string;
  readonly token: string;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
}

/** Spawns the CLI and resolves once it has printed the bench UI URL and the control token. */
async function startCli(args: string[], timeoutMs: number): Promise<Running> {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const found = await new Promise<{ url: string; token: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no URL line within ${timeoutMs} ms\nstdout:\n${out.slice(-2000)}\nstderr:\n${err.slice(-2000)}`));
    }, timeoutMs);
    const check = (): void => {
      const m = /bench UI: (http:\/\/127\.0\.0\.1:\d+)\/ .*\ncontrol token: (\S+)\n/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout?.off('data', check);
        resolve({ url: m[1] as string, token: m[2] as string });
      }
    };
    child.stdout?.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before printing the URL\nstdout:\n${out.slice(-2000)}\nstderr:\n${err.slice(-2000)}`));
    });
  });
  return { child, ...found, stdout: () => out, stderr: () => err, exited };
}

async function interrupt(r: Running): Promise<number | string> {
  r.child.kill('SIGINT');
  const timer = setTimeout(() => r.child.kill('SIGKILL'), 15_000);
  const code = await r.exited;
  clearTimeout(timer);
  return code;
}

describe('cimbench serve and demo --serve through the CLI', () => {
  it('serve --help, demo --help and the command list show the bench UI options', () => {
    const top = cli(['--help']);
    assert.equal(top.status, 0, top.stderr);
    assert.match(top.stdout, /^\s+serve \[options\]/m);
    const serve = cli(['serve', '--help']);
    assert.equal(serve.status, 0, serve.stderr);
    for (const opt of ['--db <file>', '--port <n>', '--host <addr>', '--campaigns <dir>', '--token <token>']) assert.ok(serve.stdout.includes(opt), `serve --help lacks ${opt}:\n${serve.stdout}`);
    const demo = cli(['demo', '--help']);
    assert.equal(demo.status, 0, demo.stderr);
    for (const opt of ['--serve', '--port <n>', '--host <addr>']) assert.ok(demo.stdout.includes(opt), `demo --help lacks ${opt}`);
  });

  it('refuses a bad --port (status 2, naming the option) and --port without --serve', () => {
    const r = cli(['serve', '--port', '70000', '--db', join(tempDir(), 'x.db')]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /port.*65535/);
    const d = cli(['demo', '--skip-search', '--port', '0', '--db', join(tempDir(), 'x.db')]);
    assert.equal(d.status, 2, d.stderr);
    assert.match(d.stderr, /--port and --host only go with --serve/);
    // A bad port with --serve is refused before the demo runs (no run recorded, no database written).
    const dir = tempDir();
    const e = cli(['demo', '--skip-search', '--serve', '--port', 'http', '--db', join(dir, 'x.db')]);
    assert.equal(e.status, 2, e.stderr);
    assert.match(e.stderr, /port/);
    assert.doesNotMatch(e.stderr, /demo finished/);
  });

  it('serve --port 0 listens, answers the API, refuses control without the token, and exits 0 on SIGINT', { timeout: 60_000 }, async () => {
    const dbPath = join(tempDir(), 'serve.db');
    const r = await startCli(['serve', '--db', dbPath, '--port', '0', '--campaigns', tempDir()], 30_000);
    try {
      const runs = await getJson(`${r.url}/api/runs`);
      assert.equal(runs.status, 200);
      assert.deepEqual(runs.body, { runs: [] });
      const refused = await postJson(`${r.url}/api/campaigns`, { file: 'none.json' });
      assert.equal(refused.status, 401);
      const wrong = await postJson(`${r.url}/api/campaigns`, { file: 'none.json' }, `${r.token}x`);
      assert.equal(wrong.status, 403);
      const accepted = await postJson(`${r.url}/api/campaigns`, { file: 'none.json' }, r.token);
      assert.equal(accepted.status, 404, 'with the printed token the request gets past the control check');
    } finally {
      assert.equal(await interrupt(r), 0, r.stderr());
    }
    assert.match(r.stderr(), /bench server stopping/);
    await assert.rejects(fetch(`${r.url}/api/runs`), 'the port is closed after SIGINT');
  });

  it('demo --skip-search --serve --port 0 keeps the UI up on the demo database until SIGINT', { timeout: 180_000 }, async () => {
    await ensureUiBuilt();
    const dbPath = join(tempDir('cimbench-demo-serve-'), 'demo.db');
    const r = await startCli(['demo', '--skip-search', '--serve', '--port', '0', '--db', dbPath, '--images', '50', '--drift', '1h'], 150_000);
    try {
      // The URL comes after the demo: its run is there, finished.
      assert.match(r.stderr(), /demo finished in .*: run 1 recorded in /);
      const runs = await getJson(`${r.url}/api/runs`);
      assert.equal(runs.status, 200);
      const list = runs.body.runs as Array<{ id: number; campaignName: string; status: string; exitStatus: string; cellsPlanned: number }>;
      assert.equal(list.length, 1);
      const run = list[0];
      assert.ok(run);
      assert.deepEqual([run.id, run.campaignName, run.status, run.exitStatus], [1, 'demo', 'completed', 'success']);
      const detail = await getJson(`${r.url}/api/runs/1`);
      assert.equal(detail.status, 200);
      const d = detail.body as { summary: { cells: { programmed: number } }; arrays: unknown[]; histograms: { levels: unknown[] } };
      assert.ok(d.summary.cells.programmed > 0.99 * run.cellsPlanned);
      assert.ok(d.arrays.length > 0 && d.histograms.levels.length > 0);
      // The pages are served too (built above).
      const page = await fetch(`${r.url}/`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<script[^>]+app\.js/);
      assert.equal(r.child.exitCode, null, 'still serving');
    } finally {
      assert.equal(await interrupt(r), 0, r.stderr());
    }
    assert.match(r.stderr(), /bench server stopping/);
    await assert.rejects(fetch(`${r.url}/api/runs`));
  });
});
