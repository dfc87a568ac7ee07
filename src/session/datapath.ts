/**
 * TestSocket: the UDP datapath of TWAMP test sessions, with the timestamps
 * taken as close to the wire as this host allows (RFC 5357 §4.1.2 / §4.2.1:
 * T1 just before sending, T2 as the packet arrives, T3 just before the reply
 * leaves; RFC 4656 §4.1.2).
 *
 * Two implementations behind one interface:
 *  - native (Linux, the helper built from native/datapath.cc): receive times
 *    are the kernel's (SO_TIMESTAMPING software stamps; hardware when asked
 *    and the NIC stamps), TTL / TOS of each datagram are read from control
 *    messages, sends are stamped right before sendmsg, kernel TX timestamps
 *    report the real departure, and scheduled packets leave from a native
 *    thread at their deadline (no busy event loop): ONE thread for all
 *    sockets of the process (a min-heap of deadlines), which reads the TX
 *    timestamp of each packet it sent and reports departures to JS in
 *    batches (departureReportMs), so a departure wakes no event loop.
 *  - js (node:dgram): receive time read from the clock in the JS callback,
 *    TTL / TOS unknown (-1), setTimeout pacing, no TX timestamps.
 * `openTestSocket` picks native when available; `datapathSupport()` and each
 * socket's `timestampSource()` / `fallbackReason` say which is in use and why.
 *
 * Times: receive, stamp and TX times are CLOCK_REALTIME ns as bigint (the
 * host's UTC clock, the one clock.ts reads); schedule deadlines and the
 * reported send instants are CLOCK_MONOTONIC ns as bigint — the clock of
 * process.hrtime.bigint() and Clock.monoNs() — so NTP steps never move a
 * schedule. Stamps written into packets are 64-bit NTP timestamps (RFC 5905
 * §6, RFC 4656 §4.1.2) at the byte offset the caller gives; the datapath
 * knows nothing of TWAMP layouts.
 *
 * Authenticated modes: when the timestamp is covered by an HMAC computed in
 * JS, schedule the packet "pre-stamped" (no stampOffset: JS writes the
 * deadline's realtime as T1 and computes the HMAC ahead); the native thread
 * only sends at the deadline and the departure report's txRealtimeNs shows
 * the real departure, so the error stays visible.
 */
import { createSocket, type Socket } from 'node:dgram';
import { writeTimestamp, ntpFromUnixNs } from '../protocol/index.js';
import { systemClock, type Clock } from './clock.js';
import {
  nativeDatapath, loadNative, type SchedulerStats, type RawDatapath, type SocketSettings, type RawDeparture, type RawRx, type RawTsSource, type RawTx,
} from './native.js';
import { setSocketDscp } from './socketOptions.js';

export type TimestampSource = 'hardware' | 'kernel' | 'userspace';
export type { SchedulerStats } from './native.js';

export interface RxDatagram {
  /** The payload (owned by the receiver; at most maxDatagram bytes). */
  data: Buffer;
  /** Source address (IPv6 with %scope when the kernel gave one; v4-mapped on dual-stack sockets). */
  address: string;
  port: number;
  /** Receive time, CLOCK_REALTIME ns. */
  rxRealtimeNs: bigint;
  /** Received IPv4 TTL / IPv6 hop limit; -1 when unknown. */
  ttl: number;
  /** Received IPv4 TOS / IPv6 traffic class (DSCP << 2 | ECN); -1 when unknown. */
  tos: number;
  /** Where rxRealtimeNs came from. */
  tsSource: TimestampSource;
  /** The datagram was longer than maxDatagram and was cut (MSG_TRUNC). */
  truncated: boolean;
}

export interface SendResult {
  /** The time read right before the send, CLOCK_REALTIME ns (written at stampOffset when given). */
  stampedRealtimeNs: bigint;
  /** Id its TX timestamp will carry (onTxTimestamp); -1 when none will come. */
  txId: number;
}

export interface BatchItem {
  data: Buffer;
  address: string;
  port: number;
  stampOffset?: number;
  /** TOS / traffic class byte of this packet only (see SendOptions.tos). */
  tos?: number;
}

export interface SendOptions {
  /** Where to write the send-time NTP timestamp. */
  stampOffset?: number;
  /**
   * TOS / traffic class byte (DSCP << 2 | ECN, 0..255) of this packet only,
   * e.g. a reply carrying the DSCP its request asked for. Native: an IP_TOS
   * (IPv4 and v4-mapped destinations) or IPV6_TCLASS control message, the
   * socket's own setting untouched. node:dgram fallback: the DSCP is set on
   * the socket before the send (sticky until the next change; ECN bits not
   * settable), best effort as setTos — tosStatus() says whether it took.
   * Omitted: the socket's TOS (option `tos`, setTos).
   */
  tos?: number;
}

export interface BatchResult {
  /** How many of the items went out (a prefix of the batch). */
  sent: number;
  /** One clock read stamps the whole batch. */
  stampedRealtimeNs: bigint;
  /** TX ids are firstTxId, firstTxId + 1, …; -1 when none will come. */
  firstTxId: number;
}

export interface ScheduledPacket {
  /** Caller's id, echoed in the departure report (a number; 53-bit integers are exact). */
  id: number;
  /** When to send, CLOCK_MONOTONIC ns (process.hrtime.bigint() / Clock.monoNs()). */
  deadlineMonoNs: bigint;
  /** Copied at schedule time; the caller may reuse its buffer. */
  data: Buffer;
  address: string;
  port: number;
  /** Where to write the send-time NTP timestamp; omit for pre-stamped packets. */
  stampOffset?: number;
  /** TOS / traffic class byte of this packet only (see SendOptions.tos). */
  tos?: number;
}

export interface DepartureReport {
  id: number;
  deadlineMonoNs: bigint;
  /** CLOCK_MONOTONIC ns read right before sendmsg; sentMonoNs - deadlineMonoNs is the scheduling error. */
  sentMonoNs: bigint;
  /** CLOCK_REALTIME ns read right before sendmsg (written at stampOffset when given). */
  stampedRealtimeNs: bigint;
  /** Kernel TX timestamp (CLOCK_REALTIME ns) when one came within the wait; the real departure. */
  txRealtimeNs?: bigint;
  txSource?: TimestampSource;
  /** Set when the send failed. */
  error?: DatapathError;
}

export interface TxTimestamp {
  txId: number;
  realtimeNs: bigint;
  source: TimestampSource;
}

export interface TestSocketOptions extends SocketSettings {
  family: 4 | 6;
  /** Local address; default the unspecified address of the family. */
  address?: string;
  /** Local port; default 0 (any). */
  port?: number;
  /** true: require native (throws when unavailable); false: force node:dgram; default auto. */
  native?: boolean;
  /** Clock of the JS fallback's timestamps; default systemClock(). */
  clock?: Clock;
  /** Received datagrams, in batches. Must not throw (exceptions are routed to onError). */
  onPackets: (batch: RxDatagram[]) => void;
  /** Kernel TX timestamps of every send (native with txTimestamps). */
  onTxTimestamp?: (stamps: TxTimestamp[]) => void;
  /** Scheduled departures. */
  onDeparture?: (reports: DepartureReport[]) => void;
  /** Asynchronous socket errors, and exceptions thrown by the callbacks. Default: ignored. */
  onError?: (err: Error) => void;
}

/** A datapath failure: `code` (errno name or ERR_*), `syscall` when a system call failed. */
export class DatapathError extends Error {
  readonly code: string;
  readonly errno?: number;
  readonly syscall?: string;
  constructor(message: string, code: string, extra: { errno?: number; syscall?: string; cause?: unknown } = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'DatapathError';
    this.code = code;
    if (extra.errno !== undefined) this.errno = extra.errno;
    if (extra.syscall !== undefined) this.syscall = extra.syscall;
  }

  static from(e: unknown, where: string): DatapathError {
    if (e instanceof DatapathError) return e;
    const x = e as { message?: string; code?: unknown; errno?: unknown; syscall?: unknown };
    const code = typeof x?.code === 'string' ? x.code : 'ERR_DATAPATH';
    return new DatapathError(`${where}: ${x?.message ?? String(e)}`, code, {
      ...(typeof x?.errno === 'number' ? { errno: x.errno } : {}),
      ...(typeof x?.syscall === 'string' ? { syscall: x.syscall } : {}),
      cause: e,
    });
  }
}

export interface TestSocket {
  readonly kind: 'native' | 'js';
  readonly family: 4 | 6;
  /** The bound local address. */
  readonly local: { address: string; port: number };
  /** Why the JS fallback is in use (kind 'js' only). */
  readonly fallbackReason?: string;
  /** Where receive timestamps come from on this socket. */
  timestampSource(): TimestampSource;
  /** How scheduled departures are paced: a native thread (and whether SCHED_FIFO took), or setTimeout. */
  schedulerStatus(): { pacing: 'native-thread' | 'setTimeout'; realtime: boolean; reason?: string };
  /** Sends now; stamps the send time at opts.stampOffset. Throws DatapathError. */
  send(data: Buffer, address: string, port: number, opts?: SendOptions): SendResult;
  /** Sends several datagrams with one stamp (the reflector's bulk path). Throws DatapathError. */
  sendBatch(items: BatchItem[]): BatchResult;
  /** Queues a departure at an absolute CLOCK_MONOTONIC deadline. Throws DatapathError. */
  schedule(p: ScheduledPacket): void;
  setTtl(ttl: number): void;
  setTos(tos: number): void;
  /** Whether the TOS / traffic class asked for (option `tos`, setTos) is applied to sent packets, and why not. */
  tosStatus(): { ok: boolean; reason?: string };
  ref(): void;
  unref(): void;
  /** Idempotent; pending scheduled departures are dropped. */
  close(): void;
}

/** Whether the native datapath can be used here, and what receive timestamps it gives. */
export function datapathSupport(): { native: true; timestampSource: TimestampSource } | {
  native: false; timestampSource: 'userspace'; reason: string;
} {
  const n = nativeDatapath();
  return 'reason' in n ? { native: false, timestampSource: 'userspace', reason: n.reason } : { native: true, timestampSource: 'kernel' };
}

/**
 * Counters of the process-wide native scheduler thread (departures, spin,
 * wake-up latency estimate, spin budget in effect); undefined without the
 * native datapath.
 */
export function schedulerStats(): SchedulerStats | undefined {
  if ('reason' in nativeDatapath()) return undefined;
  const l = loadNative();
  return 'addon' in l ? l.addon.schedulerStats?.() : undefined;
}

const TS_SOURCES: readonly TimestampSource[] = ['userspace', 'kernel', 'hardware'];
const tsSource = (c: RawTsSource): TimestampSource => TS_SOURCES[c] ?? 'userspace';

/** How long a departure report waits for its kernel TX timestamp. */
const TX_WAIT_MS = 20;
/** TX timestamps kept for departures not yet reported (they may arrive first). */
const TX_KEEP = 4096;

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new DatapathError(`${what}: port must be an integer in 0..65535, got ${String(port)}`, 'ERR_SOCKET_BAD_PORT');
  }
}

function checkTos(tos: number | undefined): void {
  if (tos === undefined) return;
  if (!Number.isInteger(tos) || tos < 0 || tos > 255) {
    throw new DatapathError(`tos must be an integer in 0..255, got ${String(tos)}`, 'ERR_OUT_OF_RANGE');
  }
}

function checkStampOffset(data: Buffer, off: number | undefined): void {
  if (off === undefined) return;
  if (!Number.isInteger(off) || off < 0 || off + 8 > data.length) {
    throw new DatapathError(`stampOffset ${String(off)} + 8 exceeds the ${data.length}-byte packet`, 'ERR_OUT_OF_RANGE');
  }
}

/** What both implementations share: the closed state and how a callback's exception is contained. */
abstract class TestSocketBase {
  protected closed = false;

  constructor(protected readonly opts: TestSocketOptions) {}

  /** Report to onError; an exception from a callback never goes past the socket. */
  protected fail(e: Error): void {
    try {
      this.opts.onError?.(e);
    } catch {
      // an error handler that throws has nowhere further to go
    }
  }

  protected guard(what: string): void {
    if (this.closed) throw new DatapathError(`${what}: the test socket is closed`, 'ERR_SOCKET_CLOSED');
  }
}

class NativeTestSocket extends TestSocketBase implements TestSocket {
  readonly kind = 'native' as const;
  readonly local: { address: string; port: number };
  /** Departures waiting for their TX timestamp, by TX id. */
  private readonly waiting = new Map<number, { report: DepartureReport; at: number }>();
  /** TX timestamps that came before their departure report. */
  private readonly earlyTx = new Map<number, TxTimestamp>();
  private scheduled = 0;
  private lastSource: TimestampSource | undefined;
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(private readonly raw: RawDatapath, readonly family: 4 | 6, opts: TestSocketOptions) {
    super(opts);
    try {
      this.local = raw.bind(opts.address ?? (family === 6 ? '::' : '0.0.0.0'), opts.port ?? 0);
    } catch (e) {
      raw.close();
      throw DatapathError.from(e, `cannot bind native test socket ${opts.address ?? ''} port ${opts.port ?? 0}`);
    }
  }

  /** The source of the latest datagram's timestamp; before any, the configured one. */
  timestampSource(): TimestampSource {
    return this.lastSource ?? (this.opts.hardwareTimestamps ? 'hardware' : 'kernel');
  }

  schedulerStatus(): { pacing: 'native-thread'; realtime: boolean; reason?: string } {
    const want = this.opts.schedulerPriority ?? 0;
    const st = this.raw.timestamping.schedulerRealtime;
    if (want <= 0) return { pacing: 'native-thread', realtime: false, reason: 'schedulerPriority not set' };
    if (st === -1) return { pacing: 'native-thread', realtime: true };
    if (st === 0) return { pacing: 'native-thread', realtime: false, reason: 'the scheduler thread starts with the first schedule()' };
    return { pacing: 'native-thread', realtime: false, reason: `SCHED_FIFO ${want} refused (errno ${st}; needs CAP_SYS_NICE or RLIMIT_RTPRIO)` };
  }

  onRecv(err: Error | null, recs: RawRx[] | null): void {
    if (err !== null) return this.fail(DatapathError.from(err, 'native test socket receive'));
    if (recs === null || this.closed) return;
    const batch: RxDatagram[] = new Array(recs.length);
    for (let i = 0; i < recs.length; i++) {
      const r = recs[i]!;
      batch[i] = {
        data: r[0], address: r[1], port: r[2], rxRealtimeNs: r[3], ttl: r[4], tos: r[5],
        tsSource: tsSource(r[6]), truncated: r[7],
      };
    }
    if (recs.length > 0) this.lastSource = batch[recs.length - 1]!.tsSource;
    try {
      this.opts.onPackets(batch);
    } catch (e) {
      this.fail(e as Error);
    }
  }

  onTx(recs: RawTx[]): void {
    if (this.closed) return;
    const stamps: TxTimestamp[] = recs.map((r) => ({ txId: r[0], realtimeNs: r[1], source: tsSource(r[2]) }));
    for (const s of stamps) {
      const w = this.waiting.get(s.txId);
      if (w !== undefined) {
        this.waiting.delete(s.txId);
        w.report.txRealtimeNs = s.realtimeNs;
        w.report.txSource = s.source;
        this.emitDepartures([w.report]);
      } else if (this.scheduled > 0) {
        this.earlyTx.set(s.txId, s);
        if (this.earlyTx.size > TX_KEEP) this.earlyTx.delete(this.earlyTx.keys().next().value as number);
      }
    }
    if (this.opts.onTxTimestamp) {
      try {
        this.opts.onTxTimestamp(stamps);
      } catch (e) {
        this.fail(e as Error);
      }
    }
  }

  onDeparture(recs: RawDeparture[]): void {
    if (this.closed) return;
    const ready: DepartureReport[] = [];
    const now = Date.now();
    for (const r of recs) {
      this.scheduled--;
      const report: DepartureReport = { id: r[0], deadlineMonoNs: r[1], sentMonoNs: r[2], stampedRealtimeNs: r[3] };
      if (r[6] !== null) report.error = DatapathError.from(r[6], `scheduled departure ${r[0]}`);
      const key = r[4];
      if (r[7] !== null && r[7] !== undefined) {
        // The scheduler thread read this departure's TX timestamp itself.
        report.txRealtimeNs = r[7];
        report.txSource = tsSource(r[8]);
        ready.push(report);
        continue;
      }
      if (key < 0) {
        ready.push(report);
        continue;
      }
      const tx = this.earlyTx.get(key);
      if (tx !== undefined) {
        this.earlyTx.delete(key);
        report.txRealtimeNs = tx.realtimeNs;
        report.txSource = tx.source;
        ready.push(report);
      } else {
        this.waiting.set(key, { report, at: now });
      }
    }
    if (this.scheduled <= 0) this.earlyTx.clear();
    if (ready.length > 0) this.emitDepartures(ready);
    if (this.waiting.size > 0 && this.flushTimer === undefined) {
      this.flushTimer = setTimeout(() => this.flushWaiting(), TX_WAIT_MS);
      this.flushTimer.unref();
    }
  }

  private flushWaiting(): void {
    this.flushTimer = undefined;
    const cutoff = Date.now() - TX_WAIT_MS;
    const out: DepartureReport[] = [];
    for (const [k, w] of this.waiting) {
      if (w.at <= cutoff) {
        this.waiting.delete(k);
        out.push(w.report);
      }
    }
    if (out.length > 0) this.emitDepartures(out);
    if (this.waiting.size > 0) {
      this.flushTimer = setTimeout(() => this.flushWaiting(), TX_WAIT_MS);
      this.flushTimer.unref();
    }
  }

  private emitDepartures(reports: DepartureReport[]): void {
    if (!this.opts.onDeparture) return;
    try {
      this.opts.onDeparture(reports);
    } catch (e) {
      this.fail(e as Error);
    }
  }


  send(data: Buffer, address: string, port: number, opts: SendOptions = {}): SendResult {
    this.guard('send');
    checkPort(port, 'send');
    checkStampOffset(data, opts.stampOffset);
    checkTos(opts.tos);
    try {
      const [stampedRealtimeNs, txId] = this.raw.send(data, address, port, opts.stampOffset, opts.tos);
      return { stampedRealtimeNs, txId };
    } catch (e) {
      throw DatapathError.from(e, `send to ${address} port ${port}`);
    }
  }

  sendBatch(items: BatchItem[]): BatchResult {
    this.guard('sendBatch');
    for (const it of items) {
      checkPort(it.port, 'sendBatch');
      checkStampOffset(it.data, it.stampOffset);
      checkTos(it.tos);
    }
    try {
      const [sent, stampedRealtimeNs, firstTxId] = this.raw.sendBatch(
        items.map((it) => [it.data, it.address, it.port, it.stampOffset, it.tos]));
      return { sent, stampedRealtimeNs, firstTxId };
    } catch (e) {
      throw DatapathError.from(e, `sendBatch of ${items.length}`);
    }
  }

  schedule(p: ScheduledPacket): void {
    this.guard('schedule');
    checkPort(p.port, 'schedule');
    checkStampOffset(p.data, p.stampOffset);
    checkTos(p.tos);
    try {
      this.raw.schedule(p.id, p.deadlineMonoNs, p.data, p.address, p.port, p.stampOffset, p.tos);
      this.scheduled++;
    } catch (e) {
      throw DatapathError.from(e, `schedule ${p.id} to ${p.address} port ${p.port}`);
    }
  }

  setTtl(ttl: number): void {
    this.guard('setTtl');
    try {
      this.raw.setTtl(ttl);
    } catch (e) {
      throw DatapathError.from(e, `setTtl(${ttl})`);
    }
  }

  tosStatus(): { ok: boolean } {
    return { ok: true }; // setsockopt refusals throw at open / setTos
  }

  setTos(tos: number): void {
    this.guard('setTos');
    try {
      this.raw.setTos(tos);
    } catch (e) {
      throw DatapathError.from(e, `setTos(${tos})`);
    }
  }

  ref(): void {
    if (!this.closed) this.raw.ref();
  }

  unref(): void {
    if (!this.closed) this.raw.unref();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.waiting.clear();
    this.earlyTx.clear();
    this.raw.close();
  }
}

interface JsScheduled extends ScheduledPacket {
  seq: number;
}

/** node:dgram fallback: userspace timestamps, setTimeout pacing. */
class JsTestSocket extends TestSocketBase implements TestSocket {
  readonly kind = 'js' as const;
  private readonly queue: JsScheduled[] = [];
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly maxDatagram: number;

  constructor(
    private readonly sock: Socket,
    readonly family: 4 | 6,
    readonly local: { address: string; port: number },
    readonly fallbackReason: string,
    private readonly clock: Clock,
    opts: TestSocketOptions,
  ) {
    super(opts);
    this.maxDatagram = opts.maxDatagram ?? 65536;
    sock.on('message', (msg, rinfo) => this.onMessage(msg, rinfo.address, rinfo.port));
    sock.on('error', (e) => this.fail(DatapathError.from(e, 'test socket')));
  }

  timestampSource(): TimestampSource {
    return 'userspace';
  }

  schedulerStatus(): { pacing: 'setTimeout'; realtime: false; reason: string } {
    return { pacing: 'setTimeout', realtime: false, reason: this.fallbackReason };
  }

  private onMessage(msg: Buffer, address: string, port: number): void {
    const rxRealtimeNs = this.clock.nowUnixNs();
    if (this.closed) return;
    const truncated = msg.length > this.maxDatagram;
    const d: RxDatagram = {
      data: truncated ? msg.subarray(0, this.maxDatagram) : msg,
      address, port, rxRealtimeNs, ttl: -1, tos: -1, tsSource: 'userspace', truncated,
    };
    try {
      this.opts.onPackets([d]);
    } catch (e) {
      this.fail(e as Error);
    }
  }


  /** The TOS last applied to the socket (per-packet tos in the fallback is a sticky setsockopt). */
  private appliedTos = 0;

  private applyTos(tos: number | undefined): void {
    if (tos === undefined || tos === this.appliedTos) return;
    this.setTos(tos);
  }

  private sendNow(data: Buffer, address: string, port: number, stampOffset: number | undefined, tos?: number): bigint {
    this.applyTos(tos);
    const now = this.clock.nowUnixNs();
    if (stampOffset !== undefined) writeTimestamp(data, stampOffset, ntpFromUnixNs(now));
    try {
      this.sock.send(data, port, address, (err) => {
        if (err) this.fail(DatapathError.from(err, `send to ${address} port ${port}`));
      });
    } catch (e) {
      throw DatapathError.from(e, `send to ${address} port ${port}`);
    }
    return now;
  }

  send(data: Buffer, address: string, port: number, opts: SendOptions = {}): SendResult {
    this.guard('send');
    checkPort(port, 'send');
    if (port === 0) throw new DatapathError(`send to ${address} port 0: not a destination port`, 'ERR_SOCKET_BAD_PORT');
    checkStampOffset(data, opts.stampOffset);
    checkTos(opts.tos);
    return { stampedRealtimeNs: this.sendNow(data, address, port, opts.stampOffset, opts.tos), txId: -1 };
  }

  sendBatch(items: BatchItem[]): BatchResult {
    this.guard('sendBatch');
    for (const it of items) {
      checkPort(it.port, 'sendBatch');
      if (it.port === 0) throw new DatapathError(`sendBatch to ${it.address} port 0: not a destination port`, 'ERR_SOCKET_BAD_PORT');
      checkStampOffset(it.data, it.stampOffset);
      checkTos(it.tos);
    }
    const now = this.clock.nowUnixNs();
    const ntp = ntpFromUnixNs(now);
    for (const it of items) {
      if (it.stampOffset !== undefined) writeTimestamp(it.data, it.stampOffset, ntp);
      this.applyTos(it.tos);
      try {
        this.sock.send(it.data, it.port, it.address, (err) => {
          if (err) this.fail(DatapathError.from(err, `send to ${it.address} port ${it.port}`));
        });
      } catch (e) {
        throw DatapathError.from(e, `sendBatch to ${it.address} port ${it.port}`);
      }
    }
    return { sent: items.length, stampedRealtimeNs: now, firstTxId: -1 };
  }

  schedule(p: ScheduledPacket): void {
    this.guard('schedule');
    checkPort(p.port, 'schedule');
    checkStampOffset(p.data, p.stampOffset);
    checkTos(p.tos);
    const item: JsScheduled = { ...p, data: Buffer.from(p.data), seq: this.seq++ };
    // Sorted insert (deadline, then FIFO); schedules are mostly appended in order.
    let i = this.queue.length;
    while (i > 0 && this.queue[i - 1]!.deadlineMonoNs > item.deadlineMonoNs) i--;
    this.queue.splice(i, 0, item);
    if (i === 0) this.arm();
  }

  private arm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const head = this.queue[0];
    if (head === undefined || this.closed) return;
    const waitMs = Number(head.deadlineMonoNs - process.hrtime.bigint()) / 1e6;
    this.timer = setTimeout(() => this.fire(), Math.max(0, waitMs));
  }

  private fire(): void {
    this.timer = undefined;
    const now = process.hrtime.bigint();
    const out: DepartureReport[] = [];
    while (this.queue.length > 0 && this.queue[0]!.deadlineMonoNs <= now) {
      const p = this.queue.shift()!;
      const sentMonoNs = process.hrtime.bigint();
      const r: DepartureReport = { id: p.id, deadlineMonoNs: p.deadlineMonoNs, sentMonoNs, stampedRealtimeNs: 0n };
      try {
        r.stampedRealtimeNs = this.sendNow(p.data, p.address, p.port, p.stampOffset, p.tos);
      } catch (e) {
        r.error = DatapathError.from(e, `scheduled departure ${p.id}`);
      }
      out.push(r);
    }
    this.arm();
    if (out.length > 0 && this.opts.onDeparture) {
      try {
        this.opts.onDeparture(out);
      } catch (e) {
        this.fail(e as Error);
      }
    }
  }

  setTtl(ttl: number): void {
    this.guard('setTtl');
    try {
      this.sock.setTTL(ttl);
    } catch (e) {
      throw DatapathError.from(e, `setTtl(${ttl})`);
    }
  }

  private tosResult: { ok: boolean; reason?: string } = { ok: true };

  tosStatus(): { ok: boolean; reason?: string } {
    return this.tosResult;
  }

  /** Best effort: DSCP through the helper when it is built (the ECN bits stay 0); tosStatus() says whether it took. */
  setTos(tos: number): void {
    this.guard('setTos');
    if (!Number.isInteger(tos) || tos < 0 || tos > 255) {
      throw new DatapathError(`tos must be an integer in 0..255, got ${String(tos)}`, 'ERR_OUT_OF_RANGE');
    }
    const r = setSocketDscp(this.sock, tos >> 2);
    this.appliedTos = tos;
    this.tosResult = r.ok ? { ok: true } : { ok: false, reason: r.reason };
  }

  ref(): void {
    if (!this.closed) this.sock.ref();
  }

  unref(): void {
    if (!this.closed) this.sock.unref();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.queue.length = 0;
    try {
      this.sock.close();
    } catch {
      // already closed
    }
  }
}

async function openJs(opts: TestSocketOptions, reason: string): Promise<TestSocket> {
  const family = opts.family;
  const sock = createSocket({
    type: family === 6 ? 'udp6' : 'udp4',
    ipv6Only: family === 6 ? opts.ipv6Only ?? true : false,
    ...(opts.rcvbuf !== undefined ? { recvBufferSize: opts.rcvbuf } : {}),
  });
  const address = opts.address ?? (family === 6 ? '::' : '0.0.0.0');
  await new Promise<void>((resolve, reject) => {
    const onErr = (e: Error): void => {
      try {
        sock.close();
      } catch {
        // not open
      }
      reject(DatapathError.from(e, `cannot bind test socket ${address} port ${opts.port ?? 0}`));
    };
    sock.once('error', onErr);
    sock.bind({ address, port: opts.port ?? 0, exclusive: true }, () => {
      sock.removeListener('error', onErr);
      resolve();
    });
  });
  const a = sock.address();
  const s = new JsTestSocket(sock, family, { address: a.address, port: a.port }, reason, opts.clock ?? systemClock(), opts);
  s.setTtl(opts.ttl ?? 255);
  if (opts.tos !== undefined && opts.tos !== 0) s.setTos(opts.tos);
  return s;
}

/**
 * Opens and binds a test socket: native when the helper is available (or
 * required with native: true), else node:dgram. Throws DatapathError.
 */
export async function openTestSocket(opts: TestSocketOptions): Promise<TestSocket> {
  if (opts.family !== 4 && opts.family !== 6) {
    throw new DatapathError(`family must be 4 or 6, got ${String(opts.family)}`, 'ERR_INVALID_ARG');
  }
  if (opts.native === false) return openJs(opts, 'native datapath not requested (native: false)');
  const n = nativeDatapath();
  if ('reason' in n) {
    if (opts.native === true) throw new DatapathError(`native datapath required but unavailable: ${n.reason}`, 'ERR_NATIVE_UNAVAILABLE');
    return openJs(opts, n.reason);
  }
  let sock: NativeTestSocket | undefined;
  let raw: RawDatapath;
  try {
    raw = new n.Datapath({
      family: opts.family,
      onRecv: (err, recs) => sock?.onRecv(err, recs),
      onTx: (recs) => sock?.onTx(recs),
      onDeparture: (recs) => sock?.onDeparture(recs),
      ...(opts.rcvbuf !== undefined ? { rcvbuf: opts.rcvbuf } : {}),
      ipv6Only: opts.family === 6 ? opts.ipv6Only ?? true : false,
      hardwareTimestamps: opts.hardwareTimestamps ?? false,
      txTimestamps: opts.txTimestamps ?? true,
      ...(opts.maxDatagram !== undefined ? { maxDatagram: opts.maxDatagram } : {}),
      ttl: opts.ttl ?? 255,
      tos: opts.tos ?? 0,
      ...(opts.schedulerPriority !== undefined ? { schedulerPriority: opts.schedulerPriority } : {}),
      ...(opts.schedulerSpinUs !== undefined ? { schedulerSpinUs: opts.schedulerSpinUs } : {}),
      ...(opts.schedulerSpinBudgetUs !== undefined ? { schedulerSpinBudgetUs: opts.schedulerSpinBudgetUs } : {}),
      ...(opts.departureReportMs !== undefined ? { departureReportMs: opts.departureReportMs } : {}),
      ...(opts.receiveReportMs !== undefined ? { receiveReportMs: opts.receiveReportMs } : {}),
    });
  } catch (e) {
    throw DatapathError.from(e, 'cannot open native test socket');
  }
  sock = new NativeTestSocket(raw, opts.family, opts);
  return sock;
}
