import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** calibration/hardware/ of this package, found from this file whether it runs from src/ or dist/src/. */
function hardwareDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'calibration', 'hardware');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return resolve('calibration', 'hardware');
}

/** A preset name (`nas4cim-macro`) or a path to a profile JSON file. */
export function hardwareProfilePath(nameOrPath: string): string {
  if (nameOrPath.endsWith('.json') || nameOrPath.includes('/')) return nameOrPath;
  return join(hardwareDir(), `${nameOrPath}.json`);
}

export function defaultHardwareProfilePath(): string {
  return hardwareProfilePath('nas4cim-macro');
}
