import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { compareRun, executeRun } from '../../src/bench/index.js';
import { openLink } from '../../src/cli/commands/campaign-common.js';
import { NoiseProfileSchema, loadNoiseProfile, noiseProfilePath } from '../../src/device/index.js';
import { openDatabase, Resimulations } from '../../src/store/index.js';
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
    // On a fresh chip, cells whose target is the as-formed low state are often left alone; their
    // state is about a day old (the emulated chip was formed 86,400 s before power-on).
    const alone = profile.programming.unpulsed;
    assert.ok(alone, 'cells left alone by write-verify fitted');
    assert.equal(alone.targetsUs[0], 2);
    assert.ok((alone.fraction[0] as number) > 0.05 && (alone.fraction[0] as number) < 0.9, `fraction at 2 uS: ${alone.fraction[0]}`);
    assert.ok(alone.ageS > 86_400 / 3 && alone.ageS < 86_400 * 3, `age ${alone.ageS} s`);
    const json = JSON.parse(r.stdout) as { out: string };
    assert.equal(json.out, out);
  });

  it('writes a self-contained HTML report with plots that carry data', () => {
    const out = join(dir, 'fitted-report.json');
    const r = runCli(['calibrate', '--db', db, '--runs', String(runId), '--out', out, '--report', dir]);
    assert.equal(r.status, 0, r.stderr);
    const html = readFileSync(join(dir, 'calibration-report.html'), 'utf8');
    assert.doesNotMatch(html, /<script[^>]+src=|https?:\/\/(?!www\.w3\.org)/, 'no external resources');
    // A run's own chip: the report says where its stuck cells are, as the profile stores them.
    const fitted = NoiseProfileSchema.parse(JSON.parse(readFileSync(out, 'utf8')));
    const stuck = fitted.stuck.cells?.arrays.reduce((n, a) => n + a.stuck.length, 0) ?? -1;
    assert.ok(stuck > 0, `stuck cells mapped: ${stuck}`);
    assert.match(html, new RegExp(`Where they are \\(stuck\\.cells[^)]*\\): ${stuck} stuck of \\d+ programmed cells`));
    const svgs = html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
    assert.ok(svgs.length >= 3, `${svgs.length} plots`);
    const marks = svgs.map((svg) => (svg.match(/<(circle|rect|path|polyline|line)\b/g) ?? []).length);
    assert.ok(marks.filter((n) => n > 5).length >= 3, `marks per plot: ${marks.join(', ')}`);
    // Every plot also as a PNG beside the report: a real image of the plot's size, twice over.
    for (const svg of svgs) {
      const id = /id="([^"]+)"/.exec(svg)?.[1] as string;
      const png = readFileSync(join(dir, `${id}.png`));
      assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${id}.png signature`);
      const width = Number(/width="(\d+)"/.exec(svg)?.[1]);
      assert.equal(png.readUInt32BE(16), 2 * width, `${id}.png width`);
      assert.ok(png.length > 5000, `${id}.png has content (${png.length} bytes)`);
      assert.match(readFileSync(join(dir, `${id}.svg`), 'utf8'), /^<\?xml[\s\S]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    }
  });

  it('compare re-simulates the run with another profile and records it beside the run', () => {
    const first = runCli(['compare', '--run', String(runId), '--noise', 'ideal', '--db', db, '--seeds', '1', '--json']);
    assert.equal(first.status, 0, first.stderr);
    const again = runCli(['compare', '--run', String(runId), '--noise', 'rram-wan2022', '--db', db, '--seeds', '1']);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout + again.stderr, /re-simulation 2/);
    const bad = runCli(['compare', '--run', '999', '--noise', 'ideal', '--db', db]);
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /999/);
  });

  it('compare --conductances readback simulates from the cells the chip holds: its per-layer conductance errors are the measured ones', async () => {
    const store = openDatabase(db);
    try {
      const ideal = loadNoiseProfile(noiseProfilePath('ideal'));
      const fromModel = await compareRun(store, runId, ideal, { seeds: [1], images: 20 });
      const fromChip = await compareRun(store, runId, ideal, { seeds: [1], images: 20, conductances: 'readback' });
      assert.equal(fromChip.conductances, 'readback');
      const std = (c: typeof fromChip) => c.discrepancies.filter((d) => d.scope === 'layer' && d.metric === 'conductance_error_std_us');
      assert.ok(std(fromChip).length > 0);
      // The ideal model has no error at all; the read-backs carry the chip's.
      for (const d of std(fromModel)) assert.equal(d.simulated, 0, d.name);
      for (const d of std(fromChip)) assert.ok(d.measured > 0.1 && Math.abs(d.simulated - d.measured) < 0.02 * d.measured, `${d.name} at point ${d.point}: simulated ${d.simulated} vs measured ${d.measured}`);
      // From the first point's read-backs only: that point is the read-back simulation's, number for
      // number; later points are carried by the (here ideal: no) relaxation, so they keep its cells.
      const carried = await compareRun(store, runId, ideal, { seeds: [1], images: 20, conductances: 'first-readback' });
      assert.equal(carried.conductances, 'first-readback');
      const first = Math.min(...carried.points.map((p) => p.point));
      const at = (c: typeof fromChip, point: number) => c.discrepancies.filter((d) => d.point === point && d.scope !== 'array');
      assert.deepEqual(at(carried, first), at(fromChip, first));
      const firstStd = new Map(std(carried).filter((d) => d.point === first).map((d) => [d.layer, d.simulated]));
      for (const d of std(carried)) assert.equal(d.simulated, firstStd.get(d.layer), `${d.name} at point ${d.point}`);
      const resimulations = new Resimulations(store);
      const ids = [fromChip, carried].map((c) => resimulations.record(c));
      assert.deepEqual(ids.map((id) => resimulations.get(id)?.conductances), ['readback', 'first-readback'], 'both kept, each with its source');
    } finally {
      store.close();
    }
  });

  it('runs the calibration plan on a live macro (--port) and fits read noise and ADC trims a campaign cannot give', () => {
    const out = join(dir, 'plan.json');
    const r = runCli(['calibrate', '--port', 'emulator:typical:3', '--arrays', '1', '--repeats', '4', '--mvm-vectors', '8', '--out', out, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const profile = NoiseProfileSchema.parse(JSON.parse(readFileSync(out, 'utf8')));
    const fit = profile.fit as { chipId: string; refused: Record<string, string> };
    assert.match(fit.chipId, /EMU-emulated-typical-0+3$/);
    assert.equal(fit.refused.read, undefined, 'read noise fitted from the repeated reads');
    assert.equal(fit.refused.adc, undefined, 'ADC fitted from the MVM patterns');
    assert.match(profile.provenance.read as string, /calibration plan: 16384 cells on 1 arrays/);
    assert.equal(profile.adc.columns?.chipId, fit.chipId, 'the chip\'s measured column trims');
    // With --runs from another chip: one family profile, without either chip's trims.
    const both = join(dir, 'family.json');
    const m = runCli(['calibrate', '--db', db, '--runs', String(runId), '--port', 'emulator:typical:3', '--arrays', '1', '--repeats', '4', '--mvm-vectors', '8', '--out', both]);
    assert.equal(m.status, 0, m.stderr);
    const family = NoiseProfileSchema.parse(JSON.parse(readFileSync(both, 'utf8')));
    assert.equal(family.adc.columns, undefined);
    assert.match(family.provenance.programming as string, new RegExp(`run ${runId} .*; calibration plan`));
  });

  it('refuses bad input with a clear error and exit status 2', () => {
    const out = join(dir, 'x.json');
    const cases: Array<[string[], RegExp]> = [
      [['calibrate', '--db', join(dir, 'missing.db'), '--runs', '1', '--out', out], /does not exist/],
      [['calibrate', '--db', db, '--runs', 'abc', '--out', out], /not a run id/],
      [['calibrate', '--db', db, '--runs', '999', '--out', out], /no run 999/],
      [['calibrate', '--db', db, '--runs', String(runId), '--out', out, '--base', 'no-such-profile'], /not found|no-such-profile/i],
      [['calibrate', '--db', db, '--out', out], /runs/],
      [['calibrate', '--port', 'emulator:typical:x', '--out', out], /not an emulated macro/],
      [['calibrate', '--port', 'emulator', '--arrays', '0', '--out', out], /--arrays/],
      [['calibrate', '--runs', '1', '--out', out], /--db/],
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
