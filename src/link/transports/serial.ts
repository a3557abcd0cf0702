import type { BindingInterface } from '@serialport/bindings-cpp';
import { SerialPortStream } from '@serialport/stream';
import { LinkError } from '../../common/errors.js';
import { duplexChannel, type Transport } from '../transport.js';

export interface SerialTransportOptions {
  readonly path: string;
  /** Default 921600. Pseudo-terminals ignore it. */
  readonly baudRate?: number;
  /**
   * A serialport binding; default the native one (serialport's autodetected binding, loaded on first open
   * so that code using only the in-process binding never loads native code).
   */
  readonly binding?: BindingInterface;
  /** Take an exclusive lock on the port (default true), so a second program gets PORT_LOCKED. */
  readonly lock?: boolean;
}

export const DEFAULT_BAUD = 921_600;

let nativeBinding: Promise<BindingInterface> | undefined;
/** The platform's native binding, loaded once on demand. */
export function loadNativeBinding(): Promise<BindingInterface> {
  nativeBinding ??= import('serialport').then((m) => m.SerialPort.binding as unknown as BindingInterface);
  return nativeBinding;
}

/**
 * Maps the native binding's open errors (plain Errors whose text comes from strerror) to LinkError
 * codes with a message that says what to do.
 */
export function classifyOpenError(err: unknown, path: string): LinkError {
  const msg = err instanceof Error ? err.message : String(err);
  if (/Cannot lock port|Resource temporarily unavailable|EBUSY|Device or resource busy/i.test(msg)) {
    return new LinkError('PORT_LOCKED', `port is in use by another process (${msg}); close the other program (screen, minicom, another cimbench) and retry`, { where: path, cause: err });
  }
  if (/Permission denied|EACCES|Operation not permitted|EPERM/i.test(msg)) {
    return new LinkError(
      'PORT_PERMISSION',
      `permission denied (${msg}); add your user to the dialout group (sudo usermod -aG dialout $USER, then log in again) or add a udev rule granting access to this device`,
      { where: path, cause: err },
    );
  }
  if (/No such file or directory|ENOENT|cannot open|File not found/i.test(msg)) {
    return new LinkError('PORT_NOT_FOUND', `no such port (${msg}); run \`cimbench ports\` to list the ports and check the cable`, { where: path, cause: err });
  }
  return new LinkError('DISCONNECTED', `cannot open port: ${msg}`, { where: path, cause: err });
}

/** A serial port (a real one, a pty, or any serialport binding such as the in-process one). */
export function serialTransport(options: SerialTransportOptions): Transport {
  const baudRate = options.baudRate ?? DEFAULT_BAUD;
  const description = `${options.path} @ ${baudRate}`;
  return {
    description,
    async open(handlers) {
      const binding = options.binding ?? (await loadNativeBinding());
      const stream = new SerialPortStream({ binding, path: options.path, baudRate, autoOpen: false, lock: options.lock ?? true });
      await new Promise<void>((resolve, reject) => {
        stream.open((err) => (err ? reject(classifyOpenError(err, options.path)) : resolve()));
      });
      // close() releases the fd and the lock (destroy() would not); after an unplug it is already closed.
      return duplexChannel(stream, handlers, description, () => {
        if (stream.isOpen) stream.close(() => stream.destroy());
        else stream.destroy();
      });
    },
  };
}
