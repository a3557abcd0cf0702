/**
 * A bench that runs several campaigns in one process (the server, the soak) closes its link after
 * each and opens the same port again. Found by the soak: closing a SerialPortStream with destroy()
 * alone leaves the fd and its lock (@serialport/stream has no _destroy), so the second open failed
 * with PORT_LOCKED; the serial transport now closes the port first.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EmulatorDevice, servePty, socatAvailable } from '../../fixtures/emulated-macro/index.js';
import { MacroClient, transportFor } from '../../src/link/index.js';

const skip = socatAvailable() ? false : 'socat is not installed (apt-get install socat)';

test('a closed serial link releases its port: the same process can open it again', { skip, timeout: 20_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cimbench-reopen-'));
  const device = new EmulatorDevice({ workers: 0 });
  const pty = await servePty(device, join(dir, 'macro'));
  try {
    for (let i = 0; i < 2; i++) {
      const client = new MacroClient(transportFor(pty.path), { timeoutMs: 400 });
      try {
        const info = await client.connect();
        assert.equal(info.bootId, device.chip.bootId, `open #${i + 1}`);
      } finally {
        await client.close();
      }
    }
  } finally {
    await pty.stop();
    await device.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
