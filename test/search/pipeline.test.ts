import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { CimbenchError } from '../../src/common/errors.js';
import { hardwareProfilePath, loadHardwareProfile } from '../../src/hardware/index.js';
import { fashionMnistSubsetDir, initBackend } from '../../src/nn/index.js';
import { BudgetSchema, loadSearchSpace, presetWeights, runSearch, type Budget, type SearchConfig, type SearchHooks } from '../../src/search/index.js';
import { openDatabase, SearchRuns } from '../../src/store/index.js';

/** Seconds, not minutes: every stage runs, on a few hundred images of the committed subset. */
const micro: Budget = BudgetSchema.parse({
  teacher: { epochs: 1, imagesPerEpoch: 256, batchSize: 64, learningRate: 3e-3 },
  teacherEvalImages: 200,
  warmup: { imagesPerStage: 64, batchSize: 32, lambda: 1, learningRate: 3e-3, alphaLearningRate: 0.05 },
  hardware: { samples: 600, topK: 10 },
  nsga2: { population: 4, generations: 1, validationImages: 100 },
  retrain: { epochs: 2, imagesPerEpoch: 256, batchSize: 64, learningRate: 5e-3, augment: { shift: 2, flip: true } },
});

const hwPath = hardwareProfilePath('nas4cim-macro');
function config(method: SearchConfig['method'], preset = 'accuracy'): SearchConfig {
  return {
    space: loadSearchSpace('fashion-mnist'),
    method,
    preset,
    weights: presetWeights(preset),
    budgetName: 'micro',
    budget: micro,
    seed: 3,
    hardware: loadHardwareProfile(hwPath),
    hardwareSource: hwPath,
    dataDir: fashionMnistSubsetDir(),
    workers: 1,
  };
}

const root = mkdtempSync(join(tmpdir(), 'cimbench-search-'));
const db = openDatabase(join(root, 'runs.db'));
const runs = new SearchRuns(db);
const read = (path: string): any => JSON.parse(readFileSync(path, 'utf8'));

before(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('search pipeline (micro budget, committed FashionMNIST subset)', () => {
  const full = join(root, 'full');
  let metrics: Record<string, any>;

  it('nas4cim writes every output and records the run', async () => {
    metrics = await runSearch({ outDir: full, config: config('nas4cim'), runs });
    for (const f of [
      'teacher/spec.json',
      'teacher/model.json',
      'teacher/weights.bin',
      'task-significance.json',
      'hardware-significance.json',
      'combined-significance.json',
      'chosen-spec.json',
      'model/spec.json',
      'model/model.json',
      'model/weights.bin',
      'model/weight-image.bin',
      'model/weight-image.json',
      'metrics.json',
    ]) {
      assert.ok(existsSync(join(full, f)), `${f} written`);
    }
    const task = read(join(full, 'task-significance.json'));
    assert.equal(task.kind, 'task');
    assert.equal(task.layers.length, 3);
    for (const layer of task.layers) assert.ok(Math.abs(layer.values.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-5);
    assert.equal(read(join(full, 'hardware-significance.json')).kind, 'hardware');
    const m = read(join(full, 'metrics.json'));
    assert.deepEqual(m, JSON.parse(JSON.stringify(metrics)));
    assert.equal(m.testImages, 1000, 'the whole (subset) test set');
    assert.ok(m.testAccuracy >= 0 && m.testAccuracy <= 1);
    assert.ok(m.edpMsMj > 0 && m.params > 0 && m.mops > 0);
    assert.ok(m.fits && m.arrays <= m.arraysAvailable, 'the chosen network fits the macro');
    assert.deepEqual(Object.keys(m.stageSeconds), ['teacher', 'warmup', 'hardware', 'selection', 'retrain', 'evaluate']);
    assert.equal(m.backend, 'wasm');
    assert.deepEqual(m.quant, { weightBits: 4, activationBits: 8 });
    const row = runs.list().find((r) => r.outDir === full);
    assert.equal(row?.status, 'finished');
    assert.equal(row?.metrics?.testAccuracy, m.testAccuracy);
    assert.deepEqual(Object.keys(row?.stageSeconds ?? {}).sort(), Object.keys(m.stageSeconds).sort());
  });

  it('an interrupted run resumes from its checkpoint, skips finished stages and ends where the uninterrupted run ended', async () => {
    const dir = join(root, 'resumed');
    const controller = new AbortController();
    const perEpoch = micro.retrain.imagesPerEpoch;
    // Interrupt inside the second retraining epoch (after the first epoch's checkpoint).
    const hooks: SearchHooks = {
      onProgress: (stage, done) => {
        if (stage === 'retrain' && done > perEpoch) controller.abort();
      },
    };
    await assert.rejects(runSearch({ outDir: dir, config: config('nas4cim'), runs, signal: controller.signal, hooks }), (err: unknown) => err instanceof CimbenchError && err.code === 'ABORTED');
    assert.equal(runs.list().find((r) => r.outDir === dir)?.status, 'interrupted');
    const state = read(join(dir, 'checkpoint/state.json'));
    assert.equal(state.retrain.epochsDone, 1);
    assert.equal(existsSync(join(dir, 'metrics.json')), false);

    const skipped: string[] = [];
    const resumed = await runSearch({ outDir: dir, resume: true, runs, hooks: { onStageEnd: (s, _t, wasSkipped) => wasSkipped && skipped.push(s) } });
    assert.deepEqual(skipped, ['teacher', 'warmup', 'hardware', 'selection']);
    assert.equal(resumed.testAccuracy, metrics.testAccuracy);
    assert.equal(resumed.imageSha256, metrics.imageSha256, 'identical retrained weights');
    assert.deepEqual(read(join(dir, 'task-significance.json')).layers, read(join(full, 'task-significance.json')).layers);
    assert.deepEqual(read(join(dir, 'chosen-spec.json')), read(join(full, 'chosen-spec.json')));
    assert.deepEqual(
      runs.list().filter((r) => r.outDir === dir).map((r) => r.status),
      ['finished', 'interrupted'],
    );
  });

  it('spos-nsga2 baseline: supernet, NSGA-II, same retraining and outputs', async () => {
    const dir = join(root, 'spos');
    const m = (await runSearch({ outDir: dir, config: config('spos-nsga2', 'edp'), runs })) as Record<string, any>;
    for (const f of ['pareto-front.json', 'chosen-spec.json', 'model/weight-image.bin', 'metrics.json']) assert.ok(existsSync(join(dir, f)), f);
    const pareto = read(join(dir, 'pareto-front.json'));
    assert.ok(pareto.front.length >= 1);
    assert.ok(pareto.front.every((c: any) => c.fits));
    // The EDP preset picks the cheapest member of the front.
    assert.equal(m.edpMsMj, Math.min(...pareto.front.map((c: any) => c.edpMsMj)));
    assert.deepEqual(Object.keys(m.stageSeconds), ['supernet', 'nsga2', 'retrain', 'evaluate']);
    assert.equal(runs.list().find((r) => r.outDir === dir)?.method, 'spos-nsga2');
  });

  it('searches a user-defined JSON space with resblock and bottleneck operators, both methods', async () => {
    const spaceFile = join(root, 'blocks-space.json');
    writeFileSync(
      spaceFile,
      JSON.stringify({
        name: 'fm-blocks',
        dataset: 'fashion-mnist',
        input: [28, 28, 1],
        classes: 10,
        kernels: [3],
        ops: ['identity', 'resblock', 'bottleneck'],
        channels: [8, 16],
        strides: [2, 1],
        head: [{ op: 'pool', kind: 'max', size: 14 }, { op: 'dense', out: 10 }],
        bottleneckExpansion: 2,
        provenance: 'test: a user space with block operators',
      }),
    );
    for (const method of ['nas4cim', 'spos-nsga2'] as const) {
      const dir = join(root, `blocks-${method}`);
      const m = (await runSearch({ outDir: dir, config: { ...config(method), space: loadSearchSpace(spaceFile) }, runs })) as Record<string, any>;
      const chosen = read(join(dir, 'chosen-spec.json'));
      assert.ok(chosen.layers.slice(0, 2).every((l: { op: string }) => ['identity', 'resblock', 'bottleneck'].includes(l.op)), JSON.stringify(chosen.layers));
      assert.ok(m.fits && m.testImages === 1000, method);
      if (method === 'nas4cim') {
        const task = read(join(dir, 'task-significance.json'));
        assert.deepEqual(task.layers[0].options.map((o: { op: string }) => o.op), ['resblock', 'resblock', 'bottleneck', 'bottleneck']);
        assert.deepEqual(task.layers[1].options.map((o: { op: string }) => o.op), ['identity', 'resblock', 'resblock', 'bottleneck', 'bottleneck']);
      }
    }
  });

  it('reuses a trained teacher: same weights, same accuracy, no teacher training; a teacher of another space is refused', async () => {
    const out = join(root, 'reused-teacher');
    const hooks: string[] = [];
    const m = await runSearch({
      outDir: out,
      config: { ...config('nas4cim'), teacherDir: join(full, 'teacher') },
      hooks: { onProgress: (stage) => hooks.push(stage) },
    });
    assert.equal(typeof m.teacherAccuracy, 'number');
    assert.equal(m.teacherAccuracy, metrics.teacherAccuracy, 'evaluated on the same images with the same weights');
    assert.equal(hooks.includes('teacher'), false, 'no teacher training progress');
    assert.deepEqual(read(join(out, 'teacher', 'spec.json')), read(join(full, 'teacher', 'spec.json')));
    const user = join(root, 'tiny-space.json');
    writeFileSync(user, JSON.stringify({ ...loadSearchSpace('fashion-mnist'), name: 'fm-narrow', channels: [8, 16] }));
    await assert.rejects(
      runSearch({ outDir: join(root, 'wrong-teacher'), config: { ...config('nas4cim'), space: loadSearchSpace(user), teacherDir: join(full, 'teacher') } }),
      /is not the teacher of search space fm-narrow/,
    );
  });

  it('reuses a warm-up: no teacher training and no DDE-GSCST, the same task significance and, for the same preset, the same choice', async () => {
    const out = join(root, 'reused-warmup');
    const stages: string[] = [];
    const m = (await runSearch({
      outDir: out,
      config: { ...config('nas4cim'), warmupDir: full },
      hooks: { onProgress: (stage, _done, detail) => stages.push(`${stage}:${detail ?? ''}`) },
    })) as Record<string, any>;
    assert.equal(stages.some((s) => s.startsWith('teacher:')), false, 'no teacher training progress');
    assert.deepEqual(stages.filter((s) => s.startsWith('warmup:')), ['warmup:reused'], 'no DDE-GSCST steps');
    const task = read(join(out, 'task-significance.json'));
    assert.deepEqual(task.layers, read(join(full, 'task-significance.json')).layers);
    assert.equal(task.meta.reusedFrom, full);
    assert.deepEqual(read(join(out, 'chosen-spec.json')), read(join(full, 'chosen-spec.json')), 'same matrix, seed and preset: same network');
    assert.equal(m.teacherAccuracy, metrics.teacherAccuracy);

    const edp = (await runSearch({ outDir: join(root, 'reused-warmup-edp'), config: { ...config('nas4cim', 'edp'), warmupDir: full } })) as Record<string, any>;
    assert.ok(edp.fits && edp.edpMsMj > 0 && edp.preset === 'edp');
    await assert.rejects(runSearch({ outDir: join(root, 'no-warmup'), config: { ...config('nas4cim'), warmupDir: join(full, 'model') } }), /no task-significance\.json here/);
  });

  it('refuses to write into a non-empty output directory without force', async () => {
    await assert.rejects(runSearch({ outDir: full, config: config('nas4cim'), runs }), /not empty.*--force/);
  });
});
