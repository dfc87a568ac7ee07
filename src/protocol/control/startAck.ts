/**
 * Start-Ack, server → client, 32 octets (RFC 5357 §3.7):
 *   0 Accept · 1 MBZ (15) · 16 HMAC (16)
 */
import { checkUint, copyOctets, encodeTarget, requireOctets, writeFixed } from '../bytes.js';

export const SIZE = 32;
export const NAME = 'Start-Ack';

export interface StartAck {
  accept: number;
  hmac: Buffer;
}

export type StartAckInit = Pick<StartAck, 'accept'> & Partial<Pick<StartAck, 'hmac'>>;

export function encode(msg: StartAckInit, buf?: Buffer, offset = 0): Buffer {
  checkUint(`${NAME} Accept`, msg.accept, 8);
  const [out, o] = encodeTarget(NAME, SIZE, buf, offset);
  out[o] = msg.accept;
  writeFixed(`${NAME} HMAC`, out, o + 16, msg.hmac, 16);
  return out;
}

export function decode(buf: Uint8Array, offset = 0): StartAck {
  requireOctets(NAME, buf, offset, SIZE);
  return { accept: buf[offset]!, hmac: copyOctets(buf, offset + 16, 16) };
}
