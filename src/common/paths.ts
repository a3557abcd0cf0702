import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

let cachedRoot: string | null = null;

/**
 * The package root: the nearest folder above this file whose package.json names cimbench. Works from
 * src/ (tsx) and dist/src/ (built) alike; dist/ holds compiled copies of fixtures/ scripts, so a
 * plain "first folder that exists" walk would stop inside dist/ and miss the data files.
 */
export function packageRoot(): string {
  if (cachedRoot !== null) return cachedRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'cimbench') return (cachedRoot = dir);
      } catch {
        // not our manifest; keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return (cachedRoot = resolve('.'));
    dir = parent;
  }
}

/** A folder of this package (e.g. calibration/hardware). */
export function packageDir(...segments: string[]): string {
  return join(packageRoot(), ...segments);
}

/** A preset name resolved inside `dir`, or a path to a JSON file as given. */
export function presetPath(dir: string, nameOrPath: string): string {
  if (nameOrPath.endsWith('.json') || nameOrPath.includes('/')) return nameOrPath;
  return join(dir, `${nameOrPath}.json`);
}
