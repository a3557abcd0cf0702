import * as tf from '@tensorflow/tfjs';
import type { Activation } from '../spec/schema.js';
import type { ActivationQuantizer, MatrixParameters, SpecNetwork } from './model.js';
import { quantizeToLevels, weightRange } from './quant.js';

/**
 * The trained network as a true tf.LayersModel built from standard layers (conv2d, dense, add,
 * pooling, activation) with the quantised weights baked in (levels x step), plus one custom layer,
 * CimActQuant, at every point where the chip quantises an input vector. Loading such a model needs
 * CimActQuant registered, which importing src/nn (this module) does.
 */

export interface CimActQuantConfig {
  readonly step: number;
  /** Lowest integer level (0 for unsigned, -(2^(a-1)-1) for signed). */
  readonly qmin: number;
  readonly qmax: number;
  readonly name?: string;
}

/** x -> round(clip(x / step, qmin, qmax)) * step: exactly the forward of the training quantiser. */
export class CimActQuant extends tf.layers.Layer {
  static readonly className = 'CimActQuant';
  readonly step: number;
  readonly qmin: number;
  readonly qmax: number;

  constructor(config: CimActQuantConfig) {
    super(config.name !== undefined ? { name: config.name } : {});
    this.step = config.step;
    this.qmin = config.qmin;
    this.qmax = config.qmax;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? (inputs[0] as tf.Tensor) : inputs;
      const s = tf.scalar(this.step);
      return tf.mul(tf.round(tf.clipByValue(tf.div(x, s), this.qmin, this.qmax)), s);
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), step: this.step, qmin: this.qmin, qmax: this.qmax };
  }
}
tf.serialization.registerClass(CimActQuant);

/** Quantised (or float) weights of one matrix as the float values the model computes with. */
export function effectiveWeights(net: SpecNetwork, m: MatrixParameters): tf.Tensor {
  return tf.tidy(() => {
    if (!m.weightStep || !net.quant) return m.weight.clone();
    return tf.mul(quantizeToLevels(m.weight, m.weightStep, weightRange(net.quant.weightBits)), m.weightStep);
  });
}

type SymbolicTensor = tf.SymbolicTensor;

function apply(layer: tf.layers.Layer, x: SymbolicTensor | SymbolicTensor[]): SymbolicTensor {
  return layer.apply(x) as SymbolicTensor;
}

function activation(x: SymbolicTensor, a: Activation, name: string): SymbolicTensor {
  if (a === 'none') return x;
  return apply(tf.layers.activation({ activation: a, name }), x);
}

/** Builds the Layers model; weights are copied, so later training does not change it. */
export function buildLayersModel(net: SpecNetwork): tf.LayersModel {
  const input = tf.input({ shape: [...net.spec.input], name: 'image' });
  const pending: Array<{ layer: tf.layers.Layer; m: MatrixParameters }> = [];
  let x: SymbolicTensor = input;

  const quant = (t: SymbolicTensor, aq: ActivationQuantizer | undefined): SymbolicTensor => {
    if (!aq) return t;
    const step = aq.step.dataSync()[0] as number;
    const name = aq.name.replace(/[^A-Za-z0-9_]/g, '_').replace(/_+/g, '_');
    return apply(new CimActQuant({ step, qmin: aq.range.qn === 0 ? 0 : -aq.range.qn, qmax: aq.range.qp, name: `${name}_quant` }), t);
  };
  const matrix = (t: SymbolicTensor, m: MatrixParameters): SymbolicTensor => {
    const name = `l${m.layer}_${m.role}`;
    const mat = m.matrix;
    const layer =
      mat.role === 'dense'
        ? tf.layers.dense({ units: mat.outChannels, useBias: true, name })
        : tf.layers.conv2d({
            filters: mat.outChannels,
            kernelSize: mat.kernel,
            strides: mat.stride,
            padding: mat.padding,
            useBias: true,
            name,
          });
    pending.push({ layer, m });
    return apply(layer, t);
  };

  for (const la of net.analysis.layers) {
    const spec = la.spec;
    const mats = net.matrices.filter((m) => m.layer === la.index);
    const tag = `l${la.index}`;
    switch (spec.op) {
      case 'identity':
        break;
      case 'pool': {
        const cfg = { poolSize: spec.size, strides: spec.stride ?? spec.size, padding: 'valid' as const, name: `${tag}_pool` };
        x = apply(spec.kind === 'max' ? tf.layers.maxPooling2d(cfg) : tf.layers.averagePooling2d(cfg), x);
        break;
      }
      case 'gap': {
        const c = la.inShape[2];
        x = apply(tf.layers.reshape({ targetShape: [1, 1, c], name: `${tag}_reshape` }), apply(tf.layers.globalAveragePooling2d({ name: `${tag}_gap` }), x));
        break;
      }
      case 'dense': {
        const m = mats[0] as MatrixParameters;
        const flat = apply(tf.layers.flatten({ name: `${tag}_flatten` }), x);
        const y = activation(matrix(quant(flat, m.input), m), la.activation, `${tag}_act`);
        x = apply(tf.layers.reshape({ targetShape: [1, 1, m.matrix.outChannels], name: `${tag}_reshape` }), y);
        break;
      }
      default: {
        const first = mats[0] as MatrixParameters;
        const xq = quant(x, first.input);
        const main = mats.filter((m) => m.role !== 'projection');
        let h = xq;
        main.forEach((m, i) => {
          h = matrix(i === 0 ? xq : quant(h, m.input), m);
          if (i < main.length - 1) h = activation(h, 'relu', `${tag}_${m.role}_relu`);
        });
        if (spec.op !== 'conv') {
          const proj = mats.find((m) => m.role === 'projection');
          h = apply(tf.layers.add({ name: `${tag}_add` }), [h, proj ? matrix(xq, proj) : xq]);
        }
        x = activation(h, la.activation, `${tag}_act`);
      }
    }
  }
  const output = apply(tf.layers.flatten({ name: 'logits' }), x);
  const model = tf.model({ inputs: input, outputs: output, name: net.spec.name.replace(/[^A-Za-z0-9_]/g, '_') });
  for (const { layer, m } of pending) {
    const w = effectiveWeights(net, m);
    const b = m.bias.clone();
    layer.setWeights([w, b]);
    w.dispose();
    b.dispose();
  }
  return model;
}
