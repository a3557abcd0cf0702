import { connect } from 'node:net';
import { InputError, LinkError } from '../../common/errors.js';
import { duplexChannel, type Transport } from '../transport.js';

export interface TcpAddress {
  readonly host: string;
  readonly port: number;
}

/** Parses `tcp://host:port` (a ser2net-style serial server); undefined for anything else. */
export function parseTcpUrl(spec: string): TcpAddress | undefined {
  const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d+)\/?$/.exec(spec);
  if (!m) {
    if (spec.startsWith('tcp://')) throw new InputError('INVALID_INPUT', 'expected tcp://host:port', { where: spec });
    return undefined;
  }
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw new InputError('INVALID_INPUT', `port ${port} outside 1..65535`, { where: spec });
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
}

export interface TcpTransportOptions extends TcpAddress {
  /** Connect timeout (default 3000 ms). */
  readonly connectTimeoutMs?: number;
}

/** A raw TCP byte stream to a serial server or an emulator; frames are the same as on a UART. */
export function tcpTransport(options: TcpTransportOptions): Transport {
  const description = `tcp://${options.host}:${options.port}`;
  return {
    description,
    open(handlers) {
      return new Promise((resolve, reject) => {
        const socket = connect({ host: options.host, port: options.port });
        socket.setNoDelay(true);
        const timer = setTimeout(() => {
          socket.destroy();
          reject(new LinkError('TIMEOUT', `no TCP connection within ${options.connectTimeoutMs ?? 3000} ms`, { where: description }));
        }, options.connectTimeoutMs ?? 3000);
        const onError = (err: NodeJS.ErrnoException): void => {
          clearTimeout(timer);
          const code = err.code === 'ECONNREFUSED' || err.code === 'ENOTFOUND' ? 'PORT_NOT_FOUND' : 'DISCONNECTED';
          reject(new LinkError(code, `cannot connect (${err.code ?? err.message}); is the serial server or emulator running?`, { where: description, cause: err }));
        };
        socket.once('error', onError);
        socket.once('connect', () => {
          clearTimeout(timer);
          socket.off('error', onError);
          resolve(duplexChannel(socket, handlers, description));
        });
      });
    },
  };
}
