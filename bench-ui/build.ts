import { build } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Bundles bench-ui (TypeScript, Chart.js, socket.io-client, zod) into one app.js + app.css with
 * esbuild, next to index.html in dist/bench-ui; express serves that folder. Nothing is fetched
 * from a CDN at run time.
 */

const here = dirname(fileURLToPath(import.meta.url));
export const UI_SOURCE_DIR = here;
export const UI_OUT_DIR = join(here, '..', 'dist', 'bench-ui');

function newestMtime(dir: string): number {
  let t = 0;
  for (const f of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, f.name);
    t = Math.max(t, f.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** True when the bundle is missing or older than a source file (bench-ui/ or src/server/events.ts). */
export function uiStale(outDir = UI_OUT_DIR): boolean {
  const bundle = join(outDir, 'app.js');
  if (!existsSync(bundle) || !existsSync(join(outDir, 'index.html'))) return true;
  const built = statSync(bundle).mtimeMs;
  return Math.max(newestMtime(join(here, 'src')), statSync(join(here, 'index.html')).mtimeMs, statSync(join(here, '..', 'src', 'server', 'events.ts')).mtimeMs) > built;
}

export async function buildUi(options: { outDir?: string; minify?: boolean } = {}): Promise<{ outDir: string; bytes: number }> {
  const outDir = options.outDir ?? UI_OUT_DIR;
  mkdirSync(outDir, { recursive: true });
  const result = await build({
    entryPoints: { app: join(here, 'src', 'main.ts') },
    outdir: outDir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome110', 'firefox110', 'safari16'],
    minify: options.minify ?? true,
    sourcemap: true,
    metafile: true,
    logLevel: 'warning',
  });
  copyFileSync(join(here, 'index.html'), join(outDir, 'index.html'));
  const bytes = Object.values(result.metafile.outputs).reduce((a, o) => a + o.bytes, 0);
  return { outDir, bytes };
}

/** Builds only when stale (tests, bench). */
export async function ensureUiBuilt(outDir = UI_OUT_DIR): Promise<string> {
  if (uiStale(outDir)) await buildUi({ outDir });
  return outDir;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { outDir, bytes } = await buildUi();
  process.stdout.write(`bench-ui built into ${outDir} (${(bytes / 1024).toFixed(0)} KiB with source maps)\n`);
}
