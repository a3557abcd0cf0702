/**
 * Fuzzing every zod boundary and protocol payload decoder (test/reliability/boundaries.ts): random
 * and mutated campaign files, noise / hardware / chip profiles, network specs, LOAD_NETWORK
 * documents, SET_CONFIG values, fault specs, and binary payloads of every message. Only typed
 * errors, each saying where, schema errors naming the field, nothing slower than 2 s. The soak
 * runs the same with many more inputs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCampaign } from '../../src/bench/campaign.js';
import { InputError } from '../../src/common/errors.js';
import { parseNoiseProfile } from '../../src/device/profile.js';
import { repoPath } from '../helpers/paths.js';
import { JSON_BOUNDARIES, fuzzBoundaries, judge } from './boundaries.js';

test('fuzz: 400 random and mutated inputs per boundary, typed errors only, fields named', () => {
  const r = fuzzBoundaries(400, 9);
  const problems = Object.entries(r.byBoundary).flatMap(([name, f]) => f.problems.map((p) => `${name}: ${p}`));
  assert.deepEqual(problems, []);
  for (const [name, f] of Object.entries(r.byBoundary)) {
    assert.equal(f.inputs, 400, name);
    // The inputs reached both outcomes: the mutations are neither all harmless nor all fatal.
    assert.ok(f.rejected > 0, `${name}: nothing rejected`);
  }
  // Mutations of valid documents are accepted sometimes (a seed's optional field removed, ...).
  assert.ok(Object.values(r.byBoundary).filter((f) => f.accepted > 0).length >= Object.keys(r.byBoundary).length - 2);
  assert.ok(r.total >= 400 * Object.keys(JSON_BOUNDARIES).length);
});

test('the judge itself fails on untyped errors, missing fields and slowness (so the fuzz can fail)', () => {
  assert.match(judge(() => JSON.parse('{') as unknown) ?? '', /not a typed error/);
  assert.match(judge(() => (null as unknown as { x: number }).x) ?? '', /TypeError/);
  assert.match(judge(() => { throw new InputError('INVALID_INPUT', 'bad'); }) ?? '', /without where/);
  assert.match(
    judge(() => { throw new InputError('INVALID_INPUT', 'bad', { where: 'f', details: { field: '' } }); }, { value: {}, at: 'a.b', changed: ['a.b'] }) ?? '',
    /names no field/,
  );
  assert.equal(judge(() => 1), undefined);
});

test('schema errors name the field and the file, for example', () => {
  const campaign = (v: unknown) => () => parseCampaign(v, 'c.json', repoPath('.'));
  const cases: Array<[() => unknown, RegExp]> = [
    [campaign({ name: 'x', network: 'n', programming: { maxPulses: 5000 } }), /^c\.json: programming\.maxPulses: above the safe limit 1000/],
    [campaign({ name: 'x', network: 'n', drift: { points: ['1 h', '1 min'] } }), /drift\.points\[1\]: must be later/],
    [campaign({ name: 'x', network: 'n', link: { kind: 'serial' } }), /link\.path: missing/],
    [campaign({ name: 'x', network: 'n', testSet: { count: 1.5 } }), /testSet\.count/],
    [() => parseNoiseProfile({ name: 'p' }, 'noise.json'), /^noise\.json: /],
  ];
  for (const [run, re] of cases) {
    assert.throws(run, (e: unknown) => e instanceof InputError && e.code === 'INVALID_INPUT' && re.test(e.describe()), String(re));
  }
});
