import { readdir, readlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadNativeBinding } from './transports/serial.js';

export interface PortListing {
  readonly ports: ReadonlyArray<{ path: string; manufacturer?: string; serialNumber?: string; vendorId?: string; productId?: string; byId?: string }>;
  /** 'udev' when the native binding listed them, 'dev-scan' when we fell back to scanning /dev. */
  readonly source: 'udev' | 'dev-scan';
  /** Why the fallback was used, for the user. */
  readonly note?: string;
}

const SERIAL_NAME = /^(ttyUSB\d+|ttyACM\d+|ttyAMA\d+|ttyS\d+|ttyXRUSB\d+|ttyGS\d+|rfcomm\d+|ttyTHS\d+|ttymxc\d+|cu\..+|tty\.usb.+)$/;

/**
 * Lists serial ports. On Linux serialport asks udevadm, which containers often lack (spawn udevadm
 * ENOENT); then we scan /dev and /dev/serial/by-id ourselves and say so. Pseudo-terminals (socat,
 * emulators) are never listed by either way: pass their path explicitly.
 */
export async function listPorts(options: { devDir?: string; native?: boolean } = {}): Promise<PortListing> {
  let note: string | undefined;
  if (options.native !== false) {
    try {
      const binding = await loadNativeBinding();
      const list = await binding.list();
      return {
        source: 'udev',
        ports: list.map((p) => ({
          path: p.path,
          ...(p.manufacturer ? { manufacturer: p.manufacturer } : {}),
          ...(p.serialNumber ? { serialNumber: p.serialNumber } : {}),
          ...(p.vendorId ? { vendorId: p.vendorId } : {}),
          ...(p.productId ? { productId: p.productId } : {}),
        })),
      };
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      note = /udevadm/.test(msg)
        ? `udevadm is not available (${msg}); listed by scanning /dev, without USB vendor details`
        : `the native port list failed (${msg}); listed by scanning /dev, without USB vendor details`;
    }
  }
  const dev = options.devDir ?? '/dev';
  const byId = new Map<string, string>();
  try {
    for (const name of await readdir(join(dev, 'serial', 'by-id'))) {
      try {
        const target = resolve(join(dev, 'serial', 'by-id'), await readlink(join(dev, 'serial', 'by-id', name)));
        byId.set(target, join(dev, 'serial', 'by-id', name));
      } catch {
        // a dangling link: skip it
      }
    }
  } catch {
    // no /dev/serial/by-id: no USB serial adapters plugged in
  }
  let names: string[] = [];
  try {
    names = await readdir(dev);
  } catch {
    names = [];
  }
  const ports = names
    .filter((n) => SERIAL_NAME.test(n))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
    .map((n) => {
      const path = join(dev, n);
      const link = byId.get(path);
      return link ? { path, byId: link } : { path };
    });
  return { source: 'dev-scan', ports, ...(note ? { note } : { note: 'listed by scanning /dev' }) };
}
