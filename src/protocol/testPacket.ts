/**
 * TWAMP-Test packets (RFC 5357 §4.1.2, §4.2.1 over RFC 4656 §4.1.2).
 * 'open' covers unauthenticated and mixed mode; 'authenticated' covers the
 * authenticated and encrypted layouts, which are identical in plaintext.
 * This module only lays out plaintext: HMAC octets are left zero and
 * encryption is applied by the caller afterwards.
 *
 * Offsets (sender):     open: seq 0 · T1 4 · EE 12 · padding 14
 *                       auth: seq 0 · MBZ 4–15 · T1 16 · EE 24 · MBZ 26–31 · HMAC 32–47 · padding 48
 * Offsets (reflector):  open: seq 0 · T3 4 · EE 12 · MBZ/SSID 14 · T2 16 · sender seq 24 ·
 *                             T1 28 · sender EE 36 · MBZ 38 · sender TTL 40 · padding 41
 *                       auth: seq 0 · MBZ 4–15 · T3 16 · EE 24 · MBZ 26–31 · T2 32 · MBZ 40–47 ·
 *                             sender seq 48 · MBZ 52–63 · T1 64 · sender EE 72 · MBZ 74–79 ·
 *                             sender TTL 80 · MBZ 81–95 · HMAC 96–111 · padding 112
 * (112, not the RFC's 104: verified erratum 5045 to RFC 5357.)
 */
import { readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { DecodeError } from './errors.js';
import { readTimestamp, writeTimestamp } from './timestamp.js';

export type PacketLayout = 'open' | 'authenticated';

export const SENDER_HEADER_SIZE: Record<PacketLayout, number> = { open: 14, authenticated: 48 };
export const REFLECTOR_HEADER_SIZE: Record<PacketLayout, number> = { open: 41, authenticated: 112 };
/**
 * twampy's TWAMP-light responder stops after Sender Error Estimate (no MBZ,
 * no Sender TTL); accept such replies rather than count them lost.
 */
export const TRUNCATED_REFLECTOR_SIZE = 38;

const SENDER_NAME = 'TWAMP-Test sender packet';
const REFLECTOR_NAME = 'TWAMP-Test reflector packet';

interface SenderOffsets {
  seq: number;
  timestamp: number;
  errorEstimate: number;
}
const SENDER: Record<PacketLayout, SenderOffsets> = {
  open: { seq: 0, timestamp: 4, errorEstimate: 12 },
  authenticated: { seq: 0, timestamp: 16, errorEstimate: 24 },
};

interface ReflectorOffsets extends SenderOffsets {
  receiveTimestamp: number;
  senderSeq: number;
  senderTimestamp: number;
  senderErrorEstimate: number;
  senderTtl: number;
}
const REFLECTOR: Record<PacketLayout, ReflectorOffsets> = {
  open: {
    seq: 0,
    timestamp: 4,
    errorEstimate: 12,
    receiveTimestamp: 16,
    senderSeq: 24,
    senderTimestamp: 28,
    senderErrorEstimate: 36,
    senderTtl: 40,
  },
  authenticated: {
    seq: 0,
    timestamp: 16,
    errorEstimate: 24,
    receiveTimestamp: 32,
    senderSeq: 48,
    senderTimestamp: 64,
    senderErrorEstimate: 72,
    senderTtl: 80,
  },
};

export interface SenderPacket {
  seq: number;
  /** T1, NTP format. */
  timestamp: bigint;
  errorEstimate: number;
}

function checkLength(name: string, buf: Uint8Array, length: number, min: number): void {
  if (!Number.isInteger(length) || length < 0 || length > buf.length) {
    throw new DecodeError(name, `length ${String(length)} outside buffer of ${buf.length} octets`);
  }
  if (length < min) {
    throw new DecodeError(name, `truncated: need at least ${min} octets, got ${length}`);
  }
}

/**
 * Writes the sender header into `buf` (MBZ and HMAC octets zeroed) and leaves
 * the padding untouched, so a pre-filled padding buffer is reused per packet
 * (hot path: no allocation). RangeError if `buf` is shorter than the header.
 */
export function writeSenderPacket(buf: Buffer, pkt: SenderPacket, layout: PacketLayout = 'open'): void {
  const size = SENDER_HEADER_SIZE[layout];
  if (buf.length < size) {
    throw new RangeError(`${SENDER_NAME}: buffer of ${buf.length} octets is shorter than the ${layout} header (${size})`);
  }
  const at = SENDER[layout];
  if (layout === 'authenticated') buf.fill(0, 0, size);
  writeU32(buf, at.seq, pkt.seq);
  writeTimestamp(buf, at.timestamp, pkt.timestamp);
  writeU16(buf, at.errorEstimate, pkt.errorEstimate);
}

/** Decodes a (decrypted) sender packet; MBZ ignored. */
export function decodeSenderPacket(
  buf: Uint8Array,
  length: number = buf.length,
  layout: PacketLayout = 'open',
): SenderPacket {
  checkLength(SENDER_NAME, buf, length, SENDER_HEADER_SIZE[layout]);
  const at = SENDER[layout];
  return {
    seq: readU32(buf, at.seq),
    timestamp: readTimestamp(buf, at.timestamp),
    errorEstimate: readU16(buf, at.errorEstimate),
  };
}

export interface ReflectorPacket {
  /** Reflector's own sequence number (or the sender's, for stateless TWAMP Light). */
  seq: number;
  /** T3, reflector transmit time. */
  timestamp: bigint;
  /** Applies to T2 and T3. */
  errorEstimate: number;
  /** Open octets 14–15: RFC 8972 SSID (MBZ in RFC 5357); 0 in the authenticated layout. */
  ssid: number;
  /** T2, reflector receive time. */
  receiveTimestamp: bigint;
  senderSeq: number;
  /** T1 as echoed. */
  senderTimestamp: bigint;
  senderErrorEstimate: number;
  /** undefined when the reply stops before it (twampy's 38-octet replies). */
  senderTtl: number | undefined;
  /** Octets received (header + padding). */
  length: number;
}

/**
 * Decodes a (decrypted) reflector packet. The open layout accepts ≥ 38
 * octets (TRUNCATED_REFLECTOR_SIZE), the authenticated one ≥ 112.
 */
export function decodeReflectorPacket(
  buf: Uint8Array,
  length: number = buf.length,
  layout: PacketLayout = 'open',
): ReflectorPacket {
  const full = REFLECTOR_HEADER_SIZE[layout];
  checkLength(REFLECTOR_NAME, buf, length, layout === 'open' ? TRUNCATED_REFLECTOR_SIZE : full);
  const at = REFLECTOR[layout];
  return {
    seq: readU32(buf, at.seq),
    timestamp: readTimestamp(buf, at.timestamp),
    errorEstimate: readU16(buf, at.errorEstimate),
    ssid: layout === 'open' ? readU16(buf, 14) : 0,
    receiveTimestamp: readTimestamp(buf, at.receiveTimestamp),
    senderSeq: readU32(buf, at.senderSeq),
    senderTimestamp: readTimestamp(buf, at.senderTimestamp),
    senderErrorEstimate: readU16(buf, at.senderErrorEstimate),
    senderTtl: length >= full ? buf[at.senderTtl]! : undefined,
    length,
  };
}

/**
 * Reply length for a request of `requestLength` octets: the same size when
 * the sender padded enough, else the bare reflector header (RFC 5357 §4.2.1;
 * what twampd does).
 */
export function reflectorReplyLength(requestLength: number, layout: PacketLayout = 'open'): number {
  return Math.max(requestLength, REFLECTOR_HEADER_SIZE[layout]);
}

export interface ReflectionFields {
  /** Reflector sequence number (own counter; copy of the sender's for stateless TWAMP Light). */
  seq: number;
  /** T2. */
  receiveTimestamp: bigint;
  /** T3; may be rewritten just before send with patchReflectorTimestamp. */
  timestamp: bigint;
  errorEstimate: number;
  /** Received TTL / Hop Limit, or 255 when it cannot be read (RFC 5357 §4.2.1). */
  senderTtl: number;
}

/**
 * Builds the reply to a (decrypted) sender packet in `out` and returns its
 * length, reflectorReplyLength(requestLength). Sender Sequence Number,
 * Timestamp and Error Estimate are copied from the request; the reply's
 * padding is the request's padding with its highest-numbered octets dropped
 * to keep both directions the same size (RFC 5357 §4.2.1). MBZ and HMAC
 * octets are zeroed. `out` may be the request's own buffer (in-place
 * reflection): sender fields are read before anything is written. The caller
 * guarantees `out` holds the reply. No allocation beyond bigint arithmetic.
 */
export function buildReflection(
  request: Uint8Array,
  requestLength: number,
  out: Buffer,
  f: ReflectionFields,
  layout: PacketLayout = 'open',
  /**
   * RFC 6038 Symmetrical Size chosen: the sender's packet is the reflector
   * header's size of header + MBZ before its padding, so padding keeps its
   * offsets (and the first octets to reflect stay first).
   */
  symmetrical = false,
): number {
  const senderSize = SENDER_HEADER_SIZE[layout];
  const headerSize = REFLECTOR_HEADER_SIZE[layout];
  checkLength(SENDER_NAME, request, requestLength, senderSize);
  const replyLength = reflectorReplyLength(requestLength, layout);

  const s = SENDER[layout];
  const senderSeq = readU32(request, s.seq);
  const t1High = readU32(request, s.timestamp);
  const t1Low = readU32(request, s.timestamp + 4);
  const senderErrorEstimate = readU16(request, s.errorEstimate);

  const paddingLength = replyLength - headerSize;
  if (paddingLength > 0) {
    // TypedArray#set copies correctly when source and target overlap.
    const from = symmetrical ? headerSize : senderSize;
    out.set(request.subarray(from, from + paddingLength), headerSize);
  }
  out.fill(0, 0, headerSize);

  const r = REFLECTOR[layout];
  writeU32(out, r.seq, f.seq);
  writeTimestamp(out, r.timestamp, f.timestamp);
  writeU16(out, r.errorEstimate, f.errorEstimate);
  writeTimestamp(out, r.receiveTimestamp, f.receiveTimestamp);
  writeU32(out, r.senderSeq, senderSeq);
  writeU32(out, r.senderTimestamp, t1High);
  writeU32(out, r.senderTimestamp + 4, t1Low);
  writeU16(out, r.senderErrorEstimate, senderErrorEstimate);
  out[r.senderTtl] = f.senderTtl;
  return replyLength;
}

/** Rewrites T3 in a built reply, taken as late as possible before send (RFC 5357 §4.2.1). */
export function patchReflectorTimestamp(out: Buffer, timestamp: bigint, layout: PacketLayout = 'open'): void {
  writeTimestamp(out, REFLECTOR[layout].timestamp, timestamp);
}
