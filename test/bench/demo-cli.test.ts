/**
 * `cimbench demo --skip-search` (the committed demo network on the in-process emulated macro),
 * short: 100 test images. The summary it prints must be the figures it recorded.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { BenchRuns, openDatabase } from '../../src/store/index.js';
import { tempDir } from './helpers.js';

const entry = fileURLToPath(new URL('../helpers/cli-entry.ts', import.meta.url));

test('cimbench demo --skip-search prints simulated vs measured accuracy, EDP, cells, pulses and discrepancies, all recorded', { timeout: 120_000 }, () => {
  const dir = tempDir('cimbench-demo-');
  const dbPath = join(dir, 'demo.db');
  // From the checkout (tsx resolves from the working directory); the demo writes only to --db.
  const r = spawnSync(process.execPath, ['--import', 'tsx', entry, 'demo', '--skip-search', '--db', dbPath, '--images', '100', '--drift', '1h'], { encoding: 'utf8', timeout: 110_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /demo finished in .*: run 1 recorded in /);
  const db = openDatabase(dbPath, { readonly: true });
  try {
    const s = new BenchRuns(db).summary(1);
    assert.equal(s.run.status, 'completed');
    assert.equal(s.run.exitStatus, 'success');
    assert.equal(s.run.campaignName, 'demo');
    assert.equal(s.points.length, 2);
    assert.equal(s.points[1]?.nominalS, 3600);
    const pct = (v: number): string => `${(100 * v).toFixed(1)}%`;
    for (const p of s.points) {
      assert.ok(p.simulated && p.measured !== null);
      const after = p.nominalS === 1 ? '1.0 s' : '60.0 min';
      // The printed line holds exactly the recorded numbers.
      assert.ok(r.stderr.includes(`after ${after}: simulated ${pct(p.simulated.mean)} +- ${(100 * p.simulated.std).toFixed(1)}, measured ${pct(p.measured)}`), `${after} line in:\n${r.stderr}`);
    }
    assert.ok(r.stderr.includes(`EDP ${s.run.cost.edpMsMj.toExponential(3)} ms*mJ per image`));
    assert.ok(r.stderr.includes(`${s.cells.programmed} of ${s.run.cellsPlanned} cells programmed, mean ${s.cells.meanPulses?.toFixed(2)} pulses`));
    const rows = s.discrepancies.length + s.arrayDiscrepancies.length;
    assert.ok(s.discrepancies.length > 2 && s.arrayDiscrepancies.length > 0);
    assert.ok(r.stderr.includes(`; ${rows} discrepancy rows`), r.stderr);
    assert.ok(s.cells.accountedExactlyOnce && s.cells.programmed > 0.99 * s.run.cellsPlanned);
    // stdout: the run summary table, with the per-layer and per-array discrepancy tables.
    assert.match(r.stdout, /run 1 \(full\) of campaign demo: completed \/ success/);
    assert.match(r.stdout, /discrepancies per layer/);
    assert.match(r.stdout, /discrepancies per array \(MVM probes/);
    assert.ok(r.stdout.includes(`digital (quantised, noise-free) accuracy: ${pct(s.digitalAccuracy as number)}`));
  } finally {
    db.close();
  }
});
