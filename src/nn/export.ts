import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { InputError } from '../common/errors.js';
import { loadJsonFile, parseWith, readJsonFile } from '../common/validate.js';
import { analyzeNetwork } from '../spec/analyze.js';
import { NetworkSpecSchema, PaddingSchema } from '../spec/schema.js';
import type { NetworkSpec } from '../spec/schema.js';
import { buildLayersModel } from './layers-model.js';
import { SpecNetwork } from './model.js';
import { quantizeToLevels, weightRange } from './quant.js';

/**
 * Export of a trained network into a directory:
 *   spec.json            the network spec
 *   model.json           TF.js Layers model topology + weights manifest (format 'layers-model')
 *   weights.bin          its float32 weights (quantised values for a quantised network)
 *   weight-image.bin     the integer image the chip is programmed with (quantised networks only)
 *   weight-image.json    index of weight-image.bin, with its SHA-256
 *
 * Weight image, per weight matrix, in network order, each section starting on a 4-byte boundary:
 *   levels  int8 [rows x cols] row-major; rows in the spec's im2col order (ky, kx, cin) for convs,
 *           (h, w, c) of the flattened input for dense; cols = output channels
 *   scales  float32 [cols] (per-column steps) or [1] (one step for the matrix)
 *   bias    float32 [cols]
 * Column j of a matrix computes
 *   out[j] = scales[j] * input.step * sum_r levels[r, j] * x[r] + bias[j]
 * with x the integer input levels (input.qmin..input.qmax) the DACs apply; the host multiplies
 * the step back in when it passes outputs on.
 *
 * Loading the Layers model: `loadLayersModelFromDir(dir)` (registers the CimActQuant layer). With
 * @tensorflow/tfjs-node, `tf.loadLayersModel('file://<dir>/model.json')` also works once
 * src/nn has been imported (for the registration).
 */

export const WEIGHT_IMAGE_FORMAT = 'cimbench-weight-image';
export const EXPORT_FILES = {
  spec: 'spec.json',
  model: 'model.json',
  weights: 'weights.bin',
  image: 'weight-image.bin',
  imageIndex: 'weight-image.json',
} as const;

const Section = z.strictObject({ offset: z.int().min(0), count: z.int().min(1) });

export const WeightImageMatrixSchema = z.strictObject({
  /** `layers[i].role`, as in SpecNetwork.parameters(). */
  name: z.string().min(1),
  layer: z.int().min(0),
  op: z.string().min(1),
  role: z.string().min(1),
  kernel: z.int().min(1),
  stride: z.int().min(1),
  padding: PaddingSchema,
  inChannels: z.int().min(1),
  rows: z.int().min(1),
  cols: z.int().min(1),
  levels: Section.extend({ dtype: z.literal('int8'), min: z.int(), max: z.int() }),
  scales: Section,
  bias: Section,
  input: z.strictObject({
    name: z.string().min(1),
    step: z.number().positive(),
    bits: z.int().min(1).max(16),
    signed: z.boolean(),
    qmin: z.int(),
    qmax: z.int(),
  }),
});

export const WeightImageIndexSchema = z.strictObject({
  format: z.literal(WEIGHT_IMAGE_FORMAT),
  version: z.literal(1),
  network: z.string().min(1),
  weightBits: z.int().min(2).max(8),
  activationBits: z.int().min(1).max(16),
  perChannel: z.boolean(),
  byteLength: z.int().min(0),
  /** Hex SHA-256 of weight-image.bin. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  layout: z.string(),
  matrices: z.array(WeightImageMatrixSchema).min(1),
});

export type WeightImageIndex = z.infer<typeof WeightImageIndexSchema>;
export type WeightImageMatrixInfo = z.infer<typeof WeightImageMatrixSchema>;

export interface WeightImageMatrix {
  readonly info: WeightImageMatrixInfo;
  readonly levels: Int8Array;
  readonly scales: Float32Array;
  readonly bias: Float32Array;
}

export interface WeightImage {
  readonly index: WeightImageIndex;
  readonly bytes: Uint8Array;
  readonly matrices: readonly WeightImageMatrix[];
}

const LAYOUT =
  'per matrix: int8 levels [rows x cols] row-major (rows in im2col (ky,kx,cin) order, dense rows in (h,w,c) order), float32 scales [cols or 1], float32 bias [cols]; sections 4-byte aligned, little-endian; out[j] = scales[j] * input.step * sum_r levels[r,j] * x[r] + bias[j]';

const align4 = (n: number): number => (n + 3) & ~3;

/** Builds the integer weight image of a quantised network (what the chip is programmed with). */
export function buildWeightImage(net: SpecNetwork): WeightImage {
  if (!net.quant) {
    throw new InputError('INVALID_INPUT', `network ${net.spec.name} is not quantised: train it with quant options to get a weight image`, {
      where: 'weight image',
    });
  }
  const q = net.quant;
  const range = weightRange(q.weightBits);
  const parts: Array<{ info: WeightImageMatrixInfo; levels: Int8Array; scales: Float32Array; bias: Float32Array }> = [];
  let offset = 0;
  for (const m of net.matrices) {
    if (!m.weightStep || !m.input) throw new InputError('INVALID_INPUT', `matrix layers[${m.layer}].${m.role} has no quantiser`);
    const levelsT = quantizeToLevels(m.weight, m.weightStep, range);
    const levels = Int8Array.from(levelsT.dataSync());
    levelsT.dispose();
    const scales = (m.weightStep.dataSync() as Float32Array).slice();
    const bias = (m.bias.dataSync() as Float32Array).slice();
    const rows = m.matrix.rows;
    const cols = m.matrix.outChannels;
    const levelsAt = offset;
    offset = align4(offset + levels.length);
    const scalesAt = offset;
    offset += scales.length * 4;
    const biasAt = offset;
    offset += bias.length * 4;
    const aq = m.input;
    parts.push({
      info: {
        name: `layers[${m.layer}].${m.role}`,
        layer: m.layer,
        op: net.spec.layers[m.layer]?.op ?? 'unknown',
        role: m.role,
        kernel: m.matrix.kernel,
        stride: m.matrix.stride,
        padding: m.matrix.padding,
        inChannels: m.matrix.inChannels,
        rows,
        cols,
        levels: { offset: levelsAt, count: rows * cols, dtype: 'int8', min: -range.qn, max: range.qp },
        scales: { offset: scalesAt, count: scales.length },
        bias: { offset: biasAt, count: bias.length },
        input: {
          name: aq.name,
          step: aq.step.dataSync()[0] as number,
          bits: q.activationBits,
          signed: aq.signed,
          qmin: aq.range.qn === 0 ? 0 : -aq.range.qn,
          qmax: aq.range.qp,
        },
      },
      levels,
      scales,
      bias,
    });
  }
  const bytes = new Uint8Array(offset);
  const view = new DataView(bytes.buffer);
  for (const p of parts) {
    bytes.set(new Uint8Array(p.levels.buffer, p.levels.byteOffset, p.levels.byteLength), p.info.levels.offset);
    p.scales.forEach((v, i) => view.setFloat32(p.info.scales.offset + 4 * i, v, true));
    p.bias.forEach((v, i) => view.setFloat32(p.info.bias.offset + 4 * i, v, true));
  }
  const index: WeightImageIndex = {
    format: WEIGHT_IMAGE_FORMAT,
    version: 1,
    network: net.spec.name,
    weightBits: q.weightBits,
    activationBits: q.activationBits,
    perChannel: q.perChannel,
    byteLength: bytes.length,
    sha256: sha256Hex(bytes),
    layout: LAYOUT,
    matrices: parts.map((p) => p.info),
  };
  return { index, bytes, matrices: parts.map((p) => ({ info: p.info, levels: p.levels, scales: p.scales, bias: p.bias })) };
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Parses an image from its index and bytes; checks length, checksum and every section's bounds. */
export function parseWeightImage(indexJson: unknown, bytes: Uint8Array, where = 'weight image'): WeightImage {
  const index = parseWith(WeightImageIndexSchema, indexJson, `${where} index`);
  if (bytes.length !== index.byteLength) {
    throw new InputError('INVALID_INPUT', `image is ${bytes.length} bytes, its index says ${index.byteLength}`, { where });
  }
  const actual = sha256Hex(bytes);
  if (actual !== index.sha256) {
    throw new InputError('INVALID_INPUT', `SHA-256 mismatch: image ${actual}, index ${index.sha256} (corrupt or edited image)`, { where });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const matrices = index.matrices.map((info, i) => {
    const field = `matrices[${i}]`;
    if (info.levels.count !== info.rows * info.cols) {
      throw new InputError('INVALID_INPUT', `levels.count ${info.levels.count} is not rows x cols = ${info.rows * info.cols}`, { where: `${where}: ${field}` });
    }
    if (info.scales.count !== info.cols && info.scales.count !== 1) {
      throw new InputError('INVALID_INPUT', `scales.count must be cols (${info.cols}) or 1`, { where: `${where}: ${field}` });
    }
    if (info.bias.count !== info.cols) throw new InputError('INVALID_INPUT', `bias.count must be cols (${info.cols})`, { where: `${where}: ${field}` });
    for (const [name, end] of [
      ['levels', info.levels.offset + info.levels.count],
      ['scales', info.scales.offset + 4 * info.scales.count],
      ['bias', info.bias.offset + 4 * info.bias.count],
    ] as const) {
      if (end > bytes.length) throw new InputError('INVALID_INPUT', `${name} section runs past the end of the image`, { where: `${where}: ${field}.${name}` });
    }
    const levels = new Int8Array(info.levels.count);
    levels.set(new Int8Array(bytes.buffer, bytes.byteOffset + info.levels.offset, info.levels.count));
    for (let k = 0; k < levels.length; k++) {
      const v = levels[k] as number;
      if (v < info.levels.min || v > info.levels.max) {
        throw new InputError('INVALID_INPUT', `level ${v} at ${k} is outside ${info.levels.min}..${info.levels.max}`, { where: `${where}: ${field}.levels` });
      }
    }
    const scales = new Float32Array(info.scales.count);
    for (let k = 0; k < scales.length; k++) scales[k] = view.getFloat32(info.scales.offset + 4 * k, true);
    const bias = new Float32Array(info.bias.count);
    for (let k = 0; k < bias.length; k++) bias[k] = view.getFloat32(info.bias.offset + 4 * k, true);
    return { info, levels, scales, bias };
  });
  return { index, bytes, matrices };
}

/** Reads weight-image.json + weight-image.bin from an export directory. */
export function loadWeightImage(dir: string): WeightImage {
  const indexPath = join(dir, EXPORT_FILES.imageIndex);
  const binPath = join(dir, EXPORT_FILES.image);
  const indexJson = readJsonFile(indexPath);
  if (!existsSync(binPath)) throw new InputError('NOT_FOUND', 'weight image file does not exist', { where: binPath });
  return parseWeightImage(indexJson, new Uint8Array(readFileSync(binPath)), binPath);
}

export interface ExportResult {
  readonly dir: string;
  readonly files: readonly string[];
  /** SHA-256 of weight-image.bin; undefined for float networks (no image). */
  readonly imageSha256: string | undefined;
}

/** Serialises a Layers model into model.json + weights.bin contents via tf.io. */
export async function serializeLayersModel(model: tf.LayersModel): Promise<{ modelJson: object; weights: Uint8Array }> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!saved || !saved.weightSpecs || saved.weightData === undefined) throw new InputError('INVALID_INPUT', 'model could not be serialised');
  const data = saved.weightData;
  const buffer = Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data;
  const modelJson = {
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
    convertedBy: 'cimbench',
    modelTopology: saved.modelTopology,
    weightsManifest: [{ paths: [EXPORT_FILES.weights], weights: saved.weightSpecs }],
  };
  return { modelJson, weights: new Uint8Array(buffer) };
}

/** Writes spec, Layers model and (for quantised networks) the weight image into `dir`. */
export async function exportNetwork(net: SpecNetwork, dir: string): Promise<ExportResult> {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const write = (name: string, data: string | Uint8Array): void => {
    writeFileSync(join(dir, name), data);
    files.push(name);
  };
  write(EXPORT_FILES.spec, `${JSON.stringify(net.spec, null, 2)}\n`);
  const model = buildLayersModel(net);
  try {
    const { modelJson, weights } = await serializeLayersModel(model);
    write(EXPORT_FILES.model, `${JSON.stringify(modelJson)}\n`);
    write(EXPORT_FILES.weights, weights);
  } finally {
    model.dispose();
  }
  let imageSha256: string | undefined;
  if (net.quant) {
    const image = buildWeightImage(net);
    write(EXPORT_FILES.image, image.bytes);
    write(EXPORT_FILES.imageIndex, `${JSON.stringify(image.index, null, 2)}\n`);
    imageSha256 = image.index.sha256;
  }
  return { dir, files, imageSha256 };
}

const ModelJsonSchema = z.object({
  modelTopology: z.record(z.string(), z.unknown()),
  weightsManifest: z
    .array(z.object({ paths: z.array(z.string().min(1)).min(1), weights: z.array(z.object({ name: z.string(), shape: z.array(z.int()), dtype: z.string() }).loose()) }))
    .min(1),
});

/** Loads model.json + its weight files from a directory into a tf.LayersModel. */
export async function loadLayersModelFromDir(dir: string): Promise<tf.LayersModel> {
  const path = join(dir, EXPORT_FILES.model);
  const mj = loadJsonFile(ModelJsonSchema, path);
  const buffers: Uint8Array[] = [];
  const specs: tf.io.WeightsManifestEntry[] = [];
  for (const group of mj.weightsManifest) {
    for (const p of group.paths) {
      const wp = join(dir, p);
      if (!existsSync(wp)) throw new InputError('NOT_FOUND', 'weights file named in model.json does not exist', { where: wp });
      buffers.push(new Uint8Array(readFileSync(wp)));
    }
    specs.push(...(group.weights as tf.io.WeightsManifestEntry[]));
  }
  const total = buffers.reduce((a, b) => a + b.length, 0);
  const all = new Uint8Array(total);
  let at = 0;
  for (const b of buffers) {
    all.set(b, at);
    at += b.length;
  }
  return tf.loadLayersModel(
    tf.io.fromMemory({ modelTopology: mj.modelTopology as tf.io.ModelJSON['modelTopology'], weightSpecs: specs, weightData: all.buffer }),
  );
}

export interface ExportedNetwork {
  readonly spec: NetworkSpec;
  readonly model: tf.LayersModel;
  readonly image: WeightImage | undefined;
}

/** Loads everything exportNetwork wrote (the image only if present), validating each file. */
export async function loadExportedNetwork(dir: string): Promise<ExportedNetwork> {
  const spec = loadJsonFile(NetworkSpecSchema, join(dir, EXPORT_FILES.spec));
  analyzeNetwork(spec, join(dir, EXPORT_FILES.spec));
  const model = await loadLayersModelFromDir(dir);
  const image = existsSync(join(dir, EXPORT_FILES.imageIndex)) ? loadWeightImage(dir) : undefined;
  return { spec, model, image };
}

/**
 * A float network that exportNetwork wrote (spec.json + model.json + weights), rebuilt as a
 * trainable SpecNetwork: each weight matrix `l<i>_<role>` of the Layers model becomes
 * `layers[i].<role>.weight/bias` (same HWIO / [in, out] layout). Used to reuse a trained teacher.
 * Quantised exports are refused: their effective weights have lost the LSQ steps they were trained with.
 */
export async function importFloatNetwork(dir: string, options: { seed?: number } = {}): Promise<SpecNetwork> {
  const exported = await loadExportedNetwork(dir);
  try {
    if (exported.model.layers.some((l) => l.getClassName() === 'CimActQuant')) {
      throw new InputError('INVALID_INPUT', 'is a quantised network; only float networks (a teacher) can be imported for training', { where: dir });
    }
    const net = new SpecNetwork(exported.spec, { seed: options.seed ?? 1 });
    const values = new Map<string, Float32Array>();
    for (const m of net.matrices) {
      const name = `l${m.layer}_${m.role}`;
      let layer: tf.layers.Layer;
      try {
        layer = exported.model.getLayer(name);
      } catch {
        net.dispose();
        throw new InputError('INVALID_INPUT', `model.json has no layer ${name} for ${exported.spec.name}`, { where: join(dir, EXPORT_FILES.model) });
      }
      const [kernel, bias] = layer.getWeights();
      if (!kernel || !bias) {
        net.dispose();
        throw new InputError('INVALID_INPUT', `layer ${name} has no kernel and bias`, { where: join(dir, EXPORT_FILES.model) });
      }
      values.set(`layers[${m.layer}].${m.role}.weight`, kernel.dataSync() as Float32Array);
      values.set(`layers[${m.layer}].${m.role}.bias`, bias.dataSync() as Float32Array);
    }
    net.setParameterValues(values, join(dir, EXPORT_FILES.model));
    return net;
  } finally {
    exported.model.dispose();
  }
}
