import * as tf from '@tensorflow/tfjs';
import { InputError } from '../common/errors.js';

/**
 * Run-time choice of the TensorFlow.js backend. Order for `auto`: @tensorflow/tfjs-node (native
 * libtensorflow, an optional dependency that cannot install on machines without internet access to
 * its storage host), then @tensorflow/tfjs-backend-wasm (XNNPACK), then the pure-JS cpu backend.
 * An explicit request that cannot be met is an error, never a silent fallback.
 */

export type BackendRequest = 'auto' | 'node' | 'wasm' | 'cpu';
/** tf.getBackend() names: tfjs-node registers itself as 'tensorflow'. */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

export const BACKEND_ENV_VAR = 'CIMBENCH_TF_BACKEND';
const REQUESTS: readonly BackendRequest[] = ['auto', 'node', 'wasm', 'cpu'];

export interface BackendOptions {
  /** Overrides CIMBENCH_TF_BACKEND; default auto. 'tensorflow' is accepted as an alias of 'node'. */
  readonly backend?: string;
  /** Environment to read CIMBENCH_TF_BACKEND from (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
}

export interface BackendInfo {
  readonly name: BackendName;
  readonly requested: BackendRequest;
  /** Why earlier candidates were skipped (auto mode), for logs and run records. */
  readonly skipped: readonly string[];
  /**
   * XNNPACK threads on wasm (1 elsewhere; tfjs-node manages its own pool). Always 1 under Node with
   * tfjs-backend-wasm 4.22: its feature probe disables threads under Node, and forcing
   * WASM_HAS_MULTITHREAD_SUPPORT makes the threaded binary start pthreads from blob: URLs, which
   * worker_threads rejects (ERR_WORKER_PATH). Both cores are used through data-parallel workers
   * instead (TrainOptions.workers).
   */
  readonly threads: number;
}

let current: BackendInfo | undefined;
let wasmRegistered = false;

/** Parses a backend request from an option or CIMBENCH_TF_BACKEND; names the source on error. */
export function parseBackendRequest(value: string | undefined, source: string): BackendRequest {
  if (value === undefined || value === '') return 'auto';
  const v = value.trim().toLowerCase();
  if (v === 'tensorflow' || v === 'tfjs-node') return 'node';
  if ((REQUESTS as readonly string[]).includes(v)) return v as BackendRequest;
  throw new InputError('INVALID_INPUT', `unknown TensorFlow.js backend "${value}" (expected one of ${REQUESTS.join(', ')})`, {
    where: source,
    details: { field: source },
  });
}

async function tryNode(): Promise<string | undefined> {
  // A variable specifier keeps TypeScript and bundlers from requiring the optional package.
  const specifier = '@tensorflow/tfjs-node';
  try {
    await import(specifier);
  } catch (err) {
    return `@tensorflow/tfjs-node did not load (${firstLine(err)})`;
  }
  if (!(await tf.setBackend('tensorflow'))) return '@tensorflow/tfjs-node loaded but its backend did not initialise';
  return undefined;
}

async function tryWasm(): Promise<string | undefined> {
  try {
    if (!wasmRegistered) {
      await import('@tensorflow/tfjs-backend-wasm');
      wasmRegistered = true;
    }
  } catch (err) {
    return `@tensorflow/tfjs-backend-wasm did not load (${firstLine(err)})`;
  }
  if (!(await tf.setBackend('wasm'))) return '@tensorflow/tfjs-backend-wasm did not initialise';
  return undefined;
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0] ?? text;
}

async function wasmThreads(): Promise<number> {
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    return wasm.getThreadsCount();
  } catch {
    return 1;
  }
}

/**
 * Selects and initialises the backend. Idempotent for the same request; a different request
 * switches backends (tensors already created stay valid: tfjs moves them on first use).
 */
export async function initBackend(options: BackendOptions = {}): Promise<BackendInfo> {
  const env = options.env ?? process.env;
  const requested =
    options.backend !== undefined
      ? parseBackendRequest(options.backend, 'backend option')
      : parseBackendRequest(env[BACKEND_ENV_VAR], BACKEND_ENV_VAR);
  if (current && current.requested === requested && tf.getBackend() === current.name) return current;

  const skipped: string[] = [];
  const fail = (what: string, reason: string): never => {
    throw new InputError('NOT_FOUND', `TensorFlow.js backend "${what}" was requested but is not available: ${reason}`, {
      where: options.backend !== undefined ? 'backend option' : BACKEND_ENV_VAR,
      details: { backend: what },
    });
  };

  let name: BackendName | undefined;
  if (requested === 'node' || requested === 'auto') {
    const why = await tryNode();
    if (why === undefined) name = 'tensorflow';
    else if (requested === 'node') fail('node', `${why}; install it with \`npm install @tensorflow/tfjs-node\``);
    else skipped.push(why);
  }
  if (name === undefined && (requested === 'wasm' || requested === 'auto')) {
    const why = await tryWasm();
    if (why === undefined) name = 'wasm';
    else if (requested === 'wasm') fail('wasm', why);
    else skipped.push(why);
  }
  if (name === undefined) {
    if (!(await tf.setBackend('cpu'))) fail('cpu', 'the cpu backend did not initialise');
    name = 'cpu';
  }
  await tf.ready();
  current = { name, requested, skipped, threads: name === 'wasm' ? await wasmThreads() : 1 };
  return current;
}

/** The backend that is running now, for CLI output and run records ('tensorflow', 'wasm', 'cpu'). */
export function backendName(): string {
  return tf.getBackend();
}

/** Info from the last initBackend call, or undefined if it was never called. */
export function backendInfo(): BackendInfo | undefined {
  return current;
}
