import type { DeviceConfig, DeviceInfo, Region } from '../link/index.js';
import type { Plan, Step } from './plan.js';

/**
 * The documents a campaign run emits, in order. Subscribers (the SQLite recorder, progress bars,
 * later the web UI) are called synchronously: when `emit` returns, a recorder has committed the
 * document. That is how "intent committed before the command" holds: the engine emits
 * `program-intent` and only then sends PROGRAM. A subscriber that throws stops the run before the
 * command goes out.
 */

export type ExitStatus = 'success' | 'abort' | 'fail';
export type CellState = 'planned' | 'programmed' | 'failed' | 'interrupted';

export interface TileDoc {
  readonly tile: number;
  readonly matrix: number;
  readonly layer: number;
  readonly name: string;
  readonly region: Region;
  readonly slice: number;
  readonly polarity: 'pos' | 'neg';
  readonly targetsUs: Float32Array;
}

export interface BlockDoc {
  readonly block: number;
  readonly tile: number;
  readonly region: Region;
  /** Offset of the block's first cell in its tile's row-major targets. */
  readonly offset: number;
}

/** Per weight matrix, one time point, one source (the simulator or the chip). */
export interface MatrixStat {
  readonly matrix: number;
  readonly layer: number;
  readonly name: string;
  readonly cells: number;
  readonly stuckFraction: number;
  readonly gErrMeanUs: number;
  readonly gErrStdUs: number;
  /** Simulated only (the network's own inputs); null for measured rows. */
  readonly adcClipFraction: number | null;
  readonly relativeOutputError: number | null;
}

export interface ArrayMvmStat {
  readonly array: number;
  readonly vectors: number;
  readonly conversions: number;
  readonly clipFraction: number;
  readonly meanCode: number;
  /** RMS(code - ideal) / RMS(ideal), ideal computed from the targets / from this read-back. */
  readonly relErrorVsTarget: number;
  readonly relErrorVsReadback: number;
}

export interface AccuracySpread {
  readonly mean: number;
  readonly std: number;
  readonly perSeed: readonly number[];
}

export interface DiscrepancyRow {
  readonly point: number;
  readonly tS: number;
  /** -1 = the whole network (or, with `array`, not one layer). */
  readonly layer: number;
  readonly layerName: string;
  /** Set on per-array rows (MVM probes); such rows are stored in array_discrepancies. */
  readonly array?: number;
  readonly metric: 'accuracy' | 'conductance_error_mean_us' | 'conductance_error_std_us' | 'stuck_fraction' | 'mvm_rel_error_vs_target' | 'mvm_clip_fraction';
  readonly simulated: number;
  readonly simulatedStd: number | null;
  readonly measured: number;
  /** measured - simulated. */
  readonly difference: number;
  /** The noise-profile sections the simulated value depends on. */
  readonly noiseParams: Record<string, unknown>;
}

export interface TimeReference {
  /** Wall clock (ms since epoch) at the end of programming. */
  readonly wallMs: number;
  /** Device clock (ms) then, and the boot it belongs to. */
  readonly clockMs: number;
  readonly bootId: number;
  readonly source: 'program' | 'parent' | 'start';
  /**
   * Device seconds from the first PROGRAM of the session to the end of programming (same boot;
   * absent when unknown). Cells were programmed over that time, so at a time point they are on
   * average half of it older than the time point says (cimbench compare simulates that mean age).
   */
  readonly programmingS?: number;
}

export type CampaignDocument =
  | { readonly type: 'run-start'; readonly resumed: boolean; readonly plan: Plan; readonly pid: number }
  | { readonly type: 'device'; readonly info: DeviceInfo; readonly config: DeviceConfig | undefined; readonly link: string }
  | {
      readonly type: 'mapped';
      readonly arraysUsed: number;
      readonly cells: number;
      readonly tiles: readonly TileDoc[];
      readonly blocks: readonly BlockDoc[];
    }
  | { readonly type: 'step-start'; readonly step: Step; readonly key: string; readonly attempt: number }
  | { readonly type: 'step-end'; readonly step: Step; readonly key: string; readonly status: 'ended' | 'failed' | 'aborted'; readonly seconds: number; readonly detail?: Record<string, unknown> }
  | {
      readonly type: 'prediction';
      readonly images: number;
      readonly digitalAccuracy: number;
      readonly points: ReadonlyArray<{ readonly point: number; readonly tS: number; readonly accuracy: AccuracySpread; readonly matrices: readonly MatrixStat[] }>;
    }
  | { readonly type: 'program-intent'; readonly block: number; readonly bootId: number }
  | {
      readonly type: 'program-result';
      readonly block: number;
      readonly outcome: string;
      readonly finalUs: Float32Array;
      readonly pulses: Uint16Array;
      readonly status: Uint8Array;
      readonly totalPulses: number;
      /** The next block's intent, committed with this result (one commit per block, still before its PROGRAM). */
      readonly nextIntent?: { readonly block: number; readonly bootId: number };
    }
  /** A block whose PROGRAM went out but whose reply never arrived: state unknown, read back instead. */
  | { readonly type: 'program-unknown'; readonly block: number; readonly readbackUs: Float32Array | undefined; readonly reason: string }
  | ({ readonly type: 'time-reference' } & TimeReference)
  | {
      readonly type: 'time-point';
      readonly point: number;
      readonly nominalS: number;
      /** Seconds since programming when the point was taken; null when no reference is known. */
      readonly actualS: number | null;
      readonly clockMs: number;
      readonly bootId: number;
      readonly clock: 'emulated' | 'wall';
    }
  | { readonly type: 'readback'; readonly point: number; readonly tile: number; readonly valuesUs: Float32Array }
  | { readonly type: 'matrix-stats'; readonly point: number; readonly source: 'measured'; readonly stats: readonly MatrixStat[] }
  | { readonly type: 'mvm-stats'; readonly point: number; readonly arrays: readonly ArrayMvmStat[] }
  | { readonly type: 'accuracy'; readonly point: number; readonly value: number; readonly images: number; readonly confusion: readonly number[][] }
  | { readonly type: 'discrepancies'; readonly rows: readonly DiscrepancyRow[] }
  | { readonly type: 'progress'; readonly key: string; readonly label: string; readonly done: number; readonly total: number }
  | { readonly type: 'event'; readonly level: 'info' | 'warning'; readonly message: string; readonly data?: Record<string, unknown> }
  | { readonly type: 'state'; readonly from: string; readonly to: string; readonly reason?: string }
  | { readonly type: 'run-stop'; readonly exitStatus: ExitStatus; readonly reason: string | null; readonly error?: Record<string, unknown> };

export type DocumentType = CampaignDocument['type'];
export type Subscriber = (doc: CampaignDocument) => void;
