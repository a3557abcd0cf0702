import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { executeRun } from '../../src/bench/index.js';
import { openLink } from '../../src/cli/commands/campaign-common.js';
import { NoiseProfileSchema } from '../../src/device/index.js';
import { tempDir, testCampaign } from '../bench/helpers.js';
import { runCli } from '../helpers/cli.js';

describe('cimbench calibrate', () => {
  const dir = tempDir('cimbench-calibrate-');
  const db = join(dir, 'runs.db');
  let runId = 0;
  before(async () => {
    // A real campaign on the in-process emulator: 15k cells, five time points.
    const r = await executeRun({
      dbPath: db,
      mode: 'full',
      campaign: testCampaign({ drift: { initial: 1, points: ['10 s', '100 s', '1 h', '1 d'], clock: 'emulated' }, testSet: { dataset: 'fashion-mnist-subset', count: 20 } }),
      openLink,
    });
    assert.equal(r.outcome.exitStatus, 'success', String(r.outcome.reason));
    runId = r.runId;
  });

  it('fits a profile from a recorded run and writes it with provenance and refusals', () => {
    const out = join(dir, 'fitted.json');
    const r = runCli(['calibrate', '--db', db, '--runs', String(runId), '--out', out, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const profile = NoiseProfileSchema.parse(JSON.parse(readFileSync(out, 'utf8')));
    const fit = profile.fit as { runs: number[]; chipId: string; firmware: string; refused: Record<string, string> };
    assert.deepEqual(fit.runs, [runId]);
    assert.match(fit.chipId, /EMU/);
    assert.ok(fit.firmware);
    // Campaign runs read each cell once per time point: read noise cannot be determined.
    assert.match(fit.refused.read ?? '', /repeated reads/);
    assert.match(profile.provenance.read as string, /not fitted/);
    assert.match(profile.provenance.stuck as string, /fitted from run/);
    const json = JSON.parse(r.stdout) as { out: string };
    assert.equal(json.out, out);
  });

  it('refuses bad input with a clear error and exit status 2', () => {
    const out = join(dir, 'x.json');
    const cases: Array<[string[], RegExp]> = [
      [['calibrate', '--db', join(dir, 'missing.db'), '--runs', '1', '--out', out], /does not exist/],
      [['calibrate', '--db', db, '--runs', 'abc', '--out', out], /not a run id/],
      [['calibrate', '--db', db, '--runs', '999', '--out', out], /no run 999/],
      [['calibrate', '--db', db, '--runs', String(runId), '--out', out, '--base', 'no-such-profile'], /not found|no-such-profile/i],
      [['calibrate', '--db', db, '--out', out], /runs/],
    ];
    for (const [args, message] of cases) {
      const r = runCli(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    assert.equal(existsSync(out), false, 'nothing written on bad input');
    const bad = join(dir, 'bad-profile.json');
    writeFileSync(bad, '{"name": 1}');
    const r = runCli(['calibrate', '--db', db, '--runs', String(runId), '--out', out, '--base', bad]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /name/);
  });

  it('prints help', () => {
    const r = runCli(['calibrate', '--help']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /--runs <ids>/);
  });
});
