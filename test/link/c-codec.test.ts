import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const cDir = fileURLToPath(new URL('../../firmware-protocol/c/', import.meta.url));
const tsv = fileURLToPath(new URL('../../firmware-protocol/vectors/frames.tsv', import.meta.url));
const cc = process.env.CC ?? 'cc';
const hasCompiler = spawnSync(cc, ['--version'], { encoding: 'utf8' }).status === 0;

test('reference C codec builds warning-free and passes every vector', { skip: hasCompiler ? false : `no C compiler (${cc}) on this machine: install gcc to run the C vector test` }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'cimlink-c-'));
  try {
    const exe = join(dir, 'test_vectors');
    const build = spawnSync(cc, ['-std=c99', '-Wall', '-Wextra', '-Werror', '-pedantic', '-O2', '-o', exe, join(cDir, 'test_vectors.c'), join(cDir, 'cimlink.c')], { encoding: 'utf8' });
    assert.equal(build.status, 0, `C build failed:\n${build.stderr}`);
    const run = spawnSync(exe, [tsv], { encoding: 'utf8' });
    assert.equal(run.status, 0, `C vector test failed:\n${run.stdout}${run.stderr}`);
    const m = /(\d+) passed, 0 failed/.exec(run.stdout);
    assert.ok(m && Number(m[1]) >= 40, run.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
