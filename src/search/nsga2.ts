import { Rng } from '../common/rng.js';

/**
 * NSGA-II (Deb et al., 2002) over genomes of per-layer option indices, minimising every objective.
 * Used by the spos-nsga2 baseline: objectives are (1 - supernet accuracy, EDP). Evaluation is the
 * caller's; the algorithm caches by genome so a genome is never evaluated twice.
 */

export interface Nsga2Options {
  /** Options per gene (layer). */
  readonly cardinalities: readonly number[];
  readonly population: number;
  readonly generations: number;
  readonly seed: number;
  /** Per-gene mutation probability (default 1 / genes). */
  readonly mutationRate?: number;
  /** Genes a layer may not take (e.g. no null op in a downsampling layer): return true to reject. */
  readonly isValid?: (genome: readonly number[]) => boolean;
  readonly onGeneration?: (generation: number, front: readonly Individual[]) => void;
}

export interface Individual {
  readonly genome: readonly number[];
  readonly objectives: readonly number[];
  rank: number;
  crowding: number;
}

export type Evaluate = (genome: readonly number[]) => readonly number[];

function dominates(a: readonly number[], b: readonly number[]): boolean {
  let strictlyBetter = false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    if (x > y) return false;
    if (x < y) strictlyBetter = true;
  }
  return strictlyBetter;
}

/** Fast non-dominated sort: assigns `rank` (0 = Pareto front) and returns the fronts. */
export function nonDominatedSort(pop: Individual[]): Individual[][] {
  const dominatedBy: number[][] = pop.map(() => []);
  const dominationCount = pop.map(() => 0);
  const fronts: Individual[][] = [[]];
  for (let p = 0; p < pop.length; p++) {
    for (let q = 0; q < pop.length; q++) {
      if (p === q) continue;
      const a = (pop[p] as Individual).objectives;
      const b = (pop[q] as Individual).objectives;
      if (dominates(a, b)) (dominatedBy[p] as number[]).push(q);
      else if (dominates(b, a)) dominationCount[p] = (dominationCount[p] as number) + 1;
    }
    if (dominationCount[p] === 0) {
      (pop[p] as Individual).rank = 0;
      (fronts[0] as Individual[]).push(pop[p] as Individual);
    }
  }
  let indices = pop.map((_, i) => i).filter((i) => dominationCount[i] === 0);
  let rank = 0;
  while (indices.length > 0) {
    const next: number[] = [];
    for (const p of indices) {
      for (const q of dominatedBy[p] as number[]) {
        dominationCount[q] = (dominationCount[q] as number) - 1;
        if (dominationCount[q] === 0) {
          (pop[q] as Individual).rank = rank + 1;
          next.push(q);
        }
      }
    }
    rank++;
    indices = next;
    if (next.length > 0) fronts.push(next.map((i) => pop[i] as Individual));
  }
  return fronts;
}

export function assignCrowding(front: Individual[]): void {
  for (const ind of front) ind.crowding = 0;
  const m = front[0]?.objectives.length ?? 0;
  for (let k = 0; k < m; k++) {
    const sorted = [...front].sort((a, b) => (a.objectives[k] as number) - (b.objectives[k] as number));
    const lo = sorted[0]?.objectives[k] as number;
    const hi = sorted[sorted.length - 1]?.objectives[k] as number;
    (sorted[0] as Individual).crowding = Infinity;
    (sorted[sorted.length - 1] as Individual).crowding = Infinity;
    if (hi === lo) continue;
    for (let i = 1; i < sorted.length - 1; i++) {
      const prev = sorted[i - 1]?.objectives[k] as number;
      const next = sorted[i + 1]?.objectives[k] as number;
      (sorted[i] as Individual).crowding += (next - prev) / (hi - lo);
    }
  }
}

function better(a: Individual, b: Individual): boolean {
  return a.rank < b.rank || (a.rank === b.rank && a.crowding > b.crowding);
}

export function nsga2(evaluate: Evaluate, opts: Nsga2Options): { front: Individual[]; evaluations: number } {
  const run = nsga2Steps(opts);
  let step = run.next();
  while (!step.done) step = run.next(evaluate(step.value));
  return step.value;
}

/**
 * NSGA-II with an asynchronous evaluation (e.g. a network's accuracy, yielding to the event loop so
 * Ctrl-C and progress output stay live). Same genomes, same result as nsga2() for the same seed.
 */
export async function nsga2Async(
  evaluate: (genome: readonly number[]) => Promise<readonly number[]>,
  opts: Nsga2Options,
): Promise<{ front: Individual[]; evaluations: number }> {
  const run = nsga2Steps(opts);
  let step = run.next();
  while (!step.done) step = run.next(await evaluate(step.value));
  return step.value;
}

/** The algorithm as a generator: yields each genome to evaluate (once), receives its objectives. */
function* nsga2Steps(opts: Nsga2Options): Generator<readonly number[], { front: Individual[]; evaluations: number }, readonly number[]> {
  const rng = new Rng(opts.seed);
  const genes = opts.cardinalities.length;
  const mutationRate = opts.mutationRate ?? 1 / genes;
  const cache = new Map<string, readonly number[]>();
  const isValid = opts.isValid ?? (() => true);

  function* evaluateCached(genome: readonly number[]): Generator<readonly number[], Individual, readonly number[]> {
    const key = genome.join(',');
    let objectives = cache.get(key);
    if (!objectives) {
      objectives = yield genome;
      cache.set(key, objectives);
    }
    return { genome, objectives, rank: 0, crowding: 0 };
  }
  const randomGenome = (): number[] => {
    for (;;) {
      const g = opts.cardinalities.map((c) => rng.int(c));
      if (isValid(g)) return g;
    }
  };

  let population: Individual[] = [];
  for (let i = 0; i < opts.population; i++) population.push(yield* evaluateCached(randomGenome()));
  for (const front of nonDominatedSort(population)) assignCrowding(front);

  const tournament = (): Individual => {
    const a = population[rng.int(population.length)] as Individual;
    const b = population[rng.int(population.length)] as Individual;
    return better(a, b) ? a : b;
  };

  for (let gen = 0; gen < opts.generations; gen++) {
    const offspring: Individual[] = [];
    let attempts = 0;
    while (offspring.length < opts.population) {
      const p1 = tournament();
      const p2 = tournament();
      // Uniform crossover, then per-gene mutation.
      const child = p1.genome.map((g, i) => (rng.next() < 0.5 ? g : (p2.genome[i] as number)));
      for (let i = 0; i < genes; i++) if (rng.next() < mutationRate) child[i] = rng.int(opts.cardinalities[i] as number);
      if (!isValid(child) && ++attempts < 100 * opts.population) continue;
      offspring.push(yield* evaluateCached(isValid(child) ? child : randomGenome()));
    }
    const merged = [...population, ...offspring];
    const fronts = nonDominatedSort(merged);
    const next: Individual[] = [];
    for (const front of fronts) {
      assignCrowding(front);
      if (next.length + front.length <= opts.population) {
        next.push(...front);
      } else {
        next.push(...[...front].sort((a, b) => b.crowding - a.crowding).slice(0, opts.population - next.length));
        break;
      }
    }
    population = next;
    opts.onGeneration?.(gen + 1, population.filter((p) => p.rank === 0));
  }
  const fronts = nonDominatedSort(population);
  // Distinct genomes only: duplicates can survive selection.
  const seen = new Set<string>();
  const front = (fronts[0] ?? []).filter((ind) => {
    const key = ind.genome.join(',');
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return { front, evaluations: cache.size };
}
