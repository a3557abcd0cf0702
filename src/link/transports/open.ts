import { serialTransport, DEFAULT_BAUD } from './serial.js';
import { parseTcpUrl, tcpTransport } from './tcp.js';
import type { Transport } from '../transport.js';

/** `tcp://host:port` -> TCP, anything else -> a serial device path. */
export function transportFor(port: string, options: { baudRate?: number } = {}): Transport {
  const tcp = parseTcpUrl(port);
  if (tcp) return tcpTransport(tcp);
  return serialTransport({ path: port, baudRate: options.baudRate ?? DEFAULT_BAUD });
}
