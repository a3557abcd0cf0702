/**
 * simulateOnChipParallel: seeds shared over worker threads give simulateOnChip's result number for
 * number, whatever the split; progress reaches the whole work; a worker's input error arrives as the
 * same InputError.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { loadJsonFile } from '../../src/common/validate.js';
import { InputError } from '../../src/common/errors.js';
import { loadNoiseProfile, noiseProfilePath, simulateOnChip, simulateOnChipParallel, type NoiseProfile } from '../../src/device/index.js';
import { hardwareProfilePath, loadHardwareProfile, type HardwareProfile } from '../../src/hardware/index.js';
import { initBackend, loadFashionMnistSubset, loadWeightImage, takeDataset, type ImageDataset, type WeightImage } from '../../src/nn/index.js';
import { analyzeNetwork, NetworkSpecSchema, type NetworkAnalysis } from '../../src/spec/index.js';
import { repoPath } from '../helpers/paths.js';

const DEMO = repoPath('fixtures/networks/demo');
let net: NetworkAnalysis;
let image: WeightImage;
let hw: HardwareProfile;
let data: ImageDataset;
let wan: NoiseProfile;

before(async () => {
  await initBackend();
  net = analyzeNetwork(loadJsonFile(NetworkSpecSchema, `${DEMO}/spec.json`), 'demo spec');
  image = loadWeightImage(DEMO);
  hw = loadHardwareProfile(hardwareProfilePath('nas4cim-macro'));
  data = takeDataset(loadFashionMnistSubset().test, 60);
  wan = loadNoiseProfile(noiseProfilePath('rram-wan2022'));
});

describe('simulateOnChipParallel', () => {
  it('gives the one-thread result exactly, with 2 and 3 workers; progress ends at the whole work', async () => {
    const opts = { seeds: [3, 1, 4], timesS: [3600, 1], batchSize: 30 } as const;
    const serial = simulateOnChip(net, image, hw, wan, data, opts);
    for (const workers of [2, 3]) {
      const seen: Array<[number, number]> = [];
      const parallel = await simulateOnChipParallel(net, image, hw, wan, data, { ...opts, workers, onProgress: (d, t) => seen.push([d, t]) });
      assert.deepEqual(parallel, serial, `${workers} workers`);
      // 2 batches for the reference, 2 per seed and time point.
      const last = seen.at(-1);
      assert.deepEqual(last, [2 + 3 * 2 * 2, 2 + 3 * 2 * 2], `${workers} workers`);
      assert.ok(seen.every(([d], i) => i === 0 || d >= (seen[i - 1] as [number, number])[0]), 'progress never goes back');
    }
  });

  it('a bad option found inside a worker is the InputError the one-thread call throws', async () => {
    const bad = { seeds: [1, 2], timesS: [1], batchSize: 30, conductances: [image.matrices.map(() => ({ valuesUs: new Float32Array(3) }))] };
    assert.throws(() => simulateOnChip(net, image, hw, wan, data, bad), /3 given conductances for matrix/);
    await assert.rejects(simulateOnChipParallel(net, image, hw, wan, data, { ...bad, workers: 2 }), (err: unknown) => err instanceof InputError && err.code === 'INVALID_INPUT' && /3 given conductances for matrix/.test(err.message));
  });
});
