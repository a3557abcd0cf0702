/**
 * Every zod boundary and protocol payload decoder, fuzzed with fast-check: random values and valid
 * documents mutated at a random path (value replaced by any JSON value or an odd number, key
 * deleted, unknown key added, array emptied or grown); random and mutated binary payloads for the
 * decoders. The promise: a parser returns a value or throws a typed CimbenchError (never a
 * TypeError, RangeError or a hang), an error names where (`where`) and, for schema errors below the
 * root, the field (`details.field`). Used by test/reliability/fuzz-boundaries.test.ts (few runs)
 * and by the soak (many runs).
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parseCampaign } from '../../src/bench/campaign.js';
import { CimbenchError } from '../../src/common/errors.js';
import { formatPath, parseWith } from '../../src/common/validate.js';
import { parseNoiseProfile } from '../../src/device/profile.js';
import { parseHardwareProfile } from '../../src/hardware/profile.js';
import * as M from '../../src/link/messages.js';
import { NetworkProgramSchema } from '../../src/link/network-program.js';
import { Flag } from '../../src/link/protocol.js';
import { parseNetworkSpec } from '../../src/spec/index.js';
import { FaultSpecSchema, parseFaultSpec } from '../../fixtures/emulated-macro/faults.js';
import { parseChipProfile } from '../../fixtures/emulated-macro/physics/profile.js';
import { repoPath } from '../helpers/paths.js';

const readJson = (rel: string): unknown => JSON.parse(readFileSync(repoPath(rel), 'utf8')) as unknown;

/** A parser under test and the valid documents its mutations start from. */
interface JsonBoundary {
  readonly seeds: readonly unknown[];
  readonly parse: (value: unknown) => unknown;
}

const campaignSeed = {
  name: 'fuzz',
  network: 'fixtures/networks/demo',
  hardware: 'nas4cim-macro',
  noise: 'rram-wan2022',
  link: { kind: 'tcp', url: 'tcp://127.0.0.1:7000', timeoutMs: 500 },
  testSet: { dataset: 'fashion-mnist-subset', count: 20, start: 0 },
  programming: { toleranceUs: 1, maxPulses: 100, maxIterations: 20, readAverages: 4, blockCells: 512 },
  drift: { initial: 1, points: ['1 min', '1 h', 86400], clock: 'emulated' },
  seeds: [1, 2],
  simulation: { images: 10, driftCompensation: true, batchSize: 50 },
  mvm: { vectors: 2, seed: 3 },
};

function loadNetworkProgramSeed(): unknown {
  const vectors = readJson('firmware-protocol/vectors/frames.json') as { vectors: Array<{ name: string; payload_hex?: string }> };
  const v = vectors.vectors.find((x) => x.name === 'load_network_request');
  const chunk = M.decodeLoadNetworkChunk(Uint8Array.from(Buffer.from(v?.payload_hex ?? '', 'hex')));
  return JSON.parse(Buffer.from(chunk.data).toString('utf8')) as unknown;
}

export const JSON_BOUNDARIES: Readonly<Record<string, JsonBoundary>> = {
  campaign: { seeds: [campaignSeed, { name: 'min', network: 'x' }], parse: (v) => parseCampaign(v, 'fuzz campaign', repoPath('.')) },
  'noise profile': {
    seeds: ['ideal', 'pcm-like', 'rram-crosssim', 'rram-wan2022'].map((n) => readJson(`calibration/noise/${n}.json`)),
    parse: (v) => parseNoiseProfile(v, 'fuzz noise profile'),
  },
  'hardware profile': {
    seeds: ['nas4cim-macro', 'multitile-256'].map((n) => readJson(`calibration/hardware/${n}.json`)),
    parse: (v) => parseHardwareProfile(v, 'fuzz hardware profile'),
  },
  'chip profile': {
    seeds: ['typical', 'degraded'].map((n) => readJson(`fixtures/emulated-macro/chips/${n}.json`)),
    parse: (v) => parseChipProfile(v, 'fuzz chip profile'),
  },
  'network spec': {
    seeds: [readJson('fixtures/networks/demo/spec.json'), readJson('fixtures/networks/fm-small.json'), readJson('fixtures/networks/fm-macro.json')],
    parse: (v) => parseNetworkSpec(v, 'fuzz network spec'),
  },
  'network program (LOAD_NETWORK document)': { seeds: [loadNetworkProgramSeed()], parse: (v) => parseWith(NetworkProgramSchema, v, 'fuzz network program') },
  'device config (SET_CONFIG)': {
    seeds: [{ vSetV: 1.2, vResetV: 1.5, vReadV: 0.2, pulseWidthNs: 50, readAverages: 4, maxPulses: 100, maxIterations: 20, toleranceUs: 1 }],
    parse: (v) => parseWith(M.DeviceConfigSchema, v, 'fuzz device config'),
  },
  'fault spec (object)': {
    seeds: [{ loss: 0.01, flip: 0.001, garbage: 0.01, delayMs: 5, stall: 0.001, stallMs: 100, disconnectDuringProgram: 1, powerCycleAt: { program: 3 }, powerOffS: 10, seed: 4 }],
    parse: (v) => parseWith(FaultSpecSchema, v, 'fuzz faults'),
  },
};

/** Payload decoders by (message type name, direction, kind of frame), with the golden vectors as seeds. */
const DECODERS: ReadonlyArray<{ name: string; match: (type: string, dir: string, flags: number) => boolean; decode: (p: Uint8Array) => unknown }> = [
  { name: 'HELLO request', match: (t, d) => t === 'HELLO' && d === 'host->device', decode: M.decodeHelloRequest },
  { name: 'HELLO reply', match: (t, d, f) => t === 'HELLO' && d === 'device->host' && !(f & Flag.ERROR), decode: M.decodeHelloReply },
  { name: 'config', match: (t, d, f) => ((t === 'GET_CONFIG' && d === 'device->host') || t === 'SET_CONFIG') && !(f & Flag.ERROR), decode: (p) => M.decodeConfig(p) },
  { name: 'counters', match: (t, d) => t === 'GET_COUNTERS' && d === 'device->host', decode: M.decodeCounters },
  { name: 'events request', match: (t, d) => t === 'GET_EVENTS' && d === 'host->device', decode: M.decodeEventsRequest },
  { name: 'events reply', match: (t, d) => t === 'GET_EVENTS' && d === 'device->host', decode: M.decodeEventsReply },
  { name: 'PROGRAM request', match: (t, d) => t === 'PROGRAM' && d === 'host->device', decode: M.decodeProgramRequest },
  { name: 'PROGRAM reply', match: (t, d, f) => t === 'PROGRAM' && d === 'device->host' && !(f & (Flag.ERROR | Flag.PROGRESS)), decode: M.decodeProgramReply },
  { name: 'progress', match: (_t, _d, f) => Boolean(f & Flag.PROGRESS), decode: M.decodeProgress },
  { name: 'READ_CELLS request', match: (t, d) => t === 'READ_CELLS' && d === 'host->device', decode: M.decodeReadCellsRequest },
  { name: 'READ_CELLS reply', match: (t, d, f) => t === 'READ_CELLS' && d === 'device->host' && !(f & (Flag.ERROR | Flag.PROGRESS)), decode: M.decodeReadCellsReply },
  { name: 'MVM request', match: (t, d) => t === 'MVM' && d === 'host->device', decode: M.decodeMvmRequest },
  { name: 'MVM reply', match: (t, d, f) => t === 'MVM' && d === 'device->host' && !(f & (Flag.ERROR | Flag.PROGRESS)), decode: M.decodeMvmReply },
  { name: 'LOAD_NETWORK chunk', match: (t, d) => t === 'LOAD_NETWORK' && d === 'host->device', decode: M.decodeLoadNetworkChunk },
  { name: 'LOAD_NETWORK reply', match: (t, d, f) => t === 'LOAD_NETWORK' && d === 'device->host' && !(f & (Flag.ERROR | Flag.PROGRESS)), decode: M.decodeLoadNetworkReply },
  { name: 'INFER request', match: (t, d) => t === 'INFER' && d === 'host->device', decode: M.decodeInferRequest },
  { name: 'INFER reply', match: (t, d, f) => t === 'INFER' && d === 'device->host' && !(f & (Flag.ERROR | Flag.PROGRESS)), decode: M.decodeInferReply },
  { name: 'error body', match: (_t, d, f) => d === 'device->host' && Boolean(f & Flag.ERROR), decode: M.decodeErrorBody },
];

function decoderSeeds(): Map<string, Uint8Array[]> {
  const vectors = readJson('firmware-protocol/vectors/frames.json') as {
    vectors: Array<{ direction: string; payload_hex?: string; dispatch?: string; header?: { type_name: string; flags: number } }>;
  };
  const out = new Map<string, Uint8Array[]>(DECODERS.map((d) => [d.name, []]));
  for (const v of vectors.vectors) {
    if (!v.header || v.payload_hex === undefined || v.dispatch) continue;
    const d = DECODERS.find((x) => x.match(v.header?.type_name ?? '', v.direction, v.header?.flags ?? 0));
    if (d) out.get(d.name)?.push(Uint8Array.from(Buffer.from(v.payload_hex, 'hex')));
  }
  return out;
}

// ---------------------------------------------------------------- mutations

type Json = unknown;

/** Odd values a hand-written or corrupted file can hold, beyond what JSON.parse gives. */
const oddValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 1e308, -1e308, 2 ** 53 + 1, 0.1, -1, 0, 1, 2 ** 32, '', ' ', '1 h', '-1 s', '__proto__', null, undefined, true, [], {}),
  fc.string({ maxLength: 40 }),
  fc.double(),
  fc.integer(),
);

/** All paths to values inside a document. */
function paths(v: Json, prefix: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  out.push(prefix);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...prefix, i], out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...prefix, k], out);
  return out;
}

function setAt(doc: Json, path: ReadonlyArray<string | number>, f: (old: Json, parent: Record<string | number, Json> | Json[] | undefined, key: string | number | undefined) => Json | typeof DELETE): Json {
  const copy = structuredClone(doc) as Json;
  if (path.length === 0) {
    const r = f(copy, undefined, undefined);
    return r === DELETE ? undefined : r;
  }
  let parent = copy as Record<string | number, Json>;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, Json>;
  const key = path[path.length - 1] as string | number;
  const r = f(parent[key], parent, key);
  if (r === DELETE) {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key];
  } else parent[key] = r;
  return copy;
}
const DELETE = Symbol('delete');

export interface Mutant {
  readonly value: unknown;
  /** The last path that was changed ('' for the root or a wholly random value). */
  readonly at: string;
  /** Every path changed, in `a.b[2]` form (as formatPath writes them). */
  readonly changed?: readonly string[];
}

/** A valid seed mutated 1..3 times, or a wholly random value. */
export function mutantOf(seeds: readonly unknown[]): fc.Arbitrary<Mutant> {
  const mutation = fc.record({
    pick: fc.nat(),
    kind: fc.constantFrom('replace', 'replace', 'delete', 'add-key', 'empty', 'grow', 'stringify'),
    value: oddValue,
    key: fc.oneof(fc.constantFrom('__proto__', 'constructor', 'extra'), fc.string({ maxLength: 8 })),
  });
  const mutated = fc.tuple(fc.nat({ max: seeds.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 3 })).map(([s, muts]) => {
    let doc = seeds[s] as Json;
    let at = '';
    const changed: string[] = [];
    for (const m of muts) {
      const all = paths(doc);
      const path = all[m.pick % all.length] as Array<string | number>;
      at = formatPath(path);
      changed.push(at);
      doc = setAt(doc, path, (old, parent) => {
        switch (m.kind) {
          case 'replace':
            return m.value;
          case 'delete':
            return parent === undefined ? undefined : DELETE;
          case 'add-key':
            return old && typeof old === 'object' && !Array.isArray(old) ? { ...old, [m.key]: m.value } : m.value;
          case 'empty':
            return Array.isArray(old) ? [] : old && typeof old === 'object' ? {} : '';
          case 'grow':
            return Array.isArray(old) ? [...old, ...old, m.value] : typeof old === 'string' ? old.repeat(50) : typeof old === 'number' ? old * 1e6 : old;
          case 'stringify':
            return JSON.stringify(old) ?? 'undefined';
        }
      });
    }
    return { value: doc, at, changed };
  });
  return fc.oneof({ weight: 5, arbitrary: mutated }, { weight: 1, arbitrary: fc.anything({ maxDepth: 3 }).map((value) => ({ value, at: '' })) });
}

// ---------------------------------------------------------------- checks


/** Why a parser's reaction to an input breaks the promise, or undefined when it keeps it. */
export function judge(run: () => unknown, mutant?: Mutant): string | undefined {
  const t0 = performance.now();
  try {
    run();
  } catch (err) {
    if (!(err instanceof CimbenchError)) return `threw ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)} (not a typed error)`;
    if (!err.where) return `${err.code} without where: ${err.message}`;
    if (!err.describe().trim()) return `${err.code} with an empty message`;
    const field = err.details?.field;
    if (err.code === 'INVALID_INPUT' && mutant?.changed && !mutant.changed.includes('') && typeof field === 'string') {
      // A mutation below the root that yields a schema error must name a field (a rule between two
      // fields names the one it constrains; an unrecognized key is named in the message).
      if (field === '' && !/Unrecognized key/.test(err.message)) return `schema error names no field, mutated ${mutant.changed.join(', ')}: ${err.message}`;
    }
  } finally {
    const ms = performance.now() - t0;
    if (ms > 2000) return `took ${ms.toFixed(0)} ms`;
  }
  return undefined;
}

export interface BoundaryFigures {
  inputs: number;
  accepted: number;
  rejected: number;
  problems: string[];
}

function tally(fig: BoundaryFigures, run: () => unknown, mutant?: Mutant): boolean {
  fig.inputs++;
  let threw = false;
  const problem = judge(() => {
    try {
      return run();
    } catch (e) {
      threw = true;
      throw e;
    }
  }, mutant);
  if (threw) fig.rejected++;
  else fig.accepted++;
  if (problem && fig.problems.length < 5) fig.problems.push(`${problem}; input ${safeJson(mutant?.value)}`.slice(0, 600));
  return problem === undefined;
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? Buffer.from(x).toString('hex') : x)) ?? String(v);
  } catch {
    return String(v);
  }
}

/** Mutated binary payloads: bit flips, byte changes, truncation, extension, splices of two seeds. */
function payloadOf(seeds: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const random = fc.uint8Array({ maxLength: 700 });
  if (seeds.length === 0) return random;
  const mutated = fc
    .tuple(fc.nat({ max: seeds.length - 1 }), fc.constantFrom('flip', 'byte', 'truncate', 'extend', 'u32max'), fc.nat(), fc.nat({ max: 255 }), fc.uint8Array({ minLength: 1, maxLength: 64 }))
    .map(([s, kind, at, byte, extra]) => {
      const p = (seeds[s] as Uint8Array).slice();
      const i = p.length > 0 ? at % p.length : 0;
      switch (kind) {
        case 'flip':
          if (p.length) p[i] = (p[i] as number) ^ (1 << (byte % 8));
          return p;
        case 'byte':
          if (p.length) p[i] = byte;
          return p;
        case 'truncate':
          return p.subarray(0, i);
        case 'extend':
          return Uint8Array.from([...p, ...extra]);
        case 'u32max':
          // A length or count field set to its maximum: must not allocate or loop on it.
          for (let k = i; k < Math.min(p.length, i + 4); k++) p[k] = 0xff;
          return p;
      }
      return p;
    });
  return fc.oneof({ weight: 3, arbitrary: mutated }, { weight: 1, arbitrary: random });
}

/** Fuzzes every boundary with `runs` inputs each; returns figures and problems (empty = promise kept). */
export function fuzzBoundaries(runs: number, seed: number): { total: number; byBoundary: Record<string, BoundaryFigures> } {
  const byBoundary: Record<string, BoundaryFigures> = {};
  let k = 0;
  for (const [name, b] of Object.entries(JSON_BOUNDARIES)) {
    const fig: BoundaryFigures = { inputs: 0, accepted: 0, rejected: 0, problems: [] };
    // Every seed is valid: the mutations start from accepted documents.
    for (const s of b.seeds) {
      try {
        b.parse(s);
      } catch (err) {
        fig.problems.push(`a seed document is rejected: ${err instanceof CimbenchError ? err.describe() : String(err)}`);
      }
    }
    fc.check(
      fc.property(mutantOf(b.seeds), (m) => {
        tally(fig, () => b.parse(m.value), m);
        return true;
      }),
      { numRuns: runs, seed: seed + k++ },
    );
    byBoundary[name] = fig;
  }
  const fieldStrings: BoundaryFigures = { inputs: 0, accepted: 0, rejected: 0, problems: [] };
  const faultText = fc.oneof(
    fc.string({ maxLength: 80 }),
    fc
      .array(fc.tuple(fc.constantFrom('loss', 'flip', 'garbage', 'delay', 'stall', 'stall-for', 'disconnect-during-program', 'power-cycle-at', 'power-off', 'seed', 'bogus'), fc.oneof(fc.string({ maxLength: 10 }), fc.double().map(String), fc.constantFrom('program:3', '5ms', '2s', '1e400', '-1', 'NaN'))), { maxLength: 6 })
      .map((kv) => kv.map(([key, v]) => `${key}=${v}`).join(',')),
  );
  fc.check(
    fc.property(faultText, (text) => {
      tally(fieldStrings, () => parseFaultSpec(text), { value: text, at: '' });
      return true;
    }),
    { numRuns: runs, seed: seed + k++ },
  );
  byBoundary['fault spec (--faults text)'] = fieldStrings;
  const seeds = decoderSeeds();
  for (const d of DECODERS) {
    const fig: BoundaryFigures = { inputs: 0, accepted: 0, rejected: 0, problems: [] };
    for (const s of seeds.get(d.name) ?? []) {
      try {
        d.decode(s);
      } catch (err) {
        fig.problems.push(`golden payload ${Buffer.from(s).toString('hex').slice(0, 40)} rejected: ${String(err)}`);
      }
    }
    fc.check(
      fc.property(payloadOf(seeds.get(d.name) ?? []), (p) => {
        tally(fig, () => d.decode(p), { value: p, at: '' });
        return true;
      }),
      { numRuns: runs, seed: seed + k++ },
    );
    byBoundary[`decoder: ${d.name}`] = fig;
  }
  const total = Object.values(byBoundary).reduce((a, f) => a + f.inputs, 0);
  return { total, byBoundary };
}
