import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { repoPath } from '../helpers/paths.js';

const root = mkdtempSync(join(tmpdir(), 'cimbench-search-cli-'));
const db = join(root, 'runs.db');
const subset = repoPath('fixtures/datasets/fashion-mnist-subset');

/** Exit status, one line on stderr without a stack trace, and the message. */
function badInput(args: string[], status: number, pattern: RegExp): void {
  const r = runCli(['search', '--db', db, ...args]);
  assert.equal(r.status, status, `exit status for ${args.join(' ')}: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
}

describe('cimbench search: bad input is one clear error and writes nothing', () => {
  it('unknown space, preset, budget, method', () => {
    const out = join(root, 'never');
    badInput(['--space', 'mnist-ish', '--out', out], 2, /unknown search space.*fashion-mnist/);
    badInput(['--space', 'fashion-mnist', '--preset', 'fastest', '--out', out], 2, /unknown preset "fastest".*accuracy, balanced, edp/);
    badInput(['--space', 'fashion-mnist', '--budget', 'huge', '--out', out], 2, /unknown budget "huge".*tiny, small, full/);
    badInput(['--space', 'fashion-mnist', '--method', 'darts', '--out', out], 2, /unknown method "darts"/);
    badInput(['--space', 'fashion-mnist', '--weights', '0.5', '--out', out], 2, /--weights.*task,hw/);
    badInput(['--space', 'fashion-mnist', '--teacher', join(root, 'no-teacher'), '--out', out], 2, /no spec\.json here: pass the teacher\/ folder/);
    badInput(['--space', 'fashion-mnist', '--method', 'spos-nsga2', '--teacher', root, '--out', out], 2, /spos-nsga2 trains no teacher/);
    badInput(['--space', 'fashion-mnist', '--warmup', root, '--out', out], 2, /no task-significance\.json here: pass the output directory of an earlier nas4cim search/);
    badInput(['--space', 'fashion-mnist', '--method', 'spos-nsga2', '--warmup', root, '--out', out], 2, /spos-nsga2 has no DDE-GSCST warm-up to reuse/);
    badInput(['--space', 'fashion-mnist', '--teacher', root, '--warmup', root, '--out', out], 2, /either --teacher or --warmup/);
    badInput(['--space', 'fashion-mnist', '--top-m', '0', '--out', out], 2, /--top-m.*integer >= 1/);
    assert.equal(existsSync(out), false);
  });

  it('missing dataset names the package or path', () => {
    const out = join(root, 'nodata');
    badInput(['--space', 'fashion-mnist', '--budget', 'tiny', '--data', join(root, 'no-such-dir'), '--out', out], 2, /FashionMNIST file .* not found/);
    assert.equal(existsSync(out), false);
  });

  it('a macro too small for any network of the space', () => {
    const profile = JSON.parse(readFileSync(repoPath('calibration/hardware/nas4cim-macro.json'), 'utf8'));
    // One array and no sharing: every weighted layer needs an array of its own.
    profile.array.arraysPerTile = 1;
    profile.mapping = { ...profile.mapping, shareArrays: false };
    const path = join(root, 'one-array.json');
    writeFileSync(path, JSON.stringify(profile));
    const out = join(root, 'nofit');
    badInput(['--space', 'fashion-mnist', '--budget', 'tiny', '--hardware', path, '--data', subset, '--out', out], 3, /DOES_NOT_FIT.*smallest fashion-mnist network.*arrays/);
    assert.equal(existsSync(out), false);
  });

  it('an existing output directory is left alone without --force', () => {
    const out = join(root, 'taken');
    mkdirSync(out);
    writeFileSync(join(out, 'notes.txt'), 'keep me');
    badInput(['--space', 'fashion-mnist', '--budget', 'tiny', '--data', subset, '--out', out], 2, /not empty.*--force/);
    assert.equal(readFileSync(join(out, 'notes.txt'), 'utf8'), 'keep me');
  });

  it('resume: a missing or corrupt checkpoint', () => {
    badInput(['--resume', join(root, 'nothing-here')], 2, /no search checkpoint to resume/);
    const dir = join(root, 'corrupt');
    mkdirSync(join(dir, 'checkpoint'), { recursive: true });
    writeFileSync(join(dir, 'checkpoint', 'state.json'), '{"format": "cimbench-search-checkpoint", "version": 1, "config": {}}');
    badInput(['--resume', dir], 2, /corrupt checkpoint/);
  });
});
