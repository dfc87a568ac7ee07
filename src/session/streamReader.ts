/**
 * Reads exact-size TWAMP-Control messages from a TCP stream. Bytes that arrive
 * ahead of the current read (pipelined commands) are kept for the next one,
 * and every read is bounded by a timeout so a silent or slow peer cannot hold
 * a connection open (RFC 4656 §3: drop the connection when an expected
 * message does not complete).
 *
 * Two bounds per read: an idle wait (`timeoutMs`, e.g. SERVWAIT; it can be
 * re-armed while the read is pending, see armIdle) and a whole-message bound
 * (`completeMs`) measured from the arrival of the message's first octet, or
 * from an earlier instant given as `since` (the first octet of a message read
 * in two parts), so trickling octets cannot stretch a message past it.
 */
import type { Socket } from 'node:net';
import { TwampSessionError } from './errors.js';

interface Pending {
  n: number;
  what: string;
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
  /** Idle bound (0 = none), from the read's start or from its last re-arm. */
  timer: NodeJS.Timeout | undefined;
  /** Bound on the whole message from its first octet (anti-slowloris); 0 = none. */
  completeMs: number;
  /** When the message began, if before this read (performance.now() time). */
  since: number | undefined;
  completeTimer: NodeJS.Timeout | undefined;
}

/** Options of StreamReader.read beyond the idle wait. */
export interface ReadBounds {
  /** The message must be complete within this long of its first octet (or of `since`). */
  completeMs?: number;
  /** The message began at this performance.now() instant (e.g. StreamReader.lastMessageStart). */
  since?: number;
}

export class StreamReader {
  private chunks: Buffer[] = [];
  /** Arrival time (performance.now()) of each chunk. */
  private arrivals: number[] = [];
  private buffered = 0;
  private pending: Pending | undefined;
  private ended: Error | undefined;
  private lastStart = 0;
  /** Upper bound on buffered, unread bytes (a peer flooding us is an error). */
  private readonly maxBuffered: number;

  constructor(
    private readonly socket: Socket,
    private readonly peer: string,
    opts: { maxBuffered?: number } = {},
  ) {
    this.maxBuffered = opts.maxBuffered ?? 64 * 1024;
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('end', () => this.fail(new TwampSessionError('closed', peer, 'control connection closed by peer')));
    socket.on('close', () => this.fail(new TwampSessionError('closed', peer, 'control connection closed')));
    socket.on('error', (e) => this.fail(new TwampSessionError('closed', peer, `control connection error: ${e.message}`, { cause: e })));
  }

  /** Number of bytes received but not yet consumed. */
  get available(): number {
    return this.buffered;
  }

  /** performance.now() when the first octet of the last message read arrived. */
  get lastMessageStart(): number {
    return this.lastStart;
  }

  /** True while a read waits without any idle bound (e.g. SERVWAIT lifted while a session runs). */
  get waitingUnbounded(): boolean {
    return this.pending !== undefined && this.pending.timer === undefined;
  }

  /**
   * The next `n` octets. `timeoutMs` bounds the wait (0 = unbounded, e.g. an
   * idle control connection while sessions run); `bounds.completeMs` (or a
   * bare number, the same) also bounds the message as a whole from its first
   * octet on, or from `bounds.since`.
   */
  read(n: number, timeoutMs: number, what: string, bounds: ReadBounds | number = {}): Promise<Buffer> {
    const b = typeof bounds === 'number' ? { completeMs: bounds } : bounds;
    if (this.pending) return Promise.reject(new Error('StreamReader: concurrent read'));
    if (this.buffered >= n) return Promise.resolve(this.take(n));
    if (this.ended) {
      const e = this.ended;
      const detail = this.buffered > 0 ? ` after ${this.buffered} of ${n} octets` : '';
      return Promise.reject(new TwampSessionError(
        e instanceof TwampSessionError ? e.reason : 'closed', this.peer, `waiting for ${what}${detail}: ${stripPeer(e.message, this.peer)}`));
    }
    return new Promise<Buffer>((resolve, reject) => {
      const p: Pending = {
        n, what, resolve, reject, timer: undefined, completeMs: b.completeMs ?? 0, since: b.since, completeTimer: undefined,
      };
      this.pending = p;
      this.setIdle(p, timeoutMs);
      this.armComplete(p);
    });
  }

  /**
   * Give the pending read an idle bound of `timeoutMs` from now when it has
   * none (SERVWAIT once the last session stops running, RFC 5357 §3.1).
   * No effect when no read is pending or it is already bounded.
   */
  armIdle(timeoutMs: number): void {
    const p = this.pending;
    if (p && p.timer === undefined) this.setIdle(p, timeoutMs);
  }

  private setIdle(p: Pending, timeoutMs: number): void {
    if (p.timer) clearTimeout(p.timer);
    p.timer = undefined;
    if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) return;
    p.timer = setTimeout(() => {
      this.settle(p);
      p.reject(new TwampSessionError('timeout', this.peer,
        `no ${p.what} within ${formatMs(timeoutMs)} (got ${this.buffered} of ${p.n} octets)`));
    }, timeoutMs);
  }

  /** Once the message has begun, it must complete within completeMs of its first octet. */
  private armComplete(p: Pending): void {
    if (p.completeMs <= 0 || !Number.isFinite(p.completeMs) || p.completeTimer) return;
    const began = p.since ?? (this.buffered > 0 ? this.arrivals[0]! : undefined);
    if (began === undefined) return;
    const left = Math.max(began + p.completeMs - performance.now(), 0);
    p.completeTimer = setTimeout(() => {
      this.settle(p);
      p.reject(new TwampSessionError('timeout', this.peer,
        `${p.what} not complete within ${formatMs(p.completeMs)} of its first octet (got ${this.buffered} of ${p.n} octets)`));
    }, left);
  }

  /** Clear a pending read's timers and detach it. */
  private settle(p: Pending): void {
    if (this.pending === p) this.pending = undefined;
    if (p.timer) clearTimeout(p.timer);
    if (p.completeTimer) clearTimeout(p.completeTimer);
  }

  private onData(d: Buffer): void {
    this.chunks.push(d);
    this.arrivals.push(performance.now());
    this.buffered += d.length;
    if (this.buffered > this.maxBuffered && !this.pending) {
      this.socket.destroy();
      this.fail(new TwampSessionError('protocol', this.peer, `peer sent ${this.buffered} unsolicited octets`));
      return;
    }
    const p = this.pending;
    if (p && this.buffered >= p.n) {
      this.settle(p);
      p.resolve(this.take(p.n));
    } else if (p) {
      this.armComplete(p);
    }
  }

  private fail(e: Error): void {
    if (this.ended) return;
    this.ended = e;
    const p = this.pending;
    if (p) {
      this.settle(p);
      const detail = this.buffered > 0 ? ` after ${this.buffered} of ${p.n} octets` : '';
      p.reject(new TwampSessionError(e instanceof TwampSessionError ? e.reason : 'closed', this.peer,
        `waiting for ${p.what}${detail}: ${stripPeer(e.message, this.peer)}`));
    }
  }

  private take(n: number): Buffer {
    this.lastStart = this.arrivals[0] ?? performance.now();
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) {
        this.chunks.shift();
        this.arrivals.shift();
      } else {
        this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered -= n;
    return out;
  }
}

function stripPeer(msg: string, peer: string): string {
  return msg.startsWith(`${peer}: `) ? msg.slice(peer.length + 2) : msg;
}

export function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s` : `${ms} ms`;
}
