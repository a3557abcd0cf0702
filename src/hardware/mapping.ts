import type { WeightMatrix } from '../spec/index.js';
import { columnsPerWeight, type HardwareProfile } from './profile.js';

/**
 * How one weight matrix lands on crossbar arrays (one copy; duplicates multiply `arrays`).
 * Rows are im2col rows (k*k*Cin); physical columns are outChannels * bit slices * (2 if
 * differential). Row blocks keep whole kernels together when the profile asks for MNSIM-style
 * kernel packing.
 */
export interface MatrixMapping {
  readonly role: string;
  readonly rows: number;
  /** Physical columns: outChannels x slices x pair. */
  readonly cols: number;
  /** Rows used in a full row block (the last block may hold fewer). */
  readonly rowsPerBlock: number;
  readonly rowBlocks: number;
  readonly colBlocks: number;
  /** Arrays for one copy: rowBlocks * colBlocks. */
  readonly arrays: number;
  /** Used cells / allocated cells for one copy. */
  readonly utilisation: number;
}

export function rowsPerBlock(m: WeightMatrix, hw: HardwareProfile): number {
  const arrayRows = hw.array.rows;
  if (m.rows <= arrayRows) return m.rows;
  const kk = m.kernel * m.kernel;
  if (hw.mapping.kernelPacking && kk > 1 && kk <= arrayRows) return Math.floor(arrayRows / kk) * kk;
  return arrayRows;
}

export function mapMatrix(m: WeightMatrix, hw: HardwareProfile): MatrixMapping {
  const cols = m.outChannels * columnsPerWeight(hw);
  const perBlock = rowsPerBlock(m, hw);
  const rowBlocks = Math.ceil(m.rows / perBlock);
  const colBlocks = Math.ceil(cols / hw.array.cols);
  const arrays = rowBlocks * colBlocks;
  return {
    role: m.role,
    rows: m.rows,
    cols,
    rowsPerBlock: perBlock,
    rowBlocks,
    colBlocks,
    arrays,
    utilisation: (m.rows * cols) / (arrays * hw.array.rows * hw.array.cols),
  };
}
