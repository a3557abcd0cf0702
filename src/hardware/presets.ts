import { packageDir, presetPath } from '../common/paths.js';

/** A preset name (`nas4cim-macro`) in calibration/hardware/, or a path to a profile JSON file. */
export function hardwareProfilePath(nameOrPath: string): string {
  return presetPath(packageDir('calibration', 'hardware'), nameOrPath, 'hardware profile');
}

export function defaultHardwareProfilePath(): string {
  return hardwareProfilePath('nas4cim-macro');
}
