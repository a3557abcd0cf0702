import { LinkError } from '../common/errors.js';
import type { CellStatusName, OutcomeName } from './protocol.js';
import type { DeviceConfig, DeviceCounters, DeviceInfo, EventsReply, MvmReply, Region } from './messages.js';
import type { NetworkProgramInput } from './network-program.js';

/**
 * The one interface everything above the link uses to talk to a macro (a real chip over a serial
 * port, the emulated macro in-process or over TCP). Implemented by MacroClient over any Transport.
 *
 * Contract, for every method that talks to the device:
 * - It rejects only with a LinkError: TIMEOUT (the device stayed silent through every retry),
 *   DISCONNECTED (the connection dropped and could not be resumed, or the device rebooted while
 *   the request was in flight), DEVICE_ERROR (the device refused; `details.deviceCode` names why),
 *   PROTOCOL (a reply that does not decode, or another protocol version), CANCELLED (the caller's
 *   AbortSignal fired before the device accepted the request), or an InputError for arguments
 *   outside the safe limits or the chip's geometry (nothing is sent then).
 * - Retransmissions reuse the request id, so the device executes each request at most once: a
 *   PROGRAM is never pulsed twice because a reply was lost.
 * - Requests may be issued concurrently; at most `window` are in flight and the rest wait.
 * - After an unplug the client reconnects and repeats HELLO. If the boot id is unchanged, requests
 *   in flight are retransmitted (the device answers them from its reply cache).
 * - A new boot id (seen by that HELLO, by hello() or in a RESET reply) means the device lost its
 *   reply cache and queue and may have stopped in the middle of a block. Then:
 *   1. every request issued before the reboot rejects with DISCONNECTED and
 *      `details.rebooted = true`: those in flight and those still waiting for a window slot, so no
 *      later block of an interrupted program() ever reaches the new boot; a 'reboot' event is
 *      emitted;
 *   2. the link enters "state unknown": `stateUnknown` is set and every array-changing operation
 *      (program(); see ARRAY_CHANGING_TYPES) rejects with a DeviceStateUnknownError before anything
 *      is sent. Reads, MVM, INFER, LOAD_NETWORK and control requests still work, because reading
 *      is how the caller learns the state;
 *   3. the caller reads back the cells it depends on (readCells) and then calls
 *      acknowledgeStateReadBack(stateUnknown.bootId); program() works again.
 *   The condition is never cleared implicitly (not by a read, not by reconnecting).
 */
export interface ChipLink {
  /** HELLO result of the current connection; undefined before connect(). */
  readonly info: DeviceInfo | undefined;

  /** Opens the transport and performs HELLO; rejects on a silent device or another protocol version. */
  connect(): Promise<DeviceInfo>;
  /** Closes the transport. Requests in flight reject with DISCONNECTED. Idempotent. */
  close(): Promise<void>;

  /** Repeats HELLO; emits 'reboot' if the boot id changed since the last one. */
  hello(): Promise<DeviceInfo>;
  /** Round trip of an echo request; resolves with the measured time in ms. */
  ping(data?: Uint8Array): Promise<number>;

  getConfig(): Promise<DeviceConfig>;
  /** Validates against SAFE_LIMITS first (InputError naming the field); resolves with the config the device applied. */
  setConfig(config: DeviceConfig): Promise<DeviceConfig>;

  /**
   * Write-verify of a region to target conductances (uS, row-major), split into blocks that fit the
   * device's payload limit and pipelined up to the window. Resolves with every cell accounted for,
   * also when cancelled through `signal`: cells the device did not attempt carry NOT_ATTEMPTED and
   * `outcome` says why the operation stopped.
   */
  program(region: Region, targetsUs: Float32Array, options?: ProgramOptions): Promise<ProgramResult>;
  /** Averaged reads of a region (uS, row-major). */
  readCells(region: Region, options?: ReadOptions): Promise<Float32Array>;
  /** One bit-serial matrix-vector product on a region; must fit one payload. */
  mvm(region: Region, inputs: Uint32Array, inputBits: number, options?: OperationOptions): Promise<MvmReply>;
  /** Sends a network program (validated here and on the device); resolves with its id for infer(). */
  loadNetwork(program: NetworkProgramInput, options?: OperationOptions): Promise<{ networkId: number; layers: number }>;
  /** Runs a loaded network on `count` images (NHWC, u8 or f32); resolves with count x classes logits. */
  infer(networkId: number, images: Uint8Array | Float32Array, shape: readonly [number, number, number], options?: OperationOptions): Promise<InferResult>;

  getCounters(): Promise<DeviceCounters>;
  /** Events with seq >= sinceSeq (default 0), oldest first. */
  getEvents(sinceSeq?: number, max?: number): Promise<EventsReply>;
  /** Transport reset: stops and flushes device operations (each still gets its final reply), restarts sequence tracking. */
  reset(): Promise<void>;
  /** Enters (true) or leaves (false) SAFE_STATE: no pulses or reads until released. */
  safeState(enter: boolean): Promise<boolean>;
  /** Test-only (capability ADVANCE_CLOCK): moves the device clock forward; resolves with the new clock (ms). */
  advanceClock(seconds: number): Promise<number>;

  /** Set from a detected reboot until acknowledgeStateReadBack(); array-changing operations are refused meanwhile. */
  readonly stateUnknown: DeviceStateUnknown | undefined;
  /**
   * The caller has read back, on boot `bootId`, the cell state it builds on: clears `stateUnknown`.
   * `bootId` must be `stateUnknown.bootId` (InputError otherwise: a newer reboot made that
   * read-back stale); a no-op when no reboot is pending for the current boot id.
   */
  acknowledgeStateReadBack(bootId: number): void;

  /** Host-side counters of this link (bytes, frames, retries, bad frames, reconnects). */
  stats(): LinkStats;
  /** Subscribes to link events; returns the unsubscribe function. */
  on(listener: (event: LinkEvent) => void): () => void;
}

/** A reboot the caller has not yet acknowledged (see the ChipLink contract). */
export interface DeviceStateUnknown {
  /** The last boot id whose state the caller knew (before the first unacknowledged reboot). */
  readonly previousBootId: number;
  /** The boot id the device runs now; pass it to acknowledgeStateReadBack(). */
  readonly bootId: number;
}

/**
 * An array-changing operation refused by the host because the device rebooted and the caller has
 * not acknowledged a read-back yet. Nothing was sent. Code DISCONNECTED (the session the caller's
 * assumptions belonged to ended with the reboot), `details.stateUnknown = true`.
 */
export class DeviceStateUnknownError extends LinkError {
  constructor(operation: string, state: DeviceStateUnknown, where: string) {
    const hex = (v: number): string => `0x${v.toString(16).padStart(8, '0')}`;
    super(
      'DISCONNECTED',
      `${operation} refused: the device rebooted (boot id ${hex(state.previousBootId)} -> ${hex(state.bootId)}) and its cell state has not been read back; read the cells back, then call acknowledgeStateReadBack(${hex(state.bootId)})`,
      { where, details: { stateUnknown: true, rebooted: true, previousBootId: state.previousBootId, bootId: state.bootId, operation } },
    );
  }
}

export interface OperationOptions {
  /** Aborting sends CANCEL for requests the device holds and drops those not yet sent. */
  readonly signal?: AbortSignal;
  /** Called with cells (or images, or bytes) done so far and the total. */
  readonly onProgress?: (done: number, total: number) => void;
  /** Deadline without any reply or progress, per attempt (default: client's timeoutMs). */
  readonly timeoutMs?: number;
}

export interface ProgramOptions extends OperationOptions {
  /** Tolerance band (uS); default: the device config. */
  readonly toleranceUs?: number;
  /** Pulses per cell per verify pass (PROTOCOL.md 3.3); default: the device config. */
  readonly maxPulses?: number;
  /** Verify passes over the block; default: the device config. */
  readonly maxIterations?: number;
}

export interface ReadOptions extends OperationOptions {
  /** Reads averaged per cell; default: the device config. */
  readonly averages?: number;
}

export interface ProgramResult {
  readonly outcome: OutcomeName;
  readonly finalUs: Float32Array;
  readonly pulses: Uint16Array;
  /** CellStatus code per cell. */
  readonly status: Uint8Array;
  readonly totalPulses: number;
  readonly counts: Readonly<Record<CellStatusName, number>>;
}

export interface InferResult {
  readonly count: number;
  readonly classes: number;
  readonly logits: Float32Array;
}

export interface LinkStats {
  txFrames: number;
  txBytes: number;
  txPayloadBytes: number;
  rxFrames: number;
  rxBytes: number;
  rxPayloadBytes: number;
  retransmits: number;
  timeouts: number;
  crcErrors: number;
  cobsErrors: number;
  shortFrames: number;
  oversizeFrames: number;
  badHeader: number;
  badVersion: number;
  /** Replies whose request id matched nothing in flight (late duplicates after a retry). */
  unmatchedReplies: number;
  /** Replies the device marked DUPLICATE (answered from its cache). */
  duplicateReplies: number;
  seqGaps: number;
  reconnects: number;
}

export type LinkEvent =
  | { readonly type: 'disconnect'; readonly reason: string }
  | { readonly type: 'reconnect'; readonly bootId: number; readonly rebooted: boolean }
  | { readonly type: 'reboot'; readonly previousBootId: number; readonly bootId: number }
  | { readonly type: 'bad-frame'; readonly kind: string };
