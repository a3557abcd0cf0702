/**
 * Access to the bench server (src/server), from outside as a stranger would try it: control
 * endpoints refuse a missing or wrong token (any length), a non-loopback Host header is refused
 * (DNS rebinding) when loopbackOnly, bodies over the limit get 413, campaign file names cannot
 * leave the campaign folder, and random JSON bodies never cause a 500; socket.io refuses foreign
 * Origins and answers random events and payloads with an error event while staying up. The
 * `serve` command's default bind and its logs are not covered here yet (docs/RELIABILITY.md).
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { openLink } from '../../src/cli/commands/campaign-common.js';
import { createBenchServer, newToken, tokenMatches } from '../../src/server/index.js';
import { io as connectSocket } from 'socket.io-client';
import { tempDir } from '../bench/helpers.js';

interface Reply {
  status: number;
  body: string;
}

function send(url: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Reply> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

test('server access: tokens, Host, body size, path escapes, random bodies', { timeout: 60_000 }, async () => {
  const dir = tempDir('cimbench-access-');
  const campaignsDir = join(dir, 'campaigns');
  // Only a broken campaign: nothing in this test can start a real run.
  (await import('node:fs')).mkdirSync(campaignsDir);
  writeFileSync(join(campaignsDir, 'broken.json'), JSON.stringify({ name: 'broken', network: 7 }));
  writeFileSync(join(dir, 'outside.json'), JSON.stringify({ name: 'outside', network: 'x' }));
  const token = newToken();
  const server = createBenchServer({ dbPath: join(dir, 'bench.db'), token, campaignsDir, openLink, loopbackOnly: true });
  const url = await server.listen(0, '127.0.0.1');
  try {
    const start = (headers: Record<string, string>, body = '{"file":"broken.json"}') => send(url, 'POST', '/api/campaigns', headers, body);
    assert.equal((await start({})).status, 401);
    assert.equal((await start({ authorization: 'Bearer ' })).status, 401);
    for (const wrong of ['x', token.slice(0, -1), `${token}x`, token.toUpperCase() === token ? token.toLowerCase() : token.toUpperCase(), 'a'.repeat(4000)]) {
      assert.equal((await start({ authorization: `Bearer ${wrong}` })).status, 403, `token ${wrong.slice(0, 12)}...`);
      assert.equal((await start({ 'x-cimbench-token': wrong })).status, 403);
    }
    for (const action of ['pause', 'resume', 'abort']) {
      assert.equal((await send(url, 'POST', `/api/campaigns/1/${action}`, {}, '{}')).status, 401, action);
    }
    // The right token gets past the check (the broken campaign is then refused as input, not as access).
    const ok = await start({ authorization: `Bearer ${token}` });
    assert.ok(ok.status !== 401 && ok.status !== 403 && ok.status < 500, `${ok.status} ${ok.body}`);
    // DNS rebinding: a page served from evil.example resolving to 127.0.0.1 sends Host: evil.example.
    assert.equal((await send(url, 'GET', '/api/runs', { host: 'evil.example' })).status, 403);
    assert.equal((await send(url, 'GET', '/api/runs', { host: `127.0.0.1:${new URL(url).port}` })).status, 200);
    // Body size limit.
    const big = await start({ authorization: `Bearer ${token}` }, JSON.stringify({ file: 'broken.json', pad: 'x'.repeat(20_000) }));
    assert.equal(big.status, 413, big.body);
    // Path inputs cannot leave the campaign folder.
    for (const file of ['../outside.json', '..%2foutside.json', '/etc/passwd', 'sub/../../outside.json', '.json', 'broken.json\u0000.txt', '..\\outside.json']) {
      const r = await start({ authorization: `Bearer ${token}` }, JSON.stringify({ file }));
      assert.ok(r.status === 400 || r.status === 404, `${file}: ${r.status} ${r.body}`);
    }
    assert.equal((await send(url, 'GET', '/api/campaigns/..%2f..%2fetc', {})).status >= 400, true);
    // Random and mutated bodies, with the token: typed 4xx answers, never a 500.
    let fuzzed = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
          fc.record({ file: fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('broken.json', '../outside.json', 'a.json')), mode: fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('full', 'program')) }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
          fc.string({ maxLength: 60 }),
        ),
        async (body) => {
          fuzzed++;
          const r = await start({ authorization: `Bearer ${token}` }, body);
          assert.ok(r.status >= 400 && r.status < 500, `${r.status} for ${body}: ${r.body}`);
          // One error shape (src/server/events.ts ApiError): a code and a message.
          const parsed = JSON.parse(r.body) as { code?: string; message?: string };
          assert.ok(parsed.code && parsed.message, r.body);
        },
      ),
      { numRuns: 150, seed: 21 },
    );
    assert.equal(fuzzed, 150);
    // Constant-time compare: hashed first, so different lengths are compared in the same way.
    assert.equal(tokenMatches(token, token), true);
    assert.equal(tokenMatches(`${token}x`, token), false);
    assert.equal(tokenMatches(undefined, token), false);
  } finally {
    await server.close();
  }
});

test('socket.io: foreign Origin refused; random events and payloads get error events, the socket stays up', { timeout: 60_000 }, async () => {
  const dir = tempDir('cimbench-socket-');
  const server = createBenchServer({ dbPath: join(dir, 'bench.db'), token: newToken(), campaignsDir: dir, openLink, loopbackOnly: true });
  const url = await server.listen(0, '127.0.0.1');
  try {
    const refused = connectSocket(url, { transports: ['websocket'], reconnection: false, extraHeaders: { origin: 'http://evil.example' } });
    const why = await new Promise<string>((resolve) => {
      refused.once('connect', () => resolve('connected'));
      refused.once('connect_error', (e) => resolve(`refused: ${e.message}`));
    });
    refused.close();
    assert.match(why, /^refused/);
    const socket = connectSocket(url, { transports: ['websocket'], reconnection: false, extraHeaders: { origin: url } });
    await new Promise<void>((resolve, reject) => (socket.once('connect', () => resolve()), socket.once('connect_error', reject)));
    const errors: string[] = [];
    socket.on('live', (e: { kind?: string; message?: string }) => {
      if (e.kind === 'error') errors.push(e.message ?? '');
    });
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.constant('replay'), fc.string({ minLength: 1, maxLength: 12 })), fc.jsonValue({ maxDepth: 3 }), async (name, payload) => {
        if (['connect', 'disconnect', 'connect_error', 'disconnecting', 'newListener', 'removeListener'].includes(name)) return;
        sent++;
        socket.emit(name, payload);
      }),
      { numRuns: 200, seed: 22 },
    );
    // The socket still answers a valid request after all that.
    const replay = await new Promise<unknown>((resolve) => (socket.once('replay', resolve), socket.emit('replay', { since: 0 })));
    assert.ok(Array.isArray(replay), JSON.stringify(replay));
    assert.ok(socket.connected);
    assert.ok(errors.length > 0 && errors.length <= sent, `${errors.length} error events for ${sent} events`);
    socket.close();
  } finally {
    await server.close();
  }
});
