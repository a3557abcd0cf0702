import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError } from '../../src/common/errors.js';
import { hardwareProfilePath, loadHardwareProfile, type HardwareProfile } from '../../src/hardware/index.js';
import {
  allLayerOptions,
  hardwareStage,
  loadSearchSpace,
  presetWeights,
  selectNetwork,
  type SignificanceMatrix,
} from '../../src/search/index.js';

const space = loadSearchSpace('fashion-mnist');
// Two tiles of the NAS4CIM macro: enough fitting candidates for a Top-50 from 3000 samples.
const macro = loadHardwareProfile(hardwareProfilePath('nas4cim-macro'));
const hw: HardwareProfile = { ...macro, array: { ...macro.array, tiles: 2 } };
const options = allLayerOptions(space);

/** A task matrix that strongly prefers the widest 5x5 residual option in every layer. */
function taskPreferringBig(): SignificanceMatrix {
  return {
    kind: 'task',
    space: space.name,
    meta: {},
    layers: options.map((row) => ({
      options: row,
      values: row.map((o) => (o.op === 'residual' && o.kernel === 5 && o.out === 32 ? 10 : 1)),
    })),
  };
}

describe('hardware stage: Top-K statistics', () => {
  const task = taskPreferringBig();
  const run = () => hardwareStage(space, hw, task, { samples: 3000, topK: 50, seed: 11 });

  it('draws candidates only from the top-M options of each layer by task significance', () => {
    const one = hardwareStage(space, hw, task, { samples: 200, topK: 10, seed: 11, topM: 1 });
    assert.equal(one.pool.length, 1, 'M = 1: only the most significant option per layer');
    assert.deepEqual(
      one.pool[0]?.choices.map((c) => `${c.op}${c.kernel}/${c.out}`),
      options.map(() => 'residual5/32'),
    );
    const all = hardwareStage(space, hw, task, { samples: 3000, topK: 50, seed: 11, topM: 13 });
    const usedOptions = (r: typeof all) => new Set(r.pool.flatMap((c) => c.indices.map((j, layer) => `${layer}:${j}`))).size;
    assert.ok(usedOptions(all) > usedOptions(run()), 'every option can be drawn with M = all');
    assert.equal(usedOptions(all), options.reduce((n, row) => n + row.length, 0));
  });

  it('counts operator frequencies in the K best fitting candidates', () => {
    const r = run();
    assert.equal(r.topK.length, 50);
    assert.ok(r.topK.every((c) => c.fits));
    for (let i = 1; i < r.topK.length; i++) assert.ok((r.topK[i - 1]?.cost ?? 0) <= (r.topK[i]?.cost ?? 0));
    r.hardware.layers.forEach((layer, i) => {
      assert.equal(layer.values.length, options[i]?.length);
      const sum = layer.values.reduce((s, v) => s + v, 0);
      assert.ok(Math.abs(sum - 1) < 1e-9, `layer ${i} frequencies sum to ${sum}`);
      // Frequencies are exactly counts / K.
      const counts = (options[i] ?? []).map((_, j) => r.topK.filter((c) => c.indices[i] === j).length);
      counts.forEach((c, j) => assert.equal(layer.values[j], c / 50));
    });
    // Every Top-K candidate is at least as cheap as every fitting candidate left out.
    const worstKept = r.topK[r.topK.length - 1]?.cost ?? 0;
    const keptKeys = new Set(r.topK.map((c) => c.indices.join(',')));
    for (const c of r.pool) if (c.fits && !keptKeys.has(c.indices.join(','))) assert.ok(c.cost >= worstKept);
  });

  it('is reproducible for a seed', () => {
    assert.deepEqual(run().hardware, run().hardware);
  });

  it('selection moves from the task\'s favourite towards cheap operators as the hardware weight grows', () => {
    const r = run();
    const accuracy = selectNetwork(space, hw, task, r.hardware, presetWeights('accuracy'), r.pool, { name: 'a' });
    const edp = selectNetwork(space, hw, task, r.hardware, presetWeights('edp'), r.pool, { name: 'e' });
    assert.ok(accuracy.chosen.fits && edp.chosen.fits);
    assert.ok(edp.chosen.edpMsMj <= accuracy.chosen.edpMsMj, `${edp.chosen.edpMsMj} <= ${accuracy.chosen.edpMsMj}`);
    assert.equal(accuracy.spec.name, 'a');
    const taskOnly = selectNetwork(space, hw, task, r.hardware, { task: 1, hardware: 0 }, r.pool, { name: 't', requireFit: false });
    assert.ok(taskOnly.chosen.choices.every((c) => c.op === 'residual' && c.kernel === 5 && c.out === 32));
  });

  it('says so when no candidate fits the macro', () => {
    const tiny: HardwareProfile = { ...macro, array: { ...macro.array, arraysPerTile: 1 } };
    assert.throws(
      () => hardwareStage(space, tiny, task, { samples: 200, topK: 10, seed: 1 }),
      (err: unknown) => err instanceof InputError && err.code === 'DOES_NOT_FIT' && /1 available/.test(err.message),
    );
  });

  it('rejects a task matrix that does not match the space', () => {
    const wrong = { ...task, layers: task.layers.slice(1) };
    assert.throws(() => hardwareStage(space, hw, wrong, { samples: 10, topK: 5, seed: 1 }), /does not match search space/);
    assert.throws(() => presetWeights('fast'), /unknown preset "fast"/);
  });
});
