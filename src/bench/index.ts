/**
 * The bench campaign: compile a network for a macro, campaign files, plans as data, and the engine
 * that runs them against a ChipLink and emits documents for the recorder and the UI.
 */
export { compileNetwork } from './compile.js';
export type { ChipGeometry, CompiledNetwork, CompiledTile } from './compile.js';
export { CampaignSchema, DurationSchema, LinkConfigSchema, findNetworkDir, loadCampaign, loadTestSet, parseCampaign, prepareCampaign } from './campaign.js';
export type { Campaign, CampaignInput, LinkConfig, PreparedCampaign } from './campaign.js';
export { ALWAYS_RUN, buildPlan, stepKey, timePoints } from './plan.js';
export type { Plan, PlanMode, Step, StepKind, TimePoint } from './plan.js';
export { CampaignEngine, TRANSITIONS, cellStateOf, planBlocks } from './engine.js';
export type { BlockState, EngineOptions, EngineState, PredictFn, PredictionState, ResumeState, RunOutcome } from './engine.js';
export type {
  AccuracySpread,
  ArrayMvmStat,
  BlockDoc,
  CampaignDocument,
  CellState,
  DiscrepancyRow,
  DocumentType,
  ExitStatus,
  MatrixStat,
  Subscriber,
  TileDoc,
  TimeReference,
} from './documents.js';
export { executeRun } from './session.js';
export type { ExecuteOptions, ExecuteResult, OpenedLink } from './session.js';
export { CompareOptionsSchema, compareRun } from './compare.js';
export type { ArrayComparison, CompareOptions, RunComparison } from './compare.js';
