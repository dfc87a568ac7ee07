/**
 * The TWAMP-Test phase of a Session-Sender, shared by full TWAMP (after
 * TWAMP-Control set the session up) and TWAMP Light / STAMP (no control):
 * send the traffic model's packets on schedule from a bound UDP socket,
 * collect the reflections, and wait for stragglers until every packet is
 * answered or the reply timeout passes.
 *
 * Formats: every size, offset and protection rule comes from the format
 * table (protocol/testFormat.ts, sessionFormat below): 'twamp' = RFC
 * 4656/5357 sender packets (14 octets open, 48 authenticated/encrypted, +
 * padding; replies with S-DSCP-ECN under RFC 7750); 'stamp' = RFC 8762 base
 * packet with the RFC 8972 SSID, then TLVs: a Class of Service TLV (open
 * STAMP) and the extra length as an Extra Padding TLV. Replies are decoded
 * with the format's offsets (≥ 38 octets in the open formats: twampy); their
 * sizes are recorded as received.
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
 *
 * Wire truth (RFC 5357 §4.1.2: T1 "as close as possible" to the send, T4 to
 * the receipt). The test socket is a TestSocket (datapath.ts): native when
 * the helper is built, node:dgram otherwise.
 *  - Native: departures come from the native scheduler thread at absolute
 *    CLOCK_MONOTONIC deadlines (ScheduledSender, pacer.ts); T1 is written by
 *    native code right before sendmsg at its offset (open, mixed and TWAMP
 *    authenticated mode, whose HMAC does not cover T1). Where T1 is inside
 *    the protected range (TWAMP encrypted, STAMP authenticated) the packet is
 *    "pre-stamped": JS writes the deadline's CLOCK_REALTIME as T1 and
 *    protects the packet ahead, the thread sends it at that deadline. Chosen
 *    over stamping in JS right before a native send because that needs an
 *    event-loop wake-up at each departure, whose lateness (tens of µs to ms)
 *    would be the clock-to-send gap; the deadline's error is the scheduler's
 *    (µs), and the sender's own record below is the real departure anyway.
 *  - JS fallback: the event-loop pacer (PacedSender) and a clock read in JS.
 * T4 is the datagram's receive time from the datapath (the kernel's
 * SO_TIMESTAMPING stamp natively), never a clock read in a callback.
 *
 * The sender computes with its OWN record of each departure — the kernel's
 * TX timestamp where the datapath gives one, else the time it stamped — kept
 * per sequence number in a table sized by the session's packet count, never
 * with the T1 the reflector echoes (a reflector that garbles it cannot move
 * the round trip). A reply that arrives before its departure record (the
 * native thread reports departures in batches) waits for it, in arrival
 * order; replies to sequence numbers we did not send are unexpected.
 *
 * Path observations per reply: received TTL / hop limit (inbound hops = 255
 * − TTL, assuming the reflector sent 255 as RFC 5357 §4.2.1 asks) and the
 * received TOS / traffic class (inbound DSCP and ECN; a DSCP other than the
 * one the reply was to carry counts as remarked) need the native datapath;
 * the reflected Sender TTL (outbound hops = 255 − Sender TTL: our packets
 * leave with 255, RFC 5357 §4.2.1) and the DS byte our packet arrived with,
 * when the reflector reports it (RFC 7750 S-DSCP-ECN, or DSCP2/ECN of an
 * answered RFC 8972 CoS TLV), come in the reply itself.
 */
import { randomBytes } from 'node:crypto';
import {
  writeSenderHeader, decodeReply, DecodeError, decodeErrorEstimate, reflectorTimestampToNtp, testFormat, packetGuard,
  TLV_HEADER_SIZE, TLV_FLAG_U, TLV_TYPE_EXTRA_PADDING, COS_TLV_SIZE, writeCosTlv, findAnsweredCos, ntpFromUnixNs,
  type ReflectorPacket, type SecurityMode, type TestFormat, type TestProtocol, type TestSessionKeys, type ClassOfService,
} from '../protocol/index.js';
import { writeU16 } from '../protocol/bytes.js';
import { SessionStats, type SessionResult, type ReplySample } from '../measure/stats.js';
import { checkModelForIpVersion, createTrafficModel, type ModelConfig, type TrafficModel } from '../measure/models.js';
import { quantile } from '../measure/percentiles.js';
import { TwampSessionError } from './errors.js';
import { formatHostPort, unmapAddress } from '../util/net.js';
import type { Clock } from './clock.js';
import { PacedSender, ScheduledSender } from './pacer.js';
import {
  openTestSocket, DatapathError,
  type DepartureReport, type RxDatagram, type TestSocket, type TimestampSource,
} from './datapath.js';
import { messageOf } from '../util/errors.js';

export type TestPacketFormat = TestProtocol;

/** The session's traffic model for the IP version in use (voice models grow on IPv6); a protocol error if it cannot fit. */
export function modelForFamily(cfg: ModelConfig, family: 4 | 6, peer: string): TrafficModel {
  try {
    const model = createTrafficModel(cfg, family);
    checkModelForIpVersion(model, family);
    return model;
  } catch (e) {
    throw new TwampSessionError('protocol', peer, `traffic model does not fit IPv${family}: ${messageOf(e)}`);
  }
}

/**
 * What runTestPhase needs of a test socket: send now (JS pacing) or at a
 * deadline (native scheduler), where its timestamps come from, and the
 * datagram / departure callbacks it takes over while it runs. A
 * SenderTestSocket is one; a unit test can hand it a fake.
 */
export interface TestPhaseSocket {
  readonly socket: Pick<TestSocket, 'kind' | 'fallbackReason' | 'timestampSource' | 'schedulerStatus' | 'send' | 'schedule'>;
  onPackets?: ((batch: RxDatagram[]) => void) | undefined;
  onDeparture?: ((reports: DepartureReport[]) => void) | undefined;
  /** Asynchronous socket errors (e.g. ICMP unreachable) seen so far. */
  errors: number;
}

/**
 * A sender's test socket: a TestSocket whose callbacks the test phase takes
 * over while it runs (the socket is opened before TWAMP-Control needs its
 * port). TTL 255 (RFC 4656 §4.1.2, RFC 8762 §4.2) and the DSCP are set at open.
 */
export interface SenderTestSocket extends TestPhaseSocket {
  readonly socket: TestSocket;
  readonly port: number;
  /** Whether the packets carry the DSCP, and why not. */
  readonly dscpMarked: boolean;
  readonly dscpReason?: string;
  close(): void;
}

export interface OpenSenderSocketOptions {
  family: 4 | 6;
  address: string;
  dscp: number;
  /** For error messages. */
  peer: string;
  /** Forwarded to openTestSocket: true requires native, false forces node:dgram; default auto. */
  native?: boolean;
  /** Clock of the node:dgram fallback's timestamps. */
  clock?: Clock;
}

/** Cap of the native scheduler's early wake-up and final spin before each departure, µs. */
const SENDER_SPIN_US = 500;
/** Departure reports reach JS at most this often per sender socket, ms. */
const SENDER_REPORT_MS = 100;

export async function openSenderTestSocket(options: OpenSenderSocketOptions): Promise<SenderTestSocket> {
  let holder: SenderTestSocket | undefined;
  let socket: TestSocket;
  try {
    socket = await openTestSocket({
      family: options.family, address: options.address, port: 0, ttl: 255, tos: (options.dscp & 0x3f) << 2,
      // Native scheduler: wake early by the measured wake-up latency (its running
      // p95 + 5 µs, at most 500 µs) and spin to the deadline. The wake-up eats
      // most of that window, so the spin costs the latency's spread, and the
      // process-wide budget (1 % of a core) bounds it for all sockets together.
      // The cap is sized for an idle host, where a vCPU woken from idle at
      // 50 pps runs 100–200 µs late: bench/departure.ts, same run, 50 pps
      // departure p50 0.6–1.9 µs with 500 against 20–131 µs with 60, for
      // 0.06–0.2 % of a core; at 1,000–10,000 pps the budget, not the cap,
      // decides, and the figures are the same.
      schedulerSpinUs: SENDER_SPIN_US,
      // Departure reports in batches on a 100 ms grid shared by all sockets:
      // replies wait for their departure record (runTestPhase), nothing else needs it sooner.
      departureReportMs: SENDER_REPORT_MS,
      // Replies too, from the native receive thread: T4 is the kernel's receive time, so the batching delays no figure.
      receiveReportMs: SENDER_REPORT_MS,
      ...(options.native !== undefined ? { native: options.native } : {}),
      ...(options.clock !== undefined ? { clock: options.clock } : {}),
      onPackets: (b) => holder?.onPackets?.(b),
      onDeparture: (d) => holder?.onDeparture?.(d),
      onError: () => { if (holder) holder.errors++; },
    });
  } catch (e) {
    const err = DatapathError.from(e, 'test socket');
    throw new TwampSessionError('socket', options.peer,
      `cannot bind UDP test socket ${formatHostPort(options.address, 0)}: ${err.code} (${err.message})`, { cause: e });
  }
  const marking = options.dscp === 0 ? { ok: true } : socket.tosStatus();
  holder = {
    socket,
    port: socket.local.port,
    dscpMarked: marking.ok,
    ...(marking.ok ? {} : { dscpReason: marking.reason ?? 'unknown' }),
    errors: 0,
    close: () => socket.close(),
  };
  return holder;
}

export interface TestPhaseOptions {
  /** The sender's test socket (openSenderTestSocket). */
  socket: TestPhaseSocket;
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
  /** DSCP the test packets were sent with (for the remarked count). */
  dscp?: number;
  /**
   * TWAMP: RFC 7750 DSCP and ECN Monitoring was chosen on the control
   * connection, so every reply carries S-DSCP-ECN (the DS byte our packet
   * arrived with at the reflector).
   */
  dscpEcn?: boolean;
  /**
   * Open STAMP: put an RFC 8972 Class of Service TLV (DSCP1 = `dscp`) first
   * in each packet, so a supporting reflector reports the DSCP and ECN our
   * packets arrived with (DSCP2, ECN) and marks its reply with DSCP1 when its
   * policy allows. Default true; packets with no room for it (under 52
   * octets) go without.
   */
  cos?: boolean;
  /**
   * No negotiation told us what the reflector does (TWAMP Light / STAMP):
   * when every reply's Sequence Number equals the sender's, take the
   * reflector as stateless and report round-trip loss only.
   */
  detectStatelessReflector?: boolean;
  onReply?: (received: number, sent: number) => void;
  onSample?: (sample: ReplySample) => void;
}

/** min / max of an observed integer; null when never observed (the datapath cannot read it). */
export type Observed = { min: number; max: number } | null;

/**
 * Hops and DSCP as received, per direction. Hop counts assume the far end
 * sent 255 (RFC 5357 §4.2.1, RFC 8762 §4.2); a peer that sends another TTL
 * shows as (255 − its TTL) extra hops.
 */
export interface PathObservations {
  outbound: {
    /** 255 − the Sender TTL the reflector echoed (RFC 5357 §4.2.1); null: no reply carried one (twampy's 38-octet replies). */
    hops: Observed;
    /** The Sender TTL values echoed. */
    senderTtl: Observed;
    /**
     * How the reflector reported the DS byte our packets arrived with:
     * 'rfc7750' (S-DSCP-ECN), 'cos-tlv' (RFC 8972 Class of Service TLV), or
     * null (neither: the DSCP / ECN as received at the reflector are unknown).
     */
    reportedBy: 'rfc7750' | 'cos-tlv' | null;
    /** DSCP our packets arrived with at the reflector (the most recent report), null when not reported. */
    dscp: number | null;
    /** ECN bits our packets arrived with at the reflector (the most recent report), null when not reported. */
    ecn: number | null;
    /** Reports whose DSCP differs from the one the test packets were sent with. */
    remarked: number;
    /** Replies that reported the DS byte. */
    tosSamples: number;
    /** STAMP CoS: replies whose reflector refused DSCP1 (RP = 1) and answered with the DSCP it received. */
    replyDscpRefused: number;
  };
  inbound: {
    /**
     * DSCP the reflector sent its replies with, as far as the sender knows:
     * the one asked for (Type-P, or CoS DSCP1), or the DSCP2 a CoS reply
     * reports when the reflector refused DSCP1 (the most recent reply).
     */
    dscpSent: number;
    /** 255 − received TTL / hop limit; null with the JS datapath. */
    hops: Observed;
    /** Received TTL / hop limit. */
    ttl: Observed;
    /** DSCP of the replies as received (the most recent), null when unknown. */
    dscp: number | null;
    /** ECN bits of the replies as received (the most recent), null when unknown. */
    ecn: number | null;
    /** Replies whose received DSCP differs from the one the test packets were sent with. */
    remarked: number;
    /** Replies with a known TOS / traffic class. */
    tosSamples: number;
  };
}

/** Where the session's timestamps came from. */
export interface TimestampInfo {
  /** The weaker of t1 and t4: what the round trip's error is bounded by. */
  source: TimestampSource;
  /** Own departure records: kernel TX timestamp ('kernel'/'hardware') or the stamp read before sendmsg ('userspace'). */
  t1: TimestampSource;
  /** Reply receive times. */
  t4: TimestampSource;
  datapath: 'native' | 'js';
  /** How departures were paced. */
  pacing: 'native-thread' | 'event-loop';
  /** Why the native datapath is not in use (datapath 'js'). */
  nativeUnavailable?: string;
  /** Departures whose record is the kernel's TX timestamp, of all recorded. */
  txTimestamped: number;
  /** Scheduled departures: sent − deadline, ns (native only). */
  departureErrorNs?: { p50: number; p99: number; max: number; samples: number };
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
  /** The reflector copied the sender's Sequence Number in every reply (only when detection was asked for). */
  reflectorStateless: boolean;
  /** UDP payload sizes of the valid replies, as received (e.g. 38 from twampy, 41 TWAMP, 44 STAMP). */
  replyPayload?: { min: number; max: number };
  /** UDP payload sizes sent. */
  requestPayload?: { min: number; max: number };
  /** Sends that failed (not counted as sent). */
  sendErrors: number;
  /** Replies whose echoed T1 differed from our own record of the departure's stamp (a reflector that garbles T1). */
  t1Mismatches: number;
  timestamps: TimestampInfo;
  path: PathObservations;
}

/** The test-packet format of a session (testFormat.ts): its protocol, security mode and RFC 7750 choice. */
export function sessionFormat(protocol: TestPacketFormat, mode: SecurityMode, dscpEcn = false): TestFormat {
  return testFormat(protocol, mode, { dscpEcn: protocol === 'twamp' && dscpEcn });
}

/** The sender header size of a format and mode (the smallest packet sent). */
export function senderHeaderSize(protocol: TestPacketFormat, mode: SecurityMode): number {
  return testFormat(protocol, mode).sender.size;
}

/** Departure states of the per-sequence table. */
/* 0: not sent (never scheduled) */
const SCHEDULED = 1;
const DEPARTED = 2;
const FAILED = 3;

/** How long after the last deadline the native departure reports may take before the phase stops waiting for them. */
const REPORT_GRACE_MS = 2000;

const SOURCE_RANK: Record<TimestampSource, number> = { userspace: 0, kernel: 1, hardware: 2 };
const weaker = (a: TimestampSource, b: TimestampSource): TimestampSource => (SOURCE_RANK[a] <= SOURCE_RANK[b] ? a : b);

function observe(o: Observed, v: number): Observed {
  if (o === null) return { min: v, max: v };
  if (v < o.min) o.min = v;
  if (v > o.max) o.max = v;
  return o;
}

interface PendingReply {
  r: ReflectorPacket;
  /** The DS byte our packet arrived with at the reflector, as reported (S-DSCP-ECN or CoS DSCP2/ECN); -1 when not reported. */
  reported: number;
  cos: ClassOfService | undefined;
  ee: ReturnType<typeof decodeErrorEstimate>;
  t4Ns: bigint;
  length: number;
  ttl: number;
  tos: number;
  tsSource: TimestampSource;
}

export async function runTestPhase(options: TestPhaseOptions): Promise<TestPhaseResult> {
  const format = options.format ?? 'twamp';
  const mode = options.mode ?? 'open';
  // Every offset, size and protection rule comes from the format table (protocol/testFormat.ts).
  const fmt = sessionFormat(format, mode, options.dscpEcn === true);
  const guard = packetGuard(fmt, { ...(options.keys ? { testKeys: options.keys } : {}), ...(options.stampKey ? { stampKey: options.stampKey } : {}) });
  const ssid = fmt.sender.ssid !== undefined ? (options.ssid ?? 0) : 0;
  const header = fmt.sender.size;
  const { model, overhead, clock, reflectorAddress, reflectorPort } = options;
  const n = Math.max(0, Math.floor(options.nPackets));
  const payloadOf = (sizeIp: number): number => Math.max(sizeIp - overhead, header);
  const holder = options.socket;
  const sock = holder.socket;
  const native = sock.kind === 'native';
  const askedDscp = options.dscp ?? 0;
  /** TLVs follow the base (STAMP): a CoS TLV first when asked for and the format's protection does not forbid it. */
  const tlvOffset = fmt.tlvOffset;
  // RFC 8972 §4.8: authenticated STAMP needs an HMAC TLV with any TLV but a lone Extra Padding; we send none.
  const cosTlv = tlvOffset !== undefined && fmt.sender.protection.hmac === undefined && options.cos !== false;
  /**
   * Where T1 sits when it is outside any protection (stamped at send time),
   * or undefined when the HMAC / encryption covers it (pre-stamped).
   */
  const stampOffset = fmt.sender.stampOffset;

  // The departure table (one entry per sequence number of this session).
  const state = new Uint8Array(n);
  const t1Ns = new BigInt64Array(n); // own record: TX timestamp, else the stamp
  const stampNtp = new BigUint64Array(n); // what we wrote as T1
  const sizes = new Uint32Array(n);
  let scheduledPending = 0;
  let txTimestamped = 0;
  let t1Source: TimestampSource | undefined;
  let t4Source: TimestampSource | undefined;
  const depErr: number[] = [];

  // Sent, answered, duplicates, delays: the statistics' own bookkeeping (measure/stats.ts), read live from here.
  const stats = new SessionStats();
  let sendErrors = 0;
  let invalid = 0;
  let badHmac = 0;
  let t1Mismatches = 0;
  let peerSynced = true;
  let allSeqEqual = true;
  let replyMin = Infinity;
  let replyMax = 0;
  let reqMin = Infinity;
  let reqMax = 0;
  const path: PathObservations = {
    outbound: { hops: null, senderTtl: null, reportedBy: null, dscp: null, ecn: null, remarked: 0, tosSamples: 0, replyDscpRefused: 0 },
    inbound: { dscpSent: askedDscp, hops: null, ttl: null, dscp: null, ecn: null, remarked: 0, tosSamples: 0 },
  };
  const queue: PendingReply[] = [];
  let qHead = 0;

  const recordDeparture = (seq: number, t1: bigint, source: TimestampSource, stamped: bigint): void => {
    state[seq] = DEPARTED;
    t1Ns[seq] = t1;
    stampNtp[seq] = stamped;
    t1Source = t1Source === undefined ? source : weaker(t1Source, source);
    if (source !== 'userspace') txTimestamped++;
    const payload = sizes[seq]!;
    stats.recordSent({ seq, sizeIp: payload + overhead, t1: ntpFromUnixNs(t1) });
    if (payload < reqMin) reqMin = payload;
    if (payload > reqMax) reqMax = payload;
  };

  /** Measures one reply with our own departure record (or counts it unexpected). */
  const measure = (p: PendingReply): void => {
    const { r, ee } = p;
    const seq = r.senderSeq;
    const ours = seq < n && state[seq] === DEPARTED;
    if (ours && r.senderTimestamp !== stampNtp[seq]) t1Mismatches++;
    // T2/T3 in the format the reflector's Z bit says (NTP or PTPv2 truncated); T1 and T4 are ours.
    const sample: ReplySample = {
      senderSeq: seq, reflectorSeq: r.seq,
      t1: ours ? ntpFromUnixNs(t1Ns[seq]!) : r.senderTimestamp,
      t2: reflectorTimestampToNtp(r.receiveTimestamp, ee.z), t3: reflectorTimestampToNtp(r.timestamp, ee.z),
      t4: ntpFromUnixNs(p.t4Ns), sizeIp: p.length + overhead,
    };
    stats.recordReply(sample);
    if (!ours) return;
    t4Source = t4Source === undefined ? p.tsSource : weaker(t4Source, p.tsSource);
    if (r.senderTtl !== undefined) {
      path.outbound.senderTtl = observe(path.outbound.senderTtl, r.senderTtl);
      path.outbound.hops = observe(path.outbound.hops, 255 - r.senderTtl);
    }
    if (p.ttl >= 0) {
      path.inbound.ttl = observe(path.inbound.ttl, p.ttl);
      path.inbound.hops = observe(path.inbound.hops, 255 - p.ttl);
    }
    // The DS byte our packet arrived with, as the reflector reported it (RFC 7750 S-DSCP-ECN or the RFC 8972 CoS TLV).
    let replySent = askedDscp;
    const out = path.outbound;
    if (p.reported >= 0) {
      out.reportedBy = p.cos ? 'cos-tlv' : 'rfc7750';
      out.tosSamples++;
      out.dscp = p.reported >> 2;
      out.ecn = p.reported & 3;
      if (p.reported >> 2 !== askedDscp) out.remarked++;
      // RP = 1: the reflector's policy refused DSCP1 and it answered with the DSCP it received (RFC 8972 §4.4).
      if (p.cos?.rp === 1) { out.replyDscpRefused++; replySent = p.cos.dscp2; }
    }
    if (p.tos >= 0) {
      path.inbound.tosSamples++;
      path.inbound.dscpSent = replySent;
      path.inbound.dscp = p.tos >> 2;
      path.inbound.ecn = p.tos & 3;
      if (p.tos >> 2 !== replySent) path.inbound.remarked++;
    }
    options.onSample?.(sample);
    options.onReply?.(stats.answeredPackets, stats.sentPackets);
  };

  /** Measures queued replies in arrival order; stops at one whose departure is not reported yet. */
  const drain = (final = false): void => {
    while (qHead < queue.length) {
      const p = queue[qHead]!;
      const seq = p.r.senderSeq;
      if (seq < n && state[seq] === SCHEDULED && !final) break;
      queue[qHead++] = undefined as unknown as PendingReply;
      measure(p);
    }
    if (qHead === queue.length) {
      queue.length = 0;
      qHead = 0;
    }
  };

  const onPackets = (batch: RxDatagram[]): void => {
    for (const d of batch) {
      const msg = d.data;
      if (d.port !== reflectorPort || unmapAddress(d.address) !== reflectorAddress || d.truncated) { invalid++; continue; }
      let r: ReflectorPacket;
      let cos: ClassOfService | undefined;
      try {
        if (!guard.unprotectReflector(msg, msg.length)) { badHmac++; invalid++; continue; }
        r = decodeReply(msg, msg.length, fmt);
        if (cosTlv) cos = findAnsweredCos(msg, msg.length, tlvOffset);
      } catch (e) {
        if (e instanceof DecodeError) { invalid++; continue; }
        throw e;
      }
      // RFC 8972 §3: a reflector without SSID support returns 0; any other value is not our session.
      if (fmt.reflector.ssid !== undefined && r.ssid !== ssid && r.ssid !== 0) { invalid++; continue; }
      // The reflector's Error Estimate covers T2/T3: S bit says whether its clock is synced;
      // Multiplier 0 is invalid (RFC 4656 §4.1.2): keep the sample, but trust no sync claim.
      const ee = decodeErrorEstimate(r.errorEstimate);
      if (!ee.synchronized || ee.multiplier === 0) peerSynced = false;
      if (r.seq !== r.senderSeq) allSeqEqual = false;
      if (msg.length < replyMin) replyMin = msg.length;
      if (msg.length > replyMax) replyMax = msg.length;
      const reported = cos ? (cos.dscp2 << 2) | cos.ecn : r.sDscpEcn ?? -1;
      queue.push({ r, reported, cos, ee, t4Ns: d.rxRealtimeNs, length: msg.length, ttl: d.ttl, tos: d.tos, tsSource: d.tsSource });
    }
    drain();
  };

  const onDeparture = (reports: DepartureReport[]): void => {
    for (const d of reports) {
      const seq = d.id;
      if (!(seq >= 0 && seq < n) || state[seq] !== SCHEDULED) continue;
      scheduledPending--;
      if (d.error !== undefined) {
        state[seq] = FAILED;
        sendErrors++;
        continue;
      }
      depErr.push(Number(d.sentMonoNs - d.deadlineMonoNs));
      const tx = d.txRealtimeNs;
      recordDeparture(seq, tx ?? d.stampedRealtimeNs, tx !== undefined ? (d.txSource ?? 'kernel') : 'userspace',
        stampOffset !== undefined ? ntpFromUnixNs(d.stampedRealtimeNs) : stampNtp[seq]!);
    }
    drain();
  };

  holder.onPackets = (b) => {
    try {
      onPackets(b);
    } catch {
      invalid++; // nothing a peer sends may end the session
    }
  };
  holder.onDeparture = onDeparture;
  try {
    const padding = randomBytes(Math.max(0, payloadOf(model.maxSizeIp) - header));
    const errorEstimate = clock.errorEstimate;
    /** Builds packet seq with T1 = t1 (0 when it will be stamped at the send); returns it and the gap to the next. */
    const build = (seq: number, t1: bigint): { buf: Buffer; gapNs: number } => {
      const shape = model.packet(seq);
      const payload = payloadOf(shape.sizeIp);
      sizes[seq] = payload;
      const buf = Buffer.allocUnsafe(payload);
      padding.copy(buf, header, 0, payload - header);
      if (tlvOffset !== undefined) {
        // STAMP: TLVs after the base (RFC 8972 §4, U set by the sender): a Class of Service TLV asking
        // for our DSCP on the reply, then the extra length as one Extra Padding TLV; 1–3 spare octets stay zero.
        let at = tlvOffset;
        if (cosTlv && payload - at >= COS_TLV_SIZE) {
          writeCosTlv(buf, at, askedDscp);
          at += COS_TLV_SIZE;
        }
        const extra = payload - at;
        if (extra >= TLV_HEADER_SIZE) {
          buf[at] = TLV_FLAG_U;
          buf[at + 1] = TLV_TYPE_EXTRA_PADDING;
          writeU16(buf, at + 2, extra - TLV_HEADER_SIZE);
        } else if (extra > 0) {
          buf.fill(0, at, payload);
        }
      }
      writeSenderHeader(buf, fmt, { seq, timestamp: t1, errorEstimate, ssid });
      // Protection after every covered field is final; T1 outside it (stampOffset) is written at the send.
      guard.protectSender(buf, payload);
      return { buf, gapNs: shape.gapNs };
    };

    if (native) {
      // Departures at absolute deadlines from the native scheduler thread; no event-loop polling.
      const realOffset = (): bigint => clock.nowUnixNs() - clock.monoNs();
      let offset = realOffset();
      let lastRefresh = clock.monoNs();
      const { lastDeadlineMonoNs } = await new ScheduledSender(clock).run(n, (seq, deadline) => {
        let t1 = 0n;
        if (stampOffset === undefined) {
          // Pre-stamped: T1 is the deadline's CLOCK_REALTIME (the offset re-read every 100 ms follows NTP).
          const now = clock.monoNs();
          if (now - lastRefresh > 100_000_000n) { offset = realOffset(); lastRefresh = now; }
          t1 = ntpFromUnixNs(deadline + offset);
          stampNtp[seq] = t1;
        }
        const { buf, gapNs } = build(seq, t1);
        sock.schedule({
          id: seq, deadlineMonoNs: deadline, data: buf, address: reflectorAddress, port: reflectorPort,
          ...(stampOffset !== undefined ? { stampOffset } : {}),
        });
        state[seq] = SCHEDULED;
        scheduledPending++;
        return gapNs;
      }, options.signal);
      // Every departure reported (bounded: the thread reports shortly after each deadline).
      const reportsDue = Number(lastDeadlineMonoNs - clock.monoNs()) / 1e6 + REPORT_GRACE_MS;
      await waitUntil(() => scheduledPending <= 0, Math.max(0, reportsDue), options.signal);
    } else {
      await new PacedSender(clock).run(n, (seq) => {
        let t1 = 0n;
        // T1 protected (pre-stamped layouts): read the clock, protect, send — as close as JS can.
        if (stampOffset === undefined) t1 = clock.nowNtp();
        const { buf, gapNs } = build(seq, t1);
        try {
          const res = sock.send(buf, reflectorAddress, reflectorPort, stampOffset !== undefined ? { stampOffset } : {});
          if (stampOffset === undefined) recordDeparture(seq, res.stampedRealtimeNs, 'userspace', t1);
          else recordDeparture(seq, res.stampedRealtimeNs, 'userspace', ntpFromUnixNs(res.stampedRealtimeNs));
        } catch {
          state[seq] = FAILED;
          sendErrors++;
        }
        return gapNs;
      }, options.signal);
    }
    // Wait for stragglers: until every packet is answered or the reply timeout passes.
    await waitUntil(() => stats.answeredPackets >= n, options.replyTimeoutMs, options.signal);
  } finally {
    holder.onPackets = undefined;
    holder.onDeparture = undefined;
  }
  drain(true);
  const reflectorStateless = (options.detectStatelessReflector ?? false) && stats.answeredPackets > 0 && allSeqEqual;
  if (reflectorStateless) stats.markStatelessReflector();
  const sortedErr = Float64Array.from(depErr).sort();
  const rxSource = t4Source ?? sock.timestampSource();
  const txSource = t1Source ?? (native ? 'kernel' : 'userspace');
  const pacing = sock.schedulerStatus().pacing === 'native-thread' ? 'native-thread' : 'event-loop';
  const timestamps: TimestampInfo = {
    source: weaker(rxSource, txSource), t1: txSource, t4: rxSource, datapath: sock.kind, pacing, txTimestamped,
    ...(sock.fallbackReason !== undefined ? { nativeUnavailable: sock.fallbackReason } : {}),
    ...(sortedErr.length > 0 ? {
      departureErrorNs: {
        p50: quantile(sortedErr, 0.5)!, p99: quantile(sortedErr, 0.99)!, max: sortedErr[sortedErr.length - 1]!, samples: sortedErr.length,
      },
    } : {}),
  };
  const result: TestPhaseResult = {
    stats: stats.result(),
    rtSamplesNs: stats.delaySamples('rt'),
    invalidReplies: invalid + holder.errors,
    badHmacReplies: badHmac,
    peerSynced,
    reflectorStateless,
    sendErrors,
    t1Mismatches,
    timestamps,
    path,
  };
  if (replyMax > 0) result.replyPayload = { min: replyMin, max: replyMax };
  if (reqMax > 0) result.requestPayload = { min: reqMin, max: reqMax };
  return result;
}

/** Resolve when cond() holds (checked every 5 ms) or after timeoutMs. */
function waitUntil(cond: () => boolean, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const deadline = Date.now() + timeoutMs;
    const check = (): void => {
      if (cond() || Date.now() >= deadline || signal?.aborted) { resolve(); return; }
      setTimeout(check, 5);
    };
    check();
  });
}
