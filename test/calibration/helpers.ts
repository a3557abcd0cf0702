import { EmulatorDevice, emulatorTransport, loadChipProfile, chipProfilePath, type ChipProfile } from '../../fixtures/emulated-macro/index.js';
import { MacroClient, type ChipLink } from '../../src/link/index.js';

/**
 * An in-process emulated macro behind the real ChipLink client. Its HELLO clock is the chip's
 * physical clock (operation time and ADVANCE_CLOCK; its cells do not age over wall time), so the
 * ages the calibration plan takes from HELLO are the ages the cells saw.
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
  return {
    link: client,
    device,
    profile: loadChipProfile(chipProfilePath(chip)),
    close: async () => {
      await client.close();
      await device.close();
    },
  };
}
