import { InputError } from '../common/errors.js';
import { parseWith } from '../common/validate.js';
import type { Activation, LayerSpec, NetworkSpec, Padding } from './schema.js';
import { NetworkSpecSchema } from './schema.js';

export type Shape = readonly [height: number, width: number, channels: number];

/**
 * One weight matrix that goes onto crossbars: the im2col view of a conv (rows = k*k*Cin,
 * one column per output channel before bit slicing) or a dense layer (rows = inputs).
 */
export interface WeightMatrix {
  /** Role inside its layer: conv, conv1, conv2, reduce, spatial, expand, projection, dense. */
  readonly role: string;
  readonly kernel: number;
  readonly stride: number;
  readonly padding: Padding;
  readonly inChannels: number;
  readonly outChannels: number;
  /** im2col rows: kernel * kernel * inChannels (dense: flattened inputs). */
  readonly rows: number;
  /** Input vectors applied per image: output height * output width (dense: 1). */
  readonly vectors: number;
  readonly inShape: Shape;
  readonly outShape: Shape;
}

export interface LayerAnalysis {
  readonly index: number;
  readonly op: LayerSpec['op'];
  readonly spec: LayerSpec;
  readonly inShape: Shape;
  readonly outShape: Shape;
  readonly activation: Activation;
  readonly matrices: readonly WeightMatrix[];
  /** Weights held in crossbars. */
  readonly weights: number;
  /** Weights plus biases (biases live in digital logic). */
  readonly params: number;
  /** Multiply-accumulates per image. */
  readonly macs: number;
  /** Element-wise digital operations per image: skip additions, pooling, activations. */
  readonly digitalOps: number;
}

export interface NetworkAnalysis {
  readonly spec: NetworkSpec;
  readonly layers: readonly LayerAnalysis[];
  readonly outputShape: Shape;
  readonly weights: number;
  readonly params: number;
  readonly macs: number;
  /** Millions of operations per image, counting a MAC as two operations (the paper's MOPs). */
  readonly mops: number;
}

/** Parses untrusted JSON into a spec and derives its shapes; errors name `source` and the field. */
export function parseNetworkSpec(value: unknown, source = 'network spec'): NetworkAnalysis {
  const spec = parseWith(NetworkSpecSchema, value, source);
  return analyzeNetwork(spec, source);
}

function specError(source: string, index: number, layer: LayerSpec, reason: string): InputError {
  return new InputError('INVALID_SPEC', reason, {
    where: `${source}: layers[${index}] (${layer.op})`,
    details: { field: `layers[${index}]`, layer: index, op: layer.op },
  });
}

function convOutSize(input: number, k: number, stride: number, padding: Padding): number {
  return padding === 'same' ? Math.ceil(input / stride) : Math.floor((input - k) / stride) + 1;
}

function matrix(
  role: string,
  inShape: Shape,
  k: number,
  stride: number,
  padding: Padding,
  out: number,
): WeightMatrix {
  const [h, w, c] = inShape;
  const outShape: Shape = [convOutSize(h, k, stride, padding), convOutSize(w, k, stride, padding), out];
  return {
    role,
    kernel: k,
    stride,
    padding,
    inChannels: c,
    outChannels: out,
    rows: k * k * c,
    vectors: outShape[0] * outShape[1],
    inShape,
    outShape,
  };
}

/**
 * Derives every layer's shapes, weight matrices, parameter count and MACs from a parsed spec.
 * Throws INVALID_SPEC naming the layer when a layer cannot be built. Allocation-light because the
 * search calls it for every candidate it scores.
 */
export function analyzeNetwork(spec: NetworkSpec, source = 'network spec'): NetworkAnalysis {
  const layers: LayerAnalysis[] = [];
  let shape: Shape = spec.input;
  let weights = 0;
  let params = 0;
  let macs = 0;
  const last = spec.layers.length - 1;

  for (let i = 0; i <= last; i++) {
    const layer = spec.layers[i] as LayerSpec;
    const inShape = shape;
    const [h, w, c] = inShape;
    const defaultActivation: Activation = i === last && layer.op === 'dense' ? 'none' : 'relu';
    let matrices: WeightMatrix[] = [];
    let outShape: Shape = inShape;
    let biases = 0;
    let digitalOps = 0;
    let activation: Activation = 'none';

    switch (layer.op) {
      case 'conv':
      case 'residual':
      case 'resblock':
      case 'bottleneck': {
        const k = layer.kernel;
        if (k > h || k > w) {
          throw specError(source, i, layer, `kernel ${k}x${k} is larger than its ${h}x${w} input`);
        }
        const isResidual = layer.op !== 'conv';
        if (isResidual && layer.padding === 'valid' && k > 1) {
          throw specError(source, i, layer, `a ${layer.op} needs padding "same": with "valid" the skip path cannot match the shrinking output`);
        }
        if (layer.op === 'conv' || layer.op === 'residual') {
          matrices = [matrix('conv', inShape, k, layer.stride, layer.padding, layer.out)];
        } else if (layer.op === 'resblock') {
          const first = matrix('conv1', inShape, k, layer.stride, layer.padding, layer.out);
          matrices = [first, matrix('conv2', first.outShape, k, 1, 'same', layer.out)];
        } else {
          const mid = Math.max(1, Math.ceil(layer.out / layer.expansion));
          const reduce = matrix('reduce', inShape, 1, 1, 'same', mid);
          const spatial = matrix('spatial', reduce.outShape, k, layer.stride, layer.padding, mid);
          matrices = [reduce, spatial, matrix('expand', spatial.outShape, 1, 1, 'same', layer.out)];
        }
        outShape = (matrices[matrices.length - 1] as WeightMatrix).outShape;
        if (outShape[0] < 1 || outShape[1] < 1) {
          throw specError(source, i, layer, `output would be ${outShape[0]}x${outShape[1]}`);
        }
        const outElements = outShape[0] * outShape[1] * outShape[2];
        if (isResidual) {
          if (layer.stride !== 1 || c !== layer.out) {
            matrices.push(matrix('projection', inShape, 1, layer.stride, 'same', layer.out));
          }
          digitalOps += outElements; // skip addition
        }
        // Intermediate activations inside blocks plus the layer's own.
        for (const m of matrices) {
          biases += m.outChannels;
          if (m.role !== 'projection') digitalOps += m.vectors * m.outChannels;
        }
        activation = layer.activation ?? defaultActivation;
        break;
      }
      case 'identity':
        break;
      case 'pool': {
        const size = layer.size;
        const stride = layer.stride ?? size;
        if (size > h || size > w) {
          throw specError(source, i, layer, `pool size ${size} is larger than its ${h}x${w} input`);
        }
        outShape = [Math.floor((h - size) / stride) + 1, Math.floor((w - size) / stride) + 1, c];
        digitalOps = outShape[0] * outShape[1] * c * size * size;
        break;
      }
      case 'gap':
        outShape = [1, 1, c];
        digitalOps = h * w * c;
        break;
      case 'dense': {
        const inputs = h * w * c;
        const m: WeightMatrix = {
          role: 'dense',
          kernel: 1,
          stride: 1,
          padding: 'valid',
          inChannels: inputs,
          outChannels: layer.out,
          rows: inputs,
          vectors: 1,
          inShape,
          outShape: [1, 1, layer.out],
        };
        matrices = [m];
        outShape = m.outShape;
        biases = layer.out;
        activation = layer.activation ?? defaultActivation;
        digitalOps = activation === 'none' ? 0 : layer.out;
        break;
      }
    }

    let layerWeights = 0;
    let layerMacs = 0;
    for (const m of matrices) {
      layerWeights += m.rows * m.outChannels;
      layerMacs += m.rows * m.outChannels * m.vectors;
    }
    weights += layerWeights;
    params += layerWeights + biases;
    macs += layerMacs;
    layers.push({
      index: i,
      op: layer.op,
      spec: layer,
      inShape,
      outShape,
      activation,
      matrices,
      weights: layerWeights,
      params: layerWeights + biases,
      macs: layerMacs,
      digitalOps,
    });
    shape = outShape;
  }

  const outputs = shape[0] * shape[1] * shape[2];
  if (outputs !== spec.classes) {
    const lastLayer = spec.layers[last] as LayerSpec;
    throw specError(
      source,
      last,
      lastLayer,
      `the network ends with ${shape.join('x')} = ${outputs} values but classes is ${spec.classes}; end with a dense layer of ${spec.classes} outputs`,
    );
  }
  return { spec, layers, outputShape: shape, weights, params, macs, mops: (2 * macs) / 1e6 };
}
