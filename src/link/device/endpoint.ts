import { randomBytes } from 'node:crypto';
import { formatZodIssues } from '../../common/validate.js';
import { LinkError } from '../../common/errors.js';
import { crc32 } from '../crc32.js';
import { FrameDecoder, encodeFrame, type Frame, type FrameErrorKind } from '../frame.js';
import {
  CONFIG_FIELDS,
  CancelResult,
  SAFE_LIMITS,
  decodeConfig,
  decodeEventsRequest,
  decodeHelloRequest,
  decodeInferRequest,
  decodeLoadNetworkChunk,
  decodeMvmRequest,
  decodeProgramRequest,
  decodeReadCellsRequest,
  decodeU16,
  decodeU32,
  decodeU8,
  encodeConfig,
  encodeCounters,
  encodeErrorBody,
  encodeEventsReply,
  encodeHelloReply,
  encodeInferReply,
  encodeLoadNetworkReply,
  encodeMvmReply,
  encodeProgramReply,
  encodeProgress,
  encodeReadCellsReply,
  encodeU32,
  encodeU64,
  encodeU8,
  firstConfigViolation,
  withinSafeLimit,
  EVENT_SIZE,
  type DeviceConfig,
  type DeviceEvent,
  type DeviceInfo,
  type Region,
} from '../messages.js';
import { NetworkProgramSchema, checkPlacementsFit, type NetworkProgram } from '../network-program.js';
import {
  COUNTER_NAMES,
  Capability,
  CellStatus,
  DEFAULT_MAX_PAYLOAD,
  ErrCode,
  EventCode,
  Flag,
  MIN_HOST_MAX_PAYLOAD,
  MsgType,
  PROTOCOL_MAJOR,
  PROTOCOL_MINOR,
  QUEUED_TYPES,
  Timing,
  isKnownType,
  type CounterName,
  type OutcomeName,
} from '../protocol.js';
import type { InProcessConnection, InProcessDevice } from '../transports/in-process.js';
import type { MacroBackend, OperationContext } from './backend.js';

export const DEFAULT_DEVICE_CONFIG: DeviceConfig = {
  vSetV: 1.2,
  vResetV: 1.4,
  vReadV: 0.1,
  pulseWidthNs: 100,
  readAverages: 4,
  maxPulses: 100,
  maxIterations: 20,
  toleranceUs: 1,
};

export interface DeviceEndpointOptions {
  readonly backend: MacroBackend;
  /** Default: random per construction (a "power-up"). */
  readonly bootId?: number;
  readonly config?: DeviceConfig;
  readonly maxPayload?: number;
  readonly window?: number;
  /** Offer the test-only ADVANCE_CLOCK capability. Never on a real chip. */
  readonly testClock?: boolean;
  /** Milliseconds clock; default performance-free Date.now. */
  readonly now?: () => number;
  readonly progressIntervalMs?: number;
  readonly replyCache?: number;
  readonly eventLog?: number;
  /** Largest LOAD_NETWORK document accepted (default 1 MiB). */
  readonly maxNetworkBytes?: number;
}

type StopReason = 'CANCELLED' | 'SAFE_STATE' | 'RESET';

interface Job {
  readonly id: number;
  readonly type: number;
  readonly key: number;
  /** Runs the operation; resolves with the final reply payload (or an error reply). */
  readonly run: (ctx: OperationContext, job: Job) => Promise<Reply>;
  /** Final reply when the job is dropped before it started. */
  readonly dropped: (reason: StopReason) => Reply;
  /** INFER only: tells the backend it may start early (MacroBackend.inferQueued). */
  readonly lookahead?: () => void;
  /** The lookahead was given. */
  hinted?: boolean;
  stop: StopReason | undefined;
  done: number;
  total: number;
}

interface Reply {
  readonly flags: number;
  readonly payload: Uint8Array;
}

interface CachedReply extends Reply {
  readonly key: number;
  readonly type: number;
}

class DeviceRefusal extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly arg = 0,
  ) {
    super(message);
  }
}

const refuse = (code: number, message: string, arg = 0): never => {
  throw new DeviceRefusal(code, message, arg);
};

/**
 * The device side of the protocol, independent of the physics: frame decoding, dispatch, the
 * duplicate-request cache, the operation queue with progress and CANCEL, RESET, SAFE_STATE,
 * counters and the event log. A MacroBackend supplies the array operations. It speaks bytes in and
 * bytes out, so it can sit behind the in-process binding, a pty or a TCP socket.
 */
export class DeviceEndpoint implements InProcessDevice {
  readonly bootId: number;
  private readonly backend: MacroBackend;
  private readonly maxPayload: number;
  /** Largest reply payload sent: min(own max payload, the host's HELLO host_max_payload). */
  private replyLimit: number;
  private readonly window: number;
  private readonly testClock: boolean;
  private readonly now: () => number;
  private readonly progressIntervalMs: number;
  private readonly replyCacheSize: number;
  private readonly eventCapacity: number;
  private readonly maxNetworkBytes: number;
  private readonly bootTime: number;
  /** The backend's own clock at boot, when it has one. */
  private readonly bootClockS: number | undefined;
  private readonly decoder: FrameDecoder;
  private readonly counts = new Map<CounterName, number>();
  private readonly cache = new Map<number, CachedReply>();
  private readonly queue: Job[] = [];
  private readonly events: DeviceEvent[] = [];
  private readonly networks = new Map<number, NetworkProgram>();
  private config: DeviceConfig;
  private running: Job | undefined;
  private pumping = false;
  private safe = false;
  private advancedMs = 0;
  private txSeq = 0;
  private rxSeq: number | undefined;
  private nextEventSeq = 1;
  private upload: { networkId: number; total: number; buf: Uint8Array; received: number } | undefined;
  private sink: ((bytes: Uint8Array) => void) | undefined;

  constructor(options: DeviceEndpointOptions) {
    this.backend = options.backend;
    this.bootId = options.bootId ?? randomBytes(4).readUInt32LE(0);
    this.config = options.config ?? DEFAULT_DEVICE_CONFIG;
    this.maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    this.replyLimit = this.maxPayload;
    this.window = options.window ?? Timing.DEVICE_WINDOW;
    this.testClock = options.testClock ?? false;
    this.now = options.now ?? Date.now;
    this.progressIntervalMs = options.progressIntervalMs ?? Timing.PROGRESS_INTERVAL_MS / 2;
    this.replyCacheSize = options.replyCache ?? Timing.REPLY_CACHE;
    this.eventCapacity = options.eventLog ?? 256;
    this.maxNetworkBytes = options.maxNetworkBytes ?? 1 << 20;
    this.bootTime = this.now();
    this.bootClockS = this.backend.clockSeconds?.();
    this.decoder = new FrameDecoder({ maxPayload: this.maxPayload, onFrame: (f) => this.onFrame(f), onError: (k, f) => this.onBadFrame(k, f) });
    this.log(EventCode.BOOT, this.bootId, 0);
  }

  // ------------------------------------------------------------------ byte I/O

  /** Sets where the device's bytes go (one host at a time); returns a function that detaches it. */
  attach(sink: (bytes: Uint8Array) => void): () => void {
    this.sink = sink;
    this.decoder.clear();
    return () => {
      if (this.sink === sink) this.sink = undefined;
    };
  }

  /** Bytes from the host, in any split. */
  receive(bytes: Uint8Array): void {
    this.decoder.push(bytes);
  }

  /** InProcessDevice: the in-process serialport binding plugs in here. */
  connect(toHost: (bytes: Uint8Array) => void): InProcessConnection {
    const detach = this.attach(toHost);
    return { fromHost: (b) => this.receive(b), detach };
  }

  get clockMs(): number {
    // The backend's own clock (ADVANCE_CLOCK reaches it through advanceClock), else wall time since boot plus clock jumps.
    const own = this.backend.clockSeconds?.();
    if (own !== undefined && this.bootClockS !== undefined) return 1000 * (own - this.bootClockS);
    return this.now() - this.bootTime + this.advancedMs;
  }

  get currentConfig(): DeviceConfig {
    return this.config;
  }

  /** Counter values in GET_COUNTERS order. */
  counterValues(): number[] {
    const d = this.decoder.stats;
    const base: Partial<Record<CounterName, number>> = {
      rxFrames: d.frames,
      rxBytes: d.bytes,
      crcErrors: d.crcErrors,
      cobsErrors: d.cobsErrors,
      shortFrames: d.shortFrames,
      oversizeFrames: d.oversizeFrames,
      badVersion: d.badVersion,
      uptimeMs: this.now() - this.bootTime,
    };
    return COUNTER_NAMES.map((n) => (base[n] ?? 0) + (n === 'badHeader' ? d.badHeader : 0) + (this.counts.get(n) ?? 0));
  }

  private bump(name: CounterName, by = 1): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + by);
  }

  private send(id: number, type: number, flags: number, payload: Uint8Array): void {
    // Error bodies are the only replies not sized beforehand: their message is cut to fit.
    if (flags & Flag.ERROR && payload.length > this.replyLimit) payload = payload.subarray(0, this.replyLimit);
    const wire = encodeFrame({ flags: flags | Flag.RESPONSE, type, seq: this.txSeq, requestId: id, payload });
    this.txSeq = (this.txSeq + 1) & 0xff;
    this.bump('txFrames');
    this.bump('txBytes', wire.length);
    this.sink?.(wire);
  }

  private finish(id: number, type: number, key: number, reply: Reply): void {
    this.cache.delete(id);
    this.cache.set(id, { ...reply, key, type });
    while (this.cache.size > this.replyCacheSize) {
      const oldest = this.cache.keys().next().value;
      if (oldest === undefined) break;
      this.cache.delete(oldest);
    }
    this.send(id, type, reply.flags, reply.payload);
  }

  private log(code: number, arg0: number, arg1: number): void {
    this.events.push({ seq: this.nextEventSeq++, code, clockMs: this.clockMs, arg0: arg0 >>> 0, arg1: arg1 >>> 0 });
    if (this.events.length > this.eventCapacity) {
      this.events.shift();
      this.bump('eventsDropped');
    }
  }

  // ------------------------------------------------------------------ dispatch

  private onBadFrame(kind: FrameErrorKind, f?: Frame): void {
    if (kind === 'version' && f && (f.flags & Flag.RESPONSE) === 0) {
      // Header layout (version, request id) is the same in every version, so say which one we speak.
      this.send(f.requestId, f.type, Flag.ERROR, encodeErrorBody({ code: ErrCode.BAD_VERSION, arg: PROTOCOL_MAJOR, message: `device speaks protocol v${PROTOCOL_MAJOR}` }));
    }
  }

  private onFrame(f: Frame): void {
    if (this.rxSeq !== undefined && f.seq !== this.rxSeq) this.bump('seqGaps', (f.seq - this.rxSeq) & 0xff);
    this.rxSeq = (f.seq + 1) & 0xff;
    if (f.flags & Flag.RESPONSE) {
      this.bump('badHeader');
      return;
    }
    const key = crc32(f.payload, 0, f.payload.length, f.type);
    const cached = this.cache.get(f.requestId);
    if (cached && cached.key === key && cached.type === f.type) {
      // A retransmission: answer from the cache, never execute twice.
      this.bump('duplicateRequests');
      this.send(f.requestId, f.type, cached.flags | Flag.DUPLICATE, cached.payload);
      return;
    }
    const active = this.running?.id === f.requestId ? this.running : this.queue.find((j) => j.id === f.requestId);
    if (active && active.key === key && active.type === f.type) {
      this.bump('duplicateRequests');
      this.send(f.requestId, f.type, Flag.PROGRESS, encodeProgress({ done: active.done, total: active.total }));
      return;
    }
    if (!isKnownType(f.type)) {
      this.bump('unknownType');
      this.finish(f.requestId, f.type, key, errorReply(ErrCode.UNKNOWN_TYPE, `unknown message type 0x${f.type.toString(16)}`, f.type));
      return;
    }
    try {
      if (QUEUED_TYPES.has(f.type)) this.enqueue(f, key);
      else this.finish(f.requestId, f.type, key, this.control(f));
    } catch (err) {
      const reply = toErrorReply(err);
      if (err instanceof DeviceRefusal && err.code === ErrCode.BUSY) this.send(f.requestId, f.type, reply.flags, reply.payload);
      else this.finish(f.requestId, f.type, key, reply);
    }
  }

  private control(f: Frame): Reply {
    const p = f.payload;
    switch (f.type) {
      case MsgType.HELLO: {
        const hello = decodeHelloRequest(p);
        if (hello.hostMaxPayload < MIN_HOST_MAX_PAYLOAD) refuse(ErrCode.OUT_OF_RANGE, `host_max_payload ${hello.hostMaxPayload} is below the minimum ${MIN_HOST_MAX_PAYLOAD}`);
        // In force from this reply on, until the next HELLO or power-up.
        this.replyLimit = Math.min(this.maxPayload, hello.hostMaxPayload);
        return ok(encodeHelloReply(this.info()));
      }
      case MsgType.PING:
        this.fitsReply(p.length);
        return ok(p);
      case MsgType.GET_CONFIG:
        expectEmpty(p);
        return ok(encodeConfig(this.config));
      case MsgType.SET_CONFIG: {
        const c = decodeConfig(p, 'SET_CONFIG request');
        const bad = firstConfigViolation(c);
        if (bad >= 0) {
          const field = CONFIG_FIELDS[bad] ?? '?';
          const [lo, hi] = SAFE_LIMITS[field as (typeof CONFIG_FIELDS)[number]] ?? [0, 0];
          refuse(ErrCode.LIMIT, `${field} = ${c[field as keyof DeviceConfig]} outside the safe limits ${lo}..${hi}`, bad);
        }
        this.config = c;
        this.log(EventCode.CONFIG_CHANGED, 0, 0);
        return ok(encodeConfig(c));
      }
      case MsgType.GET_COUNTERS:
        expectEmpty(p);
        return ok(encodeCounters(this.counterValues()));
      case MsgType.GET_EVENTS: {
        const req = decodeEventsRequest(p);
        const fit = Math.floor((this.replyLimit - 8) / EVENT_SIZE);
        const oldest = this.events[0]?.seq ?? this.nextEventSeq;
        const lost = req.sinceSeq < oldest && req.sinceSeq > 0 ? oldest - req.sinceSeq : 0;
        const list = this.events.filter((e) => e.seq >= req.sinceSeq).slice(0, Math.min(req.max, fit));
        const last = list[list.length - 1];
        return ok(encodeEventsReply({ nextSeq: last ? last.seq + 1 : Math.max(req.sinceSeq, oldest), lost, events: list }));
      }
      case MsgType.RESET: {
        expectEmpty(p);
        this.stopAll('RESET');
        this.bump('resets');
        this.log(EventCode.RESET, 0, 0);
        this.rxSeq = undefined;
        this.upload = undefined;
        const reply = ok(encodeU32(this.bootId));
        // The reply goes out with the old sequence; numbering restarts after it.
        queueMicrotask(() => (this.txSeq = 0));
        return reply;
      }
      case MsgType.SAFE_STATE: {
        const mode = decodeU8(p, 'SAFE_STATE request');
        if (mode > 1) refuse(ErrCode.BAD_LENGTH, `SAFE_STATE mode ${mode} (expected 0 or 1)`);
        if (mode === 1) {
          if (!this.safe) {
            this.safe = true;
            this.bump('safeStateEntries');
            this.log(EventCode.SAFE_STATE_ENTER, 0, 0);
          }
          this.stopAll('SAFE_STATE');
          this.backend.enterSafeState?.();
        } else if (this.safe) {
          this.safe = false;
          this.log(EventCode.SAFE_STATE_LEAVE, 0, 0);
        }
        return ok(encodeU8(this.safe ? 1 : 0));
      }
      case MsgType.CANCEL: {
        const target = decodeU16(p, 'CANCEL request');
        this.bump('cancels');
        if (this.running?.id === target) {
          this.running.stop ??= 'CANCELLED';
          this.log(EventCode.OP_CANCELLED, target, this.running.type);
          return ok(encodeU8(CancelResult.CANCELLING));
        }
        const i = this.queue.findIndex((j) => j.id === target);
        if (i >= 0) {
          const [job] = this.queue.splice(i, 1);
          if (job) {
            this.log(EventCode.OP_CANCELLED, target, job.type);
            this.finish(job.id, job.type, job.key, job.dropped('CANCELLED'));
          }
          return ok(encodeU8(CancelResult.DEQUEUED));
        }
        return ok(encodeU8(CancelResult.NOT_RUNNING));
      }
      case MsgType.ADVANCE_CLOCK: {
        if (!this.testClock) refuse(ErrCode.UNSUPPORTED, 'ADVANCE_CLOCK is a test-only capability this device does not offer');
        const seconds = decodeU32(p, 'ADVANCE_CLOCK request');
        this.advancedMs += seconds * 1000;
        this.backend.advanceClock?.(seconds);
        this.log(EventCode.CLOCK_ADVANCED, seconds, 0);
        return ok(encodeU64(this.clockMs));
      }
      default:
        return refuse(ErrCode.UNKNOWN_TYPE, `unknown message type 0x${f.type.toString(16)}`, f.type);
    }
  }

  info(): DeviceInfo {
    const id = this.backend.identity;
    return {
      protocolMajor: PROTOCOL_MAJOR,
      protocolMinor: PROTOCOL_MINOR,
      maxPayload: this.maxPayload,
      capabilities: this.capabilities(),
      bootId: this.bootId,
      firmwareVersion: id.firmwareVersion,
      arrays: id.arrays,
      rows: id.rows,
      cols: id.cols,
      levels: id.levels,
      gMinUs: id.gMinUs,
      gMaxUs: id.gMaxUs,
      adcBits: id.adcBits,
      dacBits: id.dacBits,
      window: this.window,
      clockMs: this.clockMs,
      firmwareName: id.firmwareName,
      chipId: id.chipId,
    };
  }

  private capabilities(): number {
    let c = Capability.PROGRAM | Capability.READ_CELLS | Capability.EVENTS | Capability.CANCEL;
    if (this.backend.mvm) c |= Capability.MVM;
    if (this.backend.infer) c |= Capability.NETWORK;
    if (this.testClock) c |= Capability.ADVANCE_CLOCK;
    return c;
  }

  // ------------------------------------------------------------------ queued operations

  private checkRegion(r: Region): void {
    const id = this.backend.identity;
    if (r.rows < 1 || r.cols < 1 || r.array >= id.arrays || r.row + r.rows > id.rows || r.col + r.cols > id.cols) {
      refuse(ErrCode.OUT_OF_RANGE, `region ${r.rows}x${r.cols} at (${r.row}, ${r.col}) of array ${r.array} is outside ${id.arrays} arrays of ${id.rows}x${id.cols}`);
    }
  }

  private fitsReply(bytes: number): void {
    if (bytes > this.replyLimit) {
      const why = this.replyLimit < this.maxPayload ? `the host accepts replies up to ${this.replyLimit} bytes` : `max payload ${this.maxPayload}`;
      refuse(ErrCode.TOO_LARGE, `the reply would need ${bytes} bytes (${why})`);
    }
  }

  private budget(v: number, field: 'toleranceUs' | 'maxPulses' | 'maxIterations'): number {
    if (v === 0) return this.config[field];
    const [lo, hi] = SAFE_LIMITS[field];
    if (!withinSafeLimit(field, v)) refuse(ErrCode.LIMIT, `${field} = ${v} outside the safe limits ${lo}..${hi}`, CONFIG_FIELDS.indexOf(field));
    return v;
  }

  private enqueue(f: Frame, key: number): void {
    const arrayOp = f.type !== MsgType.LOAD_NETWORK;
    if (this.safe && arrayOp) refuse(ErrCode.SAFE_STATE, 'the device is in SAFE_STATE; release it with SAFE_STATE 0 first');
    if (this.queue.length + (this.running ? 1 : 0) >= this.window) {
      this.bump('busyRejects');
      refuse(ErrCode.BUSY, `${this.window} operations already queued`);
    }
    const job = this.prepare(f, key);
    this.queue.push(job);
    this.hintLookahead();
    void this.pump();
  }

  /**
   * Gives the lookahead to queued INFERs that have INFERs only ahead of them, each of which has
   * started or had the lookahead (so the backend knows where the one ahead will end).
   */
  private hintLookahead(): void {
    if (this.running?.type !== MsgType.INFER) return;
    for (const job of this.queue) {
      if (job.type !== MsgType.INFER) return;
      if (!job.hinted && job.stop === undefined) {
        job.hinted = true;
        job.lookahead?.();
      }
    }
  }

  /** Decodes and validates now, so a bad request is refused at once rather than when its turn comes. */
  private prepare(f: Frame, key: number): Job {
    const base = { id: f.requestId, type: f.type, key, stop: undefined, done: 0 };
    const cancelledError = (reason: StopReason): Reply => errorReply(ErrCode.CANCELLED, `stopped by ${reason}`);
    switch (f.type) {
      case MsgType.PROGRAM: {
        const req = decodeProgramRequest(f.payload);
        this.checkRegion(req.region);
        const id = this.backend.identity;
        for (let i = 0; i < req.targetsUs.length; i++) {
          const t = req.targetsUs[i] as number;
          if (!(t >= id.gMinUs && t <= id.gMaxUs)) refuse(ErrCode.OUT_OF_RANGE, `target[${i}] = ${t} uS outside ${id.gMinUs}..${id.gMaxUs} uS`, Math.min(i, 0xffff));
        }
        const n = req.targetsUs.length;
        this.fitsReply(8 + 8 * n);
        const toleranceUs = this.budget(req.toleranceUs, 'toleranceUs');
        const maxPulses = this.budget(req.maxPulses, 'maxPulses');
        const maxIterations = this.budget(req.maxIterations, 'maxIterations');
        const notAttempted = (outcome: OutcomeName): Reply =>
          ok(encodeProgramReply({ outcome, totalPulses: 0, finalUs: new Float32Array(n), pulses: new Uint16Array(n), status: new Uint8Array(n).fill(CellStatus.NOT_ATTEMPTED) }));
        return {
          ...base,
          total: n,
          dropped: notAttempted,
          run: async (ctx, job) => {
            const r = await this.backend.program({ region: req.region, targetsUs: req.targetsUs, toleranceUs, maxPulses, maxIterations, config: this.config }, ctx);
            this.bump('pulses', r.totalPulses);
            const skipped = r.status.some((s) => s === CellStatus.NOT_ATTEMPTED);
            const outcome: OutcomeName = job.stop && skipped ? job.stop : 'COMPLETE';
            return ok(encodeProgramReply({ outcome, totalPulses: r.totalPulses, finalUs: r.finalUs, pulses: r.pulses, status: r.status }));
          },
        };
      }
      case MsgType.READ_CELLS: {
        const req = decodeReadCellsRequest(f.payload);
        this.checkRegion(req.region);
        const n = req.region.rows * req.region.cols;
        this.fitsReply(4 + 4 * n);
        const averages = req.averages === 0 ? this.config.readAverages : req.averages;
        const [lo, hi] = SAFE_LIMITS.readAverages;
        if (averages < lo || averages > hi) refuse(ErrCode.LIMIT, `averages = ${averages} outside ${lo}..${hi}`, CONFIG_FIELDS.indexOf('readAverages'));
        return {
          ...base,
          total: n,
          dropped: cancelledError,
          run: async (ctx, job) => {
            const values = await this.backend.readCells(req.region, averages, this.config, ctx);
            if (job.stop) return cancelledError(job.stop);
            return ok(encodeReadCellsReply({ averages, valuesUs: values }));
          },
        };
      }
      case MsgType.MVM: {
        const mvm = this.backend.mvm?.bind(this.backend);
        if (!mvm) return refuse(ErrCode.UNSUPPORTED, 'this device has no MVM');
        const req = decodeMvmRequest(f.payload);
        this.checkRegion(req.region);
        this.fitsReply(4 + 2 * req.inputBits * req.region.cols);
        return {
          ...base,
          total: req.inputBits,
          dropped: cancelledError,
          run: async (ctx, job) => {
            const codes = await mvm(req, this.config, ctx);
            if (job.stop) return cancelledError(job.stop);
            return ok(encodeMvmReply({ cols: req.region.cols, planes: req.inputBits, adcBits: this.backend.identity.adcBits, codes }));
          },
        };
      }
      case MsgType.LOAD_NETWORK: {
        if (!this.backend.infer) return refuse(ErrCode.UNSUPPORTED, 'this device cannot run networks');
        const chunk = decodeLoadNetworkChunk(f.payload);
        // Progress counts document bytes: those received before this chunk, of the whole document.
        return { ...base, done: chunk.offset, total: chunk.totalLength, dropped: cancelledError, run: async () => this.loadChunk(chunk) };
      }
      case MsgType.INFER: {
        const infer = this.backend.infer?.bind(this.backend);
        if (!infer) return refuse(ErrCode.UNSUPPORTED, 'this device cannot run networks');
        const req = decodeInferRequest(f.payload);
        const net = this.networks.get(req.networkId);
        if (!net) return refuse(ErrCode.NO_NETWORK, `no network 0x${req.networkId.toString(16)} is loaded`);
        if (req.shape.join('x') !== net.input.join('x')) refuse(ErrCode.BAD_LENGTH, `images are ${req.shape.join('x')} but the network takes ${net.input.join('x')}`);
        this.fitsReply(4 + 4 * req.count * net.classes);
        const inferQueued = this.backend.inferQueued?.bind(this.backend);
        return {
          ...base,
          total: req.count,
          dropped: cancelledError,
          ...(inferQueued ? { lookahead: () => inferQueued(net, req) } : {}),
          run: async (ctx, job) => {
            const logits = await infer(net, req, ctx);
            if (job.stop) return cancelledError(job.stop);
            return ok(encodeInferReply({ count: req.count, classes: net.classes, logits }));
          },
        };
      }
      default:
        return refuse(ErrCode.UNKNOWN_TYPE, `0x${f.type.toString(16)} is not an operation`);
    }
  }

  private loadChunk(c: { networkId: number; totalLength: number; offset: number; data: Uint8Array }): Reply {
    if (c.offset === 0) {
      if (c.totalLength > this.maxNetworkBytes) refuse(ErrCode.TOO_LARGE, `network document of ${c.totalLength} bytes (max ${this.maxNetworkBytes})`);
      this.upload = { networkId: c.networkId, total: c.totalLength, buf: new Uint8Array(c.totalLength), received: 0 };
    }
    const u = this.upload;
    if (!u || u.networkId !== c.networkId || u.total !== c.totalLength) return refuse(ErrCode.OUT_OF_RANGE, 'chunk of a network upload that was not started (send offset 0 first)');
    if (c.offset !== u.received) refuse(ErrCode.OUT_OF_RANGE, `chunk at offset ${c.offset} but ${u.received} bytes received so far`);
    if (u.received + c.data.length > u.total) refuse(ErrCode.OUT_OF_RANGE, 'chunk runs past the announced length');
    u.buf.set(c.data, u.received);
    u.received += c.data.length;
    if (u.received < u.total) return ok(encodeLoadNetworkReply({ received: u.received, complete: false, layers: 0 }));
    this.upload = undefined;
    if (crc32(u.buf) !== u.networkId) refuse(ErrCode.BAD_NETWORK, 'document CRC-32 does not match the network id');
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(u.buf));
    } catch (err) {
      refuse(ErrCode.BAD_NETWORK, `not valid UTF-8 JSON (${(err as Error).message})`);
    }
    const parsed = NetworkProgramSchema.safeParse(json);
    if (!parsed.success) return refuse(ErrCode.BAD_NETWORK, formatZodIssues(parsed.error.issues));
    const fit = checkPlacementsFit(parsed.data, this.backend.identity);
    if (fit) refuse(ErrCode.BAD_NETWORK, fit);
    this.networks.set(u.networkId, parsed.data);
    while (this.networks.size > 4) {
      const oldest = this.networks.keys().next().value;
      if (oldest === undefined) break;
      this.networks.delete(oldest);
    }
    this.log(EventCode.NETWORK_LOADED, u.networkId, parsed.data.layers.length);
    return ok(encodeLoadNetworkReply({ received: u.received, complete: true, layers: parsed.data.layers.length }));
  }

  private stopAll(reason: StopReason): void {
    if (this.running) this.running.stop ??= reason;
    for (const job of this.queue.splice(0)) this.finish(job.id, job.type, job.key, job.dropped(reason));
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (let job = this.queue.shift(); job; job = this.queue.shift()) {
        this.running = job;
        this.log(EventCode.OP_START, job.id, job.type);
        let lastProgress = this.now();
        let lastYield = this.now();
        const current = job;
        const ctx: OperationContext = {
          get cancelled() {
            return current.stop !== undefined;
          },
          progress: (done, total) => {
            current.done = done;
            current.total = total;
            const t = this.now();
            if (t - lastProgress >= this.progressIntervalMs) {
              lastProgress = t;
              this.send(current.id, current.type, Flag.PROGRESS, encodeProgress({ done, total }));
            }
          },
          checkpoint: async () => {
            const t = this.now();
            if (t - lastYield >= 2) {
              lastYield = t;
              await new Promise<void>((r) => setImmediate(r));
            }
            // A long step between checkpoints still keeps the host's deadline alive.
            if (this.now() - lastProgress >= this.progressIntervalMs) ctx.progress(current.done, current.total);
          },
        };
        let reply: Reply;
        try {
          const running = job.run(ctx, job);
          // After the job has started (an INFER has taken its seed and start time), so the
          // INFERs queued behind it start from where it will end.
          this.hintLookahead();
          reply = await running;
        } catch (err) {
          reply = toErrorReply(err);
        }
        this.running = undefined;
        this.log(EventCode.OP_DONE, job.id, job.type);
        this.finish(job.id, job.type, job.key, reply);
        // Let frames that arrived during the job (CANCEL of a queued one, PING) be handled in order.
        await new Promise<void>((r) => setImmediate(r));
      }
    } finally {
      this.pumping = false;
    }
  }
}

function ok(payload: Uint8Array): Reply {
  return { flags: 0, payload };
}

function errorReply(code: number, message: string, arg = 0): Reply {
  return { flags: Flag.ERROR, payload: encodeErrorBody({ code, arg: arg & 0xffff, message }) };
}

function toErrorReply(err: unknown): Reply {
  if (err instanceof DeviceRefusal) return errorReply(err.code, err.message, err.arg);
  if (err instanceof LinkError && err.code === 'PROTOCOL') return errorReply(ErrCode.BAD_LENGTH, err.describe());
  return errorReply(ErrCode.INTERNAL, err instanceof Error ? err.message : String(err));
}

function expectEmpty(p: Uint8Array): void {
  if (p.length !== 0) refuse(ErrCode.BAD_LENGTH, `expected an empty payload, got ${p.length} bytes`);
}
