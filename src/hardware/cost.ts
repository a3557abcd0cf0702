import type { LayerAnalysis, NetworkAnalysis } from '../spec/index.js';
import { mapMatrix, type MatrixMapping } from './mapping.js';
import { addTile, newTileTable, packTable, type PackedTable, type TileTable } from './packing.js';
import { arraysAvailable, columnsPerWeight, hardwareProfileHash, type HardwareProfile } from './profile.js';

/**
 * Behaviour-level cost model of a whole network on a CIM macro (MNSIM 2.0's structure):
 *
 * Per weight matrix and input vector, on one copy of its arrays (all arrays work in parallel):
 *   t_analog = ceil(inputBits/dacBits) * ceil(blockRows/DACs) * ceil(blockCols/ADCs)
 *              * (t_DAC + t_xbar + t_ADC)                       (no overlap, as MNSIM)
 *   t_buffer = ceil((rows + outCh) * inputBits / bufferWidth) * bufferCycle
 *   t_link   = ((rowBlocks - 1) * outCh * psumBits + outCh * inputBits) / bandwidth
 *   t_vector = max(t_analog, t_buffer, t_link)       (input fetch and output traffic are double-buffered)
 *            + t_shiftAdd + ceil(log2(slices * pair * rowBlocks)) digital cycles (merge tree)
 * A layer runs its matrices in sequence (resblock conv1 then conv2) with the skip projection in
 * parallel: ceil(vectors / duplicates) * t_vector each, then its element-wise digital work
 * (activations, pooling, skip additions) over `lanes` lanes.
 * Energy counts DAC drives, cell reads, ADC conversions, shift-adds, partial-sum merges, buffer
 * bits, link bits, digital ops, and leakage over the latency. Calibration factors multiply all.
 *
 * Network latency: layer by layer = sum of layers; pipelined (layers overlapped across a stream of
 * images) = the slowest layer per image in steady state, with the first image's fill latency and
 * the throughput reported beside it. When layers share arrays (mapping.shareArrays, packing.ts) an
 * array serves all its layers for every image, so the pipelined period is at least the sum of the
 * latencies of the layers on any one array.
 */

export interface EnergyBreakdown {
  dac: number;
  crossbar: number;
  adc: number;
  shiftAdd: number;
  accumulate: number;
  buffer: number;
  interconnect: number;
  digital: number;
  leakage: number;
}

export const ENERGY_COMPONENTS = [
  'dac',
  'crossbar',
  'adc',
  'shiftAdd',
  'accumulate',
  'buffer',
  'interconnect',
  'digital',
  'leakage',
] as const satisfies ReadonlyArray<keyof EnergyBreakdown>;

export interface MatrixCost extends MatrixMapping {
  readonly vectors: number;
  /** One input vector through one copy. */
  readonly vectorLatencyNs: number;
  readonly adcConversions: number;
}

export interface LayerCost {
  readonly index: number;
  readonly op: string;
  /** Sum over the layer's matrices (each matrix's own figures are in `matrices`). */
  readonly rows: number;
  readonly cols: number;
  /** Arrays including duplicates. */
  readonly arrays: number;
  readonly duplicates: number;
  readonly utilisation: number;
  readonly adcConversions: number;
  readonly latencyNs: number;
  /** Includes leakage over this layer's layer-by-layer latency. */
  readonly energyPj: number;
  readonly energy: EnergyBreakdown;
  readonly matrices: readonly MatrixCost[];
}

export interface LatencyModeTotals {
  readonly latencyMs: number;
  readonly energyMj: number;
  readonly edpMsMj: number;
}

export interface SimulationResult {
  readonly network: { name: string; params: number; weights: number; macs: number; mops: number };
  readonly hardware: { name: string; sha256: string; arraysAvailable: number };
  readonly options: Required<SimulateOptions>;
  readonly fit: {
    readonly fits: boolean;
    readonly arraysRequired: number;
    readonly arraysAvailable: number;
    /** Arrays missing (0 when it fits). */
    readonly shortfall: number;
    /** Used cells / cells of the arrays the network occupies. */
    readonly utilisation: number;
  };
  readonly layers: readonly LayerCost[];
  readonly energyBreakdownPj: EnergyBreakdown;
  readonly totals: {
    readonly layerByLayer: LatencyModeTotals;
    readonly pipelined: LatencyModeTotals & {
      readonly fillLatencyMs: number;
      readonly throughputImagesPerS: number;
      /** The slowest single layer. */
      readonly bottleneckLayer: number;
      /** The layers that set the period: the slowest layer, or the layers of the busiest shared array. */
      readonly bottleneckLayers: readonly number[];
    };
  };
}

export interface SimulateOptions {
  /** Duplicate the slowest layers into arrays left free (only when the network fits). */
  duplicate?: boolean;
}

/** Per-layer quantities that do not depend on the duplication factor. */
interface LayerPlan {
  readonly layer: LayerAnalysis;
  readonly matrices: MatrixCost[];
  readonly arraysPerCopy: number;
  readonly maxVectors: number;
  readonly digitalLatencyNs: number;
  /** Dynamic energy by component (the leakage slot stays 0: leakage depends on the latency). */
  readonly energy: Float64Array;
}

// Energy vectors are indexed in ENERGY_COMPONENTS order internally: keyed object access in the hot
// path was the simulator's main cost.
const E_DAC = 0;
const E_CROSSBAR = 1;
const E_ADC = 2;
const E_SHIFT_ADD = 3;
const E_ACCUMULATE = 4;
const E_BUFFER = 5;
const E_INTERCONNECT = 6;
const E_DIGITAL = 7;
const E_LEAKAGE = 8;
const N_COMPONENTS = 9;

function toBreakdown(e: Float64Array): EnergyBreakdown {
  return {
    dac: e[E_DAC] as number,
    crossbar: e[E_CROSSBAR] as number,
    adc: e[E_ADC] as number,
    shiftAdd: e[E_SHIFT_ADD] as number,
    accumulate: e[E_ACCUMULATE] as number,
    buffer: e[E_BUFFER] as number,
    interconnect: e[E_INTERCONNECT] as number,
    digital: e[E_DIGITAL] as number,
    leakage: e[E_LEAKAGE] as number,
  };
}

function planLayer(layer: LayerAnalysis, hw: HardwareProfile): LayerPlan {
  const bitCycles = Math.ceil(hw.inputs.bits / hw.dac.bits);
  const cycleNs = 1000 / hw.digital.clockMHz;
  const stepNs = hw.dac.latencyNs + hw.crossbar.readLatencyNs + hw.adc.latencyNs;
  const mergeInputsPerBlock = columnsPerWeight(hw);
  let eDac = 0;
  let eCrossbar = 0;
  let eAdc = 0;
  let eShiftAdd = 0;
  let eAccumulate = 0;
  let eBuffer = 0;
  let eInterconnect = 0;
  const matrices: MatrixCost[] = [];
  let arraysPerCopy = 0;
  let maxVectors = 0;

  for (const m of layer.matrices) {
    const map = mapMatrix(m, hw);
    const blockRows = Math.min(map.rowsPerBlock, map.rows);
    const blockCols = Math.min(map.cols, hw.array.cols);
    const tAnalog =
      bitCycles * Math.ceil(blockRows / hw.dac.perArray) * Math.ceil(blockCols / hw.adc.perArray) * stepNs;
    const bufferBits = (m.rows + m.outChannels) * hw.inputs.bits;
    const tBuffer = Math.ceil(bufferBits / hw.buffer.widthBits) * hw.buffer.cycleNs;
    const linkBits = (map.rowBlocks - 1) * m.outChannels * hw.digital.partialSumBits + m.outChannels * hw.inputs.bits;
    const tLink = linkBits / hw.interconnect.bandwidthGbps;
    const mergeInputs = mergeInputsPerBlock * map.rowBlocks;
    const mergeDepth = mergeInputs > 1 ? Math.ceil(Math.log2(mergeInputs)) : 0;
    const vectorLatencyNs = Math.max(tAnalog, tBuffer, tLink) + hw.shiftAdd.latencyNs + mergeDepth * cycleNs;

    const v = m.vectors;
    const adcConversions = v * bitCycles * map.cols * map.rowBlocks;
    eDac += v * bitCycles * m.rows * map.colBlocks * hw.dac.energyPj;
    eCrossbar += v * bitCycles * m.rows * map.cols * hw.crossbar.cellReadEnergyPj;
    eAdc += adcConversions * hw.adc.energyPj;
    eShiftAdd += adcConversions * hw.shiftAdd.energyPj;
    eAccumulate += v * m.outChannels * (mergeInputs - 1) * hw.digital.energyPjPerOp;
    eBuffer += v * bufferBits * hw.buffer.energyPjPerBit;
    eInterconnect += v * linkBits * hw.interconnect.energyPjPerBit;

    matrices.push({
      role: map.role,
      rows: map.rows,
      cols: map.cols,
      rowsPerBlock: map.rowsPerBlock,
      rowBlocks: map.rowBlocks,
      colBlocks: map.colBlocks,
      arrays: map.arrays,
      utilisation: map.utilisation,
      vectors: v,
      vectorLatencyNs,
      adcConversions,
    });
    arraysPerCopy += map.arrays;
    if (v > maxVectors) maxVectors = v;
  }
  const energy = new Float64Array(N_COMPONENTS);
  energy[E_DAC] = eDac;
  energy[E_CROSSBAR] = eCrossbar;
  energy[E_ADC] = eAdc;
  energy[E_SHIFT_ADD] = eShiftAdd;
  energy[E_ACCUMULATE] = eAccumulate;
  energy[E_BUFFER] = eBuffer;
  energy[E_INTERCONNECT] = eInterconnect;
  energy[E_DIGITAL] = layer.digitalOps * hw.digital.energyPjPerOp;
  const digitalLatencyNs = Math.ceil(layer.digitalOps / hw.digital.lanes) * cycleNs;
  return { layer, matrices, arraysPerCopy, maxVectors, digitalLatencyNs, energy };
}

/** Every tile of the network, as packing.ts places them (spec layer order, matrix order). */
function networkTiles(plans: readonly LayerPlan[], hw: HardwareProfile): TileTable {
  const tiles = newTileTable();
  const arrayCols = hw.array.cols;
  for (const p of plans) {
    for (const m of p.matrices) {
      for (let r0 = 0; r0 < m.rows; r0 += m.rowsPerBlock) {
        const rows = Math.min(m.rowsPerBlock, m.rows - r0);
        for (let q0 = 0; q0 < m.cols; q0 += arrayCols) addTile(tiles, p.layer.index, rows, Math.min(arrayCols, m.cols - q0));
      }
    }
  }
  return tiles;
}

/** Calibrated latency of a planned layer with `d` copies of its arrays. */
function layerLatencyNs(plan: LayerPlan, d: number, hw: HardwareProfile): number {
  let main = 0;
  let projection = 0;
  for (const m of plan.matrices) {
    const t = Math.ceil(m.vectors / d) * m.vectorLatencyNs;
    if (m.role === 'projection') projection = t;
    else main += t;
  }
  return (Math.max(main, projection) + plan.digitalLatencyNs) * hw.calibration.latencyFactor;
}

/**
 * Simulates one network on one macro. Never throws for networks that do not fit: `fit` says so and
 * the figures assume enough arrays of the same kind (callers decide whether to refuse).
 */
export function simulate(net: NetworkAnalysis, hw: HardwareProfile, options: SimulateOptions = {}): SimulationResult {
  const duplicate = options.duplicate ?? false;
  const plans = net.layers.map((layer) => planLayer(layer, hw));
  const available = arraysAvailable(hw);
  let required = 0;
  let usedCells = 0;
  for (const p of plans) {
    required += p.arraysPerCopy;
    for (const m of p.matrices) usedCells += m.rows * m.cols;
  }
  let packed: PackedTable | null = null;
  if (hw.mapping.shareArrays) {
    packed = packTable(networkTiles(plans, hw), hw.array.rows, hw.array.cols, true);
    required = packed.arrays;
  }
  const fits = required <= available;

  const copies = plans.map(() => 1);
  const latency = plans.map((p) => layerLatencyNs(p, 1, hw));
  if (duplicate && fits) {
    // Greedy: give free arrays to the slowest layer until the slowest cannot grow.
    let free = available - required;
    for (;;) {
      let slowest = -1;
      for (let i = 0; i < plans.length; i++) {
        if ((plans[i] as LayerPlan).arraysPerCopy > 0 && (slowest < 0 || (latency[i] as number) > (latency[slowest] as number))) slowest = i;
      }
      if (slowest < 0) break;
      const plan = plans[slowest] as LayerPlan;
      const d = (copies[slowest] as number) + 1;
      if (plan.arraysPerCopy > free || d > plan.maxVectors) break;
      copies[slowest] = d;
      free -= plan.arraysPerCopy;
      latency[slowest] = layerLatencyNs(plan, d, hw);
    }
  }

  const ef = hw.calibration.energyFactor;
  const totalEnergy = new Float64Array(N_COMPONENTS);
  const layerEnergy = new Float64Array(N_COMPONENTS);
  const layers: LayerCost[] = [];
  let sumLatencyNs = 0;
  let maxLatencyNs = 0;
  let bottleneckLayer = -1;
  for (let i = 0; i < plans.length; i++) {
    const plan = plans[i] as LayerPlan;
    const d = copies[i] as number;
    const latencyNs = latency[i] as number;
    let energyPj = 0;
    for (let c = 0; c < N_COMPONENTS; c++) {
      const value = c === E_LEAKAGE ? hw.leakage.powerMw * latencyNs * ef : (plan.energy[c] as number) * ef;
      layerEnergy[c] = value;
      totalEnergy[c] = (totalEnergy[c] as number) + value;
      energyPj += value;
    }
    let rows = 0;
    let cols = 0;
    let conversions = 0;
    let cells = 0;
    for (const m of plan.matrices) {
      rows += m.rows;
      cols += m.cols;
      conversions += m.adcConversions;
      cells += m.rows * m.cols;
    }
    const arrays = plan.arraysPerCopy * d;
    layers.push({
      index: plan.layer.index,
      op: plan.layer.op,
      rows,
      cols,
      arrays,
      duplicates: d,
      utilisation: plan.arraysPerCopy > 0 ? cells / (plan.arraysPerCopy * hw.array.rows * hw.array.cols) : 0,
      adcConversions: conversions,
      latencyNs,
      energyPj,
      energy: toBreakdown(layerEnergy),
      matrices: plan.matrices,
    });
    sumLatencyNs += latencyNs;
    if (latencyNs > maxLatencyNs) {
      maxLatencyNs = latencyNs;
      bottleneckLayer = plan.layer.index;
    }
  }

  // Arrays shared by several layers serve each of them for every image.
  let bottleneckLayers: readonly number[] = bottleneckLayer >= 0 ? [bottleneckLayer] : [];
  if (packed !== null) {
    let busiest = -1;
    for (let a = 0; a < packed.arrays; a++) {
      let busyNs = 0;
      let count = 0;
      for (let l = 0; l < packed.layers; l++) {
        if (packed.layerMask[a * packed.layers + l] === 1) {
          busyNs += latency[l] as number;
          count++;
        }
      }
      if (count > 1 && busyNs > maxLatencyNs) {
        maxLatencyNs = busyNs;
        busiest = a;
      }
    }
    if (busiest >= 0) {
      const on: number[] = [];
      for (let l = 0; l < packed.layers; l++) if (packed.layerMask[busiest * packed.layers + l] === 1) on.push(l);
      bottleneckLayers = on;
    }
  }
  const allocatedArrays = required;
  let dynamicPj = 0;
  for (let c = 0; c < N_COMPONENTS; c++) if (c !== E_LEAKAGE) dynamicPj += totalEnergy[c] as number;
  const layerEnergyMj = (dynamicPj + (totalEnergy[E_LEAKAGE] as number)) * 1e-9;
  const pipelinedEnergyMj = (dynamicPj + hw.leakage.powerMw * maxLatencyNs * ef) * 1e-9;
  const layerLatencyMs = sumLatencyNs * 1e-6;
  const pipelinedLatencyMs = maxLatencyNs * 1e-6;

  return {
    network: { name: net.spec.name, params: net.params, weights: net.weights, macs: net.macs, mops: net.mops },
    hardware: { name: hw.name, sha256: hardwareProfileHash(hw), arraysAvailable: available },
    options: { duplicate },
    fit: {
      fits,
      arraysRequired: required,
      arraysAvailable: available,
      shortfall: Math.max(0, required - available),
      utilisation: allocatedArrays > 0 ? usedCells / (allocatedArrays * hw.array.rows * hw.array.cols) : 0,
    },
    layers,
    energyBreakdownPj: toBreakdown(totalEnergy),
    totals: {
      layerByLayer: { latencyMs: layerLatencyMs, energyMj: layerEnergyMj, edpMsMj: layerLatencyMs * layerEnergyMj },
      pipelined: {
        latencyMs: pipelinedLatencyMs,
        energyMj: pipelinedEnergyMj,
        edpMsMj: pipelinedLatencyMs * pipelinedEnergyMj,
        fillLatencyMs: layerLatencyMs,
        throughputImagesPerS: maxLatencyNs > 0 ? 1e9 / maxLatencyNs : 0,
        bottleneckLayer,
        bottleneckLayers,
      },
    },
  };
}
