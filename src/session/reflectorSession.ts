/**
 * One TWAMP test session as Session-Reflector (RFC 5357 §4.2): a UDP socket
 * that answers the negotiated Session-Sender only, with T2 taken on arrival
 * and T3 just before the reply is handed to the kernel, its own sequence
 * counter, the sender's fields copied and the reply padded to the request's
 * length (minimum 41 octets; 112 in authenticated/encrypted mode).
 *
 * Authenticated/encrypted mode (RFC 4656 §4.1.2, RFC 5357 §4.2.1): requests
 * are decrypted and their HMAC checked (failures are dropped and counted);
 * replies use the 112-octet layout. Authenticated mode protects only octets
 * 0–15, so T3 is patched after protection, as late as possible; encrypted
 * mode covers T3, so T3 is final before the reply is protected. Mixed mode
 * (RFC 5618) uses the open layout without crypto.
 */
import type { Socket as UdpSocket, RemoteInfo } from 'node:dgram';
import {
  buildReflection, patchReflectorTimestamp, reflectorReplyLength, SENDER_HEADER_SIZE,
  protectReflectorPacket, unprotectSenderPacket, type PacketLayout, type SecurityMode, type TestSessionKeys,
} from '../protocol/index.js';
import type { Clock } from './clock.js';
import { unmapAddress } from './address.js';
import { closeUdp } from './udp.js';
import type { PacketLimiter } from './limits.js';

export interface ReflectorCounters {
  reflectedPackets: number;
  /** Octets at IP level (UDP payload + IP and UDP headers), as the reference agent counts. */
  reflectedOctets: number;
  /** Datagrams not reflected: wrong source, too short, before start or after stop. */
  droppedPackets: number;
}

export interface ReflectorSessionOptions {
  socket: UdpSocket;
  family: 4 | 6;
  senderAddress: string;
  senderPort: number;
  sid: Buffer;
  /** Security mode of the control connection; default 'open'. */
  mode?: SecurityMode;
  /** RFC 6038 Symmetrical Size chosen on the control connection. */
  symmetricalSize?: boolean;
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
  private readonly mode: SecurityMode;
  private readonly layout: PacketLayout;
  private readonly keys: TestSessionKeys | undefined;
  /** Packets this session reflected (for logs). */
  reflected = 0;
  /** Packets dropped because their HMAC did not verify. */
  badHmac = 0;

  constructor(private readonly o: ReflectorSessionOptions) {
    this.port = o.socket.address().port;
    this.overhead = o.family === 6 ? 48 : 28;
    this.mode = o.mode ?? 'open';
    this.layout = this.mode === 'authenticated' || this.mode === 'encrypted' ? 'authenticated' : 'open';
    this.keys = o.keys;
    if (this.layout === 'authenticated' && !this.keys) throw new TypeError(`${this.mode} session without test keys`);
    this.limiters = o.rateLimiters ?? [];
    if (o.maxDurationMs !== undefined && o.maxDurationMs > 0) {
      this.durationTimer = setTimeout(() => this.end(END_MAX_DURATION), o.maxDurationMs);
      this.durationTimer.unref?.();
    }
    o.socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    o.socket.on('error', () => { /* send errors (ICMP unreachable) must not kill the reflector */ });
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
    closeUdp(this.o.socket);
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

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    const t2 = this.o.clock.nowNtp();
    const c = this.o.counters;
    const layout = this.layout;
    if (!this.started || this.ended || rinfo.port !== this.o.senderPort ||
        (rinfo.address !== this.o.senderAddress && unmapAddress(rinfo.address) !== this.o.senderAddress) ||
        msg.length < SENDER_HEADER_SIZE[layout]) {
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
    const keys = this.keys;
    // msg is ours (a fresh buffer per datagram): decrypt in place.
    if (keys && !unprotectSenderPacket(msg, msg.length, keys, this.mode)) {
      this.badHmac++;
      c.droppedPackets++;
      this.o.onAuthFailure?.(this);
      return;
    }
    this.lastPacketAt = Date.now();
    // Hot path: reflect in place when the request is as long as the reply (msg is ours).
    const replyLength = reflectorReplyLength(msg.length, layout);
    const out = msg.length >= replyLength ? msg : Buffer.allocUnsafe(replyLength);
    const len = buildReflection(msg, msg.length, out, {
      seq: this.seq, receiveTimestamp: t2, timestamp: t2, errorEstimate: this.o.clock.errorEstimate,
      // Node's dgram cannot read the received TTL: RFC 5357 §4.2.1 says write 255 then.
      senderTtl: 255,
    }, layout, this.o.symmetricalSize === true);
    this.seq = (this.seq + 1) >>> 0;
    if (this.mode === 'encrypted') {
      // T3 lies inside the encrypted range: final first, then HMAC and encryption.
      patchReflectorTimestamp(out, this.o.clock.nowNtp(), layout);
      protectReflectorPacket(out, len, keys!, this.mode);
    } else if (this.mode === 'authenticated') {
      // Only octets 0–15 are protected: T3 can still be taken after that.
      protectReflectorPacket(out, len, keys!, this.mode);
      patchReflectorTimestamp(out, this.o.clock.nowNtp(), layout);
    } else {
      patchReflectorTimestamp(out, this.o.clock.nowNtp(), layout);
    }
    try {
      this.o.socket.send(out, 0, len, rinfo.port, rinfo.address);
    } catch {
      // A synchronous send error (socket closing, unusable destination) must not escape the 'message'
      // handler; the destination itself was checked when the session was accepted (replyTargetProblem).
      c.droppedPackets++;
      return;
    }
    this.reflected++;
    c.reflectedPackets++;
    c.reflectedOctets += len + this.overhead;
  }
}
