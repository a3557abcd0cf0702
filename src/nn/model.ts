import * as tf from '@tensorflow/tfjs';
import { InputError } from '../common/errors.js';
import { Rng } from '../common/rng.js';
import { analyzeNetwork } from '../spec/analyze.js';
import type { LayerAnalysis, NetworkAnalysis, WeightMatrix } from '../spec/analyze.js';
import type { Activation, NetworkSpec } from '../spec/schema.js';
import { conv2dTrainable } from './conv.js';
import { activationRange, lsqInitialStep, lsqQuantize, weightRange } from './quant.js';
import type { QuantRange } from './quant.js';

/**
 * A trainable network built from a network spec, as plain tf.Variables and a forward function
 * (no tf.LayersModel: Layers has no hook for our conv gradient or LSQ quantisers).
 *
 * Design: batch-norm free. The chip has no BN, and folding BN into LSQ-quantised weights changes
 * the weight statistics the steps were learned for (it needs BN-folding QAT, Jacob et al. 2018,
 * with running-statistics freezing). Instead every matrix is a conv/dense with a bias, He-initialised,
 * and the training recipe (Adam, warm-up, cosine decay) carries the optimisation. What trains is
 * exactly what is exported.
 *
 * Quantisation points (what the chip sees): every weight matrix's input vector is quantised to
 * `activationBits` (the DAC input precision) by an LSQ activation quantiser, and its weights to
 * `weightBits` by an LSQ weight quantiser (one step per output column by default). A layer's input
 * is quantised once and shared by all matrices that read it (a residual's conv and its projection)
 * and by its skip path, so activations between layers are always the integers the chip stores.
 * Block-internal activations (resblock conv1 -> conv2, bottleneck reduce -> spatial -> expand) are
 * ReLU then quantised. Biases, skip additions, pooling and the final logits are digital and stay float.
 *
 * Weight layout: conv kernels are [k, k, Cin, Cout], so flattening them row-major gives rows in the
 * spec's im2col (ky, kx, cin) order times Cout columns; dense weights are [inputs, out] with inputs
 * in (h, w, c) order of the flattened NHWC tensor. Inputs are NHWC float32 in [0, 1].
 */

export interface QuantOptions {
  /** Signed weight precision (hardware profile weights.bits). */
  readonly weightBits: number;
  /** Input (activation) precision fed to the crossbars (hardware profile inputs.bits). */
  readonly activationBits: number;
  /** One weight step per output column (default) or one per matrix. */
  readonly perChannel?: boolean;
}

export interface BuildOptions {
  /** Omit or null for a float network (e.g. a teacher). */
  readonly quant?: QuantOptions | null;
  /** Seeds the weight initialisation. */
  readonly seed?: number;
}

export type ParameterKind = 'weight' | 'bias' | 'weightStep' | 'activationStep';

export interface NamedParameter {
  /** Stable name, e.g. `layers[2].conv.weight`; used by checkpoints and the exported files. */
  readonly name: string;
  readonly kind: ParameterKind;
  readonly variable: tf.Variable;
}

export interface ActivationQuantizer {
  readonly name: string;
  readonly signed: boolean;
  readonly range: QuantRange;
  /** Elements per image sharing the step (LSQ's N_F). */
  readonly features: number;
  readonly step: tf.Variable;
}

export interface MatrixParameters {
  readonly layer: number;
  readonly role: string;
  readonly matrix: WeightMatrix;
  /** [k, k, Cin, Cout] for convs, [inputs, out] for dense. */
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  /** [Cout] (per channel) or [1]; undefined for float networks. */
  readonly weightStep: tf.Variable | undefined;
  /** The quantiser feeding this matrix's input; undefined for float networks. */
  readonly input: ActivationQuantizer | undefined;
}

interface LayerParams {
  readonly analysis: LayerAnalysis;
  readonly matrices: readonly MatrixParameters[];
}

type Mode = 'train' | 'eval' | 'calibrate';

export class SpecNetwork {
  readonly spec: NetworkSpec;
  readonly analysis: NetworkAnalysis;
  readonly quant: Required<QuantOptions> | null;
  readonly matrices: readonly MatrixParameters[];
  readonly quantizers: readonly ActivationQuantizer[];
  private readonly layerParams: readonly LayerParams[];
  private readonly named: NamedParameter[] = [];
  private readonly wRange: QuantRange | null;
  /** False until calibrate() set the steps from data (train() does it on its first batch). */
  quantCalibrated = false;
  private disposed = false;

  constructor(spec: NetworkSpec, options: BuildOptions = {}) {
    this.spec = spec;
    this.analysis = analyzeNetwork(spec);
    const q = options.quant ?? null;
    if (q) {
      for (const [field, bits, max] of [
        ['weightBits', q.weightBits, 8],
        ['activationBits', q.activationBits, 16],
      ] as const) {
        if (!Number.isInteger(bits) || bits < 2 || bits > max) {
          throw new InputError('INVALID_INPUT', `${field} must be an integer in 2..${max} (the weight image stores int8), got ${bits}`, {
            where: `quant.${field}`,
            details: { field },
          });
        }
      }
    }
    this.quant = q ? { weightBits: q.weightBits, activationBits: q.activationBits, perChannel: q.perChannel ?? true } : null;
    this.wRange = this.quant ? weightRange(this.quant.weightBits) : null;
    const rng = new Rng(options.seed ?? 1);
    const matrices: MatrixParameters[] = [];
    const quantizers: ActivationQuantizer[] = [];
    const layerParams: LayerParams[] = [];
    // Inputs are images in [0, 1]; after ReLU/ReLU6 values are non-negative again.
    let nonNegative = true;
    const lastIndex = this.analysis.layers.length - 1;

    const makeQuantizer = (name: string, signed: boolean, features: number): ActivationQuantizer | undefined => {
      if (!this.quant) return undefined;
      const range = activationRange(this.quant.activationBits, signed);
      // Placeholder step until calibrate(): the full [0, 1] input range.
      const step = tf.tidy(() => tf.variable(tf.tensor1d([1 / range.qp]), true));
      const aq: ActivationQuantizer = { name, signed, range, features, step };
      quantizers.push(aq);
      this.named.push({ name: `${name}.step`, kind: 'activationStep', variable: step });
      return aq;
    };

    for (const la of this.analysis.layers) {
      const base = `layers[${la.index}]`;
      const mats: MatrixParameters[] = [];
      let layerInput: ActivationQuantizer | undefined;
      if (la.matrices.length > 0) {
        const [h, w, c] = la.inShape;
        layerInput = makeQuantizer(`${base}.input`, !nonNegative, h * w * c);
      }
      let inner: ActivationQuantizer | undefined = layerInput;
      la.matrices.forEach((m, mi) => {
        let input = layerInput;
        if (m.role !== 'projection' && mi > 0) {
          // Block-internal activation: ReLU output of the previous matrix, quantised.
          const [h, w, c] = m.inShape;
          inner = makeQuantizer(`${base}.${m.role}.input`, false, h * w * c);
          input = inner;
        }
        const isFinalDense = m.role === 'dense' && la.index === lastIndex;
        const shape = m.role === 'dense' ? [m.rows, m.outChannels] : [m.kernel, m.kernel, m.inChannels, m.outChannels];
        const fanIn = m.rows;
        const std = Math.sqrt((isFinalDense ? 1 : 2) / fanIn);
        const values = new Float32Array(m.rows * m.outChannels);
        for (let i = 0; i < values.length; i++) values[i] = rng.normal() * std;
        // tidy: the variable keeps the data; the initial tensor handle is released.
        const weight = tf.tidy(() => tf.variable(tf.tensor(values, shape), true));
        const bias = tf.tidy(() => tf.variable(tf.zeros([m.outChannels]), true));
        let weightStep: tf.Variable | undefined;
        if (this.quant && this.wRange) {
          const steps = initialWeightSteps(values, m.outChannels, this.wRange, this.quant.perChannel);
          weightStep = tf.tidy(() => tf.variable(tf.tensor1d(steps), true));
        }
        const name = `${base}.${m.role}`;
        this.named.push({ name: `${name}.weight`, kind: 'weight', variable: weight });
        this.named.push({ name: `${name}.bias`, kind: 'bias', variable: bias });
        if (weightStep) this.named.push({ name: `${name}.weightStep`, kind: 'weightStep', variable: weightStep });
        const mp: MatrixParameters = { layer: la.index, role: m.role, matrix: m, weight, bias, weightStep, input };
        mats.push(mp);
        matrices.push(mp);
      });
      layerParams.push({ analysis: la, matrices: mats });
      if (la.matrices.length > 0) nonNegative = la.activation !== 'none';
    }
    this.matrices = matrices;
    this.quantizers = quantizers;
    this.layerParams = layerParams;
  }

  /** Every parameter with its stable name, in a fixed order (the checkpoint and worker order). */
  parameters(): readonly NamedParameter[] {
    return this.named;
  }

  trainableVariables(): tf.Variable[] {
    return this.named.map((p) => p.variable);
  }

  /** Logits [N, classes] for images [N, H, W, C]. Call inside tf.tidy or dispose the result. */
  apply(x: tf.Tensor4D, training = false): tf.Tensor2D {
    const y = this.forward(x, training ? 'train' : 'eval', 0, this.layerParams.length);
    return y.reshape([y.shape[0], this.spec.classes]);
  }

  /**
   * Runs layers [from, to) only, on their input activations (NHWC; a dense layer's output comes back
   * as [N, 1, 1, out]). Lets the search split a network into stages (teacher T_1..i, T_i+1..L).
   */
  applyLayers(x: tf.Tensor4D, from: number, to: number, training = false): tf.Tensor4D {
    if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > this.layerParams.length || from > to) {
      throw new RangeError(`layer range [${from}, ${to}) is outside 0..${this.layerParams.length}`);
    }
    return this.forward(x, training ? 'train' : 'eval', from, to);
  }

  /**
   * Sets every step from data with LSQ's rule 2 * mean|v| / sqrt(Qp): weight steps from the
   * current weights, activation steps from one forward pass over `x` (a representative batch).
   */
  calibrate(x: tf.Tensor4D): void {
    if (!this.quant || !this.wRange) return;
    for (const m of this.matrices) {
      if (!m.weightStep) continue;
      const values = m.weight.dataSync() as Float32Array;
      const steps = initialWeightSteps(values, m.matrix.outChannels, this.wRange, this.quant.perChannel);
      const ws = m.weightStep;
      tf.tidy(() => ws.assign(tf.tensor1d(steps)));
    }
    tf.tidy(() => {
      this.forward(x, 'calibrate', 0, this.layerParams.length);
    });
    this.quantCalibrated = true;
  }

  /** Steps must stay positive; Adam can push a small step through zero. */
  clampSteps(): void {
    tf.tidy(() => {
      for (const p of this.named) {
        if (p.kind === 'weightStep' || p.kind === 'activationStep') p.variable.assign(tf.maximum(p.variable, 1e-6));
      }
    });
  }

  /** Parameter values by name (copies). */
  getParameterValues(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const p of this.named) out.set(p.name, (p.variable.dataSync() as Float32Array).slice());
    return out;
  }

  /** Loads values by name; every parameter must be present with the right size. */
  setParameterValues(values: ReadonlyMap<string, Float32Array> | Record<string, Float32Array>, source = 'parameters'): void {
    const get = (name: string): Float32Array | undefined =>
      values instanceof Map ? values.get(name) : (values as Record<string, Float32Array>)[name];
    for (const p of this.named) {
      const v = get(p.name);
      if (!v) throw new InputError('INVALID_INPUT', `missing parameter ${p.name}`, { where: source, details: { field: p.name } });
      if (v.length !== p.variable.size) {
        throw new InputError('INVALID_INPUT', `parameter ${p.name} has ${v.length} values, expected ${p.variable.size}`, {
          where: source,
          details: { field: p.name },
        });
      }
      tf.tidy(() => p.variable.assign(tf.tensor(v, p.variable.shape)));
    }
    this.quantCalibrated = true;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of this.named) p.variable.dispose();
  }

  private quantWeight(m: MatrixParameters): tf.Tensor {
    if (!m.weightStep || !this.wRange) return m.weight;
    const perStep = m.weightStep.size > 1 ? m.matrix.rows : m.matrix.rows * m.matrix.outChannels;
    return lsqQuantize(m.weight, m.weightStep, this.wRange, 1 / Math.sqrt(perStep * this.wRange.qp));
  }

  private quantInput(x: tf.Tensor, aq: ActivationQuantizer | undefined, mode: Mode): tf.Tensor {
    if (!aq) return x;
    if (mode === 'calibrate') {
      const meanAbs = tf.mean(tf.abs(x)).dataSync()[0] ?? 0;
      aq.step.assign(tf.tensor1d([lsqInitialStep(meanAbs, aq.range)]));
    }
    return lsqQuantize(x, aq.step, aq.range, 1 / Math.sqrt(aq.features * aq.range.qp));
  }

  private matrixOp(x: tf.Tensor4D, m: MatrixParameters): tf.Tensor4D {
    const w = this.quantWeight(m) as tf.Tensor4D;
    const mat = m.matrix;
    return tf.add(conv2dTrainable(x, w, mat.stride, mat.padding), m.bias);
  }

  private forward(input: tf.Tensor4D, mode: Mode, from: number, to: number): tf.Tensor4D {
    let x: tf.Tensor4D = input;
    for (let li = from; li < to; li++) {
      const lp = this.layerParams[li] as LayerParams;
      const la = lp.analysis;
      const spec = la.spec;
      switch (spec.op) {
        case 'identity':
          break;
        case 'pool':
          x =
            spec.kind === 'max'
              ? tf.maxPool(x, spec.size, spec.stride ?? spec.size, 'valid')
              : tf.avgPool(x, spec.size, spec.stride ?? spec.size, 'valid');
          break;
        case 'gap':
          x = tf.mean(x, [1, 2], true);
          break;
        case 'dense': {
          const m = lp.matrices[0] as MatrixParameters;
          const n = x.shape[0];
          const flat = this.quantInput(x.reshape([n, m.matrix.rows]), m.input, mode);
          const y = tf.add(tf.matMul(flat as tf.Tensor2D, this.quantWeight(m) as tf.Tensor2D), m.bias);
          x = activate(y, la.activation).reshape([n, 1, 1, m.matrix.outChannels]);
          break;
        }
        default: {
          const mats = lp.matrices;
          const first = mats[0] as MatrixParameters;
          const xq = this.quantInput(x, first.input, mode) as tf.Tensor4D;
          const main = mats.filter((m) => m.role !== 'projection');
          let h = xq;
          main.forEach((m, i) => {
            const inp = i === 0 ? xq : (this.quantInput(h, m.input, mode) as tf.Tensor4D);
            h = this.matrixOp(inp, m);
            if (i < main.length - 1) h = tf.relu(h);
          });
          if (spec.op !== 'conv') {
            const proj = mats.find((m) => m.role === 'projection');
            h = tf.add(h, proj ? this.matrixOp(xq, proj) : xq);
          }
          x = activate(h, la.activation);
        }
      }
    }
    return x;
  }
}

function activate<T extends tf.Tensor>(x: T, a: Activation): T {
  if (a === 'relu') return tf.relu(x);
  if (a === 'relu6') return tf.relu6(x);
  return x;
}

/** LSQ initial weight steps, per column (weights laid out [..., cols]) or one for the matrix. */
function initialWeightSteps(values: Float32Array, cols: number, range: QuantRange, perChannel: boolean): Float32Array {
  if (!perChannel) {
    let s = 0;
    for (let i = 0; i < values.length; i++) s += Math.abs(values[i] as number);
    return Float32Array.of(lsqInitialStep(s / values.length, range));
  }
  const sums = new Float64Array(cols);
  for (let i = 0; i < values.length; i++) sums[i % cols] = (sums[i % cols] as number) + Math.abs(values[i] as number);
  const rows = values.length / cols;
  const out = new Float32Array(cols);
  for (let c = 0; c < cols; c++) out[c] = lsqInitialStep((sums[c] as number) / rows, range);
  return out;
}

/** Builds a trainable network; throws INVALID_SPEC / INVALID_INPUT for specs or bits it cannot build. */
export function buildNetwork(spec: NetworkSpec, options: BuildOptions = {}): SpecNetwork {
  return new SpecNetwork(spec, options);
}
