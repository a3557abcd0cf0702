/**
 * Consistent Overhead Byte Stuffing (Cheshire & Baker). The encoded form contains no 0x00, so 0x00
 * delimits frames on the wire and a receiver resynchronises at the next 0x00 after any damage.
 * Overhead: at most 1 + floor(n / 254) bytes for n input bytes.
 */

/** Largest encoded size of n bytes (without the trailing delimiter). */
export function cobsMaxEncodedLength(n: number): number {
  return n + 1 + Math.floor(n / 254);
}

/**
 * Encodes src[start, end) into dst at dstOffset; returns the number of bytes written. dst must have
 * room for cobsMaxEncodedLength(end - start) bytes.
 */
export function cobsEncodeInto(src: Uint8Array, start: number, end: number, dst: Uint8Array, dstOffset: number): number {
  let codeIndex = dstOffset;
  let out = dstOffset + 1;
  let code = 1;
  for (let i = start; i < end; i++) {
    const b = src[i] as number;
    if (b === 0) {
      dst[codeIndex] = code;
      codeIndex = out++;
      code = 1;
    } else {
      dst[out++] = b;
      code++;
      if (code === 0xff) {
        dst[codeIndex] = code;
        codeIndex = out++;
        code = 1;
      }
    }
  }
  dst[codeIndex] = code;
  return out - dstOffset;
}

export function cobsEncode(src: Uint8Array): Uint8Array {
  const dst = new Uint8Array(cobsMaxEncodedLength(src.length));
  const n = cobsEncodeInto(src, 0, src.length, dst, 0);
  return dst.subarray(0, n);
}

/**
 * Decodes src[start, end) (one frame, delimiter excluded) into dst; returns the decoded length or -1
 * when the input is not valid COBS (a 0x00 inside, or a code byte pointing past the end). dst needs
 * end - start bytes.
 */
export function cobsDecodeInto(src: Uint8Array, start: number, end: number, dst: Uint8Array): number {
  let out = 0;
  let i = start;
  while (i < end) {
    const code = src[i] as number;
    if (code === 0) return -1;
    const blockEnd = i + code;
    if (blockEnd > end) return -1;
    for (let j = i + 1; j < blockEnd; j++) {
      const b = src[j] as number;
      if (b === 0) return -1;
      dst[out++] = b;
    }
    i = blockEnd;
    // A code of 0xFF means 254 data bytes with no zero after them; the last block adds no zero.
    if (code !== 0xff && i < end) dst[out++] = 0;
  }
  return out;
}

/** Decodes one frame; undefined when it is not valid COBS. */
export function cobsDecode(src: Uint8Array): Uint8Array | undefined {
  const dst = new Uint8Array(src.length);
  const n = cobsDecodeInto(src, 0, src.length, dst);
  return n < 0 ? undefined : dst.subarray(0, n);
}
