import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../../src/common/rng.js';

describe('Rng', () => {
  it('repeats for a seed and differs between seeds', () => {
    const a = new Rng(123);
    const b = new Rng(123);
    const c = new Rng(124);
    const xs = Array.from({ length: 50 }, () => a.nextU32());
    assert.deepEqual(xs, Array.from({ length: 50 }, () => b.nextU32()));
    assert.notDeepEqual(xs, Array.from({ length: 50 }, () => c.nextU32()));
  });

  it('draws uniform and normal numbers with the right moments', () => {
    const rng = new Rng(9);
    const n = 200_000;
    let sumU = 0;
    let sumN = 0;
    let sumN2 = 0;
    for (let i = 0; i < n; i++) {
      const u = rng.next();
      assert.ok(u >= 0 && u < 1);
      sumU += u;
      const z = rng.normal();
      sumN += z;
      sumN2 += z * z;
    }
    assert.ok(Math.abs(sumU / n - 0.5) < 0.005);
    assert.ok(Math.abs(sumN / n) < 0.01);
    assert.ok(Math.abs(sumN2 / n - 1) < 0.02);
  });

  it('forks independent, reproducible streams', () => {
    const s1 = new Rng(5).fork(1);
    const s1again = new Rng(5).fork(1);
    const s2 = new Rng(5).fork(2);
    const a = s1.next();
    assert.equal(a, s1again.next());
    assert.notEqual(a, s2.next());
  });

  it('clones: the copy gives the next draws without advancing the original', () => {
    const r = new Rng(11);
    r.normal(); // leaves a cached second normal, which the copy must carry too
    const copy = r.clone();
    const fromCopy = [copy.normal(), copy.nextU32(), copy.nextU32()];
    assert.deepEqual([r.normal(), r.nextU32(), r.nextU32()], fromCopy);
  });
});
