import type { Worker } from 'node:worker_threads';
import { CimbenchError } from '../common/errors.js';
import { spawnModuleWorker } from '../common/worker.js';
import type { QuantOptions, SpecNetwork } from './model.js';
import type { NetworkSpec } from '../spec/schema.js';
import { backendInfo } from './backend.js';
import { flattenParameters, shardGradients } from './train.js';

/** Messages between DataParallelPool and src/nn/worker.ts (structured clone; arrays transferred). */
export type WorkerRequest =
  | { readonly type: 'init'; readonly spec: NetworkSpec; readonly quant: QuantOptions | null; readonly backend: string | undefined }
  | {
      readonly type: 'step';
      readonly params: Float32Array;
      readonly images: Float32Array;
      readonly labels: Int32Array;
      readonly labelSmoothing: number;
    };
export type WorkerReply =
  | { readonly type: 'ready'; readonly backend: string }
  | { readonly type: 'grads'; readonly loss: number; readonly grads: Float32Array }
  | { readonly type: 'error'; readonly message: string };

interface Replica {
  readonly worker: Worker;
  pending: { resolve: (r: WorkerReply) => void; reject: (e: Error) => void } | undefined;
  failed: Error | undefined;
}


/**
 * Worker replicas for synchronous data parallelism. Each worker holds a copy of the network on its
 * own backend instance; every step it receives the current parameters and a shard, and returns the
 * shard's mean loss and flat gradients. The caller's thread computes the first shard itself.
 */
export class DataParallelPool {
  private constructor(private readonly replicas: Replica[]) {}

  static async start(net: SpecNetwork, count: number, backend?: string): Promise<DataParallelPool> {
    const replicas: Replica[] = [];
    for (let i = 0; i < count; i++) {
      const worker = spawnModuleWorker(import.meta.url, 'worker');
      const r: Replica = { worker, pending: undefined, failed: undefined };
      worker.on('message', (msg: WorkerReply) => {
        const p = r.pending;
        r.pending = undefined;
        if (!p) return;
        if (msg.type === 'error') p.reject(new CimbenchError('INTERNAL', `training worker: ${msg.message}`));
        else p.resolve(msg);
      });
      const fail = (err: Error): void => {
        r.failed = err;
        r.pending?.reject(err);
        r.pending = undefined;
      };
      worker.on('error', (err) => fail(new CimbenchError('INTERNAL', `training worker crashed: ${err.message}`, { cause: err })));
      worker.on('exit', (code) => {
        if (code !== 0) fail(new CimbenchError('INTERNAL', `training worker exited with code ${code}`));
      });
      replicas.push(r);
    }
    const pool = new DataParallelPool(replicas);
    const requested = backend ?? backendInfo()?.requested;
    try {
      await Promise.all(replicas.map((r) => pool.call(r, { type: 'init', spec: net.spec, quant: net.quant, backend: requested }, [])));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  private call(r: Replica, msg: WorkerRequest, transfer: ArrayBuffer[]): Promise<WorkerReply> {
    if (r.failed) return Promise.reject(r.failed);
    return new Promise((resolve, reject) => {
      r.pending = { resolve, reject };
      r.worker.postMessage(msg, transfer);
    });
  }

  /** Gradients of the mean loss over a batch (NHWC images, labels), split over this thread and the workers. */
  async step(net: SpecNetwork, images: Float32Array, labels: Int32Array, labelSmoothing: number): Promise<{ loss: number; grads: Float32Array }> {
    const total = labels.length;
    const per = images.length / total;
    const shards = this.replicas.length + 1;
    const bounds: number[] = [];
    for (let i = 0; i <= shards; i++) bounds.push(Math.round((total * i) / shards));
    const params = flattenParameters(net);
    const replies = this.replicas.map((r, i) => {
      const s = bounds[i + 1] as number;
      const e = bounds[i + 2] as number;
      const shardImages = images.slice(s * per, e * per);
      const shardLabels = labels.slice(s, e);
      return this.call(
        r,
        { type: 'step', params: params.slice(), images: shardImages, labels: shardLabels, labelSmoothing },
        [shardImages.buffer as ArrayBuffer, shardLabels.buffer as ArrayBuffer],
      ).then((reply) => ({ reply, n: e - s }));
    });
    const mine = shardGradients(net, images.subarray(0, (bounds[1] as number) * per), labels.subarray(0, bounds[1] as number), labelSmoothing);
    const n0 = (bounds[1] as number) - (bounds[0] as number);
    const grads = new Float32Array(mine.grads.length);
    for (let i = 0; i < grads.length; i++) grads[i] = (mine.grads[i] as number) * (n0 / total);
    let loss = mine.loss * (n0 / total);
    for (const { reply, n } of await Promise.all(replies)) {
      if (reply.type !== 'grads') throw new CimbenchError('INTERNAL', `training worker sent ${reply.type} instead of gradients`);
      const wgt = n / total;
      const g = reply.grads;
      if (g.length !== grads.length) throw new CimbenchError('INTERNAL', `training worker sent ${g.length} gradients, expected ${grads.length}`);
      for (let i = 0; i < grads.length; i++) grads[i] = (grads[i] as number) + (g[i] as number) * wgt;
      loss += reply.loss * wgt;
    }
    return { loss, grads };
  }

  async close(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.worker.terminate()));
  }
}
