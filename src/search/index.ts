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
export { assignCrowding, nonDominatedSort, nsga2, nsga2Async } from './nsga2.js';
export type { Evaluate, Individual, Nsga2Options } from './nsga2.js';
export { searchableLayerIndex, teacherChoices, teacherSpec } from './teacher.js';
export { assertSupernetSupports, SparseAdam, SupernetStage } from './supernet.js';
export type { StageParameter, SupernetStageOptions } from './supernet.js';
export { BatchStream, ddeStage, stageInputShape, taskSignificance } from './dde.js';
export type { DdeOptions, DdeStageResult } from './dde.js';
export { nsga2Search, pickFromFront, SposSupernet, trainSpos, validationSplit } from './spos.js';
export type { ParetoMember, SposOptions } from './spos.js';
export { BUDGET_NAMES, BUDGETS, BudgetSchema, budgetByName } from './budget.js';
export type { Budget } from './budget.js';
export { adamFromArrays, adamToArrays, loadParams, saveParams } from './checkpoint.js';
export {
  checkFeasible,
  defaultWorkers,
  loadSearchData,
  OUTPUT_FILES,
  checkTeacherDir,
  loadWarmupDir,
  runSearch,
  SEARCH_METHODS,
  SearchConfigSchema,
  stagesOf,
} from './pipeline.js';
export type { SearchConfig, SearchHooks, SearchMethod, SearchMetrics, SearchRequest } from './pipeline.js';
