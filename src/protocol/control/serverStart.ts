/**
 * Server-Start, server → client, 48 octets (RFC 4656 §3.1, RFC 5357 §3.1):
 *   0 MBZ (15) · 15 Accept · 16 Server-IV (16) · 32 Start-Time · 40 MBZ (8)
 * Octets 32–47 are the first encrypted block of the server stream in
 * authenticated/encrypted/mixed modes; this codec works on plaintext.
 */
import { checkU64, checkUint, copyOctets, encodeTarget, requireOctets, writeFixed } from '../bytes.js';
import { readTimestamp, writeTimestamp } from '../timestamp.js';

export const SIZE = 48;
export const NAME = 'Server-Start';

export interface ServerStart {
  accept: number;
  serverIv: Buffer;
  /** NTP timestamp of when the server started (zero when Accept ≠ 0). */
  startTime: bigint;
}

export type ServerStartInit = Omit<ServerStart, 'serverIv' | 'startTime'> &
  Partial<Pick<ServerStart, 'serverIv' | 'startTime'>>;

export function encode(msg: ServerStartInit, buf?: Buffer, offset = 0): Buffer {
  checkUint(`${NAME} Accept`, msg.accept, 8);
  checkU64(`${NAME} Start-Time`, msg.startTime ?? 0n);
  const [out, o] = encodeTarget(NAME, SIZE, buf, offset);
  out[o + 15] = msg.accept;
  writeFixed(`${NAME} Server-IV`, out, o + 16, msg.serverIv, 16);
  writeTimestamp(out, o + 32, msg.startTime ?? 0n);
  return out;
}

export function decode(buf: Uint8Array, offset = 0): ServerStart {
  requireOctets(NAME, buf, offset, SIZE);
  return {
    accept: buf[offset + 15]!,
    serverIv: copyOctets(buf, offset + 16, 16),
    startTime: readTimestamp(buf, offset + 32),
  };
}
