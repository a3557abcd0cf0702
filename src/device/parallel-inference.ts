import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { reviveError, type SerializedError } from '../common/errors.js';
import { spawnModuleWorker } from '../common/worker.js';
import type { HardwareProfile } from '../hardware/index.js';
import type { ImageDataset, WeightImage } from '../nn/index.js';
import type { NetworkAnalysis } from '../spec/index.js';
import { finishSimulation, simulateOnChip, simulationWork, type OnChipSimulationOptions, type OnChipSimulationResult, type SimulationShare } from './inference.js';
import type { NoiseProfile } from './profile.js';

/**
 * simulateOnChip with its Monte Carlo seeds shared out over worker threads (one programming event
 * per seed is independent of the others). Each worker runs a contiguous run of the seeds on its own
 * TF.js backend, the same one as this thread's, and the first also the digital reference; the
 * result is the same, number for number, as simulateOnChip's in one thread.
 */

export interface ParallelSimulationOptions extends OnChipSimulationOptions {
  /** Worker threads (default min(2, cores)); 1, or a single seed, runs in this thread. */
  readonly workers?: number;
}

/** What simulateOnChip needs, as plain data for a worker (onProgress stays here). */
export interface SimulationWorkerData {
  readonly net: NetworkAnalysis;
  readonly image: WeightImage;
  readonly hw: HardwareProfile;
  readonly noise: NoiseProfile;
  readonly data: ImageDataset;
  readonly opts: Omit<OnChipSimulationOptions, 'onProgress'>;
  readonly digital: boolean;
  /** tf.getBackend() of the caller: 'tensorflow', 'wasm' or 'cpu'. */
  readonly backend: string;
}

export type SimulationWorkerMessage =
  | { readonly type: 'progress'; readonly done: number }
  | { readonly type: 'done'; readonly share: SimulationShare }
  | { readonly type: 'failed'; readonly error: SerializedError };

export function defaultSimulationWorkers(): number {
  return Math.max(1, Math.min(2, availableParallelism()));
}

export async function simulateOnChipParallel(
  net: NetworkAnalysis,
  image: WeightImage,
  hw: HardwareProfile,
  noise: NoiseProfile,
  data: ImageDataset,
  options: ParallelSimulationOptions,
): Promise<OnChipSimulationResult> {
  const { workers: requested, onProgress, ...opts } = options;
  const count = Math.min(requested ?? defaultSimulationWorkers(), opts.seeds.length);
  if (count <= 1) return simulateOnChip(net, image, hw, noise, data, options);

  const total = simulationWork(data, opts);
  const done = new Array<number>(count).fill(0);
  const backend = tf.getBackend();
  const started: Worker[] = [];
  try {
    const shares = await Promise.all(
      Array.from({ length: count }, (_, w) => {
        const seeds = opts.seeds.slice(Math.floor((w * opts.seeds.length) / count), Math.floor(((w + 1) * opts.seeds.length) / count));
        const workerData: SimulationWorkerData = { net, image, hw, noise, data, opts: { ...opts, seeds }, digital: w === 0, backend };
        const worker = spawnModuleWorker(import.meta.url, 'inference-worker', workerData);
        started.push(worker);
        return new Promise<SimulationShare>((resolve, reject) => {
          worker.on('message', (m: SimulationWorkerMessage) => {
            if (m.type === 'progress') {
              done[w] = m.done;
              onProgress?.(done.reduce((s, v) => s + v, 0), total);
            } else if (m.type === 'done') resolve(m.share);
            else reject(reviveError(m.error));
          });
          worker.on('error', reject);
          worker.on('exit', (code) => reject(new Error(`simulation worker ${w} exited with code ${code} before it finished`)));
        });
      }),
    );
    return finishSimulation(image, noise, opts, shares);
  } finally {
    await Promise.all(started.map((w) => w.terminate()));
  }
}
