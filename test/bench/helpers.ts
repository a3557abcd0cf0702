import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCampaign, type Campaign, type CampaignInput, type OpenedLink } from '../../src/bench/index.js';
import type { DeviceEndpoint } from '../../src/link/device/endpoint.js';
import { MacroClient, inProcessTransport, type InProcessDevice } from '../../src/link/index.js';
import { TEST_IDENTITY, createTestDevice, type TestMacro, type TestMacroOptions } from '../link/helpers/test-macro.js';
import { repoPath } from '../helpers/paths.js';

/** The committed demo network: 15,264 cells on 3 of the nas4cim-macro's 8 arrays (tiles of different layers share arrays). */
export const DEMO_NETWORK = repoPath('fixtures/networks/demo');

/** The test device with the nas4cim-macro's geometry (8 arrays of 128x128). */
export const MACRO_IDENTITY = { ...TEST_IDENTITY, arrays: 8, rows: 128, cols: 128 };

export function tempDir(prefix = 'cimbench-bench-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A small campaign on the demo network: few images, one seed, two time points. */
export function testCampaign(overrides: Partial<CampaignInput> = {}): Campaign {
  return parseCampaign(
    {
      name: 'test',
      network: DEMO_NETWORK,
      link: { kind: 'emulator' },
      testSet: { dataset: 'fashion-mnist-subset', count: 40 },
      drift: { initial: 1, points: ['1 h'], clock: 'emulated' },
      seeds: [1],
      mvm: { vectors: 2 },
      ...overrides,
    },
    'test campaign',
    process.cwd(),
  );
}

export interface TestDevice {
  readonly macro: TestMacro;
  readonly endpoint: DeviceEndpoint;
  /** Regions PROGRAM was asked for, "array:row:col:rows:cols", in order (replays show up twice). */
  readonly programmed: string[];
  readonly openLink: () => OpenedLink;
}

/** An in-process test device and a link opener for executeRun; the device outlives each link. */
export function testDevice(options: TestMacroOptions & { wrap?: (d: InProcessDevice) => InProcessDevice } = {}): TestDevice {
  const { macro, endpoint } = createTestDevice({ identity: MACRO_IDENTITY, ...options });
  const programmed: string[] = [];
  const original = macro.program.bind(macro);
  macro.program = async (job, ctx) => {
    const r = job.region;
    // One PROGRAM request per payload-sized piece; record the cells it covers.
    programmed.push(`${r.array}:${r.row}:${r.col}:${r.rows}:${r.cols}`);
    return original(job, ctx);
  };
  const device: InProcessDevice = options.wrap ? options.wrap(endpoint) : endpoint;
  return {
    macro,
    endpoint,
    programmed,
    openLink: () => {
      const client = new MacroClient(inProcessTransport(device, 'test-macro'), { timeoutMs: 2000 });
      return { link: client, description: 'in-process test device', persistent: true, close: () => client.close() };
    },
  };
}
