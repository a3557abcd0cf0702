/**
 * Protocol constants shared by the host client, the device-side endpoint and the vectors. The
 * normative description is firmware-protocol/PROTOCOL.md; the numbers here must match its tables.
 */

export const PROTOCOL_MAJOR = 1;
export const PROTOCOL_MINOR = 0;

/** Bytes before the payload: version, flags, type, seq, request id (u16), payload length (u16). */
export const HEADER_SIZE = 8;
export const CRC_SIZE = 4;
/** Largest payload the length field can express; a device advertises its own limit in HELLO. */
export const MAX_PAYLOAD_LIMIT = 0xffff;
/** Payload limit a host assumes before HELLO and the reference device advertises. */
export const DEFAULT_MAX_PAYLOAD = 4096;

/** Header flag bits. Bits 4..7 are reserved: a receiver drops frames that set them. */
export const Flag = {
  /** Device -> host. */
  RESPONSE: 0x01,
  /** An intermediate reply of a long operation (progress); the final reply follows. */
  PROGRESS: 0x02,
  /** The payload is an error body. */
  ERROR: 0x04,
  /** A re-sent cached reply to a request id the device had already answered. */
  DUPLICATE: 0x08,
} as const;
export const KNOWN_FLAGS = 0x0f;

export const MsgType = {
  HELLO: 0x01,
  PING: 0x02,
  GET_CONFIG: 0x03,
  SET_CONFIG: 0x04,
  GET_COUNTERS: 0x05,
  GET_EVENTS: 0x06,
  RESET: 0x07,
  SAFE_STATE: 0x08,
  CANCEL: 0x09,
  ADVANCE_CLOCK: 0x0a,
  PROGRAM: 0x10,
  READ_CELLS: 0x11,
  MVM: 0x12,
  LOAD_NETWORK: 0x13,
  INFER: 0x14,
} as const;
export type MsgTypeName = keyof typeof MsgType;
export type MsgTypeCode = (typeof MsgType)[MsgTypeName];

const TYPE_NAMES = new Map<number, MsgTypeName>(
  (Object.entries(MsgType) as Array<[MsgTypeName, number]>).map(([k, v]) => [v, k]),
);
export function msgTypeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `0x${type.toString(16).padStart(2, '0')}`;
}
export function isKnownType(type: number): boolean {
  return TYPE_NAMES.has(type);
}

/**
 * Queued operations run one at a time in arrival order on the device and may send progress
 * replies; every other type is a control request answered at once, even while an operation runs.
 */
export const QUEUED_TYPES: ReadonlySet<number> = new Set([
  MsgType.PROGRAM,
  MsgType.READ_CELLS,
  MsgType.MVM,
  MsgType.LOAD_NETWORK,
  MsgType.INFER,
]);

/**
 * Requests that change the state of the arrays. After a reboot the host refuses them until the
 * caller has read the cell state back (ChipLink.acknowledgeStateReadBack): a rebooted device may
 * have stopped anywhere in a pulse train, so the host must not build on what it assumed.
 */
export const ARRAY_CHANGING_TYPES: ReadonlySet<number> = new Set([MsgType.PROGRAM]);

/** Error codes carried in an ERROR reply. */
export const ErrCode = {
  UNKNOWN_TYPE: 1,
  BAD_VERSION: 2,
  BAD_LENGTH: 3,
  OUT_OF_RANGE: 4,
  LIMIT: 5,
  BUSY: 6,
  SAFE_STATE: 7,
  UNSUPPORTED: 8,
  CANCELLED: 9,
  BAD_NETWORK: 10,
  NO_NETWORK: 11,
  TOO_LARGE: 12,
  INTERNAL: 13,
} as const;
export type ErrCodeName = keyof typeof ErrCode;
const ERR_NAMES = new Map<number, ErrCodeName>(
  (Object.entries(ErrCode) as Array<[ErrCodeName, number]>).map(([k, v]) => [v, k]),
);
export function errCodeName(code: number): string {
  return ERR_NAMES.get(code) ?? `ERR_${code}`;
}

/** HELLO capability bits. */
export const Capability = {
  PROGRAM: 1 << 0,
  READ_CELLS: 1 << 1,
  MVM: 1 << 2,
  NETWORK: 1 << 3, // LOAD_NETWORK and INFER
  EVENTS: 1 << 4,
  CANCEL: 1 << 5,
  /** Test-only: ADVANCE_CLOCK moves the device clock for drift experiments. Never on a real chip. */
  ADVANCE_CLOCK: 1 << 6,
} as const;
export type CapabilityName = keyof typeof Capability;
export function capabilityNames(bits: number): CapabilityName[] {
  return (Object.entries(Capability) as Array<[CapabilityName, number]>)
    .filter(([, bit]) => (bits & bit) !== 0)
    .map(([name]) => name);
}

/** Per-cell status in a PROGRAM reply. */
export const CellStatus = {
  OK: 0,
  /** Pulse budget spent before the cell reached the tolerance band. */
  PULSE_LIMIT: 1,
  /** Verify-iteration budget spent. */
  ITER_LIMIT: 2,
  /** Not attempted: the operation was cancelled, reset or stopped by SAFE_STATE first. */
  NOT_ATTEMPTED: 3,
  /** The cell does not respond to pulses (stuck at a bound). */
  STUCK: 4,
} as const;
export type CellStatusName = keyof typeof CellStatus;
export const CELL_STATUS_NAMES: readonly CellStatusName[] = ['OK', 'PULSE_LIMIT', 'ITER_LIMIT', 'NOT_ATTEMPTED', 'STUCK'];

/** How a long operation ended (PROGRAM reply). */
export const Outcome = { COMPLETE: 0, CANCELLED: 1, SAFE_STATE: 2, RESET: 3 } as const;
export type OutcomeName = keyof typeof Outcome;
export const OUTCOME_NAMES: readonly OutcomeName[] = ['COMPLETE', 'CANCELLED', 'SAFE_STATE', 'RESET'];

/** Event codes in the device event log. */
export const EventCode = {
  BOOT: 1,
  RESET: 2,
  SAFE_STATE_ENTER: 3,
  SAFE_STATE_LEAVE: 4,
  CONFIG_CHANGED: 5,
  OP_START: 6,
  OP_DONE: 7,
  OP_CANCELLED: 8,
  CLOCK_ADVANCED: 9,
  NETWORK_LOADED: 10,
  BAD_FRAME: 11,
} as const;
export type EventCodeName = keyof typeof EventCode;
const EVENT_NAMES = new Map<number, EventCodeName>(
  (Object.entries(EventCode) as Array<[EventCodeName, number]>).map(([k, v]) => [v, k]),
);
export function eventCodeName(code: number): string {
  return EVENT_NAMES.get(code) ?? `EVENT_${code}`;
}

/**
 * Device counters in GET_COUNTERS order. The reply carries a count first, so a newer device may
 * append counters and an older host ignores the extra ones.
 */
export const COUNTER_NAMES = [
  'rxFrames',
  'rxBytes',
  'txFrames',
  'txBytes',
  'crcErrors',
  'cobsErrors',
  'shortFrames',
  'oversizeFrames',
  'badHeader',
  'badVersion',
  'unknownType',
  'seqGaps',
  'duplicateRequests',
  'busyRejects',
  'cancels',
  'resets',
  'safeStateEntries',
  'pulses',
  'eventsDropped',
  'uptimeMs',
] as const;
export type CounterName = (typeof COUNTER_NAMES)[number];

/** Timing rules (ms). See PROTOCOL.md "Timing". */
export const Timing = {
  /** The device starts its reply (or a progress reply) within this time of a request's delimiter. */
  DEVICE_ACK_MS: 50,
  /** A running operation sends a progress reply at least this often. */
  PROGRESS_INTERVAL_MS: 200,
  /** Host: default deadline of a request, counted from the last byte sent or last progress seen. */
  HOST_TIMEOUT_MS: 500,
  /** Host: retransmissions (same request id) before TIMEOUT. */
  HOST_RETRIES: 3,
  /** Device: replies kept for duplicate detection. */
  REPLY_CACHE: 32,
  /** Device: queued operations accepted at once (the host's window). */
  DEVICE_WINDOW: 4,
  /** Host: attempts to reopen the port after it disappeared, before failing what waits on it. */
  RECONNECT_ATTEMPTS: 5,
  /** Host: pause before each reconnect attempt. */
  RECONNECT_DELAY_MS: 200,
} as const;

/** Smallest `host_max_payload` a HELLO may announce: every HELLO reply (at most 110 bytes) fits. */
export const MIN_HOST_MAX_PAYLOAD = 128;
