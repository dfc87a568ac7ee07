/**
 * Server-Greeting, server → client, 64 octets, never encrypted
 * (RFC 4656 §3.1, RFC 5357 §3.1):
 *   0 Unused (12) · 12 Modes · 16 Challenge (16) · 32 Salt (16) · 48 Count · 52 MBZ (12)
 */
import { checkUint, copyOctets, encodeTarget, readU32, requireOctets, writeFixed, writeU32 } from '../bytes.js';

export const SIZE = 64;
export const NAME = 'Server-Greeting';

export interface ServerGreeting {
  /** Bitmap of offered modes (see Mode). 0 means the server refuses service. */
  modes: number;
  challenge: Buffer;
  salt: Buffer;
  /** PBKDF2 iteration count (RFC 4656: power of two ≥ 1024). Returned as read. */
  count: number;
}

/** Encoder input: Challenge and Salt may be omitted (zeros), e.g. in tests. */
export type ServerGreetingInit = Omit<ServerGreeting, 'challenge' | 'salt'> &
  Partial<Pick<ServerGreeting, 'challenge' | 'salt'>>;

export function encode(msg: ServerGreetingInit, buf?: Buffer, offset = 0): Buffer {
  checkUint(`${NAME} Modes`, msg.modes, 32);
  checkUint(`${NAME} Count`, msg.count, 32);
  const [out, o] = encodeTarget(NAME, SIZE, buf, offset);
  writeU32(out, o + 12, msg.modes);
  writeFixed(`${NAME} Challenge`, out, o + 16, msg.challenge, 16);
  writeFixed(`${NAME} Salt`, out, o + 32, msg.salt, 16);
  writeU32(out, o + 48, msg.count);
  return out;
}

export function decode(buf: Uint8Array, offset = 0): ServerGreeting {
  requireOctets(NAME, buf, offset, SIZE);
  return {
    modes: readU32(buf, offset + 12),
    challenge: copyOctets(buf, offset + 16, 16),
    salt: copyOctets(buf, offset + 32, 16),
    count: readU32(buf, offset + 48),
  };
}

