/**
 * Simulator throughput: whole-network evaluations per second on one core, for random networks from
 * the paper's CIFAR-10 search space (9 searchable layers). One evaluation = build the candidate's
 * spec, derive its shapes, map it onto the nas4cim-macro and cost it (latency, energy, EDP).
 * Usage: npm run bench:sim [-- --seconds 5 --seed 1]
 */
import { parseArgs } from 'node:util';
import { Rng } from '../src/common/rng.js';
import { defaultHardwareProfilePath, loadHardwareProfile, simulate } from '../src/hardware/index.js';
import { buildCandidate, loadSearchSpace, sampleChoices } from '../src/search/index.js';
import { analyzeNetwork } from '../src/spec/index.js';
import { report } from './report.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, seed: { type: 'string', default: '1' } } });
const seconds = Number(values.seconds);
const hw = loadHardwareProfile(defaultHardwareProfilePath());
const space = loadSearchSpace('cifar10');
const rng = new Rng(Number(values.seed));

function evaluate(): number {
  const net = analyzeNetwork(buildCandidate(space, sampleChoices(space, rng)));
  return simulate(net, hw).totals.layerByLayer.edpMsMj;
}

// Warm up the JIT before timing.
let sink = 0;
for (let i = 0; i < 20_000; i++) sink += evaluate();

let evaluations = 0;
const start = performance.now();
const deadline = start + seconds * 1000;
while (performance.now() < deadline) {
  for (let i = 0; i < 1000; i++) sink += evaluate();
  evaluations += 1000;
}
const elapsedS = (performance.now() - start) / 1000;
report('sim.evals_per_s', Math.round(evaluations / elapsedS), '1/s', { space: space.name, hardware: hw.name, evaluations, seconds: Number(elapsedS.toFixed(2)) });
report('sim.us_per_eval', Number(((elapsedS * 1e6) / evaluations).toFixed(2)), 'us');
if (!Number.isFinite(sink)) process.exitCode = 1;
