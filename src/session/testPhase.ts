/**
 * The TWAMP-Test phase of a Session-Sender, shared by full TWAMP (after
 * TWAMP-Control set the session up) and TWAMP Light / STAMP (no control):
 * send the traffic model's packets on schedule from a bound UDP socket,
 * collect the reflections, and wait for stragglers until every packet is
 * answered or the reply timeout passes.
 *
 * Formats: 'twamp' = RFC 4656/5357 sender packets (14 octets open, 48
 * authenticated/encrypted, + padding); 'stamp' = RFC 8762 44-octet base
 * packet with the RFC 8972 SSID, extra length carried in an Extra Padding TLV.
 * Replies of either kind are decoded with decodeReflectorPacket, which takes
 * ≥ 38 octets (twampy); their sizes are recorded as received.
 *
 * STAMP authenticated mode (RFC 8762 §4.2.2, `stampKey`): 112-octet packets
 * whose HMAC-SHA-256/128 covers octets 0–95, T1 included, so T1 is written
 * before signing; replies must carry a valid HMAC under the same key.
 *
 * TWAMP authenticated mode protects only octets 0–15, so T1 is written after
 * protection, as late as possible; encrypted mode covers T1, so it is written
 * first. Replies whose HMAC does not verify, that come from elsewhere, carry
 * another session's SSID, or answer a sequence number we never sent, are
 * counted and never abort the session.
 */
import { randomBytes } from 'node:crypto';
import type { Socket as UdpSocket, RemoteInfo } from 'node:dgram';
import {
  writeSenderPacket, decodeReflectorPacket, SENDER_HEADER_SIZE, DecodeError, decodeErrorEstimate, reflectorTimestampToNtp,
  protectSenderPacket, unprotectReflectorPacket, writeTimestamp, writeStampSenderPacket, STAMP_BASE_SIZE,
  TLV_HEADER_SIZE, TLV_FLAG_U, TLV_TYPE_EXTRA_PADDING, STAMP_AUTH_SIZE, writeStampAuthSenderPacket, verifyStampPacket,
  stampAuthReflectorSsid,
  type PacketLayout, type SecurityMode, type TestSessionKeys,
} from '../protocol/index.js';
import { writeU16 } from '../protocol/bytes.js';
import { SessionStats, type SessionResult, type ReplySample } from '../measure/stats.js';
import { checkModelForIpVersion, createTrafficModel, type ModelConfig, type TrafficModel } from '../measure/models.js';
import { TwampSessionError } from './errors.js';
import { unmapAddress } from './address.js';
import type { Clock } from './clock.js';
import { PacedSender } from './pacer.js';

export type TestPacketFormat = 'twamp' | 'stamp';

/** The session's traffic model for the IP version in use (voice models grow on IPv6); a protocol error if it cannot fit. */
export function modelForFamily(cfg: ModelConfig, family: 4 | 6, peer: string): TrafficModel {
  try {
    const model = createTrafficModel(cfg, family);
    checkModelForIpVersion(model, family);
    return model;
  } catch (e) {
    throw new TwampSessionError('protocol', peer, `traffic model does not fit IPv${family}: ${(e as Error).message}`);
  }
}

export interface TestPhaseOptions {
  /** Bound, connected-or-not UDP socket (TTL and DSCP already set by the caller). */
  socket: UdpSocket;
  reflectorAddress: string;
  reflectorPort: number;
  model: TrafficModel;
  nPackets: number;
  /** IP + UDP header octets (28 IPv4, 48 IPv6). */
  overhead: number;
  clock: Clock;
  /** How long after the last departure a reflection may still arrive. */
  replyTimeoutMs: number;
  signal?: AbortSignal;
  /** Default 'twamp'. 'stamp' is open or authenticated (with `stampKey`). */
  format?: TestPacketFormat;
  /** Default 'open'. */
  mode?: SecurityMode;
  /** Test-session keys (authenticated and encrypted mode). */
  keys?: TestSessionKeys;
  /** Authenticated STAMP: HMAC-SHA-256 key (the shared secret's octets). */
  stampKey?: Uint8Array;
  /** STAMP Session-Sender Identifier (RFC 8972), non-zero; ignored for 'twamp'. */
  ssid?: number;
  /**
   * No negotiation told us what the reflector does (TWAMP Light / STAMP):
   * when every reply's Sequence Number equals the sender's, take the
   * reflector as stateless and report round-trip loss only.
   */
  detectStatelessReflector?: boolean;
  onReply?: (received: number, sent: number) => void;
  onSample?: (sample: ReplySample) => void;
}

export interface TestPhaseResult {
  stats: SessionResult;
  /** Round-trip delay of each answered packet, ns, arrival order. */
  rtSamplesNs: Float64Array;
  /** Datagrams that were not a valid reflection from the reflector's test port. */
  invalidReplies: number;
  /** Replies dropped because their HMAC did not verify. */
  badHmacReplies: number;
  /** Every reply claimed a synchronised reflector clock (S bit, multiplier ≠ 0). */
  peerSynced: boolean;
  /** Distinct packets answered. */
  received: number;
  /** The reflector copied the sender's Sequence Number in every reply (only when detection was asked for). */
  reflectorStateless: boolean;
  /** UDP payload sizes of the valid replies, as received (e.g. 38 from twampy, 41 TWAMP, 44 STAMP). */
  replyPayload?: { min: number; max: number };
  /** UDP payload sizes sent. */
  requestPayload?: { min: number; max: number };
}

const MIN_HEADER: Record<TestPacketFormat, (layout: PacketLayout) => number> = {
  twamp: (layout) => SENDER_HEADER_SIZE[layout],
  stamp: (layout) => (layout === 'authenticated' ? STAMP_AUTH_SIZE : STAMP_BASE_SIZE),
};

/** The sender header size of a format and layout (the smallest packet sent). */
export function senderHeaderSize(format: TestPacketFormat, layout: PacketLayout): number {
  return MIN_HEADER[format](layout);
}

export async function runTestPhase(o: TestPhaseOptions): Promise<TestPhaseResult> {
  const format = o.format ?? 'twamp';
  const mode = o.mode ?? 'open';
  const layout: PacketLayout = mode === 'authenticated' || mode === 'encrypted' ? 'authenticated' : 'open';
  const stampKey = format === 'stamp' && layout === 'authenticated' ? o.stampKey : undefined;
  if (format === 'stamp' && layout !== 'open' && (mode !== 'authenticated' || !stampKey)) {
    throw new TypeError(`STAMP test packets are open or authenticated (with stampKey), got ${mode}${stampKey ? '' : ' without a key'}`);
  }
  const keys = layout === 'authenticated' && format === 'twamp' ? o.keys : undefined;
  if (layout === 'authenticated' && format === 'twamp' && !keys) throw new TypeError(`${mode} test phase without test keys`);
  const ssid = format === 'stamp' ? (o.ssid ?? 0) : 0;
  const header = senderHeaderSize(format, layout);
  const { model, overhead, clock, reflectorAddress, reflectorPort } = o;
  const payloadOf = (sizeIp: number): number => Math.max(sizeIp - overhead, header);

  const stats = new SessionStats();
  const sentSeqs = new Set<number>();
  const answered = new Set<number>();
  let received = 0;
  let sent = 0;
  let invalid = 0;
  let badHmac = 0;
  let peerSynced = true;
  let allSeqEqual = true;
  let replyMin = Infinity;
  let replyMax = 0;
  let reqMin = Infinity;
  let reqMax = 0;
  const onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    const t4 = clock.nowNtp();
    if (rinfo.port !== reflectorPort || unmapAddress(rinfo.address) !== reflectorAddress) { invalid++; return; }
    let r;
    try {
      if (keys && !unprotectReflectorPacket(msg, msg.length, keys, mode)) { badHmac++; invalid++; return; }
      if (stampKey && !verifyStampPacket(msg, msg.length, stampKey)) { badHmac++; invalid++; return; }
      r = decodeReflectorPacket(msg, msg.length, layout);
      if (stampKey) r.ssid = stampAuthReflectorSsid(msg, msg.length);
    } catch (e) {
      if (e instanceof DecodeError) { invalid++; return; }
      throw e;
    }
    // RFC 8972 §3: a reflector without SSID support returns 0; any other value is not our session.
    if (format === 'stamp' && r.ssid !== ssid && r.ssid !== 0) { invalid++; return; }
    // The reflector's Error Estimate covers T2/T3: S bit says whether its clock is synced;
    // Multiplier 0 is invalid (RFC 4656 §4.1.2): keep the sample, but trust no sync claim.
    const ee = decodeErrorEstimate(r.errorEstimate);
    if (!ee.synchronized || ee.multiplier === 0) peerSynced = false;
    if (r.seq !== r.senderSeq) allSeqEqual = false;
    if (msg.length < replyMin) replyMin = msg.length;
    if (msg.length > replyMax) replyMax = msg.length;
    // T2/T3 in the format the reflector's Z bit says (NTP or PTPv2 truncated); T1 is ours (NTP).
    const sample: ReplySample = {
      senderSeq: r.senderSeq, reflectorSeq: r.seq, t1: r.senderTimestamp,
      t2: reflectorTimestampToNtp(r.receiveTimestamp, ee.z), t3: reflectorTimestampToNtp(r.timestamp, ee.z),
      t4, sizeIp: msg.length + overhead,
    };
    stats.recordReply(sample);
    if (sentSeqs.has(r.senderSeq) && !answered.has(r.senderSeq)) {
      answered.add(r.senderSeq);
      received++;
    }
    o.onSample?.(sample);
    o.onReply?.(received, sent);
  };
  const sock = o.socket;
  sock.on('message', onMessage);
  // Stays attached: an ICMP error after the phase must not become an uncaught 'error' event.
  sock.on('error', () => { invalid++; });
  try {
    const padding = randomBytes(Math.max(0, payloadOf(model.maxSizeIp) - header));
    const errorEstimate = clock.errorEstimate;
    const sendOne = (seq: number): number => {
      const shape = model.packet(seq);
      const payload = payloadOf(shape.sizeIp);
      const buf = Buffer.allocUnsafe(payload);
      padding.copy(buf, header, 0, payload - header);
      let t1: bigint;
      if (format === 'stamp') {
        // Extra length as one Extra Padding TLV (RFC 8972 §4.1, U set by the sender); 1–3 spare octets stay zero.
        const extra = payload - header;
        if (extra >= TLV_HEADER_SIZE) {
          buf[header] = TLV_FLAG_U;
          buf[header + 1] = TLV_TYPE_EXTRA_PADDING;
          writeU16(buf, header + 2, extra - TLV_HEADER_SIZE);
        } else if (extra > 0) {
          buf.fill(0, header, payload);
        }
        t1 = clock.nowNtp();
        // Authenticated: the HMAC covers T1, so it is signed after T1 is written.
        if (stampKey) writeStampAuthSenderPacket(buf, { seq, timestamp: t1, errorEstimate, ssid }, stampKey);
        else writeStampSenderPacket(buf, { seq, timestamp: t1, errorEstimate, ssid });
      } else if (mode === 'authenticated') {
        // Protect octets 0–15 first, then take T1 as late as possible (outside the protection).
        writeSenderPacket(buf, { seq, timestamp: 0n, errorEstimate }, layout);
        protectSenderPacket(buf, payload, keys!, mode);
        t1 = clock.nowNtp();
        writeTimestamp(buf, 16, t1);
      } else {
        t1 = clock.nowNtp();
        writeSenderPacket(buf, { seq, timestamp: t1, errorEstimate }, layout);
        // Encrypted: T1 is inside the CBC range, so it is final before protection.
        if (keys) protectSenderPacket(buf, payload, keys, mode);
      }
      sock.send(buf, reflectorPort, reflectorAddress);
      sentSeqs.add(seq);
      stats.recordSent({ seq, sizeIp: payload + overhead, t1 });
      if (payload < reqMin) reqMin = payload;
      if (payload > reqMax) reqMax = payload;
      sent++;
      return shape.gapNs;
    };

    const pacer = new PacedSender(clock);
    await pacer.run(o.nPackets, sendOne, o.signal);
    // Wait for stragglers: until every packet is answered or the reply timeout passes.
    await waitUntil(() => received >= o.nPackets, o.replyTimeoutMs, o.signal);
  } finally {
    sock.removeListener('message', onMessage);
  }
  const reflectorStateless = (o.detectStatelessReflector ?? false) && received > 0 && allSeqEqual;
  if (reflectorStateless) stats.markStatelessReflector();
  const result: TestPhaseResult = {
    stats: stats.result(),
    rtSamplesNs: stats.delaySamples('rt'),
    invalidReplies: invalid,
    badHmacReplies: badHmac,
    peerSynced,
    received,
    reflectorStateless,
  };
  if (replyMax > 0) result.replyPayload = { min: replyMin, max: replyMax };
  if (reqMax > 0) result.requestPayload = { min: reqMin, max: reqMax };
  return result;
}

/** Resolve when cond() holds (checked every 5 ms) or after timeoutMs. */
export function waitUntil(cond: () => boolean, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const deadline = Date.now() + timeoutMs;
    const check = (): void => {
      if (cond() || Date.now() >= deadline || signal?.aborted) { resolve(); return; }
      setTimeout(check, 5);
    };
    check();
  });
}
