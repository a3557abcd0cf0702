import { z } from 'zod';

/**
 * The network spec: one JSON description of a feed-forward CNN shared by the search, the
 * simulator, training and programming. Tensors are height x width x channels (NHWC).
 *
 * Defaults (applied by parsing):
 * - `stride` 1, `padding` "same" (output = ceil(input / stride)); "valid" gives
 *   floor((input - kernel) / stride) + 1.
 * - `activation`: "relu" on every layer except a final dense layer, which defaults to "none"
 *   (it produces the logits). Residual ops apply it after the skip addition.
 * - `bottleneck.expansion` 4: the block reduces to ceil(out / expansion) channels, runs the
 *   kxk conv there (with the stride), and expands back to `out`.
 * - `pool.stride` defaults to `pool.size`; pooling never pads.
 * Residual ops (`residual`, `resblock`, `bottleneck`) add a 1x1 projection conv on the skip path
 * when the stride is not 1 or the channel count changes.
 */

export const ActivationSchema = z.enum(['relu', 'relu6', 'none']);
export const PaddingSchema = z.enum(['same', 'valid']);

const channels = z.int().min(1, 'must be at least 1 channel').max(65536);
const kernel = z.int().min(1, 'kernel must be at least 1').max(31);
const stride = z.int().min(1, 'stride must be at least 1').max(16);

const convFields = {
  kernel,
  out: channels,
  stride: stride.default(1),
  padding: PaddingSchema.default('same'),
  activation: ActivationSchema.optional(),
};

export const ConvLayerSchema = z.strictObject({ op: z.literal('conv'), ...convFields });
export const ResidualLayerSchema = z.strictObject({ op: z.literal('residual'), ...convFields });
export const ResblockLayerSchema = z.strictObject({ op: z.literal('resblock'), ...convFields });
export const BottleneckLayerSchema = z.strictObject({
  op: z.literal('bottleneck'),
  ...convFields,
  expansion: z.int().min(1).max(64).default(4),
});
export const IdentityLayerSchema = z.strictObject({ op: z.literal('identity') });
export const PoolLayerSchema = z.strictObject({
  op: z.literal('pool'),
  kind: z.enum(['max', 'avg']),
  size: z.int().min(1).max(64),
  stride: stride.optional(),
});
export const GapLayerSchema = z.strictObject({ op: z.literal('gap') });
export const DenseLayerSchema = z.strictObject({
  op: z.literal('dense'),
  out: channels,
  activation: ActivationSchema.optional(),
});

export const LAYER_OPS = ['conv', 'residual', 'resblock', 'bottleneck', 'identity', 'pool', 'gap', 'dense'] as const;
export type LayerOp = (typeof LAYER_OPS)[number];

export const LayerSchema = z.discriminatedUnion(
  'op',
  [
    ConvLayerSchema,
    ResidualLayerSchema,
    ResblockLayerSchema,
    BottleneckLayerSchema,
    IdentityLayerSchema,
    PoolLayerSchema,
    GapLayerSchema,
    DenseLayerSchema,
  ],
  {
    error: (issue) =>
      issue.code === 'invalid_union'
        ? `unknown or missing op (expected one of ${LAYER_OPS.join(', ')})`
        : undefined,
  },
);

export const NetworkSpecSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().optional(),
  /** [height, width, channels] of one input image. */
  input: z.tuple([z.int().min(1), z.int().min(1), z.int().min(1)]),
  classes: z.int().min(2),
  layers: z.array(LayerSchema).min(1, 'a network needs at least one layer'),
});

export type Activation = z.infer<typeof ActivationSchema>;
export type Padding = z.infer<typeof PaddingSchema>;
export type LayerSpec = z.output<typeof LayerSchema>;
export type LayerSpecInput = z.input<typeof LayerSchema>;
export type ConvLikeLayerSpec = Extract<LayerSpec, { op: 'conv' | 'residual' | 'resblock' | 'bottleneck' }>;
/** A parsed spec: every default filled in. */
export type NetworkSpec = z.output<typeof NetworkSpecSchema>;
/** What a user writes: defaults may be omitted. */
export type NetworkSpecInput = z.input<typeof NetworkSpecSchema>;
