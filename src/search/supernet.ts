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
 * tensor to the weight bits with per-output-channel steps.
 *
 * Blocks (resblock: conv1 -> conv2; bottleneck: 1x1 reduce -> kxk -> 1x1 expand, inner width
 * ceil(out / expansion)) share their tensors across widths the same way, each inner conv at the
 * widest inner width. A single path is exact (its inner activations are masked to its own width,
 * so it IS the standalone block, see the tests). The DARTS mixture of a block's widths uses
 * FBNetV2's approximation: one inner activation masked by the probability-weighted average of the
 * widths' masks, instead of one inner pass per width (which would multiply the warm-up's cost by
 * the number of widths). Inner activations are ReLU then LSQ-quantised, as SpecNetwork does.
 */

type BranchOp = 'conv' | 'residual' | 'resblock' | 'bottleneck';
const BRANCH_OPS: readonly BranchOp[] = ['conv', 'residual', 'resblock', 'bottleneck'];

/** Kept for callers that check a space before training: every searchable operator is supported. */
export function assertSupernetSupports(space: SearchSpace): void {
  const bad = space.ops.filter((op) => op !== 'identity' && !BRANCH_OPS.includes(op));
  if (bad.length > 0) {
    throw new InputError('INVALID_INPUT', `the supernet cannot hold the operators ${bad.join(', ')}`, {
      where: `search space ${space.name}`,
      details: { field: 'ops' },
    });
  }
}

interface BranchMatrix {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  readonly step: tf.Variable | undefined;
  readonly stride: number;
}

/** The quantiser between two matrices of a block, and how wide that activation is for an option. */
interface InnerActivation {
  readonly step: tf.Variable | undefined;
  /** Elements per image (LSQ's N_F) at the widest inner width. */
  readonly features: number;
  readonly max: number;
  readonly widthOf: (out: number) => number;
}

interface Branch {
  readonly op: BranchOp;
  readonly kernel: number;
  /** The main path, in order (one matrix for conv and residual). */
  readonly matrices: readonly BranchMatrix[];
  /** Between matrices i and i+1. */
  readonly inner: readonly InnerActivation[];
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

    const [hIn, wIn] = inShape;
    const hOut = Math.ceil(hIn / this.stride);
    const wOut = Math.ceil(wIn / this.stride);
    const innerStep = (): tf.Variable | undefined => (quant ? tf.tidy(() => tf.variable(tf.tensor1d([1 / (this.aRange as QuantRange).qp]), true)) : undefined);
    for (const op of BRANCH_OPS) {
      for (const kernel of space.kernels) {
        const widths = this.options.flatMap((o, index) => (o.op === op && o.kernel === kernel ? [{ index, out: o.out }] : []));
        if (widths.length === 0) continue;
        const base = `${op}${kernel}x${kernel}`;
        const matrix = (name: string, k: number, inC: number, outC: number, stride: number): BranchMatrix => {
          const weight = add(`${base}${name}.weight`, 'weight', heInit([k, k, inC, outC], k * k * inC));
          const bias = add(`${base}${name}.bias`, 'bias', tf.tidy(() => tf.variable(tf.zeros([outC]), true)));
          const step = stepVar(outC);
          if (step) add(`${base}${name}.weightStep`, 'step', step);
          return { weight, bias, step, stride };
        };
        const inner = (name: string, max: number, h: number, w: number, widthOf: (out: number) => number): InnerActivation => {
          const step = innerStep();
          if (step) add(`${base}${name}.step`, 'step', step);
          return { step, features: h * w * max, max, widthOf };
        };
        let matrices: BranchMatrix[];
        let inners: InnerActivation[] = [];
        if (op === 'conv' || op === 'residual') {
          matrices = [matrix('', kernel, cin, cmax, this.stride)];
        } else if (op === 'resblock') {
          matrices = [matrix('.conv1', kernel, cin, cmax, this.stride), matrix('.conv2', kernel, cmax, cmax, 1)];
          inners = [inner('.inner1', cmax, hOut, wOut, (out) => out)];
        } else {
          const e = space.bottleneckExpansion;
          const mid = Math.max(1, Math.ceil(cmax / e));
          const midOf = (out: number): number => Math.max(1, Math.ceil(out / e));
          matrices = [matrix('.reduce', 1, cin, mid, 1), matrix('.spatial', kernel, mid, mid, this.stride), matrix('.expand', 1, mid, cmax, 1)];
          inners = [inner('.inner1', mid, hIn, wIn, midOf), inner('.inner2', mid, hOut, wOut, midOf)];
        }
        this.branches.push({ op, kernel, matrices, inner: inners, widths });
      }
    }
    const needsProjection = this.options.some((o) => isResidual(o.op) && (this.stride !== 1 || o.out !== cin));
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
    const b = this.branchOf(o);
    const vars: tf.Variable[] = [];
    for (const m of b.matrices) {
      vars.push(m.weight, m.bias);
      if (m.step) vars.push(m.step);
    }
    for (const a of b.inner) if (a.step) vars.push(a.step);
    if (isResidual(o.op) && this.usesProjection(o.out) && this.projection) {
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
    const all: Array<{ weight: tf.Variable; step: tf.Variable | undefined }> = this.branches.flatMap((b) => [...b.matrices]);
    if (this.projection) all.push(this.projection);
    for (const { weight, step } of all) {
      if (!step) continue;
      tf.tidy(() => {
        const cols = weight.shape[3] as number;
        const meanAbs = tf.mean(tf.abs(weight.reshape([-1, cols])), 0);
        step.assign(tf.maximum(tf.div(tf.mul(meanAbs, 2), Math.sqrt(wr.qp)), 1e-6));
      });
    }
    const setStep = (step: tf.Variable, t: tf.Tensor): void => {
      const m = tf.tidy(() => tf.mean(tf.abs(t)));
      const meanAbs = m.dataSync()[0] ?? 0;
      m.dispose();
      const r = this.aRange as QuantRange;
      tf.tidy(() => step.assign(tf.tensor1d([lsqInitialStep(meanAbs, r)])));
    };
    if (this.inputStep) setStep(this.inputStep, x);
    // Inner activations of blocks at full width, each calibrated after the ones before it.
    for (const b of this.branches) {
      b.inner.forEach((a, i) => {
        if (!a.step) return;
        const h = tf.tidy(() => {
          let t = this.quantInput(x);
          for (let j = 0; j <= i; j++) {
            t = tf.relu(this.conv(t, b.matrices[j] as BranchMatrix, (b.matrices[j] as BranchMatrix).stride));
            if (j < i) t = this.quantInner(t, b.inner[j] as InnerActivation);
          }
          return t;
        });
        setStep(a.step, h);
        h.dispose();
      });
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

  private quantInner(x: tf.Tensor4D, a: InnerActivation): tf.Tensor4D {
    if (!a.step || !this.aRange) return x;
    return lsqQuantize(x, a.step, this.aRange, 1 / Math.sqrt(a.features * this.aRange.qp)) as tf.Tensor4D;
  }

  private branchOf(o: LayerChoice): Branch {
    return this.branches.find((b) => b.op === o.op && b.kernel === o.kernel) as Branch;
  }

  /**
   * A branch's main path. `innerMask[i]` (a [width] vector) multiplies the inner activation i
   * before it is quantised: a 0/1 mask for one option, a weighted average of masks in a mixture.
   */
  private mainPath(xq: tf.Tensor4D, b: Branch, innerMask: readonly tf.Tensor[]): tf.Tensor4D {
    let h = xq;
    b.matrices.forEach((m, i) => {
      h = this.conv(h, m, m.stride);
      if (i < b.matrices.length - 1) h = this.quantInner(tf.mul(tf.relu(h), innerMask[i] as tf.Tensor) as tf.Tensor4D, b.inner[i] as InnerActivation);
    });
    return h;
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
    const n = this.options.length;
    const pRow = p.reshape([1, n]);
    // p @ S with S [options, width] holding each listed option's channel mask (zero rows elsewhere).
    // (tf.gather's gradient needs UnsortedSegmentSum, which the wasm backend lacks.)
    const maskOf = (ws: Branch['widths'], width: number, widthOf: (out: number) => number): tf.Tensor => {
      const sel = new Float32Array(n * width);
      for (const wd of ws) for (let ch = 0; ch < Math.min(widthOf(wd.out), width); ch++) sel[wd.index * width + ch] = 1;
      return tf.matMul(pRow, tf.tensor2d(sel, [n, width])).reshape([width]);
    };
    const same = (out: number): number => out;
    for (const b of this.branches) {
      // Inner masks: the probability-weighted average of this branch's widths (FBNetV2).
      let innerMask: tf.Tensor[] = [];
      if (b.inner.length > 0) {
        const branchP = tf.maximum(tf.sum(maskOf(b.widths, 1, () => 1)), 1e-12);
        innerMask = b.inner.map((a) => tf.div(maskOf(b.widths, a.max, a.widthOf), branchP));
      }
      const y = this.mainPath(xq, b, innerMask);
      const residual = isResidual(b.op);
      const direct = b.widths.filter((wd) => !residual || !this.usesProjection(wd.out));
      const viaProj = residual ? b.widths.filter((wd) => this.usesProjection(wd.out)) : [];
      if (direct.length > 0) {
        const pre = residual ? tf.add(y, xq) : y;
        parts.push(tf.mul(tf.relu(pre), maskOf(direct, this.outChannels, same)));
      }
      if (viaProj.length > 0 && this.projection) {
        proj ??= this.conv(xq, this.projection, this.stride);
        parts.push(tf.mul(tf.relu(tf.add(y, proj)), maskOf(viaProj, this.outChannels, same)));
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
    const b = this.branchOf(o);
    const innerMask = b.inner.map((a) => tf.tensor1d(Array.from({ length: a.max }, (_, ch) => (ch < a.widthOf(o.out) ? 1 : 0))));
    let y = this.mainPath(xq, b, innerMask);
    if (isResidual(o.op)) y = tf.add(y, this.usesProjection(o.out) && this.projection ? this.conv(xq, this.projection, this.stride) : xq);
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

function isResidual(op: string): boolean {
  return op === 'residual' || op === 'resblock' || op === 'bottleneck';
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
