export * from './schema.js';
export { analyzeNetwork, parseNetworkSpec } from './analyze.js';
export type { LayerAnalysis, NetworkAnalysis, Shape, WeightMatrix } from './analyze.js';
