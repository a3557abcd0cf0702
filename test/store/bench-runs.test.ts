import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { executeRun } from '../../src/bench/index.js';
import { BenchRuns, exportRun, MIGRATIONS, openDatabase, Resimulations, RunRecorder, schemaVersion, type ResimulationInput } from '../../src/store/index.js';
import { runCli } from '../helpers/cli.js';
import { DEMO_NETWORK, tempDir, testCampaign, testDevice } from '../bench/helpers.js';

const newRun = (mode: 'full' | 'program' = 'program') => ({
  campaign: { name: 'unit', source: null, config: { x: 1 } },
  mode,
  plan: { mode, points: [{ index: 0, nominalS: 1 }], steps: [{ kind: 'map' as const }, { kind: 'program' as const }] },
  parentRunId: null,
  networkName: 'n',
  networkDir: '/tmp',
  weightImageSha256: 'a'.repeat(64),
  hardwareProfile: 'hw',
  hardwareSha256: 'b'.repeat(64),
  hardware: {},
  noiseProfile: 'noise',
  noiseSha256: 'c'.repeat(64),
  noise: {},
  seeds: [1],
  backend: 'cpu',
  link: 'test',
  arraysUsed: 1,
  cellsPlanned: 8,
  cost: { latencyMs: 1, energyMj: 1, edpMsMj: 1 },
});

const tiles = [{ tile: 0, matrix: 0, layer: 0, name: 'm', region: { array: 0, row: 0, col: 0, rows: 2, cols: 4 }, slice: 0, polarity: 'pos' as const, targetsUs: Float32Array.from([2, 3, 4, 5, 6, 7, 8, 9]) }];
const blocks = [
  { block: 0, tile: 0, region: { array: 0, row: 0, col: 0, rows: 1, cols: 4 }, offset: 0 },
  { block: 1, tile: 0, region: { array: 0, row: 1, col: 0, rows: 1, cols: 4 }, offset: 4 },
];

describe('bench store', () => {
  it('upgrades a version-1 database (search runs kept) to the current schema', () => {
    const path = join(tempDir('cimbench-store-'), 'old.db');
    const old = new Database(path);
    old.exec(MIGRATIONS[0] as string);
    old.pragma('user_version = 1');
    old.prepare("INSERT INTO search_runs (guid, started_at, status, space, method, preset, budget, seed, backend, hardware_profile, hardware_sha256, host, pid, config_json) VALUES ('g', 't', 'finished', 's', 'm', 'p', 'b', 1, 'cpu', 'h', 'x', 'h', 1, '{}')").run();
    old.close();
    const db = openDatabase(path);
    assert.equal(schemaVersion(db), MIGRATIONS.length);
    assert.equal((db.prepare('SELECT COUNT(*) AS n FROM search_runs').get() as { n: number }).n, 1);
    assert.equal((db.prepare('SELECT COUNT(*) AS n FROM runs').get() as { n: number }).n, 0);
    db.close();
  });

  it('upgrades a version-6 database with re-simulations: rows kept, cascades intact, one re-simulation per conductance source', () => {
    const path = join(tempDir('cimbench-store-'), 'v6.db');
    const old = new Database(path);
    old.pragma('foreign_keys = ON');
    for (const step of MIGRATIONS.slice(0, 6)) old.exec(step);
    old.pragma('user_version = 6');
    const runId = new BenchRuns(old).create(newRun()).id;
    const resim = (conductances: ResimulationInput['conductances']): ResimulationInput => ({
      runId,
      noiseProfile: { name: 'fit', sha256: 'd'.repeat(64), profile: {} },
      times: 'actual',
      conductances,
      seeds: [1, 2],
      images: 10,
      digitalAccuracy: 0.8,
      backend: 'cpu',
      weightImageSha256: 'a'.repeat(64),
      hardwareSha256: 'b'.repeat(64),
      seconds: 1,
      points: [{ point: 0, tS: 1, simulated: 0.7, simulatedStd: 0.01, perSeed: [0.69, 0.71], measured: 0.72, originalSimulated: 0.75 }],
      discrepancies: [{ point: 0, tS: 1, scope: 'network', layer: -1, array: -1, name: 'network', metric: 'accuracy', simulated: 0.7, simulatedStd: 0.01, measured: 0.72, difference: 0.02, originalSimulated: 0.75, ks: null }],
    });
    const keptId = new Resimulations(old).record(resim('model'));
    old.close();

    const db = openDatabase(path);
    try {
      assert.equal(schemaVersion(db), MIGRATIONS.length);
      const store = new Resimulations(db);
      const kept = store.get(keptId);
      assert.equal(kept?.conductances, 'model');
      assert.deepEqual(kept?.points.map((p) => p.perSeed), [[0.69, 0.71]]);
      assert.equal(kept?.discrepancies.length, 1);
      // Beside it (the version-4 UNIQUE refused this), and each source replaces only its own.
      const fromReadback = store.record(resim('readback'));
      const carried = store.record(resim('first-readback'));
      const again = store.record(resim('readback'));
      assert.deepEqual(store.list(runId).map((r) => [r.id, r.conductances]), [[keptId, 'model'], [carried, 'first-readback'], [again, 'readback']]);
      assert.equal(store.get(fromReadback), undefined);
      // The children still cascade from the rebuilt parent.
      const count = (table: string) => (db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE resimulation_id = ?`).get(fromReadback) as { n: number }).n;
      assert.equal(count('resimulation_points'), 0);
      assert.equal(count('resimulation_discrepancies'), 0);
      assert.deepEqual(db.pragma('foreign_key_check'), []);
    } finally {
      db.close();
    }
  });

  it('journals intents and results, accounts every cell once, and recovers a crashed run as interrupted', () => {
    const db = openDatabase(join(tempDir('cimbench-store-'), 'b.db'));
    const runs = new BenchRuns(db);
    const run = runs.create(newRun());
    const rec = new RunRecorder(runs, run.id);
    rec.write({ type: 'mapped', arraysUsed: 1, cells: 8, tiles, blocks });
    rec.write({ type: 'program-intent', block: 0, bootId: 7 });
    rec.write({ type: 'program-result', block: 0, outcome: 'COMPLETE', finalUs: Float32Array.from([2.1, 3, 4, 5]), pulses: Uint16Array.from([1, 2, 3, 4]), status: Uint8Array.from([0, 0, 4, 1]), totalPulses: 10, nextIntent: { block: 1, bootId: 7 } });
    // A second intent for a block already sent is refused: nothing is ever sent twice.
    assert.throws(() => rec.write({ type: 'program-intent', block: 1, bootId: 7 }), /must not be sent/);
    assert.deepEqual(runs.cellCounts(run.id), { planned: 0, programmed: 2, failed: 2, interrupted: 0, total: 4 });
    // The primary key refuses a second row for a cell.
    assert.throws(() => db.prepare("INSERT INTO cells (run_id, array_no, row_no, col_no, tile, block, target_us, state) VALUES (?, 0, 0, 0, 0, 0, 2, 'programmed')").run(run.id), /UNIQUE|PRIMARY/);
    // The process "dies" with block 1 sent and unanswered.
    const recovered = runs.recoverInterrupted(() => false);
    assert.deepEqual(recovered, [run.id]);
    const after = runs.summary(run.id);
    assert.equal(after.run.status, 'interrupted');
    assert.deepEqual(after.blocks, { done: 1, unknown: 1 });
    assert.equal(after.cells.interrupted, 4);
    assert.ok(after.cells.accountedExactlyOnce);
    const state = runs.resumeState(run.id);
    assert.equal(state.blocks.get(1), 'unknown');
    assert.equal(state.cellStatus.get(0)?.[2], 4);
    assert.ok(Number.isNaN(state.cellFinal.get(0)?.[5] as number));
    // Resume: the unknown block is read back (values recorded), the run ends; then nothing changes.
    runs.claimForResume(run.id);
    const rec2 = new RunRecorder(runs, run.id);
    rec2.write({ type: 'program-unknown', block: 1, readbackUs: Float32Array.from([6, 7, 8, 9]), reason: 'test' });
    rec2.write({ type: 'run-stop', exitStatus: 'success', reason: null });
    const done = runs.summary(run.id);
    assert.equal(done.run.status, 'completed');
    assert.deepEqual(done.blocks, { done: 1, recovered: 1 });
    assert.equal((db.prepare('SELECT final_us FROM cells WHERE run_id = ? AND row_no = 1 AND col_no = 3').get(run.id) as { final_us: number }).final_us, 9);
    assert.throws(() => runs.claimForResume(run.id), /immutable/);
    assert.throws(() => rec2.write({ type: 'event', level: 'info', message: 'late' }), /immutable/);
    db.close();
  });

  it('exports a run to CSV and JSON with every table', async () => {
    const dir = tempDir('cimbench-export-');
    const dev = testDevice({ seed: 9 });
    const r = await executeRun({ dbPath: join(dir, 'bench.db'), mode: 'full', campaign: testCampaign({ drift: { initial: 1, points: [] } }), openLink: dev.openLink });
    assert.equal(r.outcome.exitStatus, 'success');
    const db = openDatabase(join(dir, 'bench.db'));
    const runs = new BenchRuns(db);
    const csv = await exportRun(runs, r.runId, 'csv', join(dir, 'csv'));
    assert.equal(csv.rows.cells, r.summary.run.cellsPlanned);
    assert.equal(csv.rows.readbacks, r.summary.run.cellsPlanned);
    const cellsCsv = readFileSync(join(dir, 'csv', 'cells.csv'), 'utf8').trim().split('\n');
    assert.equal(cellsCsv.length, r.summary.run.cellsPlanned + 1);
    assert.match(cellsCsv[0] as string, /^run_id,array_no,row_no,col_no,tile,block,target_us,state,final_us,pulses,device_status$/);
    assert.match(readFileSync(join(dir, 'csv', 'discrepancies.csv'), 'utf8'), /accuracy/);
    assert.ok(existsSync(join(dir, 'csv', 'run.csv')));
    const json = await exportRun(runs, r.runId, 'json', join(dir, 'json'));
    const doc = JSON.parse(readFileSync(json.files[0] as string, 'utf8'));
    assert.equal(doc.tables.cells.rows.length, r.summary.run.cellsPlanned);
    assert.equal(doc.summary.run.id, r.runId);
    assert.equal(doc.run.weight_image_sha256, r.summary.run.weightImageSha256);
    db.close();
    // The CLI reads the same store.
    const list = runCli(['runs', '--db', join(dir, 'bench.db'), '--json']);
    assert.equal(list.status, 0, list.stderr);
    assert.equal(JSON.parse(list.stdout)[0].id, r.runId);
    const show = runCli(['show', String(r.runId), '--db', join(dir, 'bench.db')]);
    assert.equal(show.status, 0, show.stderr);
    assert.match(show.stdout, /each exactly once/);
    const missing = runCli(['show', '99', '--db', join(dir, 'bench.db')]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /no run 99/);
  });

  it('the CLI rejects a bad campaign file with one clear error and no run', () => {
    const dir = tempDir('cimbench-cli-');
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ name: 'bad', network: DEMO_NETWORK, testSet: { count: 'ten' } }));
    const r = runCli(['run', bad, '--db', join(dir, 'bench.db')]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /testSet\.count/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    writeFileSync(bad, JSON.stringify({ name: 'big', network: DEMO_NETWORK, hardware: join(dir, 'tiny.json') }));
    const hw = JSON.parse(readFileSync(new URL('../../calibration/hardware/nas4cim-macro.json', import.meta.url), 'utf8'));
    hw.array.arraysPerTile = 2;
    writeFileSync(join(dir, 'tiny.json'), JSON.stringify(hw));
    const big = runCli(['run', bad, '--db', join(dir, 'bench.db')]);
    assert.equal(big.status, 3);
    assert.match(big.stderr, /DOES_NOT_FIT/);
    const db = openDatabase(join(dir, 'bench.db'));
    assert.equal(new BenchRuns(db).list().length, 0);
    db.close();
  });
});
