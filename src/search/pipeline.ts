import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { CimbenchError, InputError } from '../common/errors.js';
import { loadJsonFile, parseWith, readJsonFile } from '../common/validate.js';
import { arraysAvailable, hardwareProfileHash, HardwareProfileSchema, type HardwareProfile } from '../hardware/index.js';
import {
  backendName,
  buildNetwork,
  evaluate,
  exportNetwork,
  loadCifar10,
  loadFashionMnist,
  takeDataset,
  trainNetwork,
  type AdamState,
  type DatasetSplits,
  type ImageDataset,
  EXPORT_FILES,
  importFloatNetwork,
  type QuantOptions,
  type SpecNetwork,
} from '../nn/index.js';
import { NetworkSpecSchema, type NetworkSpec } from '../spec/index.js';
import type { SearchRuns } from '../store/index.js';
import { BudgetSchema, type Budget } from './budget.js';
import { adamFromArrays, adamToArrays, loadParams, saveParams, writeFileAtomic } from './checkpoint.js';
import { ddeStage, taskSignificance } from './dde.js';
import { hardwareStage, scoreChoices, type ScoredCandidate } from './hardware-stage.js';
import { SelectionWeightsSchema, selectNetwork, type SelectionWeights } from './select.js';
import { allLayerOptions, optionLabel, SignificanceMatrixSchema, type SignificanceMatrix } from './significance.js';
import { buildCandidate, SearchSpaceSchema, type SearchSpace } from './space.js';
import { nsga2Search, pickFromFront, SposSupernet, trainSpos, validationSplit } from './spos.js';
import { assertSupernetSupports } from './supernet.js';
import { teacherSpec } from './teacher.js';

/**
 * `cimbench search` end to end, resumable:
 *   nas4cim:     teacher -> warmup (DDE-GSCST) -> hardware (Top-K) -> selection -> retrain -> evaluate
 *   spos-nsga2:  supernet (single-path one-shot) -> nsga2 -> retrain -> evaluate
 * Every finished stage is recorded in <out>/checkpoint/state.json (with its wall time) and its
 * products written under <out>; the teacher and the retraining also checkpoint after every epoch,
 * DDE-GSCST after every stage (theta_i and alpha_i). A resumed run skips what is recorded and
 * continues; with the same config and seed it reproduces the uninterrupted run (training is
 * deterministic for a seed and a worker count; epoch checkpoints hold the optimiser state too).
 */

export const SEARCH_METHODS = ['nas4cim', 'spos-nsga2'] as const;
export type SearchMethod = (typeof SEARCH_METHODS)[number];

export const SearchConfigSchema = z.strictObject({
  space: SearchSpaceSchema,
  method: z.enum(SEARCH_METHODS),
  /** Preset name, or null when explicit weights were given. */
  preset: z.string().nullable(),
  weights: SelectionWeightsSchema,
  budgetName: z.string().min(1),
  budget: BudgetSchema,
  seed: z.int().min(0),
  hardware: HardwareProfileSchema,
  /** Preset name or file the profile came from. */
  hardwareSource: z.string(),
  /** Dataset directory (null: the default location / environment variable). */
  dataDir: z.string().nullable(),
  /** Data-parallel replicas for the teacher and the retraining. */
  workers: z.int().min(1),
  /** A trained teacher to reuse (the `teacher/` folder of an earlier search of the same space); absent: train one. */
  teacherDir: z.string().optional(),
  /**
   * The output directory of an earlier nas4cim search of the same space whose teacher and warm-up
   * (its task-significance matrix) are reused: no teacher training and no DDE-GSCST, so another
   * preset or weighting costs only the hardware stage, selection and retraining.
   */
  warmupDir: z.string().optional(),
});
export type SearchConfig = z.output<typeof SearchConfigSchema>;

const DdeStageResultSchema = z.strictObject({
  layer: z.int().min(0),
  alpha: z.array(z.number()),
  significance: z.array(z.number()),
  steps: z.int(),
  images: z.int(),
  seconds: z.number(),
  finalLoss: z.number(),
  finalCe: z.number(),
});

const TrainProgressSchema = z.strictObject({ epochsDone: z.int().min(0), seconds: z.number().nonnegative() });

const StateSchema = z.strictObject({
  format: z.literal('cimbench-search-checkpoint'),
  version: z.literal(1),
  config: SearchConfigSchema,
  /** Finished stages and their wall time (seconds, summed over invocations). */
  stages: z.record(z.string(), z.number()),
  teacher: TrainProgressSchema.optional(),
  teacherAccuracy: z.strictObject({ accuracy: z.number(), images: z.int() }).optional(),
  dde: z.array(DdeStageResultSchema).default([]),
  supernet: z.strictObject({ steps: z.int(), images: z.int(), finalLoss: z.number() }).optional(),
  selection: z.strictObject({ indices: z.array(z.int()), fellBack: z.boolean(), supernetAccuracy: z.number().optional() }).optional(),
  retrain: TrainProgressSchema.optional(),
});
type State = z.output<typeof StateSchema>;

export const OUTPUT_FILES = {
  teacherDir: 'teacher',
  modelDir: 'model',
  checkpointDir: 'checkpoint',
  state: 'state.json',
  task: 'task-significance.json',
  hardware: 'hardware-significance.json',
  combined: 'combined-significance.json',
  topK: 'hardware-topk.json',
  pareto: 'pareto-front.json',
  chosen: 'chosen-spec.json',
  metrics: 'metrics.json',
} as const;

export function stagesOf(method: SearchMethod): readonly string[] {
  return method === 'nas4cim' ? ['teacher', 'warmup', 'hardware', 'selection', 'retrain', 'evaluate'] : ['supernet', 'nsga2', 'retrain', 'evaluate'];
}

export interface SearchHooks {
  /** A stage begins; `total` units of work (images, candidates, generations). */
  onStageStart?(stage: string, total: number, unit: string): void;
  onProgress?(stage: string, done: number, detail?: string): void;
  onStageEnd?(stage: string, seconds: number, skipped: boolean): void;
}

export interface SearchRequest {
  readonly outDir: string;
  /** A new run's config; omit with `resume` (the checkpoint's config is used). */
  readonly config?: SearchConfig;
  readonly resume?: boolean;
  /** Replace the known outputs of an existing output directory. */
  readonly force?: boolean;
  readonly runs?: SearchRuns;
  readonly signal?: AbortSignal;
  readonly hooks?: SearchHooks;
}

export interface SearchMetrics {
  readonly [key: string]: unknown;
  readonly testAccuracy: number;
  readonly edpMsMj: number;
}

export function defaultWorkers(): number {
  return Math.max(1, Math.min(2, availableParallelism()));
}

/** The training and test data a config names, or a clear NOT_FOUND naming what provides it. */
export function loadSearchData(config: SearchConfig): DatasetSplits {
  const dataset = config.space.dataset;
  const dir = config.dataDir ?? undefined;
  if (dataset === 'fashion-mnist') return loadFashionMnist(dir !== undefined ? { dir } : {});
  if (dataset === 'cifar10') return loadCifar10(dir !== undefined ? { dir } : {});
  throw new InputError('NOT_FOUND', `no loader for dataset "${dataset}" (cimbench reads fashion-mnist and cifar10)`, {
    where: `search space ${config.space.name}`,
    details: { field: 'dataset' },
  });
}

/** Fails early when not even the space's smallest network fits the macro. */
export function checkFeasible(space: SearchSpace, hw: HardwareProfile): void {
  const options = allLayerOptions(space);
  const smallest = options.map((row) => {
    let best = 0;
    let bestWeights = Infinity;
    row.forEach((o, j) => {
      const w = o.op === 'identity' ? 0 : o.kernel * o.kernel * o.out;
      if (w < bestWeights) {
        best = j;
        bestWeights = w;
      }
    });
    return best;
  });
  const c = scoreChoices(space, hw, smallest, options);
  if (!c.fits) {
    throw new InputError(
      'DOES_NOT_FIT',
      `not even the smallest ${space.name} network fits ${hw.name}: it needs ${c.arrays} arrays, the macro has ${arraysAvailable(hw)}; use a larger hardware profile (--hardware)`,
      { where: 'hardware profile', details: { arraysRequired: c.arrays, arraysAvailable: arraysAvailable(hw) } },
    );
  }
}

/**
 * Checks, without loading any weights, that `dir` holds this space's teacher (the `teacher/` folder
 * of an earlier search of the same space), so a bad --teacher fails before any work.
 */
export function checkTeacherDir(dir: string, space: SearchSpace): void {
  const specPath = join(dir, EXPORT_FILES.spec);
  if (!existsSync(specPath)) {
    throw new InputError('NOT_FOUND', `no ${EXPORT_FILES.spec} here: pass the teacher/ folder of an earlier search`, { where: dir, details: { field: 'teacher' } });
  }
  const spec = loadJsonFile(NetworkSpecSchema, specPath);
  const want = teacherSpec(space);
  if (JSON.stringify(spec.layers) !== JSON.stringify(want.layers) || spec.input.join('x') !== want.input.join('x')) {
    throw new InputError('INVALID_INPUT', `${spec.name} is not the teacher of search space ${space.name} (its layers differ)`, {
      where: specPath,
      details: { field: 'teacher' },
    });
  }
}

/**
 * Checks that `dir` holds a finished warm-up of `space` (an earlier nas4cim search's output) and
 * returns its task-significance matrix: same space name and the same options in every layer.
 */
export function loadWarmupDir(dir: string, space: SearchSpace): SignificanceMatrix {
  const path = join(dir, OUTPUT_FILES.task);
  if (!existsSync(path)) {
    throw new InputError('NOT_FOUND', `no ${OUTPUT_FILES.task} here: pass the output directory of an earlier nas4cim search that finished its warm-up`, { where: dir, details: { field: 'warmup' } });
  }
  const task = loadJsonFile(SignificanceMatrixSchema, path);
  const options = allLayerOptions(space).map((layer) => layer.map(optionLabel));
  const got = task.layers.map((l) => l.options.map(optionLabel));
  if (task.kind !== 'task' || task.space !== space.name || JSON.stringify(got) !== JSON.stringify(options)) {
    throw new InputError('INVALID_INPUT', `is not a task-significance matrix of search space ${space.name} (space "${task.space}", its layers or options differ)`, { where: path, details: { field: 'warmup' } });
  }
  checkTeacherDir(join(dir, OUTPUT_FILES.teacherDir), space);
  return task;
}

/** Loads a teacher checked by checkTeacherDir. */
async function loadTeacher(dir: string, space: SearchSpace, seed: number): Promise<SpecNetwork> {
  checkTeacherDir(dir, space);
  return importFloatNetwork(dir, { seed });
}

/** Images a training stage sees per epoch: 0 means the training set once. */
function imagesPerEpoch(b: Budget['teacher'], train: ImageDataset): number {
  return b.imagesPerEpoch > 0 ? b.imagesPerEpoch : train.count;
}

function quantOf(hw: HardwareProfile): QuantOptions {
  return { weightBits: hw.weights.bits, activationBits: hw.inputs.bits };
}

/** Known outputs, the only entries --force removes (anything else in the directory is left alone). */
function clearOutputs(outDir: string): void {
  for (const name of Object.values(OUTPUT_FILES)) {
    if (name === OUTPUT_FILES.state) continue;
    rmSync(join(outDir, name), { recursive: true, force: true });
  }
}

function readState(outDir: string): State {
  const path = join(outDir, OUTPUT_FILES.checkpointDir, OUTPUT_FILES.state);
  if (!existsSync(path)) {
    throw new InputError('NOT_FOUND', `no search checkpoint to resume (${OUTPUT_FILES.checkpointDir}/${OUTPUT_FILES.state} is missing)`, { where: outDir });
  }
  return parseWith(StateSchema, readJsonFile(path), `${path} (corrupt checkpoint)`);
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

function aborted(): CimbenchError {
  return new CimbenchError('ABORTED', 'search was cancelled');
}

class Run {
  readonly space: SearchSpace;
  readonly hw: HardwareProfile;
  readonly budget: Budget;
  readonly ck: string;
  private readonly t0 = performance.now();
  teacher: SpecNetwork | undefined;

  constructor(
    readonly req: SearchRequest,
    readonly config: SearchConfig,
    readonly state: State,
    readonly data: DatasetSplits,
    readonly runId: number | undefined,
  ) {
    this.space = config.space;
    this.hw = config.hardware;
    this.budget = config.budget;
    this.ck = join(req.outDir, OUTPUT_FILES.checkpointDir);
  }

  out(name: string): string {
    return join(this.req.outDir, name);
  }

  saveState(): void {
    writeFileAtomic(join(this.ck, OUTPUT_FILES.state), json(this.state));
  }

  checkSignal(): void {
    if (this.req.signal?.aborted) throw aborted();
  }

  /** Runs a stage unless the checkpoint says it is done; records its time in state and store. */
  async stage(name: string, total: number, unit: string, body: () => Promise<void>): Promise<void> {
    if (this.state.stages[name] !== undefined) {
      this.req.hooks?.onStageEnd?.(name, this.state.stages[name] as number, true);
      return;
    }
    this.checkSignal();
    this.req.hooks?.onStageStart?.(name, total, unit);
    // Training stages resumed from an epoch checkpoint count the time spent before it.
    const prior = name === 'teacher' || name === 'retrain' ? (this.state[name]?.seconds ?? 0) : 0;
    const t = performance.now();
    await body();
    const seconds = (performance.now() - t) / 1000 + prior;
    this.state.stages[name] = seconds;
    this.saveState();
    if (this.runId !== undefined) this.req.runs?.recordStage(this.runId, name, seconds);
    this.req.hooks?.onStageEnd?.(name, seconds, false);
  }

  progress(stage: string, done: number, detail?: string): void {
    this.req.hooks?.onProgress?.(stage, done, detail);
  }

  /** Trains `net` with epoch checkpoints under `name` (params, optimiser state, epochs done). */
  async train(net: SpecNetwork, name: 'teacher' | 'retrain', b: Budget['teacher']): Promise<void> {
    const prior = this.state[name];
    let startEpoch = 0;
    let optimizerState: AdamState | undefined;
    if (prior && prior.epochsDone > 0) {
      const p = loadParams(this.ck, name);
      net.setParameterValues(p.arrays, join(this.ck, `${name}.bin`));
      const o = loadParams(this.ck, `${name}-optimizer`);
      optimizerState = adamFromArrays(o.arrays, Number(o.meta.t ?? 0), join(this.ck, `${name}-optimizer.bin`));
      startEpoch = prior.epochsDone;
    }
    const perEpoch = imagesPerEpoch(b, this.data.train);
    let seen = startEpoch * perEpoch;
    const started = performance.now();
    const before = prior?.seconds ?? 0;
    await trainNetwork(net, this.data.train, {
      epochs: b.epochs,
      imagesPerEpoch: perEpoch,
      batchSize: b.batchSize,
      learningRate: b.learningRate,
      weightDecay: b.weightDecay,
      labelSmoothing: b.labelSmoothing,
      ...(b.augment.shift > 0 || b.augment.flip ? { augment: b.augment } : {}),
      seed: this.config.seed,
      workers: this.config.workers,
      startEpoch,
      ...(optimizerState ? { optimizerState } : {}),
      ...(this.req.signal ? { signal: this.req.signal } : {}),
      onBatchEnd: async (info) => {
        seen += Math.min(b.batchSize, perEpoch - info.batch * b.batchSize);
        this.progress(name, seen, `loss ${info.loss.toFixed(3)} ${info.imagesPerSecond.toFixed(0)} img/s`);
        // With one replica nothing else yields to the event loop: let Ctrl-C through.
        if (info.batch % 4 === 3) await new Promise<void>((r) => setImmediate(r));
      },
      onCheckpoint: (epochsDone, adam) => {
        saveParams(this.ck, name, net.getParameterValues());
        saveParams(this.ck, `${name}-optimizer`, adamToArrays(adam), { t: adam.t });
        this.state[name] = { epochsDone, seconds: before + (performance.now() - started) / 1000 };
        this.saveState();
      },
    });
  }

  loadTeacher(): SpecNetwork {
    if (this.teacher) return this.teacher;
    const net = buildNetwork(teacherSpec(this.space), { seed: this.config.seed });
    const p = loadParams(this.ck, 'teacher');
    net.setParameterValues(p.arrays, join(this.ck, 'teacher.bin'));
    this.teacher = net;
    return net;
  }

  wallSeconds(): number {
    return (performance.now() - this.t0) / 1000;
  }
}

/**
 * Runs (or resumes) a search; returns the metrics written to metrics.json. Records the run in the
 * store: started before any work, each stage's time, then finished / failed / interrupted.
 */
export async function runSearch(req: SearchRequest): Promise<SearchMetrics> {
  const outDir = resolve(req.outDir);
  let state: State;
  if (req.resume) {
    state = readState(outDir);
  } else {
    if (!req.config) throw new CimbenchError('INTERNAL', 'runSearch needs a config for a new run');
    if (existsSync(outDir) && readdirSync(outDir).length > 0) {
      if (!req.force) {
        throw new InputError('INVALID_INPUT', 'output directory exists and is not empty: pass --force to replace its search outputs, or --resume to continue it', {
          where: outDir,
          details: { field: 'out' },
        });
      }
    }
    state = { format: 'cimbench-search-checkpoint', version: 1, config: parseWith(SearchConfigSchema, req.config, 'search config'), stages: {}, dde: [] };
  }
  const config = state.config;
  // Everything that can reject the input happens before anything is written.
  assertSupernetSupports(config.space);
  checkFeasible(config.space, config.hardware);
  const data = loadSearchData(config);
  if (!req.resume && req.force && existsSync(outDir)) clearOutputs(outDir);
  mkdirSync(join(outDir, OUTPUT_FILES.checkpointDir), { recursive: true });

  const backend = backendName();
  const hwSha = hardwareProfileHash(config.hardware);
  const row = req.runs?.start({
    space: config.space.name,
    method: config.method,
    preset: config.preset ?? `weights ${config.weights.task},${config.weights.hardware}`,
    budget: config.budgetName,
    seed: config.seed,
    backend,
    hardwareProfile: config.hardware.name,
    hardwareSha256: hwSha,
    outDir,
    config: { ...config, resumed: req.resume ?? false },
  });
  const run = new Run({ ...req, outDir }, config, state, data, row?.id);
  run.saveState();
  try {
    const metrics = config.method === 'nas4cim' ? await nas4cim(run) : await sposNsga2(run);
    if (row) req.runs?.finish(row.id, 'finished', metrics);
    return metrics;
  } catch (err) {
    if (row) {
      const isAbort = err instanceof CimbenchError && err.code === 'ABORTED';
      req.runs?.finish(row.id, isAbort ? 'interrupted' : 'failed', null, err instanceof Error ? err.message : String(err));
    }
    throw err;
  } finally {
    run.teacher?.dispose();
  }
}

async function nas4cim(run: Run): Promise<SearchMetrics> {
  const { space, hw, budget, config, data } = run;
  const L = space.strides.length;
  const quant = quantOf(hw);
  // A warm-up to reuse is read and checked once, before any stage runs.
  const reusedTask = config.warmupDir !== undefined ? loadWarmupDir(config.warmupDir, space) : undefined;

  await run.stage('teacher', budget.teacher.epochs * imagesPerEpoch(budget.teacher, data.train), 'images', async () => {
    let net: SpecNetwork;
    const reused = config.teacherDir ?? (config.warmupDir !== undefined ? join(config.warmupDir, OUTPUT_FILES.teacherDir) : undefined);
    if (reused) {
      net = await loadTeacher(reused, space, config.seed);
      run.teacher = net;
    } else {
      net = buildNetwork(teacherSpec(space), { seed: config.seed });
      run.teacher = net;
      await run.train(net, 'teacher', budget.teacher);
    }
    saveParams(run.ck, 'teacher', net.getParameterValues());
    const test = budget.teacherEvalImages > 0 ? takeDataset(data.test, budget.teacherEvalImages) : data.test;
    const r = evaluate(net, test);
    run.state.teacherAccuracy = { accuracy: r.accuracy, images: r.count };
    await exportNetwork(net, run.out(OUTPUT_FILES.teacherDir));
  });

  let task: SignificanceMatrix | undefined;
  await run.stage('warmup', L * budget.warmup.imagesPerStage, 'images', async () => {
    if (reusedTask) {
      task = { ...reusedTask, meta: { ...reusedTask.meta, reusedFrom: config.warmupDir } };
      writeFileSync(run.out(OUTPUT_FILES.task), json(task));
      run.progress('warmup', L * budget.warmup.imagesPerStage, 'reused');
      return;
    }
    const teacher = run.loadTeacher();
    for (let layer = 0; layer < L; layer++) {
      if (run.state.dde.some((r) => r.layer === layer)) continue;
      const { stage, result } = await ddeStage(teacher, space, layer, data.train, {
        ...budget.warmup,
        quant,
        seed: config.seed,
        ...(run.req.signal ? { signal: run.req.signal } : {}),
        onStep: (l, step, _steps, loss) => run.progress('warmup', l * budget.warmup.imagesPerStage + Math.min(budget.warmup.imagesPerStage, step * budget.warmup.batchSize), `stage ${l + 1}/${L} loss ${loss.toFixed(3)}`),
      });
      // Algorithm 1's "save theta_i, alpha_i".
      saveParams(run.ck, `dde-stage-${layer}`, stage.getValues());
      stage.dispose();
      run.state.dde.push(result as z.output<typeof DdeStageResultSchema>);
      run.saveState();
    }
    task = taskSignificance(space, run.state.dde, {
      lambda: budget.warmup.lambda,
      imagesPerStage: budget.warmup.imagesPerStage,
      quant,
      seed: config.seed,
      stages: run.state.dde.map((r) => ({ layer: r.layer, steps: r.steps, seconds: r.seconds, finalLoss: r.finalLoss, finalCe: r.finalCe })),
    });
    writeFileSync(run.out(OUTPUT_FILES.task), json(task));
  });
  task ??= loadJsonFile(SignificanceMatrixSchema, run.out(OUTPUT_FILES.task));
  run.teacher?.dispose();
  run.teacher = undefined;

  const hwOpts = { samples: budget.hardware.samples, topK: budget.hardware.topK, ...(budget.hardware.topM !== undefined ? { topM: budget.hardware.topM } : {}), seed: config.seed };
  let hwResult: ReturnType<typeof hardwareStage> | undefined;
  await run.stage('hardware', budget.hardware.samples, 'candidates', async () => {
    hwResult = hardwareStage(space, hw, task as SignificanceMatrix, { ...hwOpts, onProgress: (done) => run.progress('hardware', done) });
    writeFileSync(run.out(OUTPUT_FILES.hardware), json(hwResult.hardware));
    writeFileSync(run.out(OUTPUT_FILES.topK), json(hwResult.topK.map((c) => ({ ...candidateSummary(c), cost: c.cost }))));
  });

  await run.stage('selection', 1, 'network', async () => {
    // Resumed after the hardware stage: its pool is recomputed (deterministic for the seed).
    hwResult ??= hardwareStage(space, hw, task as SignificanceMatrix, hwOpts);
    const sel = selectNetwork(space, hw, task as SignificanceMatrix, hwResult.hardware, config.weights, hwResult.pool, { name: `${space.name}-${config.preset ?? 'weighted'}` });
    writeFileSync(run.out(OUTPUT_FILES.combined), json(sel.combined));
    writeFileSync(run.out(OUTPUT_FILES.chosen), json(sel.spec));
    run.state.selection = { indices: [...sel.chosen.indices], fellBack: sel.fellBack };
    run.progress('selection', 1);
  });

  return retrainAndEvaluate(run);
}

async function sposNsga2(run: Run): Promise<SearchMetrics> {
  const { space, hw, budget, config, data } = run;
  const L = space.strides.length;
  const quant = quantOf(hw);
  const images = L * budget.warmup.imagesPerStage;
  let supernet: SposSupernet | undefined;
  try {
    await run.stage('supernet', images, 'images', async () => {
      supernet = new SposSupernet(space, quant, config.seed);
      run.state.supernet = await trainSpos(supernet, data.train, {
        images,
        batchSize: budget.warmup.batchSize,
        learningRate: budget.warmup.learningRate,
        validationImages: budget.nsga2.validationImages,
        quant,
        seed: config.seed,
        ...(run.req.signal ? { signal: run.req.signal } : {}),
        onStep: (step, _steps, loss) => run.progress('supernet', Math.min(images, step * budget.warmup.batchSize), `loss ${loss.toFixed(3)}`),
      });
      saveParams(run.ck, 'supernet', supernet.getValues());
    });

    await run.stage('nsga2', budget.nsga2.generations, 'generations', async () => {
      if (!supernet) {
        supernet = new SposSupernet(space, quant, config.seed);
        supernet.setValues(loadParams(run.ck, 'supernet').arrays, join(run.ck, 'supernet.bin'));
      }
      const validation = validationSplit(data.train, budget.nsga2.validationImages);
      const { front, evaluations } = await nsga2Search(supernet, hw, validation, {
        population: budget.nsga2.population,
        generations: budget.nsga2.generations,
        seed: config.seed,
        ...(run.req.signal ? { signal: run.req.signal } : {}),
        onGeneration: (g) => run.progress('nsga2', g),
      });
      const chosen = pickFromFront(front, config.weights);
      const spec = buildCandidate(space, chosen.candidate.choices, `${space.name}-spos-${config.preset ?? 'weighted'}`);
      writeFileSync(
        run.out(OUTPUT_FILES.pareto),
        json({ evaluations, validationImages: validation.count, weights: config.weights, front: front.map((m) => ({ ...candidateSummary(m.candidate), supernetAccuracy: m.accuracy })) }),
      );
      writeFileSync(run.out(OUTPUT_FILES.chosen), json(spec));
      run.state.selection = { indices: [...chosen.indices], fellBack: false, supernetAccuracy: chosen.accuracy };
    });
  } finally {
    (supernet as SposSupernet | undefined)?.dispose();
  }
  return retrainAndEvaluate(run);
}

function candidateSummary(c: ScoredCandidate): Record<string, unknown> {
  return {
    choices: c.choices.map(optionLabel),
    indices: c.indices,
    edpMsMj: c.edpMsMj,
    latencyMs: c.latencyMs,
    energyMj: c.energyMj,
    params: c.params,
    mops: c.mops,
    arrays: c.arrays,
    fits: c.fits,
  };
}

async function retrainAndEvaluate(run: Run): Promise<SearchMetrics> {
  const { space, hw, budget, config, data } = run;
  const spec: NetworkSpec = loadJsonFile(NetworkSpecSchema, run.out(OUTPUT_FILES.chosen));
  const sel = run.state.selection;
  if (!sel) throw new InputError('INVALID_INPUT', 'checkpoint has no selected network (corrupt checkpoint)', { where: run.ck });
  const chosen = scoreChoices(space, hw, sel.indices, allLayerOptions(space));
  const quant = quantOf(hw);
  const net = buildNetwork(spec, { quant, seed: config.seed });
  try {
    await run.stage('retrain', budget.retrain.epochs * imagesPerEpoch(budget.retrain, data.train), 'images', async () => {
      await run.train(net, 'retrain', budget.retrain);
      saveParams(run.ck, 'retrain', net.getParameterValues());
    });
    if (run.state.stages.evaluate !== undefined && existsSync(run.out(OUTPUT_FILES.metrics))) {
      run.req.hooks?.onStageEnd?.('evaluate', run.state.stages.evaluate, true);
      return readJsonFile(run.out(OUTPUT_FILES.metrics)) as SearchMetrics;
    }
    if (run.state.stages.retrain !== undefined && !net.quantCalibrated) {
      net.setParameterValues(loadParams(run.ck, 'retrain').arrays, join(run.ck, 'retrain.bin'));
    }
    const test: ImageDataset = data.test;
    let accuracy = 0;
    let imageSha256: string | undefined;
    await run.stage('evaluate', test.count, 'images', async () => {
      accuracy = evaluate(net, test).accuracy;
      run.progress('evaluate', test.count);
      imageSha256 = (await exportNetwork(net, run.out(OUTPUT_FILES.modelDir))).imageSha256;
    });
    const stageSeconds = Object.fromEntries(stagesOf(config.method).map((s) => [s, run.state.stages[s] ?? 0]));
    const metrics: SearchMetrics = {
      space: space.name,
      method: config.method,
      preset: config.preset,
      weights: config.weights as SelectionWeights,
      budget: config.budgetName,
      seed: config.seed,
      backend: backendName(),
      hardwareProfile: hw.name,
      hardwareSha256: hardwareProfileHash(hw),
      dataset: { name: space.dataset, source: data.source, trainImages: data.train.count, testImages: test.count },
      testAccuracy: accuracy,
      testImages: test.count,
      edpMsMj: chosen.edpMsMj,
      latencyMs: chosen.latencyMs,
      energyMj: chosen.energyMj,
      params: chosen.params,
      mops: chosen.mops,
      arrays: chosen.arrays,
      arraysAvailable: arraysAvailable(hw),
      fits: chosen.fits,
      chosen: chosen.choices.map(optionLabel),
      fellBack: sel.fellBack,
      ...(sel.supernetAccuracy !== undefined ? { supernetValidationAccuracy: sel.supernetAccuracy } : {}),
      ...(run.state.teacherAccuracy ? { teacherAccuracy: run.state.teacherAccuracy.accuracy, teacherTestImages: run.state.teacherAccuracy.images } : {}),
      quant,
      imageSha256: imageSha256 ?? null,
      stageSeconds,
      totalStageSeconds: Object.values(stageSeconds).reduce((a, b) => a + b, 0),
      wallSecondsThisInvocation: run.wallSeconds(),
      config,
    };
    writeFileSync(run.out(OUTPUT_FILES.metrics), json(metrics));
    return metrics;
  } finally {
    net.dispose();
  }
}
