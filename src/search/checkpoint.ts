import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { InputError } from '../common/errors.js';
import { parseWith, readJsonFile } from '../common/validate.js';
import { sha256Hex } from '../nn/index.js';
import type { AdamState } from '../nn/index.js';

/**
 * Named float32 arrays on disk for search checkpoints: <name>.bin (the arrays back to back,
 * little-endian) and <name>.json (names, lengths, SHA-256 of the .bin). Writes go to a temporary
 * file renamed into place, so an interruption never leaves half a checkpoint under the real name;
 * a checksum or size mismatch on load is reported as a corrupt checkpoint.
 */

const ParamsIndexSchema = z.strictObject({
  format: z.literal('cimbench-params'),
  version: z.literal(1),
  byteLength: z.int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  arrays: z.array(z.strictObject({ name: z.string().min(1), length: z.int().min(0) })),
  meta: z.record(z.string(), z.unknown()).default({}),
});

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

export function saveParams(dir: string, name: string, arrays: ReadonlyMap<string, Float32Array>, meta: Record<string, unknown> = {}): void {
  let total = 0;
  for (const a of arrays.values()) total += a.length;
  const bytes = new Uint8Array(total * 4);
  const view = new DataView(bytes.buffer);
  let at = 0;
  const index: Array<{ name: string; length: number }> = [];
  for (const [n, a] of arrays) {
    for (let i = 0; i < a.length; i++) view.setFloat32((at + i) * 4, a[i] as number, true);
    at += a.length;
    index.push({ name: n, length: a.length });
  }
  writeFileAtomic(join(dir, `${name}.bin`), bytes);
  writeFileAtomic(
    join(dir, `${name}.json`),
    `${JSON.stringify({ format: 'cimbench-params', version: 1, byteLength: bytes.length, sha256: sha256Hex(bytes), arrays: index, meta })}\n`,
  );
}

export function loadParams(dir: string, name: string): { arrays: Map<string, Float32Array>; meta: Record<string, unknown> } {
  const indexPath = join(dir, `${name}.json`);
  const binPath = join(dir, `${name}.bin`);
  const index = parseWith(ParamsIndexSchema, readJsonFile(indexPath), `${indexPath} (corrupt checkpoint)`);
  if (!existsSync(binPath)) throw new InputError('NOT_FOUND', 'checkpoint data file is missing (corrupt checkpoint)', { where: binPath });
  const bytes = new Uint8Array(readFileSync(binPath));
  const expected = index.arrays.reduce((s, a) => s + a.length * 4, 0);
  if (bytes.length !== index.byteLength || bytes.length !== expected) {
    throw new InputError('INVALID_INPUT', `checkpoint data is ${bytes.length} bytes, its index says ${index.byteLength} (corrupt checkpoint)`, { where: binPath });
  }
  if (sha256Hex(bytes) !== index.sha256) throw new InputError('INVALID_INPUT', 'SHA-256 mismatch (corrupt checkpoint)', { where: binPath });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const arrays = new Map<string, Float32Array>();
  let at = 0;
  for (const a of index.arrays) {
    const v = new Float32Array(a.length);
    for (let i = 0; i < a.length; i++) v[i] = view.getFloat32((at + i) * 4, true);
    at += a.length;
    arrays.set(a.name, v);
  }
  return { arrays, meta: index.meta };
}

/** Adam state as named arrays (+ its step count in meta) for saveParams. */
export function adamToArrays(state: AdamState): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  state.m.forEach((a, i) => out.set(`m[${i}]`, a));
  state.v.forEach((a, i) => out.set(`v[${i}]`, a));
  return out;
}

export function adamFromArrays(arrays: ReadonlyMap<string, Float32Array>, t: number, where: string): AdamState {
  const m: Float32Array[] = [];
  const v: Float32Array[] = [];
  for (let i = 0; ; i++) {
    const a = arrays.get(`m[${i}]`);
    const b = arrays.get(`v[${i}]`);
    if (!a && !b) break;
    if (!a || !b) throw new InputError('INVALID_INPUT', `optimiser moment ${i} is incomplete (corrupt checkpoint)`, { where });
    m.push(a);
    v.push(b);
  }
  return { t, m, v };
}
