import { createServer, type Server } from 'node:net';
import type { Duplex } from 'node:stream';
import type { DeviceEndpoint } from './endpoint.js';

/** Connects an endpoint to a byte stream (an open pty or serial port, a socket); returns a detach function. */
export function serveStream(endpoint: DeviceEndpoint, stream: Duplex): () => void {
  const onData = (chunk: Buffer): void => endpoint.receive(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  stream.on('data', onData);
  const detach = endpoint.attach((bytes) => {
    if (!stream.destroyed) stream.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  });
  const stop = (): void => {
    stream.off('data', onData);
    detach();
  };
  stream.once('close', stop);
  return stop;
}

/**
 * Serves an endpoint over TCP (ser2net style: raw bytes, one host at a time; a new connection
 * replaces the old one). Resolves once listening; `server.address()` tells the port when 0 was asked.
 */
export function serveTcp(endpoint: DeviceEndpoint, options: { host?: string; port?: number } = {}): Promise<Server> {
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy());
    serveStream(endpoint, socket);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
