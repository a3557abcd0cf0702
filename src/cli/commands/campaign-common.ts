import cliProgress from 'cli-progress';
import { resolve } from 'node:path';
import { EmulatorDevice, emulatorTransport } from '../../../fixtures/emulated-macro/index.js';
import {
  executeRun,
  LinkConfigSchema,
  loadCampaign,
  parseCampaign,
  type Campaign,
  type CampaignDocument,
  type ExecuteOptions,
  type ExecuteResult,
  type LinkConfig,
  type OpenedLink,
} from '../../bench/index.js';
import { InputError } from '../../common/errors.js';
import { parseWith } from '../../common/validate.js';
import { MacroClient, transportFor } from '../../link/index.js';
import type { RunSummary } from '../../store/index.js';
import { renderTable } from '../format.js';

/** Shared by run, program, measure, drift and demo: open the link, run the engine, record, report. */

export function openLink(cfg: LinkConfig): OpenedLink {
  if (cfg.kind === 'emulator') {
    const device = new EmulatorDevice({ chip: cfg.chip, seed: cfg.seed });
    const client = new MacroClient(emulatorTransport(device), { timeoutMs: cfg.timeoutMs });
    return {
      link: client,
      description: `in-process emulated macro (chip ${cfg.chip}, seed ${cfg.seed})`,
      persistent: false,
      close: async () => {
        await client.close();
        await device.close();
      },
    };
  }
  const port = cfg.kind === 'serial' ? cfg.path : cfg.url;
  const client = new MacroClient(transportFor(port, cfg.kind === 'serial' ? { baudRate: cfg.baud } : {}), { timeoutMs: cfg.timeoutMs });
  return { link: client, description: port, persistent: true, close: () => client.close() };
}

/**
 * A link from a --port argument: `emulator[:<chip>[:<seed>]]` (the in-process emulated macro),
 * `tcp://host:port`, or a serial device path.
 */
export function linkConfigForPort(port: string, options: { baudRate?: number; timeoutMs?: number } = {}): LinkConfig {
  const timeoutMs = options.timeoutMs ?? 2000;
  const emu = /^emulator(?::([A-Za-z0-9_-]+))?(?::(\d+))?$/.exec(port);
  let link: unknown;
  if (emu) link = { kind: 'emulator', chip: emu[1] ?? 'typical', seed: emu[2] !== undefined ? Number(emu[2]) : 1, timeoutMs };
  else if (port.startsWith('emulator')) throw new InputError('INVALID_INPUT', `not an emulated macro: ${port} (emulator, emulator:<chip> or emulator:<chip>:<seed>)`, { where: '--port' });
  else if (port.startsWith('tcp://')) link = { kind: 'tcp', url: port, timeoutMs };
  else link = { kind: 'serial', path: resolve(port), ...(options.baudRate !== undefined ? { baud: options.baudRate } : {}), timeoutMs };
  return parseWith(LinkConfigSchema, link, '--port');
}

/** One cli-progress bar per long step on stderr; nothing when stderr is not a terminal. */
export function progressBars(): { subscriber: (doc: CampaignDocument) => void; stop(): void } {
  const tty = Boolean(process.stderr.isTTY);
  let bar: cliProgress.SingleBar | undefined;
  let current = '';
  const stop = (): void => {
    bar?.stop();
    bar = undefined;
    current = '';
  };
  return {
    subscriber: (doc) => {
      if (!tty) return;
      if (doc.type === 'progress') {
        if (current !== doc.label) {
          stop();
          current = doc.label;
          bar = new cliProgress.SingleBar(
            { stream: process.stderr, format: `${doc.label.padEnd(16)} [{bar}] {percentage}% {value}/{total}`, hideCursor: true, clearOnComplete: false },
            cliProgress.Presets.shades_classic,
          );
          bar.start(doc.total, 0);
        }
        bar?.setTotal(doc.total);
        bar?.update(doc.done);
      } else if (doc.type === 'step-end') {
        stop();
        process.stderr.write(`${doc.key.padEnd(14)} ${doc.status} in ${doc.seconds.toFixed(1)} s\n`);
      } else if (doc.type === 'event' && doc.level === 'warning') {
        stop();
        process.stderr.write(`warning: ${doc.message}\n`);
      }
    },
    stop,
  };
}

export interface CliRunOptions extends Omit<ExecuteOptions, 'openLink' | 'subscribers' | 'signals' | 'log'> {
  readonly quiet?: boolean;
}

/** executeRun with the CLI's link opener, progress bars on stderr and signal handling. */
export async function runFromCli(opts: CliRunOptions): Promise<ExecuteResult> {
  const bars = progressBars();
  try {
    return await executeRun({
      ...opts,
      openLink,
      signals: true,
      ...(opts.quiet ? {} : { subscribers: [bars.subscriber], log: (line: string) => (bars.stop(), process.stderr.write(`${line}\n`)) }),
    });
  } finally {
    bars.stop();
  }
}

export function loadCampaignArg(path: string): { campaign: Campaign; source: string } {
  return { campaign: loadCampaign(path), source: resolve(path) };
}

export function campaignFromObject(value: unknown, baseDir: string, source = 'campaign'): Campaign {
  return parseCampaign(value, source, baseDir);
}


const pct = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : `${(100 * v).toFixed(1)}%`);
const num = (v: number | null | undefined, d = 3): string => (v === null || v === undefined ? '-' : v.toFixed(d));

export function formatDuration(s: number | null): string {
  if (s === null) return '-';
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  if (s < 172_800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86_400).toFixed(1)} d`;
}

/** The human summary of a run (show, run, demo). */
export function renderSummary(s: RunSummary): string {
  const r = s.run;
  const lines: string[] = [];
  lines.push(
    `run ${r.id} (${r.mode}) of campaign ${r.campaignName}: ${r.status}${r.exitStatus ? ` / ${r.exitStatus}` : ''}${r.reason ? ` (${r.reason})` : ''}`,
    `network ${r.networkName} (weight image ${r.weightImageSha256.slice(0, 12)}), hardware ${r.hardwareProfile} (${r.hardwareSha256.slice(0, 12)}), noise ${r.noiseProfile} (${r.noiseSha256.slice(0, 12)})`,
    `device ${r.chipId ?? '-'} firmware ${r.firmwareName ?? '-'} ${r.firmwareVersion ?? ''}, boot ids ${r.bootIds.map((b) => `0x${(b >>> 0).toString(16)}`).join(', ') || '-'}; backend ${r.backend}; seeds ${r.seeds.join(',')}`,
    `cost model: latency ${r.cost.latencyMs.toFixed(4)} ms, energy ${r.cost.energyMj.toFixed(6)} mJ, EDP ${r.cost.edpMsMj.toExponential(3)} ms*mJ per image (layer by layer)`,
  );
  const c = s.cells;
  if (r.plan.steps.some((step) => step.kind === 'program')) {
    lines.push(
      `cells: ${c.total} of ${r.cellsPlanned} planned accounted (${c.programmed} programmed, ${c.failed} failed, ${c.interrupted} interrupted${c.planned ? `, ${c.planned} not yet attempted` : ''}); ` +
        `${c.accountedExactlyOnce ? 'each exactly once' : 'ACCOUNTING MISMATCH'}; pulses ${c.pulsesTotal}, mean ${num(c.meanPulses, 2)} per cell`,
    );
  }
  if (s.digitalAccuracy !== null) lines.push(`digital (quantised, noise-free) accuracy: ${pct(s.digitalAccuracy)}`);
  if (s.points.length > 0) {
    lines.push(
      '',
      renderTable(
        ['point', 'after', 'actual', 'clock', 'simulated', 'sim std', 'measured', 'measured-sim'],
        s.points.map((p) => [
          p.point,
          formatDuration(p.nominalS),
          formatDuration(p.actualS),
          p.clock ?? '-',
          pct(p.simulated?.mean),
          p.simulated ? `${(100 * p.simulated.std).toFixed(2)}` : '-',
          pct(p.measured),
          p.difference === null ? '-' : `${(100 * p.difference).toFixed(2)} pt`,
        ]),
      ),
    );
  }
  const layerRows = s.discrepancies.filter((d) => d.layer >= 0);
  if (layerRows.length > 0) {
    lines.push(
      '',
      'discrepancies per layer (measured - simulated):',
      renderTable(
        ['point', 'layer', 'metric', 'simulated', 'measured', 'difference'],
        layerRows.map((d) => [d.point, d.layerName, d.metric, num(d.simulated, 4), num(d.measured, 4), num(d.difference, 4)]),
      ),
    );
  }
  if (s.mvm.length > 0) {
    lines.push(
      '',
      'MVM probes per array (relative error of ADC codes vs ideal):',
      renderTable(
        ['point', 'array', 'clip', 'vs target', 'vs read-back'],
        s.mvm.map((m) => [m.point, m.array, pct(m.clipFraction), num(m.relErrorVsTarget, 4), num(m.relErrorVsReadback, 4)]),
      ),
    );
  }
  if (s.arrayDiscrepancies.length > 0) {
    lines.push(
      '',
      'discrepancies per array (MVM probes, measured - simulated):',
      renderTable(
        ['point', 'array', 'metric', 'simulated', 'sim std', 'measured', 'difference'],
        s.arrayDiscrepancies.map((d) => [d.point, d.array, d.metric, num(d.simulated, 4), num(d.simulatedStd, 4), num(d.measured, 4), num(d.difference, 4)]),
      ),
    );
  }
  const warnings = s.events.filter((e) => e.level === 'warning');
  if (warnings.length > 0) lines.push('', ...warnings.map((w) => `warning: ${w.message}`));
  return `${lines.join('\n')}\n`;
}
