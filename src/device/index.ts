export {
  DEFAULT_NOISE_PROFILE,
  DriftSchema,
  NOISE_PROVENANCE_SECTIONS,
  NoiseProfileSchema,
  ProgrammingNoiseSchema,
  ReadNoiseSchema,
  columnTrims,
  knownCells,
  loadNoiseProfile,
  noiseForChip,
  noiseProfileHash,
  noiseProfilePath,
  parseNoiseProfile,
} from './profile.js';
export type { ColumnTrim, DriftModel, KnownCell, NoiseProfile } from './profile.js';
export {
  STUCK_HIGH,
  STUCK_LOW,
  STUCK_NONE,
  applyKnownCells,
  cellLayout,
  conductanceAt,
  nearestTargetIndex,
  conductancesToWeights,
  programCells,
  programmingBiasUs,
  programmingSigmaUs,
  readCells,
  readSigmaRelative,
  untruncatedSigma,
  weightRangeOf,
  weightsToTargets,
} from './conductance.js';
export type { CellLayout, ProgrammedCells } from './conductance.js';
export { simulateOnChip } from './inference.js';
export type { AccuracySpread, ColumnPlacement, GivenConductances, MatrixStatistics, OnChipSimulationOptions, OnChipSimulationResult, TimePointResult } from './inference.js';
export { defaultSimulationWorkers, simulateOnChipParallel } from './parallel-inference.js';
export type { ParallelSimulationOptions } from './parallel-inference.js';
export { addConversion, newProbeSums, probeAdc, probeInputs, relError, simulateProbes, simulateReadback } from './probes.js';
export type { ArrayProbePrediction, ProbeSimulationOptions, ProbeSums, ProbeTile, ReadbackSimulationOptions, SimulatedReadback } from './probes.js';
