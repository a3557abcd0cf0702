import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError } from '../../src/common/errors.js';
import { Rng } from '../../src/common/rng.js';
import { BUILTIN_SPACE_NAMES, buildCandidate, loadSearchSpace, opsForLayer, sampleChoices } from '../../src/search/index.js';
import { analyzeNetwork } from '../../src/spec/index.js';

describe('search spaces (NAS4CIM Table 1)', () => {
  it('holds the paper\'s kernels, operators, channels and layer counts', () => {
    const fm = loadSearchSpace('fashion-mnist');
    assert.deepEqual([fm.kernels, fm.ops, fm.channels, fm.strides.length], [[3, 5], ['identity', 'conv', 'residual'], [16, 32, 64], 3]);
    const cifar = loadSearchSpace('cifar10');
    assert.deepEqual([cifar.kernels, cifar.ops, cifar.channels, cifar.strides.length], [[1, 3], ['identity', 'conv', 'resblock'], [16, 32, 48, 64], 9]);
    const imagenet = loadSearchSpace('imagenet');
    assert.deepEqual(
      [imagenet.kernels, imagenet.ops, imagenet.channels, imagenet.strides.length],
      [[1, 3, 5], ['identity', 'resblock', 'bottleneck'], [16, 32, 48, 64, 80, 96], 8],
    );
  });

  it('samples only buildable networks, with no null op where a layer downsamples', () => {
    for (const name of BUILTIN_SPACE_NAMES) {
      const space = loadSearchSpace(name);
      const rng = new Rng(7);
      for (let i = 0; i < 200; i++) {
        const choices = sampleChoices(space, rng);
        choices.forEach((c, layer) => {
          if ((space.strides[layer] ?? 1) > 1) assert.notEqual(c.op, 'identity');
          assert.ok(opsForLayer(space, layer).includes(c.op));
        });
        const net = analyzeNetwork(buildCandidate(space, choices));
        assert.deepEqual(net.outputShape, [1, 1, space.classes]);
      }
    }
  });

  it('gives the same candidates for the same seed', () => {
    const space = loadSearchSpace('cifar10');
    assert.deepEqual(sampleChoices(space, new Rng(3)), sampleChoices(space, new Rng(3)));
    assert.notDeepEqual(sampleChoices(space, new Rng(3)), sampleChoices(space, new Rng(4)));
  });

  it('refuses unknown spaces by name', () => {
    assert.throws(() => loadSearchSpace('mnist'), (err: unknown) => err instanceof InputError && /built-in: fashion-mnist, cifar10, imagenet/.test(err.message));
  });
});
