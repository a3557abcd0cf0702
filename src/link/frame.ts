import { cobsDecodeInto, cobsEncodeInto, cobsMaxEncodedLength } from './cobs.js';
import { crc32 } from './crc32.js';
import { CRC_SIZE, DEFAULT_MAX_PAYLOAD, HEADER_SIZE, KNOWN_FLAGS, MAX_PAYLOAD_LIMIT, PROTOCOL_MAJOR } from './protocol.js';

/**
 * One frame: 8-byte header, payload, CRC-32 (little-endian) over header and payload; COBS-encoded
 * and followed by a 0x00 delimiter on the wire.
 *
 *   0 u8 version   1 u8 flags   2 u8 type   3 u8 seq   4 u16 requestId   6 u16 length   8.. payload
 */
export interface Frame {
  readonly version: number;
  readonly flags: number;
  readonly type: number;
  readonly seq: number;
  readonly requestId: number;
  readonly payload: Uint8Array;
}

export interface FrameFields {
  readonly version?: number;
  readonly flags: number;
  readonly type: number;
  readonly seq: number;
  readonly requestId: number;
  readonly payload: Uint8Array;
}

/** The unencoded frame bytes (header + payload + CRC), as the CRC and the vectors see them. */
export function buildRawFrame(f: FrameFields): Uint8Array {
  const n = f.payload.length;
  if (n > MAX_PAYLOAD_LIMIT) throw new RangeError(`payload of ${n} bytes exceeds ${MAX_PAYLOAD_LIMIT}`);
  const raw = new Uint8Array(HEADER_SIZE + n + CRC_SIZE);
  raw[0] = f.version ?? PROTOCOL_MAJOR;
  raw[1] = f.flags & 0xff;
  raw[2] = f.type & 0xff;
  raw[3] = f.seq & 0xff;
  raw[4] = f.requestId & 0xff;
  raw[5] = (f.requestId >>> 8) & 0xff;
  raw[6] = n & 0xff;
  raw[7] = (n >>> 8) & 0xff;
  raw.set(f.payload, HEADER_SIZE);
  const crc = crc32(raw, 0, HEADER_SIZE + n);
  new DataView(raw.buffer).setUint32(HEADER_SIZE + n, crc, true);
  return raw;
}

/** Wire bytes of one frame: COBS(raw) followed by the 0x00 delimiter. */
export function encodeFrame(f: FrameFields): Uint8Array {
  const raw = buildRawFrame(f);
  const wire = new Uint8Array(cobsMaxEncodedLength(raw.length) + 1);
  const n = cobsEncodeInto(raw, 0, raw.length, wire, 0);
  wire[n] = 0;
  return wire.subarray(0, n + 1);
}

/** Why a received frame was dropped. Each kind maps to one counter. */
export type FrameErrorKind = 'cobs' | 'short' | 'length' | 'crc' | 'oversize' | 'flags' | 'version';

export type RawFrameResult =
  | { readonly ok: true; readonly frame: Frame }
  | { readonly ok: false; readonly kind: FrameErrorKind; readonly frame?: Frame };

/**
 * Checks a decoded (un-COBSed) frame. A frame with another protocol major version is returned as an
 * error of kind 'version' but with its header, so the receiver can say which version it met.
 */
export function parseRawFrame(raw: Uint8Array, start = 0, end = raw.length): RawFrameResult {
  const len = end - start;
  if (len < HEADER_SIZE + CRC_SIZE) return { ok: false, kind: 'short' };
  const payloadLen = (raw[start + 6] as number) | ((raw[start + 7] as number) << 8);
  if (len !== HEADER_SIZE + payloadLen + CRC_SIZE) return { ok: false, kind: 'length' };
  const crcAt = start + HEADER_SIZE + payloadLen;
  const got =
    ((raw[crcAt] as number) |
      ((raw[crcAt + 1] as number) << 8) |
      ((raw[crcAt + 2] as number) << 16) |
      ((raw[crcAt + 3] as number) << 24)) >>>
    0;
  if (crc32(raw, start, crcAt) !== got) return { ok: false, kind: 'crc' };
  const frame: Frame = {
    version: raw[start] as number,
    flags: raw[start + 1] as number,
    type: raw[start + 2] as number,
    seq: raw[start + 3] as number,
    requestId: (raw[start + 4] as number) | ((raw[start + 5] as number) << 8),
    payload: raw.slice(start + HEADER_SIZE, crcAt),
  };
  if (frame.version !== PROTOCOL_MAJOR) return { ok: false, kind: 'version', frame };
  if ((frame.flags & ~KNOWN_FLAGS) !== 0) return { ok: false, kind: 'flags', frame };
  return { ok: true, frame };
}

/** Decodes the wire bytes of exactly one frame (delimiter optional). For vectors and tools. */
export function decodeWireFrame(wire: Uint8Array): RawFrameResult {
  let end = wire.length;
  if (end > 0 && wire[end - 1] === 0) end--;
  const raw = new Uint8Array(end);
  const n = cobsDecodeInto(wire, 0, end, raw);
  if (n < 0) return { ok: false, kind: 'cobs' };
  return parseRawFrame(raw, 0, n);
}

export interface DecoderStats {
  frames: number;
  bytes: number;
  crcErrors: number;
  cobsErrors: number;
  shortFrames: number;
  oversizeFrames: number;
  badHeader: number;
  badVersion: number;
}

export function emptyDecoderStats(): DecoderStats {
  return { frames: 0, bytes: 0, crcErrors: 0, cobsErrors: 0, shortFrames: 0, oversizeFrames: 0, badHeader: 0, badVersion: 0 };
}

export interface FrameDecoderOptions {
  /** Largest payload accepted; longer frames are dropped as 'oversize'. */
  readonly maxPayload?: number;
  readonly onFrame: (frame: Frame) => void;
  /** Every dropped frame, once. `frame` is set when the header could be read (version, flags). */
  readonly onError?: (kind: FrameErrorKind, frame?: Frame) => void;
}

/**
 * Streaming decoder: feed it chunks as they arrive, split or merged anyhow. It resynchronises at
 * each 0x00, so garbage costs at most the frame it landed in. Empty segments (0x00 0x00) are idle
 * delimiters and not errors. Every non-empty segment ends as exactly one frame or one error.
 */
export class FrameDecoder {
  readonly stats: DecoderStats = emptyDecoderStats();
  private readonly onFrame: (frame: Frame) => void;
  private readonly onError: ((kind: FrameErrorKind, frame?: Frame) => void) | undefined;
  private readonly buf: Uint8Array;
  private readonly raw: Uint8Array;
  private readonly maxRaw: number;
  private fill = 0;
  private overflow = false;

  constructor(options: FrameDecoderOptions) {
    const maxPayload = Math.min(options.maxPayload ?? DEFAULT_MAX_PAYLOAD, MAX_PAYLOAD_LIMIT);
    this.buf = new Uint8Array(cobsMaxEncodedLength(HEADER_SIZE + maxPayload + CRC_SIZE));
    this.raw = new Uint8Array(this.buf.length);
    this.maxRaw = HEADER_SIZE + maxPayload + CRC_SIZE;
    this.onFrame = options.onFrame;
    this.onError = options.onError;
  }

  push(chunk: Uint8Array): void {
    this.stats.bytes += chunk.length;
    let i = 0;
    while (i < chunk.length) {
      const z = chunk.indexOf(0, i);
      const stop = z < 0 ? chunk.length : z;
      const n = stop - i;
      if (!this.overflow) {
        if (this.fill + n > this.buf.length) {
          this.overflow = true;
        } else {
          this.buf.set(chunk.subarray(i, stop), this.fill);
          this.fill += n;
        }
      }
      if (z < 0) break;
      this.endSegment();
      i = z + 1;
    }
  }

  /** Forgets a partial frame (transport reset, reconnect). */
  clear(): void {
    this.fill = 0;
    this.overflow = false;
  }

  private endSegment(): void {
    if (this.overflow) {
      this.clear();
      this.fail('oversize');
      return;
    }
    if (this.fill === 0) return;
    const n = cobsDecodeInto(this.buf, 0, this.fill, this.raw);
    this.fill = 0;
    if (n < 0) {
      this.fail('cobs');
      return;
    }
    if (n > this.maxRaw) {
      this.fail('oversize');
      return;
    }
    const r = parseRawFrame(this.raw, 0, n);
    if (r.ok) {
      this.stats.frames++;
      this.onFrame(r.frame);
    } else {
      this.fail(r.kind, r.frame);
    }
  }

  private fail(kind: FrameErrorKind, frame?: Frame): void {
    const s = this.stats;
    switch (kind) {
      case 'cobs':
        s.cobsErrors++;
        break;
      case 'short':
      case 'length':
        s.shortFrames++;
        break;
      case 'crc':
        s.crcErrors++;
        break;
      case 'oversize':
        s.oversizeFrames++;
        break;
      case 'flags':
        s.badHeader++;
        break;
      case 'version':
        s.badVersion++;
        break;
    }
    this.onError?.(kind, frame);
  }
}

/** Total of dropped frames in a stats record. */
export function droppedFrames(s: DecoderStats): number {
  return s.crcErrors + s.cobsErrors + s.shortFrames + s.oversizeFrames + s.badHeader + s.badVersion;
}
