export {
  DEFAULT_NOISE_PROFILE,
  DriftSchema,
  NOISE_PROVENANCE_SECTIONS,
  NoiseProfileSchema,
  ProgrammingNoiseSchema,
  ReadNoiseSchema,
  loadNoiseProfile,
  noiseProfileHash,
  noiseProfilePath,
  parseNoiseProfile,
} from './profile.js';
export type { DriftModel, NoiseProfile } from './profile.js';
export {
  STUCK_HIGH,
  STUCK_LOW,
  STUCK_NONE,
  cellLayout,
  conductanceAt,
  conductancesToWeights,
  programCells,
  programmingSigmaUs,
  readCells,
  readSigmaRelative,
  weightRangeOf,
  weightsToTargets,
} from './conductance.js';
export type { CellLayout, ProgrammedCells } from './conductance.js';
export { simulateOnChip } from './inference.js';
export type { AccuracySpread, MatrixStatistics, OnChipSimulationOptions, OnChipSimulationResult, TimePointResult } from './inference.js';
export { addConversion, newProbeSums, probeAdc, probeInputs, relError, simulateProbes } from './probes.js';
export type { ArrayProbePrediction, ProbeSimulationOptions, ProbeSums, ProbeTile } from './probes.js';
