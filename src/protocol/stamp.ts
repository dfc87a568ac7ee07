/**
 * STAMP (RFC 8762) unauthenticated base packets with the RFC 8972 SSID, and
 * the stateless/stateful TWAMP-Light / STAMP reflection shared by both
 * (RFC 5357 Appendix I, RFC 8762 §4.3 and §4.6). Pure layout, no I/O.
 *
 * Sender (44 octets):    seq 0 · T1 4 · EE 12 · SSID 14 · MBZ 16–43 · TLVs 44
 * Reflector (44 octets): seq 0 · T3 4 · EE 12 · SSID 14 · T2 16 · sender seq 24 ·
 *                        T1 28 · sender EE 36 · MBZ 38 · sender TTL 40 · MBZ 41–43 · TLVs 44
 *
 * The reflector's first 41 octets are exactly the TWAMP open-mode reflector
 * layout, so `decodeReflectorPacket` (testPacket.ts) decodes STAMP replies
 * (SSID included) as well as twampy's 38-octet ones.
 *
 * A Light reflector cannot tell a TWAMP-Light sender (14-octet header +
 * padding) from a STAMP one (44-octet base + TLVs) for sure, so it follows
 * RFC 8762 §4.6, which serves both: a request shorter than 44 octets gets a
 * 44-octet reply, a longer one a reply of the same length whose octets from
 * 44 on are copied from the request. A reply is therefore never larger than
 * max(request, 44) (no amplification beyond the base packet).
 *
 * STAMP or TWAMP-Light (RFC 8762 §4.6 serves both, but only a STAMP reply
 * carries an SSID): octets 14–15 of a TWAMP-Light request are padding, and
 * copying them would put random octets in the reply's MBZ field. A
 * `LightFormat` says how a request is read: 'stamp' = every request of at
 * least the 44-octet STAMP base carries an SSID; 'twamp' = none does (octets 14–15 of the
 * reply stay 0); 'auto' (the default) = STAMP when the request is at least
 * the 44-octet base and its MBZ octets 16–43 are all zero, as RFC 8762
 * §4.2.1 requires of a STAMP sender. A TWAMP-Light sender with random
 * padding is then never taken for STAMP; one with zero padding has zero
 * octets 14–15 too, so reading it as STAMP copies an SSID of 0 — the same
 * reply. Only a TWAMP-Light sender whose padding is zero from 16 but not at
 * 14–15 would have those octets echoed.
 *
 * TLVs (RFC 8972 §4): a Session-Sender sets the U (unrecognised) flag on
 * every TLV; the reflector clears it on the TLVs it understood and returns
 * the others unchanged with U = 1. Here only Extra Padding (type 1) is
 * understood. The tail is treated as TLVs only when it parses as an exact
 * chain whose every TLV has U = 1 and a non-zero type; otherwise (TWAMP-Light
 * padding, zero padding) it is copied back verbatim.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { DecodeError } from './errors.js';
import { writeTimestamp } from './timestamp.js';
import { testFormat, type TestFormat } from './testFormat.js';
import { writeSenderHeader, decodeSenderHeader } from './testPacket.js';

const STAMP_OPEN: TestFormat = testFormat('stamp', 'open');
const STAMP_AUTH: TestFormat = testFormat('stamp', 'authenticated');

/** Unauthenticated STAMP base packet, either direction (RFC 8762 §4.2.1, §4.3.1). */
export const STAMP_BASE_SIZE = STAMP_OPEN.sender.size;
/** Smallest request a Light reflector answers: the TWAMP open-mode sender header. */
const LIGHT_MIN_REQUEST_SIZE = testFormat('twamp', 'open').sender.size;

export const TLV_HEADER_SIZE = 4;
export const TLV_FLAG_U = 0x80;
export const TLV_FLAG_M = 0x40;
const TLV_FLAG_I = 0x20;
export const TLV_TYPE_EXTRA_PADDING = 1;
/** RFC 8972 §4.4 Class of Service TLV: DSCP1 (6 bits) DSCP2 (6) ECN (2) RP (2), 16 reserved bits. */
export const TLV_TYPE_CLASS_OF_SERVICE = 4;
const COS_TLV_VALUE_SIZE = 4;
/** Whole CoS TLV, header included. */
export const COS_TLV_SIZE = TLV_HEADER_SIZE + COS_TLV_VALUE_SIZE;

const SENDER_NAME = 'STAMP sender packet';

export interface StampSenderPacket {
  seq: number;
  /** T1, NTP format. */
  timestamp: bigint;
  errorEstimate: number;
  /** RFC 8972 Session-Sender Identifier; 0 = none (RFC 8762 MBZ). */
  ssid: number;
}

/** RangeError unless `buf` holds a `size`-octet base packet and `ssid` is 16 bits. */
function checkSenderWrite(name: string, buf: Buffer, size: number, ssid: number): void {
  if (buf.length < size) {
    throw new RangeError(`${name}: buffer of ${buf.length} octets is shorter than the base packet (${size})`);
  }
  if (!Number.isInteger(ssid) || ssid < 0 || ssid > 0xffff) {
    throw new RangeError(`${name}: SSID must be a 16-bit unsigned integer, got ${ssid}`);
  }
}

/**
 * Writes the 44-octet base sender packet into `buf` (octets 16–43 zeroed);
 * octets from 44 on (TLVs or padding) are left untouched. RangeError if
 * `buf` is shorter than 44 octets or the SSID is not 16 bits.
 */
export function writeStampSenderPacket(buf: Buffer, pkt: StampSenderPacket): void {
  checkSenderWrite(SENDER_NAME, buf, STAMP_BASE_SIZE, pkt.ssid);
  writeSenderHeader(buf, STAMP_OPEN, pkt);
}

/** Decodes a base sender packet (MBZ ignored). */
export function decodeStampSenderPacket(buf: Uint8Array, length: number = buf.length): StampSenderPacket {
  if (!Number.isInteger(length) || length < 0 || length > buf.length) {
    throw new DecodeError(SENDER_NAME, `length ${String(length)} outside buffer of ${buf.length} octets`);
  }
  if (length < STAMP_BASE_SIZE) {
    throw new DecodeError(SENDER_NAME, `truncated: need at least ${STAMP_BASE_SIZE} octets, got ${length}`);
  }
  return decodeSenderHeader(buf, length, STAMP_OPEN);
}

// ---------------------------------------------------------------------------
// TLVs (RFC 8972 §4)

export interface Tlv {
  flags: number;
  type: number;
  /** Offset of the TLV header in the packet. */
  offset: number;
  /** Length of the Value. */
  length: number;
}

/**
 * Parses `buf[start, end)` as a chain of TLVs that covers it exactly, or
 * returns undefined when it does not (so it is padding, not TLVs).
 */
export function parseTlvs(buf: Uint8Array, start: number, end: number = buf.length): Tlv[] | undefined {
  const out: Tlv[] = [];
  let at = start;
  while (at < end) {
    if (end - at < TLV_HEADER_SIZE) return undefined;
    const length = readU16(buf, at + 2);
    if (at + TLV_HEADER_SIZE + length > end) return undefined;
    out.push({ flags: buf[at]!, type: buf[at + 1]!, offset: at, length });
    at += TLV_HEADER_SIZE + length;
  }
  return out;
}

/** Encodes one TLV (sender side: U = 1, as RFC 8972 §4 requires). */
export function encodeTlv(type: number, value: Uint8Array, flags: number = TLV_FLAG_U): Buffer {
  if (value.length > 0xffff) throw new RangeError(`TLV value of ${value.length} octets exceeds 65535`);
  const b = Buffer.alloc(TLV_HEADER_SIZE + value.length);
  b[0] = flags;
  b[1] = type;
  writeU16(b, 2, value.length);
  b.set(value, TLV_HEADER_SIZE);
  return b;
}

export interface ClassOfService {
  /** The DSCP the Session-Sender asks the reply to carry. */
  dscp1: number;
  /** The DSCP the test packet arrived with at the reflector (filled by the reflector). */
  dscp2: number;
  /** The ECN field the test packet arrived with (filled by the reflector). */
  ecn: number;
  /** Reverse Path: 0 = the reply carries DSCP1; 1 = the reflector's policy refused DSCP1 and the reply carries DSCP2. */
  rp: number;
}

/** Writes a sender's CoS TLV (U = 1, RP = 0, DSCP2/ECN 0: RFC 8972 §4.4) at `offset`; COS_TLV_SIZE octets. */
export function writeCosTlv(buf: Uint8Array, offset: number, dscp1: number): void {
  if (!Number.isInteger(dscp1) || dscp1 < 0 || dscp1 > 63) throw new RangeError(`CoS TLV: DSCP1 must be 0..63, got ${String(dscp1)}`);
  if (offset + COS_TLV_SIZE > buf.length) throw new RangeError(`CoS TLV at ${offset} does not fit in ${buf.length} octets`);
  buf[offset] = TLV_FLAG_U;
  buf[offset + 1] = TLV_TYPE_CLASS_OF_SERVICE;
  writeU16(buf, offset + 2, COS_TLV_VALUE_SIZE);
  writeU32(buf, offset + TLV_HEADER_SIZE, (dscp1 << 26) >>> 0);
}

/** The CoS fields of the value at `valueOffset` (4 octets). */
export function readCosValue(buf: Uint8Array, valueOffset: number): ClassOfService {
  const w = readU16(buf, valueOffset);
  return { dscp1: w >>> 10, dscp2: (w >>> 4) & 0x3f, ecn: (w >>> 2) & 3, rp: w & 3 };
}

/**
 * What a reflector needs to answer a Class of Service TLV (RFC 8972 §4.4,
 * erratum 8199): the DS byte the request arrived with, and the local policy
 * on DSCP1. `replyDscp` is the result: the DSCP the reply must leave with
 * (DSCP1 when permitted, else the received DSCP with RP = 1), or -1 when no
 * CoS TLV was answered.
 */
export interface CosReflection {
  /** DSCP << 2 | ECN as received; -1 when unknown (then the TLV is left as received, U = 1: not processed). */
  receivedTos: number;
  /** May the reply carry `dscp1`? (RFC 8972 §4.4: "local policy … permitted in the domain".) */
  permit(dscp1: number, receivedDscp: number): boolean;
  /** Out: DSCP for the reply, or -1. */
  replyDscp: number;
  /** Out: the policy refused DSCP1 (RP = 1 written). */
  refused: boolean;
}

/**
 * Reflector TLV processing in place on a built reply: when the octets from
 * `base` (44; 112 in authenticated mode) on are a sender's TLV chain (every TLV
 * has U = 1 and a non-zero type), clear U on the TLVs we understand and leave
 * the rest as copied (U = 1: unrecognised). Understood: Extra Padding, and,
 * given `cos` with a known received TOS, Class of Service, whose DSCP2, ECN and
 * RP are filled (a CoS TLV of the wrong length gets the M flag). Returns how
 * many TLVs were seen (0 if the tail is padding).
 */
export function reflectTlvs(out: Uint8Array, length: number, base: number = STAMP_BASE_SIZE, cos?: CosReflection): number {
  if (cos) { cos.replyDscp = -1; cos.refused = false; }
  if (length <= base) return 0;
  const tlvs = parseTlvs(out, base, length);
  if (!tlvs || tlvs.some((t) => (t.flags & TLV_FLAG_U) === 0 || t.type === 0)) return 0;
  for (const t of tlvs) {
    if (t.type === TLV_TYPE_EXTRA_PADDING) out[t.offset] = t.flags & ~TLV_FLAG_U;
    else if (t.type === TLV_TYPE_CLASS_OF_SERVICE && cos && cos.receivedTos >= 0) {
      if (t.length !== COS_TLV_VALUE_SIZE) {
        out[t.offset] = (t.flags & ~TLV_FLAG_U) | TLV_FLAG_M;
        continue;
      }
      const v = t.offset + TLV_HEADER_SIZE;
      const dscp1 = readU16(out, v) >>> 10;
      const rxDscp = (cos.receivedTos >> 2) & 0x3f;
      const permitted = cos.permit(dscp1, rxDscp);
      writeU16(out, v, (dscp1 << 10) | (rxDscp << 4) | ((cos.receivedTos & 3) << 2) | (permitted ? 0 : 1));
      writeU16(out, v + 2, 0);
      out[t.offset] = t.flags & ~TLV_FLAG_U;
      cos.replyDscp = permitted ? dscp1 : rxDscp;
      cos.refused = !permitted;
    }
  }
  return tlvs.length;
}

/**
 * The Class of Service TLV a reflector answered in a reply (U cleared), from
 * `base` on; undefined when there is none, the tail is no TLV chain, or the
 * reflector left it unrecognised (U = 1) or malformed (M).
 */
export function findAnsweredCos(buf: Uint8Array, length: number, base: number = STAMP_BASE_SIZE): ClassOfService | undefined {
  if (length <= base) return undefined;
  const tlvs = parseTlvs(buf, base, length);
  if (!tlvs) return undefined;
  let found: ClassOfService | undefined;
  for (const t of tlvs) {
    if (t.type !== TLV_TYPE_CLASS_OF_SERVICE || t.length !== COS_TLV_VALUE_SIZE) continue;
    if ((t.flags & (TLV_FLAG_U | TLV_FLAG_M | TLV_FLAG_I)) !== 0) continue;
    found = readCosValue(buf, t.offset + TLV_HEADER_SIZE);
  }
  return found;
}

// ---------------------------------------------------------------------------
// Light / STAMP reflection

/** Reply length for a request of `requestLength` octets (RFC 8762 §4.6): never above max(request, 44). */
export function lightReplyLength(requestLength: number): number {
  return Math.max(requestLength, STAMP_BASE_SIZE);
}

export interface LightReflectionFields {
  /** Stateless: the sender's seq (RFC 5357 Appendix I, RFC 8762 §4.3); stateful: own counter. */
  seq: number;
  /** T2. */
  receiveTimestamp: bigint;
  /** T3; may be rewritten just before send with patchReflectorTimestamp. */
  timestamp: bigint;
  errorEstimate: number;
  /** Received TTL / Hop Limit, or 255 when it cannot be read. */
  senderTtl: number;
}

/** How a Light reflector reads requests (see the module comment): STAMP with an SSID, TWAMP-Light, or decided per request. */
export type LightFormat = 'auto' | 'twamp' | 'stamp';

/**
 * Whether the Light request `request[0, length)` is read as STAMP, i.e.
 * carries an RFC 8972 SSID at octets 14–15 (module comment: `LightFormat`).
 */
export function isStampRequest(request: Uint8Array, length: number, format: LightFormat = 'auto'): boolean {
  if (format === 'twamp' || length < STAMP_BASE_SIZE) return false;
  if (format === 'stamp') return true;
  for (let i = 16; i < STAMP_BASE_SIZE; i++) if (request[i] !== 0) return false;
  return true;
}

/**
 * Builds the Light/STAMP reply to `request` in `out` and returns its length,
 * lightReplyLength(requestLength). Copies the sender's seq, T1, Error
 * Estimate and, for a STAMP request (isStampRequest under `format`), the
 * SSID (octets 14–15; 0 otherwise), zeroes the
 * MBZ octets and copies octets 44.. of the request (TLVs or padding), with
 * RFC 8972 U-flag processing (reflectTlvs). `out` may be `request` itself.
 * The caller guarantees `out` holds the reply. DecodeError below 14 octets.
 */
export function buildLightReflection(
  request: Uint8Array,
  requestLength: number,
  out: Buffer,
  f: LightReflectionFields,
  format: LightFormat = 'auto',
  /** Class of Service TLV answering (RFC 8972 §4.4); without it a CoS TLV comes back unrecognised (U = 1). */
  cos?: CosReflection,
): number {
  if (!Number.isInteger(requestLength) || requestLength < 0 || requestLength > request.length) {
    throw new DecodeError(SENDER_NAME, `length ${String(requestLength)} outside buffer of ${request.length} octets`);
  }
  if (requestLength < LIGHT_MIN_REQUEST_SIZE) {
    throw new DecodeError(SENDER_NAME, `truncated: need at least ${LIGHT_MIN_REQUEST_SIZE} octets, got ${requestLength}`);
  }
  const replyLength = lightReplyLength(requestLength);
  if (out.length < replyLength) throw new RangeError(`reply buffer of ${out.length} octets, need ${replyLength}`);
  return writeStampReply(request, requestLength, replyLength, out, f, STAMP_OPEN, isStampRequest(request, requestLength, format), cos);
}

/**
 * The sender's seq and SSID of a Light request (for per-sender state),
 * undefined below 14 octets; the SSID is 0 unless the request is STAMP
 * (isStampRequest under `format`; default 'stamp': any request of 44 octets
 * or more).
 */
export function lightRequestKey(
  request: Uint8Array, length: number, format: LightFormat = 'stamp',
): { seq: number; ssid: number } | undefined {
  if (length < LIGHT_MIN_REQUEST_SIZE) return undefined;
  return { seq: readU32(request, 0), ssid: isStampRequest(request, length, format) ? readU16(request, 14) : 0 };
}

// ---------------------------------------------------------------------------
// Authenticated STAMP (RFC 8762 §4.2.2 / §4.3.2)
//
// Sender (112 octets):    seq 0 · MBZ 4–15 · T1 16 · EE 24 · SSID 26 · MBZ 28–95 · HMAC 96–111 · TLVs 112
// Reflector (112 octets): the TWAMP authenticated reflector layout with SSID at 26–27:
//                         seq 0 · MBZ 4 · T3 16 · EE 24 · SSID 26 · MBZ 28 · T2 32 · MBZ 40 ·
//                         sender seq 48 · MBZ 52 · T1 64 · sender EE 72 · MBZ 74 · sender TTL 80 ·
//                         MBZ 81–95 · HMAC 96–111 · TLVs 112
// HMAC = HMAC-SHA-256 over octets 0–95, truncated to 128 bits. No encryption
// in STAMP. The key is the shared secret's octets as configured: RFC 8762
// leaves key distribution out of scope (and STAMP carries no key id).

/** Authenticated STAMP base packet, either direction. */
export const STAMP_AUTH_SIZE = STAMP_AUTH.sender.size;
/** Octets covered by the HMAC (0–95). */
const STAMP_AUTH_HMAC_OFFSET = 96;
const STAMP_AUTH_HMAC_SIZE = 16;

const AUTH_SENDER_NAME = 'authenticated STAMP sender packet';
const AUTH_REFLECTOR_NAME = 'authenticated STAMP reflector packet';

/** HMAC-SHA-256/128 over octets 0–95 of `buf` (RFC 8762 §4.2.2). */
export function stampHmac(key: Uint8Array, buf: Uint8Array): Buffer {
  if (buf.length < STAMP_AUTH_HMAC_OFFSET) throw new RangeError(`need ${STAMP_AUTH_HMAC_OFFSET} octets to authenticate, got ${buf.length}`);
  return createHmac('sha256', key).update(buf.subarray(0, STAMP_AUTH_HMAC_OFFSET)).digest().subarray(0, STAMP_AUTH_HMAC_SIZE);
}

/** Writes the HMAC of octets 0–95 at 96–111 (after every covered field is final). */
export function signStampPacket(buf: Buffer, key: Uint8Array): void {
  if (buf.length < STAMP_AUTH_SIZE) throw new RangeError(`authenticated STAMP packet of ${buf.length} octets, need ${STAMP_AUTH_SIZE}`);
  stampHmac(key, buf).copy(buf, STAMP_AUTH_HMAC_OFFSET);
}

/** True if `buf[0, length)` is ≥ 112 octets and its HMAC at 96 verifies (constant-time compare). */
export function verifyStampPacket(buf: Uint8Array, length: number, key: Uint8Array): boolean {
  if (!Number.isInteger(length) || length < STAMP_AUTH_SIZE || length > buf.length) return false;
  const expected = stampHmac(key, buf);
  return timingSafeEqual(expected, buf.subarray(STAMP_AUTH_HMAC_OFFSET, STAMP_AUTH_HMAC_OFFSET + STAMP_AUTH_HMAC_SIZE));
}

/**
 * Writes the 112-octet authenticated sender packet into `buf` (MBZ and the
 * HMAC field zeroed; octets from 112 on untouched) and, when `key` is given,
 * signs it. RangeError if `buf` is shorter than 112 or the SSID is not 16 bits.
 */
export function writeStampAuthSenderPacket(buf: Buffer, pkt: StampSenderPacket, key?: Uint8Array): void {
  checkSenderWrite(AUTH_SENDER_NAME, buf, STAMP_AUTH_SIZE, pkt.ssid);
  writeSenderHeader(buf, STAMP_AUTH, pkt);
  if (key) signStampPacket(buf, key);
}

/** Decodes an authenticated sender packet (MBZ ignored; the HMAC is checked separately with verifyStampPacket). */
export function decodeStampAuthSenderPacket(buf: Uint8Array, length: number = buf.length): StampSenderPacket {
  if (!Number.isInteger(length) || length < 0 || length > buf.length) {
    throw new DecodeError(AUTH_SENDER_NAME, `length ${String(length)} outside buffer of ${buf.length} octets`);
  }
  if (length < STAMP_AUTH_SIZE) {
    throw new DecodeError(AUTH_SENDER_NAME, `truncated: need at least ${STAMP_AUTH_SIZE} octets, got ${length}`);
  }
  return decodeSenderHeader(buf, length, STAMP_AUTH);
}

/** SSID of an authenticated STAMP reflector packet (octets 26–27); decodeReflectorPacket(…, 'authenticated') reads the rest. */
export function stampAuthReflectorSsid(buf: Uint8Array, length: number = buf.length): number {
  if (length < STAMP_AUTH_SIZE || length > buf.length) {
    throw new DecodeError(AUTH_REFLECTOR_NAME, `truncated: need at least ${STAMP_AUTH_SIZE} octets, got ${length}`);
  }
  return readU16(buf, STAMP_AUTH.reflector.ssid!);
}

/**
 * Builds the authenticated reply to an authenticated `request` (≥ 112 octets,
 * HMAC already verified by the caller) in `out`; returns its length (the
 * request's, RFC 8762 §4.6). Copies the sender's seq, T1, Error Estimate and
 * SSID, zeroes MBZ and the HMAC field. Sign with signStampPacket after the
 * last T3 patch (patchReflectorTimestamp(out, t3, 'authenticated')): T3 is
 * covered. `out` may be `request` itself.
 *
 * Octets from 112 on are not covered by the request's HMAC (RFC 8762 §4.2.2:
 * it covers 0–95), so none of them is echoed (writeAuthReplyTail): the reply
 * keeps the request's length but its tail is ours.
 */
export function buildStampAuthReflection(
  request: Uint8Array,
  requestLength: number,
  out: Buffer,
  f: LightReflectionFields,
): number {
  if (!Number.isInteger(requestLength) || requestLength < 0 || requestLength > request.length) {
    throw new DecodeError(AUTH_SENDER_NAME, `length ${String(requestLength)} outside buffer of ${request.length} octets`);
  }
  if (requestLength < STAMP_AUTH_SIZE) {
    throw new DecodeError(AUTH_SENDER_NAME, `truncated: need at least ${STAMP_AUTH_SIZE} octets, got ${requestLength}`);
  }
  const replyLength = requestLength;
  if (out.length < replyLength) throw new RangeError(`reply buffer of ${out.length} octets, need ${replyLength}`);
  return writeStampReply(request, requestLength, replyLength, out, f, STAMP_AUTH, true);
}

/**
 * The reply of either STAMP format (testFormat.ts), after the caller's
 * checks: the sender's seq, T1, Error Estimate and SSID (when `copySsid`;
 * else 0) copied, MBZ zeroed; past the base, either the request's octets
 * copied back at the same offsets with RFC 8972 TLV processing (RFC 8762
 * §4.6; ReplyRule 'stamp') or our own tail (writeAuthReplyTail; 'stamp-authenticated').
 */
function writeStampReply(
  request: Uint8Array, requestLength: number, replyLength: number, out: Buffer, f: LightReflectionFields, fmt: TestFormat,
  copySsid: boolean, cos?: CosReflection,
): number {
  const s = fmt.sender;
  const r = fmt.reflector;
  const base = r.size;
  const ownTail = fmt.reply === 'stamp-authenticated';
  const senderSeq = readU32(request, s.seq);
  const t1High = readU32(request, s.timestamp);
  const t1Low = readU32(request, s.timestamp + 4);
  const senderErrorEstimate = readU16(request, s.errorEstimate);
  const ssid = copySsid && s.ssid !== undefined && requestLength >= s.ssid + 2 ? readU16(request, s.ssid) : 0;
  if (ownTail) writeAuthReplyTail(request, requestLength, out, base);
  else if (replyLength > base && out !== request) {
    out.set(request.subarray(base, replyLength), base);
  }
  out.fill(0, 0, base);
  writeU32(out, r.seq, f.seq);
  writeTimestamp(out, r.timestamp, f.timestamp);
  writeU16(out, r.errorEstimate, f.errorEstimate);
  writeU16(out, r.ssid!, ssid);
  writeTimestamp(out, r.receiveTimestamp, f.receiveTimestamp);
  writeU32(out, r.senderSeq, senderSeq);
  writeU32(out, r.senderTimestamp, t1High);
  writeU32(out, r.senderTimestamp + 4, t1Low);
  writeU16(out, r.senderErrorEstimate, senderErrorEstimate);
  out[r.senderTtl] = f.senderTtl;
  if (!ownTail) reflectTlvs(out, replyLength, base, cos);
  return replyLength;
}

/**
 * The tail (octets from `base` to `requestLength`) of an authenticated reply,
 * which echoes none of the request's unauthenticated octets. In
 * authenticated mode RFC 8972 §4 lets a packet carry TLVs without an HMAC
 * TLV only as a single Extra Padding TLV: that one comes back understood
 * (U cleared, other flags 0) with a zeroed value, so a sender padding with it
 * sees the TLV it expects; anything else (TLV chains, whose HMAC TLV this
 * reflector does not verify, or plain padding) comes back as zeros.
 */
function writeAuthReplyTail(request: Uint8Array, requestLength: number, out: Uint8Array, base: number = STAMP_AUTH_SIZE): void {
  const n = requestLength - base;
  if (n <= 0) return;
  const padding = n >= TLV_HEADER_SIZE && (request[base]! & TLV_FLAG_U) !== 0 && request[base + 1] === TLV_TYPE_EXTRA_PADDING &&
    readU16(request, base + 2) === n - TLV_HEADER_SIZE;
  out.fill(0, base, requestLength);
  if (padding) {
    out[base + 1] = TLV_TYPE_EXTRA_PADDING;
    writeU16(out, base + 2, n - TLV_HEADER_SIZE);
  }
}
