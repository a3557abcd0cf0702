import type { Duplex } from 'node:stream';
import { LinkError } from '../common/errors.js';

/**
 * The byte seam under the macro client. A transport knows how to open one connection (serial port,
 * TCP socket, in-process device); the client above it sees only bytes and never the port type.
 */
export interface ChannelHandlers {
  /** Bytes as they arrive, in any split: frames may straddle chunks and chunks may hold several. */
  onData(bytes: Uint8Array): void;
  /**
   * Called once when the connection ends for any reason other than close(): unplug, peer hangup,
   * read error. `err` says why when known. Not called after close().
   */
  onClose(err?: Error): void;
}

export interface ByteChannel {
  /**
   * Hands bytes to the OS or the peer. Resolves when accepted, not when transmitted. Rejects with a
   * DISCONNECTED LinkError when the connection is gone (often the first sign of an unplug).
   */
  write(bytes: Uint8Array): Promise<void>;
  /** Closes the connection; idempotent; resolves even if it was already gone. */
  close(): Promise<void>;
  readonly isOpen: boolean;
}

export interface Transport {
  /** For messages: `/dev/ttyUSB0 @ 921600`, `tcp://10.0.0.5:4000`, `inproc://macro`. */
  readonly description: string;
  /**
   * Opens a new connection; may be called again after the previous one closed (reconnect).
   * Rejects with a LinkError: PORT_NOT_FOUND, PORT_PERMISSION, PORT_LOCKED or DISCONNECTED.
   */
  open(handlers: ChannelHandlers): Promise<ByteChannel>;
}

/** Wraps a Node duplex (a SerialPortStream, a net.Socket) as a ByteChannel. */
/**
 * `release` frees the underlying resource on close (default: destroy the stream). A serialport
 * stream needs its own close(): destroy() leaves the port's file descriptor and lock open.
 */
export function duplexChannel(stream: Duplex, handlers: ChannelHandlers, description: string, release: () => void = () => stream.destroy()): ByteChannel {
  let open = true;
  let closedByUs = false;
  let lastError: Error | undefined;
  const finish = (): void => {
    if (!open) return;
    open = false;
    if (!closedByUs) handlers.onClose(lastError);
  };
  stream.on('data', (chunk: Buffer) => handlers.onData(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
  stream.on('error', (err: Error) => {
    lastError = err;
    finish();
  });
  stream.on('close', finish);
  stream.on('end', finish);
  return {
    get isOpen() {
      return open;
    },
    write(bytes) {
      if (!open) return Promise.reject(new LinkError('DISCONNECTED', 'connection is closed', { where: description }));
      return new Promise((resolve, reject) => {
        stream.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), (err) => {
          if (err) {
            lastError = err;
            reject(new LinkError('DISCONNECTED', `write failed: ${err.message}`, { where: description, cause: err }));
            finish();
          } else resolve();
        });
      });
    },
    close() {
      if (!open) return Promise.resolve();
      closedByUs = true;
      open = false;
      return new Promise((resolve) => {
        stream.once('close', () => resolve());
        release();
        setTimeout(resolve, 500).unref();
      });
    },
  };
}
