import { setMaxListeners } from 'node:events';
import { CimbenchError, InputError, LinkError, withContext } from '../common/errors.js';
import { Rng } from '../common/rng.js';
import {
  addConversion,
  newProbeSums,
  noiseForChip,
  probeAdc,
  probeInputs,
  relError,
  simulateOnChipParallel,
  simulateProbes,
  type ColumnPlacement,
  type NoiseProfile,
  type OnChipSimulationResult,
  type ProbeSums,
  type TimePointResult,
} from '../device/index.js';
import { Capability, CellStatus, maxReadCells, type ChipLink, type DeviceConfig, type DeviceInfo, type ProgramResult, type Region } from '../link/index.js';
import { takeDataset } from '../nn/index.js';
import type { Campaign, PreparedCampaign } from './campaign.js';
import type { CompiledNetwork } from './compile.js';
import type {
  AccuracySpread,
  ArrayMvmStat,
  BlockDoc,
  CampaignDocument,
  DiscrepancyRow,
  ExitStatus,
  MatrixStat,
  Subscriber,
  TileDoc,
  TimeReference,
} from './documents.js';
import { ALWAYS_RUN, stepKey, type Plan, type Step } from './plan.js';

/**
 * The campaign engine: runs one plan (plain data, plan.ts) against one ChipLink and emits
 * documents (documents.ts) that the recorder and progress bars subscribe to.
 *
 * Run control follows Bluesky: pause() takes effect at the next checkpoint (between steps and
 * between PROGRAM blocks, read-back tiles and INFER batches); abort() cancels what is in flight
 * (CANCEL to the device) and ends the run with exit status 'abort'; any other error ends it with
 * 'fail' and the error as reason. Data collected up to then is recorded either way.
 *
 * Programming is never replayed: on resume, blocks whose PROGRAM was sent (intent journalled) are
 * never sent again; if their reply was lost they are read back and recorded as interrupted.
 */

export type EngineState = 'idle' | 'running' | 'pausing' | 'paused' | 'aborting' | 'done';

/** The only state changes the engine makes; anything else is a bug and throws. */
export const TRANSITIONS: Readonly<Record<EngineState, readonly EngineState[]>> = {
  idle: ['running'],
  running: ['pausing', 'aborting', 'done'],
  pausing: ['paused', 'running', 'aborting', 'done'],
  paused: ['running', 'aborting'],
  aborting: ['done'],
  done: [],
};

export type BlockState = 'sent' | 'done' | 'unknown' | 'recovered' | 'skipped';

/** What an earlier, interrupted attempt of the same run left in the journal. */
export interface ResumeState {
  readonly endedSteps: ReadonlySet<string>;
  readonly attempts: ReadonlyMap<string, number>;
  /** Blocks with a journalled intent (absent: never sent). */
  readonly blocks: ReadonlyMap<number, BlockState>;
  /** Per tile, row-major: device CellStatus of each cell with a result, 255 without. */
  readonly cellStatus: ReadonlyMap<number, Uint8Array>;
  /** Per tile, row-major: recorded final conductance (NaN without). */
  readonly cellFinal: ReadonlyMap<number, Float32Array>;
  readonly timeReference: TimeReference | undefined;
  readonly bootIds: readonly number[];
  readonly prediction: PredictionState | undefined;
  readonly measuredAccuracy: ReadonlyMap<number, number>;
  readonly measuredStats: ReadonlyMap<number, readonly MatrixStat[]>;
  readonly actualS: ReadonlyMap<number, number | null>;
  /** Per-array MVM probe statistics measured at each time point (absent: none recorded). */
  readonly measuredMvm?: ReadonlyMap<number, readonly ArrayMvmStat[]>;
}

export interface PredictionState {
  readonly digitalAccuracy: number;
  readonly points: ReadonlyMap<number, { readonly tS: number; readonly accuracy: AccuracySpread; readonly matrices: readonly MatrixStat[] }>;
}

/** The simulator's prediction of a run: simulateOnChip's signature, synchronous or not. */
export type PredictFn = (...args: Parameters<typeof simulateOnChipParallel>) => OnChipSimulationResult | Promise<OnChipSimulationResult>;

export interface EngineOptions {
  readonly prepared: PreparedCampaign;
  readonly plan: Plan;
  readonly link: ChipLink;
  /** Human description of the link (recorded with the device). */
  readonly linkDescription: string;
  readonly resume?: ResumeState;
  /** End of programming of an earlier run (measure / drift plans on a chip programmed before). */
  readonly timeReference?: TimeReference;
  /** The prediction (default: the simulator's simulateOnChipParallel, seeds over min(2, cores) worker threads). */
  readonly predict?: PredictFn;
  /** Wall-clock wait (default setTimeout); must reject when the signal aborts. */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export interface RunOutcome {
  readonly exitStatus: ExitStatus;
  readonly reason: string | null;
  /** The error that failed the run (exit status 'fail'), as thrown. */
  readonly error?: unknown;
}

class AbortRun extends Error {}

const NO_RESULT = 255;
const INFER_BATCH = 100;

const defaultSleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new AbortRun('aborted'));
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new AbortRun('aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });

/** The compiler's placements as the simulator takes them (measured ADC trims per array column). */
export function placementsOf(compiled: CompiledNetwork): ColumnPlacement[] {
  return compiled.tiles.map((t) => ({ matrix: t.matrix, array: t.placement.array, row: t.placement.row, rows: t.placement.rows, col: t.placement.col, cols: t.placement.cols, srcRow: t.placement.srcRow, srcCol: t.placement.srcCol, slice: t.placement.slice, polarity: t.placement.polarity }));
}

/** A simulated time point's matrices as the store's matrix statistics. */
export function matrixStatsOf(t: TimePointResult): MatrixStat[] {
  return t.matrices.map((m, mi) => ({
    matrix: mi,
    layer: m.layer,
    name: m.name,
    cells: m.cells,
    stuckFraction: m.stuckFraction,
    gErrMeanUs: m.conductanceErrorUs.mean,
    gErrStdUs: m.conductanceErrorUs.std,
    adcClipFraction: m.adcClipFraction,
    relativeOutputError: m.relativeOutputError,
  }));
}

/** The probe vectors of a time point, per tile (the same for the chip and the simulator). */
export function probeVectorsFor(regions: ReadonlyArray<{ readonly rows: number }>, mvm: Campaign['mvm'], point: number): Uint8Array[] {
  return probeInputs(regions, mvm.vectors, new Rng(mvm.seed).fork(point));
}

/** Splits every tile into blocks of whole rows holding at most `blockCells` cells. */
export function planBlocks(tiles: readonly TileDoc[], blockCells: number): BlockDoc[] {
  const blocks: BlockDoc[] = [];
  for (const t of tiles) {
    const rowsPer = Math.max(1, Math.floor(blockCells / t.region.cols));
    for (let r = 0; r < t.region.rows; r += rowsPer) {
      const rows = Math.min(rowsPer, t.region.rows - r);
      blocks.push({ block: blocks.length, tile: t.tile, region: { ...t.region, row: t.region.row + r, rows }, offset: r * t.region.cols });
    }
  }
  return blocks;
}

export function cellStateOf(status: number): 'programmed' | 'failed' | 'interrupted' {
  if (status === CellStatus.OK) return 'programmed';
  if (status === CellStatus.NOT_ATTEMPTED) return 'interrupted';
  return 'failed';
}

export class CampaignEngine {
  private stateValue: EngineState = 'idle';
  private readonly subscribers = new Set<Subscriber>();
  private readonly controller = new AbortController();
  private abortReason: string | null = null;
  private pauseWaiter: (() => void) | undefined;
  private readonly tiles: TileDoc[];
  private readonly blocks: BlockDoc[];
  private readonly blockState = new Map<number, BlockState>();
  private readonly cellStatus = new Map<number, Uint8Array>();
  private readonly cellFinal = new Map<number, Float32Array>();
  private readonly predict: PredictFn;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private info: DeviceInfo | undefined;
  private config: DeviceConfig | undefined;
  private timeRef: TimeReference | undefined;
  private prediction: PredictionState | undefined;
  private readonly measuredAccuracy = new Map<number, number>();
  private readonly measuredStats = new Map<number, readonly MatrixStat[]>();
  private readonly actualS = new Map<number, number | null>();
  private readonly measuredMvm = new Map<number, readonly ArrayMvmStat[]>();
  private readbacks = new Map<number, Float32Array>();
  private unsubscribeLink: (() => void) | undefined;
  private trimWarned = false;

  constructor(private readonly options: EngineOptions) {
    const { compiled } = options.prepared;
    this.tiles = compiled.tiles.map((t, tile) => {
      const m = options.prepared.image.matrices[t.matrix];
      const p = t.placement;
      return {
        tile,
        matrix: t.matrix,
        layer: m?.info.layer ?? -1,
        name: m?.info.name ?? `matrix ${t.matrix}`,
        region: { array: p.array, row: p.row, col: p.col, rows: p.rows, cols: p.cols },
        slice: p.slice,
        polarity: p.polarity,
        targetsUs: t.targetsUs,
      };
    });
    this.blocks = planBlocks(this.tiles, options.prepared.campaign.programming.blockCells);
    // Every pipelined block, read and INFER request listens on the run's one abort signal.
    setMaxListeners(0, this.controller.signal);
    this.predict = options.predict ?? simulateOnChipParallel;
    this.sleep = options.sleep ?? defaultSleep;
    const r = options.resume;
    for (const t of this.tiles) {
      this.cellStatus.set(t.tile, r?.cellStatus.get(t.tile)?.slice() ?? new Uint8Array(t.targetsUs.length).fill(NO_RESULT));
      this.cellFinal.set(t.tile, r?.cellFinal.get(t.tile)?.slice() ?? new Float32Array(t.targetsUs.length).fill(Number.NaN));
    }
    if (r) {
      for (const [b, s] of r.blocks) this.blockState.set(b, s);
      this.timeRef = r.timeReference;
      this.prediction = r.prediction;
      for (const [k, v] of r.measuredAccuracy) this.measuredAccuracy.set(k, v);
      for (const [k, v] of r.measuredStats) this.measuredStats.set(k, v);
      for (const [k, v] of r.actualS) this.actualS.set(k, v);
      for (const [k, v] of r.measuredMvm ?? []) this.measuredMvm.set(k, v);
    }
    this.timeRef ??= options.timeReference;
  }

  get state(): EngineState {
    return this.stateValue;
  }

  /** Subscribes to documents; returns the unsubscribe function. */
  subscribe(fn: Subscriber): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  /** Pauses at the next checkpoint. Returns false when the run is not running. */
  pause(reason = 'pause requested'): boolean {
    if (this.stateValue !== 'running') return false;
    this.transition('pausing', reason);
    return true;
  }

  resume(): boolean {
    if (this.stateValue !== 'pausing' && this.stateValue !== 'paused') return false;
    this.transition('running');
    const w = this.pauseWaiter;
    this.pauseWaiter = undefined;
    w?.();
    return true;
  }

  /** Stops the run: cancels what is in flight; the run ends with exit status 'abort'. */
  abort(reason = 'abort requested'): boolean {
    if (this.stateValue !== 'running' && this.stateValue !== 'pausing' && this.stateValue !== 'paused') return false;
    this.abortReason = reason;
    this.transition('aborting', reason);
    this.controller.abort();
    const w = this.pauseWaiter;
    this.pauseWaiter = undefined;
    w?.();
    return true;
  }

  private transition(to: EngineState, reason?: string): void {
    const from = this.stateValue;
    if (!TRANSITIONS[from].includes(to)) throw new CimbenchError('INTERNAL', `campaign engine cannot go from ${from} to ${to}`);
    this.stateValue = to;
    this.emit({ type: 'state', from, to, ...(reason ? { reason } : {}) });
  }

  private emit(doc: CampaignDocument): void {
    for (const s of this.subscribers) s(doc);
  }

  private async checkpoint(): Promise<void> {
    if (this.stateValue === 'pausing') {
      this.transition('paused');
      await new Promise<void>((resolve) => (this.pauseWaiter = resolve));
    }
    if (this.stateValue === 'aborting') throw new AbortRun(this.abortReason ?? 'aborted');
  }

  private get signal(): AbortSignal {
    return this.controller.signal;
  }

  private progress(key: string, label: string, done: number, total: number): void {
    this.emit({ type: 'progress', key, label, done, total });
  }

  /** Runs the plan to its end; never rejects (the outcome says how it ended). */
  async run(): Promise<RunOutcome> {
    this.transition('running');
    const { plan, resume } = this.options;
    this.emit({ type: 'run-start', resumed: resume !== undefined, plan, pid: process.pid });
    let exitStatus: ExitStatus = 'success';
    let reason: string | null = null;
    let error: Record<string, unknown> | undefined;
    let thrown: unknown;
    try {
      for (const step of plan.steps) {
        await this.checkpoint();
        const key = stepKey(step);
        if (!ALWAYS_RUN.has(step.kind) && resume?.endedSteps.has(key)) continue;
        const attempt = (resume?.attempts.get(key) ?? 0) + 1;
        this.emit({ type: 'step-start', step, key, attempt });
        const t0 = performance.now();
        try {
          const detail = await this.exec(step, key);
          this.emit({ type: 'step-end', step, key, status: 'ended', seconds: (performance.now() - t0) / 1000, ...(detail ? { detail } : {}) });
        } catch (err) {
          const aborted = this.isAbort(err);
          this.emit({ type: 'step-end', step, key, status: aborted ? 'aborted' : 'failed', seconds: (performance.now() - t0) / 1000 });
          throw aborted ? err : withContext(err, key);
        }
      }
    } catch (err) {
      if (this.isAbort(err)) {
        exitStatus = 'abort';
        reason = this.abortReason ?? 'aborted';
      } else {
        exitStatus = 'fail';
        thrown = err;
        error = errorToJson(err);
        reason = String(error.message);
      }
    } finally {
      this.unsubscribeLink?.();
      this.emit({ type: 'run-stop', exitStatus, reason, ...(error ? { error } : {}) });
      if (this.stateValue !== 'done') this.transition('done');
    }
    return { exitStatus, reason, ...(thrown !== undefined ? { error: thrown } : {}) };
  }

  private isAbort(err: unknown): boolean {
    if (err instanceof AbortRun) return true;
    return this.stateValue === 'aborting' && err instanceof LinkError && err.code === 'CANCELLED';
  }

  private async exec(step: Step, key: string): Promise<Record<string, unknown> | undefined> {
    switch (step.kind) {
      case 'connect':
        return this.connect();
      case 'map':
        return this.map();
      case 'recover':
        return this.recover(key);
      case 'predict':
        return this.runPrediction(key);
      case 'program':
        return this.program(key);
      case 'settle':
        return this.settle(step.point ?? 0);
      case 'readback':
        return this.readback(step.point ?? 0, key);
      case 'measure':
        return this.measure(step.point ?? 0, key);
      case 'compare':
        return this.compare();
    }
  }

  // ------------------------------------------------------------------ steps

  private async connect(): Promise<Record<string, unknown>> {
    const { link, plan, prepared } = this.options;
    const info = link.info ?? (await link.connect());
    this.info = info;
    this.config = await link.getConfig().catch(() => undefined);
    this.unsubscribeLink ??= link.on((e) => {
      if (e.type === 'reboot' || e.type === 'reconnect' || e.type === 'disconnect') {
        this.emit({ type: 'event', level: e.type === 'reconnect' && !e.rebooted ? 'info' : 'warning', message: `link ${e.type}`, data: { ...e } });
      }
    });
    this.emit({ type: 'device', info, config: this.config, link: this.options.linkDescription });
    const { hw, compiled, campaign } = prepared;
    const where = `device ${info.chipId} (${info.firmwareName})`;
    if (info.rows !== hw.array.rows || info.cols !== hw.array.cols) {
      throw new InputError('INVALID_INPUT', `hardware profile ${hw.name} describes ${hw.array.rows}x${hw.array.cols} arrays but the device has ${info.rows}x${info.cols}`, { where });
    }
    if (compiled.arraysUsed > info.arrays) {
      throw new InputError('DOES_NOT_FIT', `${prepared.net.spec.name} needs ${compiled.arraysUsed} arrays but the device has ${info.arrays}`, {
        where,
        details: { arraysRequired: compiled.arraysUsed, arraysAvailable: info.arrays },
      });
    }
    if (hw.conductance.minUs < info.gMinUs || hw.conductance.maxUs > info.gMaxUs) {
      throw new InputError('INVALID_INPUT', `hardware profile window ${hw.conductance.minUs}..${hw.conductance.maxUs} uS lies outside the device's ${info.gMinUs}..${info.gMaxUs} uS`, { where });
    }
    const needs: Array<[number, string, boolean]> = [
      [Capability.PROGRAM, 'PROGRAM', plan.steps.some((s) => s.kind === 'program')],
      [Capability.READ_CELLS, 'READ_CELLS', true],
      [Capability.NETWORK, 'LOAD_NETWORK/INFER', plan.steps.some((s) => s.kind === 'measure')],
      [Capability.ADVANCE_CLOCK, 'ADVANCE_CLOCK (drift.clock is "emulated")', campaign.drift.clock === 'emulated' && plan.steps.some((s) => s.kind === 'settle')],
    ];
    for (const [bit, name, needed] of needs) {
      if (needed && (info.capabilities & bit) === 0) throw new InputError('INVALID_INPUT', `the device does not offer ${name}, which this campaign needs`, { where });
    }
    const seen = this.options.resume?.bootIds ?? [];
    const last = seen[seen.length - 1];
    if (last !== undefined && last !== info.bootId) {
      this.emit({
        type: 'event',
        level: 'warning',
        message: `the device rebooted since the last session (boot id ${hex(last)} -> ${hex(info.bootId)}): volatile state is gone; cells are read back before anything else`,
        data: { previousBootId: last, bootId: info.bootId },
      });
    }
    return { bootId: info.bootId, chipId: info.chipId };
  }

  private map(): Record<string, unknown> {
    const { compiled } = this.options.prepared;
    // Cells are journalled (as PROGRAM blocks) only by plans that program them.
    const programs = this.options.plan.steps.some((s) => s.kind === 'program');
    this.emit({ type: 'mapped', arraysUsed: compiled.arraysUsed, cells: compiled.cells, tiles: this.tiles, blocks: programs ? this.blocks : [] });
    return { arraysUsed: compiled.arraysUsed, cells: compiled.cells, tiles: this.tiles.length, blocks: this.blocks.length };
  }

  private tileOf(tile: number): TileDoc {
    return this.tiles[tile] as TileDoc;
  }

  private blockTargets(b: BlockDoc): Float32Array {
    const t = this.tileOf(b.tile);
    return t.targetsUs.subarray(b.offset, b.offset + b.region.rows * b.region.cols);
  }

  private readOptions(onProgress?: (d: number, t: number) => void): { averages?: number; signal: AbortSignal; onProgress?: (d: number, t: number) => void } {
    const averages = this.options.prepared.campaign.programming.readAverages;
    return { ...(averages !== undefined ? { averages } : {}), signal: this.signal, ...(onProgress ? { onProgress } : {}) };
  }

  /** Resume: blocks sent but never answered are read back (never re-pulsed); programmed cells are checked. */
  private async recover(key: string): Promise<Record<string, unknown>> {
    const link = this.options.link;
    const bootId = link.info?.bootId;
    const unknown = this.blocks.filter((b) => {
      const s = this.blockState.get(b.block);
      return s === 'sent' || s === 'unknown';
    });
    let done = 0;
    for (const b of unknown) {
      await this.checkpoint();
      const values = await link.readCells(b.region, this.readOptions());
      this.emit({ type: 'program-unknown', block: b.block, readbackUs: values, reason: 'PROGRAM was sent before the interruption but its reply was never recorded; read back instead of re-programming' });
      this.blockState.set(b.block, 'recovered');
      this.noteResults(b, undefined, values);
      this.progress(key, 'recover', ++done, unknown.length);
    }
    // Cells recorded as programmed: does the chip still hold them?
    const tolerance = this.options.prepared.campaign.programming.toleranceUs ?? this.config?.toleranceUs ?? 1;
    let checked = 0;
    let moved = 0;
    let sumAbs = 0;
    for (const b of this.blocks) {
      if (this.blockState.get(b.block) !== 'done') continue;
      await this.checkpoint();
      const values = await link.readCells(b.region, this.readOptions());
      const finals = (this.cellFinal.get(b.tile) as Float32Array).subarray(b.offset, b.offset + values.length);
      for (let i = 0; i < values.length; i++) {
        const f = finals[i] as number;
        if (Number.isNaN(f)) continue;
        const d = Math.abs((values[i] as number) - f);
        checked++;
        sumAbs += d;
        if (d > 3 * tolerance) moved++;
      }
    }
    if (moved > 0) {
      this.emit({
        type: 'event',
        level: 'warning',
        message: `${moved} of ${checked} programmed cells read back more than ${3 * tolerance} uS away from their recorded value (the device may have lost or changed its state)`,
        data: { checked, moved },
      });
    }
    // Every block this run builds on was just read back on this boot: the link may program again.
    if (bootId !== undefined && link.stateUnknown?.bootId === bootId) link.acknowledgeStateReadBack(bootId);
    return { unknownBlocks: unknown.length, cellsChecked: checked, cellsMoved: moved, meanAbsChangeUs: checked > 0 ? sumAbs / checked : 0 };
  }

  private noteResults(b: BlockDoc, status: Uint8Array | undefined, final: Float32Array): void {
    const st = this.cellStatus.get(b.tile) as Uint8Array;
    const fi = this.cellFinal.get(b.tile) as Float32Array;
    if (status) st.set(status, b.offset);
    fi.set(final, b.offset);
  }

  private async runPrediction(key: string): Promise<Record<string, unknown>> {
    const { prepared, plan } = this.options;
    const { campaign } = prepared;
    const data = takeDataset(prepared.testSet, campaign.simulation.images ?? prepared.testSet.count);
    const noise = this.noiseForDevice();
    const r = await this.predict(prepared.net, prepared.image, prepared.hw, noise, data, {
      seeds: campaign.seeds,
      timesS: plan.points.map((p) => p.nominalS),
      driftCompensation: campaign.simulation.driftCompensation,
      batchSize: campaign.simulation.batchSize,
      placements: placementsOf(prepared.compiled),
      onProgress: (d, t) => this.progress(key, 'predict', d, t),
    });
    const points = plan.points.map((p, i) => {
      const t = r.times[i];
      if (!t) throw new CimbenchError('INTERNAL', `prediction has no result for time point ${p.index}`);
      const matrices = matrixStatsOf(t);
      return { point: p.index, tS: t.tS, accuracy: { mean: t.accuracy.mean, std: t.accuracy.std, perSeed: [...t.accuracy.perSeed] }, matrices };
    });
    if (campaign.simulation.driftCompensation) {
      // The simulator rescales every matrix column against its first batch; INFER on the chip
      // applies no such correction (the controller reports logits only), so the two accuracies
      // then answer different questions.
      this.emit({
        type: 'event',
        level: 'warning',
        message: 'simulation.driftCompensation is on: the prediction rescales matrix outputs, the chip\'s INFER does not; accuracy discrepancies compare a compensated prediction with an uncompensated chip',
        data: { driftCompensation: true },
      });
    }
    this.emit({ type: 'prediction', images: r.images, digitalAccuracy: r.digitalAccuracy, points });
    this.prediction = { digitalAccuracy: r.digitalAccuracy, points: new Map(points.map((p) => [p.point, p])) };
    return { images: r.images, digitalAccuracy: r.digitalAccuracy, accuracy: points.map((p) => p.accuracy.mean) };
  }

  /** The noise profile for this device: measured ADC trims of another chip are dropped, with a warning once. */
  private noiseForDevice(): NoiseProfile {
    const { noise, trims } = noiseForChip(this.options.prepared.noise, this.info?.chipId);
    if (trims === 'other-chip' && !this.trimWarned) {
      this.trimWarned = true;
      this.emit({
        type: 'event',
        level: 'warning',
        message: `noise profile ${noise.name} holds ADC trims measured on chip ${this.options.prepared.noise.adc.columns?.chipId}, not on this device (${this.info?.chipId ?? 'unknown'}): the simulator draws trims instead`,
      });
    }
    return noise;
  }

  private async program(key: string): Promise<Record<string, unknown>> {
    const { link, prepared } = this.options;
    const prog = prepared.campaign.programming;
    const info = this.info as DeviceInfo;
    const total = prepared.compiled.cells;
    let done = this.blocks.reduce((s, b) => s + (this.blockState.has(b.block) ? b.region.rows * b.region.cols : 0), 0);
    let sent = 0;
    let pulses = 0;
    // Never replay: a block with a journalled intent is not sent again, whatever happened to it.
    const pending = this.blocks.filter((b) => !this.blockState.has(b.block));
    // The device clock before the first PROGRAM: how long programming took (the cells' ages spread over it).
    const first = pending.length > 0 ? await link.hello() : undefined;
    let chained = false;
    for (let k = 0; k < pending.length; k++) {
      const b = pending[k] as BlockDoc;
      // A block whose intent was committed with the previous result goes out at once (no checkpoint
      // in between, so a committed intent is not left unsent by a pause).
      if (!chained) {
        await this.checkpoint();
        this.emit({ type: 'program-intent', block: b.block, bootId: info.bootId });
        this.blockState.set(b.block, 'sent');
      }
      chained = false;
      const targets = this.blockTargets(b);
      let r: ProgramResult;
      try {
        r = await link.program(b.region, targets, {
          signal: this.signal,
          ...(prog.toleranceUs !== undefined ? { toleranceUs: prog.toleranceUs } : {}),
          ...(prog.maxPulses !== undefined ? { maxPulses: prog.maxPulses } : {}),
          ...(prog.maxIterations !== undefined ? { maxIterations: prog.maxIterations } : {}),
          onProgress: (d) => this.progress(key, 'program', done + d, total),
        });
      } catch (err) {
        // The block's state is unknown: read it back if the link still works, record, stop.
        const values = await link.readCells(b.region, this.readOptions()).catch(() => undefined);
        this.emit({ type: 'program-unknown', block: b.block, readbackUs: values, reason: `PROGRAM failed: ${err instanceof Error ? err.message : String(err)}` });
        this.blockState.set(b.block, 'unknown');
        throw err;
      }
      const next = pending[k + 1];
      chained = next !== undefined && this.stateValue === 'running' && r.outcome === 'COMPLETE';
      this.emit({
        type: 'program-result',
        block: b.block,
        outcome: r.outcome,
        finalUs: r.finalUs,
        pulses: r.pulses,
        status: r.status,
        totalPulses: r.totalPulses,
        ...(chained && next ? { nextIntent: { block: next.block, bootId: info.bootId } } : {}),
      });
      this.blockState.set(b.block, 'done');
      if (chained && next) this.blockState.set(next.block, 'sent');
      this.noteResults(b, r.status, r.finalUs);
      done += targets.length;
      sent++;
      pulses += r.totalPulses;
      this.progress(key, 'program', done, total);
      if (r.outcome !== 'COMPLETE' && this.stateValue !== 'aborting') {
        throw new LinkError('DEVICE_ERROR', `PROGRAM of block ${b.block} ended ${r.outcome}`, { details: { block: b.block, outcome: r.outcome } });
      }
    }
    await this.checkpoint();
    const hello = await link.hello();
    const programmingS = first && first.bootId === hello.bootId && hello.clockMs >= first.clockMs ? (hello.clockMs - first.clockMs) / 1000 : undefined;
    this.timeRef = { wallMs: Date.now(), clockMs: hello.clockMs, bootId: hello.bootId, source: 'program', ...(programmingS !== undefined ? { programmingS } : {}) };
    this.emit({ type: 'time-reference', ...this.timeRef });
    return { blocksSent: sent, totalPulses: pulses };
  }

  private async settle(point: number): Promise<Record<string, unknown>> {
    const { link, prepared, plan } = this.options;
    const nominalS = plan.points.find((p) => p.index === point)?.nominalS ?? 0;
    const info = this.info as DeviceInfo;
    const clockMode = prepared.campaign.drift.clock;
    const emulated = clockMode === 'emulated' || (clockMode === 'auto' && (info.capabilities & Capability.ADVANCE_CLOCK) !== 0);
    let now = await link.hello();
    if (!this.timeRef) {
      this.timeRef = { wallMs: Date.now(), clockMs: now.clockMs, bootId: now.bootId, source: 'start' };
      this.emit({ type: 'time-reference', ...this.timeRef });
      this.emit({ type: 'event', level: 'warning', message: 'no programming time known for this chip: time points count from the start of this run' });
    }
    const ref = this.timeRef;
    const elapsed = (h: DeviceInfo): number => (h.bootId === ref.bootId ? (h.clockMs - ref.clockMs) / 1000 : (Date.now() - ref.wallMs) / 1000);
    const need = nominalS - elapsed(now);
    let advancedS = 0;
    if (need > 0) {
      if (emulated && now.bootId === ref.bootId) {
        advancedS = Math.ceil(need);
        await link.advanceClock(advancedS);
      } else {
        await this.sleep(need * 1000, this.signal);
      }
      now = await link.hello();
    }
    const actual = elapsed(now);
    this.actualS.set(point, actual);
    this.emit({ type: 'time-point', point, nominalS, actualS: actual, clockMs: now.clockMs, bootId: now.bootId, clock: emulated ? 'emulated' : 'wall' });
    return { nominalS, actualS: actual, advancedS };
  }

  private async readback(point: number, key: string): Promise<Record<string, unknown>> {
    const { link, prepared } = this.options;
    const total = prepared.compiled.cells;
    let done = 0;
    this.readbacks = new Map();
    for (const t of this.tiles) {
      await this.checkpoint();
      const base = done;
      const values = await link.readCells(t.region, this.readOptions((d) => this.progress(key, `read-back @${point}`, base + d, total)));
      this.emit({ type: 'readback', point, tile: t.tile, valuesUs: values });
      this.readbacks.set(t.tile, values);
      done += values.length;
      this.progress(key, `read-back @${point}`, done, total);
    }
    const stats = this.measuredMatrixStats();
    this.measuredStats.set(point, stats);
    this.emit({ type: 'matrix-stats', point, source: 'measured', stats });
    const mvm = await this.mvmProbes(point, key);
    if (mvm.length > 0) this.emit({ type: 'mvm-stats', point, arrays: mvm });
    return { cells: done, mvmArrays: mvm.length };
  }

  private measuredMatrixStats(): MatrixStat[] {
    const { image } = this.options.prepared;
    return image.matrices.map((m, mi) => {
      let cells = 0;
      let stuck = 0;
      let n = 0;
      let sum = 0;
      let sumSq = 0;
      for (const t of this.tiles) {
        if (t.matrix !== mi) continue;
        const values = this.readbacks.get(t.tile) as Float32Array;
        const status = this.cellStatus.get(t.tile) as Uint8Array;
        for (let i = 0; i < values.length; i++) {
          cells++;
          if (status[i] === CellStatus.STUCK) {
            stuck++;
            continue;
          }
          const e = (values[i] as number) - (t.targetsUs[i] as number);
          n++;
          sum += e;
          sumSq += e * e;
        }
      }
      const mean = n > 0 ? sum / n : 0;
      return {
        matrix: mi,
        layer: m.info.layer,
        name: m.info.name,
        cells,
        stuckFraction: cells > 0 ? stuck / cells : 0,
        gErrMeanUs: mean,
        gErrStdUs: n > 0 ? Math.sqrt(Math.max(0, sumSq / n - mean * mean)) : 0,
        adcClipFraction: null,
        relativeOutputError: null,
      };
    });
  }

  /** Random 1-bit input vectors on every tile; codes compared with ideal ones from targets and from the read-back. */
  private async mvmProbes(point: number, key: string): Promise<ArrayMvmStat[]> {
    const { link, prepared } = this.options;
    const info = this.info as DeviceInfo;
    const vectors = prepared.campaign.mvm.vectors;
    if (vectors === 0 || (info.capabilities & Capability.MVM) === 0) return [];
    const vRead = this.config?.vReadV ?? prepared.hw.conductance.readVoltageV;
    const { lsbUa, maxCode } = probeAdc(prepared.hw, info.adcBits, vRead);
    const maxCols = Math.max(1, Math.min(Math.floor((info.maxPayload - 4) / 2), maxReadCells(info.maxPayload)));
    const inputsOf = this.probeVectors(point);
    const acc = new Map<number, { t: ProbeSums; r: ProbeSums }>();
    let done = 0;
    for (const t of this.tiles) {
      await this.checkpoint();
      const a = acc.get(t.region.array) ?? { t: newProbeSums(), r: newProbeSums() };
      acc.set(t.region.array, a);
      const read = this.readbacks.get(t.tile) as Float32Array;
      const { rows, cols } = t.region;
      const all = inputsOf[t.tile] as Uint8Array;
      for (let v = 0; v < vectors; v++) {
        const inputs = Uint32Array.from(all.subarray(v * rows, (v + 1) * rows));
        for (let c0 = 0; c0 < cols; c0 += maxCols) {
          const w = Math.min(maxCols, cols - c0);
          const region: Region = { ...t.region, col: t.region.col + c0, cols: w };
          const reply = await link.mvm(region, inputs, 1, { signal: this.signal });
          for (let c = 0; c < w; c++) {
            let gT = 0;
            let gR = 0;
            for (let r = 0; r < rows; r++) {
              if (inputs[r] === 0) continue;
              gT += t.targetsUs[r * cols + c0 + c] as number;
              gR += read[r * cols + c0 + c] as number;
            }
            const code = reply.codes[c] as number;
            addConversion(a.t, code, (vRead * gT) / lsbUa, maxCode);
            addConversion(a.r, code, (vRead * gR) / lsbUa, maxCode);
          }
        }
      }
      this.progress(key, `mvm @${point}`, ++done, this.tiles.length);
    }
    const stats = [...acc.entries()]
      .sort((x, y) => x[0] - y[0])
      .map(([array, a]) => ({
        array,
        vectors,
        conversions: a.t.conversions,
        clipFraction: a.t.conversions > 0 ? a.t.clipped / a.t.conversions : 0,
        meanCode: a.t.conversions > 0 ? a.t.sumCode / a.t.conversions : 0,
        relErrorVsTarget: relError(a.t),
        relErrorVsReadback: relError(a.r),
      }));
    this.measuredMvm.set(point, stats);
    return stats;
  }

  /** The probe vectors of a time point, per tile (the same for the chip and the simulator). */
  private probeVectors(point: number): Uint8Array[] {
    return probeVectorsFor(this.tiles.map((t) => t.region), this.options.prepared.campaign.mvm, point);
  }

  private async measure(point: number, key: string): Promise<Record<string, unknown>> {
    const { link, prepared } = this.options;
    const { testSet, compiled, net } = prepared;
    // Loaded at every measurement: cheap, and a reboot loses the loaded network.
    const { networkId } = await link.loadNetwork(compiled.program, { signal: this.signal });
    const [h, w, c] = net.spec.input;
    const per = h * w * c;
    const classes = net.spec.classes;
    const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
    let correct = 0;
    for (let start = 0; start < testSet.count; start += INFER_BATCH) {
      await this.checkpoint();
      const n = Math.min(INFER_BATCH, testSet.count - start);
      // Progress per INFER reply (a few images), not per batch: a batch can take seconds on the chip.
      const r = await link.infer(networkId, testSet.images.subarray(start * per, (start + n) * per), [h, w, c], {
        signal: this.signal,
        onProgress: (done) => this.progress(key, `measure @${point}`, start + done, testSet.count),
      });
      for (let i = 0; i < n; i++) {
        let best = 0;
        for (let k = 1; k < r.classes; k++) if ((r.logits[i * r.classes + k] as number) > (r.logits[i * r.classes + best] as number)) best = k;
        const label = testSet.labels[start + i] as number;
        if (best === label) correct++;
        const row = confusion[label];
        if (row && best < classes) row[best] = (row[best] as number) + 1;
      }
      this.progress(key, `measure @${point}`, start + n, testSet.count);
    }
    const value = correct / testSet.count;
    this.measuredAccuracy.set(point, value);
    this.emit({ type: 'accuracy', point, value, images: testSet.count, confusion });
    return { accuracy: value, images: testSet.count };
  }

  private compare(): Record<string, unknown> {
    const { prepared, plan } = this.options;
    const noise = prepared.noise;
    const rows: DiscrepancyRow[] = [];
    const statusesKnown = [...this.cellStatus.values()].some((st) => st.some((v) => v !== NO_RESULT));
    const layerNames = new Map<number, string>();
    for (const l of prepared.net.layers) layerNames.set(l.index, `${l.index}:${l.op}`);
    for (const p of plan.points) {
      const sim = this.prediction?.points.get(p.index);
      const measured = this.measuredAccuracy.get(p.index);
      if (!sim || measured === undefined) continue;
      const tS = this.actualS.get(p.index) ?? p.nominalS;
      rows.push({
        point: p.index,
        tS,
        layer: -1,
        layerName: 'network',
        metric: 'accuracy',
        simulated: sim.accuracy.mean,
        simulatedStd: sim.accuracy.std,
        measured,
        difference: measured - sim.accuracy.mean,
        noiseParams: {
          profile: noise.name,
          programming: noise.programming,
          drift: noise.drift,
          read: noise.read,
          stuck: noise.stuck,
          adc: noise.adc,
          irDrop: noise.irDrop,
          seeds: prepared.campaign.seeds,
          // The chip side never compensates drift (see runPrediction).
          driftCompensation: { simulated: prepared.campaign.simulation.driftCompensation, measured: false },
        },
      });
      const simLayers = byLayer(sim.matrices);
      const measLayers = byLayer(this.measuredStats.get(p.index) ?? []);
      for (const [layer, s] of simLayers) {
        const m = measLayers.get(layer);
        if (!m) continue;
        const name = layerNames.get(layer) ?? String(layer);
        const add = (metric: DiscrepancyRow['metric'], simulated: number, meas: number, params: Record<string, unknown>): void => {
          rows.push({ point: p.index, tS, layer, layerName: name, metric, simulated, simulatedStd: null, measured: meas, difference: meas - simulated, noiseParams: { profile: noise.name, ...params } });
        };
        add('conductance_error_mean_us', s.mean, m.mean, { programming: noise.programming, drift: noise.drift });
        add('conductance_error_std_us', s.std, m.std, { programming: noise.programming, drift: noise.drift });
        // Stuck cells are known from PROGRAM replies only (not for a chip programmed by another run).
        if (statusesKnown) add('stuck_fraction', s.stuck, m.stuck, { stuck: noise.stuck });
      }
      rows.push(...this.arrayDiscrepancies(p.index, tS));
    }
    this.emit({ type: 'discrepancies', rows });
    const acc = rows.filter((r) => r.metric === 'accuracy');
    return { rows: rows.length, accuracyDifference: acc.map((r) => r.difference) };
  }

  /**
   * Per array: the measured MVM probe error against the simulator's prediction of the same probe
   * (same vectors, same targets, the noise profile's programming, drift, read, stuck, ADC and IR-drop
   * draws over the campaign's seeds) at the time the chip was probed.
   */
  private arrayDiscrepancies(point: number, tS: number): DiscrepancyRow[] {
    const measured = this.measuredMvm.get(point);
    if (!measured || measured.length === 0) return [];
    const { prepared } = this.options;
    const noise = this.noiseForDevice();
    const inputs = this.probeVectors(point);
    const tiles = this.tiles.map((t) => ({ array: t.region.array, row: t.region.row, col: t.region.col, rows: t.region.rows, cols: t.region.cols, targetsUs: t.targetsUs, inputs: inputs[t.tile] as Uint8Array }));
    const info = this.info;
    const sim = simulateProbes(tiles, prepared.hw, noise, {
      seeds: prepared.campaign.seeds,
      tS,
      ...(this.config ? { vReadV: this.config.vReadV } : {}),
      ...(info ? { adcBits: info.adcBits } : {}),
    });
    const params = { profile: noise.name, programming: noise.programming, drift: noise.drift, read: noise.read, stuck: noise.stuck, adc: noise.adc, irDrop: noise.irDrop, seeds: prepared.campaign.seeds };
    const rows: DiscrepancyRow[] = [];
    for (const m of measured) {
      const s = sim.find((x) => x.array === m.array);
      if (!s) continue;
      const base = { point, tS, layer: -1, layerName: `array ${m.array}`, array: m.array, noiseParams: params };
      rows.push({ ...base, metric: 'mvm_rel_error_vs_target', simulated: s.relErrorVsTarget.mean, simulatedStd: s.relErrorVsTarget.std, measured: m.relErrorVsTarget, difference: m.relErrorVsTarget - s.relErrorVsTarget.mean });
      rows.push({ ...base, metric: 'mvm_clip_fraction', simulated: s.clipFraction, simulatedStd: null, measured: m.clipFraction, difference: m.clipFraction - s.clipFraction });
    }
    return rows;
  }
}

/** Cell-weighted aggregate of matrix statistics per layer (mean, pooled std, stuck fraction). */
export function byLayer(stats: readonly MatrixStat[]): Map<number, { mean: number; std: number; stuck: number }> {
  const acc = new Map<number, { cells: number; healthy: number; m1: number; m2: number; stuck: number }>();
  for (const s of stats) {
    const a = acc.get(s.layer) ?? { cells: 0, healthy: 0, m1: 0, m2: 0, stuck: 0 };
    const healthy = s.cells * (1 - s.stuckFraction);
    a.cells += s.cells;
    a.healthy += healthy;
    a.m1 += healthy * s.gErrMeanUs;
    a.m2 += healthy * (s.gErrStdUs ** 2 + s.gErrMeanUs ** 2);
    a.stuck += s.cells * s.stuckFraction;
    acc.set(s.layer, a);
  }
  const out = new Map<number, { mean: number; std: number; stuck: number }>();
  for (const [layer, a] of acc) {
    const mean = a.healthy > 0 ? a.m1 / a.healthy : 0;
    out.set(layer, { mean, std: a.healthy > 0 ? Math.sqrt(Math.max(0, a.m2 / a.healthy - mean * mean)) : 0, stuck: a.cells > 0 ? a.stuck / a.cells : 0 });
  }
  return out;
}

function errorToJson(err: unknown): Record<string, unknown> {
  if (err instanceof CimbenchError) {
    return { code: err.code, message: err.describe(), ...(err.where ? { where: err.where } : {}), ...(err.details ? { details: err.details } : {}) };
  }
  return { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

function hex(v: number): string {
  return `0x${(v >>> 0).toString(16).padStart(8, '0')}`;
}
