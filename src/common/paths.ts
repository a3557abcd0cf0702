import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { InputError } from './errors.js';
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

/**
 * A preset name resolved inside `dir`, or a path to a JSON file as given. An unknown preset name is
 * refused with the list of presets (a path that does not exist is left to the file reader).
 */
export function presetPath(dir: string, nameOrPath: string, kind: string): string {
  if (nameOrPath.endsWith('.json') || nameOrPath.includes('/')) return nameOrPath;
  const path = join(dir, `${nameOrPath}.json`);
  if (!existsSync(path)) {
    const presets = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort() : [];
    throw new InputError('NOT_FOUND', `no ${kind} preset "${nameOrPath}" (presets: ${presets.join(', ') || 'none'}; or give a path to a .json file)`, { where: dir });
  }
  return path;
}
