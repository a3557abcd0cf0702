import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MIGRATIONS, SearchRuns, openDatabase, schemaVersion } from '../../src/store/index.js';

const newRun = {
  space: 'fashion-mnist',
  method: 'nas4cim',
  preset: 'accuracy',
  budget: 'tiny',
  seed: 1,
  backend: 'wasm',
  hardwareProfile: 'nas4cim-macro',
  hardwareSha256: 'a'.repeat(64),
  outDir: '/tmp/out',
  config: { samples: 100 },
};

describe('store', () => {
  it('creates the schema with WAL, synchronous=FULL and the current user_version', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'cimbench-store-')), 'bench.db');
    const db = openDatabase(path);
    assert.equal(schemaVersion(db), MIGRATIONS.length);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('synchronous', { simple: true }), 2);
    db.close();
    // Opening again applies nothing twice.
    const again = openDatabase(path);
    assert.equal(schemaVersion(again), MIGRATIONS.length);
    again.close();
  });

  it('refuses a database written by a newer cimbench', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'cimbench-store-')), 'bench.db');
    const db = openDatabase(path);
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    db.close();
    assert.throws(() => openDatabase(path), /newer than this cimbench knows/);
  });

  it('records a search run from start to finish and never changes a finished run', () => {
    const runs = new SearchRuns(openDatabase(':memory:'));
    const row = runs.start(newRun);
    assert.equal(row.status, 'running');
    runs.recordStage(row.id, 'teacher', 12.5);
    runs.recordStage(row.id, 'warmup', 30);
    runs.finish(row.id, 'finished', { testAccuracy: 0.9 });
    runs.finish(row.id, 'failed', null, 'late');
    runs.recordStage(row.id, 'late', 1);
    const done = runs.get(row.id);
    assert.equal(done?.status, 'finished');
    assert.deepEqual(done?.stageSeconds, { teacher: 12.5, warmup: 30 });
    assert.deepEqual(done?.metrics, { testAccuracy: 0.9 });
    assert.deepEqual(done?.config, { samples: 100 });
  });

  it('marks runs of dead processes interrupted, leaving live ones running', () => {
    const runs = new SearchRuns(openDatabase(':memory:'));
    const dead = runs.start(newRun);
    const live = runs.start(newRun);
    const recovered = runs.recoverInterrupted(() => false);
    assert.equal(recovered, 2);
    assert.equal(runs.get(dead.id)?.status, 'interrupted');
    assert.match(runs.get(live.id)?.statusReason ?? '', /ended without finishing/);
    const runs2 = new SearchRuns(openDatabase(':memory:'));
    const mine = runs2.start(newRun);
    assert.equal(runs2.recoverInterrupted(), 0, 'this process is alive');
    assert.equal(runs2.get(mine.id)?.status, 'running');
  });
});
