/**
 * Safe limits on programming voltages, pulse widths and budgets, on both sides of the link and in
 * the emulated chip (property-based, fast-check):
 *  - host: any value outside SAFE_LIMITS for any SET_CONFIG field is refused by the schema and by
 *    MacroClient.setConfig with an InputError naming the field, and never reaches the device;
 *  - device: the emulated macro answers a raw SET_CONFIG that skips the host check with
 *    ERROR LIMIT and the field's index, and keeps its config;
 *  - chip: whatever config within the protocol's limits the host sets, no pulse the chip applies
 *    exceeds the chip profile's own limits (amplitude, width) and no cell gets more pulses than the
 *    PROGRAM budget (max_pulses per pass times max_iterations passes) (the emulator clamps to the stricter chip limits; a device may be stricter,
 *    never looser).
 * test/link/endpoint.test.ts covers the f32 slack at the limits; test/fixtures/emulated-macro/
 * profile.test.ts the chip profile's settings checks. This file covers every field at random.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { EmulatedChip, EmulatorDevice, emulatorTransport } from '../../fixtures/emulated-macro/index.js';
import { InputError } from '../../src/common/errors.js';
import { parseWith } from '../../src/common/validate.js';
import { decodeWireFrame, encodeFrame } from '../../src/link/frame.js';
import { MacroClient } from '../../src/link/client.js';
import { CONFIG_FIELDS, DeviceConfigSchema, SAFE_LIMITS, decodeErrorBody, encodeConfig, type ConfigField, type DeviceConfig } from '../../src/link/messages.js';
import { ErrCode, Flag, MsgType } from '../../src/link/protocol.js';

const INT_FIELDS = new Set<ConfigField>(['pulseWidthNs', 'readAverages', 'maxPulses', 'maxIterations']);

/** A value outside a field's safe range: below, above, far away, or not finite. */
function outside(field: ConfigField): fc.Arbitrary<number> {
  const [lo, hi] = SAFE_LIMITS[field];
  const int = INT_FIELDS.has(field);
  return fc.oneof(
    int ? fc.integer({ min: -1_000_000, max: lo - 1 }) : fc.double({ min: -1e6, max: lo * (1 - 1e-4), noNaN: true }),
    // Up to the largest value the field's wire width holds (a wider one would wrap on the wire).
    int ? fc.integer({ min: hi + 1, max: field === 'pulseWidthNs' ? 0xffffffff : 0xffff }) : fc.double({ min: hi * (1 + 1e-4), max: 1e9, noNaN: true }),
    fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
  );
}

/** A value inside a field's safe range. */
function inside(field: ConfigField): fc.Arbitrary<number> {
  const [lo, hi] = SAFE_LIMITS[field];
  return INT_FIELDS.has(field) ? fc.integer({ min: lo, max: hi }) : fc.double({ min: lo, max: hi, noNaN: true }).map((v) => Math.fround(v)).filter((v) => v >= lo && v <= hi);
}

const badField = fc.constantFrom(...CONFIG_FIELDS).chain((field) => outside(field).map((value) => ({ field, value })));

test('host: every SET_CONFIG field outside its safe limit is refused, named, and never sent', async () => {
  const device = new EmulatorDevice({ seed: 3, workers: 0 });
  const client = new MacroClient(emulatorTransport(device), { timeoutMs: 1000 });
  try {
    await client.connect();
    const base = await client.getConfig();
    await fc.assert(
      fc.asyncProperty(badField, async ({ field, value }) => {
        const cfg = { ...base, [field]: value } as DeviceConfig;
        const before = (await client.getCounters()).rxFrames ?? 0;
        assert.throws(() => parseWith(DeviceConfigSchema, cfg, 'config'), (e: unknown) => e instanceof InputError && e.describe().includes(field));
        await assert.rejects(client.setConfig(cfg), (e: unknown) => e instanceof InputError && e.describe().includes(field));
        // Only the next GET_COUNTERS itself arrived in between.
        assert.equal((await client.getCounters()).rxFrames, before + 1, 'a refused config reached the device');
      }),
      { numRuns: 300, seed: 11 },
    );
    // The config the device holds is still the one it started with.
    assert.deepEqual(await client.getConfig(), base);
  } finally {
    await client.close();
    await device.close();
  }
});

test('device: a raw SET_CONFIG outside the safe limits gets ERROR LIMIT with the field index and changes nothing', async () => {
  const device = new EmulatorDevice({ seed: 4, workers: 0 });
  const replies: Uint8Array[] = [];
  const conn = device.connect((b) => replies.push(b), () => undefined);
  const before = { ...device.config };
  try {
    let id = 1;
    fc.assert(
      fc.property(badField, ({ field, value }) => {
        replies.length = 0;
        const cfg = { ...before, [field]: value } as DeviceConfig;
        conn.fromHost(encodeFrame({ flags: 0, type: MsgType.SET_CONFIG, seq: id & 0xff, requestId: id++ & 0xffff, payload: encodeConfig(cfg) }));
        assert.equal(replies.length, 1);
        const r = decodeWireFrame(replies[0] as Uint8Array);
        assert.ok(r.ok && r.frame.flags & Flag.ERROR, `accepted ${field}=${value}`);
        const body = decodeErrorBody(r.frame.payload);
        assert.equal(body.code, ErrCode.LIMIT);
        assert.equal(body.arg, CONFIG_FIELDS.indexOf(field), `${field}=${value}`);
        assert.deepEqual(device.config, before);
      }),
      { numRuns: 300, seed: 12, examples: [[{ field: 'vSetV', value: 3.01 }], [{ field: 'pulseWidthNs', value: 100_001 }]] },
    );
  } finally {
    conn.detach();
    await device.close();
  }
});

test('chip: with any config inside the protocol limits, no applied pulse exceeds the chip limits or the PROGRAM budget', { timeout: 60_000 }, async () => {
  const device = new EmulatorDevice({ chip: 'typical', seed: 5, workers: 0 });
  const lim = device.profile.limits;
  const seen = { setV: 0, resetV: 0, minWidth: Number.POSITIVE_INFINITY, maxWidth: 0, pulses: 0 };
  const original = EmulatedChip.prototype.applyPulse;
  const chip = device.chip;
  chip.applyPulse = function (arr, i, t, polarity, volts, widthNs) {
    if (polarity === 0) seen.setV = Math.max(seen.setV, volts);
    else seen.resetV = Math.max(seen.resetV, volts);
    seen.minWidth = Math.min(seen.minWidth, widthNs);
    seen.maxWidth = Math.max(seen.maxWidth, widthNs);
    seen.pulses++;
    return original.call(this, arr, i, t, polarity, volts, widthNs);
  };
  const client = new MacroClient(emulatorTransport(device), { timeoutMs: 2000 });
  try {
    await client.connect();
    const base = await client.getConfig();
    let row = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.record({ vSetV: inside('vSetV'), vResetV: inside('vResetV'), pulseWidthNs: inside('pulseWidthNs'), maxPulses: fc.integer({ min: 1, max: 1000 }), maxIterations: fc.integer({ min: 1, max: 100 }) }),
        fc.array(fc.double({ min: 3, max: 38, noNaN: true }), { minLength: 8, maxLength: 8 }),
        async (cfg, targets) => {
          await client.setConfig({ ...base, ...cfg });
          const region = { array: row % 8, row: Math.floor(row / 8) % 128, col: 0, rows: 1, cols: 8 };
          row++;
          const before = Array.from({ length: 8 }, (_, c) => chip.cellArray(region.array).pulses[region.row * 128 + c] as number);
          const r = await client.program(region, Float32Array.from(targets), { maxPulses: cfg.maxPulses, maxIterations: cfg.maxIterations });
          for (let c = 0; c < 8; c++) {
            const applied = (chip.cellArray(region.array).pulses[region.row * 128 + c] as number) - (before[c] as number);
            assert.equal(applied, r.pulses[c], 'the device reported the pulses it applied');
            // max_pulses bounds each verify pass, max_iterations the passes that may pulse.
            assert.ok(applied <= Math.min(cfg.maxPulses, lim.pulseLimitMax) * Math.min(cfg.maxIterations, lim.iterLimitMax), `cell got ${applied} pulses, budget ${cfg.maxPulses} x ${cfg.maxIterations}`);
          }
        },
      ),
      { numRuns: 40, seed: 13 },
    );
    assert.ok(seen.pulses > 0, 'pulses were applied');
    assert.ok(seen.setV <= lim.setMaxV, `SET pulse of ${seen.setV} V, chip limit ${lim.setMaxV} V`);
    assert.ok(seen.resetV <= lim.resetMaxV, `RESET pulse of ${seen.resetV} V, chip limit ${lim.resetMaxV} V`);
    assert.ok(seen.minWidth >= lim.pulseWidthMinNs && seen.maxWidth <= lim.pulseWidthMaxNs, `pulse widths ${seen.minWidth}..${seen.maxWidth} ns, chip limits ${lim.pulseWidthMinNs}..${lim.pulseWidthMaxNs}`);
    // The protocol allows more than this chip does, so the clamping was exercised.
    assert.ok(SAFE_LIMITS.vSetV[1] > lim.setMaxV || SAFE_LIMITS.pulseWidthNs[1] > lim.pulseWidthMaxNs);
  } finally {
    await client.close();
    await device.close();
  }
});
