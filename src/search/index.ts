export { SEARCHABLE_OPS, SearchSpaceSchema, buildCandidate, opsForLayer, parseSearchSpace, sampleChoices } from './space.js';
export type { LayerChoice, SearchSpace, SearchableOp } from './space.js';
export { BUILTIN_SPACE_NAMES, loadSearchSpace } from './spaces.js';
export {
  SignificanceMatrixSchema,
  allLayerOptions,
  layerOptions,
  normaliseRows,
  optionLabel,
  softmaxRows,
} from './significance.js';
export type { SignificanceMatrix } from './significance.js';
export { hardwareStage, scoreChoices } from './hardware-stage.js';
export type { HardwareObjective, HardwareStageOptions, HardwareStageResult, LatencyMode, ScoredCandidate } from './hardware-stage.js';
export { PRESETS, PRESET_NAMES, SelectionWeightsSchema, combineSignificance, presetWeights, selectNetwork } from './select.js';
export type { PresetName, Selection, SelectionWeights } from './select.js';
export { assignCrowding, nonDominatedSort, nsga2 } from './nsga2.js';
export type { Evaluate, Individual, Nsga2Options } from './nsga2.js';
