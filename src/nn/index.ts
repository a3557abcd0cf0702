/**
 * TensorFlow.js engine: backend choice, trainable conv with a wasm-friendly gradient, LSQ
 * quantisation-aware training, networks built from specs, training loop, export and datasets.
 */
export { BACKEND_ENV_VAR, backendInfo, backendName, initBackend, parseBackendRequest } from './backend.js';
export type { BackendInfo, BackendName, BackendOptions, BackendRequest } from './backend.js';
export { conv2dTrainable, convFilterGrad, convGeometry, convInputGrad } from './conv.js';
export { activationRange, lsqInitialStep, lsqQuantize, quantizeToLevels, weightRange } from './quant.js';
export type { QuantRange } from './quant.js';
export { buildNetwork, SpecNetwork } from './model.js';
export type { ActivationQuantizer, BuildOptions, MatrixParameters, NamedParameter, ParameterKind, QuantOptions } from './model.js';
export {
  Adam,
  classificationLoss,
  evaluate,
  flattenParameters,
  gatherBatch,
  learningRateAt,
  loadFlatParameters,
  trainNetwork,
} from './train.js';
export type { AdamState, BatchInfo, EpochInfo, EvalResult, LrSchedule, TrainOptions, TrainResult } from './train.js';
export { buildLayersModel, CimActQuant, effectiveWeights } from './layers-model.js';
export {
  buildWeightImage,
  EXPORT_FILES,
  exportNetwork,
  importFloatNetwork,
  loadExportedNetwork,
  loadLayersModelFromDir,
  loadWeightImage,
  parseWeightImage,
  serializeLayersModel,
  sha256Hex,
  WEIGHT_IMAGE_FORMAT,
  WeightImageIndexSchema,
} from './export.js';
export type { ExportedNetwork, ExportResult, WeightImage, WeightImageIndex, WeightImageMatrix, WeightImageMatrixInfo } from './export.js';
export {
  CIFAR10_ENV_VAR,
  concatDatasets,
  encodeIdx,
  FASHION_MNIST_DEFAULT_DIR,
  FASHION_MNIST_ENV_VAR,
  FASHION_MNIST_PACKAGE,
  fashionMnistSubsetDir,
  loadCifar10,
  loadFashionMnist,
  loadFashionMnistSubset,
  parseCifar10,
  parseIdx,
  takeDataset,
} from './datasets.js';
export type { DatasetSplits, FashionMnistOptions, ImageDataset } from './datasets.js';
