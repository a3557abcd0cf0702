import type { Command } from 'commander';
import { InputError, withContext } from '../../common/errors.js';
import { MacroClient, capabilityNames, transportFor, type DeviceInfo } from '../../link/index.js';
import { renderTable } from '../format.js';

interface HelloOptions {
  port: string;
  baud: string;
  timeout: string;
  json: boolean;
}

export function registerHello(program: Command): void {
  program
    .command('hello')
    .description('connect to a macro, perform HELLO and print what the device reports')
    .requiredOption('-p, --port <path|tcp://host:port>', 'serial device (e.g. /dev/ttyUSB0, a socat pty) or tcp://host:port')
    .option('-b, --baud <rate>', 'baud rate (ignored by ptys and TCP)', '921600')
    .option('--timeout <ms>', 'deadline per attempt', '500')
    .option('--json', 'machine-readable output', false)
    .action(async (opts: HelloOptions) => {
      const baudRate = Number(opts.baud);
      const timeoutMs = Number(opts.timeout);
      if (!Number.isInteger(baudRate) || baudRate <= 0) throw new InputError('INVALID_INPUT', `not a baud rate: ${opts.baud}`, { where: '--baud' });
      if (!(timeoutMs > 0)) throw new InputError('INVALID_INPUT', `not a timeout in ms: ${opts.timeout}`, { where: '--timeout' });
      const client = new MacroClient(transportFor(opts.port, { baudRate }), { timeoutMs, reconnect: false });
      let info: DeviceInfo;
      let rttMs: number;
      try {
        info = await client.connect();
        rttMs = await client.ping();
      } catch (err) {
        throw withContext(err, `hello on ${opts.port}`);
      } finally {
        await client.close();
      }
      const capabilities = capabilityNames(info.capabilities);
      const fw = `${info.firmwareVersion.major}.${info.firmwareVersion.minor}.${info.firmwareVersion.patch}`;
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ port: opts.port, ...info, firmwareVersion: fw, capabilities, capabilityBits: info.capabilities, bootId: hex32(info.bootId), pingMs: rttMs }, null, 2)}\n`);
        return;
      }
      const rows: Array<[string, string]> = [
        ['port', opts.port],
        ['protocol', `${info.protocolMajor}.${info.protocolMinor}`],
        ['firmware', `${info.firmwareName} ${fw}`],
        ['chip id', info.chipId],
        ['boot id', hex32(info.bootId)],
        ['arrays', `${info.arrays} x ${info.rows}x${info.cols}`],
        ['conductance', `${info.gMinUs}..${info.gMaxUs} uS, ${info.levels} levels`],
        ['ADC / DAC bits', `${info.adcBits} / ${info.dacBits}`],
        ['max payload', `${info.maxPayload} bytes`],
        ['window', String(info.window)],
        ['capabilities', capabilities.join(', ')],
        ['device clock', `${(info.clockMs / 1000).toFixed(3)} s`],
        ['ping', `${rttMs.toFixed(2)} ms`],
      ];
      process.stdout.write(`${renderTable(['field', 'value'], rows)}\n`);
    });
}

function hex32(v: number): string {
  return `0x${v.toString(16).padStart(8, '0')}`;
}
