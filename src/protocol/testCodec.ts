/**
 * The test-packet operations of every format (testFormat.ts) behind one
 * interface, so a Session-Sender or Session-Reflector is written once for
 * TWAMP and STAMP in any mode: build a reply by the format's ReplyRule, and
 * protect / unprotect packets as the format's Protection says (RFC 4656
 * §4.1.2 and RFC 5357 §4.1.2/§4.2.1 for TWAMP, RFC 8762 §4.2.2 for STAMP).
 */
import { protectReflectorPacket, protectSenderPacket, unprotectReflectorPacket, unprotectSenderPacket, type TestSessionKeys } from './crypto.js';
import { buildLightReflection, buildStampAuthReflection, signStampPacket, verifyStampPacket, type CosReflection, type LightFormat } from './stamp.js';
import { buildTwampReply, type ReflectionFields } from './testPacket.js';
import type { TestFormat } from './testFormat.js';

export interface ReplyOptions {
  /** TWAMP: RFC 6038 Symmetrical Size chosen on the control connection. */
  symmetrical?: boolean;
  /** STAMP open / TWAMP-Light: how octets 14–15 of a request are read (stamp.ts isStampRequest); default 'auto'. */
  lightFormat?: LightFormat;
  /** STAMP open: answer Class of Service TLVs (RFC 8972 §4.4). */
  cos?: CosReflection;
}

/**
 * Builds the reply of format `f` to a (decrypted / verified) request in `out`
 * and returns its length (testFormat.ts replyLength). `out` may be `request`.
 * DecodeError for a request shorter than the format allows; the caller
 * guarantees `out` holds the reply.
 */
export function buildReply(
  f: TestFormat, request: Uint8Array, requestLength: number, out: Buffer, fields: ReflectionFields, opts: ReplyOptions = {},
): number {
  switch (f.reply) {
    case 'twamp':
      return buildTwampReply(request, requestLength, out, fields, f, opts.symmetrical === true);
    case 'stamp':
      return buildLightReflection(request, requestLength, out, fields, opts.lightFormat ?? 'auto', opts.cos);
    case 'stamp-authenticated':
      return buildStampAuthReflection(request, requestLength, out, fields);
  }
}

/** Protection of one session's test packets, both directions. */
export interface PacketGuard {
  /** Protects an outgoing sender packet in place (every covered field final). */
  protectSender(buf: Buffer, length: number): void;
  /** Decrypts / verifies a received sender packet in place; false: discard it. */
  unprotectSender(buf: Buffer, length: number): boolean;
  protectReflector(buf: Buffer, length: number): void;
  unprotectReflector(buf: Buffer, length: number): boolean;
}

const OPEN_GUARD: PacketGuard = Object.freeze({
  protectSender: () => {},
  unprotectSender: () => true,
  protectReflector: () => {},
  unprotectReflector: () => true,
});

/**
 * The guard of format `f`: TWAMP authenticated / encrypted need the
 * session's test keys (crypto.ts testSessionKeys), authenticated STAMP the
 * HMAC-SHA-256 key; open formats need nothing. TypeError when the key the
 * format needs is missing.
 */
export function packetGuard(f: TestFormat, key?: { testKeys?: TestSessionKeys; stampKey?: Uint8Array }): PacketGuard {
  const hmac = f.sender.protection.hmac;
  if (hmac === undefined) return OPEN_GUARD;
  if (hmac.algorithm === 'sha256') {
    const k = key?.stampKey;
    if (k === undefined || k.length === 0) throw new TypeError(`${f.id} test packets need an HMAC key`);
    const verify = (buf: Buffer, length: number): boolean => verifyStampPacket(buf, length, k);
    const sign = (buf: Buffer): void => signStampPacket(buf, k);
    return { protectSender: sign, unprotectSender: verify, protectReflector: sign, unprotectReflector: verify };
  }
  const keys = key?.testKeys;
  if (keys === undefined) throw new TypeError(`${f.id} test packets need the session's test keys`);
  const mode = f.mode;
  return {
    protectSender: (buf, length) => protectSenderPacket(buf, length, keys, mode),
    unprotectSender: (buf, length) => unprotectSenderPacket(buf, length, keys, mode),
    protectReflector: (buf, length) => protectReflectorPacket(buf, length, keys, mode),
    unprotectReflector: (buf, length) => unprotectReflectorPacket(buf, length, keys, mode),
  };
}
