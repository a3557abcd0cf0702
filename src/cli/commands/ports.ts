import type { Command } from 'commander';
import { listPorts } from '../../link/index.js';
import { renderTable } from '../format.js';

export function registerPorts(program: Command): void {
  program
    .command('ports')
    .description('list serial ports (pseudo-terminals are never listed: pass their path to --port)')
    .option('--json', 'machine-readable output', false)
    .action(async (opts: { json: boolean }) => {
      const listing = await listPorts();
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(listing, null, 2)}\n`);
        return;
      }
      if (listing.note && listing.source !== 'udev') process.stderr.write(`note: ${listing.note}\n`);
      if (listing.ports.length === 0) {
        process.stdout.write('no serial ports found (plug the board in, or use a pty path / tcp://host:port with --port)\n');
        return;
      }
      const rows = listing.ports.map((p) => [p.path, p.manufacturer ?? '', p.serialNumber ?? '', p.vendorId && p.productId ? `${p.vendorId}:${p.productId}` : '', p.byId ?? '']);
      process.stdout.write(`${renderTable(['path', 'manufacturer', 'serial', 'usb id', 'by-id'], rows)}\n`);
    });
}
