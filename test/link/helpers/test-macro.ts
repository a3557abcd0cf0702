/**
 * A minimal in-test device: the real DeviceEndpoint in front of a trivial Float32Array "array".
 * Deterministic (seeded), with a crude write-verify (each pulse halves the distance to the target,
 * plus seeded noise). The emulated macro with real physics (fixtures/emulated-macro) replaces it.
 */
import { Rng } from '../../../src/common/rng.js';
import { FrameDecoder } from '../../../src/link/frame.js';
import { CellStatus, Flag, MsgType } from '../../../src/link/protocol.js';
import type { DeviceConfig, InferRequest, MvmRequest, Region } from '../../../src/link/messages.js';
import type { NetworkProgram } from '../../../src/link/network-program.js';
import type { MacroBackend, MacroIdentity, OperationContext, ProgramCells, ProgramJob } from '../../../src/link/device/backend.js';
import { DeviceEndpoint, type DeviceEndpointOptions } from '../../../src/link/device/endpoint.js';
import type { InProcessConnection, InProcessDevice } from '../../../src/link/transports/in-process.js';

export const TEST_IDENTITY: MacroIdentity = {
  firmwareName: 'cimbench-test-device',
  chipId: 'TEST-0001',
  firmwareVersion: { major: 0, minor: 1, patch: 0 },
  arrays: 2,
  rows: 64,
  cols: 64,
  levels: 16,
  gMinUs: 1,
  gMaxUs: 100,
  adcBits: 8,
  dacBits: 1,
};

export interface TestMacroOptions {
  readonly seed?: number;
  /** Real time spent per programmed cell (ms), so cancel and progress can be observed. */
  readonly cellDelayMs?: number;
  /** Cell indices (array-major, row-major) that never move. */
  readonly stuck?: ReadonlySet<number>;
  readonly identity?: MacroIdentity;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class TestMacro implements MacroBackend {
  readonly identity: MacroIdentity;
  readonly cells: Float32Array;
  programCalls = 0;
  pulsesApplied = 0;
  safe = false;
  clockAdvancedS = 0;
  private readonly rng: Rng;
  private readonly cellDelayMs: number;
  private readonly stuck: ReadonlySet<number>;

  constructor(options: TestMacroOptions = {}) {
    this.identity = options.identity ?? TEST_IDENTITY;
    this.rng = new Rng(options.seed ?? 1);
    this.cellDelayMs = options.cellDelayMs ?? 0;
    this.stuck = options.stuck ?? new Set();
    this.cells = new Float32Array(this.identity.arrays * this.identity.rows * this.identity.cols).fill(this.identity.gMinUs);
  }

  index(array: number, row: number, col: number): number {
    return (array * this.identity.rows + row) * this.identity.cols + col;
  }

  async program(job: ProgramJob, ctx: OperationContext): Promise<ProgramCells> {
    this.programCalls++;
    const { region, targetsUs } = job;
    const n = region.rows * region.cols;
    const finalUs = new Float32Array(n);
    const pulses = new Uint16Array(n);
    const status = new Uint8Array(n).fill(CellStatus.NOT_ATTEMPTED);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const at = this.index(region.array, region.row + Math.floor(i / region.cols), region.col + (i % region.cols));
      if (ctx.cancelled) {
        finalUs[i] = this.cells[at] as number;
        continue;
      }
      const target = targetsUs[i] as number;
      let g = this.cells[at] as number;
      let p = 0;
      let iter = 0;
      let st: number = CellStatus.OK;
      while (Math.abs(g - target) > job.toleranceUs) {
        if (this.stuck.has(at)) {
          st = CellStatus.STUCK;
          p++;
          break;
        }
        if (iter >= job.maxIterations) {
          st = CellStatus.ITER_LIMIT;
          break;
        }
        if (p >= job.maxPulses) {
          st = CellStatus.PULSE_LIMIT;
          break;
        }
        g += 0.5 * (target - g) + 0.05 * this.rng.normal();
        g = Math.min(this.identity.gMaxUs, Math.max(this.identity.gMinUs, g));
        p++;
        iter++;
      }
      this.cells[at] = g;
      finalUs[i] = g;
      pulses[i] = p;
      status[i] = st;
      total += p;
      this.pulsesApplied += p;
      ctx.progress(i + 1, n);
      if (this.cellDelayMs > 0) await sleep(this.cellDelayMs);
      else await ctx.checkpoint();
    }
    return { finalUs, pulses, status, totalPulses: total };
  }

  async readCells(region: Region, averages: number, _config: DeviceConfig, ctx: OperationContext): Promise<Float32Array> {
    const out = new Float32Array(region.rows * region.cols);
    for (let r = 0; r < region.rows; r++) {
      for (let c = 0; c < region.cols; c++) {
        const g = this.cells[this.index(region.array, region.row + r, region.col + c)] as number;
        let sum = 0;
        for (let k = 0; k < averages; k++) sum += g + 0.02 * this.rng.normal();
        out[r * region.cols + c] = sum / averages;
      }
      await ctx.checkpoint();
    }
    return out;
  }

  async mvm(req: MvmRequest): Promise<Uint16Array> {
    const { region, inputBits, inputs } = req;
    const full = 2 ** this.identity.adcBits - 1;
    const codes = new Uint16Array(inputBits * region.cols);
    for (let b = 0; b < inputBits; b++) {
      for (let c = 0; c < region.cols; c++) {
        let sum = 0;
        for (let r = 0; r < region.rows; r++) {
          if (((inputs[r] as number) >>> b) & 1) sum += this.cells[this.index(region.array, region.row + r, region.col + c)] as number;
        }
        codes[b * region.cols + c] = Math.min(full, Math.round((sum / (region.rows * this.identity.gMaxUs)) * full));
      }
    }
    return codes;
  }

  /** Test-only stand-in for a network: logit k = (k + 1) * mean pixel. Enough to check framing. */
  async infer(network: NetworkProgram, req: InferRequest): Promise<Float32Array> {
    const per = req.shape[0] * req.shape[1] * req.shape[2];
    const out = new Float32Array(req.count * network.classes);
    for (let i = 0; i < req.count; i++) {
      let s = 0;
      for (let j = 0; j < per; j++) s += req.images[i * per + j] as number;
      for (let k = 0; k < network.classes; k++) out[i * network.classes + k] = ((k + 1) * s) / per;
    }
    return out;
  }

  advanceClock(seconds: number): void {
    this.clockAdvancedS += seconds;
  }

  enterSafeState(): void {
    this.safe = true;
  }
}

export function createTestDevice(options: TestMacroOptions & Partial<Omit<DeviceEndpointOptions, 'backend'>> = {}): { macro: TestMacro; endpoint: DeviceEndpoint } {
  const macro = new TestMacro(options);
  const endpoint = new DeviceEndpoint({ testClock: true, ...options, backend: macro });
  return { macro, endpoint };
}

/** What the fault injector can do to the bytes between host and device. */
export interface Faults {
  /** Drop this many of the next device -> host frames. */
  dropToHost: number;
  /** Drop this many of the next host -> device writes. */
  dropToDevice: number;
  /** Probability of flipping one bit in each device -> host frame. */
  flipToHost: number;
  /** Delay every device -> host chunk by this many ms. */
  delayMs: number;
  /** Swallow everything in both directions (a hung device or a dead cable). */
  stalled: boolean;
  /** Split device -> host frames into chunks of this size (0 = whole). */
  chunk: number;
}

/**
 * Wraps a device for the in-process binding and damages the traffic on demand: drops, bit flips,
 * garbage, delays, stalls, unplugs. `target` may be swapped (a reboot brings a new endpoint).
 */
export class FaultyDevice implements InProcessDevice {
  readonly faults: Faults = { dropToHost: 0, dropToDevice: 0, flipToHost: 0, delayMs: 0, stalled: false, chunk: 0 };
  connections = 0;
  private readonly rng: Rng;
  private toHost: ((b: Uint8Array) => void) | undefined;
  private hangup: ((reason: string) => void) | undefined;
  private inner: InProcessConnection | undefined;

  constructor(
    public target: InProcessDevice,
    seed = 7,
  ) {
    this.rng = new Rng(seed);
  }

  connect(toHost: (bytes: Uint8Array) => void, hangup: (reason: string) => void): InProcessConnection {
    this.connections++;
    this.toHost = toHost;
    this.hangup = hangup;
    const inner = this.target.connect((b) => this.deliver(b), hangup);
    this.inner = inner;
    return {
      fromHost: (b) => {
        if (this.faults.stalled) return;
        if (this.faults.dropToDevice > 0) {
          this.faults.dropToDevice--;
          return;
        }
        inner.fromHost(b);
      },
      detach: () => {
        inner.detach();
        if (this.inner === inner) {
          this.inner = undefined;
          this.toHost = undefined;
        }
      },
    };
  }

  private deliver(bytes: Uint8Array): void {
    const f = this.faults;
    if (f.stalled) return;
    if (f.dropToHost > 0) {
      f.dropToHost--;
      return;
    }
    let b = bytes;
    if (f.flipToHost > 0 && this.rng.next() < f.flipToHost) {
      b = bytes.slice();
      const at = this.rng.int(Math.max(1, b.length - 1));
      b[at] = (b[at] as number) ^ (1 << this.rng.int(8));
    }
    const out = this.toHost;
    if (!out) return;
    const parts: Uint8Array[] = [];
    if (f.chunk > 0) for (let i = 0; i < b.length; i += f.chunk) parts.push(b.subarray(i, i + f.chunk));
    else parts.push(b);
    for (const p of parts) {
      if (f.delayMs > 0) setTimeout(() => this.toHost === out && out(p), f.delayMs);
      else out(p);
    }
  }

  /** Sends raw bytes to the host as if the device had babbled them. */
  garbage(bytes: Uint8Array): void {
    this.toHost?.(bytes);
  }

  /** Simulates an unplug: the host's next read fails. */
  unplug(reason = 'unplugged'): void {
    const h = this.hangup;
    this.inner?.detach();
    this.inner = undefined;
    this.toHost = undefined;
    this.hangup = undefined;
    h?.(reason);
  }
}

/**
 * Sits between the host and a device and watches both directions at the frame level: which
 * request ids the host has sent that have no final reply yet. `maxOutstanding` is the largest
 * number of such requests seen at once (a PROGRESS reply is not final).
 */
export class ConcurrencyProbe implements InProcessDevice {
  maxOutstanding = 0;
  requests = 0;
  private readonly outstanding = new Set<number>();
  private readonly fromHost = new FrameDecoder({
    maxPayload: 0xffff,
    onFrame: (f) => {
      if (f.flags & Flag.RESPONSE || f.type === MsgType.HELLO) return;
      this.requests++;
      this.outstanding.add(f.requestId);
      this.maxOutstanding = Math.max(this.maxOutstanding, this.outstanding.size);
    },
  });
  private readonly toHost = new FrameDecoder({
    maxPayload: 0xffff,
    onFrame: (f) => {
      if ((f.flags & Flag.PROGRESS) === 0) this.outstanding.delete(f.requestId);
    },
  });

  constructor(private readonly target: InProcessDevice) {}

  get inFlightNow(): number {
    return this.outstanding.size;
  }

  connect(toHost: (bytes: Uint8Array) => void, hangup: (reason: string) => void): InProcessConnection {
    const inner = this.target.connect((b) => {
      this.toHost.push(b);
      toHost(b);
    }, hangup);
    return {
      fromHost: (b) => {
        this.fromHost.push(b);
        inner.fromHost(b);
      },
      detach: () => inner.detach(),
    };
  }
}
