/**
 * One TWAMP test session as Session-Reflector (RFC 5357 §4.2): a UDP socket
 * that answers the negotiated Session-Sender only, its own sequence
 * counter, the sender's fields copied and the reply padded to the request's
 * length (minimum 41 octets; 112 in authenticated/encrypted mode).
 *
 * Timestamps on the test-socket datapath (datapath.ts; docs/internals.md "Measurement accuracy"):
 *  - T2 is the kernel's receive timestamp of the request (SO_TIMESTAMPING),
 *    not the moment JavaScript got to it;
 *  - T3 is written by the datapath right before sendmsg (open and mixed
 *    mode, and authenticated mode, whose protection covers only octets
 *    0–15: RFC 5357 §4.2.1 / RFC 4656 §4.1.2). In encrypted mode T3 lies
 *    inside the encrypted range, so it is read in JavaScript right before
 *    the reply is protected and handed to the datapath: T3 then precedes the
 *    real departure by the encryption and the send call (a few µs).
 *  - Sender TTL is the request's received TTL / Hop Limit (RFC 5357 §4.2.1),
 *    255 only when it cannot be read (node:dgram fallback);
 *  - with RFC 7750 chosen, S-DSCP-ECN is the request's received DS byte
 *    (the server offers the mode only where the datapath reads it).
 * Sizes, offsets, protection and where T3 is stamped come from the format
 * table (protocol/testFormat.ts).
 * A batch of requests (one recvmmsg) is handled in one call and its replies
 * leave with one sendmmsg. With the node:dgram fallback T2 and T3 are read
 * from the clock in JavaScript, as before the datapath.
 *
 * Authenticated/encrypted mode (RFC 4656 §4.1.2, RFC 5357 §4.2.1): requests
 * are decrypted and their HMAC checked (failures are dropped and counted);
 * replies use the 112-octet layout. Mixed mode (RFC 5618) uses the open
 * layout without crypto.
 */
import {
  buildReply, replyLength, testFormat, packetGuard, ntpFromUnixNs, writeTimestamp,
  type PacketGuard, type SecurityMode, type TestFormat, type TestSessionKeys,
} from '../protocol/index.js';
import { ipOverhead } from '../measure/models.js';
import type { Clock } from './clock.js';
import { unmapAddress } from '../util/net.js';
import { closeTestSocket, ReplySender, type ReplyItem } from './udp.js';
import type { RxDatagram, TestSocket, TimestampSource } from './datapath.js';
import type { PacketLimiter } from './limits.js';

export interface ReflectorCounters {
  reflectedPackets: number;
  /** Octets at IP level (UDP payload + IP and UDP headers), as the reference agent counts. */
  reflectedOctets: number;
  /** Datagrams not reflected: wrong source, too short, before start or after stop. */
  droppedPackets: number;
}

export interface ReflectorSessionOptions {
  /** The session's test socket (udp.ts openReflectorSocket); its received batches go to onBatch(). */
  socket: TestSocket;
  family: 4 | 6;
  senderAddress: string;
  senderPort: number;
  sid: Buffer;
  /** Security mode of the control connection; default 'open'. */
  mode?: SecurityMode;
  /** RFC 6038 Symmetrical Size chosen on the control connection. */
  symmetricalSize?: boolean;
  /**
   * RFC 7750 DSCP and ECN Monitoring chosen on the control connection: each
   * reply carries S-DSCP-ECN, the DS byte of its request as received (offered
   * only where the datapath reads it; 0 if a datagram came without it).
   */
  dscpEcn?: boolean;
  /** Test-session keys (authenticated and encrypted mode). */
  keys?: TestSessionKeys;
  /** Keep reflecting this long after Stop-Sessions (the request's Timeout, RFC 5357 §3.5). */
  stopGraceMs: number;
  /** End the session after this long without a packet (REFWAIT, RFC 5357 §4.2). */
  refwaitMs: number;
  clock: Clock;
  counters: ReflectorCounters;
  onEnd: (s: ReflectorSession, why: string) => void;
  /** End the session this long after it was set up, whatever it does (`max_session_duration`). */
  maxDurationMs?: number;
  /** Packet-rate limits: this session's and its client's share of the reflector's; packets over either are dropped. */
  rateLimiters?: readonly PacketLimiter[];
  /** A packet from the session's sender was dropped for exceeding a rate limit. */
  onRateDrop?: (s: ReflectorSession) => void;
  /** A packet from the session's sender failed its HMAC (authenticated/encrypted mode) and was dropped. */
  onAuthFailure?: (s: ReflectorSession) => void;
}

/** The `why` of a session ended by max_session_duration. */
export const END_MAX_DURATION = 'maximum session duration reached';
/** The `why` of a session ended by REFWAIT. */
export const END_REFWAIT = 'REFWAIT expired';

export class ReflectorSession {
  readonly port: number;
  private started = false;
  private stoppedAt: number | undefined;
  private ended = false;
  private seq = 0;
  private lastPacketAt = Date.now();
  private refwaitTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private durationTimer: NodeJS.Timeout | undefined;
  private readonly limiters: readonly PacketLimiter[];
  private readonly overhead: number;
  /** Sizes, offsets and protection of this session's packets (protocol/testFormat.ts). */
  private readonly fmt: TestFormat;
  private readonly guard: PacketGuard;
  private readonly replies: ReplySender;
  private readonly out: ReplyItem[] = [];
  /** Packets this session reflected (for logs). */
  reflected = 0;
  /** Packets dropped because their HMAC did not verify. */
  badHmac = 0;

  constructor(private readonly o: ReflectorSessionOptions) {
    this.port = o.socket.local.port;
    this.overhead = ipOverhead(o.family);
    this.fmt = testFormat('twamp', o.mode ?? 'open', { dscpEcn: o.dscpEcn === true });
    this.guard = packetGuard(this.fmt, o.keys ? { testKeys: o.keys } : {});
    this.limiters = o.rateLimiters ?? [];
    if (o.maxDurationMs !== undefined && o.maxDurationMs > 0) {
      this.durationTimer = setTimeout(() => this.end(END_MAX_DURATION), o.maxDurationMs);
      this.durationTimer.unref?.();
    }
    this.replies = new ReplySender(o.socket);
  }

  /** Where T2 comes from on this session's socket. */
  get timestampSource(): TimestampSource {
    return this.o.socket.timestampSource();
  }

  get sid(): Buffer {
    return this.o.sid;
  }

  get isStarted(): boolean {
    return this.started && this.stoppedAt === undefined;
  }

  /** Accepted and not yet started (nor ended): the next Start-Sessions starts it. */
  get canStart(): boolean {
    return !this.started && !this.ended;
  }

  /** Start-Sessions received: begin reflecting, arm REFWAIT. */
  start(): void {
    if (this.ended || this.started) return;
    this.started = true;
    this.lastPacketAt = Date.now();
    this.armRefwait();
  }

  /** Stop-Sessions received: keep reflecting for the session's Timeout, then end. */
  stop(): void {
    if (this.ended || this.stoppedAt !== undefined) return;
    this.stoppedAt = Date.now();
    this.graceTimer = setTimeout(() => this.end('stopped'), this.o.stopGraceMs);
  }

  end(why: string): void {
    if (this.ended) return;
    this.ended = true;
    if (this.refwaitTimer) clearTimeout(this.refwaitTimer);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    if (this.durationTimer) clearTimeout(this.durationTimer);
    closeTestSocket(this.o.socket);
    this.o.onEnd(this, why);
  }

  private armRefwait(): void {
    if (this.refwaitTimer) clearTimeout(this.refwaitTimer);
    const left = this.o.refwaitMs - (Date.now() - this.lastPacketAt);
    this.refwaitTimer = setTimeout(() => {
      if (Date.now() - this.lastPacketAt >= this.o.refwaitMs) this.end(END_REFWAIT);
      else this.armRefwait();
    }, Math.max(left, 1));
    this.refwaitTimer.unref?.();
  }

  /**
   * One received batch (the socket's onPackets): each request checked and
   * answered, the replies sent together. Never throws.
   */
  onBatch(batch: readonly RxDatagram[]): void {
    const out = this.out;
    out.length = 0;
    const c = this.o.counters;
    for (let i = 0; i < batch.length; i++) {
      try {
        this.onDatagram(batch[i]!, out);
      } catch {
        // nothing a peer sends may throw past the handler
        c.droppedPackets++;
      }
    }
    if (out.length === 0) return;
    const sent = this.replies.flush(out);
    // The replies that did not leave (refused destination, full buffer) count as dropped.
    c.droppedPackets += out.length - sent;
    let octets = 0;
    for (let i = 0; i < out.length; i++) octets += out[i]!.data.length;
    if (sent === out.length) {
      this.reflected += sent;
      c.reflectedPackets += sent;
      c.reflectedOctets += octets + sent * this.overhead;
    } else {
      // Which ones failed is not known: count the average size.
      this.reflected += sent;
      c.reflectedPackets += sent;
      c.reflectedOctets += Math.round((octets / out.length) * sent) + sent * this.overhead;
    }
    out.length = 0;
  }

  private onDatagram(d: RxDatagram, out: ReplyItem[]): void {
    const c = this.o.counters;
    const fmt = this.fmt;
    const msg = d.data;
    if (!this.started || this.ended || d.port !== this.o.senderPort ||
        (d.address !== this.o.senderAddress && unmapAddress(d.address) !== this.o.senderAddress) ||
        msg.length < fmt.sender.size || d.truncated) {
      c.droppedPackets++;
      return;
    }
    // Rate limits after the source check: a flood from elsewhere cannot use up this sender's budget.
    for (let i = 0; i < this.limiters.length; i++) {
      if (!this.limiters[i]!.take()) {
        c.droppedPackets++;
        this.o.onRateDrop?.(this);
        return;
      }
    }
    // msg is ours (a fresh buffer per datagram): decrypt in place.
    if (!this.guard.unprotectSender(msg, msg.length)) {
      this.badHmac++;
      c.droppedPackets++;
      this.o.onAuthFailure?.(this);
      return;
    }
    this.lastPacketAt = Date.now();
    const t2 = ntpFromUnixNs(d.rxRealtimeNs);
    // Reflect in place when the request is as long as the reply (msg is ours).
    const len0 = replyLength(fmt, msg.length);
    const buf = msg.length >= len0 ? msg : Buffer.allocUnsafe(len0);
    const len = buildReply(fmt, msg, msg.length, buf, {
      seq: this.seq, receiveTimestamp: t2, timestamp: t2, errorEstimate: this.o.clock.errorEstimate,
      // RFC 5357 §4.2.1: the received TTL / Hop Limit; 255 when it cannot be read.
      senderTtl: d.ttl >= 0 ? d.ttl : 255,
      // RFC 7750 §3: the DS byte the request arrived with (written only by formats with S-DSCP-ECN).
      sDscpEcn: d.tos >= 0 ? d.tos : 0,
    }, { symmetrical: this.o.symmetricalSize === true });
    this.seq = (this.seq + 1) >>> 0;
    const data = len === buf.length ? buf : buf.subarray(0, len);
    const t3At = fmt.reflector.stampOffset;
    if (t3At === undefined) {
      // T3 lies inside the protected range (encrypted mode): final first (read here), then HMAC and encryption.
      writeTimestamp(buf, fmt.reflector.timestamp, this.o.clock.nowNtp());
      this.guard.protectReflector(buf, len);
      out.push({ data, address: d.address, port: d.port });
    } else {
      // T3 outside the protection (open; authenticated covers octets 0–15 only): the datapath stamps it right before sendmsg.
      this.guard.protectReflector(buf, len);
      out.push({ data, address: d.address, port: d.port, stampOffset: t3At });
    }
  }
}
