import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError } from '../../src/common/errors.js';
import { compileNetwork } from '../../src/bench/compile.js';
import { weightsToTargets } from '../../src/device/index.js';
import { hardwareProfilePath, loadHardwareProfile, simulate, type HardwareProfile } from '../../src/hardware/index.js';
import { NetworkProgramSchema, checkPlacementsFit } from '../../src/link/index.js';
import { parseNetworkSpec } from '../../src/spec/index.js';
import { syntheticWeightImage } from '../helpers/weight-image.js';

const macro = loadHardwareProfile(hardwareProfilePath('nas4cim-macro'));
const big = loadHardwareProfile(hardwareProfilePath('multitile-256'));

const net = parseNetworkSpec({
  name: 'mix',
  input: [12, 12, 3],
  classes: 10,
  layers: [
    { op: 'conv', kernel: 3, out: 16 },
    { op: 'resblock', kernel: 3, out: 24, stride: 2 },
    { op: 'bottleneck', kernel: 3, out: 32, stride: 2 },
    { op: 'pool', kind: 'avg', size: 3 },
    { op: 'dense', out: 10 },
  ],
});

function check(hw: HardwareProfile, weightBits: number): void {
  const image = syntheticWeightImage(net, weightBits, 8, 3);
  const compiled = compileNetwork(net, image, hw);
  // The same number of arrays the simulator's cost model charges for.
  assert.equal(compiled.arraysUsed, simulate(net, hw).fit.arraysRequired);
  // The document is what the protocol accepts, and fits the chip.
  const parsed = NetworkProgramSchema.safeParse(compiled.program);
  assert.ok(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues.slice(0, 3)));
  assert.equal(checkPlacementsFit(compiled.program, { arrays: compiled.arraysUsed, rows: hw.array.rows, cols: hw.array.cols }), undefined);
  // Tiles put back together give every plane of every matrix exactly once; no two tiles overlap.
  const used = new Set<string>();
  image.matrices.forEach((m, index) => {
    const planes = weightsToTargets(m.levels, m.info.rows, m.info.cols, compiled.layout);
    const rebuilt = new Float32Array(planes.length).fill(NaN);
    const planeSize = m.info.rows * m.info.cols;
    for (const t of compiled.tiles.filter((x) => x.matrix === index)) {
      const p = t.placement;
      const plane = p.slice * compiled.layout.pair + (p.polarity === 'pos' ? 0 : 1);
      for (let r = 0; r < p.rows; r++) {
        for (let c = 0; c < p.cols; c++) {
          const key = `${p.array}:${p.row + r}:${p.col + c}`;
          assert.ok(!used.has(key), `cell ${key} used twice`);
          used.add(key);
          rebuilt[plane * planeSize + (p.srcRow + r) * m.info.cols + p.srcCol + c] = t.targetsUs[r * p.cols + c] as number;
        }
      }
    }
    assert.deepEqual(rebuilt, planes);
  });
  assert.equal(compiled.cells, used.size);
}

describe('compiling a network for the macro', () => {
  it('places 4-bit weights (one slice, pairs) on arrays the simulator counts, every cell once', () =>
    check({ ...macro, array: { ...macro.array, tiles: 8 } }, 4));
  it('places 8-bit weights as two bit slices on the multi-tile chip', () => check(big, 8));

  it('refuses a network larger than the chip before any pulse', () => {
    const fm = parseNetworkSpec({ name: 'big', input: [16, 16, 64], classes: 10, layers: [{ op: 'conv', kernel: 3, out: 64 }, { op: 'gap' }, { op: 'dense', out: 10 }] });
    assert.throws(
      () => compileNetwork(fm, syntheticWeightImage(fm, 4, 8), { ...macro, array: { ...macro.array, arraysPerTile: 2 } }),
      (err: unknown) => err instanceof InputError && err.code === 'DOES_NOT_FIT' && /needs 6 arrays but the chip has 2/.test(err.message),
    );
  });

  it('refuses an image that does not belong to the network', () => {
    const other = parseNetworkSpec({ name: 'other', input: [12, 12, 3], classes: 10, layers: [{ op: 'conv', kernel: 3, out: 8 }, { op: 'gap' }, { op: 'dense', out: 10 }] });
    assert.throws(() => compileNetwork(net, syntheticWeightImage(other, 4, 8), big), /does not match network mix/);
  });
});
