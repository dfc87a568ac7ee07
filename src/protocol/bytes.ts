/**
 * Big-endian helpers over plain Uint8Array (RFC 4656: all multi-octet
 * integers are in network byte order). Internal to src/protocol: decoders
 * accept any Uint8Array, not only Buffer, so Buffer's read* methods are not
 * available everywhere.
 */
import { DecodeError } from './errors.js';

export function readU16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

export function readU32(b: Uint8Array, o: number): number {
  // `>>> 0` keeps the top bit from turning the result negative.
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

export function writeU16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

export function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

/** Throws DecodeError unless `size` octets are available at `offset`. */
export function requireOctets(messageName: string, buf: Uint8Array, offset: number, size: number): void {
  if (!Number.isInteger(offset) || offset < 0) {
    throw new DecodeError(messageName, `invalid offset ${String(offset)}`);
  }
  const available = buf.length - offset;
  if (available < size) {
    throw new DecodeError(
      messageName,
      `truncated: need ${size} octets, ${Math.max(0, available)} available`,
      { offset },
    );
  }
}

/** Copy of `size` octets as a Buffer that does not alias the input. */
export function copyOctets(buf: Uint8Array, offset: number, size: number): Buffer {
  return Buffer.from(buf.subarray(offset, offset + size));
}

/** Validates an encoder's uint field; Buffer-style RangeError on misuse. */
export function checkUint(name: string, v: number, bits: 8 | 16 | 32): void {
  const max = bits === 32 ? 0xffffffff : (1 << bits) - 1;
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new RangeError(`${name} must be an integer in 0..${max}, got ${String(v)}`);
  }
}

/**
 * Target buffer and start offset for an encoder: the caller's buffer (checked
 * for room) at `offset`, or a fresh zeroed one at 0 when none is given. The message's octets are zeroed first so MBZ fields go out as
 * zero (RFC 4656: MBZ fields are sent as zero).
 */
export function encodeTarget(
  name: string,
  size: number,
  buf: Buffer | undefined,
  offset: number,
): [out: Buffer, at: number] {
  if (buf === undefined) return [Buffer.alloc(size), 0];
  if (!Number.isInteger(offset) || offset < 0 || buf.length - offset < size) {
    throw new RangeError(`${name}: need ${size} octets at offset ${offset}, buffer has ${buf.length}`);
  }
  buf.fill(0, offset, offset + size);
  return [buf, offset];
}

/** Writes an optional fixed-size field; omitted means all zero. */
export function writeFixed(
  name: string,
  out: Buffer,
  offset: number,
  value: Uint8Array | undefined,
  size: number,
): void {
  if (value === undefined) return; // already zeroed by encodeTarget
  if (value.length !== size) {
    throw new RangeError(`${name} must be ${size} octets, got ${value.length}`);
  }
  out.set(value, offset);
}

/** Validates an encoder's 64-bit timestamp/interval field (no silent mod 2^64). */
export function checkU64(name: string, v: bigint): void {
  if (typeof v !== 'bigint' || v < 0n || v > 0xffffffffffffffffn) {
    throw new RangeError(`${name} must be an unsigned 64-bit bigint, got ${String(v)}`);
  }
}
