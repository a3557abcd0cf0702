import { Worker } from 'node:worker_threads';

/**
 * Starts the worker module `name` (no extension) that sits beside the caller (`callerUrl`, its
 * import.meta.url). Built code runs `<name>.js` directly. From TypeScript sources under tsx (tests,
 * benches), Node 20 does not apply the parent's `--import tsx` loader hooks inside worker threads,
 * so a tiny bootstrap registers tsx first and then imports `<name>.ts`.
 */
export function spawnModuleWorker(callerUrl: string, name: string, workerData?: unknown): Worker {
  const options = workerData === undefined ? {} : { workerData };
  if (!callerUrl.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, callerUrl), options);
  const api = import.meta.resolve('tsx/esm/api');
  const entry = new URL(`./${name}.ts`, callerUrl).href;
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { ...options, eval: true });
}
