export { SEARCHABLE_OPS, SearchSpaceSchema, buildCandidate, opsForLayer, parseSearchSpace, sampleChoices } from './space.js';
export type { LayerChoice, SearchSpace, SearchableOp } from './space.js';
export { BUILTIN_SPACE_NAMES, loadSearchSpace } from './spaces.js';
