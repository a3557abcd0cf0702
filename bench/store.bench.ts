/**
 * Store throughput with the bench's durability settings (WAL, synchronous=FULL) on a file:
 *   store.cell_rows_per_s       programming results recorded through the recorder as the engine
 *                               drives it: per block of 2,048 cells (the campaign default) one
 *                               committed transaction holding its results and the next block's intent
 *   store.readback_rows_per_s   read-back rows recorded (one transaction per tile)
 * Run: npm run bench:store
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlockDoc, CampaignDocument, Plan, TileDoc } from '../src/bench/index.js';
import { planBlocks } from '../src/bench/engine.js';
import { BenchRuns, openDatabase, RunRecorder } from '../src/store/index.js';
import { report } from './report.js';

const ARRAYS = 8;
const SIZE = 128;
const BLOCK = 2048;

const dir = mkdtempSync(join(tmpdir(), 'cimbench-store-bench-'));
const db = openDatabase(join(dir, 'bench.db'));
const runs = new BenchRuns(db);
const plan: Plan = { mode: 'program', points: [{ index: 0, nominalS: 1 }], steps: [{ kind: 'map' }, { kind: 'program' }] };
const tiles: TileDoc[] = Array.from({ length: ARRAYS }, (_, a) => ({
  tile: a,
  matrix: a,
  layer: a,
  name: `m${a}`,
  region: { array: a, row: 0, col: 0, rows: SIZE, cols: SIZE },
  slice: 0,
  polarity: 'pos',
  targetsUs: Float32Array.from({ length: SIZE * SIZE }, (_, i) => 2 + (i % 38)),
}));
const blocks: BlockDoc[] = planBlocks(tiles, BLOCK);
const cells = ARRAYS * SIZE * SIZE;
const run = runs.create({
  campaign: { name: 'store-bench', source: null, config: { bench: true } },
  mode: 'program',
  plan,
  parentRunId: null,
  networkName: 'bench',
  networkDir: dir,
  weightImageSha256: '0'.repeat(64),
  hardwareProfile: 'bench',
  hardwareSha256: '0'.repeat(64),
  hardware: {},
  noiseProfile: 'bench',
  noiseSha256: '0'.repeat(64),
  noise: {},
  seeds: [1],
  backend: 'none',
  link: 'none',
  arraysUsed: ARRAYS,
  cellsPlanned: cells,
  cost: { latencyMs: 0, energyMj: 0, edpMsMj: 0 },
});
const rec = new RunRecorder(runs, run.id);
const emit = (d: CampaignDocument): void => rec.write(d);

let t = performance.now();
emit({ type: 'mapped', arraysUsed: ARRAYS, cells, tiles, blocks });
const planS = (performance.now() - t) / 1000;

t = performance.now();
blocks.forEach((b, k) => {
  const n = b.region.rows * b.region.cols;
  const next = blocks[k + 1];
  if (k === 0) emit({ type: 'program-intent', block: b.block, bootId: 1 });
  emit({
    type: 'program-result',
    block: b.block,
    outcome: 'COMPLETE',
    finalUs: Float32Array.from({ length: n }, (_, i) => 2 + (i % 38) + 0.1),
    pulses: new Uint16Array(n).fill(7),
    status: new Uint8Array(n),
    totalPulses: 7 * n,
    ...(next ? { nextIntent: { block: next.block, bootId: 1 } } : {}),
  });
});
const programS = (performance.now() - t) / 1000;

t = performance.now();
for (const tile of tiles) emit({ type: 'readback', point: 0, tile: tile.tile, valuesUs: tile.targetsUs });
const readS = (performance.now() - t) / 1000;

const check = db.prepare("SELECT COUNT(*) AS n FROM cells WHERE run_id = ? AND state = 'programmed'").get(run.id) as { n: number };
if (check.n !== cells) throw new Error(`expected ${cells} programmed cells, found ${check.n}`);
const settings = { journal: db.pragma('journal_mode', { simple: true }), synchronous: db.pragma('synchronous', { simple: true }), cells, blockCells: BLOCK };
report('store.cell_rows_per_s', Math.round(cells / programS), 'rows/s', { ...settings, seconds: programS, transactions: blocks.length + 1 });
void planS; // the map step journals blocks (targets as blobs), not cell rows: no per-row figure
report('store.readback_rows_per_s', Math.round(cells / readS), 'rows/s', { ...settings, seconds: readS });
db.close();
rmSync(dir, { recursive: true, force: true });
