import type { NetworkSpec } from '../spec/index.js';
import { buildCandidate, opsForLayer, type LayerChoice, type SearchSpace, type SearchableOp } from './space.js';

/**
 * The teacher of a search space (NAS4CIM stage 1): the space's own skeleton with the widest channel
 * count at every searchable layer, so that a supernet stage (which outputs that width) can replace
 * any teacher stage with matching shapes, and a strong operator there: a residual operator if the
 * space has one (residual > resblock > bottleneck), else a plain conv; kernel 3 if the space offers
 * it (the best accuracy per MAC in these spaces), else its largest kernel.
 *
 * Stages: stage i (1-based) is searchable layer i; the stem belongs to stage 1 and the head to
 * stage L. In spec layer indices, searchable layer i (0-based) is layer stem.length + i.
 */

const PREFERENCE: readonly SearchableOp[] = ['residual', 'resblock', 'bottleneck', 'conv'];

export function teacherChoices(space: SearchSpace): LayerChoice[] {
  const width = Math.max(...space.channels);
  const kernel = space.kernels.includes(3) ? 3 : Math.max(...space.kernels);
  return space.strides.map((_, i) => {
    const ops = opsForLayer(space, i);
    const op = PREFERENCE.find((o) => ops.includes(o)) ?? 'conv';
    return { op, kernel, out: width };
  });
}

export function teacherSpec(space: SearchSpace): NetworkSpec {
  return buildCandidate(space, teacherChoices(space), `${space.name}-teacher`);
}

/** Spec layer index of searchable layer i (0-based). */
export function searchableLayerIndex(space: SearchSpace, i: number): number {
  return space.stem.length + i;
}
