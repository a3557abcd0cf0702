export { compileNetwork } from './compile.js';
export type { ChipGeometry, CompiledNetwork, CompiledTile } from './compile.js';
