/**
 * Set-Up-Response, client → server, 164 octets, never encrypted
 * (RFC 4656 §3.1, RFC 5357 §3.1):
 *   0 Mode · 4 KeyID (80) · 84 Token (64) · 148 Client-IV (16)
 * In unauthenticated mode KeyID, Token and Client-IV are all zero.
 */
import { checkUint, copyOctets, encodeTarget, readU32, requireOctets, writeFixed, writeU32 } from '../bytes.js';

export const SIZE = 164;
export const NAME = 'Set-Up-Response';
export const KEY_ID_SIZE = 80;

export interface SetupResponse {
  /** Chosen mode: one security bit plus feature bits (RFC 5618). */
  mode: number;
  /** Raw 80-octet KeyID (UTF-8, NUL padded); see keyIdToString. */
  keyId: Buffer;
  /** AES-CBC encrypted Challenge ‖ AES-Session-Key ‖ HMAC-Key (RFC 4656 §3.1). */
  token: Buffer;
  clientIv: Buffer;
}

/** Encoder input: buffers may be omitted (zeros); keyId may be shorter than 80 octets (NUL padded). */
export type SetupResponseInit = Pick<SetupResponse, 'mode'> &
  Partial<Pick<SetupResponse, 'keyId' | 'token' | 'clientIv'>>;

export function encode(msg: SetupResponseInit, buf?: Buffer, offset = 0): Buffer {
  checkUint(`${NAME} Mode`, msg.mode, 32);
  if (msg.keyId !== undefined && msg.keyId.length > KEY_ID_SIZE) {
    throw new RangeError(`${NAME} KeyID must be at most ${KEY_ID_SIZE} octets, got ${msg.keyId.length}`);
  }
  const [out, o] = encodeTarget(NAME, SIZE, buf, offset);
  writeU32(out, o, msg.mode);
  if (msg.keyId !== undefined) out.set(msg.keyId, o + 4);
  writeFixed(`${NAME} Token`, out, o + 84, msg.token, 64);
  writeFixed(`${NAME} Client-IV`, out, o + 148, msg.clientIv, 16);
  return out;
}

export function decode(buf: Uint8Array, offset = 0): SetupResponse {
  requireOctets(NAME, buf, offset, SIZE);
  return {
    mode: readU32(buf, offset),
    keyId: copyOctets(buf, offset + 4, KEY_ID_SIZE),
    token: copyOctets(buf, offset + 84, 64),
    clientIv: copyOctets(buf, offset + 148, 16),
  };
}

/** KeyID field from a UTF-8 identity, NUL padded to 80 octets (RFC 4656 §3.1). */
export function keyIdFromString(s: string): Buffer {
  const utf8 = Buffer.from(s, 'utf8');
  if (utf8.length > KEY_ID_SIZE) {
    throw new RangeError(`KeyID must be at most ${KEY_ID_SIZE} octets of UTF-8, got ${utf8.length}`);
  }
  const out = Buffer.alloc(KEY_ID_SIZE);
  utf8.copy(out);
  return out;
}

/** Identity from a KeyID field: UTF-8 up to the first NUL (the padding). */
export function keyIdToString(b: Uint8Array): string {
  if (b.length > KEY_ID_SIZE) {
    throw new RangeError(`KeyID must be at most ${KEY_ID_SIZE} octets, got ${b.length}`);
  }
  const nul = b.indexOf(0);
  return Buffer.from(b.buffer, b.byteOffset, nul === -1 ? b.length : nul).toString('utf8');
}
