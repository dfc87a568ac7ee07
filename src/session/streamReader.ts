/**
 * Reads exact-size TWAMP-Control messages from a TCP stream. Bytes that arrive
 * ahead of the current read (pipelined commands) are kept for the next one,
 * and every read is bounded by a timeout so a silent or slow peer cannot hold
 * a connection open (RFC 4656 §3: drop the connection when an expected
 * message does not complete).
 */
import type { Socket } from 'node:net';
import { TwampSessionError } from './errors.js';

interface Pending {
  n: number;
  what: string;
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
  /** Bound on the whole message once its first octet is in (anti-slowloris); 0 = none. */
  completeMs: number;
  completeTimer: NodeJS.Timeout | undefined;
}

export class StreamReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private pending: Pending | undefined;
  private ended: Error | undefined;
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

  /**
   * The next `n` octets. `timeoutMs` bounds the whole wait (0 = unbounded,
   * e.g. an idle control connection while sessions run); `completeMs`, when
   * set, also bounds the message as a whole from its first octet on, so a
   * peer trickling octets cannot stretch one message past it.
   */
  read(n: number, timeoutMs: number, what: string, completeMs = 0): Promise<Buffer> {
    if (this.pending) return Promise.reject(new Error('StreamReader: concurrent read'));
    if (this.buffered >= n) return Promise.resolve(this.take(n));
    if (this.ended) {
      const e = this.ended;
      const detail = this.buffered > 0 ? ` after ${this.buffered} of ${n} octets` : '';
      return Promise.reject(new TwampSessionError(
        e instanceof TwampSessionError ? e.reason : 'closed', this.peer, `waiting for ${what}${detail}: ${stripPeer(e.message, this.peer)}`));
    }
    return new Promise<Buffer>((resolve, reject) => {
      const p: Pending = { n, what, resolve, reject, timer: undefined, completeMs, completeTimer: undefined };
      if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
        p.timer = setTimeout(() => {
          this.settle(p);
          reject(new TwampSessionError('timeout', this.peer,
            `no ${what} within ${formatMs(timeoutMs)} (got ${this.buffered} of ${n} octets)`));
        }, timeoutMs);
      }
      this.pending = p;
      this.armComplete(p);
    });
  }

  /** Once part of the message is in, it must complete within completeMs. */
  private armComplete(p: Pending): void {
    if (p.completeMs <= 0 || !Number.isFinite(p.completeMs) || p.completeTimer || this.buffered === 0) return;
    p.completeTimer = setTimeout(() => {
      this.settle(p);
      p.reject(new TwampSessionError('timeout', this.peer,
        `${p.what} not complete within ${formatMs(p.completeMs)} of its first octet (got ${this.buffered} of ${p.n} octets)`));
    }, p.completeMs);
  }

  /** Clear a pending read's timers and detach it. */
  private settle(p: Pending): void {
    if (this.pending === p) this.pending = undefined;
    if (p.timer) clearTimeout(p.timer);
    if (p.completeTimer) clearTimeout(p.completeTimer);
  }

  private onData(d: Buffer): void {
    this.chunks.push(d);
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
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    const out = Buffer.from(all.subarray(0, n));
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }
}

function stripPeer(msg: string, peer: string): string {
  return msg.startsWith(`${peer}: `) ? msg.slice(peer.length + 2) : msg;
}

export function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s` : `${ms} ms`;
}
