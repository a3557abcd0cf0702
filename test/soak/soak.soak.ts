/**
 * The long soak (`npm run soak`; not part of `npm test`): the bench's reliability promises checked
 * over many campaigns against the emulated macro on a socat pty with faults on, and the figures
 * docs/RELIABILITY.md quotes.
 *   1. SOAK_CAMPAIGNS (default 100) campaigns back to back in this process (executeRun, serialport
 *      transport) with byte loss, bit flips, garbage bursts and firmware stalls on throughout, a
 *      disconnect during PROGRAM in every third and a power cycle at a random moment in every
 *      seventh; after each, the harness checks (test/soak/harness.ts); heap before/after, bounded.
 *   2. SOAK_KILLS (default 50) SIGKILLs of child bench processes at random points, each followed by
 *      recovery checks and `--resume`, every run finished and checked against the chip.
 *   3. SOAK_FUZZ (default 20000) random and mutated inputs per zod boundary (test/reliability/boundaries.ts).
 * Prints the figures as JSON and writes them to SOAK_OUT (default docs/soak-figures.json); exits 1
 * if any promise was broken.
 */
import assert from 'node:assert/strict';
import { cpus } from 'node:os';
import { writeFileSync } from 'node:fs';
import { Rng } from '../../src/common/rng.js';
import { repoPath } from '../helpers/paths.js';
import { faultKinds, heapUsedMb, killAndResume, runCampaign, startRig, violations, type CampaignOutcome } from './harness.js';

const CAMPAIGNS = Number(process.env.SOAK_CAMPAIGNS ?? 100);
const KILLS = Number(process.env.SOAK_KILLS ?? 50);
const FUZZ = Number(process.env.SOAK_FUZZ ?? 20000);
const OUT = process.env.SOAK_OUT ?? repoPath('docs/soak-figures.json');
/** Heap growth allowed over the campaigns after the first (which loads TF.js, the network and the test set). */
const HEAP_BOUND_MB = 64;
const BYTE_FAULTS = 'loss=0.00005,flip=0.00005,garbage=0.01,stall=0.01,stall-for=150ms';
const KILL_FAULTS = 'loss=0.00002,flip=0.00002,garbage=0.005';

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const t0 = performance.now();
const rng = new Rng(Number(process.env.SOAK_SEED ?? 2025));
const broken: string[] = [];

// ---------------------------------------------------------------- 1. campaigns back to back
const rig = await startRig({ seed: 41, maxPayload: 1024, timeoutMs: 100 });
const outcomes: CampaignOutcome[] = [];
const heapStartMb = heapUsedMb();
let heapWarmMb = heapStartMb;
try {
  for (let i = 0; i < CAMPAIGNS; i++) {
    const disconnect = i % 3 === 1;
    const powerCycle = i % 7 === 3;
    const o = await runCampaign(rig, {
      name: `soak-${i}`,
      faults: `${BYTE_FAULTS},seed=${1000 + i}${disconnect ? ',disconnect-during-program=1' : ''}`,
      ...(powerCycle ? { powerCycleAfterMs: 200 + rng.int(3500) } : {}),
    });
    outcomes.push(o);
    const v = violations(o.check);
    broken.push(...v);
    if (i === 0) heapWarmMb = heapUsedMb();
    log(`campaign ${i + 1}/${CAMPAIGNS}: ${o.check.exitStatus} in ${o.seconds.toFixed(1)} s${o.reason ? ` (${o.reason.slice(0, 120)})` : ''}${v.length ? ` BROKEN: ${v.join('; ')}` : ''}`);
  }
} finally {
  // Byte faults and disconnects counted over phase 1 only; phase 2 adds its own.
}
const heapEndMb = heapUsedMb();
const campaignFaults = faultKinds(rig.device.stats().faults);

// ---------------------------------------------------------------- 2. SIGKILL and --resume
const kills = await killAndResume(rig, KILLS, rng.fork(7), KILL_FAULTS, log);
broken.push(...kills.violations);
const allFaults = faultKinds(rig.device.stats().faults);
await rig.close();

// ---------------------------------------------------------------- 3. fuzzing the zod boundaries
const { fuzzBoundaries } = await import('../reliability/boundaries.js');
const fuzz = fuzzBoundaries(FUZZ, 2025);
for (const [name, f] of Object.entries(fuzz.byBoundary)) broken.push(...f.problems.map((p) => `fuzz ${name}: ${p}`));

// ---------------------------------------------------------------- figures
const sum = (f: (o: CampaignOutcome) => number): number => outcomes.reduce((a, o) => a + f(o), 0);
const allChecks = [...outcomes.map((o) => o.check), ...kills.checks];
const figures = {
  format: 'cimbench.soak/1',
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, node: process.version },
  durationS: Math.round((performance.now() - t0) / 1000),
  campaigns: {
    run: outcomes.length + kills.runs,
    inProcess: outcomes.length,
    succeeded: outcomes.filter((o) => o.check.exitStatus === 'success').length,
    failedByInjectedReboot: outcomes.filter((o) => o.check.exitStatus === 'fail' && /rebooted|power/.test(o.reason ?? '')).length,
    failedOtherwise: outcomes.filter((o) => o.check.exitStatus !== 'success' && !/rebooted|power/.test(o.reason ?? '')).map((o) => `${o.check.runId}: ${o.reason}`),
    meanSeconds: outcomes.length ? Number((sum((o) => o.seconds) / outcomes.length).toFixed(2)) : 0,
    cellsPlanned: allChecks.reduce((a, c) => a + c.cellsPlanned, 0),
  },
  faultsInjected: { ...allFaults, sigkills: kills.sigkills, duringCampaigns: campaignFaults },
  crashes: {
    sigkills: kills.sigkills,
    survived: kills.survived,
    byStage: kills.byStage,
    runs: kills.runs,
    runsCompletedAfterResume: kills.runsCompleted,
    resumes: kills.resumes,
    finishedRunsChanged: kills.finishedRunsChanged,
  },
  inputsFuzzed: fuzz.total,
  fuzzByBoundary: Object.fromEntries(Object.entries(fuzz.byBoundary).map(([k, v]) => [k, { inputs: v.inputs, rejected: v.rejected, accepted: v.accepted }])),
  rowsLost: kills.rowsLost,
  duplicatePulses: allChecks.reduce((a, c) => a + c.duplicatePulsedCells, 0),
  pulseMismatches: allChecks.reduce((a, c) => a + c.pulseMismatches, 0),
  strayPulses: allChecks.reduce((a, c) => a + c.strayPulses, 0),
  pulses: {
    recordedByHost: allChecks.reduce((a, c) => a + c.hostPulses, 0),
    appliedByDevice: allChecks.reduce((a, c) => a + c.devicePulses, 0),
    cellsWithUnknownOutcome: allChecks.reduce((a, c) => a + c.unknownCells, 0),
  },
  heap: { startMb: round(heapStartMb), afterFirstCampaignMb: round(heapWarmMb), endMb: round(heapEndMb), growthMb: round(heapEndMb - heapWarmMb), boundMb: HEAP_BOUND_MB },
  broken,
};
function round(v: number): number {
  return Number(v.toFixed(1));
}
writeFileSync(OUT, `${JSON.stringify(figures, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(figures)}\n`);
log(`figures written to ${OUT}`);

assert.deepEqual(broken, [], 'reliability promises broken');
assert.ok(heapEndMb - heapWarmMb < HEAP_BOUND_MB, `heap grew ${heapEndMb - heapWarmMb} MB over ${CAMPAIGNS} campaigns`);
assert.ok(kills.sigkills >= Math.min(KILLS, 50) || KILLS < 50, `only ${kills.sigkills} kills landed`);
