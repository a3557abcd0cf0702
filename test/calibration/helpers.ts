import { EmulatorDevice, emulatorTransport, loadChipProfile, chipProfilePath, type ChipProfile } from '../../fixtures/emulated-macro/index.js';
import { MacroClient, type ChipLink, type DeviceInfo } from '../../src/link/index.js';

/**
 * An in-process emulated macro behind the real ChipLink client. The emulator's HELLO clock counts
 * wall time, ADVANCE_CLOCK and the emulated time of its operations, but its cells (wallClock off)
 * do not relax over the wall time, so this link reports the chip's physical clock in HELLO
 * instead: the time the cells saw, to the microsecond. Everything else goes through the protocol
 * unchanged.
 */
export interface EmulatedLink {
  readonly link: ChipLink;
  readonly device: EmulatorDevice;
  readonly profile: ChipProfile;
  close(): Promise<void>;
}

export async function emulatedLink(chip: 'typical' | 'degraded', seed: number): Promise<EmulatedLink> {
  const device = new EmulatorDevice({ chip, seed });
  const client = new MacroClient(emulatorTransport(device), { timeoutMs: 20_000 });
  await client.connect();
  const physical = (info: DeviceInfo): DeviceInfo => ({ ...info, clockMs: device.chip.timeS * 1000 });
  const link = new Proxy(client, {
    get(target, key) {
      if (key === 'hello') return async () => physical(await target.hello());
      if (key === 'info') return target.info && physical(target.info);
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as ChipLink;
  return {
    link,
    device,
    profile: loadChipProfile(chipProfilePath(chip)),
    close: async () => {
      await client.close();
      await device.close();
    },
  };
}
