import { LinkError } from '../common/errors.js';

/** Little-endian writer into a buffer sized up front (payload sizes are known before encoding). */
export class ByteWriter {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  private pos = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }
  u8(v: number): this {
    this.view.setUint8(this.pos, v);
    this.pos += 1;
    return this;
  }
  u16(v: number): this {
    this.view.setUint16(this.pos, v, true);
    this.pos += 2;
    return this;
  }
  u32(v: number): this {
    this.view.setUint32(this.pos, v >>> 0, true);
    this.pos += 4;
    return this;
  }
  u64(v: number): this {
    this.view.setBigUint64(this.pos, BigInt(Math.max(0, Math.floor(v))), true);
    this.pos += 8;
    return this;
  }
  f32(v: number): this {
    this.view.setFloat32(this.pos, v, true);
    this.pos += 4;
    return this;
  }
  raw(b: Uint8Array): this {
    this.bytes.set(b, this.pos);
    this.pos += b.length;
    return this;
  }
  /** A u8 length followed by ASCII/UTF-8 bytes (at most 255). */
  shortString(s: string): this {
    const b = new TextEncoder().encode(s);
    if (b.length > 255) throw new RangeError('string longer than 255 bytes');
    return this.u8(b.length).raw(b);
  }
  get offset(): number {
    return this.pos;
  }
  /** The written bytes; throws if the declared size was not filled (a codec bug). */
  done(): Uint8Array {
    if (this.pos !== this.bytes.length) throw new Error(`encoder wrote ${this.pos} of ${this.bytes.length} bytes`);
    return this.bytes;
  }
}

/**
 * Bounds-checked little-endian reader. Every read past the end throws a PROTOCOL LinkError naming
 * the message, so a short or lying payload can never read garbage or throw a RangeError.
 */
export class ByteReader {
  private readonly view: DataView;
  private pos = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  private need(n: number, field: string): void {
    if (this.pos + n > this.bytes.length) {
      throw new LinkError('PROTOCOL', `payload too short for ${field} (${this.bytes.length} bytes)`, { where: this.what });
    }
  }
  u8(field: string): number {
    this.need(1, field);
    return this.view.getUint8(this.pos++);
  }
  u16(field: string): number {
    this.need(2, field);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(field: string): number {
    this.need(4, field);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u64(field: string): number {
    this.need(8, field);
    const v = Number(this.view.getBigUint64(this.pos, true));
    this.pos += 8;
    return v;
  }
  f32(field: string): number {
    this.need(4, field);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }
  raw(n: number, field: string): Uint8Array {
    this.need(n, field);
    const out = this.bytes.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  f32Array(n: number, field: string): Float32Array {
    this.need(n * 4, field);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.view.getFloat32(this.pos + 4 * i, true);
    this.pos += n * 4;
    return out;
  }
  shortString(field: string): string {
    const n = this.u8(`${field} length`);
    return new TextDecoder('utf-8', { fatal: false }).decode(this.raw(n, field));
  }
  rest(): Uint8Array {
    const out = this.bytes.slice(this.pos);
    this.pos = this.bytes.length;
    return out;
  }
  get remaining(): number {
    return this.bytes.length - this.pos;
  }
  /** Rejects trailing bytes: each payload has an exact size. */
  end(): void {
    if (this.pos !== this.bytes.length) {
      throw new LinkError('PROTOCOL', `${this.bytes.length - this.pos} unexpected trailing bytes`, { where: this.what });
    }
  }
}
