import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assignCrowding, nonDominatedSort, nsga2, type Individual } from '../../src/search/nsga2.js';

const ind = (objectives: number[]): Individual => ({ genome: [], objectives, rank: -1, crowding: 0 });

describe('NSGA-II', () => {
  it('sorts into Pareto fronts', () => {
    const pop = [ind([1, 5]), ind([2, 2]), ind([5, 1]), ind([3, 3]), ind([6, 6])];
    const fronts = nonDominatedSort(pop);
    assert.deepEqual(fronts.map((f) => f.map((i) => i.objectives.join('/')).sort()), [['1/5', '2/2', '5/1'], ['3/3'], ['6/6']]);
    assert.deepEqual(pop.map((p) => p.rank), [0, 0, 0, 1, 2]);
    const front = fronts[0] as Individual[];
    assignCrowding(front);
    assert.equal(front.find((i) => i.objectives[0] === 2)?.crowding, (5 - 1) / 4 + (5 - 1) / 4);
    assert.equal(front.find((i) => i.objectives[0] === 1)?.crowding, Infinity);
  });

  it('finds the true Pareto front of a small discrete problem', () => {
    // Genes 0..9 x 4: objective A = sum of genes, objective B = sum of (9 - gene)^2 / 9.
    // Every genome with equal genes is Pareto-optimal for its sum; the front spans the trade-off.
    const evaluate = (g: readonly number[]) => [g.reduce((s, x) => s + x, 0), g.reduce((s, x) => s + (9 - x) ** 2 / 9, 0)];
    const { front, evaluations } = nsga2(evaluate, { cardinalities: [10, 10, 10, 10], population: 40, generations: 80, seed: 3 });
    assert.ok(evaluations <= 40 * 81);
    // No member of the returned front is dominated by any genome of the whole space along the diagonal.
    for (const member of front) {
      const [a, b] = member.objectives as [number, number];
      const s = a; // for a fixed sum, B is minimised by spreading evenly
      const q = Math.floor(s / 4);
      const r = s % 4;
      const bestB = (4 - r) * ((9 - q) ** 2 / 9) + r * ((9 - q - 1) ** 2 / 9);
      assert.ok(b - bestB <= 1, `front member ${member.genome} is far from optimal: ${b} vs ${bestB}`);
    }
    assert.ok(front.length >= 8, `front of ${front.length}`);
  });

  it('is reproducible and respects validity', () => {
    const evaluate = (g: readonly number[]) => [g[0] as number, -(g[1] as number)];
    const opts = { cardinalities: [5, 5], population: 10, generations: 5, seed: 9, isValid: (g: readonly number[]) => g[0] !== 0 };
    const a = nsga2(evaluate, opts);
    const b = nsga2(evaluate, opts);
    assert.deepEqual(a.front.map((i) => i.genome), b.front.map((i) => i.genome));
    assert.ok(a.front.every((i) => i.genome[0] !== 0));
  });
});
