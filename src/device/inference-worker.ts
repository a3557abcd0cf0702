import { parentPort, workerData } from 'node:worker_threads';
import { serializeError } from '../common/errors.js';
import { initBackend } from '../nn/index.js';
import { simulateShare } from './inference.js';
import type { SimulationWorkerData, SimulationWorkerMessage } from './parallel-inference.js';

/** One share of simulateOnChipParallel's seeds (see parallel-inference.ts), on its own backend instance. */

const port = parentPort;
if (!port) throw new Error('src/device/inference-worker.ts must run as a worker thread');
const post = (m: SimulationWorkerMessage): void => port.postMessage(m);
const job = workerData as SimulationWorkerData;

try {
  await initBackend({ backend: job.backend === 'tensorflow' ? 'node' : job.backend });
  const share = simulateShare(job.net, job.image, job.hw, job.noise, job.data, { ...job.opts, onProgress: (done) => post({ type: 'progress', done }) }, job.digital);
  post({ type: 'done', share });
} catch (err) {
  post({ type: 'failed', error: serializeError(err) });
}
