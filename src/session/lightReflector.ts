/**
 * TWAMP-Light / STAMP Session-Reflector (RFC 5357 Appendix I, RFC 8762,
 * RFC 8972 SSID): one UDP socket, no TWAMP-Control, answers any sender.
 *
 * - Stateless (default): the reply's Sequence Number is the sender's
 *   (RFC 8762 §4.3 / RFC 5357 Appendix I), so the sender can measure only
 *   round-trip loss.
 * - Stateful: one counter per sender, identified by its 4-tuple and, for
 *   packets long enough to carry one, the SSID (RFC 8972 §3); the sender can
 *   then split forward and backward loss. A sender idle for `idleMs` is
 *   forgotten (its next packet starts again at 0), and at most `maxSenders`
 *   are remembered (the least recently seen is forgotten first).
 *
 * With no session set-up anyone can aim this port at a victim by spoofing
 * the source address, so Light must not become an amplifier or a reflector
 * of floods (README "Security"):
 * - replies are never larger than max(request, 44) octets (RFC 8762 §4.6),
 *   and with `symmetricOnly` requests shorter than their reply (under 44
 *   octets) are not answered at all (RFC 5357 §4.1.2 asks senders to pad for
 *   this reason); requests shorter than 14 octets are dropped;
 * - a reply never goes where replyTargetProblem (address.ts) says it must
 *   not: port 0, ports below 1024 not in `allowReplyPorts`, multicast,
 *   broadcast or unspecified addresses;
 * - budgets, each a token bucket holding one second's worth: per source
 *   address `ratePps` packets and `maxOctetsPerSource` reply octets per
 *   second, and for all sources together `maxPps` packets and `maxOctets`
 *   octets per second (octets at IP level, as `reflectedOctets`), so
 *   spoofed sources spread over many addresses cannot multiply the output.
 *   The per-source budgets are spent before the HMAC check (bounding that
 *   work per source), the global ones only by packets that passed it, so
 *   unauthenticated garbage cannot use up the authenticated senders' share.
 * Everything not answered counts in `droppedPackets` and in one of the
 * counters below. Nothing a peer sends throws past the socket handler: an
 * unexpected exception is counted in `errors` and logged at most once a
 * minute.
 *
 * Authenticated STAMP (RFC 8762 §4.2.2/§4.3.2): with `authKey` set, only
 * packets of ≥ 112 octets whose HMAC-SHA-256/128 over octets 0–95 verifies
 * under that key are answered, with the 112-octet authenticated reflector
 * layout (SSID at 26–27) and its own HMAC; everything else (shorter,
 * unauthenticated or wrongly keyed packets) is dropped and counted in
 * `droppedPackets`, `authFailed` and through `onRefused('hmac')`. STAMP has
 * no key id on the wire, so one key serves the whole port; RFC 8762 leaves
 * key distribution out of scope, and the HMAC key is the configured secret's
 * octets. Replays are dropped (`replayed`): per sender (address, port, SSID)
 * an anti-replay window of the last 1024 sequence numbers, as IPsec's
 * (RFC 4303 §3.4.3), refuses a sequence number seen before or older than
 * the window. A sender that restarts its sequence from 0 with the same
 * address, port and SSID is recognised by a Timestamp (T1, HMAC-covered)
 * newer than any seen from it, and gets a new window; a packet whose T1 is
 * older than the first packet of the current window is refused. Octets after
 * the HMAC-covered part are never echoed (buildStampAuthReflection).
 *
 * Wire truth (test-socket datapath, datapath.ts; node:dgram when the native
 * helper is unavailable, with the JS clock and TTL/TOS unknown):
 *  - T2 is the kernel's receive timestamp of the request;
 *  - T3 is written by the datapath right before sendmsg (unauthenticated
 *    Light/STAMP); authenticated STAMP covers T3 with its HMAC, so T3 is read
 *    in JavaScript, then the reply is signed and sent (T3 precedes the real
 *    departure by the HMAC and the send call, a few µs);
 *  - Sender TTL (RFC 5357 §4.2.1, RFC 8762 §4.3.1/§4.3.2) is the request's
 *    received TTL / Hop Limit, 255 only when it cannot be read;
 *  - every reply leaves with TTL / Hop Limit 255, IPv4 peers of a dual-stack
 *    IPv6 socket included (the datapath sets IP_TTL and IPV6_UNICAST_HOPS);
 *  - a reply carries the DSCP of its request (ECN bits 0), or the DSCP1 of
 *    an RFC 8972 Class of Service TLV when `cosAllowDscp` permits it (README
 *    "Security": by default only the DSCP the request arrived with, so a
 *    spoofed request cannot obtain a marking the network would not carry to
 *    us); the CoS TLV comes back with DSCP2 and ECN as received and RP = 1
 *    when DSCP1 was refused. Each reply carries its DSCP as a per-packet
 *    TOS / traffic class (udp.ts ReplySender, datapath.ts SendOptions.tos);
 *  - the replies of one received batch (recvmmsg) leave with one sendmmsg.
 * STAMP or TWAMP-Light: `lightFormat` (stamp.ts isStampRequest) decides
 * whether octets 14–15 of a request are an SSID to copy into the reply.
 */
import { isIPv6 } from 'node:net';
import type { RemoteInfo } from 'node:dgram';
import {
  buildReply, replyLength, testFormat, packetGuard, decodeSenderHeader, lightRequestKey, ntpFromUnixNs, writeTimestamp,
  type CosReflection, type LightFormat, type PacketGuard, type TestFormat,
} from '../protocol/index.js';
import { ipOverhead } from '../measure/models.js';
import type { Clock } from './clock.js';
import { replyTargetProblem } from './address.js';
import { unmapAddress, formatHostPort } from '../util/net.js';
import { RateLimitedLog, TokenBucket } from './limits.js';
import { silentLogger, type Logger } from '../util/log.js';
import { ReplySender, openReflectorSocket, type ReplyItem } from './udp.js';
import { datapathSupport, type RxDatagram, type TestSocket, type TimestampSource } from './datapath.js';
import type { ReflectorCounters } from './reflectorSession.js';

export const DEFAULT_LIGHT_RATE_PPS = 1000;
/** Replies per second from all sources together (`light_max_pps`). */
export const DEFAULT_LIGHT_MAX_PPS = 10_000;
/** Reply octets (IP level) per second to one source address (`light_max_octets_per_source`): 10 Mbit/s. */
export const DEFAULT_LIGHT_MAX_OCTETS_PER_SOURCE = 1_250_000;
/** Reply octets (IP level) per second to all sources together (`light_max_octets`): 100 Mbit/s. */
export const DEFAULT_LIGHT_MAX_OCTETS = 12_500_000;
/** Sequence numbers remembered per authenticated sender (RFC 4303 §3.4.3 anti-replay window). */
export const REPLAY_WINDOW = 1024;
const DEFAULT_IDLE_MS = 900_000;
/** SO_RCVBUF of the Light socket (the kernel caps it at net.core.rmem_max). */
const RECV_BUFFER_OCTETS = 4 * 1024 * 1024;
const DEFAULT_MAX_SENDERS = 65_536;

/** Reasons the Light reflector reports through `onRefused` (a subset of the reflector's `refused` reasons). */
export type LightRefusalReason = 'hmac';

/** Where a reply goes: the part of a dgram socket the reflector uses (a fake in unit tests). */
export interface LightReplySocket {
  send(msg: Uint8Array, offset: number, length: number, port: number, address: string): void;
}

export interface LightReflectorOptions {
  host: string;
  port: number;
  clock: Clock;
  /** Per-sender sequence numbers (forward/backward loss split); default stateless. */
  stateful?: boolean;
  /** Packets per second accepted from one source address; default 1000. */
  ratePps?: number;
  /** Replies per second to all sources together; default 10000. */
  maxPps?: number;
  /** Reply octets (IP level) per second to one source address; default 1,250,000. */
  maxOctetsPerSource?: number;
  /** Reply octets (IP level) per second to all sources together; default 12,500,000. */
  maxOctets?: number;
  /** Answer only requests at least as long as their reply (≥ 44 octets): no amplification at all. Default false. */
  symmetricOnly?: boolean;
  /** Ports below 1024 replies may go to (`allow_reply_ports`); default none (replyTargetProblem). */
  allowReplyPorts?: ReadonlySet<number>;
  /** Stateful mode: forget a sender after this long without packets; default 900 s (REFWAIT). */
  idleMs?: number;
  /** Stateful mode and replay windows: most senders remembered at once; default 65536. */
  maxSenders?: number;
  /** Where reflected/dropped packets are counted (may be shared with the TWAMP-Control server's counters). */
  counters: ReflectorCounters;
  /** Counts a refusal by reason in the reflector's `refused` map ('hmac': an authenticated STAMP packet failed its HMAC). */
  onRefused?: (reason: LightRefusalReason) => void;
  /** Unexpected faults, at most one line a minute. */
  log?: Logger;
  /** Source filter (e.g. limits.ts ClientAcl): a reason string = drop. */
  acl?: { check(address: string): string | undefined };
  /** Milliseconds clock for the rate limit and idle expiry (tests); default performance.now. */
  nowMs?: () => number;
  /**
   * Authenticated STAMP: the HMAC-SHA-256 key (the shared secret's octets).
   * When set, only authenticated packets with a valid HMAC are answered.
   */
  authKey?: Uint8Array;
  /**
   * How requests are read (stamp.ts isStampRequest): 'auto' (default) = STAMP
   * when ≥ 44 octets with MBZ octets 16–43 zero, 'stamp' = every request of
   * ≥ 44 octets, 'twamp' = TWAMP-Light only (no SSID is ever copied).
   */
  lightFormat?: LightFormat;
  /** false forces the node:dgram datapath (tests); true requires the native one; default auto. */
  native?: boolean;
  /**
   * RFC 8972 §4.4 Class of Service TLV, local policy on DSCP1 (README
   * "Security"): the DSCPs a sender may ask the reply to carry besides the one
   * its request arrived with. Default none: a reply never carries a marking
   * the network did not already let through to us; DSCP1 otherwise refused
   * (RP = 1, the reply keeps the received DSCP).
   */
  cosAllowDscp?: readonly number[];
}

interface SenderState {
  next: number;
  lastAt: number;
}

/** RFC 4303 §3.4.3-style window: bit (seq mod 1024) set = seen, for seq in (top − 1024, top]. */
interface ReplayState {
  top: number;
  bits: Uint32Array;
  /** T1 (seconds, as a double) of the packet that opened this window: older T1 = an earlier session. */
  floorT1: number;
  /** Newest T1 accepted: a newer one with an unacceptable seq is the sender restarting. */
  maxT1: number;
  lastAt: number;
}

export class LightReflector {
  private socket: TestSocket | undefined;
  private replySocket: LightReplySocket | undefined;
  private replies: ReplySender | undefined;
  private readonly batchOut: ReplyItem[] = [];
  private readonly format: LightFormat;
  private readonly ratePps: number;
  private readonly maxPps: number;
  private readonly maxOctetsPerSource: number;
  private readonly maxOctets: number;
  private readonly idleMs: number;
  private readonly maxSenders: number;
  /** Per source address: packet and octet budgets (ms of `now`). */
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly senders = new Map<string, SenderState>();
  private readonly windows = new Map<string, ReplayState>();
  /** The global budget (all sources). */
  private readonly global: TokenBucket;
  private sweepTimer: NodeJS.Timeout | undefined;
  private family: 4 | 6 = 4;
  private readonly rlog: RateLimitedLog;
  /** Packets dropped by a rate or octet budget, per source or global (also counted in counters.droppedPackets). */
  rateLimited = 0;
  /** Of rateLimited: those dropped by the global budgets (maxPps, maxOctets). */
  globalRateLimited = 0;
  /** Packets dropped because they were not authenticated STAMP with a valid HMAC (authKey set; also in droppedPackets). */
  authFailed = 0;
  /** Authenticated packets dropped as replays (seen before, or older than the window; also in droppedPackets). */
  replayed = 0;
  /** Packets whose reply would go where it must not (replyTargetProblem; also in droppedPackets). */
  badTarget = 0;
  /** Requests shorter than their reply, not answered with symmetricOnly (also in droppedPackets). */
  asymmetric = 0;
  /** Unexpected exceptions while handling a packet (also in droppedPackets). */
  errors = 0;
  /** stamp/open, or stamp/authenticated with authKey (protocol/testFormat.ts): sizes, offsets, protection. */
  private readonly fmt: TestFormat;
  private readonly guard: PacketGuard;
  private readonly now: () => number;
  /** Class of Service TLV answering (RFC 8972 §4.4), reused per request: received TOS in, reply DSCP out. */
  private readonly cos: CosReflection;
  /** CoS TLVs answered, and of those, DSCP1 refused by the policy (RP = 1). */
  cosAnswered = 0;
  cosRefused = 0;

  constructor(private readonly o: LightReflectorOptions) {
    this.ratePps = positive('ratePps', o.ratePps ?? DEFAULT_LIGHT_RATE_PPS);
    this.maxPps = positive('maxPps', o.maxPps ?? DEFAULT_LIGHT_MAX_PPS);
    this.maxOctetsPerSource = positive('maxOctetsPerSource', o.maxOctetsPerSource ?? DEFAULT_LIGHT_MAX_OCTETS_PER_SOURCE);
    this.maxOctets = positive('maxOctets', o.maxOctets ?? DEFAULT_LIGHT_MAX_OCTETS);
    this.idleMs = o.idleMs ?? DEFAULT_IDLE_MS;
    this.maxSenders = o.maxSenders ?? DEFAULT_MAX_SENDERS;
    this.now = o.nowMs ?? (() => performance.now());
    this.fmt = testFormat('stamp', o.authKey ? 'authenticated' : 'open');
    this.guard = packetGuard(this.fmt, o.authKey ? { stampKey: Buffer.from(o.authKey) } : {});
    this.global = new TokenBucket(this.maxPps, this.maxOctets, this.now());
    this.rlog = new RateLimitedLog(o.log ?? silentLogger);
    this.format = o.lightFormat ?? 'auto';
    const allowed = new Set<number>();
    for (const d of o.cosAllowDscp ?? []) {
      if (!Number.isInteger(d) || d < 0 || d > 63) throw new RangeError(`LightReflector: cosAllowDscp: ${String(d)} is not a DSCP (0..63)`);
      allowed.add(d);
    }
    this.cos = { receivedTos: -1, replyDscp: -1, refused: false, permit: (dscp1, received) => dscp1 === received || allowed.has(dscp1) };
  }

  /** Where T2 comes from: the bound socket's, or what the datapath offers before listen(). */
  get timestampSource(): TimestampSource {
    return this.socket?.timestampSource() ?? datapathSupport().timestampSource;
  }

  get stateful(): boolean {
    return this.o.stateful ?? false;
  }

  /** Senders with a live sequence counter (stateful mode). */
  get senderCount(): number {
    return this.senders.size;
  }

  /** Authenticated senders with a replay window. */
  get replayWindowCount(): number {
    return this.windows.size;
  }

  async listen(): Promise<{ address: string; port: number }> {
    const v6 = isIPv6(this.o.host);
    this.family = v6 ? 6 : 4;
    // Dual-stack on an IPv6 address (as node:dgram's udp6 default): IPv4 peers arrive v4-mapped.
    const sock = await openReflectorSocket({
      family: v6 ? 6 : 4, address: this.o.host, port: this.o.port, ipv6Only: false, rcvbuf: RECV_BUFFER_OCTETS,
      peer: `reflector ${formatHostPort(this.o.host, this.o.port)}`, what: 'the TWAMP-Light UDP port',
      ...(this.o.native !== undefined ? { native: this.o.native } : {}),
      onPackets: (batch) => this.onBatch(batch),
    });
    this.socket = sock;
    this.replies = new ReplySender(sock);
    this.startSweeping();
    return { address: sock.local.address, port: sock.local.port };
  }

  /**
   * Unit tests: answer through `socket` (IPv4 overhead unless `family` 6)
   * without binding one; feed packets with receive().
   */
  attach(socket: LightReplySocket, family: 4 | 6 = 4): void {
    this.family = family;
    this.replySocket = socket;
    this.startSweeping();
  }

  private startSweeping(): void {
    if (this.sweepTimer) return;
    // Forget idle senders, replay windows and full buckets now and then, so no map grows without bound.
    this.sweepTimer = setInterval(() => this.sweep(), Math.min(this.idleMs, 10_000));
    this.sweepTimer.unref?.();
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    const s = this.socket;
    this.socket = undefined;
    this.replySocket = undefined;
    this.replies = undefined;
    if (s) {
      try {
        s.close();
      } catch {
        // already closed
      }
    }
    this.senders.clear();
    this.buckets.clear();
    this.windows.clear();
    this.rlog.flush();
  }

  /**
   * One received datagram (the socket's 'message' handler). Never throws:
   * whatever a peer sends, an unexpected fault is counted (`errors`,
   * `droppedPackets`) and logged at most once a minute.
   */
  receive(msg: Buffer, rinfo: RemoteInfo): void {
    try {
      const sock = this.replySocket;
      if (!sock) return;
      const item = this.handle(msg, rinfo.address, rinfo.port, this.o.clock.nowNtp(), -1, -1);
      if (!item) return;
      if (item.stampOffset !== undefined) writeTimestamp(item.data, item.stampOffset, this.o.clock.nowNtp());
      sock.send(item.data, 0, item.data.length, item.port, item.address);
      this.countReflected(1, item.data.length + this.overhead(item.address));
    } catch (e) {
      this.fault(e, rinfo?.address, rinfo?.port);
    }
  }

  /**
   * One received batch of the datapath (its onPackets): every request
   * checked and answered, the replies sent together. Never throws.
   */
  onBatch(batch: readonly RxDatagram[]): void {
    const out = this.batchOut;
    out.length = 0;
    for (let i = 0; i < batch.length; i++) {
      const d = batch[i]!;
      try {
        if (d.truncated) { this.drop(); continue; }
        const item = this.handle(d.data, d.address, d.port, ntpFromUnixNs(d.rxRealtimeNs), d.ttl, d.tos);
        if (item) out.push(item);
      } catch (e) {
        this.fault(e, d.address, d.port);
      }
    }
    if (out.length === 0) return;
    const replies = this.replies;
    const sent = replies ? replies.flush(out) : 0;
    let octets = 0;
    for (let i = 0; i < out.length; i++) octets += out[i]!.data.length + this.overhead(out[i]!.address);
    this.o.counters.droppedPackets += out.length - sent;
    this.countReflected(sent, sent === out.length ? octets : Math.round((octets / out.length) * sent));
    out.length = 0;
  }

  private countReflected(packets: number, octets: number): void {
    const c = this.o.counters;
    c.reflectedPackets += packets;
    c.reflectedOctets += octets;
  }

  /** IP + UDP header octets of a reply to `address` (IPv4, or v4-mapped on a dual-stack socket: 28; IPv6: 48). */
  private overhead(address: string): number {
    return ipOverhead(this.family === 4 || address.includes('.') ? 4 : 6);
  }

  private fault(e: unknown, address: unknown, port: unknown): void {
    this.errors++;
    this.o.counters.droppedPackets++;
    this.rlog.line('internal', 'warn', `TWAMP-Light: packet from ${formatHostPort(String(address), Number(port))} ` +
      `not reflected: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  }

  /** Per-source budgets for one reply of `octets` (IP level): true and spent when they allow it. */
  private admitSource(source: string, octets: number, nowMs: number): boolean {
    let b = this.buckets.get(source);
    if (!b) {
      if (this.buckets.size >= this.maxSenders) this.sweepBuckets(nowMs);
      b = new TokenBucket(this.ratePps, this.maxOctetsPerSource, nowMs);
      this.buckets.set(source, b);
    }
    return b.spend(octets, nowMs);
  }

  /** Global budgets (all sources together) for one reply of `octets`: true and spent when they allow it. */
  private admitGlobal(octets: number, nowMs: number): boolean {
    return this.global.spend(octets, nowMs);
  }

  private nextSeq(key: string, nowMs: number): number {
    let s = this.senders.get(key);
    if (s && nowMs - s.lastAt > this.idleMs) s = undefined;
    if (!s) {
      if (this.senders.size >= this.maxSenders) {
        // Map iteration is insertion order; re-inserted on every packet, so the first is the least recent.
        const oldest = this.senders.keys().next();
        if (!oldest.done) this.senders.delete(oldest.value);
      }
      s = { next: 0, lastAt: nowMs };
    }
    const seq = s.next;
    s.next = (s.next + 1) >>> 0;
    s.lastAt = nowMs;
    this.senders.delete(key);
    this.senders.set(key, s);
    return seq;
  }

  /**
   * Anti-replay (RFC 4303 §3.4.3, window of REPLAY_WINDOW): true and
   * recorded when `seq` (with sender timestamp `t1`, seconds) is new for
   * this sender, false for a duplicate, a seq older than the window or a
   * packet from before the window's session. Sequence numbers wrap (mod 2^32).
   */
  private fresh(key: string, seq: number, t1: number, nowMs: number): boolean {
    let w = this.windows.get(key);
    if (w && nowMs - w.lastAt > this.idleMs) {
      this.windows.delete(key);
      w = undefined;
    }
    if (!w) {
      if (this.windows.size >= this.maxSenders) {
        const oldest = this.windows.keys().next();
        if (!oldest.done) this.windows.delete(oldest.value);
      }
      w = { top: seq, bits: new Uint32Array(REPLAY_WINDOW / 32), floorT1: t1, maxT1: t1, lastAt: nowMs };
      setBit(w.bits, seq);
      this.windows.set(key, w);
      return true;
    }
    let ok = false;
    if (t1 >= w.floorT1) {
      const ahead = (seq - w.top) >>> 0;
      if (ahead !== 0 && ahead < 0x80000000) {
        // Newer than anything seen: slide the window, forgetting the seqs it leaves behind.
        if (ahead >= REPLAY_WINDOW) w.bits.fill(0);
        else for (let i = 1; i <= ahead; i++) clearBit(w.bits, (w.top + i) >>> 0);
        w.top = seq;
        setBit(w.bits, seq);
        ok = true;
      } else {
        const behind = (w.top - seq) >>> 0;
        if (behind < REPLAY_WINDOW && !testBit(w.bits, seq)) {
          setBit(w.bits, seq);
          ok = true;
        }
      }
    }
    if (!ok && t1 > w.maxT1) {
      // A T1 newer than every accepted one cannot be a replay: the sender restarted its sequence.
      w.bits.fill(0);
      w.top = seq;
      setBit(w.bits, seq);
      w.floorT1 = t1;
      ok = true;
    }
    if (!ok) return false;
    if (t1 > w.maxT1) w.maxT1 = t1;
    w.lastAt = nowMs;
    this.windows.delete(key);
    this.windows.set(key, w);
    return true;
  }

  private drop(): void {
    this.o.counters.droppedPackets++;
  }

  /**
   * Checks one request and builds its reply (T2 given, T3 stamped by the
   * caller or the datapath at `stampOffset`); undefined when it is dropped
   * (counted). `ttl` / `tos`: as received, -1 when unknown.
   */
  private handle(msg: Buffer, address: string, port: number, t2: bigint, ttl: number, tos: number): ReplyItem | undefined {
    const key = lightRequestKey(msg, msg.length, this.format);
    if (!key) { this.drop(); return undefined; }
    // Never send where a reply must not go (port 0 would even make dgram throw).
    if (replyTargetProblem(address, port, this.o.allowReplyPorts) !== undefined) { this.badTarget++; this.drop(); return undefined; }
    const source = unmapAddress(address);
    if (this.o.acl?.check(source) !== undefined) { this.drop(); return undefined; }
    const fmt = this.fmt;
    // Protected formats (authenticated STAMP): only requests whose HMAC verifies are answered.
    const auth = fmt.sender.protection.hmac !== undefined;
    const len = replyLength(fmt, msg.length);
    if (this.o.symmetricOnly && len > msg.length) { this.asymmetric++; this.drop(); return undefined; }
    const nowMs = this.now();
    const octets = len + this.overhead(address);
    // Rate-limited packets count as dropped too (dropped_pkt = every test packet not reflected).
    if (!this.admitSource(source, octets, nowMs)) { this.rateLimited++; this.drop(); return undefined; }
    let ssid = 0;
    if (!this.guard.unprotectSender(msg, msg.length)) {
      this.authFailed++;
      this.drop();
      this.o.onRefused?.('hmac');
      return undefined;
    }
    if (!this.admitGlobal(octets, nowMs)) { this.rateLimited++; this.globalRateLimited++; this.drop(); return undefined; }
    if (auth) {
      // SSID and T1 (HMAC-covered) where the format puts them; T1 as seconds is enough to order one sender's packets.
      const h = decodeSenderHeader(msg, msg.length, fmt);
      ssid = h.ssid;
      const t1 = Number(h.timestamp >> 32n) + Number(h.timestamp & 0xffffffffn) / 4294967296;
      if (!this.fresh(`${source}|${port}|${ssid}`, key.seq, t1, nowMs)) { this.replayed++; this.drop(); return undefined; }
    }
    let seq = key.seq;
    if (this.o.stateful) {
      // SSID only from STAMP requests (lightRequestKey under lightFormat): in TWAMP-Light packets octets 14–15
      // are padding. Authenticated STAMP carries it where its format says (decoded above).
      if (!auth) ssid = key.ssid;
      seq = this.nextSeq(`${source}|${port}|${ssid}`, nowMs);
    }
    // Sender TTL: the received TTL / Hop Limit, 255 when unknown (RFC 5357 §4.2.1, RFC 8762 §4.3.1).
    const fields = { seq, receiveTimestamp: t2, timestamp: t2, errorEstimate: this.o.clock.errorEstimate, senderTtl: ttl >= 0 ? ttl : 255 };
    // In place when the reply is no longer than the request (msg is ours).
    const out = len <= msg.length ? msg : Buffer.allocUnsafe(len);
    // A Class of Service TLV gets the DS byte as received (DSCP2, ECN) and, policy permitting, sets the reply's DSCP
    // (RFC 8972 §4.4); with the TOS unknown (node:dgram) it comes back unprocessed (U = 1) rather than with invented values.
    // (Authenticated replies echo no TLVs: their tail is not covered by the request's HMAC.)
    const cos = this.cos;
    cos.receivedTos = tos;
    cos.replyDscp = -1;
    cos.refused = false;
    buildReply(fmt, msg, msg.length, out, fields, { lightFormat: this.format, cos });
    const data = len === out.length ? out : out.subarray(0, len);
    // The reply carries the request's DSCP (ECN bits not copied), or the CoS TLV's answer.
    let dscp = tos >= 0 ? tos & 0xfc : undefined;
    if (cos.replyDscp >= 0) {
      this.cosAnswered++;
      if (cos.refused) this.cosRefused++;
      dscp = cos.replyDscp << 2;
    }
    const t3At = fmt.reflector.stampOffset;
    if (t3At === undefined) {
      // T3 is covered by the protection (HMAC over 0–95): read it now, protect last.
      writeTimestamp(data, fmt.reflector.timestamp, this.o.clock.nowNtp());
      this.guard.protectReflector(data, len);
      return dscp === undefined ? { data, address, port } : { data, address, port, tos: dscp };
    }
    return dscp === undefined ? { data, address, port, stampOffset: t3At } : { data, address, port, stampOffset: t3At, tos: dscp };
  }

  private sweep(): void {
    const nowMs = this.now();
    for (const [k, s] of this.senders) if (nowMs - s.lastAt > this.idleMs) this.senders.delete(k);
    for (const [k, w] of this.windows) if (nowMs - w.lastAt > this.idleMs) this.windows.delete(k);
    this.sweepBuckets(nowMs);
  }

  /** Drop buckets that have refilled completely: they hold no state worth keeping. */
  private sweepBuckets(nowMs: number): void {
    for (const [k, b] of this.buckets) if (b.full(nowMs)) this.buckets.delete(k);
    if (this.buckets.size >= this.maxSenders) {
      // Still full (a flood from many sources): forget the oldest half rather than grow.
      let n = this.buckets.size >> 1;
      for (const k of this.buckets.keys()) { if (n-- <= 0) break; this.buckets.delete(k); }
    }
  }
}

function positive(name: string, v: number): number {
  if (!(v > 0)) throw new RangeError(`LightReflector: ${name} must be > 0, got ${v}`);
  return v;
}

function setBit(bits: Uint32Array, seq: number): void {
  const i = seq % REPLAY_WINDOW;
  bits[i >>> 5]! |= 1 << (i & 31);
}

function clearBit(bits: Uint32Array, seq: number): void {
  const i = seq % REPLAY_WINDOW;
  bits[i >>> 5]! &= ~(1 << (i & 31));
}

function testBit(bits: Uint32Array, seq: number): boolean {
  const i = seq % REPLAY_WINDOW;
  return (bits[i >>> 5]! & (1 << (i & 31))) !== 0;
}
