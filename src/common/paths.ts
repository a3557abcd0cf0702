import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A folder of this package (e.g. calibration/hardware), found by walking up from this file so it
 * works from src/ (tsx) and dist/src/ (built) alike; falls back to the working directory.
 */
export function packageDir(...segments: string[]): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, ...segments);
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return resolve(...segments);
}

/** A preset name resolved inside `dir`, or a path to a JSON file as given. */
export function presetPath(dir: string, nameOrPath: string): string {
  if (nameOrPath.endsWith('.json') || nameOrPath.includes('/')) return nameOrPath;
  return join(dir, `${nameOrPath}.json`);
}
