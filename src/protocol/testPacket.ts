/**
 * TWAMP-Test packets (RFC 5357 §4.1.2, §4.2.1 over RFC 4656 §4.1.2, RFC 7750
 * §3) and the format-driven header codecs shared with STAMP: every offset
 * comes from the format table (testFormat.ts). 'open' covers unauthenticated
 * and mixed mode; 'authenticated' covers the authenticated and encrypted
 * layouts, which are identical in plaintext. This module only lays out
 * plaintext: HMAC octets are left zero and protection is applied afterwards
 * (testCodec.ts packetGuard).
 */
import { readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { DecodeError } from './errors.js';
import { readTimestamp, writeTimestamp } from './timestamp.js';
import { testFormat, replyLength, TRUNCATED_REFLECTOR_SIZE, type TestFormat } from './testFormat.js';

export type PacketLayout = 'open' | 'authenticated';

/** The TWAMP format of a layout (testFormat.ts; the authenticated and encrypted layouts are the same in plaintext). */
const TWAMP: Record<PacketLayout, TestFormat> = { open: testFormat('twamp', 'open'), authenticated: testFormat('twamp', 'authenticated') };
/** Open replies are decoded with STAMP's offsets: the same fields plus the RFC 8972 SSID at 14 (MBZ in RFC 5357). */
const DECODE: Record<PacketLayout, TestFormat> = { open: testFormat('stamp', 'open'), authenticated: TWAMP.authenticated };

export const SENDER_HEADER_SIZE: Record<PacketLayout, number> = { open: TWAMP.open.sender.size, authenticated: TWAMP.authenticated.sender.size };
export const REFLECTOR_HEADER_SIZE: Record<PacketLayout, number> = {
  open: TWAMP.open.reflector.size, authenticated: TWAMP.authenticated.reflector.size,
};

const SENDER_NAME = 'TWAMP-Test sender packet';
const REFLECTOR_NAME = 'TWAMP-Test reflector packet';

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
 * Writes the sender header of format `f` into `buf`: MBZ and HMAC octets of
 * the header zeroed, the SSID written where the format has one (STAMP), the
 * octets after the header (padding, TLVs) left untouched, so a pre-filled
 * buffer is reused per packet (hot path: no allocation). RangeError if `buf`
 * is shorter than the header or the SSID is not 16 bits.
 */
export function writeSenderHeader(buf: Buffer, f: TestFormat, pkt: SenderPacket & { ssid?: number }): void {
  const at = f.sender;
  if (buf.length < at.size) {
    throw new RangeError(`${f.id} sender packet: buffer of ${buf.length} octets is shorter than the header (${at.size})`);
  }
  const ssid = pkt.ssid ?? 0;
  if (!Number.isInteger(ssid) || ssid < 0 || ssid > 0xffff) {
    throw new RangeError(`${f.id} sender packet: SSID must be a 16-bit unsigned integer, got ${ssid}`);
  }
  buf.fill(0, 0, at.size);
  writeU32(buf, at.seq, pkt.seq);
  writeTimestamp(buf, at.timestamp, pkt.timestamp);
  writeU16(buf, at.errorEstimate, pkt.errorEstimate);
  if (at.ssid !== undefined) writeU16(buf, at.ssid, ssid);
}

/**
 * Writes the TWAMP sender header into `buf` (MBZ and HMAC octets zeroed) and
 * leaves the padding untouched. RangeError if `buf` is shorter than the header.
 */
export function writeSenderPacket(buf: Buffer, pkt: SenderPacket, layout: PacketLayout = 'open'): void {
  writeSenderHeader(buf, TWAMP[layout], pkt);
}

/** Decodes a (decrypted) sender packet of format `f` (MBZ ignored). */
export function decodeSenderHeader(buf: Uint8Array, length: number, f: TestFormat): SenderPacket & { ssid: number } {
  checkLength(`${f.id} sender packet`, buf, length, f.sender.size);
  const at = f.sender;
  return {
    seq: readU32(buf, at.seq),
    timestamp: readTimestamp(buf, at.timestamp),
    errorEstimate: readU16(buf, at.errorEstimate),
    ssid: at.ssid === undefined ? 0 : readU16(buf, at.ssid),
  };
}

/** Decodes a (decrypted) TWAMP sender packet; MBZ ignored. */
export function decodeSenderPacket(
  buf: Uint8Array,
  length: number = buf.length,
  layout: PacketLayout = 'open',
): SenderPacket {
  checkLength(SENDER_NAME, buf, length, SENDER_HEADER_SIZE[layout]);
  const { ssid: _ssid, ...rest } = decodeSenderHeader(buf, length, TWAMP[layout]);
  return rest;
}

export interface ReflectorPacket {
  /** Reflector's own sequence number (or the sender's, for stateless TWAMP Light). */
  seq: number;
  /** T3, reflector transmit time. */
  timestamp: bigint;
  /** Applies to T2 and T3. */
  errorEstimate: number;
  /** RFC 8972 SSID (STAMP; open octets 14–15, authenticated 26–27); 0 where the format has none. */
  ssid: number;
  /** T2, reflector receive time. */
  receiveTimestamp: bigint;
  senderSeq: number;
  /** T1 as echoed. */
  senderTimestamp: bigint;
  senderErrorEstimate: number;
  /** undefined when the reply stops before it (twampy's 38-octet replies). */
  senderTtl: number | undefined;
  /** RFC 7750 S-DSCP-ECN: the DS byte our packet arrived with; present only when the format has it. */
  sDscpEcn?: number;
  /** Octets received (header + padding). */
  length: number;
}

/**
 * Decodes a (decrypted) reply of format `f`: at least `f.minReply` octets
 * (38 in the open layouts: twampy); fields past the received length (Sender
 * TTL, S-DSCP-ECN) are undefined.
 */
export function decodeReply(buf: Uint8Array, length: number, f: TestFormat): ReflectorPacket {
  checkLength(`${f.id} reflector packet`, buf, length, f.minReply);
  const at = f.reflector;
  const p: ReflectorPacket = {
    seq: readU32(buf, at.seq),
    timestamp: readTimestamp(buf, at.timestamp),
    errorEstimate: readU16(buf, at.errorEstimate),
    ssid: at.ssid === undefined ? 0 : readU16(buf, at.ssid),
    receiveTimestamp: readTimestamp(buf, at.receiveTimestamp),
    senderSeq: readU32(buf, at.senderSeq),
    senderTimestamp: readTimestamp(buf, at.senderTimestamp),
    senderErrorEstimate: readU16(buf, at.senderErrorEstimate),
    senderTtl: length > at.senderTtl ? buf[at.senderTtl]! : undefined,
    length,
  };
  if (at.sDscpEcn !== undefined && length > at.sDscpEcn) p.sDscpEcn = buf[at.sDscpEcn]!;
  return p;
}

/**
 * Decodes a (decrypted) reflector packet. The open layout accepts ≥ 38
 * octets (TRUNCATED_REFLECTOR_SIZE) and reads octets 14–15 as the RFC 8972
 * SSID; the authenticated one takes ≥ 112.
 */
export function decodeReflectorPacket(
  buf: Uint8Array,
  length: number = buf.length,
  layout: PacketLayout = 'open',
): ReflectorPacket {
  checkLength(REFLECTOR_NAME, buf, length, layout === 'open' ? TRUNCATED_REFLECTOR_SIZE : REFLECTOR_HEADER_SIZE[layout]);
  return decodeReply(buf, length, DECODE[layout]);
}

/**
 * Reply length for a request of `requestLength` octets: the same size when
 * the sender padded enough, else the bare reflector header (RFC 5357 §4.2.1;
 * what twampd does).
 */
export function reflectorReplyLength(requestLength: number, layout: PacketLayout = 'open'): number {
  return replyLength(TWAMP[layout], requestLength);
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
  /** RFC 7750 S-DSCP-ECN, the received DS byte (formats with DSCP and ECN monitoring); 0 when not given. */
  sDscpEcn?: number;
}

/**
 * Builds the TWAMP reply (ReplyRule 'twamp') of format `f` to a (decrypted)
 * sender packet in `out` and returns its length, replyLength(f, requestLength).
 * Sender Sequence Number, Timestamp and Error Estimate are copied from the
 * request; the reply's padding is the request's padding with its
 * highest-numbered octets dropped to keep both directions the same size
 * (RFC 5357 §4.2.1). MBZ and HMAC octets are zeroed; S-DSCP-ECN is written
 * where the format has it (RFC 7750 §3). `out` may be the request's own
 * buffer (in-place reflection): sender fields are read before anything is
 * written. The caller guarantees `out` holds the reply. No allocation beyond
 * bigint arithmetic.
 *
 * `symmetrical`: RFC 6038 Symmetrical Size chosen, so the sender's packet is
 * as long as the reflector header before its padding (sized from the
 * format's actual header: 44 with RFC 7750, not RFC 7750's 28-octet MBZ
 * figure), and the padding keeps its offsets (the first octets to reflect
 * stay first).
 */
export function buildTwampReply(
  request: Uint8Array,
  requestLength: number,
  out: Buffer,
  fields: ReflectionFields,
  f: TestFormat,
  symmetrical = false,
): number {
  const s = f.sender;
  const r = f.reflector;
  checkLength(SENDER_NAME, request, requestLength, s.size);
  const len = replyLength(f, requestLength);

  const senderSeq = readU32(request, s.seq);
  const t1High = readU32(request, s.timestamp);
  const t1Low = readU32(request, s.timestamp + 4);
  const senderErrorEstimate = readU16(request, s.errorEstimate);

  const paddingLength = len - r.size;
  if (paddingLength > 0) {
    // TypedArray#set copies correctly when source and target overlap.
    const from = symmetrical ? r.size : s.size;
    out.set(request.subarray(from, from + paddingLength), r.size);
  }
  out.fill(0, 0, r.size);

  writeU32(out, r.seq, fields.seq);
  writeTimestamp(out, r.timestamp, fields.timestamp);
  writeU16(out, r.errorEstimate, fields.errorEstimate);
  writeTimestamp(out, r.receiveTimestamp, fields.receiveTimestamp);
  writeU32(out, r.senderSeq, senderSeq);
  writeU32(out, r.senderTimestamp, t1High);
  writeU32(out, r.senderTimestamp + 4, t1Low);
  writeU16(out, r.senderErrorEstimate, senderErrorEstimate);
  out[r.senderTtl] = fields.senderTtl;
  if (r.sDscpEcn !== undefined) out[r.sDscpEcn] = (fields.sDscpEcn ?? 0) & 0xff;
  return len;
}

/** buildTwampReply for the TWAMP format of `layout` without RFC 7750. */
export function buildReflection(
  request: Uint8Array,
  requestLength: number,
  out: Buffer,
  f: ReflectionFields,
  layout: PacketLayout = 'open',
  symmetrical = false,
): number {
  return buildTwampReply(request, requestLength, out, f, TWAMP[layout], symmetrical);
}

/** Rewrites T3 in a built reply, taken as late as possible before send (RFC 5357 §4.2.1). */
export function patchReflectorTimestamp(out: Buffer, timestamp: bigint, layout: PacketLayout = 'open'): void {
  writeTimestamp(out, TWAMP[layout].reflector.timestamp, timestamp);
}
