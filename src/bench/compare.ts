import { join } from 'node:path';
import { z } from 'zod';
import { ksStatistic } from '../calibration/stats.js';
import { InputError } from '../common/errors.js';
import { parseWith, loadJsonFile } from '../common/validate.js';
import {
  STUCK_LOW,
  STUCK_NONE,
  noiseForChip,
  noiseProfileHash,
  parseNoiseProfile,
  simulateOnChipParallel,
  simulateProbes,
  simulateReadback,
  type NoiseProfile,
} from '../device/index.js';
import { hardwareProfileHash, parseHardwareProfile } from '../hardware/index.js';
import { CellStatus } from '../link/index.js';
import { EXPORT_FILES, backendName, loadWeightImage, takeDataset, type WeightImage } from '../nn/index.js';
import { analyzeNetwork, NetworkSpecSchema } from '../spec/index.js';
import { BenchRuns, type Db, type ResimulationDiscrepancy, type ResimulationInput, type ResimulationPoint, type ResimulationTimes } from '../store/index.js';
import { CampaignSchema, findNetworkDir, loadTestSet } from './campaign.js';
import { compileNetwork, type CompiledNetwork } from './compile.js';
import { byLayer, matrixStatsOf, placementsOf, probeVectorsFor } from './engine.js';

/**
 * Re-simulating a recorded run with another noise profile (`cimbench compare`): the run's network,
 * test images, seeds and drift time points as recorded, simulated again with simulateOnChip,
 * simulateProbes and simulateReadback (src/device), and set against what the chip measured: accuracy
 * per time point, conductance error per layer, and per array the conductance-error distribution
 * (two-sample KS statistic, simulated read-backs vs the recorded ones) and the MVM probes.
 * Reads the store only; recording the result is Resimulations.record (src/store).
 */

export const CompareOptionsSchema = z.strictObject({
  /** Monte Carlo seeds (default: the run's). */
  seeds: z.array(z.int().min(0)).min(1).max(64).optional(),
  /**
   * Time basis: 'actual' (default), the device-clock seconds recorded at each point plus half the
   * recorded programming time (the cells' mean age), or the campaign's 'nominal' seconds.
   */
  times: z.enum(['actual', 'nominal']).default('actual'),
  /** Test images to simulate (default: what the run's prediction used). */
  images: z.int().min(1).optional(),
  batchSize: z.int().min(1).optional(),
  /**
   * Where the simulated conductances come from: 'model' (default), the noise profile's draws;
   * 'readback', the run's recorded read-backs at each point (cells not read back use the model), so
   * only the inference path is simulated: did the simulator's ADC, read noise and controller
   * arithmetic predict what the chip computed from the cells it actually holds? Or
   * 'first-readback': the read-back of the first measured point only, carried to the later points
   * by the model's relaxation, which predicts the later drift points from what the chip held just
   * after programming.
   */
  conductances: z.enum(['model', 'readback', 'first-readback']).default('model'),
  /** Worker threads the seeds are shared over (default min(2, cores)); the figures do not depend on it. */
  workers: z.int().min(1).max(64).optional(),
});
export type CompareOptions = z.input<typeof CompareOptionsSchema>;

export interface ArrayComparison {
  readonly point: number;
  readonly tS: number;
  readonly array: number;
  /** Healthy cells compared (measured; simulated pools every seed). */
  readonly cells: number;
  readonly measured: { readonly mean: number; readonly std: number };
  readonly simulated: { readonly mean: number; readonly std: number };
  /** KS statistic of simulated vs measured conductance error, this profile and the run's own. */
  readonly ks: number;
  readonly ksOriginal: number;
}

export interface RunComparison extends ResimulationInput {
  readonly runNoiseProfile: { readonly name: string; readonly sha256: string };
  /** Added to each recorded time: half the programming time (times 'actual'), the cells' mean age beyond it. */
  readonly ageOffsetS: number;
  /** Whether measured ADC trims of the profile applied to the run's chip. */
  readonly trims: 'used' | 'none' | 'other-chip';
  readonly chipId: string | null;
  readonly arrays: readonly ArrayComparison[];
}

interface Distribution {
  readonly values: Float64Array;
  readonly mean: number;
  readonly std: number;
}

function distribution(values: number[]): Distribution {
  const v = Float64Array.from(values);
  const n = v.length;
  let s = 0;
  for (const x of v) s += x;
  const mean = n > 0 ? s / n : 0;
  let ss = 0;
  for (const x of v) ss += (x - mean) ** 2;
  return { values: v, mean, std: n > 1 ? Math.sqrt(ss / (n - 1)) : 0 };
}

/** A point's recorded read-backs per compiled tile (row-major, NaN where not read) and how many were read. */
interface TileReadbacks {
  readonly values: Float32Array[];
  readonly got: number;
}

function tileReadbacks(rows: Iterable<[number, number, number, number]>, compiled: CompiledNetwork, position: ReadonlyMap<number, readonly [number, number]>): TileReadbacks {
  const values = compiled.tiles.map((t) => new Float32Array(t.targetsUs.length).fill(Number.NaN));
  let got = 0;
  for (const [a, r, c, g] of rows) {
    const at = position.get(cellKey(a, r, c));
    if (!at) continue;
    (values[at[0]] as Float32Array)[at[1]] = g;
    got++;
  }
  return { values, got };
}

const cellKey = (array: number, row: number, col: number): number => (array * 65536 + row) * 65536 + col;

/** Array cell -> (tile, index in the tile) for every compiled tile. */
function tilePositions(compiled: CompiledNetwork): Map<number, readonly [number, number]> {
  const position = new Map<number, readonly [number, number]>();
  compiled.tiles.forEach((t, ti) => {
    const pl = t.placement;
    for (let r = 0; r < pl.rows; r++) for (let c = 0; c < pl.cols; c++) position.set(cellKey(pl.array, pl.row + r, pl.col + c), [ti, r * pl.cols + c]);
  });
  return position;
}

/**
 * Per-tile read-backs as each matrix's conductance planes (weightsToTargets' layout, NaN where not
 * read back), with the cells PROGRAM reported stuck marked.
 */
function readbackPlanes(tiles: TileReadbacks, compiled: CompiledNetwork, image: WeightImage, status: ReadonlyMap<number, Uint8Array>): Array<{ valuesUs: Float32Array; stuck: Uint8Array }> {
  const { layout } = compiled;
  const planes = layout.slices * layout.pair;
  const out = image.matrices.map((m) => ({ valuesUs: new Float32Array(planes * m.info.rows * m.info.cols).fill(Number.NaN), stuck: new Uint8Array(planes * m.info.rows * m.info.cols) }));
  compiled.tiles.forEach((t, ti) => {
    const pl = t.placement;
    const { rows, cols } = (image.matrices[t.matrix] as WeightImage['matrices'][number]).info;
    const plane = (pl.slice * layout.pair + (pl.polarity === 'neg' ? 1 : 0)) * rows * cols;
    const st = status.get(ti);
    const v = tiles.values[ti] as Float32Array;
    const target = out[t.matrix] as { valuesUs: Float32Array; stuck: Uint8Array };
    for (let r = 0; r < pl.rows; r++) {
      for (let c = 0; c < pl.cols; c++) {
        const i = plane + (pl.srcRow + r) * cols + pl.srcCol + c;
        target.valuesUs[i] = v[r * pl.cols + c] as number;
        if (st?.[r * pl.cols + c] === CellStatus.STUCK) target.stuck[i] = STUCK_LOW;
      }
    }
  });
  return out;
}

/** Simulated batches done out of the total, as the re-simulation goes (it takes minutes on a full test set). */
export type CompareProgress = (done: number, total: number) => void;

export async function compareRun(db: Db, runId: number, noise: NoiseProfile, options: CompareOptions = {}, onProgress?: CompareProgress): Promise<RunComparison> {
  const opts = parseWith(CompareOptionsSchema, options, 'compare options');
  const started = performance.now();
  const runs = new BenchRuns(db);
  const run = runs.require(runId);
  const where = `run ${runId}`;
  const campaign = parseWith(CampaignSchema, run.config, `${where} config snapshot`);
  const raw = db.prepare('SELECT hardware_json, noise_json, device_json FROM runs WHERE id = ?').get(runId) as { hardware_json: string; noise_json: string; device_json: string | null };
  const hw = parseHardwareProfile(JSON.parse(raw.hardware_json), `${where} hardware profile`);
  const runNoise = parseNoiseProfile(JSON.parse(raw.noise_json), `${where} noise profile`);
  const device = raw.device_json ? (JSON.parse(raw.device_json) as { info?: { adcBits?: number }; config?: { vReadV?: number; readAverages?: number } | null }) : undefined;

  const networkDir = findNetworkDir(run.networkDir);
  const specPath = join(networkDir, EXPORT_FILES.spec);
  const net = analyzeNetwork(loadJsonFile(NetworkSpecSchema, specPath), specPath);
  const image = loadWeightImage(networkDir);
  if (image.index.sha256 !== run.weightImageSha256) {
    throw new InputError('INVALID_INPUT', `the weight image changed since the run (sha256 ${run.weightImageSha256.slice(0, 12)}... then, ${image.index.sha256.slice(0, 12)}... now): it cannot be re-simulated`, { where: networkDir });
  }
  const compiled = compileNetwork(net, image, hw);
  const testSet = loadTestSet(campaign);
  const images = opts.images ?? campaign.simulation.images ?? testSet.count;
  if (images > testSet.count) throw new InputError('INVALID_INPUT', `asks for ${images} images but the run measured ${testSet.count}`, { where: '--images' });
  const state = runs.resumeState(runId);
  // Actual times count from the end of programming; cells were programmed over programmingS before
  // it, so they are on average half of that older (the simulator has one programming instant).
  const parent = run.parentRunId !== null ? runs.get(run.parentRunId) : undefined;
  const programmingS = run.timeReference?.programmingS ?? parent?.timeReference?.programmingS ?? 0;
  const ageOffsetS = opts.times === 'actual' ? programmingS / 2 : 0;
  const points = run.plan.points
    .filter((p) => state.measuredAccuracy.has(p.index))
    .map((p) => ({ ...p, tS: opts.times === 'actual' ? (state.actualS.get(p.index) ?? p.nominalS) + ageOffsetS : p.nominalS }))
    .sort((a, b) => a.tS - b.tS);
  if (points.length === 0) throw new InputError('INVALID_INPUT', `run ${runId} (${run.mode}, ${run.status}) measured no accuracy on the chip: nothing to compare with`, { where });

  const seeds = opts.seeds ?? run.seeds;
  const forChip = noiseForChip(noise, run.chipId);
  // Stuck cells are known from PROGRAM replies: this run's, else those of the run that programmed the chip.
  const statusOf = (id: number): ReadonlyMap<number, Uint8Array> => runs.resumeState(id).cellStatus;
  let status = state.cellStatus;
  const known = (m: ReadonlyMap<number, Uint8Array>): boolean => [...m.values()].some((s) => s.some((v) => v !== 255));
  if (!known(status) && run.parentRunId !== null) status = statusOf(run.parentRunId);
  const statusesKnown = known(status);
  // Each point's read-backs, read once: the conductances to simulate from (--conductances readback) and the measured side of the per-array comparison.
  const readStmt = db.prepare('SELECT array_no, row_no, col_no, g_us FROM readbacks WHERE run_id = ? AND point = ?').raw(true);
  const position = tilePositions(compiled);
  const readbacks = points.map((p) => tileReadbacks(readStmt.iterate(runId, p.index) as Iterable<[number, number, number, number]>, compiled, position));
  const fromReadbacks = opts.conductances === 'readback' ? readbacks : opts.conductances === 'first-readback' ? readbacks.slice(0, 1) : [];
  if (fromReadbacks.some((r) => r.got === 0)) {
    throw new InputError('INVALID_INPUT', `run ${runId} has no read-backs at ${opts.conductances === 'readback' ? 'some of its measured points' : 'its first measured point'}: it cannot be re-simulated from them`, { where: `--conductances ${opts.conductances}` });
  }
  const given = fromReadbacks.length > 0 ? fromReadbacks.map((r) => readbackPlanes(r, compiled, image, status)) : undefined;
  const sim = await simulateOnChipParallel(net, image, hw, forChip.noise, takeDataset(testSet, images), {
    ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
    ...(onProgress ? { onProgress } : {}),
    seeds,
    timesS: points.map((p) => p.tS),
    driftCompensation: campaign.simulation.driftCompensation,
    batchSize: opts.batchSize ?? campaign.simulation.batchSize,
    placements: placementsOf(compiled),
    ...(given ? { conductances: given, carryGiven: true } : {}),
  });

  // What the run recorded beside its own prediction.
  const recorded = new Map(
    (db.prepare('SELECT point, layer, metric, simulated FROM discrepancies WHERE run_id = ?').all(runId) as Array<{ point: number; layer: number; metric: string; simulated: number }>).map((r) => [`${r.point}:${r.layer}:${r.metric}`, r.simulated]),
  );
  const recordedArrays = new Map(
    (db.prepare('SELECT point, array_no, metric, simulated FROM array_discrepancies WHERE run_id = ?').all(runId) as Array<{ point: number; array_no: number; metric: string; simulated: number }>).map((r) => [
      `${r.point}:${r.array_no}:${r.metric}`,
      r.simulated,
    ]),
  );

  const resPoints: ResimulationPoint[] = [];
  const rows: ResimulationDiscrepancy[] = [];
  const layerNames = new Map(net.layers.map((l) => [l.index, `${l.index}:${l.op}`]));
  points.forEach((p, i) => {
    const t = sim.times[i];
    if (!t) throw new InputError('INVALID_INPUT', `no simulated result for time point ${p.index}`, { where });
    const measured = state.measuredAccuracy.get(p.index) ?? null;
    const original = state.prediction?.points.get(p.index)?.accuracy.mean ?? null;
    resPoints.push({ point: p.index, tS: p.tS, simulated: t.accuracy.mean, simulatedStd: t.accuracy.std, perSeed: [...t.accuracy.perSeed], measured, originalSimulated: original });
    if (measured !== null) {
      rows.push({ point: p.index, tS: p.tS, scope: 'network', layer: -1, array: -1, name: 'network', metric: 'accuracy', simulated: t.accuracy.mean, simulatedStd: t.accuracy.std, measured, difference: measured - t.accuracy.mean, originalSimulated: original, ks: null });
    }
    const simLayers = byLayer(matrixStatsOf(t));
    const measLayers = byLayer(state.measuredStats.get(p.index) ?? []);
    for (const [layer, s] of simLayers) {
      const m = measLayers.get(layer);
      if (!m) continue;
      const add = (metric: string, simulated: number, meas: number): void => {
        rows.push({ point: p.index, tS: p.tS, scope: 'layer', layer, array: -1, name: layerNames.get(layer) ?? String(layer), metric, simulated, simulatedStd: null, measured: meas, difference: meas - simulated, originalSimulated: recorded.get(`${p.index}:${layer}:${metric}`) ?? null, ks: null });
      };
      add('conductance_error_mean_us', s.mean, m.mean);
      add('conductance_error_std_us', s.std, m.std);
      if (statusesKnown) add('stuck_fraction', s.stuck, m.stuck);
    }
  });

  // Per array: recorded read-backs vs simulated ones, and the MVM probes.
  const tiles = compiled.tiles;
  const averages = campaign.programming.readAverages ?? device?.config?.readAverages ?? 1;
  const arraysOf = [...new Set(tiles.map((t) => t.placement.array))].sort((a, b) => a - b);
  const forChipOriginal = noiseForChip(runNoise, run.chipId);
  const arrays: ArrayComparison[] = [];
  points.forEach((p, pi) => {
    const { values, got } = readbacks[pi] as TileReadbacks;
    if (got > 0) {
      const measuredErr = new Map<number, number[]>(arraysOf.map((a) => [a, []]));
      tiles.forEach((t, ti) => {
        const st = status.get(ti);
        const v = values[ti] as Float32Array;
        const list = measuredErr.get(t.placement.array) as number[];
        for (let k = 0; k < v.length; k++) {
          if (!Number.isFinite(v[k]) || st?.[k] === CellStatus.STUCK) continue;
          list.push((v[k] as number) - (t.targetsUs[k] as number));
        }
      });
      const simulatedErr = (profile: NoiseProfile): Map<number, number[]> => {
        const out = new Map<number, number[]>(arraysOf.map((a) => [a, []]));
        for (const seed of seeds) {
          const rb = simulateReadback(tiles, hw, profile, { seed, tS: p.tS, averages });
          tiles.forEach((t, ti) => {
            const g = rb.valuesUs[ti] as Float32Array;
            const stuck = rb.stuck[ti] as Uint8Array;
            const list = out.get(t.placement.array) as number[];
            for (let k = 0; k < g.length; k++) if (stuck[k] === STUCK_NONE) list.push((g[k] as number) - (t.targetsUs[k] as number));
          });
        }
        return out;
      };
      const now = simulatedErr(forChip.noise);
      const before = simulatedErr(forChipOriginal.noise);
      for (const a of arraysOf) {
        const m = distribution(measuredErr.get(a) as number[]);
        if (m.values.length === 0) continue;
        const s = distribution(now.get(a) as number[]);
        const ks = ksStatistic(s.values, m.values);
        const ksOriginal = ksStatistic(Float64Array.from(before.get(a) as number[]), m.values);
        arrays.push({ point: p.index, tS: p.tS, array: a, cells: m.values.length, measured: { mean: m.mean, std: m.std }, simulated: { mean: s.mean, std: s.std }, ks, ksOriginal });
        const base = { point: p.index, tS: p.tS, scope: 'array' as const, layer: -1, array: a, name: `array ${a}`, simulatedStd: null, originalSimulated: null, ks };
        rows.push({ ...base, metric: 'conductance_error_mean_us', simulated: s.mean, measured: m.mean, difference: m.mean - s.mean });
        rows.push({ ...base, metric: 'conductance_error_std_us', simulated: s.std, measured: m.std, difference: m.std - s.std });
      }
    }
    const mvm = state.measuredMvm?.get(p.index);
    if (mvm && mvm.length > 0) {
      const inputs = probeVectorsFor(tiles.map((t) => t.placement), campaign.mvm, p.index);
      const probeTiles = tiles.map((t, ti) => ({ array: t.placement.array, row: t.placement.row, col: t.placement.col, rows: t.placement.rows, cols: t.placement.cols, targetsUs: t.targetsUs, inputs: inputs[ti] as Uint8Array }));
      const predicted = simulateProbes(probeTiles, hw, forChip.noise, {
        seeds,
        tS: p.tS,
        ...(device?.config?.vReadV !== undefined ? { vReadV: device.config.vReadV } : {}),
        ...(device?.info?.adcBits !== undefined ? { adcBits: device.info.adcBits } : {}),
      });
      for (const m of mvm) {
        const s = predicted.find((x) => x.array === m.array);
        if (!s) continue;
        const base = { point: p.index, tS: p.tS, scope: 'array' as const, layer: -1, array: m.array, name: `array ${m.array}`, ks: null };
        rows.push({ ...base, metric: 'mvm_rel_error_vs_target', simulated: s.relErrorVsTarget.mean, simulatedStd: s.relErrorVsTarget.std, measured: m.relErrorVsTarget, difference: m.relErrorVsTarget - s.relErrorVsTarget.mean, originalSimulated: recordedArrays.get(`${p.index}:${m.array}:mvm_rel_error_vs_target`) ?? null });
        rows.push({ ...base, metric: 'mvm_clip_fraction', simulated: s.clipFraction, simulatedStd: null, measured: m.clipFraction, difference: m.clipFraction - s.clipFraction, originalSimulated: recordedArrays.get(`${p.index}:${m.array}:mvm_clip_fraction`) ?? null });
      }
    }
  });

  return {
    runId,
    noiseProfile: { name: noise.name, sha256: noiseProfileHash(noise), profile: noise },
    runNoiseProfile: { name: runNoise.name, sha256: run.noiseSha256 },
    times: opts.times as ResimulationTimes,
    conductances: opts.conductances,
    seeds: [...seeds],
    images: sim.images,
    digitalAccuracy: sim.digitalAccuracy,
    backend: backendName(),
    weightImageSha256: run.weightImageSha256,
    hardwareSha256: hardwareProfileHash(hw),
    seconds: (performance.now() - started) / 1000,
    points: resPoints.sort((a, b) => a.point - b.point),
    discrepancies: rows,
    ageOffsetS,
    trims: forChip.trims,
    chipId: run.chipId,
    arrays,
  };
}
