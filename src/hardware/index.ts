export {
  HardwareProfileSchema,
  adcFullScaleUa,
  PROVENANCE_SECTIONS,
  arraysAvailable,
  canonicalJson,
  columnsPerWeight,
  hardwareProfileHash,
  loadHardwareProfile,
  parseHardwareProfile,
  weightMagnitudeBits,
} from './profile.js';
export type { HardwareProfile } from './profile.js';
export { mapMatrix, rowsPerBlock } from './mapping.js';
export { matrixTiles, packTiles } from './packing.js';
export type { Packing, TilePlacement, TileShape } from './packing.js';
export type { MatrixMapping } from './mapping.js';
export { ENERGY_COMPONENTS, simulate } from './cost.js';
export type { EnergyBreakdown, LatencyModeTotals, LayerCost, MatrixCost, SimulateOptions, SimulationResult } from './cost.js';
export { defaultHardwareProfilePath, hardwareProfilePath } from './presets.js';
