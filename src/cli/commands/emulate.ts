import type { Command } from 'commander';
import { z } from 'zod';
import { parseWith } from '../../common/validate.js';
import { EmulatorDevice, parseFaultSpec, serveEmulatorTcp, servePty, type PtyServer, type TcpServer } from '../../../fixtures/emulated-macro/index.js';
import { renderTable } from '../format.js';

const intString = (what: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `${what} must be a whole number`)
    .transform(Number)
    .pipe(z.int().min(min, `${what} must be at least ${min}`).max(max, `${what} must be at most ${max}`));

const EmulateOptionsSchema = z
  .strictObject({
    link: z.string().min(1).optional(),
    tcp: intString('port', 0, 65535).optional(),
    seed: intString('seed', 0, 0xffffffff),
    chip: z.string().min(1),
    faults: z.string().optional(),
    maxPayload: intString('max payload', 64, 65535),
    workers: intString('workers', 0, 64).optional(),
    wallClock: z.boolean(),
    json: z.boolean(),
  })
  .refine((o) => (o.link === undefined) !== (o.tcp === undefined), { message: 'give exactly one of --link <path> or --tcp <port>', path: ['link'] });

function hex32(v: number): string {
  return `0x${v.toString(16).padStart(8, '0')}`;
}

/** Resolves on the first SIGINT or SIGTERM. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

export function registerEmulate(program: Command): void {
  program
    .command('emulate')
    .description('serve the emulated RRAM macro (its own device physics, the firmware protocol) on a pty pair or TCP loopback until interrupted')
    .option('--link <path>', 'create a pseudo-terminal pair with socat and leave <path> for the host (cimbench hello --port <path>)')
    .option('--tcp <port>', 'serve over TCP on 127.0.0.1:<port> instead (0 picks a free port)')
    .option('--seed <n>', 'chip seed: manufacturing, pulses, reads and faults (same seed, same numbers)', '1')
    .option('--chip <profile>', 'chip profile: typical, degraded or a profile .json', 'typical')
    .option('--faults <spec>', 'fault injection, e.g. loss=0.01,flip=0.001,garbage=0.0005,delay=5ms,stall=0.001,disconnect-during-program=1,power-cycle-at=program:3 (fixtures/emulated-macro/README.md)')
    .option('--max-payload <bytes>', 'largest payload advertised in HELLO', '4096')
    .option('--workers <n>', 'INFER worker threads (default min(2, cores); 0 = none)')
    .option('--wall-clock', 'cells also relax in real time (default: only operations and ADVANCE_CLOCK move the chip clock)', false)
    .option('--json', 'machine-readable output: one JSON line when listening, one with the counters at exit', false)
    .action(async (raw: Record<string, unknown>) => {
      const opts = parseWith(EmulateOptionsSchema, raw, 'emulate options');
      if (opts.faults !== undefined) parseFaultSpec(opts.faults); // fail before anything starts
      const device = new EmulatorDevice({
        chip: opts.chip,
        seed: opts.seed,
        maxPayload: opts.maxPayload,
        wallClock: opts.wallClock,
        ...(opts.faults !== undefined ? { faults: opts.faults } : {}),
        ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
      });
      let pty: PtyServer | undefined;
      let tcp: TcpServer | undefined;
      try {
        if (opts.link !== undefined) pty = await servePty(device, opts.link);
        else tcp = await serveEmulatorTcp(device, { port: opts.tcp ?? 0 });
      } catch (err) {
        await device.close();
        throw err;
      }
      const where = pty ? pty.path : (tcp as TcpServer).url;
      const id = device.macro.identity;
      const listening = {
        listening: where,
        transport: pty ? 'pty' : 'tcp',
        chipId: id.chipId,
        chip: device.profile.name,
        seed: opts.seed,
        bootId: hex32(device.chip.bootId),
        arrays: `${id.arrays} x ${id.rows}x${id.cols}`,
        maxPayload: opts.maxPayload,
        faults: device.faultSpec,
      };
      if (opts.json) process.stdout.write(`${JSON.stringify(listening)}\n`);
      else {
        process.stdout.write(`emulated macro ${id.chipId} (${device.profile.name}, seed ${opts.seed}, boot ${listening.bootId}) listening on ${where}\n`);
        process.stdout.write(`connect with: cimbench hello --port ${where}    (Ctrl-C stops)\n`);
      }
      const signal = await untilSignal();
      await pty?.stop();
      await tcp?.stop();
      const stats = device.stats();
      await device.close();
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ stopped: signal, bootId: hex32(stats.bootId), boots: stats.boots, pulses: stats.pulses, chip: stats.chip, faults: stats.faults })}\n`);
        return;
      }
      const rows: Array<[string, string | number]> = [
        ['pulses applied', stats.pulses],
        ['program / read / MVM operations', `${stats.chip.programOps} / ${stats.chip.readOps} / ${stats.chip.mvmOps}`],
        ['boots', stats.boots],
        ...Object.entries(stats.faults).map(([k, v]): [string, number] => [`fault: ${k}`, v]),
      ];
      process.stdout.write(`stopped by ${signal}\n${renderTable(['counter', 'value'], rows)}\n`);
    });
}
