/**
 * The one clock behind every TWAMP timestamp (RFC 4656 §4.1.2, RFC 5357
 * §4.1.2): the host's UTC clock.
 *
 * With the native helper (Linux), every reading is clock_gettime(
 * CLOCK_REALTIME) — one cheap N-API call — the same clock the kernel stamps
 * received and sent packets with (native/datapath.cc). So a timestamp taken
 * here and one the kernel took agree, same-host one-way delays are never
 * negative, and NTP steps and slews are followed as they happen.
 *
 * Without it (not built, not Linux, or OTEL_TWAMP_NATIVE=0) the fallback is
 * anchored: the wall clock read once, advanced by the monotonic clock. It has
 * ns resolution and never goes backwards, but it drifts from the kernel's
 * clock (tens of µs from the start, more as NTP slews) and misses steps;
 * `source` says which one is in use.
 *
 * monoNs() is CLOCK_MONOTONIC (process.hrtime.bigint()): schedules and
 * durations, never moved by NTP.
 */
import { performance } from 'node:perf_hooks';
import { ntpFromUnixNs, errorEstimateFromSeconds, ERROR_ESTIMATE_UNSYNC_MIN } from '../protocol/index.js';
import { nativeRealtime } from './native.js';
import { kernelClockStatus, type KernelClockStatus } from './socketOptions.js';

/** Which UTC clock SystemClock reads. */
export type ClockSource =
  | { kind: 'realtime' }
  /** The anchored fallback, with why the native clock is unavailable. */
  | { kind: 'anchored'; reason: string };

export interface Clock {
  /** Current time as an NTP 64-bit timestamp. */
  nowNtp(): bigint;
  /** Current time as Unix nanoseconds (same source as nowNtp). */
  nowUnixNs(): bigint;
  /** Monotonic nanoseconds, for durations and schedules. */
  monoNs(): bigint;
  /** Error Estimate (RFC 4656 §4.1.2) to put next to timestamps of this clock. */
  readonly errorEstimate: number;
  /** Whether the host clock is known to be synchronised to UTC. */
  readonly synchronized: boolean;
}

export interface SystemClockOptions {
  /** Whether the host clock is synchronised (S bit); default: ask the kernel (adjtimex). */
  synchronized?: boolean;
  /** Claimed timestamp error in seconds; default: the kernel's estimate, else 1 s. */
  errorSeconds?: number;
  /** Source of the kernel state (tests); default the native helper's adjtimex. */
  kernelStatus?: () => KernelClockStatus | undefined;
  /** CLOCK_REALTIME reader (tests); default the native helper's, else the anchored fallback. */
  realtimeNs?: (() => bigint) | null;
}

/** How often the kernel's sync state is read again (it changes when NTP locks or loses sync). */
const STATUS_REFRESH_MS = 10_000;

export class SystemClock implements Clock {
  private readonly anchorUnixNs: bigint;
  private readonly anchorMonoNs: bigint;
  private state: { synchronized: boolean; errorEstimate: number; at: number } | undefined;
  /** Which UTC clock nowUnixNs() reads. */
  readonly source: ClockSource;

  constructor(private readonly opts: SystemClockOptions = {}) {
    // timeOrigin + now() carries µs precision, better than Date.now()'s ms.
    const mono = process.hrtime.bigint();
    const wallMs = performance.timeOrigin + performance.now();
    this.anchorMonoNs = mono;
    this.anchorUnixNs = BigInt(Math.round(wallMs * 1e6));
    let realtime: (() => bigint) | undefined;
    if (opts.realtimeNs === null) {
      this.source = { kind: 'anchored', reason: 'native clock not requested' };
    } else if (opts.realtimeNs !== undefined) {
      realtime = opts.realtimeNs;
      this.source = { kind: 'realtime' };
    } else {
      const n = nativeRealtime();
      if ('reason' in n) {
        this.source = { kind: 'anchored', reason: n.reason };
      } else {
        realtime = n.realtimeNs;
        this.source = { kind: 'realtime' };
      }
    }
    if (realtime !== undefined) this.nowUnixNs = realtime;
  }

  /**
   * The S bit and error of the Error Estimate (RFC 4656 §4.1.2): synchronised
   * when the kernel says an NTP/PTP discipline holds the clock (adjtimex
   * STA_UNSYNC clear), with its estimated error (1 ms when it gives none).
   *
   * Unsynchronised (or when the kernel cannot be asked): S clear and the
   * smallest estimate, Scale 0 / Multiplier 1 (2^-32 s) — what perfSONAR's
   * own twampd and twping send in that state. With S clear the figure makes
   * no claim about UTC (the S bit is the honest part), and readers add it
   * up: twping prints `err=` as the sum of the four timestamps' estimates
   * (sender send, reflector receive, reflector send, sender receive), so the
   * kernel's unsynchronised maximum error (16 s) showed as
   * `err=3.2e+04 ms` next to a 30 µs round trip, while round-trip and
   * processing delays are each a difference of two readings of one clock.
   * Never multiplier 0. Options override both.
   */
  private current(): { synchronized: boolean; errorEstimate: number } {
    const now = Date.now();
    if (this.state && now - this.state.at < STATUS_REFRESH_MS) return this.state;
    const k = this.opts.synchronized === undefined || this.opts.errorSeconds === undefined
      ? (this.opts.kernelStatus ?? kernelClockStatus)() : undefined;
    const synchronized = this.opts.synchronized ?? k?.synchronized ?? false;
    let errorEstimate: number;
    if (this.opts.errorSeconds !== undefined) {
      errorEstimate = errorEstimateFromSeconds(this.opts.errorSeconds, synchronized);
    } else if (synchronized) {
      const kernelErrorS = k !== undefined ? k.estErrorUs / 1e6 : 0;
      errorEstimate = errorEstimateFromSeconds(kernelErrorS > 0 ? kernelErrorS : 0.001, true);
    } else {
      errorEstimate = ERROR_ESTIMATE_UNSYNC_MIN;
    }
    this.state = { synchronized, errorEstimate, at: now };
    return this.state;
  }

  get synchronized(): boolean {
    return this.current().synchronized;
  }

  get errorEstimate(): number {
    return this.current().errorEstimate;
  }

  monoNs(): bigint {
    return process.hrtime.bigint();
  }

  /** CLOCK_REALTIME ns (native), else the anchored fallback; replaced per instance in the constructor. */
  nowUnixNs(): bigint {
    return this.anchorUnixNs + (process.hrtime.bigint() - this.anchorMonoNs);
  }

  nowNtp(): bigint {
    return ntpFromUnixNs(this.nowUnixNs());
  }
}

let shared: SystemClock | undefined;
/** The process-wide clock (one source and, for the fallback, one anchor, so all sessions agree). */
export function systemClock(): SystemClock {
  shared ??= new SystemClock();
  return shared;
}
