import { InputError } from '../common/errors.js';
import { cellLayout, weightsToTargets, type CellLayout } from '../device/index.js';
import { adcFullScaleUa, arraysAvailable, matrixTiles, packTiles, rowsPerBlock, type HardwareProfile, type TilePlacement, type TileShape } from '../hardware/index.js';
import { NETWORK_PROGRAM_FORMAT, type NetworkProgram, type Placement } from '../link/index.js';
import type { WeightImage, WeightImageMatrix } from '../nn/export.js';
import type { NetworkAnalysis, WeightMatrix } from '../spec/index.js';

/**
 * Compiles a quantised network for a macro: places every weight matrix on arrays exactly as the
 * simulator's mapping counts them (row blocks that keep kernels whole, the columns of all (slice,
 * polarity) planes side by side, tiles packed onto arrays by hardware/packing.ts) and produces
 *   - the LOAD_NETWORK document (where each tile lives, scales, biases, input quantisation), and
 *   - the PROGRAM work: each tile's target conductances.
 * Pure: sends nothing. Throws DOES_NOT_FIT before any pulse when the chip has too few arrays.
 */

export interface CompiledTile {
  readonly matrix: number;
  readonly placement: Placement;
  /** Target conductances (uS) of the tile, [rows x cols] row-major. */
  readonly targetsUs: Float32Array;
}

export interface CompiledNetwork {
  readonly program: NetworkProgram;
  readonly tiles: readonly CompiledTile[];
  readonly arraysUsed: number;
  readonly cells: number;
  readonly layout: CellLayout;
}

export interface ChipGeometry {
  readonly arrays: number;
  readonly rows: number;
  readonly cols: number;
}

function specMatrixFor(net: NetworkAnalysis, m: WeightImageMatrix, index: number): WeightMatrix {
  const layer = net.layers[m.info.layer];
  const sm = layer?.matrices.find((x) => x.role === m.info.role);
  if (!layer || !sm || sm.rows !== m.info.rows || sm.outChannels !== m.info.cols) {
    throw new InputError('INVALID_INPUT', `weight image matrix ${m.info.name} (${m.info.rows}x${m.info.cols}) does not match network ${net.spec.name}`, {
      where: `weight image: matrices[${index}]`,
    });
  }
  return sm;
}

export function compileNetwork(
  net: NetworkAnalysis,
  image: WeightImage,
  hw: HardwareProfile,
  chip: ChipGeometry = { arrays: arraysAvailable(hw), rows: hw.array.rows, cols: hw.array.cols },
): CompiledNetwork {
  const layout = cellLayout(hw);
  if (image.index.weightBits > hw.weights.bits) {
    throw new InputError('INVALID_INPUT', `weight image has ${image.index.weightBits}-bit weights but ${hw.name} stores ${hw.weights.bits}`, {
      where: 'weight image',
    });
  }
  const planes = layout.slices * layout.pair;
  const tiles: CompiledTile[] = [];
  const matricesByLayer = new Map<number, NetworkProgram['layers'][number]['matrices']>();
  let cells = 0;

  // Every matrix's tiles, placed as the simulator counts them (packing.ts), then cut at plane
  // boundaries: a placement holds one (slice, polarity) plane of a tile.
  const specMatrices = image.matrices.map((m, index) => specMatrixFor(net, m, index));
  const shapes: TileShape[] = [];
  image.matrices.forEach((m, index) => {
    matrixTiles(m.info.layer, index, m.info.rows, planes * m.info.cols, rowsPerBlock(specMatrices[index] as WeightMatrix, hw), chip.cols, shapes);
  });
  const packing = packTiles(shapes, chip.rows, chip.cols, hw.mapping.shareArrays);
  const tilesOfMatrix = image.matrices.map(() => [] as TilePlacement[]);
  for (const t of packing.tiles) tilesOfMatrix[t.matrix]?.push(t);

  image.matrices.forEach((m, index) => {
    const sm = specMatrices[index] as WeightMatrix;
    const rows = m.info.rows;
    const cols = m.info.cols;
    const targets = weightsToTargets(m.levels, rows, cols, layout);
    const perBlock = rowsPerBlock(sm, hw);
    const placements: Placement[] = [];
    for (const t of tilesOfMatrix[index] as TilePlacement[]) {
      const r0 = t.rowBlock * perBlock;
      const r1 = r0 + t.rows;
      const q0 = t.colBlock * chip.cols;
      const q1 = q0 + t.cols;
      for (let p = Math.floor(q0 / cols); p * cols < q1; p++) {
        const c0 = Math.max(q0, p * cols) - p * cols;
        const c1 = Math.min(q1, (p + 1) * cols) - p * cols;
        const placement: Placement = {
          array: t.array,
          row: t.row,
          col: t.col + p * cols + c0 - q0,
          rows: r1 - r0,
          cols: c1 - c0,
          srcRow: r0,
          srcCol: c0,
          slice: Math.floor(p / layout.pair),
          polarity: p % layout.pair === 0 ? 'pos' : 'neg',
        };
        const tileTargets = new Float32Array(placement.rows * placement.cols);
        const plane = targets.subarray(p * rows * cols, (p + 1) * rows * cols);
        for (let r = r0; r < r1; r++) {
          tileTargets.set(plane.subarray(r * cols + c0, r * cols + c1), (r - r0) * placement.cols);
        }
        placements.push(placement);
        tiles.push({ matrix: index, placement, targetsUs: tileTargets });
        cells += tileTargets.length;
      }
    }
    const list = matricesByLayer.get(m.info.layer) ?? [];
    list.push({
      name: m.info.role,
      rows,
      cols,
      weightBits: image.index.weightBits,
      slices: layout.slices,
      bitsPerSlice: layout.bitsPerCell,
      differential: layout.pair === 2,
      weightScale: m.scales.length === 1 ? (m.scales[0] as number) : Array.from(m.scales),
      bias: Array.from(m.bias),
      input: { scale: m.info.input.step, qmin: m.info.input.qmin, qmax: m.info.input.qmax },
      ...(hw.adc.range === 'block' ? { adcFullScaleUa: adcFullScaleUa(hw, Math.min(rows, perBlock)) } : {}),
      placements,
    });
    matricesByLayer.set(m.info.layer, list);
  });

  for (const l of net.layers) {
    const got = matricesByLayer.get(l.index)?.length ?? 0;
    if (got !== l.matrices.length) {
      throw new InputError('INVALID_INPUT', `layer ${l.index} (${l.op}) has ${l.matrices.length} weight matrices but the image holds ${got}`, {
        where: 'weight image',
      });
    }
  }
  if (packing.arrays > chip.arrays) {
    throw new InputError(
      'DOES_NOT_FIT',
      `${net.spec.name} needs ${packing.arrays} arrays but the chip has ${chip.arrays} (short by ${packing.arrays - chip.arrays})`,
      { details: { arraysRequired: packing.arrays, arraysAvailable: chip.arrays } },
    );
  }

  const program: NetworkProgram = {
    format: NETWORK_PROGRAM_FORMAT,
    name: net.spec.name,
    input: [...net.spec.input] as [number, number, number],
    classes: net.spec.classes,
    inputBits: image.index.activationBits,
    conductance: { minUs: hw.conductance.minUs, maxUs: hw.conductance.maxUs },
    layers: net.layers.map((l) => {
      const s = l.spec;
      const matrices = matricesByLayer.get(l.index) ?? [];
      const base = {
        op: l.op,
        input: [...l.inShape] as [number, number, number],
        output: [...l.outShape] as [number, number, number],
        activation: l.activation,
        matrices,
      };
      if (s.op === 'pool') return { ...base, pool: { kind: s.kind, size: s.size, stride: s.stride ?? s.size } };
      if (s.op === 'bottleneck') return { ...base, kernel: s.kernel, stride: s.stride, padding: s.padding, expansion: s.expansion };
      if (s.op === 'conv' || s.op === 'residual' || s.op === 'resblock') return { ...base, kernel: s.kernel, stride: s.stride, padding: s.padding };
      return base;
    }),
  };
  return { program, tiles, arraysUsed: packing.arrays, cells, layout };
}
