import type { BindingInterface, BindingPortInterface, OpenOptions, PortInfo, PortStatus } from '@serialport/bindings-cpp';
import { LinkError } from '../../common/errors.js';
import { serialTransport } from './serial.js';
import type { Transport } from '../transport.js';

/**
 * A device object the in-process binding can plug into: the emulated macro, the test device, or a
 * fault-injecting wrapper around either.
 */
export interface InProcessDevice {
  /**
   * Called when the host opens the port. The device sends bytes with `toHost` until the returned
   * `detach` is called (host closed the port). It simulates an unplug by calling `hangup`, after
   * which it must not call `toHost` again for this connection.
   */
  connect(toHost: (bytes: Uint8Array) => void, hangup: (reason: string) => void): InProcessConnection;
}

export interface InProcessConnection {
  /** Bytes the host wrote, in write-sized chunks. */
  fromHost(bytes: Uint8Array): void;
  detach(): void;
}

class CanceledError extends Error {
  readonly canceled = true;
}

/** One open in-process port; follows BindingPortInterface's contract (reads resolve with >= 1 byte). */
class InProcessPort implements BindingPortInterface {
  isOpen = true;
  private queue: Buffer[] = [];
  private waiter: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private hungUp: string | undefined;
  private readonly conn: InProcessConnection;

  constructor(
    readonly openOptions: Required<OpenOptions>,
    device: InProcessDevice,
  ) {
    this.conn = device.connect(
      (bytes) => {
        if (!this.isOpen || this.hungUp !== undefined) return;
        this.queue.push(Buffer.from(bytes));
        this.wake();
      },
      (reason) => {
        this.hungUp = reason;
        this.wake();
      },
    );
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.resolve();
  }

  async read(buffer: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }> {
    for (;;) {
      if (!this.isOpen) throw new CanceledError('port closed');
      const head = this.queue[0];
      if (head) {
        const n = Math.min(length, head.length);
        head.copy(buffer, offset, 0, n);
        if (n === head.length) this.queue.shift();
        else this.queue[0] = head.subarray(n);
        return { buffer, bytesRead: n };
      }
      // Any error other than a canceled one makes SerialPortStream report a disconnect.
      if (this.hungUp !== undefined) throw new Error(`device disconnected: ${this.hungUp}`);
      await new Promise<void>((resolve, reject) => (this.waiter = { resolve, reject }));
    }
  }

  async write(buffer: Buffer): Promise<void> {
    if (!this.isOpen) throw new CanceledError('port closed');
    if (this.hungUp !== undefined) throw new Error(`device disconnected: ${this.hungUp}`);
    this.conn.fromHost(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength).slice());
  }

  async close(): Promise<void> {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.conn.detach();
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(new CanceledError('port closed'));
  }

  async update(): Promise<void> {}
  async set(): Promise<void> {}
  async get(): Promise<PortStatus> {
    return { cts: true, dsr: true, dcd: true };
  }
  async getBaudRate(): Promise<{ baudRate: number }> {
    return { baudRate: this.openOptions.baudRate };
  }
  async flush(): Promise<void> {
    this.queue = [];
  }
  async drain(): Promise<void> {}
}

/**
 * A serialport binding whose ports are device objects in this process, so the whole serial stack
 * (SerialPortStream, the client) runs in tests and demos without a pty. Paths look like
 * `inproc://name`.
 */
export function inProcessBinding(devices: ReadonlyMap<string, InProcessDevice>): BindingInterface {
  const open = new Set<string>();
  return {
    async list(): Promise<PortInfo[]> {
      return [...devices.keys()].map((path) => ({
        path,
        manufacturer: 'cimbench',
        serialNumber: undefined,
        pnpId: undefined,
        locationId: undefined,
        productId: undefined,
        vendorId: undefined,
      }));
    },
    async open(options: OpenOptions): Promise<BindingPortInterface> {
      const device = devices.get(options.path);
      if (!device) throw new Error(`No such file or directory, cannot open ${options.path}`);
      if (options.lock !== false && open.has(options.path)) throw new Error('Error Resource temporarily unavailable Cannot lock port');
      const full: Required<OpenOptions> = {
        dataBits: 8,
        lock: true,
        stopBits: 1,
        parity: 'none',
        rtscts: false,
        xon: false,
        xoff: false,
        xany: false,
        hupcl: true,
        ...options,
      };
      const port = new InProcessPort(full, device);
      open.add(options.path);
      const close = port.close.bind(port);
      port.close = async () => {
        open.delete(options.path);
        await close();
      };
      return port;
    },
  };
}

/** A transport to one in-process device through the serialport stack. */
export function inProcessTransport(device: InProcessDevice, name = 'macro'): Transport {
  const path = `inproc://${name}`;
  if (!/^[\w.-]+$/.test(name)) throw new LinkError('PORT_NOT_FOUND', 'bad in-process device name', { where: name });
  return serialTransport({ path, baudRate: 921_600, binding: inProcessBinding(new Map([[path, device]])) });
}
