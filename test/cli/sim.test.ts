import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { repoPath } from '../helpers/paths.js';

const fmMacro = repoPath('fixtures/networks/fm-macro.json');
const fmSmall = repoPath('fixtures/networks/fm-small.json');
const dir = mkdtempSync(join(tmpdir(), 'cimbench-sim-'));

function writeSpec(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

function badInput(args: string[], pattern: RegExp): void {
  const r = runCli(args);
  assert.equal(r.status, 2, `exit status for ${args.join(' ')}: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace without --verbose');
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
}

describe('cimbench sim', () => {
  it('prints a per-layer table and totals for a network that fits', () => {
    const r = runCli(['sim', '--network', fmMacro]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /layer\s+op\s+shape\s+rows\s+cols\s+arrays\s+util\s+ADC conv\s+latency us\s+energy nJ/);
    assert.match(r.stdout, /residual\s+28x28x32 -> 14x14x32\s+832\s+128\s+8/);
    assert.match(r.stdout, /fits: 8 of 8 arrays/);
    assert.match(r.stdout, /layer by layer: latency [\d.]+ ms, energy [\d.]+ mJ, EDP [\d.]+ ms\*mJ/);
    assert.match(r.stdout, /pipelined: +latency/);
  });

  it('--json carries per-layer figures, both latency modes and the profile used', () => {
    const r = runCli(['sim', '--network', fmMacro, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, any>;
    for (const layer of out.layers) {
      for (const key of ['rows', 'cols', 'arrays', 'adcConversions', 'latencyNs', 'energyPj', 'energy']) {
        assert.ok(key in layer, `layer field ${key}`);
      }
      assert.ok('adc' in layer.energy && 'leakage' in layer.energy);
    }
    for (const mode of ['layerByLayer', 'pipelined']) {
      for (const key of ['latencyMs', 'energyMj', 'edpMsMj']) assert.equal(typeof out.totals[mode][key], 'number');
    }
    assert.equal(out.hardwareProfile.name, 'nas4cim-macro');
    assert.equal(out.hardware.sha256.length, 64);
    const sumEnergyPj = out.layers.reduce((s: number, l: { energyPj: number }) => s + l.energyPj, 0);
    assert.ok(Math.abs(sumEnergyPj * 1e-9 - out.totals.layerByLayer.energyMj) < 1e-12);
  });

  it('refuses a network that does not fit, saying by how much (exit 3)', () => {
    const r = runCli(['sim', '--network', fmSmall]);
    assert.equal(r.status, 3);
    assert.match(r.stderr, /DOES_NOT_FIT.*needs 13 arrays but nas4cim-macro has 8 \(short by 5/);
    assert.equal(r.stdout, '');
    const json = runCli(['sim', '--network', fmSmall, '--json']);
    assert.equal(json.status, 3);
    assert.equal(JSON.parse(json.stdout).error.details.shortfall, 5);
  });

  it('reports an overflowing network with --allow-overflow, or fits it on a larger profile', () => {
    const over = runCli(['sim', '--network', fmSmall, '--allow-overflow']);
    assert.equal(over.status, 0, over.stderr);
    assert.match(over.stdout, /DOES NOT FIT: needs 13 arrays, the macro has 8 \(short by 5\)/);
    const big = runCli(['sim', '--network', fmSmall, '--hardware', 'multitile-256', '--duplicate', '--json']);
    assert.equal(big.status, 0, big.stderr);
    const out = JSON.parse(big.stdout);
    assert.equal(out.fit.fits, true);
    assert.ok(out.layers.some((l: { duplicates: number }) => l.duplicates > 1), 'slow layers duplicated');
  });

  it('rejects bad input with one clear line naming the file and field (exit 2)', () => {
    const valid = JSON.parse(readFileSync(fmMacro, 'utf8'));
    badInput(['sim', '--network', writeSpec('missing.json', { ...valid, classes: undefined })], /missing\.json: classes: missing \(expected number\)/);
    badInput(['sim', '--network', fmMacro, '--hardware', 'no-such-macro'], /no hardware profile preset "no-such-macro" \(presets: multitile-256, nas4cim-macro/);
    badInput(['sim', '--network', fmMacro, '--hardware', writeSpec('empty-profile.json', {})], /empty-profile\.json: name: missing \(expected string\); array: missing \(expected object\); weights: missing \(expected object\) \(and \d+ more problems; --json lists them all\)/);
    badInput(
      ['sim', '--network', writeSpec('negative.json', { ...valid, layers: [{ op: 'conv', kernel: 3, out: -16 }, ...valid.layers.slice(1)] })],
      /negative\.json: layers\[0\]\.out/,
    );
    badInput(
      ['sim', '--network', writeSpec('kernel.json', { ...valid, input: [2, 2, 1] })],
      /kernel\.json: layers\[0\] \(conv\): kernel 5x5 is larger than its 2x2 input/,
    );
    badInput(['sim', '--network', writeSpec('op.json', { ...valid, layers: [{ op: 'conv2d', kernel: 3, out: 4 }] })], /op\.json: layers\[0\]\.op: unknown or missing op/);
    badInput(['sim', '--network', writeSpec('text.json', 'not json at all')], /text\.json: not valid JSON/);
    badInput(['sim', '--network', join(dir, 'absent.json')], /NOT_FOUND.*absent\.json: file does not exist/);
    const hw = JSON.parse(readFileSync(repoPath('calibration/hardware/nas4cim-macro.json'), 'utf8'));
    badInput(['sim', '--network', fmMacro, '--hardware', writeSpec('hw.json', { ...hw, adc: { ...hw.adc, bits: 'eight' } })], /hw\.json: adc\.bits/);
  });

  it('prints a stack trace only with --verbose', () => {
    const r = runCli(['--verbose', 'sim', '--network', join(dir, 'absent.json')]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /\n\s+at /);
  });

  it('has --help on the program and the command', () => {
    const top = runCli(['--help']);
    assert.equal(top.status, 0);
    assert.match(top.stdout, /sim \[options\]/);
    const sim = runCli(['sim', '--help']);
    assert.equal(sim.status, 0);
    assert.match(sim.stdout, /--network <spec\.json>/);
    assert.match(sim.stdout, /--json/);
    const missing = runCli(['sim']);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /required option '-n, --network <spec\.json>' not specified/);
  });
});
