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
 * TLVs (RFC 8972 §4): a Session-Sender sets the U (unrecognised) flag on
 * every TLV; the reflector clears it on the TLVs it understood and returns
 * the others unchanged with U = 1. Here only Extra Padding (type 1) is
 * understood. The tail is treated as TLVs only when it parses as an exact
 * chain whose every TLV has U = 1 and a non-zero type; otherwise (TWAMP-Light
 * padding, zero padding) it is copied back verbatim.
 */
import { readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { DecodeError } from './errors.js';
import { readTimestamp, writeTimestamp } from './timestamp.js';
import { SENDER_HEADER_SIZE } from './testPacket.js';

/** Unauthenticated STAMP base packet, either direction (RFC 8762 §4.2.1, §4.3.1). */
export const STAMP_BASE_SIZE = 44;
/** Smallest request a Light reflector answers: the TWAMP open-mode sender header. */
export const LIGHT_MIN_REQUEST_SIZE = SENDER_HEADER_SIZE.open;

export const TLV_HEADER_SIZE = 4;
export const TLV_FLAG_U = 0x80;
export const TLV_FLAG_M = 0x40;
export const TLV_FLAG_I = 0x20;
export const TLV_TYPE_EXTRA_PADDING = 1;

const SENDER_NAME = 'STAMP sender packet';

export interface StampSenderPacket {
  seq: number;
  /** T1, NTP format. */
  timestamp: bigint;
  errorEstimate: number;
  /** RFC 8972 Session-Sender Identifier; 0 = none (RFC 8762 MBZ). */
  ssid: number;
}

/**
 * Writes the 44-octet base sender packet into `buf` (octets 16–43 zeroed);
 * octets from 44 on (TLVs or padding) are left untouched. RangeError if
 * `buf` is shorter than 44 octets or the SSID is not 16 bits.
 */
export function writeStampSenderPacket(buf: Buffer, pkt: StampSenderPacket): void {
  if (buf.length < STAMP_BASE_SIZE) {
    throw new RangeError(`${SENDER_NAME}: buffer of ${buf.length} octets is shorter than the base packet (${STAMP_BASE_SIZE})`);
  }
  if (!Number.isInteger(pkt.ssid) || pkt.ssid < 0 || pkt.ssid > 0xffff) {
    throw new RangeError(`${SENDER_NAME}: SSID must be a 16-bit unsigned integer, got ${pkt.ssid}`);
  }
  buf.fill(0, 16, STAMP_BASE_SIZE);
  writeU32(buf, 0, pkt.seq);
  writeTimestamp(buf, 4, pkt.timestamp);
  writeU16(buf, 12, pkt.errorEstimate);
  writeU16(buf, 14, pkt.ssid);
}

/** Decodes a base sender packet (MBZ ignored). */
export function decodeStampSenderPacket(buf: Uint8Array, length: number = buf.length): StampSenderPacket {
  if (!Number.isInteger(length) || length < 0 || length > buf.length) {
    throw new DecodeError(SENDER_NAME, `length ${String(length)} outside buffer of ${buf.length} octets`);
  }
  if (length < STAMP_BASE_SIZE) {
    throw new DecodeError(SENDER_NAME, `truncated: need at least ${STAMP_BASE_SIZE} octets, got ${length}`);
  }
  return { seq: readU32(buf, 0), timestamp: readTimestamp(buf, 4), errorEstimate: readU16(buf, 12), ssid: readU16(buf, 14) };
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

/**
 * Reflector TLV processing in place on a built reply: when the octets from 44
 * on are a sender's TLV chain (every TLV has U = 1 and a non-zero type), clear
 * U on the TLVs we understand (Extra Padding) and leave the rest as copied
 * (U = 1: unrecognised). Returns how many TLVs were seen (0 if the tail is
 * padding).
 */
export function reflectTlvs(out: Uint8Array, length: number): number {
  if (length <= STAMP_BASE_SIZE) return 0;
  const tlvs = parseTlvs(out, STAMP_BASE_SIZE, length);
  if (!tlvs || tlvs.some((t) => (t.flags & TLV_FLAG_U) === 0 || t.type === 0)) return 0;
  for (const t of tlvs) {
    if (t.type === TLV_TYPE_EXTRA_PADDING) out[t.offset] = t.flags & ~TLV_FLAG_U;
  }
  return tlvs.length;
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

/**
 * Builds the Light/STAMP reply to `request` in `out` and returns its length,
 * lightReplyLength(requestLength). Copies the sender's seq, T1, Error
 * Estimate and SSID (octets 14–15; 0 if the request is shorter), zeroes the
 * MBZ octets and copies octets 44.. of the request (TLVs or padding), with
 * RFC 8972 U-flag processing (reflectTlvs). `out` may be `request` itself.
 * The caller guarantees `out` holds the reply. DecodeError below 14 octets.
 */
export function buildLightReflection(
  request: Uint8Array,
  requestLength: number,
  out: Buffer,
  f: LightReflectionFields,
): number {
  if (!Number.isInteger(requestLength) || requestLength < 0 || requestLength > request.length) {
    throw new DecodeError(SENDER_NAME, `length ${String(requestLength)} outside buffer of ${request.length} octets`);
  }
  if (requestLength < LIGHT_MIN_REQUEST_SIZE) {
    throw new DecodeError(SENDER_NAME, `truncated: need at least ${LIGHT_MIN_REQUEST_SIZE} octets, got ${requestLength}`);
  }
  const replyLength = lightReplyLength(requestLength);
  if (out.length < replyLength) throw new RangeError(`reply buffer of ${out.length} octets, need ${replyLength}`);
  const senderSeq = readU32(request, 0);
  const t1High = readU32(request, 4);
  const t1Low = readU32(request, 8);
  const senderErrorEstimate = readU16(request, 12);
  const ssid = requestLength >= 16 ? readU16(request, 14) : 0;
  // Extra octets beyond the base packet travel back at the same offsets (RFC 8762 §4.6).
  if (replyLength > STAMP_BASE_SIZE && out !== request) {
    out.set(request.subarray(STAMP_BASE_SIZE, replyLength), STAMP_BASE_SIZE);
  }
  out.fill(0, 0, STAMP_BASE_SIZE);
  writeU32(out, 0, f.seq);
  writeTimestamp(out, 4, f.timestamp);
  writeU16(out, 12, f.errorEstimate);
  writeU16(out, 14, ssid);
  writeTimestamp(out, 16, f.receiveTimestamp);
  writeU32(out, 24, senderSeq);
  writeU32(out, 28, t1High);
  writeU32(out, 32, t1Low);
  writeU16(out, 36, senderErrorEstimate);
  out[40] = f.senderTtl;
  reflectTlvs(out, replyLength);
  return replyLength;
}

/** The sender's seq and SSID of a Light request (for per-sender state), undefined below 14 octets. */
export function lightRequestKey(request: Uint8Array, length: number): { seq: number; ssid: number } | undefined {
  if (length < LIGHT_MIN_REQUEST_SIZE) return undefined;
  return { seq: readU32(request, 0), ssid: length >= 16 ? readU16(request, 14) : 0 };
}
