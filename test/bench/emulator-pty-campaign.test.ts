/**
 * A whole campaign against the real emulated macro served on a socat pty pair, through the serial
 * transport `cimbench run` uses, with a disconnect injected in the middle of programming: the run
 * completes, every planned cell is recorded exactly once, and the chip's pulse counter equals the
 * pulses the host recorded (no PROGRAM was replayed after the reconnect).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { executeRun } from '../../src/bench/index.js';
import { openLink } from '../../src/cli/commands/campaign-common.js';
import { openDatabase } from '../../src/store/index.js';
import { EmulatorDevice, servePty, socatAvailable } from '../../fixtures/emulated-macro/index.js';
import { DEMO_NETWORK, tempDir } from './helpers.js';
import { parseCampaign } from '../../src/bench/index.js';

const skip = socatAvailable() ? false : 'socat is not installed (apt-get install socat): the pty tests need it';

test('full campaign through a pty with a disconnect mid-PROGRAM: completes, every cell once, device pulses = host records', { skip, timeout: 120_000 }, async () => {
  const dir = tempDir();
  const dbPath = join(dir, 'bench.db');
  const device = new EmulatorDevice({ chip: 'typical', seed: 5, faults: 'disconnect-during-program=1' });
  const pty = await servePty(device, join(dir, 'macro'));
  try {
    const campaign = parseCampaign(
      {
        name: 'pty',
        network: DEMO_NETWORK,
        link: { kind: 'serial', path: pty.path, timeoutMs: 1000 },
        testSet: { count: 100 },
        programming: { blockCells: 1024 },
        drift: { initial: 1, points: ['1 h'], clock: 'emulated' },
        seeds: [1],
        mvm: { vectors: 2 },
      },
      'pty campaign',
      dir,
    );
    const r = await executeRun({ dbPath, mode: 'full', campaign, openLink });
    assert.equal(r.outcome.exitStatus, 'success', String(r.outcome.reason));
    const s = r.summary;
    assert.equal(device.stats().faults.disconnects, 1, 'the link dropped once during PROGRAM');
    assert.ok(s.cells.accountedExactlyOnce);
    assert.equal(s.cells.total, s.run.cellsPlanned);
    assert.equal(s.cells.programmed + s.cells.failed, s.run.cellsPlanned);
    assert.equal(device.stats().pulses, s.cells.pulsesTotal, 'pulses applied to the cells = pulses the host recorded');
    assert.ok(s.points.every((p) => p.measured !== null && p.simulated !== null));
    assert.ok((s.points[1]?.actualS ?? 0) >= 3600);
    assert.equal(s.points[1]?.clock, 'emulated');
    const db = openDatabase(dbPath, { readonly: true });
    try {
      const dup = db.prepare('SELECT COUNT(*) AS n FROM (SELECT array_no, row_no, col_no FROM cells WHERE run_id = ? GROUP BY 1, 2, 3 HAVING COUNT(*) > 1)').get(r.runId) as { n: number };
      assert.equal(dup.n, 0);
      const readbacks = db.prepare('SELECT point, COUNT(*) AS n FROM readbacks WHERE run_id = ? GROUP BY point ORDER BY point').all(r.runId) as Array<{ point: number; n: number }>;
      assert.deepEqual(readbacks.map((x) => x.n), [s.run.cellsPlanned, s.run.cellsPlanned], 'every cell read back at both time points');
    } finally {
      db.close();
    }
  } finally {
    await pty.stop();
    await device.close();
  }
});
