/**
 * Stop-Sessions, client → server, command 3, 32 octets in TWAMP
 * (RFC 5357 §3.8; no session description records, no reply):
 *   0 Command (3) · 1 Accept · 2 MBZ (2) · 4 Number of Sessions · 8 MBZ (8) · 16 HMAC (16)
 */
import { checkUint, copyOctets, encodeTarget, readU32, requireOctets, writeFixed, writeU32 } from '../bytes.js';
import { Command } from '../constants.js';
import { DecodeError } from '../errors.js';

export const SIZE = 32;
export const NAME = 'Stop-Sessions';

export interface StopSessions {
  /** 0 = normal end; non-zero invalidates the sessions' results. */
  accept: number;
  /** Must equal the number of started sessions or the server may close (RFC 5357 §3.8). */
  numberOfSessions: number;
  hmac: Buffer;
}

export type StopSessionsInit = Pick<StopSessions, 'accept' | 'numberOfSessions'> &
  Partial<Pick<StopSessions, 'hmac'>>;

export function encode(msg: StopSessionsInit, buf?: Buffer, offset = 0): Buffer {
  checkUint(`${NAME} Accept`, msg.accept, 8);
  checkUint(`${NAME} Number of Sessions`, msg.numberOfSessions, 32);
  const [out, o] = encodeTarget(NAME, SIZE, buf, offset);
  out[o] = Command.STOP_SESSIONS;
  out[o + 1] = msg.accept;
  writeU32(out, o + 4, msg.numberOfSessions);
  writeFixed(`${NAME} HMAC`, out, o + 16, msg.hmac, 16);
  return out;
}

export function decode(buf: Uint8Array, offset = 0): StopSessions {
  requireOctets(NAME, buf, offset, SIZE);
  if (buf[offset] !== Command.STOP_SESSIONS) {
    throw new DecodeError(NAME, `expected 3, got ${buf[offset]!}`, { field: 'Command', offset: 0 });
  }
  return {
    accept: buf[offset + 1]!,
    numberOfSessions: readU32(buf, offset + 4),
    hmac: copyOctets(buf, offset + 16, 16),
  };
}
