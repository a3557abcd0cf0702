import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { InputError } from '../../common/errors.js';
import { parseWith } from '../../common/validate.js';
import { createBenchServer, defaultUiDir, newToken, type BenchServer } from '../../server/index.js';
import { openLink } from './campaign-common.js';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1']);
const DEFAULT_PORT = 8770;
const DEFAULT_HOST = '127.0.0.1';

/** --port and --host, as `serve` and `demo --serve` take them (strings from commander). */
const portString = z
  .string()
  .regex(/^\d+$/, 'a TCP port must be a whole number (0 picks any free port)')
  .transform(Number)
  .pipe(z.int().min(0).max(65_535, 'a TCP port is at most 65535'));
const hostString = z
  .string()
  .min(1, 'an address to bind, such as 127.0.0.1')
  .max(255)
  .regex(/^[\w.:[\]%-]+$/, 'an IP address or host name (letters, digits, . : - [ ])');

export const ListenOptionsSchema = z.object({ port: portString.default(DEFAULT_PORT), host: hostString.default(DEFAULT_HOST) });
export type ListenOptions = z.output<typeof ListenOptionsSchema>;

const ServeOptionsSchema = z.strictObject({
  db: z.string().min(1),
  ...ListenOptionsSchema.shape,
  campaigns: z.string().min(1),
  token: z.string().optional(),
});

export interface ServeSettings {
  readonly dbPath: string;
  readonly port: number;
  readonly host: string;
  readonly campaignsDir: string;
  /** Default: $CIMBENCH_TOKEN, else a fresh random token. */
  readonly token?: string;
  /** Where the URL and token lines go (default stdout; `demo --serve --json` keeps stdout for the JSON). */
  readonly print?: (text: string) => void;
}

export function parsePort(text: string): number {
  return parseWith(portString, text, '--port');
}

/** Adds --port and --host (no defaults, so a command can tell whether they were given). */
export function addListenOptions(cmd: Command, suffix = ''): Command {
  return cmd
    .option('--port <n>', `TCP port of the bench UI${suffix} (0: any free port; default ${DEFAULT_PORT})`)
    .option('--host <addr>', `address to bind${suffix} (default ${DEFAULT_HOST}; anything but loopback exposes the runs to the network)`);
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
    // Campaigns started from the UI run in a worker thread that opens links with this same module.
    linkModule: new URL(import.meta.url.endsWith('.ts') ? './campaign-common.ts' : './campaign-common.js', import.meta.url).href,
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
  (s.print ?? ((text: string) => process.stdout.write(text)))(`bench UI: ${url}/  (database ${resolve(s.dbPath)}, campaign files from ${resolve(s.campaignsDir)})\ncontrol token: ${token}\n`);
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

/** startServe, then serves until SIGINT/SIGTERM and closes (`serve`, `demo --serve`). */
export async function serveUntilInterrupted(s: ServeSettings): Promise<void> {
  const { server } = await startServe(s);
  await serveUntilSignal(server);
}

export function registerServe(program: Command): void {
  const cmd = program
    .command('serve')
    .description('the live bench UI and JSON API over the store (express + socket.io); control actions need the token it prints')
    .option('--db <file>', 'SQLite store', './cimbench.db');
  addListenOptions(cmd)
    .option('--campaigns <dir>', 'folder of campaign files the UI may start', '.')
    .option('--token <token>', 'control token (default: $CIMBENCH_TOKEN, else a random one printed at start)')
    .action(async (raw: Record<string, unknown>) => {
      const opts = parseWith(ServeOptionsSchema, raw, 'serve options');
      await serveUntilInterrupted({
        dbPath: opts.db,
        port: opts.port,
        host: opts.host,
        campaignsDir: opts.campaigns,
        ...(opts.token !== undefined ? { token: opts.token } : {}),
      });
    });
}
