import type { DeviceConfig, InferRequest, MvmRequest, Region } from '../messages.js';
import type { NetworkProgram } from '../network-program.js';

/** What a macro is, as HELLO reports it (the endpoint adds protocol, payload, window, boot id). */
export interface MacroIdentity {
  readonly firmwareName: string;
  readonly chipId: string;
  readonly firmwareVersion: { readonly major: number; readonly minor: number; readonly patch: number };
  readonly arrays: number;
  readonly rows: number;
  readonly cols: number;
  readonly levels: number;
  readonly gMinUs: number;
  readonly gMaxUs: number;
  readonly adcBits: number;
  readonly dacBits: number;
}

/**
 * Handed to a backend while it runs one operation.
 * - `cancelled` turns true when CANCEL, RESET or SAFE_STATE asks the operation to stop; a backend
 *   checks it between cells and stops there (never in the middle of a pulse).
 * - `progress` may be called as often as convenient; the endpoint rate-limits the replies.
 * - `checkpoint()` lets the endpoint handle frames that arrived meanwhile (CANCEL, PING, HELLO);
 *   a synchronous backend must await it between cells or it can never be cancelled.
 */
export interface OperationContext {
  readonly cancelled: boolean;
  progress(done: number, total: number): void;
  checkpoint(): Promise<void>;
}

export interface ProgramJob {
  readonly region: Region;
  /** rows * cols targets (uS), row-major, already checked to lie in [gMinUs, gMaxUs]. */
  readonly targetsUs: Float32Array;
  /** Budgets with the config defaults already applied. */
  readonly toleranceUs: number;
  readonly maxPulses: number;
  readonly maxIterations: number;
  readonly config: DeviceConfig;
}

export interface ProgramCells {
  readonly finalUs: Float32Array;
  readonly pulses: Uint16Array;
  /** CellStatus per cell; cells skipped after a cancel must be NOT_ATTEMPTED. */
  readonly status: Uint8Array;
  readonly totalPulses: number;
}

/**
 * The physics behind a DeviceEndpoint: the emulated macro, a test device, or (in C) the firmware's
 * array driver. The endpoint has already decoded and validated every request (geometry, ranges,
 * safe limits), so a backend only does the work. Optional methods switch capabilities off.
 */
export interface MacroBackend {
  readonly identity: MacroIdentity;
  program(job: ProgramJob, ctx: OperationContext): Promise<ProgramCells>;
  /** Averaged reads of a region (uS, row-major). */
  readCells(region: Region, averages: number, config: DeviceConfig, ctx: OperationContext): Promise<Float32Array>;
  /** Bit-serial MVM: planes x cols ADC codes, plane-major, plane 0 = LSB. */
  mvm?(request: MvmRequest, config: DeviceConfig, ctx: OperationContext): Promise<Uint16Array>;
  /** Runs a loaded network; count x classes logits. */
  infer?(network: NetworkProgram, request: InferRequest, ctx: OperationContext): Promise<Float32Array>;
  /**
   * Lookahead hint: `request` was queued directly behind INFERs only (one is running or queued), so
   * nothing but those INFERs runs before it. The backend may start computing it now; the endpoint
   * still calls infer() with the same request object at its turn, in queue order, and replies then.
   * The results must equal what infer() alone would give. Called at most once per request, in
   * queue order; a request hinted may still be dropped (CANCEL, RESET) without its turn.
   */
  inferQueued?(network: NetworkProgram, request: InferRequest): void;
  /** Test-only clock jump (drift experiments). Only offered when the endpoint enables it. */
  advanceClock?(seconds: number): void;
  /**
   * The device's own clock in seconds (monotonic, never reset): the time its cells age on. An
   * emulated device runs faster than the silicon it models (its operations stand for more time
   * than they take) and need not age its cells over wall time, so HELLO must report this clock,
   * not the wall time, for host-side ages and drift points to be the time the cells saw. Absent:
   * the HELLO clock is wall time since boot plus ADVANCE_CLOCK (a real chip's firmware).
   */
  clockSeconds?(): number;
  /** All drivers off. */
  enterSafeState?(): void;
}
