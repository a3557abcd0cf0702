import * as tf from '@tensorflow/tfjs';
import { InputError } from '../common/errors.js';
import { Rng } from '../common/rng.js';
import { activationRange, conv2dTrainable, lsqInitialStep, lsqQuantize, weightRange } from '../nn/index.js';
import type { QuantOptions, QuantRange } from '../nn/index.js';
import type { Shape } from '../spec/analyze.js';
import { layerOptions } from './significance.js';
import type { LayerChoice, SearchSpace } from './space.js';

/**
 * One supernet stage S_i: every candidate operator of searchable layer i, mixed DARTS-style by
 * softmax(alpha_i) (or one operator at a time, for single-path one-shot training).
 *
 * Weight sharing across channel widths (FBNetV2's channel masking, Wan et al. 2020): each
 * (operator kind, kernel) has ONE weight tensor at the space's widest channel count; the option
 * "width c" is that operator with output channels >= c zeroed by a mask. This is exact, not an
 * approximation: a conv's output channel j depends only on column j of the weights, bias and (per
 * channel) LSQ step, so the first c channels of the wide operator ARE a width-c operator, and a
 * zeroed channel contributes nothing downstream, as an absent one would. Mixing is linear in the
 * masks, so sum_c p_c * (y (.) mask_c) = y (.) (sum_c p_c mask_c): one conv per (kind, kernel)
 * evaluates all widths, which is what makes the warm-up affordable on two CPU cores (the
 * FashionMNIST space has 13 options per layer but only 4 convs). Widths do not share with
 * kernels or kinds: conv3x3, conv5x5, residual3x3 and residual5x5 keep their own weights.
 *
 * A residual option adds its input (quantised, as SpecNetwork does) when its stride is 1 and its
 * width equals the input channels, else a 1x1 projection (shared across widths, same masking).
 * The stage always outputs the widest channel count so the teacher's next stage fits; the null op
 * passes its input through, zero-padded to that count.
 *
 * Quantisation-aware (LSQ, as the retrained network): the stage's input is quantised to the
 * profile's input bits (unsigned: it follows a ReLU or is an image in [0, 1]) and every weight
 * tensor to the weight bits with per-output-channel steps. Operators supported: identity, conv,
 * residual (the FashionMNIST space). resblock and bottleneck change their inner width with the
 * option and cannot share one inner conv across widths; they are rejected with a clear error.
 */

const SUPPORTED = new Set(['identity', 'conv', 'residual']);

/** Rejects, before any training, a space with operators the supernet cannot hold. */
export function assertSupernetSupports(space: SearchSpace): void {
  const bad = space.ops.filter((op) => !SUPPORTED.has(op));
  if (bad.length > 0) {
    throw new InputError('INVALID_INPUT', `the supernet supports the operators identity, conv and residual; ${space.name} also has ${bad.join(', ')} (not implemented yet)`, {
      where: `search space ${space.name}`,
      details: { field: 'ops' },
    });
  }
}

interface Branch {
  readonly op: 'conv' | 'residual';
  readonly kernel: number;
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  readonly step: tf.Variable | undefined;
  /** Option indices of this branch, one per width, with the width. */
  readonly widths: ReadonlyArray<{ readonly index: number; readonly out: number }>;
}

interface Projection {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  readonly step: tf.Variable | undefined;
}

export interface SupernetStageOptions {
  readonly space: SearchSpace;
  /** Searchable layer index (0-based). */
  readonly layer: number;
  /** [H, W, C] fed to this stage (the teacher's activation before its layer). */
  readonly inShape: Shape;
  readonly quant: QuantOptions | null;
  readonly seed: number;
  /**
   * Whether gradients flow back into the stage's input (default true). False when the input is a
   * constant (DDE-GSCST's frozen teacher features, or images): the convs then skip their input
   * gradient, which for stride-2 convs costs four times the forward pass, and the input's LSQ step
   * stays at its calibrated value (its gradient would come through that input gradient).
   */
  readonly inputGrad?: boolean;
}

export interface StageParameter {
  readonly name: string;
  readonly variable: tf.Variable;
  readonly kind: 'weight' | 'bias' | 'step' | 'alpha';
}

export class SupernetStage {
  readonly layer: number;
  readonly options: readonly LayerChoice[];
  readonly inShape: Shape;
  readonly outChannels: number;
  readonly stride: number;
  readonly alpha: tf.Variable;
  private readonly branches: Branch[] = [];
  private readonly projection: Projection | undefined;
  private readonly identityIndex: number;
  private readonly inputStep: tf.Variable | undefined;
  private readonly wRange: QuantRange | null;
  private readonly aRange: QuantRange | null;
  private readonly named: StageParameter[] = [];
  private readonly inputGrad: boolean;
  private disposed = false;

  constructor(opts: SupernetStageOptions) {
    const { space, layer, inShape, quant } = opts;
    this.layer = layer;
    this.inShape = inShape;
    this.inputGrad = opts.inputGrad ?? true;
    this.options = layerOptions(space, layer);
    this.stride = space.strides[layer] ?? 1;
    this.outChannels = Math.max(...space.channels);
    const cin = inShape[2];
    for (const o of this.options) {
      if (!SUPPORTED.has(o.op)) {
        throw new InputError('INVALID_INPUT', `the supernet supports the operators identity, conv and residual; ${space.name} layer ${layer} offers ${o.op}`, {
          where: `search space ${space.name}`,
          details: { field: 'ops' },
        });
      }
    }
    this.identityIndex = this.options.findIndex((o) => o.op === 'identity');
    if (this.identityIndex >= 0 && cin > this.outChannels) {
      throw new InputError('INVALID_INPUT', `layer ${layer} gets ${cin} channels, more than the widest option (${this.outChannels}): the null op cannot be padded to it`, {
        where: `search space ${space.name}`,
      });
    }
    this.wRange = quant ? weightRange(quant.weightBits) : null;
    this.aRange = quant ? activationRange(quant.activationBits, false) : null;
    const rng = new Rng(opts.seed);
    const cmax = this.outChannels;
    const add = (name: string, kind: StageParameter['kind'], variable: tf.Variable): tf.Variable => {
      this.named.push({ name: `stage[${layer}].${name}`, kind, variable });
      return variable;
    };
    const heInit = (shape: number[], fanIn: number): tf.Variable => {
      const n = shape.reduce((a, b) => a * b, 1);
      const std = Math.sqrt(2 / fanIn);
      const v = new Float32Array(n);
      for (let i = 0; i < n; i++) v[i] = rng.normal() * std;
      return tf.tidy(() => tf.variable(tf.tensor(v, shape), true));
    };
    const stepVar = (channels: number): tf.Variable | undefined =>
      quant ? tf.tidy(() => tf.variable(tf.fill([channels], 0.01), true)) : undefined;

    for (const op of ['conv', 'residual'] as const) {
      for (const kernel of space.kernels) {
        const widths = this.options.flatMap((o, index) => (o.op === op && o.kernel === kernel ? [{ index, out: o.out }] : []));
        if (widths.length === 0) continue;
        const base = `${op}${kernel}x${kernel}`;
        const weight = add(`${base}.weight`, 'weight', heInit([kernel, kernel, cin, cmax], kernel * kernel * cin));
        const bias = add(`${base}.bias`, 'bias', tf.tidy(() => tf.variable(tf.zeros([cmax]), true)));
        const s = stepVar(cmax);
        if (s) add(`${base}.weightStep`, 'step', s);
        this.branches.push({ op, kernel, weight, bias, step: s, widths });
      }
    }
    const needsProjection = this.options.some((o) => o.op === 'residual' && (this.stride !== 1 || o.out !== cin));
    if (needsProjection) {
      const weight = add('projection.weight', 'weight', heInit([1, 1, cin, cmax], cin));
      const bias = add('projection.bias', 'bias', tf.tidy(() => tf.variable(tf.zeros([cmax]), true)));
      const s = stepVar(cmax);
      if (s) add('projection.weightStep', 'step', s);
      this.projection = { weight, bias, step: s };
    }
    this.inputStep = quant ? add('input.step', 'step', tf.tidy(() => tf.variable(tf.tensor1d([1 / (this.aRange as QuantRange).qp]), true))) : undefined;
    this.alpha = add('alpha', 'alpha', tf.tidy(() => tf.variable(tf.zeros([this.options.length]), true)));
  }

  /** Every parameter with a stable name (checkpoint order). */
  parameters(): readonly StageParameter[] {
    return this.named;
  }

  /** The operator weights theta_i (weights, biases, LSQ steps), without alpha. */
  thetaVariables(): tf.Variable[] {
    return this.named.filter((p) => p.kind !== 'alpha' && (this.inputGrad || p.variable !== this.inputStep)).map((p) => p.variable);
  }

  /** Theta used by one option (single-path training updates only these). */
  pathVariables(option: number): tf.Variable[] {
    const o = this.options[option];
    if (!o || o.op === 'identity') return [];
    const b = this.branches.find((x) => x.op === o.op && x.kernel === o.kernel) as Branch;
    const vars = [b.weight, b.bias];
    if (b.step) vars.push(b.step);
    if (o.op === 'residual' && this.usesProjection(o.out) && this.projection) {
      vars.push(this.projection.weight, this.projection.bias);
      if (this.projection.step) vars.push(this.projection.step);
    }
    if (this.inputStep && this.inputGrad) vars.push(this.inputStep);
    return vars;
  }

  /** softmax(alpha): the task significance of each option. */
  probabilities(): number[] {
    const t = tf.tidy(() => tf.softmax(this.alpha));
    const out = Array.from(t.dataSync());
    t.dispose();
    return out;
  }

  /** LSQ initial steps from the current weights and from one batch of this stage's input. */
  calibrate(x: tf.Tensor4D): void {
    if (!this.wRange || !this.aRange) return;
    const wr = this.wRange;
    const all: Array<{ weight: tf.Variable; step: tf.Variable | undefined }> = [...this.branches];
    if (this.projection) all.push(this.projection);
    for (const { weight, step } of all) {
      if (!step) continue;
      tf.tidy(() => {
        const cols = weight.shape[3] as number;
        const meanAbs = tf.mean(tf.abs(weight.reshape([-1, cols])), 0);
        step.assign(tf.maximum(tf.div(tf.mul(meanAbs, 2), Math.sqrt(wr.qp)), 1e-6));
      });
    }
    if (this.inputStep) {
      const m = tf.tidy(() => tf.mean(tf.abs(x)));
      const meanAbs = m.dataSync()[0] ?? 0;
      m.dispose();
      const s = this.inputStep;
      const r = this.aRange;
      tf.tidy(() => s.assign(tf.tensor1d([lsqInitialStep(meanAbs, r)])));
    }
  }

  clampSteps(): void {
    tf.tidy(() => {
      for (const p of this.named) if (p.kind === 'step') p.variable.assign(tf.maximum(p.variable, 1e-6));
    });
  }

  private usesProjection(out: number): boolean {
    return this.stride !== 1 || out !== this.inShape[2];
  }

  private quantInput(x: tf.Tensor4D): tf.Tensor4D {
    if (!this.inputStep || !this.aRange) return x;
    const [h, w, c] = this.inShape;
    return lsqQuantize(x, this.inputStep, this.aRange, 1 / Math.sqrt(h * w * c * this.aRange.qp)) as tf.Tensor4D;
  }

  private conv(x: tf.Tensor4D, p: { weight: tf.Variable; bias: tf.Variable; step: tf.Variable | undefined }, stride: number): tf.Tensor4D {
    let w: tf.Tensor = p.weight;
    if (p.step && this.wRange) {
      const rows = (p.weight.shape[0] as number) * (p.weight.shape[1] as number) * (p.weight.shape[2] as number);
      w = lsqQuantize(p.weight, p.step, this.wRange, 1 / Math.sqrt(rows * this.wRange.qp));
    }
    return tf.add(conv2dTrainable(x, w as tf.Tensor4D, stride, 'same', { inputGrad: this.inputGrad }), p.bias);
  }

  private padChannels(x: tf.Tensor4D): tf.Tensor4D {
    const c = x.shape[3];
    if (c === this.outChannels) return x;
    return tf.pad(x, [
      [0, 0],
      [0, 0],
      [0, 0],
      [0, this.outChannels - c],
    ]);
  }

  /** [1, cmax] mask 1 for channels < out. */
  private maskRow(out: number): number[] {
    return Array.from({ length: this.outChannels }, (_, ch) => (ch < out ? 1 : 0));
  }

  /**
   * Mixed output sum_j p_j * op_j(x) for probabilities p (a [options] tensor, normally
   * softmax(alpha)). Call inside tf.tidy or a gradient function.
   */
  forwardMixed(x: tf.Tensor4D, p: tf.Tensor1D): tf.Tensor4D {
    const xq = this.quantInput(x);
    const cin = this.inShape[2];
    const parts: tf.Tensor4D[] = [];
    let proj: tf.Tensor4D | undefined;
    for (const b of this.branches) {
      const y = this.conv(xq, b, this.stride);
      const direct = b.widths.filter((wd) => b.op === 'conv' || !this.usesProjection(wd.out));
      const viaProj = b.op === 'residual' ? b.widths.filter((wd) => this.usesProjection(wd.out)) : [];
      // p @ S with S [options, cmax] holding each listed option's channel mask (zero rows elsewhere).
      // (tf.gather's gradient needs UnsortedSegmentSum, which the wasm backend lacks.)
      const mask = (ws: typeof b.widths): tf.Tensor => {
        const sel = new Float32Array(this.options.length * this.outChannels);
        for (const wd of ws) for (let ch = 0; ch < Math.min(wd.out, this.outChannels); ch++) sel[wd.index * this.outChannels + ch] = 1;
        return tf.matMul(p.reshape([1, this.options.length]), tf.tensor2d(sel, [this.options.length, this.outChannels])).reshape([this.outChannels]);
      };
      if (direct.length > 0) {
        const pre = b.op === 'residual' ? tf.add(y, xq) : y;
        parts.push(tf.mul(tf.relu(pre), mask(direct)));
      }
      if (viaProj.length > 0 && this.projection) {
        proj ??= this.conv(xq, this.projection, this.stride);
        parts.push(tf.mul(tf.relu(tf.add(y, proj)), mask(viaProj)));
      }
    }
    if (this.identityIndex >= 0) {
      if (cin > this.outChannels) throw new RangeError('identity input wider than the stage');
      const onehot = tf.oneHot([this.identityIndex], this.options.length).reshape([this.options.length]).toFloat();
      parts.push(tf.mul(this.padChannels(x), tf.sum(tf.mul(p, onehot))));
    }
    return parts.length === 1 ? (parts[0] as tf.Tensor4D) : (tf.addN(parts) as tf.Tensor4D);
  }

  /** One option alone (single-path one-shot training and evaluation of a candidate). */
  forwardPath(x: tf.Tensor4D, option: number): tf.Tensor4D {
    const o = this.options[option];
    if (!o) throw new RangeError(`option ${option} of ${this.options.length}`);
    if (o.op === 'identity') return this.padChannels(x);
    const xq = this.quantInput(x);
    const b = this.branches.find((br) => br.op === o.op && br.kernel === o.kernel) as Branch;
    let y = this.conv(xq, b, this.stride);
    if (o.op === 'residual') y = tf.add(y, this.usesProjection(o.out) && this.projection ? this.conv(xq, this.projection, this.stride) : xq);
    const out = tf.relu(y);
    return o.out === this.outChannels ? out : tf.mul(out, tf.tensor1d(this.maskRow(o.out)));
  }

  /** Parameter values by name (copies), alpha included. */
  getValues(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const p of this.named) out.set(p.name, (p.variable.dataSync() as Float32Array).slice());
    return out;
  }

  setValues(values: ReadonlyMap<string, Float32Array>, where: string): void {
    for (const p of this.named) {
      const v = values.get(p.name);
      if (!v || v.length !== p.variable.size) {
        throw new InputError('INVALID_INPUT', `checkpoint lacks ${p.name} or has the wrong size (corrupt checkpoint)`, { where, details: { field: p.name } });
      }
      tf.tidy(() => p.variable.assign(tf.tensor(v, p.variable.shape)));
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of this.named) p.variable.dispose();
  }
}

/**
 * Adam over a changing subset of variables (each keeps its own step count): a single-path step
 * only has gradients for the path's operators, and moving the others by stale momentum would
 * train operators that were not sampled.
 */
export class SparseAdam {
  private readonly state = new Map<tf.Variable, { m: tf.Variable; v: tf.Variable; t: number }>();

  constructor(
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly eps = 1e-7,
  ) {}

  apply(vars: readonly tf.Variable[], grads: tf.NamedTensorMap, lr: number): void {
    tf.tidy(() => {
      for (const x of vars) {
        const g = grads[x.name];
        if (!g) continue;
        let s = this.state.get(x);
        if (!s) {
          s = { m: tf.variable(tf.zerosLike(x), false), v: tf.variable(tf.zerosLike(x), false), t: 0 };
          tf.keep(s.m);
          tf.keep(s.v);
          this.state.set(x, s);
        }
        s.t++;
        const c1 = 1 - this.beta1 ** s.t;
        const c2 = 1 - this.beta2 ** s.t;
        s.m.assign(tf.add(tf.mul(s.m, this.beta1), tf.mul(g, 1 - this.beta1)));
        s.v.assign(tf.add(tf.mul(s.v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2)));
        x.assign(tf.sub(x, tf.div(tf.mul(s.m, lr / c1), tf.add(tf.sqrt(tf.div(s.v, c2)), this.eps))));
      }
    });
  }

  dispose(): void {
    for (const s of this.state.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.state.clear();
  }
}
