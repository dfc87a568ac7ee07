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
 * With no session set-up Light must not become an amplifier: replies are
 * never larger than max(request, 44) octets (RFC 8762 §4.6), requests
 * shorter than 14 octets are dropped, and each source address may send at
 * most `ratePps` packets per second (token bucket, burst = one second's
 * worth); the excess is dropped and counted in `rateLimited` (and in
 * `droppedPackets`, with everything else not reflected: short requests and
 * sources the ACL refuses).
 *
 * Authenticated STAMP (RFC 8762 §4.2.2/§4.3.2): with `authKey` set, only
 * packets of ≥ 112 octets whose HMAC-SHA-256/128 over octets 0–95 verifies
 * under that key are answered, with the 112-octet authenticated reflector
 * layout (SSID at 26–27) and its own HMAC; everything else (shorter,
 * unauthenticated or wrongly keyed packets) is dropped and counted in
 * `droppedPackets` and `authFailed`. STAMP has no key id on the wire, so one
 * key serves the whole port; RFC 8762 leaves key distribution out of scope,
 * and the HMAC key is the configured secret's octets.
 *
 * Node's dgram cannot read the received TTL: Sender TTL is 255 (RFC 5357
 * §4.2.1). Replies go out with TTL 255.
 */
import { createSocket, type Socket as UdpSocket, type RemoteInfo } from 'node:dgram';
import { isIPv6 } from 'node:net';
import {
  buildLightReflection, lightReplyLength, lightRequestKey, STAMP_BASE_SIZE, patchReflectorTimestamp,
  verifyStampPacket, buildStampAuthReflection, signStampPacket,
} from '../protocol/index.js';
import { readU16 } from '../protocol/bytes.js';
import type { Clock } from './clock.js';
import { unmapAddress } from './address.js';
import { TwampSessionError, formatHostPort } from './errors.js';
import { closeUdp } from './udp.js';
import type { ReflectorCounters } from './reflectorSession.js';

export const DEFAULT_LIGHT_RATE_PPS = 1000;
const DEFAULT_IDLE_MS = 900_000;
const DEFAULT_MAX_SENDERS = 65_536;

export interface LightReflectorOptions {
  host: string;
  port: number;
  clock: Clock;
  /** Per-sender sequence numbers (forward/backward loss split); default stateless. */
  stateful?: boolean;
  /** Packets per second accepted from one source address; default 1000. */
  ratePps?: number;
  /** Stateful mode: forget a sender after this long without packets; default 900 s (REFWAIT). */
  idleMs?: number;
  /** Stateful mode: most senders remembered at once; default 65536. */
  maxSenders?: number;
  /** Where reflected/dropped packets are counted (may be shared with the TWAMP-Control server's counters). */
  counters: ReflectorCounters;
  /** Source filter (e.g. limits.ts ClientAcl): a reason string = drop. */
  acl?: { check(address: string): string | undefined };
  /** Milliseconds clock for the rate limit and idle expiry (tests); default performance.now. */
  nowMs?: () => number;
  /**
   * Authenticated STAMP: the HMAC-SHA-256 key (the shared secret's octets).
   * When set, only authenticated packets with a valid HMAC are answered.
   */
  authKey?: Uint8Array;
}

interface Bucket {
  tokens: number;
  /** ms (performance.now()). */
  at: number;
}

interface SenderState {
  next: number;
  lastAt: number;
}

export class LightReflector {
  private socket: UdpSocket | undefined;
  private readonly ratePps: number;
  private readonly idleMs: number;
  private readonly maxSenders: number;
  private readonly buckets = new Map<string, Bucket>();
  private readonly senders = new Map<string, SenderState>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private overhead = 28;
  /** Packets dropped by the per-source rate limit (also counted in counters.droppedPackets). */
  rateLimited = 0;
  /** Packets dropped because they were not authenticated STAMP with a valid HMAC (authKey set; also in droppedPackets). */
  authFailed = 0;
  private readonly authKey: Buffer | undefined;
  private readonly now: () => number;

  constructor(private readonly o: LightReflectorOptions) {
    this.ratePps = o.ratePps ?? DEFAULT_LIGHT_RATE_PPS;
    if (!(this.ratePps > 0)) throw new RangeError(`ratePps must be > 0, got ${this.ratePps}`);
    this.idleMs = o.idleMs ?? DEFAULT_IDLE_MS;
    this.maxSenders = o.maxSenders ?? DEFAULT_MAX_SENDERS;
    this.now = o.nowMs ?? (() => performance.now());
    this.authKey = o.authKey ? Buffer.from(o.authKey) : undefined;
  }

  get stateful(): boolean {
    return this.o.stateful ?? false;
  }

  /** Senders with a live sequence counter (stateful mode). */
  get senderCount(): number {
    return this.senders.size;
  }

  async listen(): Promise<{ address: string; port: number }> {
    const v6 = isIPv6(this.o.host);
    this.overhead = v6 ? 48 : 28;
    const sock = createSocket({ type: v6 ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      const onErr = (e: NodeJS.ErrnoException): void => {
        closeUdp(sock);
        reject(new TwampSessionError('socket', `reflector ${formatHostPort(this.o.host, this.o.port)}`,
          `cannot bind the TWAMP-Light UDP port: ${e.code ?? e.message}` +
          (e.code === 'EACCES' && this.o.port < 1024 ? ' (ports below 1024 need root or CAP_NET_BIND_SERVICE)' : ''), { cause: e }));
      };
      sock.once('error', onErr);
      sock.bind({ address: this.o.host, port: this.o.port, exclusive: true }, () => {
        sock.removeListener('error', onErr);
        resolve();
      });
    });
    sock.setTTL(255);
    sock.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    sock.on('error', () => { /* ICMP errors on send must not stop the reflector */ });
    this.socket = sock;
    // Forget idle senders and full buckets now and then, so neither map grows without bound.
    this.sweepTimer = setInterval(() => this.sweep(), Math.min(this.idleMs, 10_000));
    this.sweepTimer.unref?.();
    const a = sock.address();
    return { address: a.address, port: a.port };
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    const s = this.socket;
    this.socket = undefined;
    if (s) await new Promise<void>((r) => { try { s.close(() => r()); } catch { r(); } });
    this.senders.clear();
    this.buckets.clear();
  }

  /** Token bucket per source address: true if this packet may be answered. */
  private admit(source: string, nowMs: number): boolean {
    let b = this.buckets.get(source);
    if (!b) {
      if (this.buckets.size >= this.maxSenders) this.sweepBuckets(nowMs);
      b = { tokens: this.ratePps, at: nowMs };
      this.buckets.set(source, b);
    } else {
      b.tokens = Math.min(this.ratePps, b.tokens + ((nowMs - b.at) * this.ratePps) / 1000);
      b.at = nowMs;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
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

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    const t2 = this.o.clock.nowNtp();
    const c = this.o.counters;
    const sock = this.socket;
    if (!sock) return;
    const key = lightRequestKey(msg, msg.length);
    if (!key) { c.droppedPackets++; return; }
    const nowMs = this.now();
    const source = unmapAddress(rinfo.address);
    if (this.o.acl?.check(source) !== undefined) { c.droppedPackets++; return; }
    // Rate-limited packets count as dropped too (dropped_pkt = every test packet not reflected).
    if (!this.admit(source, nowMs)) { this.rateLimited++; c.droppedPackets++; return; }
    const auth = this.authKey;
    if (auth && !verifyStampPacket(msg, msg.length, auth)) { this.authFailed++; c.droppedPackets++; return; }
    let seq = key.seq;
    if (this.o.stateful) {
      // SSID only from packets that can be STAMP (≥ 44): in shorter TWAMP-Light packets octets 14–15 are padding.
      // Authenticated STAMP carries it at 26–27.
      const ssid = auth ? readU16(msg, 26) : msg.length >= STAMP_BASE_SIZE ? key.ssid : 0;
      seq = this.nextSeq(`${source}|${rinfo.port}|${ssid}`, nowMs);
    }
    const fields = { seq, receiveTimestamp: t2, timestamp: t2, errorEstimate: this.o.clock.errorEstimate, senderTtl: 255 };
    let len: number;
    if (auth) {
      // In place: the reply has the request's length (≥ 112); T3 is covered by the HMAC, so sign last.
      len = buildStampAuthReflection(msg, msg.length, msg, fields);
      patchReflectorTimestamp(msg, this.o.clock.nowNtp(), 'authenticated');
      signStampPacket(msg, auth);
      sock.send(msg, 0, len, rinfo.port, rinfo.address);
    } else {
      len = lightReplyLength(msg.length);
      const out = len === msg.length ? msg : Buffer.allocUnsafe(len);
      buildLightReflection(msg, msg.length, out, fields);
      patchReflectorTimestamp(out, this.o.clock.nowNtp());
      sock.send(out, 0, len, rinfo.port, rinfo.address);
    }
    c.reflectedPackets++;
    c.reflectedOctets += len + this.overhead;
  }

  private sweep(): void {
    const nowMs = this.now();
    for (const [k, s] of this.senders) if (nowMs - s.lastAt > this.idleMs) this.senders.delete(k);
    this.sweepBuckets(nowMs);
  }

  /** Drop buckets that have refilled completely: they hold no state worth keeping. */
  private sweepBuckets(nowMs: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((nowMs - b.at) * this.ratePps) / 1000 >= this.ratePps) this.buckets.delete(k);
    }
    if (this.buckets.size >= this.maxSenders) {
      // Still full (a flood from many sources): forget the oldest half rather than grow.
      let n = this.buckets.size >> 1;
      for (const k of this.buckets.keys()) { if (n-- <= 0) break; this.buckets.delete(k); }
    }
  }
}
