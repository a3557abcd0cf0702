/**
 * The emulated macro end to end through a real pty pair (socat) and the serialport transport:
 * a paper-sized FashionMNIST network (58 K weights, 16 MOPs per image, like NAS4CIM's Table 4
 * networks) compiled with compileNetwork from a synthetic weight image (random levels: accuracy
 * is meaningless here, only throughput), programmed with write-verify through the link, loaded,
 * then INFER over the FashionMNIST test set.
 * Prints JSON lines:
 * - emulator.program_cells_per_s  write-verify through the link
 * - emulator.infer_images_per_s   INFER through the link (target: 10,000 images in < 60 s)
 * - emulator.infer_seconds_10k    seconds for 10,000 images (measured when --images is 10000)
 * - emulator.infer_device_share   fraction of the INFER wall time the device spent computing
 * The chip is the typical profile with 32 arrays (the network needs 20 of 128x128).
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
import { EmulatorDevice, chipProfilePath, loadChipProfile, parseChipProfile, servePty, socatAvailable } from '../fixtures/emulated-macro/index.js';
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

const spec = {
  name: 'fm-bench',
  input: [28, 28, 1],
  classes: 10,
  layers: [
    { op: 'conv', kernel: 3, out: 16 },
    { op: 'residual', kernel: 3, out: 16 },
    { op: 'conv', kernel: 3, out: 32, stride: 2 },
    { op: 'resblock', kernel: 3, out: 32 },
    { op: 'conv', kernel: 3, out: 64, stride: 2 },
    { op: 'bottleneck', kernel: 3, out: 64, expansion: 2 },
    { op: 'gap' },
    { op: 'dense', out: 10 },
  ],
};
const net = parseNetworkSpec(spec, 'bench network');
const image = syntheticWeightImage(net, 4, 8, seed);
const hw = loadHardwareProfile(repoPath('calibration/hardware/nas4cim-macro.json'));
const arrays = 32;
const compiled = compileNetwork(net, image, hw, { arrays, rows: hw.array.rows, cols: hw.array.cols });

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

const typical = loadChipProfile(chipProfilePath('typical'));
const profile = parseChipProfile({ ...typical, name: 'emulated-typical-32', geometry: { ...typical.geometry, arrays } }, 'bench chip');
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
