/**
 * Start-Sessions, client → server, command 2, 32 octets (RFC 5357 §3.7):
 *   0 Command (2) · 1 MBZ (15) · 16 HMAC (16)
 */
import { copyOctets, encodeTarget, requireOctets, writeFixed } from '../bytes.js';
import { Command } from '../constants.js';
import { DecodeError } from '../errors.js';

export const SIZE = 32;
export const NAME = 'Start-Sessions';

export interface StartSessions {
  hmac: Buffer;
}

export type StartSessionsInit = Partial<StartSessions>;

export function encode(msg: StartSessionsInit = {}, buf?: Buffer, offset = 0): Buffer {
  const [out, o] = encodeTarget(NAME, SIZE, buf, offset);
  out[o] = Command.START_SESSIONS;
  writeFixed(`${NAME} HMAC`, out, o + 16, msg.hmac, 16);
  return out;
}

export function decode(buf: Uint8Array, offset = 0): StartSessions {
  requireOctets(NAME, buf, offset, SIZE);
  if (buf[offset] !== Command.START_SESSIONS) {
    throw new DecodeError(NAME, `expected 2, got ${buf[offset]!}`, { field: 'Command', offset: 0 });
  }
  return { hmac: copyOctets(buf, offset + 16, 16) };
}
