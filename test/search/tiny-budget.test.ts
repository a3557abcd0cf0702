import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { hardwareProfilePath, loadHardwareProfile } from '../../src/hardware/index.js';
import { initBackend, loadFashionMnist } from '../../src/nn/index.js';
import { budgetByName, loadSearchSpace, presetWeights, runSearch } from '../../src/search/index.js';

/**
 * The demo's and CI's budget on the real dataset: the issue asks for >= 80% test accuracy of the
 * quantised network on all 10,000 FashionMNIST test images. Seconds are reported, not asserted
 * (speed lives in bench:train). Skipped only where the Debian dataset package is not installed.
 */
let missing: string | undefined;
try {
  loadFashionMnist();
} catch (err) {
  missing = (err as Error).message;
}

test('nas4cim --budget tiny on real FashionMNIST reaches >= 80% quantised test accuracy', { skip: missing }, async (t) => {
  await initBackend({ backend: 'wasm' });
  const hwPath = hardwareProfilePath('nas4cim-macro');
  const m = await runSearch({
    outDir: join(mkdtempSync(join(tmpdir(), 'cimbench-tiny-')), 'out'),
    config: {
      space: loadSearchSpace('fashion-mnist'),
      method: 'nas4cim',
      preset: 'accuracy',
      weights: presetWeights('accuracy'),
      budgetName: 'tiny',
      budget: budgetByName('tiny'),
      seed: 1,
      hardware: loadHardwareProfile(hwPath),
      hardwareSource: hwPath,
      dataDir: null,
      workers: 2,
    },
  });
  t.diagnostic(`tiny: ${(m.testAccuracy * 100).toFixed(2)}% on ${m.testImages} images, EDP ${m.edpMsMj.toExponential(3)} ms*mJ, ${Number(m.totalStageSeconds).toFixed(0)} s`);
  assert.equal(m.testImages, 10000);
  assert.equal(m.fits, true);
  assert.ok(m.testAccuracy >= 0.8, `quantised test accuracy ${m.testAccuracy}`);
});
