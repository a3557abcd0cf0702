/**
 * The one duration syntax of cimbench (campaign drift points, `cimbench demo --drift`, the emulator's
 * `--faults`): a non-negative number, optional spaces, and a unit: ms, s (sec, second[s]),
 * m (min, minute[s]), h (hr, hour[s]), d (day[s]). "1s", "1 min", "1h", "1.5 d". A bare number
 * takes the caller's default unit.
 */

const UNIT_SECONDS: Readonly<Record<string, number>> = {
  ms: 1e-3,
  s: 1,
  sec: 1,
  secs: 1,
  second: 1,
  seconds: 1,
  m: 60,
  min: 60,
  mins: 60,
  minute: 60,
  minutes: 60,
  h: 3600,
  hr: 3600,
  hour: 3600,
  hours: 3600,
  d: 86_400,
  day: 86_400,
  days: 86_400,
};

export const DURATION_HINT = 'a duration such as 500ms, 1s, 1 min, 1h or 1d';

/** Seconds, or undefined when `text` is not a duration. */
export function parseDurationSeconds(text: string, defaultUnit: 'ms' | 's' = 's'): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = (m[2] as string).toLowerCase() || defaultUnit;
  const factor = UNIT_SECONDS[unit];
  return factor === undefined ? undefined : Number(m[1]) * factor;
}
