/** One duration syntax for campaign drift points and the emulator's --faults (src/common/duration.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DurationSchema } from '../../src/bench/index.js';
import { parseDurationSeconds } from '../../src/common/duration.js';
import { parseFaultSpec } from '../../fixtures/emulated-macro/index.js';

test('1s, 1min, 1h, 1d (with or without spaces) mean the same everywhere', () => {
  const cases: Array<[string, number]> = [
    ['1s', 1],
    ['1 s', 1],
    ['1min', 60],
    ['1 min', 60],
    ['2m', 120],
    ['1h', 3600],
    ['1.5 h', 5400],
    ['1d', 86_400],
    ['2 days', 172_800],
    ['500ms', 0.5],
  ];
  for (const [text, seconds] of cases) {
    assert.equal(parseDurationSeconds(text), seconds, text);
    assert.equal(DurationSchema.parse(text), seconds, `campaign: ${text}`);
    assert.equal(parseFaultSpec(`power-off=${text}`).powerOffS, seconds, `--faults power-off=${text}`);
    if (seconds <= 60) assert.equal(parseFaultSpec(`delay=${text}`).delayMs, seconds * 1000, `--faults delay=${text}`);
  }
  // Bare numbers: seconds in campaigns and power-off, milliseconds for delays.
  assert.equal(parseDurationSeconds('3'), 3);
  assert.equal(parseDurationSeconds('3', 'ms'), 0.003);
  assert.equal(parseFaultSpec('delay=5').delayMs, 5);
  assert.equal(parseFaultSpec('power-off=5').powerOffS, 5);
  for (const bad of ['', 'abc', '1 fortnight', '-1s', '1e3s']) {
    assert.equal(parseDurationSeconds(bad), undefined, bad);
    assert.equal(DurationSchema.safeParse(bad).success, false, bad);
  }
  assert.throws(() => parseFaultSpec('delay=1 fortnight'), /delay=1 fortnight: expected a duration such as/);
});
