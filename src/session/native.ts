/**
 * The optional native helper (build/Release/twamp_sockopt.node, built from
 * native/ by `npm run build:native`; the package's install script tries to
 * build it and never fails the install): one loader and the typed surface of
 * what it exports.
 *
 *  - setTos/getTos/clockStatus: DSCP marking and the kernel's clock
 *    discipline state (used by socketOptions.ts);
 *  - realtimeNs/monotonicNs: clock_gettime(CLOCK_REALTIME / CLOCK_MONOTONIC)
 *    as bigint ns (used by clock.ts);
 *  - Datapath: the native test socket (native/datapath.cc; wrapped by
 *    datapath.ts), Linux only.
 *
 * OTEL_TWAMP_NATIVE=0 turns the native datapath and the native clock off
 * (tests of the pure-JS fallbacks, or an operator's escape hatch); DSCP
 * marking still uses the helper.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { messageOf } from '../util/errors.js';

/** The kernel's clock discipline state (NTP/PTP daemons keep it). */
export interface KernelClockStatus {
  synchronized: boolean;
  /** Estimated error, µs. */
  estErrorUs: number;
  /** Maximum error, µs. */
  maxErrorUs: number;
}

/** Socket and scheduler settings of a test socket, native or node:dgram (where the latter can honour them). */
export interface SocketSettings {
  /** SO_RCVBUF bytes; default the system's. */
  rcvbuf?: number;
  /** IPV6_V6ONLY for family 6; default true (as the sessions' sockets, udp.ts). */
  ipv6Only?: boolean;
  /** Ask for NIC hardware timestamps too (native; default false). */
  hardwareTimestamps?: boolean;
  /** Kernel TX software timestamps (native; default true). */
  txTimestamps?: boolean;
  /** Largest datagram kept; longer ones are cut and flagged `truncated`. Default 65536. */
  maxDatagram?: number;
  /** TTL / hop limit of sent packets; default 255 (RFC 5357 §4.1.2 / §4.2.1). */
  ttl?: number;
  /** TOS / traffic class byte of sent packets; default 0. */
  tos?: number;
  /**
   * SCHED_FIFO priority (1..99) for the native scheduler thread, so departures
   * keep their deadlines on a busy host; needs CAP_SYS_NICE or RLIMIT_RTPRIO.
   * Default 0 (normal priority). See TestSocket.schedulerStatus().
   */
  schedulerPriority?: number;
  /**
   * Native scheduler: the most it may wake before a deadline and busy-wait
   * the rest (0..1000 µs). The thread measures its own timer wake-up latency
   * (a running p95 estimate, 70–100 µs from an idle vCPU on the 2-core VM of
   * docs/internals.md, 20–40 µs when busy) and wakes that much plus 5 µs
   * early, capped here, so a departure costs the latency's spread in spin,
   * not this whole amount. Default 0 (no spinning: departures lag by the
   * wake-up latency).
   */
  schedulerSpinUs?: number;
  /**
   * Native scheduler: spin time allowed to all sockets of the process
   * together, µs per second of wall time (0..1,000,000; default 10,000 = 1 %
   * of a core). A token bucket holding at most 100 ms of it: the early
   * wake-up never exceeds what is in it, so the spin does not grow with the
   * number of sockets (40 g711 senders are 2,000 departures a second). One
   * sender at 50 pps needs ≤ 25,000 (500 µs × 50) and spends far less: the
   * early wake-up takes most of it. The process-wide thread uses
   * the largest budget of the open sockets that schedule; 0 never spins.
   */
  schedulerSpinBudgetUs?: number;
  /**
   * Native: departure reports reach onDeparture at most this often per
   * socket (0..10000 ms; 0 = after every wake-up of the scheduler), and as
   * soon as the socket has nothing more scheduled. Default 20.
   */
  departureReportMs?: number;
  /**
   * Native: 0 (default) delivers received datagrams (and TX timestamps) from
   * the event loop as they arrive. > 0 (1..10000 ms): a native receive
   * thread shared by the process reads them with their kernel timestamps as
   * they arrive and hands them to onPackets in batches at most this often,
   * on a grid shared by every socket — no event-loop wake-up per reply or
   * per TX timestamp. For senders (T4 is the kernel's receive time, so the
   * delay changes no figure); a reflector must keep 0 (its T3 − T2 would
   * include the delay).
   */
  receiveReportMs?: number;
}

/** Options of the native Datapath constructor (see native/datapath.cc). */
export interface RawDatapathOptions extends SocketSettings {
  family: 4 | 6;
  /** (error, records): records are [data, address, port, rxRealtimeNs, ttl, tos, tsSource, truncated, ctruncated]. */
  onRecv: (err: Error | null, records: RawRx[] | null) => void;
  /** TX timestamps: [txKey, realtimeNs, tsSource]. */
  onTx: (records: RawTx[]) => void;
  /**
   * Scheduled departures, in batches: [id, deadlineMonoNs, sentMonoNs, stampedRealtimeNs, txKey, errno, error,
   * txRealtimeNs (the kernel TX timestamp the scheduler thread read right after the send) | null, txSource].
   */
  onDeparture: (records: RawDeparture[]) => void;
}

/** Timestamp source codes of the native records: 0 userspace, 1 kernel, 2 hardware. */
export type RawTsSource = 0 | 1 | 2;
export type RawRx = [Buffer, string, number, bigint, number, number, RawTsSource, boolean, boolean];
export type RawTx = [number, bigint, RawTsSource];
export type RawDeparture = [number, bigint, bigint, bigint, number, number, Error | null, bigint | null, RawTsSource];

export interface RawDatapath {
  bind(address: string, port: number): { address: string; port: number };
  /**
   * Stamps CLOCK_REALTIME (NTP format) into `data` at stampOffset, sends; [stampedRealtimeNs, txKey].
   * `tos` (0..255) marks this packet only (IP_TOS / IPV6_TCLASS control message).
   */
  send(data: Buffer, address: string, port: number, stampOffset?: number, tos?: number): [bigint, number];
  /** One clock read for the batch, one sendmmsg; [sent, stampedRealtimeNs, firstTxKey]. Items: [data, address, port, stampOffset, tos?]. */
  sendBatch(items: [Buffer, string, number, number | undefined, (number | undefined)?][]): [number, bigint, number];
  /** Sends a copy of `data` at the CLOCK_MONOTONIC deadline from the process-wide scheduler thread. */
  schedule(id: number, deadlineMonoNs: bigint, data: Buffer, address: string, port: number, stampOffset?: number, tos?: number): void;
  setTtl(ttl: number): void;
  setTos(tos: number): void;
  ref(): void;
  unref(): void;
  close(): void;
  readonly fd: number;
  /** schedulerRealtime: 0 normal priority (or not started), -1 SCHED_FIFO in effect, > 0 errno of the refusal. */
  readonly timestamping: { soTimestamping: boolean; tx: boolean; hardware: boolean; schedulerRealtime: number };
}

/** Counters of the process-wide native scheduler thread (native/datapath.cc), since the process started. */
export interface SchedulerStats {
  /** Departures sent. */
  departures: number;
  /** Departures preceded by a spin, and the time spun in all, ns. */
  spins: number;
  spunNs: number;
  /** The thread's running p95 estimate of its timer wake-up latency, ns. */
  wakeLatencyP95Ns: number;
  /** Spin budget in effect, µs per second of wall time (0 while no open socket schedules). */
  spinBudgetUs: number;
}

export interface NativeAddon {
  setTos(fd: number, family: 4 | 6, tos: number): void;
  getTos(fd: number, family: 4 | 6): number;
  /** Linux adjtimex(2) query; undefined elsewhere (absent in older builds). */
  clockStatus?(): KernelClockStatus | undefined;
  realtimeNs?(): bigint;
  monotonicNs?(): bigint;
  schedulerStats?(): SchedulerStats;
  Datapath?: new (opts: RawDatapathOptions) => RawDatapath;
}

const ADDON_NAME = 'twamp_sockopt.node';
export const NATIVE_ENABLE_HINT =
  'install python3, make and a C++ compiler and run `npm run build:native` in the otel-twamp package directory';

let loaded: { addon: NativeAddon; path: string } | { reason: string } | undefined;

/** The directory holding otel-twamp's package.json (src/ and dist/src/ alike). */
function packageRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'otel-twamp') return dir;
      } catch {
        // unreadable package.json: keep looking upwards
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** Loads the native helper once; the reason says why it is unavailable. */
export function loadNative(): { addon: NativeAddon; path: string } | { reason: string } {
  if (loaded !== undefined) return loaded;
  if (process.platform === 'win32') {
    loaded = { reason: 'the native helper is not supported on Windows' };
    return loaded;
  }
  const root = packageRoot();
  if (root === undefined) {
    loaded = { reason: 'cannot locate the otel-twamp package root (package.json) to find the native helper' };
    return loaded;
  }
  const candidates = [join(root, 'build', 'Release', ADDON_NAME), join(root, 'build', 'Debug', ADDON_NAME)];
  const path = candidates.find((p) => existsSync(p));
  if (path === undefined) {
    loaded = { reason: `native helper not built (${candidates[0]} is missing)` };
    return loaded;
  }
  try {
    const addon = createRequire(import.meta.url)(path) as Partial<NativeAddon>;
    if (typeof addon.setTos !== 'function' || typeof addon.getTos !== 'function') {
      loaded = { reason: `native helper ${path} lacks setTos/getTos (stale build)` };
    } else {
      loaded = { addon: addon as NativeAddon, path };
    }
  } catch (e) {
    loaded = { reason: `native helper ${path} failed to load (${messageOf(e)})` };
  }
  return loaded;
}

/** Why OTEL_TWAMP_NATIVE turns the native datapath and clock off, or undefined. */
export function nativeForcedOff(): string | undefined {
  const v = (process.env.OTEL_TWAMP_NATIVE ?? '').trim().toLowerCase();
  return v === '0' || v === 'false' || v === 'off' || v === 'no' ? `OTEL_TWAMP_NATIVE=${v}` : undefined;
}

/** The native datapath constructor, or why there is none. */
export function nativeDatapath(): { Datapath: new (opts: RawDatapathOptions) => RawDatapath } | { reason: string } {
  const off = nativeForcedOff();
  if (off !== undefined) return { reason: `native datapath disabled by ${off}` };
  const l = loadNative();
  if (!('addon' in l)) return { reason: `${l.reason}; to enable it, ${NATIVE_ENABLE_HINT}` };
  if (typeof l.addon.Datapath !== 'function') {
    return {
      reason: process.platform === 'linux'
        ? `native helper ${l.path} has no Datapath (stale build); rebuild it: ${NATIVE_ENABLE_HINT}`
        : `the native datapath is Linux-only (${process.platform})`,
    };
  }
  return { Datapath: l.addon.Datapath };
}

/** clock_gettime(CLOCK_REALTIME) through the helper, or why it is unavailable. */
export function nativeRealtime(): { realtimeNs: () => bigint } | { reason: string } {
  const off = nativeForcedOff();
  if (off !== undefined) return { reason: `native clock disabled by ${off}` };
  const l = loadNative();
  if (!('addon' in l)) return { reason: l.reason };
  const f = l.addon.realtimeNs;
  if (typeof f !== 'function') return { reason: `native helper ${l.path} has no realtimeNs (stale build or not Linux)` };
  return { realtimeNs: f };
}
