import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InputError } from '../../common/errors.js';
import { createBenchServer, defaultUiDir, newToken, type BenchServer } from '../../server/index.js';
import { openLink } from './campaign-common.js';

interface ServeOptions {
  db: string;
  port: string;
  host: string;
  campaigns: string;
  token?: string;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1']);

export interface ServeSettings {
  readonly dbPath: string;
  readonly port: number;
  readonly host: string;
  readonly campaignsDir: string;
  /** Default: $CIMBENCH_TOKEN, else a fresh random token. */
  readonly token?: string;
}

export function parsePort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new InputError('INVALID_INPUT', `not a TCP port: ${text}`, { where: '--port' });
  return port;
}

/** Starts the bench server, prints the URL and the control token, and resolves once listening. */
export async function startServe(s: ServeSettings): Promise<{ server: BenchServer; url: string; token: string }> {
  const token = s.token ?? process.env.CIMBENCH_TOKEN ?? newToken();
  if (token.length < 12) throw new InputError('INVALID_INPUT', 'the control token must have at least 12 characters', { where: '--token' });
  const loopback = LOOPBACK_HOSTS.has(s.host);
  const uiDir = defaultUiDir();
  const server = createBenchServer({
    dbPath: s.dbPath,
    token,
    campaignsDir: s.campaignsDir,
    openLink,
    loopbackOnly: loopback,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  let url: string;
  try {
    url = await server.listen(s.port, s.host);
  } catch (err) {
    await server.close();
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError('INVALID_INPUT', code === 'EADDRINUSE' ? `port ${s.port} is in use (--port another, or 0 for any free port)` : `cannot listen (${code ?? String(err)})`, { where: `${s.host}:${s.port}` });
  }
  if (!existsSync(join(uiDir, 'index.html'))) process.stderr.write(`warning: the bench UI is not built (${uiDir}); the API works, run npm run build:ui for the pages\n`);
  if (!loopback) process.stderr.write(`warning: listening on ${s.host}: anyone who can reach this address sees the runs (control still needs the token)\n`);
  process.stdout.write(`bench UI: ${url}/  (database ${resolve(s.dbPath)}, campaign files from ${resolve(s.campaignsDir)})\ncontrol token: ${token}\n`);
  return { server, url, token };
}

/** Keeps the process up until SIGINT/SIGTERM, then aborts a running campaign and closes. */
export async function serveUntilSignal(server: BenchServer): Promise<void> {
  await new Promise<void>((resolveStop) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.stderr.write('bench server stopping\n');
      resolveStop();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('the live bench UI and JSON API over the store (express + socket.io); control actions need the token it prints')
    .option('--db <file>', 'SQLite store', './cimbench.db')
    .option('--port <n>', 'TCP port (0: any free port)', '8770')
    .option('--host <addr>', 'address to bind (anything but loopback exposes the runs to the network)', '127.0.0.1')
    .option('--campaigns <dir>', 'folder of campaign files the UI may start', '.')
    .option('--token <token>', 'control token (default: $CIMBENCH_TOKEN, else a random one printed at start)')
    .action(async (opts: ServeOptions) => {
      const { server } = await startServe({
        dbPath: opts.db,
        port: parsePort(opts.port),
        host: opts.host,
        campaignsDir: opts.campaigns,
        ...(opts.token !== undefined ? { token: opts.token } : {}),
      });
      await serveUntilSignal(server);
    });
}
