import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { InputError } from '../../src/common/errors.js';
import { parseNetworkSpec, type NetworkSpecInput } from '../../src/spec/index.js';
import { repoPath } from '../helpers/paths.js';

function spec(layers: unknown[], input: [number, number, number] = [28, 28, 1], classes = 10): unknown {
  return { name: 't', input, classes, layers };
}

function expectSpecError(value: unknown, code: string, pattern: RegExp): void {
  assert.throws(
    () => parseNetworkSpec(value, 'net.json'),
    (err: unknown) => {
      assert.ok(err instanceof InputError, 'an InputError');
      assert.equal(err.code, code);
      assert.match(err.describe(), pattern);
      return true;
    },
  );
}

describe('network spec', () => {
  it('derives shapes, parameters and MACs of the issue example by hand', () => {
    const value = JSON.parse(readFileSync(repoPath('fixtures/networks/fm-small.json'), 'utf8')) as NetworkSpecInput;
    const net = parseNetworkSpec(value);
    const [conv, residual, pool, dense] = net.layers;
    assert.deepEqual(conv?.outShape, [28, 28, 16]);
    assert.equal(conv?.weights, 3 * 3 * 1 * 16);
    assert.equal(conv?.macs, 28 * 28 * 9 * 16);
    // residual stride 2, 16 -> 32 channels: main 3x3 conv plus a 1x1 stride-2 projection
    assert.deepEqual(residual?.outShape, [14, 14, 32]);
    assert.deepEqual(residual?.matrices.map((m) => m.role), ['conv', 'projection']);
    assert.equal(residual?.weights, 9 * 16 * 32 + 16 * 32);
    assert.equal(residual?.params, 9 * 16 * 32 + 16 * 32 + 32 + 32);
    assert.equal(residual?.macs, 14 * 14 * (9 * 16 * 32 + 16 * 32));
    assert.deepEqual(pool?.outShape, [7, 7, 32]);
    assert.equal(dense?.weights, 7 * 7 * 32 * 10);
    assert.equal(dense?.activation, 'none', 'the final dense layer produces logits');
    assert.equal(conv?.activation, 'relu');
    assert.equal(net.params, 160 + 5184 + 15690);
    assert.equal(net.mops, (2 * net.macs) / 1e6);
  });

  it('builds resblock and bottleneck matrices with projections only when shapes change', () => {
    const net = parseNetworkSpec(
      spec(
        [
          { op: 'resblock', kernel: 3, out: 8 },
          { op: 'resblock', kernel: 3, out: 8 },
          { op: 'bottleneck', kernel: 3, out: 16, stride: 2 },
          { op: 'identity' },
          { op: 'gap' },
          { op: 'dense', out: 10 },
        ],
        [16, 16, 8],
      ),
    );
    const [rb1, rb2, bn, id, gap] = net.layers;
    assert.deepEqual(rb1?.matrices.map((m) => m.role), ['conv1', 'conv2']);
    assert.deepEqual(rb2?.outShape, [16, 16, 8]);
    assert.deepEqual(bn?.matrices.map((m) => [m.role, m.rows, m.outChannels, m.vectors]), [
      ['reduce', 8, 4, 256],
      ['spatial', 36, 4, 64],
      ['expand', 4, 16, 64],
      ['projection', 8, 16, 64],
    ]);
    assert.deepEqual(id?.outShape, [8, 8, 16]);
    assert.equal(id?.matrices.length, 0);
    assert.deepEqual(gap?.outShape, [1, 1, 16]);
  });

  it('applies valid padding and pool strides', () => {
    const net = parseNetworkSpec(
      spec([
        { op: 'conv', kernel: 5, out: 4, padding: 'valid' },
        { op: 'pool', kind: 'avg', size: 3, stride: 2 },
        { op: 'dense', out: 10 },
      ]),
    );
    assert.deepEqual(net.layers[0]?.outShape, [24, 24, 4]);
    assert.deepEqual(net.layers[1]?.outShape, [11, 11, 4]);
  });

  it('rejects impossible specs naming the layer and the reason', () => {
    expectSpecError(spec([{ op: 'conv', kernel: 5, out: 4 }, { op: 'dense', out: 10 }], [3, 3, 1]), 'INVALID_SPEC', /layers\[0\] \(conv\): kernel 5x5 is larger than its 3x3 input/);
    expectSpecError(spec([{ op: 'conv', kernel: 3, out: -4 }]), 'INVALID_INPUT', /layers\[0\]\.out/);
    expectSpecError(spec([{ op: 'warp', kernel: 3 }]), 'INVALID_INPUT', /layers\[0\]\.op: unknown or missing op/);
    expectSpecError(spec([{ op: 'conv', kernal: 3, out: 4 }]), 'INVALID_INPUT', /kernal/);
    expectSpecError(spec([{ op: 'conv', kernel: 3, out: 4 }]), 'INVALID_SPEC', /ends with 28x28x4 = 3136 values but classes is 10/);
    expectSpecError(spec([{ op: 'pool', kind: 'max', size: 40 }, { op: 'dense', out: 10 }]), 'INVALID_SPEC', /layers\[0\] \(pool\): pool size 40/);
    expectSpecError(spec([{ op: 'residual', kernel: 3, out: 4, padding: 'valid' }, { op: 'dense', out: 10 }]), 'INVALID_SPEC', /needs padding "same"/);
    expectSpecError({ name: 't', input: [28, 28], classes: 10, layers: [] }, 'INVALID_INPUT', /input/);
    expectSpecError(spec([]), 'INVALID_INPUT', /at least one layer/);
  });
});
