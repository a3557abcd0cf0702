import { z } from 'zod';
import type { Rng } from '../common/rng.js';
import { parseWith } from '../common/validate.js';
import { LayerSchema, type LayerSpec, type NetworkSpec } from '../spec/index.js';

/**
 * A search space: a fixed stem, `layers` searchable layers (each picks an operator, a kernel and
 * an output channel count) and a fixed head. The searchable layers' strides are fixed by the space
 * so that every candidate has the same downsampling schedule; layers that downsample may not pick
 * the null op (it could not change the shape).
 */
export const SEARCHABLE_OPS = ['identity', 'conv', 'residual', 'resblock', 'bottleneck'] as const;
export type SearchableOp = (typeof SEARCHABLE_OPS)[number];

export const SearchSpaceSchema = z
  .strictObject({
    name: z.string().min(1),
    dataset: z.string().min(1),
    input: z.tuple([z.int().min(1), z.int().min(1), z.int().min(1)]),
    classes: z.int().min(2),
    kernels: z.array(z.int().min(1).max(31)).min(1),
    ops: z.array(z.enum(SEARCHABLE_OPS)).min(1),
    channels: z.array(z.int().min(1)).min(1),
    /** Stride of each searchable layer; its length is the number of searchable layers. */
    strides: z.array(z.int().min(1).max(4)).min(1),
    stem: z.array(LayerSchema).default([]),
    head: z.array(LayerSchema).min(1),
    /** Expansion used when a layer picks the bottleneck op. */
    bottleneckExpansion: z.int().min(1).default(4),
    provenance: z.string().min(1),
  })
  .superRefine((space, ctx) => {
    if (space.ops.every((op) => op === 'identity')) {
      ctx.addIssue({ code: 'custom', path: ['ops'], message: 'needs at least one operator besides identity' });
    }
  });

export type SearchSpace = z.output<typeof SearchSpaceSchema>;

/** One searchable layer's choice. */
export interface LayerChoice {
  readonly op: SearchableOp;
  readonly kernel: number;
  readonly out: number;
}

export function parseSearchSpace(value: unknown, source = 'search space'): SearchSpace {
  return parseWith(SearchSpaceSchema, value, source);
}

/** Operators layer `i` may use: no null op where the layer downsamples. */
export function opsForLayer(space: SearchSpace, i: number): readonly SearchableOp[] {
  return (space.strides[i] ?? 1) === 1 ? space.ops : space.ops.filter((op) => op !== 'identity');
}

/** Builds the network spec of one candidate (one choice per searchable layer). */
export function buildCandidate(space: SearchSpace, choices: readonly LayerChoice[], name = `${space.name}-candidate`): NetworkSpec {
  const layers: LayerSpec[] = [...space.stem];
  for (let i = 0; i < choices.length; i++) {
    const c = choices[i] as LayerChoice;
    const stride = space.strides[i] ?? 1;
    if (c.op === 'identity') {
      layers.push({ op: 'identity' });
    } else if (c.op === 'bottleneck') {
      layers.push({ op: 'bottleneck', kernel: c.kernel, out: c.out, stride, padding: 'same', expansion: space.bottleneckExpansion });
    } else {
      layers.push({ op: c.op, kernel: c.kernel, out: c.out, stride, padding: 'same' });
    }
  }
  layers.push(...space.head);
  return { name, input: space.input, classes: space.classes, layers };
}

/** Uniformly random choices (the baseline sampler and the simulator benchmark use it). */
export function sampleChoices(space: SearchSpace, rng: Rng): LayerChoice[] {
  const choices: LayerChoice[] = [];
  for (let i = 0; i < space.strides.length; i++) {
    choices.push({ op: rng.pick(opsForLayer(space, i)), kernel: rng.pick(space.kernels), out: rng.pick(space.channels) });
  }
  return choices;
}
