import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { executeRun, parseCampaign, type ExecuteResult } from '../../src/bench/index.js';
import { openLink } from '../../src/cli/commands/campaign-common.js';
import { createBenchServer, newToken, type BenchServer } from '../../src/server/index.js';
import { repoPath } from '../helpers/paths.js';

/** A small demo-like campaign on the committed demo network and the in-process emulated macro. */
export function smallCampaign(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'ui-test',
    network: repoPath('fixtures/networks/demo'),
    link: { kind: 'emulator', chip: 'typical', seed: 2 },
    testSet: { dataset: 'fashion-mnist-subset', count: 40 },
    drift: { initial: 1, points: ['1 h'], clock: 'emulated' },
    seeds: [1, 2],
    mvm: { vectors: 2 },
    ...overrides,
  };
}

export function tempDir(prefix = 'cimbench-server-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Records one whole run in `dbPath` through the CLI's emulated link (as `cimbench run` would). */
export async function recordRun(dbPath: string, overrides: Record<string, unknown> = {}): Promise<ExecuteResult> {
  return executeRun({ dbPath, mode: 'full', campaign: parseCampaign(smallCampaign(overrides), 'test campaign', process.cwd()), openLink });
}

export interface TestServer {
  readonly url: string;
  readonly token: string;
  readonly server: BenchServer;
  readonly campaignsDir: string;
  close(): Promise<void>;
}

/** The CLI's link opener, which `cimbench serve` hands its campaign worker threads. */
export const LINK_MODULE = new URL('../../src/cli/commands/campaign-common.ts', import.meta.url).href;

/** A bench server on a free loopback port (campaigns in worker threads, as `cimbench serve` runs them) with a campaign folder holding small.json. */
export async function startTestServer(dbPath: string, options: { uiDir?: string } = {}): Promise<TestServer> {
  const campaignsDir = tempDir('cimbench-campaigns-');
  writeFileSync(join(campaignsDir, 'small.json'), JSON.stringify(smallCampaign({ name: 'ui-live', programming: { blockCells: 512 } })));
  writeFileSync(join(campaignsDir, 'broken.json'), JSON.stringify({ name: 'broken', network: 7 }));
  const token = newToken();
  const server = createBenchServer({ dbPath, token, campaignsDir, openLink, linkModule: LINK_MODULE, loopbackOnly: true, ...(options.uiDir ? { uiDir: options.uiDir } : {}) });
  const url = await server.listen(0, '127.0.0.1');
  return { url, token, server, campaignsDir, close: () => server.close() };
}

export async function getJson(url: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: res.status, body };
}

export function postJson(url: string, body: unknown, token?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return getJson(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}
