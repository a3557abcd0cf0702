import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError } from '../../src/common/errors.js';
import { BACKEND_ENV_VAR, backendInfo, backendName, initBackend, parseBackendRequest } from '../../src/nn/backend.js';

async function nodeBackendLoads(): Promise<boolean> {
  const specifier = '@tensorflow/tfjs-node';
  try {
    await import(specifier);
    return true;
  } catch {
    return false;
  }
}

test('backend requests parse from the option or CIMBENCH_TF_BACKEND; unknown names are InputErrors', () => {
  assert.equal(parseBackendRequest(undefined, 'x'), 'auto');
  assert.equal(parseBackendRequest('WASM', 'x'), 'wasm');
  assert.equal(parseBackendRequest('tensorflow', 'x'), 'node');
  assert.throws(() => parseBackendRequest('gpu', BACKEND_ENV_VAR), (e: unknown) => e instanceof InputError && e.where === BACKEND_ENV_VAR && /gpu/.test(e.message));
});

test('explicit cpu and wasm requests select those backends; the env var works; auto prefers node, then wasm', async () => {
  const cpu = await initBackend({ env: { [BACKEND_ENV_VAR]: 'cpu' } });
  assert.equal(cpu.name, 'cpu');
  assert.equal(backendName(), 'cpu');
  const wasm = await initBackend({ backend: 'wasm', env: { [BACKEND_ENV_VAR]: 'cpu' } });
  assert.equal(wasm.name, 'wasm', 'the option overrides the env var');
  assert.equal(tf.getBackend(), 'wasm');
  assert.equal(wasm.threads, 1);
  const auto = await initBackend({ env: {} });
  const hasNode = await nodeBackendLoads();
  assert.equal(auto.name, hasNode ? 'tensorflow' : 'wasm');
  if (!hasNode) assert.match(auto.skipped.join('\n'), /tfjs-node did not load/);
  assert.equal(backendInfo(), auto);
});

test('an explicit node request fails loudly when @tensorflow/tfjs-node cannot load', async (t) => {
  if (await nodeBackendLoads()) {
    const info = await initBackend({ backend: 'node' });
    assert.equal(info.name, 'tensorflow');
    return;
  }
  t.diagnostic('@tensorflow/tfjs-node is not installed here: checking the error');
  await assert.rejects(initBackend({ backend: 'node' }), (e: unknown) => e instanceof InputError && e.code === 'NOT_FOUND' && /npm install @tensorflow\/tfjs-node/.test(e.message));
});
