/**
 * The soak's shortened form (the full one is test/soak/soak.soak.ts, `npm run soak`): three small
 * campaigns back to back against the emulated macro through a socat pty, with byte loss, bit flips,
 * garbage bursts and firmware stalls on, a disconnect during PROGRAM in one and a power cycle in
 * another. Faults may fail a campaign (a reboot mid-operation does, by design); they must never lose
 * a cell, pulse a cell twice, pulse a cell whose PROGRAM was not sent, or leave a run running.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { socatAvailable } from '../../fixtures/emulated-macro/index.js';
import { faultKinds, runCampaign, startRig, violations } from '../soak/harness.js';

const skip = socatAvailable() ? false : 'socat is not installed (apt-get install socat)';
const BYTE_FAULTS = 'loss=0.00005,flip=0.00005,garbage=0.01,stall=0.01,stall-for=150ms';

test('soak-lite: 3 campaigns through a pty with faults; every cell once, recorded pulses = applied pulses, no replay', { skip, timeout: 120_000 }, async () => {
  const rig = await startRig({ seed: 31, maxPayload: 1024, timeoutMs: 100 });
  try {
    const outcomes = [];
    outcomes.push(await runCampaign(rig, { name: 'lite-disconnect', faults: `${BYTE_FAULTS},disconnect-during-program=1` }));
    outcomes.push(await runCampaign(rig, { name: 'lite-bytes', faults: BYTE_FAULTS }));
    // Mid-programming: programming the demo network takes over a second on this link.
    outcomes.push(await runCampaign(rig, { name: 'lite-power-cycle', faults: BYTE_FAULTS, powerCycleAfterMs: 1200 }));
    for (const o of outcomes) assert.deepEqual(violations(o.check), [], JSON.stringify(o));
    // Byte faults and a disconnect are survived: those campaigns complete successfully.
    assert.equal(outcomes[0]?.check.exitStatus, 'success', outcomes[0]?.reason ?? '');
    assert.equal(outcomes[1]?.check.exitStatus, 'success', outcomes[1]?.reason ?? '');
    // Every recorded pulse count matched the chip, and the counts were not trivially zero.
    // (The power cycle fires on a timer: on a loaded machine it can land before the first pulse.)
    assert.ok(outcomes.slice(0, 2).every((o) => o.check.hostPulses > 0));
    assert.ok(outcomes.slice(0, 2).every((o) => o.check.hostPulses === o.check.devicePulses && o.check.unknownCells === 0));
    const power = outcomes[2];
    assert.ok(power?.powerCycled, 'the power cycle fired');
    if (power?.check.exitStatus !== 'success') assert.match(power?.reason ?? '', /rebooted/);
    const f = faultKinds(rig.device.stats().faults);
    assert.ok(f.bytesLost > 0 && f.bitsFlipped > 0 && f.garbageBursts > 0, JSON.stringify(f));
    assert.equal(f.disconnects, 1);
    assert.equal(f.powerCycles, 1);
  } finally {
    await rig.close();
  }
});
