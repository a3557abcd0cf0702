import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { DURATION_HINT, parseDurationSeconds } from '../common/duration.js';
import { InputError } from '../common/errors.js';
import { loadJsonFile, parseWith, readJsonFile } from '../common/validate.js';
import { DEFAULT_NOISE_PROFILE, loadNoiseProfile, noiseProfileHash, noiseProfilePath, type NoiseProfile } from '../device/index.js';
import { arraysAvailable, hardwareProfileHash, hardwareProfilePath, loadHardwareProfile, simulate, type HardwareProfile } from '../hardware/index.js';
import { SAFE_LIMITS } from '../link/index.js';
import { EXPORT_FILES, loadFashionMnist, loadFashionMnistSubset, loadWeightImage, takeDataset, type ImageDataset, type WeightImage } from '../nn/index.js';
import { analyzeNetwork, NetworkSpecSchema, type NetworkAnalysis } from '../spec/index.js';
import { compileNetwork, type CompiledNetwork } from './compile.js';

/**
 * A campaign file: everything one bench run needs, as data. Relative paths are relative to the
 * campaign file. Durations are seconds or strings such as "1 s", "1 min", "1 h", "1 d".
 */

export const DurationSchema = z.union([
  z.number().nonnegative(),
  z
    .string()
    .refine((s) => parseDurationSeconds(s) !== undefined, DURATION_HINT)
    .transform((s) => parseDurationSeconds(s) as number),
]);

const limited = (field: 'toleranceUs' | 'maxPulses' | 'maxIterations' | 'readAverages', int: boolean) => {
  const [lo, hi] = SAFE_LIMITS[field];
  return (int ? z.int() : z.number()).min(lo, `below the safe limit ${lo}`).max(hi, `above the safe limit ${hi}`);
};

export const LinkConfigSchema = z.discriminatedUnion('kind', [
  /** The emulated macro inside this process (no port, no socat); its cells live as long as the process. */
  z.strictObject({ kind: z.literal('emulator'), chip: z.string().min(1).default('typical'), seed: z.int().min(0).default(1), timeoutMs: z.int().min(1).default(2000) }),
  z.strictObject({ kind: z.literal('serial'), path: z.string().min(1), baud: z.int().min(1).default(921_600), timeoutMs: z.int().min(1).default(2000) }),
  z.strictObject({ kind: z.literal('tcp'), url: z.string().regex(/^tcp:\/\/[^:/]+:\d+$/, 'tcp://host:port'), timeoutMs: z.int().min(1).default(2000) }),
]);

export const CampaignSchema = z
  .strictObject({
    name: z.string().min(1),
    description: z.string().optional(),
    /** A `cimbench search` output directory or a network export directory (spec.json + weight-image.json/.bin). */
    network: z.string().min(1),
    /** Hardware profile: a preset in calibration/hardware or a JSON file. */
    hardware: z.string().min(1).default('nas4cim-macro'),
    /** Noise profile of the prediction: a preset in calibration/noise or a JSON file. */
    noise: z.string().min(1).default(DEFAULT_NOISE_PROFILE),
    link: LinkConfigSchema.default({ kind: 'emulator', chip: 'typical', seed: 1, timeoutMs: 2000 }),
    testSet: z
      .strictObject({
        /** fashion-mnist-subset: the committed 1,000 test images; fashion-mnist: the full set (Debian package or $CIMBENCH_FASHION_MNIST). */
        dataset: z.enum(['fashion-mnist-subset', 'fashion-mnist']).default('fashion-mnist-subset'),
        count: z.int().min(1).default(1000),
        start: z.int().min(0).default(0),
      })
      .default({ dataset: 'fashion-mnist-subset', count: 1000, start: 0 }),
    programming: z
      .strictObject({
        /** Write-verify budgets; omitted = the device's configured defaults. */
        toleranceUs: limited('toleranceUs', false).optional(),
        maxPulses: limited('maxPulses', true).optional(),
        maxIterations: limited('maxIterations', true).optional(),
        /** Reads averaged per cell in every read-back; omitted = the device default. */
        readAverages: limited('readAverages', true).optional(),
        /** Cells per PROGRAM command the bench journals as one unit (intent, then result); a crash
         * mid-block leaves at most this many cells unknown (read back, never re-pulsed). */
        blockCells: z.int().min(1).max(16_384).default(2048),
      })
      .default({ blockCells: 2048 }),
    drift: z
      .strictObject({
        /** When the first read-back and measurement happen, after the end of programming. */
        initial: DurationSchema.default(1),
        /** Later time points after programming, ascending. */
        points: z.array(DurationSchema).default([]),
        /** emulated: ADVANCE_CLOCK (device capability, test-only); wall: wait; auto: emulated when the device offers it. */
        clock: z.enum(['auto', 'emulated', 'wall']).default('auto'),
      })
      .default({ initial: 1, points: [], clock: 'auto' }),
    /** Monte Carlo seeds of the prediction (one simulated programming event each). */
    seeds: z.array(z.int().min(0)).min(1).default([1, 2, 3]),
    simulation: z
      .strictObject({
        /** Images of the test set the prediction uses (default: all of testSet.count). */
        images: z.int().min(1).optional(),
        driftCompensation: z.boolean().default(false),
        batchSize: z.int().min(1).default(250),
      })
      .default({ driftCompensation: false, batchSize: 250 }),
    /** Per-array MVM probes at every time point: random 1-bit input vectors per tile. */
    mvm: z.strictObject({ vectors: z.int().min(0).max(256).default(8), seed: z.int().min(0).default(1) }).default({ vectors: 8, seed: 1 }),
  })
  .superRefine((c, ctx) => {
    let prev = c.drift.initial;
    c.drift.points.forEach((p, i) => {
      if (!(p > prev)) ctx.addIssue({ code: 'custom', path: ['drift', 'points', i], message: `must be later than the previous time point (${prev} s)` });
      prev = p;
    });
    if (c.simulation.images !== undefined && c.simulation.images > c.testSet.count) {
      ctx.addIssue({ code: 'custom', path: ['simulation', 'images'], message: `is more than testSet.count (${c.testSet.count})` });
    }
  });

export type Campaign = z.output<typeof CampaignSchema>;
export type CampaignInput = z.input<typeof CampaignSchema>;
export type LinkConfig = z.output<typeof LinkConfigSchema>;

/** Parses a campaign and makes its paths absolute (relative to `baseDir`). */
export function parseCampaign(value: unknown, source: string, baseDir: string): Campaign {
  const c = parseWith(CampaignSchema, value, source);
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const profile = (p: string): string => (p.endsWith('.json') || p.includes('/') ? abs(p) : p);
  return {
    ...c,
    network: abs(c.network),
    hardware: profile(c.hardware),
    noise: profile(c.noise),
    link: c.link.kind === 'serial' ? { ...c.link, path: abs(c.link.path) } : c.link,
  };
}

export function loadCampaign(path: string): Campaign {
  return parseCampaign(readJsonFile(path), path, dirname(resolve(path)));
}

/** Where the network files are: the directory itself, or the export inside a search output directory. */
export function findNetworkDir(path: string): string {
  if (!existsSync(path)) throw new InputError('NOT_FOUND', 'network directory does not exist', { where: path });
  const dir = statSync(path).isDirectory() ? path : dirname(path);
  for (const candidate of [dir, join(dir, 'model'), join(dir, 'export'), join(dir, 'network')]) {
    if (existsSync(join(candidate, EXPORT_FILES.spec))) {
      if (!existsSync(join(candidate, EXPORT_FILES.imageIndex))) {
        throw new InputError('INVALID_INPUT', `${EXPORT_FILES.spec} found but no ${EXPORT_FILES.imageIndex}: the network is not quantised (export a quantised network)`, {
          where: candidate,
        });
      }
      return candidate;
    }
  }
  throw new InputError('NOT_FOUND', `no ${EXPORT_FILES.spec} here: expected a cimbench search output directory or a network export directory (spec.json, weight-image.json, weight-image.bin)`, {
    where: path,
  });
}

/** Everything a run needs that can be checked without the device: loaded, validated and compiled. */
export interface PreparedCampaign {
  readonly campaign: Campaign;
  readonly networkDir: string;
  readonly net: NetworkAnalysis;
  readonly image: WeightImage;
  readonly hw: HardwareProfile;
  readonly hwPath: string;
  readonly noise: NoiseProfile;
  readonly noisePath: string;
  readonly compiled: CompiledNetwork;
  readonly testSet: ImageDataset;
  readonly hashes: { readonly weightImage: string; readonly hardware: string; readonly noise: string };
  /** The cost model's figures for this network on this hardware (layer by layer). */
  readonly cost: { readonly latencyMs: number; readonly energyMj: number; readonly edpMsMj: number };
}

/**
 * Loads and checks a campaign's inputs: network, weight image, profiles, test set, compilation
 * (DOES_NOT_FIT when the network needs more arrays than the macro has). Sends nothing: every
 * problem found here is reported before any pulse.
 */
export function prepareCampaign(campaign: Campaign): PreparedCampaign {
  const networkDir = findNetworkDir(campaign.network);
  const specPath = join(networkDir, EXPORT_FILES.spec);
  const net = analyzeNetwork(loadJsonFile(NetworkSpecSchema, specPath), specPath);
  const image = loadWeightImage(networkDir);
  if (image.index.network !== net.spec.name) {
    throw new InputError('INVALID_INPUT', `weight image is for network ${image.index.network}, spec.json is ${net.spec.name}`, { where: networkDir });
  }
  const hwPath = hardwareProfilePath(campaign.hardware);
  const hw = withWhere(() => loadHardwareProfile(hwPath), 'hardware');
  const noisePath = noiseProfilePath(campaign.noise);
  const noise = withWhere(() => loadNoiseProfile(noisePath), 'noise');
  const compiled = compileNetwork(net, image, hw, { arrays: arraysAvailable(hw), rows: hw.array.rows, cols: hw.array.cols });
  const testSet = loadTestSet(campaign);
  const [h, w, c] = net.spec.input;
  if (testSet.height !== h || testSet.width !== w || testSet.channels !== c || testSet.classes !== net.spec.classes) {
    throw new InputError('INVALID_INPUT', `test set ${testSet.name} (${testSet.height}x${testSet.width}x${testSet.channels}, ${testSet.classes} classes) does not match network input ${h}x${w}x${c} with ${net.spec.classes} classes`, {
      where: 'campaign: testSet',
    });
  }
  const sim = simulate(net, hw);
  return {
    campaign,
    networkDir,
    net,
    image,
    hw,
    hwPath,
    noise,
    noisePath,
    compiled,
    testSet,
    hashes: { weightImage: image.index.sha256, hardware: hardwareProfileHash(hw), noise: noiseProfileHash(noise) },
    cost: sim.totals.layerByLayer,
  };
}

function withWhere<T>(fn: () => T, field: string): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof InputError && err.code === 'NOT_FOUND') {
      throw new InputError('NOT_FOUND', `${field} profile not found (a preset name in calibration/${field}/ or a path to a JSON file)`, { where: err.where, cause: err });
    }
    throw err;
  }
}

export function loadTestSet(c: Campaign): ImageDataset {
  const splits = c.testSet.dataset === 'fashion-mnist' ? loadFashionMnist() : loadFashionMnistSubset();
  const available = splits.test.count - c.testSet.start;
  if (c.testSet.count > available) {
    throw new InputError('INVALID_INPUT', `asks for ${c.testSet.count} images from ${c.testSet.start} but ${splits.test.name} has ${available} from there`, { where: 'campaign: testSet.count' });
  }
  return takeDataset(splits.test, c.testSet.count, c.testSet.start);
}
