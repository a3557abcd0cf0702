/**
 * The emulated macro end to end through a real pty pair (socat) and the serialport transport:
 * the paper-sized FashionMNIST network fixtures/networks/fm-macro.json (about 54.5 K weights and
 * 14.3 MOPs per image, like NAS4CIM's Table 4 networks, on the nas4cim-macro's 8 arrays) compiled
 * with compileNetwork from a synthetic weight image (random levels: accuracy
 * is meaningless here, only throughput), programmed with write-verify through the link, loaded,
 * then INFER over the FashionMNIST test set.
 * Prints JSON lines:
 * - emulator.program_cells_per_s  write-verify through the link
 * - emulator.infer_images_per_s   INFER through the link (target: 10,000 images in < 60 s)
 * - emulator.infer_seconds_10k    seconds for 10,000 images (measured when --images is 10000)
 * - emulator.infer_device_share   fraction of the INFER wall time the device spent computing
 * The chip is the typical profile (8 arrays of 128x128, as nas4cim-macro.json).
 * Usage: npm run bench:emulator [-- --images 10000 --workers 2 --max-payload 4096 --seed 1]
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { compileNetwork } from '../src/bench/compile.js';
import { loadHardwareProfile } from '../src/hardware/profile.js';
import { MacroClient } from '../src/link/client.js';
import { transportFor } from '../src/link/transports/open.js';
import { FASHION_MNIST_DEFAULT_DIR, loadFashionMnist, loadFashionMnistSubset } from '../src/nn/datasets.js';
import { parseNetworkSpec } from '../src/spec/index.js';
import { EmulatorDevice, chipProfilePath, loadChipProfile, servePty, socatAvailable } from '../fixtures/emulated-macro/index.js';
import { readJsonFile } from '../src/common/validate.js';
import { syntheticWeightImage } from '../test/helpers/weight-image.js';
import { repoPath } from '../test/helpers/paths.js';
import { report } from './report.js';

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '10000' },
    workers: { type: 'string', default: '2' },
    'max-payload': { type: 'string', default: '4096' },
    seed: { type: 'string', default: '1' },
  },
});
const imagesWanted = Number(values.images);
const workers = Number(values.workers);
const maxPayload = Number(values['max-payload']);
const seed = Number(values.seed);

if (!socatAvailable()) {
  process.stderr.write('bench:emulator needs socat (apt-get install socat)\n');
  process.exit(1);
}

// The paper-sized network of fixtures/networks (Table 4 size), on the nas4cim-macro's 8 arrays.
const spec = readJsonFile(repoPath('fixtures/networks/fm-macro.json')) as { name: string };
const net = parseNetworkSpec(spec, 'bench network');
const image = syntheticWeightImage(net, 4, 8, seed);
const hw = loadHardwareProfile(repoPath('calibration/hardware/nas4cim-macro.json'));
const compiled = compileNetwork(net, image, hw);

let data: { images: Uint8Array; count: number; source: string };
try {
  const d = loadFashionMnist().test;
  data = { images: d.images, count: d.count, source: FASHION_MNIST_DEFAULT_DIR };
} catch {
  const d = loadFashionMnistSubset().test;
  data = { images: d.images, count: d.count, source: 'fixtures/datasets/fashion-mnist-subset (full test set not installed; images repeat)' };
}
const per = 28 * 28;
const images = new Uint8Array(imagesWanted * per);
for (let i = 0; i < imagesWanted; i++) images.set(data.images.subarray((i % data.count) * per, ((i % data.count) + 1) * per), i * per);

const profile = loadChipProfile(chipProfilePath('typical'));
const device = new EmulatorDevice({ chip: profile, seed, workers, maxPayload });
const hostPath = `/tmp/cimbench-bench-emulator-${process.pid}`;
const pty = await servePty(device, hostPath);
const client = new MacroClient(transportFor(pty.path), { timeoutMs: 2000 });

try {
  const info = await client.connect();
  // Program every tile (write-verify through the link).
  let t = performance.now();
  let cells = 0;
  for (const tile of compiled.tiles) {
    const p = tile.placement;
    await client.program({ array: p.array, row: p.row, col: p.col, rows: p.rows, cols: p.cols }, tile.targetsUs);
    cells += tile.targetsUs.length;
  }
  const programS = (performance.now() - t) / 1000;
  report('emulator.program_cells_per_s', Math.round(cells / programS), 'cells/s', {
    transport: 'pty (socat)',
    cells,
    seconds: Number(programS.toFixed(2)),
    arrays_used: compiled.arraysUsed,
  });

  const { networkId } = await client.loadNetwork(compiled.program);
  // Warm-up: starts the worker threads and compiles the kernels (not timed).
  await client.infer(networkId, images.subarray(0, 64 * per), [28, 28, 1]);
  const busy0 = device.macro.busy.inferS;
  t = performance.now();
  const r = await client.infer(networkId, images, [28, 28, 1]);
  const inferS = (performance.now() - t) / 1000;
  const deviceS = device.macro.busy.inferS - busy0;
  if (r.count !== imagesWanted || !r.logits.every(Number.isFinite)) throw new Error('INFER returned bad logits');
  const perS = imagesWanted / inferS;
  const meta = {
    transport: 'pty (socat)',
    network: `${spec.name}: ${net.weights} weights, ${(net.macs / 1e6).toFixed(2)} M MACs (${net.mops.toFixed(2)} MOPs) per image`,
    images: imagesWanted,
    seconds: Number(inferS.toFixed(2)),
    workers,
    max_payload: info.maxPayload,
    images_per_request: Math.min(Math.floor((info.maxPayload - 14) / per), Math.floor((info.maxPayload - 4) / 40)),
    chip: profile.name,
    dataset: data.source,
  };
  report('emulator.infer_images_per_s', Number(perS.toFixed(1)), 'images/s', meta);
  report('emulator.infer_seconds_10k', Number((10_000 / perS).toFixed(1)), 's', {
    note: imagesWanted === 10_000 ? 'measured' : `extrapolated from ${imagesWanted} images`,
    target: '< 60 s',
  });
  report('emulator.infer_device_share', Number((deviceS / inferS).toFixed(3)), 'ratio', {
    device_seconds: Number(deviceS.toFixed(2)),
    note: 'time the emulator spent inside INFER (network on the chip, workers included) / wall time; the rest is link, framing and queueing',
    cell_macs_per_s: Math.round((net.macs * 2 * imagesWanted) / deviceS),
  });
} finally {
  await client.close();
  await pty.stop();
  await device.close();
}
