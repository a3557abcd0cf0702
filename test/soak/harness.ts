/**
 * The soak harness shared by the long soak (test/soak/*.soak.ts, `npm run soak`) and its shortened
 * form in the default suite (test/reliability/soak-lite.test.ts): an emulated macro served on a
 * socat pty with faults on, campaigns run against it back to back, and after each campaign the
 * checks that turn the bench's promises into numbers:
 *  - the store: PRAGMA integrity_check ok, no run left running, every planned cell exactly once;
 *  - pulses: for every cell the host recorded a pulse count for, the chip applied exactly that many
 *    pulses in this campaign; cells whose PROGRAM was never sent got none; no cell was written by
 *    two executed PROGRAM operations (a replay) and no cell outside the plan was touched.
 * Pulses applied are read from the chip's per-cell lifetime counters and the PROGRAM operations
 * executed from a wrapper on the emulated firmware (EmulatedMacro.prototype.program), both in this
 * process; the host's record is the SQLite store.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmulatedMacro, EmulatorDevice, servePty, type EmulatorOptions, type FaultCounters, type PtyServer } from '../../fixtures/emulated-macro/index.js';
import { executeRun, loadCampaign, type OpenedLink } from '../../src/bench/index.js';
import type { ProgramJob } from '../../src/link/device/backend.js';
import { MacroClient, transportFor } from '../../src/link/index.js';
import type { Rng } from '../../src/common/rng.js';
import { BenchRuns, openDatabase } from '../../src/store/index.js';
import { repoPath } from '../helpers/paths.js';

export const DEMO_NETWORK = repoPath('fixtures/networks/demo');

// ------------------------------------------------------------------ PROGRAM executions per cell

/** Cells ("array:row:col") written by executed PROGRAM operations since the last reset, with counts. */
const executions = new Map<string, number>();
let executionsTotal = 0;
let wrapped = false;

/**
 * Counts every PROGRAM the emulated firmware executes, per cell. A retransmitted request answered
 * from the reply cache does not execute again; a PROGRAM replayed by the host after a power cycle
 * (cache gone) would, and shows up as a cell written twice.
 */
export function trackProgramExecutions(): void {
  if (wrapped) return;
  wrapped = true;
  const original = EmulatedMacro.prototype.program;
  EmulatedMacro.prototype.program = function (this: EmulatedMacro, job: ProgramJob, ctx) {
    const r = job.region;
    executionsTotal++;
    for (let i = 0; i < r.rows; i++) {
      for (let j = 0; j < r.cols; j++) {
        const key = `${r.array}:${r.row + i}:${r.col + j}`;
        executions.set(key, (executions.get(key) ?? 0) + 1);
      }
    }
    return original.call(this, job, ctx);
  };
}

export function resetExecutions(): void {
  executions.clear();
  executionsTotal = 0;
}

// ------------------------------------------------------------------ the rig

export interface SoakRig {
  readonly device: EmulatorDevice;
  readonly pty: PtyServer;
  readonly dir: string;
  readonly dbPath: string;
  /** A link opener for executeRun over the pty (serialport transport). */
  openLink(): OpenedLink;
  /** Writes a campaign file on the pty link; returns its path. */
  writeCampaign(name: string, extra?: Record<string, unknown>): string;
  close(): Promise<void>;
}

export interface RigOptions extends EmulatorOptions {
  readonly timeoutMs?: number;
  readonly retries?: number;
}

export async function startRig(options: RigOptions): Promise<SoakRig> {
  trackProgramExecutions();
  const dir = mkdtempSync(join(tmpdir(), 'cimbench-soak-'));
  const device = new EmulatorDevice({ workers: 0, ...options });
  const pty = await servePty(device, join(dir, 'macro'));
  const timeoutMs = options.timeoutMs ?? 400;
  const dbPath = join(dir, 'bench.db');
  return {
    device,
    pty,
    dir,
    dbPath,
    openLink() {
      const client = new MacroClient(transportFor(pty.path), { timeoutMs, retries: options.retries ?? 8, reconnect: { attempts: 40, delayMs: 100 } });
      return { link: client, description: pty.path, persistent: true, close: () => client.close() };
    },
    writeCampaign(name, extra = {}) {
      const path = join(dir, `${name}.json`);
      writeFileSync(path, JSON.stringify({ ...smallCampaign(name), link: { kind: 'serial', path: pty.path, timeoutMs }, ...extra }));
      return path;
    },
    async close() {
      await pty.stop();
      await device.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A small campaign on the committed demo network (15,264 cells): few images, one seed, two time points. */
export function smallCampaign(name: string): Record<string, unknown> {
  return {
    name,
    network: DEMO_NETWORK,
    testSet: { count: 20 },
    seeds: [1],
    programming: { blockCells: 1024 },
    drift: { initial: 1, points: ['1 h'], clock: 'emulated' },
    mvm: { vectors: 1 },
  };
}

// ------------------------------------------------------------------ pulses

/** Per-array copy of the chip's lifetime per-cell pulse counters. */
export function pulseSnapshot(device: EmulatorDevice): Uint32Array[] {
  const out: Uint32Array[] = [];
  for (let a = 0; a < device.profile.geometry.arrays; a++) out.push(device.chip.cellArray(a).pulses.slice());
  return out;
}

export interface CampaignCheck {
  readonly runId: number;
  readonly status: string;
  readonly exitStatus: string | null;
  readonly sessions: number;
  readonly cellsPlanned: number;
  readonly accountedExactlyOnce: boolean;
  readonly integrityOk: boolean;
  readonly runsLeftRunning: number;
  /** Cells with a recorded pulse count different from what the chip applied in this campaign. */
  readonly pulseMismatches: number;
  /** Cells written by more than one executed PROGRAM (a replay). */
  readonly duplicatePulsedCells: number;
  /** Pulses applied to cells whose PROGRAM the journal says was never sent, or to cells outside the plan. */
  readonly strayPulses: number;
  readonly hostPulses: number;
  readonly devicePulses: number;
  /** Cells whose outcome the host does not know (PROGRAM sent, reply lost to a crash or reboot; read back instead). */
  readonly unknownCells: number;
  readonly programExecutions: number;
}

/**
 * Checks one campaign run against the chip: `before` is the pulse snapshot taken before the run
 * started, and the execution tracker must have been reset at the same moment.
 */
export function checkCampaign(dbPath: string, runId: number, device: EmulatorDevice, before: Uint32Array[]): CampaignCheck {
  const db = openDatabase(dbPath);
  try {
    const integrityOk = JSON.stringify(db.pragma('integrity_check')) === JSON.stringify([{ integrity_check: 'ok' }]);
    const runsLeftRunning = (db.prepare("SELECT COUNT(*) AS n FROM runs WHERE status IN ('running', 'paused')").get() as { n: number }).n;
    const s = new BenchRuns(db).summary(runId);
    const cols = device.profile.geometry.cols;
    const rows = device.profile.geometry.rows;
    const delta = (a: number, r: number, c: number): number => ((device.chip.cellArray(a).pulses[r * cols + c] as number) - (before[a]?.[r * cols + c] as number)) >>> 0;
    const inPlan = new Set<number>();
    let pulseMismatches = 0;
    let hostPulses = 0;
    let unknownCells = 0;
    let duplicatePulsedCells = 0;
    let strayPulses = 0;
    const cells = db
      .prepare('SELECT c.array_no, c.row_no, c.col_no, c.pulses, b.state FROM cells c JOIN program_blocks b ON b.run_id = c.run_id AND b.block = c.block WHERE c.run_id = ?')
      .raw(true)
      .iterate(runId) as Iterable<[number, number, number, number | null, string]>;
    for (const [a, r, c, pulses, blockState] of cells) {
      inPlan.add((a * rows + r) * cols + c);
      const d = delta(a, r, c);
      if ((executions.get(`${a}:${r}:${c}`) ?? 0) > 1) duplicatePulsedCells++;
      if (pulses !== null) {
        hostPulses += pulses;
        if (d !== pulses) pulseMismatches++;
      } else if (blockState === 'skipped') {
        strayPulses += d;
      } else {
        unknownCells++;
      }
    }
    // Nothing outside the plan was pulsed.
    let devicePulses = 0;
    for (let a = 0; a < before.length; a++) {
      const now = device.chip.cellArray(a).pulses;
      const then = before[a] as Uint32Array;
      for (let i = 0; i < now.length; i++) {
        const d = ((now[i] as number) - (then[i] as number)) >>> 0;
        if (d === 0) continue;
        devicePulses += d;
        if (!inPlan.has(a * rows * cols + i)) strayPulses += d;
      }
    }
    return {
      runId,
      status: s.run.status,
      exitStatus: s.run.exitStatus,
      sessions: s.run.sessions,
      cellsPlanned: s.run.cellsPlanned,
      accountedExactlyOnce: s.cells.accountedExactlyOnce,
      integrityOk,
      runsLeftRunning,
      pulseMismatches,
      duplicatePulsedCells,
      strayPulses,
      hostPulses,
      devicePulses,
      unknownCells,
      programExecutions: executionsTotal,
    };
  } finally {
    db.close();
  }
}

// ------------------------------------------------------------------ figures

export type FaultKind = 'bytesLost' | 'bitsFlipped' | 'garbageBursts' | 'stalls' | 'disconnects' | 'powerCycles' | 'delayedFrames';

export function faultKinds(c: FaultCounters): Record<FaultKind, number> {
  return {
    bytesLost: c.bytesLostToDevice + c.bytesLostToHost,
    bitsFlipped: c.bitsFlippedToDevice + c.bitsFlippedToHost,
    garbageBursts: c.garbageBursts,
    stalls: c.stalls,
    disconnects: c.disconnects,
    powerCycles: c.powerCycles,
    delayedFrames: c.delayedFrames,
  };
}

export function heapUsedMb(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  return process.memoryUsage().heapUsed / 2 ** 20;
}

// ------------------------------------------------------------------ one campaign in this process

export interface CampaignPlanned {
  readonly name: string;
  /** Fault spec for this campaign (command-line form); replaces the device's spec. */
  readonly faults: string;
  /** Power-cycle the device this long after the campaign starts. */
  readonly powerCycleAfterMs?: number;
}

export interface CampaignOutcome {
  readonly check: CampaignCheck;
  readonly reason: string | null;
  readonly seconds: number;
  readonly powerCycled: boolean;
}

/** Runs one campaign with executeRun over the rig's pty, then checks it against the chip. */
export async function runCampaign(rig: SoakRig, c: CampaignPlanned): Promise<CampaignOutcome> {
  rig.device.setFaults(c.faults);
  const before = pulseSnapshot(rig.device);
  resetExecutions();
  const path = rig.writeCampaign(c.name);
  const t0 = performance.now();
  let powerCycled = false;
  const timer =
    c.powerCycleAfterMs === undefined
      ? undefined
      : setTimeout(() => {
          powerCycled = true;
          rig.device.powerCycle(1);
        }, c.powerCycleAfterMs);
  try {
    const r = await executeRun({ dbPath: rig.dbPath, mode: 'full', campaign: loadCampaign(path), source: path, openLink: () => rig.openLink() });
    // Let a replug (disconnect fault, power cycle) finish before the next campaign opens the port.
    for (let i = 0; i < 100 && !existsSync(rig.pty.path); i++) await sleep(50);
    await sleep(50);
    return { check: checkCampaign(rig.dbPath, r.runId, rig.device, before), reason: r.outcome.reason, seconds: (performance.now() - t0) / 1000, powerCycled };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The invariants every campaign must keep, faults or not; returns the broken ones (empty = all kept). */
export function violations(c: CampaignCheck): string[] {
  const out: string[] = [];
  if (c.status !== 'completed') out.push(`run ${c.runId} is ${c.status}`);
  if (!c.integrityOk) out.push('integrity_check not ok');
  if (c.runsLeftRunning !== 0) out.push(`${c.runsLeftRunning} runs left running`);
  if (!c.accountedExactlyOnce) out.push(`run ${c.runId}: cells not accounted exactly once`);
  if (c.pulseMismatches !== 0) out.push(`run ${c.runId}: ${c.pulseMismatches} cells with recorded pulses != applied pulses`);
  if (c.duplicatePulsedCells !== 0) out.push(`run ${c.runId}: ${c.duplicatePulsedCells} cells written by two PROGRAMs`);
  if (c.strayPulses !== 0) out.push(`run ${c.runId}: ${c.strayPulses} pulses on cells never sent or outside the plan`);
  return out;
}

// ------------------------------------------------------------------ SIGKILL and --resume

const cliEntry = repoPath('test/helpers/cli-entry.ts');

interface Child {
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  done: boolean;
  stderr: string;
}

function startCli(args: string[]): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', cliEntry, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const child: Child = { proc, exited: new Promise((resolve) => proc.once('exit', (code) => resolve(code))), done: false, stderr: '' };
  void child.exited.then(() => (child.done = true));
  proc.stderr?.on('data', (d: Buffer) => (child.stderr = (child.stderr + d.toString()).slice(-4000)));
  return child;
}

/** What the journal says, read while the bench child writes (WAL lets a reader in). */
interface JournalState {
  readonly runId: number | null;
  readonly blocksDone: number;
  readonly started: ReadonlySet<string>;
  /** Cells with a recorded outcome (pulses known) and read-back rows: committed, so never to be lost. */
  readonly recordedCells: number;
  readonly readbackRows: number;
}

/** `runId` null: the newest run above `after` (a run the child created), if any. */
function journal(dbPath: string, runId: number | null, after = 0): JournalState {
  const empty: JournalState = { runId, blocksDone: 0, started: new Set(), recordedCells: 0, readbackRows: 0 };
  if (!existsSync(dbPath)) return empty;
  let db: ReturnType<typeof openDatabase> | undefined;
  try {
    db = openDatabase(dbPath, { readonly: true });
    const id = runId ?? (db.prepare('SELECT id FROM runs WHERE id > ? ORDER BY id DESC LIMIT 1').get(after) as { id: number } | undefined)?.id ?? null;
    if (id === null) return empty;
    const n = (sql: string): number => (db?.prepare(sql).get(id) as { n: number }).n;
    return {
      runId: id,
      blocksDone: n("SELECT COUNT(*) AS n FROM program_blocks WHERE run_id = ? AND state = 'done'"),
      started: new Set((db.prepare('SELECT step_key FROM run_steps WHERE run_id = ?').all(id) as Array<{ step_key: string }>).map((s) => s.step_key)),
      recordedCells: n('SELECT COUNT(*) AS n FROM cells WHERE run_id = ? AND pulses IS NOT NULL'),
      readbackRows: n('SELECT COUNT(*) AS n FROM readbacks WHERE run_id = ?'),
    };
  } catch {
    return empty; // database or schema not there yet
  } finally {
    db?.close();
  }
}

/** sha256 over every row of every table that belongs to a run: a completed run must never change. */
export function runDigest(db: ReturnType<typeof openDatabase>, runId: number): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(db.prepare('SELECT * FROM runs WHERE id = ?').get(runId)));
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>)
    .map((t) => t.name)
    .filter((t) => (db.prepare(`SELECT name FROM pragma_table_info(?)`).all(t) as Array<{ name: string }>).some((c) => c.name === 'run_id'));
  for (const t of tables) {
    const rows = db.prepare(`SELECT * FROM ${t} WHERE run_id = ?`).raw(true).all(runId).map((r) => JSON.stringify(r));
    rows.sort();
    h.update(`${t}:${rows.length}\n`);
    for (const r of rows) h.update(r);
  }
  return h.digest('hex');
}

/** Stages of a campaign a kill can be aimed at, in the order they happen. */
export const KILL_STAGES = ['startup', 'programming (early)', 'programming (late)', 'readback@0', 'measure@0', 'settle/readback@1', 'measure@1'] as const;
export type KillStage = (typeof KILL_STAGES)[number];

export interface KillFigures {
  runs: number;
  runsCompleted: number;
  sigkills: number;
  /** Kills after which every check held (store intact, nothing running, cells once, finished runs unchanged, nothing lost). */
  survived: number;
  byStage: Record<string, number>;
  resumes: number;
  rowsLost: number;
  finishedRunsChanged: number;
  violations: string[];
  checks: CampaignCheck[];
}

/**
 * Runs campaigns in child bench processes (`cimbench run`, then `run --resume`) against the rig's
 * pty, killing each child with SIGKILL at random points until `kills` kills have landed. After
 * every kill: integrity_check, recovery, no run left running, the run interrupted with its cells
 * accounted exactly once, no committed row lost, every completed run byte-for-byte unchanged.
 * Each run is finally resumed to completion and checked against the chip's pulse counters.
 */
export async function killAndResume(rig: SoakRig, kills: number, rng: Rng, faults: string, log: (line: string) => void = () => undefined): Promise<KillFigures> {
  const fig: KillFigures = { runs: 0, runsCompleted: 0, sigkills: 0, survived: 0, byStage: {}, resumes: 0, rowsLost: 0, finishedRunsChanged: 0, violations: [], checks: [] };
  const finished = new Map<number, string>();
  rig.device.setFaults(faults);
  while (fig.sigkills < kills) {
    const campaignPath = rig.writeCampaign(`kill-${fig.runs}`);
    const before = pulseSnapshot(rig.device);
    resetExecutions();
    // 2..4 kill points per run, in the order the stages happen.
    const stages = KILL_STAGES.filter(() => rng.next() < 0.45).slice(0, 2 + rng.int(3));
    if (stages.length === 0) stages.push(KILL_STAGES[rng.int(KILL_STAGES.length)] as KillStage);
    let runId: number | null = null;
    let firstDone = 0;
    const newestBefore = newestRun(rig.dbPath);
    for (const stage of stages) {
      if (fig.sigkills >= kills) break;
      const child = startCli(runId === null ? ['run', campaignPath, '--db', rig.dbPath] : ['run', '--resume', String(runId), '--db', rig.dbPath]);
      if (runId !== null) fig.resumes++;
      const t0 = performance.now();
      const startupMs = 300 + rng.int(2500);
      const blocksTarget = { early: 1 + rng.int(5), late: 3 + rng.int(8) };
      let last = journal(rig.dbPath, runId, newestBefore);
      let killed = false;
      while (!child.done) {
        const s = journal(rig.dbPath, runId, newestBefore);
        if (s.runId !== null) last = s;
        const hit =
          stage === 'startup'
            ? performance.now() - t0 >= startupMs
            : s.runId !== null &&
              (stage === 'programming (early)'
                ? (firstDone = s.blocksDone) >= blocksTarget.early
                : stage === 'programming (late)'
                  ? s.blocksDone >= firstDone + blocksTarget.late
                  : stage === 'readback@0'
                    ? s.started.has('readback@0')
                    : stage === 'measure@0'
                      ? s.started.has('measure@0')
                      : stage === 'settle/readback@1'
                        ? s.started.has('settle@1') || s.started.has('readback@1')
                        : s.started.has('measure@1'));
        if (hit) {
          await sleep(rng.int(30));
          if (child.done) break;
          child.proc.kill('SIGKILL');
          killed = true;
          break;
        }
        await sleep(10);
      }
      const code = await child.exited;
      runId ??= journal(rig.dbPath, null, newestBefore).runId;
      if (!killed) {
        // The child finished (or failed) before the point came: the run is over.
        if (code !== 0) fig.violations.push(`run ${runId}: bench exited ${code} without a kill: ${child.stderr.slice(-500)}`);
        break;
      }
      fig.sigkills++;
      fig.byStage[stage] = (fig.byStage[stage] ?? 0) + 1;
      const problems = afterKill(rig.dbPath, runId, last, finished);
      fig.rowsLost += problems.rowsLost;
      fig.finishedRunsChanged += problems.changed;
      if (problems.list.length === 0) fig.survived++;
      else fig.violations.push(...problems.list.map((p) => `kill at ${stage}: ${p}`));
      log(`kill ${fig.sigkills}: run ${runId ?? '-'} at ${stage} after ${((performance.now() - t0) / 1000).toFixed(1)} s${problems.list.length ? ` PROBLEMS ${problems.list.join('; ')}` : ''}`);
    }
    if (runId === null) continue; // killed before the run row existed: nothing to finish
    fig.runs++;
    // Finish the run.
    const db0 = openDatabase(rig.dbPath);
    const status = new BenchRuns(db0).get(runId)?.status;
    db0.close();
    if (status !== 'completed') {
      const last = startCli(['run', '--resume', String(runId), '--db', rig.dbPath]);
      fig.resumes++;
      const code = await last.exited;
      if (code !== 0) fig.violations.push(`run ${runId}: final --resume exited ${code}: ${last.stderr.slice(-500)}`);
    }
    const check = checkCampaign(rig.dbPath, runId, rig.device, before);
    fig.checks.push(check);
    fig.violations.push(...violations(check));
    if (check.exitStatus === 'success') fig.runsCompleted++;
    const db = openDatabase(rig.dbPath);
    try {
      const s = new BenchRuns(db).summary(runId);
      const reads = db.prepare('SELECT point, COUNT(*) AS n FROM readbacks WHERE run_id = ? GROUP BY point').all(runId) as Array<{ point: number; n: number }>;
      if (check.exitStatus === 'success' && !(reads.length === s.run.plan.points.length && reads.every((r) => r.n === s.run.cellsPlanned))) {
        fig.violations.push(`run ${runId}: read-backs ${JSON.stringify(reads)} for ${s.run.cellsPlanned} cells`);
      }
      finished.set(runId, runDigest(db, runId));
    } finally {
      db.close();
    }
  }
  return fig;
}

function newestRun(dbPath: string): number {
  if (!existsSync(dbPath)) return 0;
  const db = openDatabase(dbPath, { readonly: true });
  try {
    return (db.prepare('SELECT COALESCE(MAX(id), 0) AS n FROM runs').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

function afterKill(dbPath: string, runId: number | null, last: JournalState, finished: Map<number, string>): { list: string[]; rowsLost: number; changed: number } {
  const list: string[] = [];
  let rowsLost = 0;
  let changed = 0;
  const db = openDatabase(dbPath);
  try {
    if (JSON.stringify(db.pragma('integrity_check')) !== JSON.stringify([{ integrity_check: 'ok' }])) list.push('integrity_check not ok');
    const runs = new BenchRuns(db);
    runs.recoverInterrupted();
    const running = (db.prepare("SELECT COUNT(*) AS n FROM runs WHERE status IN ('running', 'paused')").get() as { n: number }).n;
    if (running !== 0) list.push(`${running} runs left running`);
    if (runId !== null) {
      const s = runs.summary(runId);
      if (s.run.status !== 'interrupted' && s.run.status !== 'completed') list.push(`run ${runId} is ${s.run.status}`);
      if (!s.cells.accountedExactlyOnce) list.push(`run ${runId}: cells not accounted exactly once`);
      const now = journal(dbPath, runId);
      rowsLost += Math.max(0, last.recordedCells - now.recordedCells) + Math.max(0, last.readbackRows - now.readbackRows);
      if (rowsLost > 0) list.push(`run ${runId}: ${rowsLost} committed rows lost`);
      const dup = db.prepare('SELECT COUNT(*) AS n FROM (SELECT array_no, row_no, col_no FROM cells WHERE run_id = ? GROUP BY 1, 2, 3 HAVING COUNT(*) > 1)').get(runId) as { n: number };
      if (dup.n !== 0) list.push(`run ${runId}: ${dup.n} duplicate cell rows`);
    }
    for (const [id, digest] of finished) {
      if (runDigest(db, id) !== digest) {
        changed++;
        list.push(`finished run ${id} changed`);
      }
    }
  } finally {
    db.close();
  }
  return { list, rowsLost, changed };
}
