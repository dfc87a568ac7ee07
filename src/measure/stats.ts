// Per-session statistics of a TWAMP sender, from T1..T4 (RFC 5357 §4.1.2,
// §4.2.1).
//
// Pure math: timestamps come in as 64-bit NTP values (bigint, seconds << 32 |
// fraction, RFC 5905 §6); nothing here reads a clock. Memory is O(n) in typed
// arrays indexed by sender sequence number; no per-packet objects are kept.

import { quantile } from './percentiles.js';

/** A test packet as it left the sender. */
export interface SentSample {
  seq: number;
  /** IP packet size: UDP payload + IP/UDP headers. */
  sizeIp: number;
  t1: bigint;
}

/** A reflected packet, in arrival order. */
export interface ReplySample {
  /** Sender Sequence Number copied by the reflector. */
  senderSeq: number;
  /** The reflector's own Sequence Number (RFC 5357 §4.2.1). */
  reflectorSeq: number;
  /** Sender Timestamp copied by the reflector. */
  t1: bigint;
  /** Receive Timestamp (reflector clock). */
  t2: bigint;
  /** Timestamp: reflector transmit time (reflector clock). */
  t3: bigint;
  /** Local receive time (sender clock). */
  t4: bigint;
  /** Reply UDP payload + IP/UDP headers. */
  sizeIp: number;
}

export interface DirectionStats {
  /** Delay samples: one per sender packet answered (first reply only). */
  samples: number;
  minDelayNs?: number;
  /** Nearest-rank percentiles of the delay samples (every value is a measured delay). */
  p50DelayNs?: number;
  p90DelayNs?: number;
  p99DelayNs?: number;
  maxDelayNs?: number;
  avgDelayNs?: number;
  jitterNs?: number;
  /** Lost packets (a count, as the reference agent exports), never negative. */
  loss: number;
}

export interface SessionResult {
  txPackets: number;
  rxPackets: number;
  txBytes: number;
  rxBytes: number;
  durationNs: number;
  txPps: number;
  rxPps: number;
  txBitrate: number;
  rxBitrate: number;
  /** Sender → reflector, T2 − T1. */
  out: DirectionStats;
  /** Reflector → sender, T4 − T3. */
  in: DirectionStats;
  /** Round trip, (T4 − T1) − (T3 − T2). */
  rt: DirectionStats;
  duplicates: number;
  reordered: number;
  unexpected: number;
  /** Reflector residence time T3 − T2. */
  residence: { minNs?: number; maxNs?: number; avgNs?: number };
}

export interface SessionStatsOptions {
  /**
   * The reflector copies the sender's sequence number instead of counting
   * its own (a stateless TWAMP Light reflector, RFC 5357 Appendix I). Then
   * forward and backward loss cannot be told apart: all loss is reported in
   * `rt` only, and `out.loss` / `in.loss` are 0. Default false (RFC 5357
   * §4.2.1 reflectors keep a per-session counter).
   */
  statelessReflector?: boolean;
}

const TWO_POW_32 = 4294967296;
/** Session length cap: the typed arrays cost 4.25 octets per packet (272 MB at the cap). */
const MAX_PACKETS = 2 ** 26;

/**
 * a − b in nanoseconds for 64-bit NTP timestamps. The difference is taken as
 * a signed 64-bit value, so it is negative when a is earlier and correct
 * across the 2036 NTP era wrap; ns = round(diff · 1e9 / 2^32), ties upward.
 */
export function ntpDiffNs(a: bigint, b: bigint): number {
  return ntpUnitsToNs(BigInt.asIntN(64, a - b));
}

function ntpUnitsToNs(units: bigint): number {
  // >> on bigint floors, so adding half a unit first rounds like Math.round.
  return Number((units * 1_000_000_000n + 2_147_483_648n) >> 32n);
}

/**
 * min / max / exact mean / RFC 3550 jitter of one delay series in arrival
 * order.
 *
 * Jitter (RFC 3550 §6.4.1): J += (|D| − J)/16 with D the difference between
 * consecutive delay samples, which equals (R_i − R_{i−1}) − (S_i − S_{i−1}).
 * Seeded from the first sample (J = 0 after it), unlike the reference agent,
 * which differences the first delay against 0 and so reports ~0.7 ms of
 * jitter for a constant 20 ms delay. Kept in floating point and rounded to
 * ns on report, so small deltas are not truncated away.
 */
class DelaySeries {
  count = 0;
  min = 0;
  max = 0;
  /** Exact: a sum of up to 2^26 delays in ns can pass 2^53. */
  sum = 0n;
  jitter = 0;
  private last = 0;
  /** Every sample in arrival order, for percentiles and histograms (8 octets per packet). */
  private samples = new Float64Array(256);

  add(ns: number): void {
    if (this.count === this.samples.length) {
      const grown = new Float64Array(this.samples.length * 2);
      grown.set(this.samples);
      this.samples = grown;
    }
    this.samples[this.count] = ns;
    if (this.count === 0) {
      this.min = ns;
      this.max = ns;
    } else {
      if (ns < this.min) this.min = ns;
      if (ns > this.max) this.max = ns;
      this.jitter += (Math.abs(ns - this.last) - this.jitter) / 16;
    }
    this.last = ns;
    this.sum += BigInt(ns);
    this.count++;
  }

  /** Mean rounded to the nearest ns (ties toward +∞), undefined without samples. */
  avg(): number | undefined {
    if (this.count === 0) return undefined;
    const n = BigInt(this.count);
    // floor((2·sum + n) / 2n) = round(sum / n); bigint / truncates, so floor by hand.
    const num = 2n * this.sum + n;
    const den = 2n * n;
    const q = num / den;
    return Number(num % den < 0n ? q - 1n : q);
  }

  /** A copy of the samples in arrival order. */
  values(): Float64Array {
    return this.samples.slice(0, this.count);
  }

  stats(loss: number): DirectionStats {
    if (this.count === 0) return { samples: 0, loss };
    const sorted = this.values().sort();
    return {
      samples: this.count,
      minDelayNs: this.min,
      maxDelayNs: this.max,
      p50DelayNs: quantile(sorted, 0.5)!,
      p90DelayNs: quantile(sorted, 0.9)!,
      p99DelayNs: quantile(sorted, 0.99)!,
      avgDelayNs: this.avg()!,
      jitterNs: Math.round(this.jitter),
      loss,
    };
  }
}

/** Earliest and latest of a set of timestamps, and the size sent/received at the latest. */
class Span {
  private origin: bigint | undefined;
  /** Offsets from the first timestamp seen, in NTP units (signed). */
  private lo = 0n;
  private hi = 0n;
  sizeAtLatest = 0;

  add(t: bigint, sizeIp: number): void {
    if (this.origin === undefined) {
      this.origin = t;
      this.sizeAtLatest = sizeIp;
      return;
    }
    const off = BigInt.asIntN(64, t - this.origin);
    if (off < this.lo) this.lo = off;
    if (off >= this.hi) {
      this.hi = off;
      this.sizeAtLatest = sizeIp;
    }
  }

  ns(): number {
    return ntpUnitsToNs(this.hi - this.lo);
  }
}

/**
 * Rates over the span between the first and the last packet: N packets
 * delimit N − 1 intervals, so pps = (N − 1)/span and the bitrate counts the
 * bits of every packet but the last. A model's packets then give its exact
 * rate (100 g711 packets 20 ms apart: 1.98 s, 50 pps, 80 000 bit/s), where
 * the reference's N/span overstates it by one packet. 0 below 2 packets.
 */
function rates(packets: number, bytes: number, span: Span): { pps: number; bitrate: number } {
  const spanNs = span.ns();
  if (packets < 2 || spanNs <= 0) return { pps: 0, bitrate: 0 };
  return {
    pps: ((packets - 1) * 1e9) / spanNs,
    bitrate: ((bytes - span.sizeAtLatest) * 8 * 1e9) / spanNs,
  };
}

/** A bitset that grows by doubling. */
class GrowableBits {
  private words = new Uint32Array(1024);
  has(i: number): boolean {
    const w = i >>> 5;
    return w < this.words.length && (this.words[w]! & (1 << (i & 31))) !== 0;
  }
  set(i: number): void {
    const w = i >>> 5;
    if (w >= this.words.length) this.words = grow(this.words, w + 1);
    this.words[w]! |= 1 << (i & 31);
  }
}

function grow(a: Uint32Array<ArrayBuffer>, need: number): Uint32Array<ArrayBuffer> {
  let len = a.length;
  while (len < need) len *= 2;
  const b = new Uint32Array(len);
  b.set(a);
  return b;
}

/**
 * Accumulates one TWAMP-Test session and derives its statistics.
 *
 * Sender sequence numbers are indexed relative to the first one recorded
 * (mod 2^32), so a session may start at any number and wrap; they are
 * expected to increase by one per packet (RFC 4656 §4.1.2). Record a packet
 * before its reply can arrive.
 *
 * Per sender packet only the FIRST reply is a sample (delays, jitter,
 * rxPackets, rxBytes, rx rates); later copies are counted in `duplicates`.
 * Hence rt.loss = txPackets − rxPackets.
 */
export class SessionStats {
  private stateless: boolean;

  private base: number | undefined;
  private txPackets = 0;
  private txBytes = 0;
  private readonly txSpan = new Span();
  private readonly sent = new GrowableBits();
  private sentLimit = 0; // 1 + highest sent index

  private readonly answered = new GrowableBits();
  /** Reflector seq of the first reply per sender index. */
  private firstReflectorSeq = new Uint32Array(1024);
  /** Reflector seqs of forward duplicates (rare), to spot their backward copies. */
  private readonly extraReflectorSeqs = new Set<number>();
  private rxPackets = 0;
  private rxBytes = 0;
  private readonly rxSpan = new Span();
  private maxAnswered = -1; // highest answered sender index
  private maxReflectorSeq = -1;
  private forwardDuplicates = 0;

  private duplicates = 0;
  private reordered = 0;
  private unexpected = 0;

  private readonly out = new DelaySeries();
  private readonly in = new DelaySeries();
  private readonly rt = new DelaySeries();
  private readonly residence = new DelaySeries();

  /** Delay samples of a direction (ns, arrival order, first reply per packet), e.g. for a histogram. */
  delaySamples(direction: 'out' | 'in' | 'rt'): Float64Array {
    return this[direction].values();
  }

  /** Packets recorded as sent so far (result().txPackets, live). */
  get sentPackets(): number {
    return this.txPackets;
  }

  /**
   * Distinct sent packets answered so far: first replies only, not
   * duplicates nor replies to packets never sent (result().rxPackets, live).
   * A sender waiting for stragglers stops when this reaches the packets sent.
   */
  get answeredPackets(): number {
    return this.rxPackets;
  }

  constructor(options: SessionStatsOptions = {}) {
    this.stateless = options.statelessReflector ?? false;
  }

  /**
   * Switches to `statelessReflector` after the fact, for a sender that only
   * learns it from the replies (TWAMP Light / STAMP have no negotiation: a
   * reflector whose Sequence Number equalled the sender's in every reply is
   * taken as stateless). Only valid while every reply recorded so far had
   * reflectorSeq === senderSeq: then recording was identical in both modes
   * (duplicates carry the first reply's reflector seq and count as backward
   * copies), and only result() differs.
   */
  markStatelessReflector(): void {
    this.stateless = true;
  }

  /** Records a departure. bytes = Σ sizeIp; duration spans the T1 values. */
  recordSent(s: SentSample): void {
    checkSeq(s.seq, 'seq');
    if (this.base === undefined) this.base = s.seq;
    const i = (s.seq - this.base) >>> 0;
    if (i >= MAX_PACKETS) throw new RangeError(`seq ${s.seq}: more than ${MAX_PACKETS} packets in one session`);
    this.sent.set(i);
    if (i >= this.sentLimit) this.sentLimit = i + 1;
    this.txPackets++;
    this.txBytes += s.sizeIp;
    this.txSpan.add(s.t1, s.sizeIp);
  }

  /**
   * Records a reply, in arrival order.
   * - A reply to a sequence number never sent is `unexpected` and ignored.
   * - Backward duplicate (same sender and reflector seq as a reply already
   *   seen): counted in `duplicates`, otherwise ignored.
   * - Forward duplicate (same sender seq, new reflector seq: the reflector
   *   received the packet twice): counted in `duplicates`, and as a
   *   reflection the reflector sent, for the loss split; not a new sample.
   * - Reordered (RFC 4737 §3): the sender seq is lower than the highest
   *   already answered. Counted on first replies, i.e. round-trip order.
   * One-way delays are SIGNED: without synchronised clocks T2 − T1 and
   * T4 − T3 carry the clock offset with opposite signs, and an absolute value
   * (as the reference takes) would hide it; presenting them is the caller's
   * choice. The round trip excludes the reflector's residence T3 − T2.
   */
  recordReply(r: ReplySample): void {
    checkSeq(r.senderSeq, 'senderSeq');
    checkSeq(r.reflectorSeq, 'reflectorSeq');
    if (this.base === undefined) {
      this.unexpected++;
      return;
    }
    const i = (r.senderSeq - this.base) >>> 0;
    if (i >= this.sentLimit || !this.sent.has(i)) {
      this.unexpected++;
      return;
    }
    if (this.answered.has(i)) {
      this.duplicates++;
      if (this.stateless) return; // copies of the sender seq cannot be told apart
      const rs = r.reflectorSeq;
      if (rs === this.firstReflectorSeq[i] || this.extraReflectorSeqs.has(rs)) return; // backward
      this.extraReflectorSeqs.add(rs);
      this.forwardDuplicates++;
      if (rs > this.maxReflectorSeq) this.maxReflectorSeq = rs;
      return;
    }

    this.answered.set(i);
    if (i >= this.firstReflectorSeq.length) this.firstReflectorSeq = grow(this.firstReflectorSeq, i + 1);
    this.firstReflectorSeq[i] = r.reflectorSeq;
    if (r.reflectorSeq > this.maxReflectorSeq) this.maxReflectorSeq = r.reflectorSeq;
    if (i < this.maxAnswered) this.reordered++;
    else this.maxAnswered = i;

    this.rxPackets++;
    this.rxBytes += r.sizeIp;
    this.rxSpan.add(r.t4, r.sizeIp);

    const fwd = BigInt.asIntN(64, r.t2 - r.t1);
    const back = BigInt.asIntN(64, r.t4 - r.t3);
    const res = BigInt.asIntN(64, r.t3 - r.t2);
    this.out.add(ntpUnitsToNs(fwd));
    this.in.add(ntpUnitsToNs(back));
    // In NTP units first, then one rounding: (T4 − T1) − (T3 − T2) = fwd + back.
    this.rt.add(ntpUnitsToNs(fwd + back));
    this.residence.add(ntpUnitsToNs(res));
  }

  /**
   * Loss counts (RFC 5357 §4.2.1 split of forward and backward loss), each clamped at 0:
   * - rt  = packets sent − distinct sender packets answered (RFC 6673).
   * - out = packets up to the highest answered sender seq that the reflector
   *   never saw: (max senderSeq + 1) − (reflections sent − forward duplicates),
   *   where reflections sent = max reflectorSeq + 1.
   * - in  = reflections sent − distinct reflections received.
   * Losses after the last answered packet (the tail) cannot be attributed to
   * a direction and appear in rt only; so does all loss with a stateless
   * reflector. A forward duplicate whose copy was lost counts in `in`.
   *
   * Bytes and rates: see `rates`; durationNs spans the first to the last T1
   * (as the reference's sender time), rx rates span the T4 of first replies.
   */
  result(): SessionResult {
    const rtLoss = Math.max(0, this.txPackets - this.rxPackets);
    let outLoss = 0;
    let inLoss = 0;
    if (!this.stateless && this.rxPackets > 0) {
      const reflectionsSent = this.maxReflectorSeq + 1;
      const reflectionsReceived = this.rxPackets + this.forwardDuplicates;
      outLoss = Math.max(0, this.maxAnswered + 1 - (reflectionsSent - this.forwardDuplicates));
      inLoss = Math.max(0, reflectionsSent - reflectionsReceived);
    }
    const tx = rates(this.txPackets, this.txBytes, this.txSpan);
    const rx = rates(this.rxPackets, this.rxBytes, this.rxSpan);
    const res = this.residence;
    return {
      txPackets: this.txPackets,
      rxPackets: this.rxPackets,
      txBytes: this.txBytes,
      rxBytes: this.rxBytes,
      durationNs: this.txPackets > 0 ? this.txSpan.ns() : 0,
      txPps: tx.pps,
      rxPps: rx.pps,
      txBitrate: tx.bitrate,
      rxBitrate: rx.bitrate,
      out: this.out.stats(outLoss),
      in: this.in.stats(inLoss),
      rt: this.rt.stats(rtLoss),
      duplicates: this.duplicates,
      reordered: this.reordered,
      unexpected: this.unexpected,
      residence:
        res.count === 0 ? {} : { minNs: res.min, maxNs: res.max, avgNs: res.avg()! },
    };
  }
}

function checkSeq(seq: number, what: string): void {
  if (!Number.isInteger(seq) || seq < 0 || seq >= TWO_POW_32) {
    throw new RangeError(`${what} must be a 32-bit unsigned integer, got ${seq}`);
  }
}
