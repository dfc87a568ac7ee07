/**
 * Accept-Session, server → client, 48 octets (RFC 5357 §3.5; RFC 6038
 * for octets 20–23):
 *   0 Accept · 1 MBZ · 2 Port · 4 SID (16) · 20 Reflected octets ·
 *   22 Server octets · 24 MBZ (8) · 32 HMAC (16)
 */
import { checkUint, copyOctets, encodeTarget, readU16, requireOctets, writeFixed, writeU16 } from '../bytes.js';

export const SIZE = 48;
export const NAME = 'Accept-Session';

export interface AcceptSession {
  accept: number;
  /** Reflector's UDP port; may differ from the requested one (RFC 5357 §3.5). */
  port: number;
  sid: Buffer;
  /** RFC 6038: echo of Request-TW-Session "Octets to be reflected". */
  reflectedOctets: number;
  /** RFC 6038: octets the sender must place at the start of the reflected padding. */
  serverOctets: number;
  hmac: Buffer;
}

export type AcceptSessionInit = Pick<AcceptSession, 'accept' | 'port'> &
  Partial<Pick<AcceptSession, 'sid' | 'reflectedOctets' | 'serverOctets' | 'hmac'>>;

export function encode(msg: AcceptSessionInit, buf?: Buffer, offset = 0): Buffer {
  const reflected = msg.reflectedOctets ?? 0;
  const server = msg.serverOctets ?? 0;
  checkUint(`${NAME} Accept`, msg.accept, 8);
  checkUint(`${NAME} Port`, msg.port, 16);
  checkUint(`${NAME} Reflected octets`, reflected, 16);
  checkUint(`${NAME} Server octets`, server, 16);
  const [out, o] = encodeTarget(NAME, SIZE, buf, offset);
  out[o] = msg.accept;
  writeU16(out, o + 2, msg.port);
  writeFixed(`${NAME} SID`, out, o + 4, msg.sid, 16);
  writeU16(out, o + 20, reflected);
  writeU16(out, o + 22, server);
  writeFixed(`${NAME} HMAC`, out, o + 32, msg.hmac, 16);
  return out;
}

export function decode(buf: Uint8Array, offset = 0): AcceptSession {
  requireOctets(NAME, buf, offset, SIZE);
  return {
    accept: buf[offset]!,
    port: readU16(buf, offset + 2),
    sid: copyOctets(buf, offset + 4, 16),
    reflectedOctets: readU16(buf, offset + 20),
    serverOctets: readU16(buf, offset + 22),
    hmac: copyOctets(buf, offset + 32, 16),
  };
}
