import { parentPort } from 'node:worker_threads';
import { initBackend } from './backend.js';
import { SpecNetwork } from './model.js';
import type { WorkerReply, WorkerRequest } from './parallel.js';
import { loadFlatParameters, shardGradients } from './train.js';

/** A data-parallel training replica (see parallel.ts): its own backend instance and network copy. */

const port = parentPort;
if (!port) throw new Error('src/nn/worker.ts must run as a worker thread');
let net: SpecNetwork | undefined;

port.on('message', (msg: WorkerRequest) => {
  void handle(msg).then(
    (reply) => port.postMessage(reply, reply.type === 'grads' ? [reply.grads.buffer as ArrayBuffer] : []),
    (err: unknown) => port.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err) } satisfies WorkerReply),
  );
});

async function handle(msg: WorkerRequest): Promise<WorkerReply> {
  if (msg.type === 'init') {
    const info = await initBackend(msg.backend !== undefined ? { backend: msg.backend } : {});
    net?.dispose();
    net = new SpecNetwork(msg.spec, { quant: msg.quant });
    return { type: 'ready', backend: info.name };
  }
  if (!net) throw new Error('step before init');
  loadFlatParameters(net, msg.params);
  const r = shardGradients(net, msg.images, msg.labels, msg.labelSmoothing);
  return { type: 'grads', loss: r.loss, grads: r.grads.slice() };
}
