import { performance } from 'node:perf_hooks';
import { InputError, LinkError } from '../common/errors.js';
import { parseWith } from '../common/validate.js';
import { DeviceStateUnknownError, type ChipLink, type DeviceStateUnknown, type InferResult, type LinkEvent, type LinkStats, type OperationOptions, type ProgramOptions, type ProgramResult, type ReadOptions } from './chip-link.js';
import { crc32 } from './crc32.js';
import { FrameDecoder, encodeFrame, type Frame, type FrameErrorKind } from './frame.js';
import {
  decodeConfig,
  decodeCounters,
  decodeErrorBody,
  decodeEventsReply,
  decodeHelloReply,
  decodeInferReply,
  decodeLoadNetworkReply,
  decodeMvmReply,
  decodeProgramReply,
  decodeProgress,
  decodeReadCellsReply,
  decodeU32,
  decodeU64,
  decodeU8,
  DeviceConfigSchema,
  encodeConfig,
  encodeEventsRequest,
  encodeHelloRequest,
  encodeInferRequest,
  encodeLoadNetworkChunk,
  encodeMvmRequest,
  encodeProgramRequest,
  encodeReadCellsRequest,
  encodeU16,
  encodeU32,
  encodeU8,
  INFER_REQUEST_HEADER,
  LOAD_NETWORK_HEADER,
  maxProgramCells,
  maxReadCells,
  planeBytes,
  SAFE_LIMITS,
  type DeviceConfig,
  type DeviceCounters,
  type DeviceInfo,
  type EventsReply,
  type MvmReply,
  type Region,
} from './messages.js';
import { NetworkProgramSchema, type NetworkProgramInput } from './network-program.js';
import {
  ARRAY_CHANGING_TYPES,
  CELL_STATUS_NAMES,
  CellStatus,
  Capability,
  ErrCode,
  errCodeName,
  Flag,
  MAX_PAYLOAD_LIMIT,
  MIN_HOST_MAX_PAYLOAD,
  MsgType,
  msgTypeName,
  PROTOCOL_MAJOR,
  PROTOCOL_MINOR,
  Timing,
  type CellStatusName,
  type OutcomeName,
} from './protocol.js';
import type { ByteChannel, Transport } from './transport.js';

export interface MacroClientOptions {
  /** Deadline per attempt without any reply or progress (default 500 ms). */
  readonly timeoutMs?: number;
  /** Retransmissions with the same request id before TIMEOUT (default 3). */
  readonly retries?: number;
  /** Requests in flight at once; also capped by the device's advertised window (default 4). */
  readonly window?: number;
  /** Reconnect after an unplug (default Timing.RECONNECT_ATTEMPTS attempts, Timing.RECONNECT_DELAY_MS apart); false to fail at once. */
  readonly reconnect?: false | { readonly attempts?: number; readonly delayMs?: number };
  /**
   * Largest reply payload this host accepts (HELLO host_max_payload, default 65535, at least 128):
   * the device never sends more, blocks are sized to fit, and longer frames are dropped as oversize.
   */
  readonly hostMaxPayload?: number;
}

/** A request waiting for a slot in the window. */
interface Waiter {
  readonly type: number;
  wake(): void;
  fail(err: Error): void;
}

interface Pending {
  readonly id: number;
  readonly type: number;
  readonly payload: Uint8Array;
  readonly timeoutMs: number;
  readonly onProgress: ((done: number, total: number) => void) | undefined;
  /** HELLO and CANCEL may go out while the link is resuming or the window is full. */
  readonly control: boolean;
  attempts: number;
  sent: boolean;
  timer: NodeJS.Timeout | undefined;
  resolve(payload: Uint8Array): void;
  reject(err: Error): void;
}

type Gate = 'down' | 'resuming' | 'open';

function emptyStats(): LinkStats {
  return {
    txFrames: 0,
    txBytes: 0,
    txPayloadBytes: 0,
    rxFrames: 0,
    rxBytes: 0,
    rxPayloadBytes: 0,
    retransmits: 0,
    timeouts: 0,
    crcErrors: 0,
    cobsErrors: 0,
    shortFrames: 0,
    oversizeFrames: 0,
    badHeader: 0,
    badVersion: 0,
    unmatchedReplies: 0,
    duplicateReplies: 0,
    seqGaps: 0,
    reconnects: 0,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The host side of the protocol over any Transport: request/response matching by request id,
 * deadlines, retransmission with the same id, a window of requests in flight, CANCEL through
 * AbortSignal, progress callbacks, reconnect with a HELLO that detects reboots.
 */
export class MacroClient implements ChipLink {
  info: DeviceInfo | undefined;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly windowLimit: number;
  private readonly reconnectAttempts: number;
  private readonly reconnectDelayMs: number;
  private readonly counters = emptyStats();
  private readonly decoder: FrameDecoder;
  private readonly listeners = new Set<(e: LinkEvent) => void>();
  private readonly pending = new Map<number, Pending>();
  private readonly waiters: Waiter[] = [];
  private readonly networkClasses = new Map<number, number>();
  private channel: ByteChannel | undefined;
  private gate: Gate = 'down';
  private generation = 0;
  private closed = false;
  private reconnecting: Promise<void> | undefined;
  private inFlight = 0;
  private nextId = 1;
  private txSeq = 0;
  private rxSeq: number | undefined;
  private lastBootId: number | undefined;
  /** Bumped at every detected reboot: a request issued before it can no longer be sent. */
  private bootEpoch = 0;
  private unknownState: DeviceStateUnknown | undefined;
  private readonly hostMaxPayload: number;

  constructor(
    private readonly transport: Transport,
    options: MacroClientOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? Timing.HOST_TIMEOUT_MS;
    this.retries = options.retries ?? Timing.HOST_RETRIES;
    this.windowLimit = Math.max(1, options.window ?? Timing.DEVICE_WINDOW);
    this.reconnectAttempts = options.reconnect === false ? 0 : (options.reconnect?.attempts ?? Timing.RECONNECT_ATTEMPTS);
    this.reconnectDelayMs = options.reconnect === false ? 0 : (options.reconnect?.delayMs ?? Timing.RECONNECT_DELAY_MS);
    this.hostMaxPayload = options.hostMaxPayload ?? MAX_PAYLOAD_LIMIT;
    if (!Number.isInteger(this.hostMaxPayload) || this.hostMaxPayload < MIN_HOST_MAX_PAYLOAD || this.hostMaxPayload > MAX_PAYLOAD_LIMIT) {
      throw new InputError('INVALID_INPUT', `hostMaxPayload ${this.hostMaxPayload} outside ${MIN_HOST_MAX_PAYLOAD}..${MAX_PAYLOAD_LIMIT}`, { where: 'MacroClient options' });
    }
    this.decoder = new FrameDecoder({
      maxPayload: this.hostMaxPayload,
      onFrame: (f) => this.onFrame(f),
      onError: (kind, f) => this.onBadFrame(kind, f),
    });
  }

  get description(): string {
    return this.transport.description;
  }

  get stateUnknown(): DeviceStateUnknown | undefined {
    return this.unknownState;
  }

  acknowledgeStateReadBack(bootId: number): void {
    const u = this.unknownState;
    if (!u) {
      if (this.lastBootId !== undefined && bootId !== this.lastBootId) {
        throw new InputError('INVALID_INPUT', `boot id ${hex(bootId)} is not the device's current boot id ${hex(this.lastBootId)}`, { where: 'acknowledgeStateReadBack' });
      }
      return;
    }
    if (bootId !== u.bootId) {
      // A second reboot came after the read-back the caller means: that read-back is stale too.
      throw new InputError('INVALID_INPUT', `boot id ${hex(bootId)} is not the unacknowledged reboot (device now runs boot ${hex(u.bootId)}); read the cells back again`, {
        where: 'acknowledgeStateReadBack',
      });
    }
    this.unknownState = undefined;
  }

  /** Throws while a reboot has not been acknowledged; nothing is sent then. */
  private requireKnownState(type: number): void {
    const u = this.unknownState;
    if (u && ARRAY_CHANGING_TYPES.has(type)) throw new DeviceStateUnknownError(msgTypeName(type), u, this.description);
  }

  /**
   * A new boot id: the device lost its reply cache, its queue and possibly the cells of the block it
   * was pulsing. Every request issued before now fails (in flight, or still waiting for a window
   * slot, so no later block of the same PROGRAM reaches the new boot), and array-changing requests
   * are refused until the caller acknowledges a read-back.
   */
  private onReboot(previous: number, bootId: number): void {
    this.bootEpoch++;
    this.unknownState = { previousBootId: this.unknownState?.previousBootId ?? previous, bootId };
    const make = (type: number, was: string): LinkError =>
      new LinkError('DISCONNECTED', `device rebooted (boot id ${hex(previous)} -> ${hex(bootId)}) while ${msgTypeName(type)} was ${was}; read cell state back before continuing`, {
        where: this.description,
        details: { rebooted: true, previousBootId: previous, bootId },
      });
    this.rejectAll((p) => make(p.type, 'in flight'));
    for (const w of this.waiters.splice(0)) w.fail(make(w.type, 'waiting for a window slot'));
    this.emit({ type: 'reboot', previousBootId: previous, bootId });
  }

  // ------------------------------------------------------------------ connection

  async connect(): Promise<DeviceInfo> {
    this.closed = false;
    await this.openChannel();
    try {
      const info = await this.helloOnce();
      this.gate = 'open';
      for (const p of [...this.pending.values()]) if (!p.timer) this.transmit(p);
      return info;
    } catch (err) {
      await this.dropChannel();
      throw err;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.gate = 'down';
    this.rejectAll(() => new LinkError('DISCONNECTED', 'link closed', { where: this.description }));
    await this.dropChannel();
  }

  on(listener: (event: LinkEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stats(): LinkStats {
    const d = this.decoder.stats;
    return {
      ...this.counters,
      rxFrames: d.frames,
      rxBytes: d.bytes,
      crcErrors: d.crcErrors,
      cobsErrors: d.cobsErrors,
      shortFrames: d.shortFrames,
      oversizeFrames: d.oversizeFrames,
      badHeader: d.badHeader + this.counters.badHeader,
      badVersion: d.badVersion,
    };
  }

  private emit(e: LinkEvent): void {
    for (const l of this.listeners) l(e);
  }

  private async openChannel(): Promise<void> {
    const gen = ++this.generation;
    this.gate = 'resuming';
    this.decoder.clear();
    this.rxSeq = undefined;
    const channel = await this.transport.open({
      onData: (bytes) => {
        if (gen === this.generation) this.decoder.push(bytes);
      },
      onClose: (err) => {
        if (gen === this.generation) this.lostChannel(err?.message ?? 'port closed');
      },
    });
    this.channel = channel;
    // A lone delimiter ends whatever partial frame the device may hold from before.
    await channel.write(new Uint8Array([0])).catch(() => undefined);
  }

  private async dropChannel(): Promise<void> {
    const ch = this.channel;
    this.channel = undefined;
    this.generation++;
    if (ch) await ch.close();
  }

  private lostChannel(reason: string): void {
    if (this.gate === 'down' && !this.channel) return;
    this.generation++;
    const ch = this.channel;
    this.channel = undefined;
    this.gate = 'down';
    void ch?.close();
    for (const p of this.pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.timer = undefined;
    }
    this.emit({ type: 'disconnect', reason });
    if (this.closed) return;
    if (this.reconnectAttempts > 0 && this.info) {
      this.reconnecting ??= this.reconnectLoop(reason).finally(() => (this.reconnecting = undefined));
    } else {
      this.rejectAll(() => new LinkError('DISCONNECTED', `connection lost: ${reason}`, { where: this.description }));
    }
  }

  private async reconnectLoop(reason: string): Promise<void> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.reconnectAttempts; attempt++) {
      await sleep(this.reconnectDelayMs);
      if (this.closed) return;
      try {
        await this.openChannel();
        const previous = this.lastBootId;
        // On a new boot id, helloOnce fails everything issued before the reboot (onReboot).
        const info = await this.helloOnce();
        this.counters.reconnects++;
        const rebooted = previous !== undefined && previous !== info.bootId;
        this.emit({ type: 'reconnect', bootId: info.bootId, rebooted });
        this.gate = 'open';
        for (const p of [...this.pending.values()]) if (!p.timer) this.transmit(p);
        return;
      } catch (err) {
        lastError = err;
        await this.dropChannel();
        this.gate = 'down';
      }
    }
    const why = lastError instanceof Error ? lastError.message : String(lastError);
    this.rejectAll(() => new LinkError('DISCONNECTED', `connection lost (${reason}) and ${this.reconnectAttempts} reconnect attempts failed (last: ${why})`, { where: this.description }));
  }

  private rejectAll(make: (p: Pending) => Error): void {
    for (const p of [...this.pending.values()]) this.settle(p, make(p));
  }

  // ------------------------------------------------------------------ requests

  /** Requests in flight at once: min(own window, the device's advertised window). */
  private windowSize(): number {
    return Math.min(this.windowLimit, this.info?.window || this.windowLimit);
  }

  private async acquire(type: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.inFlight < this.windowSize() && this.waiters.length === 0) {
      this.inFlight++;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        type,
        wake: () => {
          signal?.removeEventListener('abort', onAbort);
          this.inFlight++;
          resolve();
        },
        fail: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new LinkError('CANCELLED', 'cancelled before it was sent', { where: this.description }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private release(): void {
    this.inFlight--;
    while (this.inFlight < this.windowSize() && this.waiters.length > 0) this.waiters.shift()?.wake();
  }

  private allocId(): number {
    for (let i = 0; i < 0xffff; i++) {
      const id = this.nextId;
      this.nextId = this.nextId >= 0xffff ? 1 : this.nextId + 1;
      if (!this.pending.has(id)) return id;
    }
    throw new LinkError('PROTOCOL', 'no free request id', { where: this.description });
  }

  /** Sends one request and resolves with its final reply payload. */
  private async request(
    type: number,
    payload: Uint8Array,
    opts: { timeoutMs?: number | undefined; onProgress?: ((d: number, t: number) => void) | undefined; signal?: AbortSignal | undefined; control?: boolean } = {},
  ): Promise<Uint8Array> {
    if (this.closed || (!this.channel && !this.reconnecting)) {
      throw new LinkError('DISCONNECTED', 'link is not connected', { where: this.description });
    }
    if (opts.signal?.aborted) throw new LinkError('CANCELLED', 'cancelled before it was sent', { where: this.description });
    this.requireKnownState(type);
    const control = opts.control ?? false;
    const epoch = this.bootEpoch;
    if (!control) await this.acquire(type, opts.signal);
    try {
      if (epoch !== this.bootEpoch) {
        // Woken after a reboot it was issued before (onReboot fails waiters; this is the belt to those braces).
        throw new LinkError('DISCONNECTED', `device rebooted before ${msgTypeName(type)} could be sent; read cell state back before continuing`, {
          where: this.description,
          details: { rebooted: true, bootId: this.lastBootId },
        });
      }
      return await new Promise<Uint8Array>((resolve, reject) => {
        const p: Pending = {
          id: this.allocId(),
          type,
          payload,
          timeoutMs: opts.timeoutMs ?? this.timeoutMs,
          onProgress: opts.onProgress,
          control,
          attempts: 0,
          sent: false,
          timer: undefined,
          resolve,
          reject,
        };
        const signal = opts.signal;
        if (signal) {
          const onAbort = (): void => {
            if (!this.pending.has(p.id)) return;
            if (!p.sent) this.settle(p, new LinkError('CANCELLED', 'cancelled before it was sent', { where: this.description }));
            else void this.cancelRemote(p.id);
          };
          signal.addEventListener('abort', onAbort, { once: true });
          const done = (): void => signal.removeEventListener('abort', onAbort);
          p.resolve = (v) => (done(), resolve(v));
          p.reject = (e) => (done(), reject(e));
        }
        this.pending.set(p.id, p);
        this.transmit(p);
      });
    } finally {
      if (!control) this.release();
    }
  }

  private transmit(p: Pending): void {
    if (!this.pending.has(p.id)) return;
    const ch = this.channel;
    // While down or resuming, requests wait; the reconnect loop sends them once HELLO checked the boot id.
    if (!ch || this.gate === 'down' || (this.gate === 'resuming' && !p.control)) return;
    const wire = encodeFrame({ flags: 0, type: p.type, seq: this.txSeq, requestId: p.id, payload: p.payload });
    this.txSeq = (this.txSeq + 1) & 0xff;
    this.counters.txFrames++;
    this.counters.txBytes += wire.length;
    this.counters.txPayloadBytes += p.payload.length;
    p.sent = true;
    const gen = this.generation;
    ch.write(wire).catch((err: unknown) => {
      if (gen === this.generation) this.lostChannel(err instanceof Error ? err.message : String(err));
    });
    this.arm(p);
  }

  private arm(p: Pending): void {
    if (p.timer) clearTimeout(p.timer);
    p.timer = setTimeout(() => this.onTimeout(p), p.timeoutMs);
  }

  private onTimeout(p: Pending): void {
    p.timer = undefined;
    if (!this.pending.has(p.id)) return;
    if (p.attempts < this.retries) {
      p.attempts++;
      this.counters.retransmits++;
      this.transmit(p);
      return;
    }
    this.counters.timeouts++;
    const tries = p.attempts + 1;
    this.settle(
      p,
      new LinkError(
        'TIMEOUT',
        `device silent: no reply to ${msgTypeName(p.type)} (request ${p.id}) after ${tries} attempts of ${p.timeoutMs} ms; check that the device is powered, the cable, the baud rate and that it runs cimbench firmware`,
        { where: this.description, details: { type: msgTypeName(p.type), requestId: p.id, attempts: tries } },
      ),
    );
  }

  private settle(p: Pending, result: Uint8Array | Error): void {
    if (!this.pending.delete(p.id)) return;
    if (p.timer) clearTimeout(p.timer);
    p.timer = undefined;
    if (result instanceof Error) p.reject(result);
    else p.resolve(result);
  }

  private async cancelRemote(targetId: number): Promise<void> {
    try {
      await this.request(MsgType.CANCEL, encodeU16(targetId), { control: true });
    } catch {
      // The target's own deadline reports what happened to it.
    }
  }

  private onBadFrame(kind: FrameErrorKind, frame?: Frame): void {
    this.emit({ type: 'bad-frame', kind });
    if (kind === 'version' && frame) {
      const p = this.pending.get(frame.requestId);
      if (p) {
        this.settle(
          p,
          new LinkError('PROTOCOL', `device speaks protocol v${frame.version}, cimbench speaks v${PROTOCOL_MAJOR}; update the firmware or cimbench`, {
            where: this.description,
            details: { deviceVersion: frame.version, hostVersion: PROTOCOL_MAJOR },
          }),
        );
      }
    }
  }

  private onFrame(f: Frame): void {
    if (this.rxSeq !== undefined && f.seq !== this.rxSeq) this.counters.seqGaps += (f.seq - this.rxSeq) & 0xff;
    this.rxSeq = (f.seq + 1) & 0xff;
    this.counters.rxPayloadBytes += f.payload.length;
    if ((f.flags & Flag.RESPONSE) === 0) {
      this.counters.badHeader++;
      return;
    }
    const p = this.pending.get(f.requestId);
    if (!p || p.type !== f.type) {
      this.counters.unmatchedReplies++;
      return;
    }
    if (f.flags & Flag.DUPLICATE) this.counters.duplicateReplies++;
    if (f.flags & Flag.ERROR) {
      let body;
      try {
        body = decodeErrorBody(f.payload);
      } catch (err) {
        this.settle(p, err as Error);
        return;
      }
      if (body.code === ErrCode.BUSY && p.attempts < this.retries) {
        // The device queue was full: try again later with the same id.
        p.attempts++;
        if (p.timer) clearTimeout(p.timer);
        p.timer = setTimeout(() => {
          p.timer = undefined;
          this.transmit(p);
        }, Math.max(5, p.timeoutMs / 4));
        return;
      }
      this.settle(p, this.deviceError(p, body.code, body.arg, body.message));
      return;
    }
    if (f.flags & Flag.PROGRESS) {
      // The device is alive and working: restart the deadline and the retry budget.
      p.attempts = 0;
      this.arm(p);
      if (p.onProgress) {
        try {
          const pr = decodeProgress(f.payload);
          p.onProgress(pr.done, pr.total);
        } catch {
          this.counters.badHeader++;
        }
      }
      return;
    }
    this.settle(p, f.payload);
  }

  private deviceError(p: Pending, code: number, arg: number, message: string): LinkError {
    const name = errCodeName(code);
    const details = { deviceCode: name, arg, type: msgTypeName(p.type), requestId: p.id };
    if (code === ErrCode.CANCELLED) return new LinkError('CANCELLED', `${msgTypeName(p.type)} cancelled${message ? `: ${message}` : ''}`, { where: this.description, details });
    if (code === ErrCode.BAD_VERSION) {
      return new LinkError('PROTOCOL', `device speaks protocol v${arg}, cimbench speaks v${PROTOCOL_MAJOR}; update the firmware or cimbench`, { where: this.description, details });
    }
    return new LinkError('DEVICE_ERROR', `${msgTypeName(p.type)} refused: ${name}${message ? ` (${message})` : ''}`, { where: this.description, details });
  }

  /** Decodes a reply, turning a decoder failure into a PROTOCOL error that names the link. */
  private decode<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof LinkError) {
        err.context.unshift(this.description);
        throw err;
      }
      throw new LinkError('PROTOCOL', err instanceof Error ? err.message : String(err), { where: this.description, cause: err });
    }
  }

  // ------------------------------------------------------------------ commands

  private async helloOnce(): Promise<DeviceInfo> {
    const payload = encodeHelloRequest({ protocolMajor: PROTOCOL_MAJOR, protocolMinor: PROTOCOL_MINOR, hostMaxPayload: this.hostMaxPayload });
    const reply = await this.request(MsgType.HELLO, payload, { control: true });
    const info = this.decode(() => decodeHelloReply(reply));
    if (info.protocolMajor !== PROTOCOL_MAJOR) {
      throw new LinkError('PROTOCOL', `device speaks protocol v${info.protocolMajor}.${info.protocolMinor}, cimbench speaks v${PROTOCOL_MAJOR}.${PROTOCOL_MINOR}`, {
        where: this.description,
      });
    }
    if (info.maxPayload < 64) throw new LinkError('PROTOCOL', `device advertises a max payload of ${info.maxPayload} bytes (at least 64 needed)`, { where: this.description });
    const previous = this.lastBootId;
    this.info = info;
    this.lastBootId = info.bootId;
    if (previous !== undefined && previous !== info.bootId) this.onReboot(previous, info.bootId);
    return info;
  }

  hello(): Promise<DeviceInfo> {
    return this.helloOnce();
  }

  async ping(data: Uint8Array = new Uint8Array(8)): Promise<number> {
    const t0 = performance.now();
    const reply = await this.request(MsgType.PING, data);
    const ms = performance.now() - t0;
    if (reply.length !== data.length || reply.some((b, i) => b !== data[i])) {
      throw new LinkError('PROTOCOL', 'PING echo differs from what was sent', { where: this.description });
    }
    return ms;
  }

  async getConfig(): Promise<DeviceConfig> {
    const reply = await this.request(MsgType.GET_CONFIG, new Uint8Array(0));
    return this.decode(() => decodeConfig(reply, 'GET_CONFIG reply'));
  }

  async setConfig(config: DeviceConfig): Promise<DeviceConfig> {
    const checked = parseWith(DeviceConfigSchema, config, 'device config');
    const reply = await this.request(MsgType.SET_CONFIG, encodeConfig(checked));
    return this.decode(() => decodeConfig(reply, 'SET_CONFIG reply'));
  }

  /** Largest reply the device may send us: its own limit and ours. */
  private replyLimit(info: DeviceInfo): number {
    return Math.min(info.maxPayload, this.hostMaxPayload);
  }

  private requireInfo(): DeviceInfo {
    if (!this.info) throw new LinkError('DISCONNECTED', 'not connected (call connect() first)', { where: this.description });
    return this.info;
  }

  private checkRegion(region: Region, what: string): void {
    const info = this.requireInfo();
    const ok =
      [region.array, region.row, region.col, region.rows, region.cols].every((v) => Number.isInteger(v) && v >= 0) &&
      region.rows > 0 &&
      region.cols > 0 &&
      region.array < info.arrays &&
      region.row + region.rows <= info.rows &&
      region.col + region.cols <= info.cols;
    if (!ok) {
      throw new InputError('INVALID_INPUT', `region ${region.rows}x${region.cols} at (${region.row}, ${region.col}) of array ${region.array} is outside the chip (${info.arrays} arrays of ${info.rows}x${info.cols})`, {
        where: what,
      });
    }
  }

  private needCapability(bit: number, name: string): void {
    const info = this.requireInfo();
    if ((info.capabilities & bit) === 0) {
      throw new LinkError('DEVICE_ERROR', `the device does not support ${name}`, { where: this.description, details: { deviceCode: 'UNSUPPORTED' } });
    }
  }

  async program(region: Region, targetsUs: Float32Array, options: ProgramOptions = {}): Promise<ProgramResult> {
    this.checkRegion(region, 'program');
    const info = this.requireInfo();
    this.requireKnownState(MsgType.PROGRAM);
    const n = region.rows * region.cols;
    if (targetsUs.length !== n) throw new InputError('INVALID_INPUT', `${targetsUs.length} targets for ${n} cells`, { where: 'program' });
    for (let i = 0; i < n; i++) {
      const t = targetsUs[i] as number;
      if (!(t >= info.gMinUs && t <= info.gMaxUs)) {
        throw new InputError('INVALID_INPUT', `target ${t} uS outside the device range ${info.gMinUs}..${info.gMaxUs} uS`, { where: `program targets[${i}]` });
      }
    }
    const budget = (v: number | undefined, field: 'toleranceUs' | 'maxPulses' | 'maxIterations'): number => {
      if (v === undefined) return 0;
      const [lo, hi] = SAFE_LIMITS[field];
      if (!(v >= lo && v <= hi)) throw new InputError('INVALID_INPUT', `${v} outside the safe limits ${lo}..${hi}`, { where: `program ${field}` });
      return v;
    };
    const toleranceUs = budget(options.toleranceUs, 'toleranceUs');
    const maxPulses = budget(options.maxPulses, 'maxPulses');
    const maxIterations = budget(options.maxIterations, 'maxIterations');

    const blocks = tileRegion(region, maxProgramCells(this.replyLimit(info)));
    const finalUs = new Float32Array(n);
    const pulses = new Uint16Array(n);
    const status = new Uint8Array(n).fill(CellStatus.NOT_ATTEMPTED);
    const blockDone = new Float64Array(blocks.length);
    const report = (): void => options.onProgress?.(blockDone.reduce((a, b) => a + b, 0), n);
    let totalPulses = 0;
    let outcome: OutcomeName = 'COMPLETE';
    const results = await Promise.allSettled(
      blocks.map(async (b, bi) => {
        const sub = gather(targetsUs, region, b);
        const reply = await this.request(MsgType.PROGRAM, encodeProgramRequest({ region: b, maxPulses, maxIterations, toleranceUs, targetsUs: sub }), {
          signal: options.signal,
          timeoutMs: options.timeoutMs,
          onProgress: (done) => {
            blockDone[bi] = done;
            report();
          },
        });
        const r = this.decode(() => decodeProgramReply(reply));
        if (r.finalUs.length !== b.rows * b.cols) throw new LinkError('PROTOCOL', `PROGRAM reply has ${r.finalUs.length} cells for a block of ${b.rows * b.cols}`, { where: this.description });
        scatter(r.finalUs, finalUs, region, b);
        scatter(r.pulses, pulses, region, b);
        scatter(r.status, status, region, b);
        totalPulses += r.totalPulses;
        if (r.outcome !== 'COMPLETE' && outcome === 'COMPLETE') outcome = r.outcome;
        blockDone[bi] = b.rows * b.cols;
        report();
      }),
    );
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
    const hard = failures.find((e) => !(e instanceof LinkError && e.code === 'CANCELLED'));
    if (hard) {
      const done = results.filter((r) => r.status === 'fulfilled').length;
      const err = hard instanceof LinkError ? hard : new LinkError('PROTOCOL', String(hard), { cause: hard });
      // Blocks whose reply never came are in an unknown state: the caller must read them back.
      Object.assign(err, { details: { ...err.details, blocks: blocks.length, blocksDone: done } });
      throw err;
    }
    if (failures.length > 0 && outcome === 'COMPLETE') outcome = 'CANCELLED';
    return { outcome, finalUs, pulses, status, totalPulses, counts: countStatuses(status) };
  }

  async readCells(region: Region, options: ReadOptions = {}): Promise<Float32Array> {
    this.checkRegion(region, 'readCells');
    const info = this.requireInfo();
    const averages = options.averages ?? 0;
    const [lo, hi] = SAFE_LIMITS.readAverages;
    if (averages !== 0 && !(Number.isInteger(averages) && averages >= lo && averages <= hi)) {
      throw new InputError('INVALID_INPUT', `averages ${averages} outside ${lo}..${hi}`, { where: 'readCells' });
    }
    const n = region.rows * region.cols;
    const out = new Float32Array(n);
    const blocks = tileRegion(region, maxReadCells(this.replyLimit(info)));
    let done = 0;
    await Promise.all(
      blocks.map(async (b) => {
        const reply = await this.request(MsgType.READ_CELLS, encodeReadCellsRequest({ region: b, averages }), { signal: options.signal, timeoutMs: options.timeoutMs });
        const r = this.decode(() => decodeReadCellsReply(reply));
        if (r.valuesUs.length !== b.rows * b.cols) throw new LinkError('PROTOCOL', `READ_CELLS reply has ${r.valuesUs.length} values for ${b.rows * b.cols} cells`, { where: this.description });
        scatter(r.valuesUs, out, region, b);
        done += r.valuesUs.length;
        options.onProgress?.(done, n);
      }),
    );
    return out;
  }

  async mvm(region: Region, inputs: Uint32Array, inputBits: number, options: OperationOptions = {}): Promise<MvmReply> {
    this.needCapability(Capability.MVM, 'MVM');
    this.checkRegion(region, 'mvm');
    const info = this.requireInfo();
    if (!Number.isInteger(inputBits) || inputBits < 1 || inputBits > 16) throw new InputError('INVALID_INPUT', `inputBits ${inputBits} outside 1..16`, { where: 'mvm' });
    if (inputs.length !== region.rows) throw new InputError('INVALID_INPUT', `${inputs.length} inputs for ${region.rows} rows`, { where: 'mvm' });
    const req = 12 + inputBits * planeBytes(region.rows);
    const rep = 4 + 2 * inputBits * region.cols;
    if (req > info.maxPayload || rep > this.replyLimit(info)) {
      throw new InputError('INVALID_INPUT', `MVM of ${region.rows}x${region.cols} at ${inputBits} bits does not fit one payload (${req} B request, ${rep} B reply; limits ${info.maxPayload} and ${this.replyLimit(info)} B)`, { where: 'mvm' });
    }
    let payload: Uint8Array;
    try {
      payload = encodeMvmRequest({ region, inputBits, inputs });
    } catch (err) {
      throw new InputError('INVALID_INPUT', (err as Error).message, { where: 'mvm' });
    }
    const reply = await this.request(MsgType.MVM, payload, { signal: options.signal, timeoutMs: options.timeoutMs, onProgress: options.onProgress });
    const r = this.decode(() => decodeMvmReply(reply));
    if (r.cols !== region.cols || r.planes !== inputBits) throw new LinkError('PROTOCOL', `MVM reply is ${r.planes} planes x ${r.cols} cols`, { where: this.description });
    return r;
  }

  async loadNetwork(program: NetworkProgramInput, options: OperationOptions = {}): Promise<{ networkId: number; layers: number }> {
    this.needCapability(Capability.NETWORK, 'LOAD_NETWORK');
    const info = this.requireInfo();
    const parsed = parseWith(NetworkProgramSchema, program, 'network program');
    const doc = new TextEncoder().encode(JSON.stringify(parsed));
    const networkId = crc32(doc);
    const chunk = info.maxPayload - LOAD_NETWORK_HEADER;
    // Chunks go one at a time: the device appends them in order and a retransmitted chunk must not overtake.
    for (let offset = 0; ; offset += chunk) {
      const data = doc.subarray(offset, Math.min(doc.length, offset + chunk));
      const reply = await this.request(MsgType.LOAD_NETWORK, encodeLoadNetworkChunk({ networkId, totalLength: doc.length, offset, data }), {
        signal: options.signal,
        timeoutMs: options.timeoutMs,
      });
      const r = this.decode(() => decodeLoadNetworkReply(reply));
      options.onProgress?.(r.received, doc.length);
      if (offset + data.length >= doc.length) {
        if (!r.complete) throw new LinkError('PROTOCOL', `LOAD_NETWORK: device received ${r.received} of ${doc.length} bytes but did not complete`, { where: this.description });
        this.networkClasses.set(networkId, parsed.classes);
        return { networkId, layers: r.layers };
      }
    }
  }

  async infer(networkId: number, images: Uint8Array | Float32Array, shape: readonly [number, number, number], options: OperationOptions = {}): Promise<InferResult> {
    this.needCapability(Capability.NETWORK, 'INFER');
    const info = this.requireInfo();
    const per = shape[0] * shape[1] * shape[2];
    if (!(per > 0) || images.length % per !== 0) throw new InputError('INVALID_INPUT', `${images.length} values is not a whole number of ${shape.join('x')} images`, { where: 'infer' });
    const count = images.length / per;
    const bytesPer = per * (images instanceof Float32Array ? 4 : 1);
    const classes = this.networkClasses.get(networkId);
    let batch = Math.floor((info.maxPayload - INFER_REQUEST_HEADER) / bytesPer);
    if (classes !== undefined) batch = Math.min(batch, Math.floor((this.replyLimit(info) - 4) / (4 * classes)));
    else batch = Math.min(batch, 1);
    if (batch < 1) throw new InputError('INVALID_INPUT', `one ${shape.join('x')} image does not fit a ${info.maxPayload}-byte payload`, { where: 'infer' });
    const parts: Float32Array[] = [];
    let outClasses = classes ?? 0;
    let done = 0;
    const jobs: Array<Promise<void>> = [];
    for (let start = 0; start < count; start += batch) {
      const k = Math.min(batch, count - start);
      const slice = images.subarray(start * per, (start + k) * per);
      const idx = parts.length;
      parts.push(new Float32Array(0));
      jobs.push(
        this.request(MsgType.INFER, encodeInferRequest({ networkId, count: k, shape: [shape[0], shape[1], shape[2]], images: slice }), {
          signal: options.signal,
          timeoutMs: options.timeoutMs,
        }).then((reply) => {
          const r = this.decode(() => decodeInferReply(reply));
          if (r.count !== k) throw new LinkError('PROTOCOL', `INFER reply has ${r.count} images for ${k}`, { where: this.description });
          outClasses = r.classes;
          parts[idx] = r.logits;
          done += k;
          options.onProgress?.(done, count);
        }),
      );
    }
    await Promise.all(jobs);
    const logits = new Float32Array(count * outClasses);
    let at = 0;
    for (const p of parts) {
      logits.set(p, at);
      at += p.length;
    }
    return { count, classes: outClasses, logits };
  }

  async getCounters(): Promise<DeviceCounters> {
    const reply = await this.request(MsgType.GET_COUNTERS, new Uint8Array(0));
    return this.decode(() => decodeCounters(reply));
  }

  async getEvents(sinceSeq = 0, max = 64): Promise<EventsReply> {
    const reply = await this.request(MsgType.GET_EVENTS, encodeEventsRequest({ sinceSeq, max }));
    return this.decode(() => decodeEventsReply(reply));
  }

  async reset(): Promise<void> {
    const reply = await this.request(MsgType.RESET, new Uint8Array(0), { control: true });
    const bootId = this.decode(() => decodeU32(reply, 'RESET reply'));
    this.rxSeq = undefined;
    this.txSeq = 0;
    const previous = this.lastBootId;
    if (previous !== undefined && bootId !== previous) {
      this.lastBootId = bootId;
      this.onReboot(previous, bootId);
    }
  }

  async safeState(enter: boolean): Promise<boolean> {
    const reply = await this.request(MsgType.SAFE_STATE, encodeU8(enter ? 1 : 0), { control: true });
    return this.decode(() => decodeU8(reply, 'SAFE_STATE reply')) === 1;
  }

  async advanceClock(seconds: number): Promise<number> {
    this.needCapability(Capability.ADVANCE_CLOCK, 'ADVANCE_CLOCK (a test-only capability)');
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > 0xffffffff) throw new InputError('INVALID_INPUT', 'seconds must be an integer in 0..2^32-1', { where: 'advanceClock' });
    const reply = await this.request(MsgType.ADVANCE_CLOCK, encodeU32(seconds));
    return this.decode(() => decodeU64(reply, 'ADVANCE_CLOCK reply'));
  }
}

function hex(v: number | undefined): string {
  return v === undefined ? '?' : `0x${v.toString(16).padStart(8, '0')}`;
}

/** Splits a region into sub-rectangles of at most maxCells cells, row-major order. */
export function tileRegion(region: Region, maxCells: number): Region[] {
  if (maxCells < 1) throw new RangeError('maxCells must be >= 1');
  const bc = Math.min(region.cols, maxCells);
  const br = Math.max(1, Math.floor(maxCells / bc));
  const out: Region[] = [];
  for (let r = 0; r < region.rows; r += br) {
    for (let c = 0; c < region.cols; c += bc) {
      out.push({ array: region.array, row: region.row + r, col: region.col + c, rows: Math.min(br, region.rows - r), cols: Math.min(bc, region.cols - c) });
    }
  }
  return out;
}

/** Copies the cells of sub-region b out of a row-major buffer of the whole region. */
function gather(src: Float32Array, whole: Region, b: Region): Float32Array {
  const out = new Float32Array(b.rows * b.cols);
  for (let r = 0; r < b.rows; r++) {
    const from = (b.row - whole.row + r) * whole.cols + (b.col - whole.col);
    out.set(src.subarray(from, from + b.cols), r * b.cols);
  }
  return out;
}

function scatter<T extends Float32Array | Uint16Array | Uint8Array>(src: T, dst: T, whole: Region, b: Region): void {
  for (let r = 0; r < b.rows; r++) {
    const to = (b.row - whole.row + r) * whole.cols + (b.col - whole.col);
    dst.set(src.subarray(r * b.cols, (r + 1) * b.cols), to);
  }
}

export function countStatuses(status: Uint8Array): Record<CellStatusName, number> {
  const counts = Object.fromEntries(CELL_STATUS_NAMES.map((n) => [n, 0])) as Record<CellStatusName, number>;
  for (let i = 0; i < status.length; i++) {
    const name = CELL_STATUS_NAMES[status[i] as number];
    if (name) counts[name]++;
  }
  return counts;
}

