/**
 * The one clock behind every TWAMP timestamp: anchored once to the wall clock
 * (UTC), then advanced by the monotonic high-resolution clock, so timestamps
 * have ns resolution and never go backwards within a process (RFC 4656 §4.1.2
 * wants T1/T2/T3/T4 taken as close to the wire as possible; a wall clock that
 * NTP slews or steps mid-session would corrupt delays).
 */
import { performance } from 'node:perf_hooks';
import { ntpFromUnixNs, errorEstimateFromSeconds } from '../protocol/index.js';
import { kernelClockStatus, type KernelClockStatus } from './socketOptions.js';

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
}

/** How often the kernel's sync state is read again (it changes when NTP locks or loses sync). */
const STATUS_REFRESH_MS = 10_000;

export class SystemClock implements Clock {
  private readonly anchorUnixNs: bigint;
  private readonly anchorMonoNs: bigint;
  private state: { synchronized: boolean; errorEstimate: number; at: number } | undefined;

  constructor(private readonly opts: SystemClockOptions = {}) {
    // timeOrigin + now() carries µs precision, better than Date.now()'s ms.
    const mono = process.hrtime.bigint();
    const wallMs = performance.timeOrigin + performance.now();
    this.anchorMonoNs = mono;
    this.anchorUnixNs = BigInt(Math.round(wallMs * 1e6));
  }

  /**
   * The S bit and error of the Error Estimate (RFC 4656 §4.1.2): synchronised
   * when the kernel says an NTP/PTP discipline holds the clock (adjtimex
   * STA_UNSYNC clear), with its estimated error; otherwise unsynchronised with
   * the kernel's maximum error (or 1 s when the kernel cannot be asked).
   * Never multiplier 0. Options override both.
   */
  private current(): { synchronized: boolean; errorEstimate: number } {
    const now = Date.now();
    if (this.state && now - this.state.at < STATUS_REFRESH_MS) return this.state;
    const k = this.opts.synchronized === undefined || this.opts.errorSeconds === undefined
      ? (this.opts.kernelStatus ?? kernelClockStatus)() : undefined;
    const synchronized = this.opts.synchronized ?? k?.synchronized ?? false;
    const kernelErrorS = k ? (synchronized ? k.estErrorUs : k.maxErrorUs) / 1e6 : undefined;
    const err = this.opts.errorSeconds ?? (kernelErrorS && kernelErrorS > 0 ? kernelErrorS : synchronized ? 0.001 : 1);
    this.state = { synchronized, errorEstimate: errorEstimateFromSeconds(err, synchronized), at: now };
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

  nowUnixNs(): bigint {
    return this.anchorUnixNs + (process.hrtime.bigint() - this.anchorMonoNs);
  }

  nowNtp(): bigint {
    return ntpFromUnixNs(this.nowUnixNs());
  }
}

let shared: SystemClock | undefined;
/** The process-wide clock (one anchor, so all sessions agree). */
export function systemClock(): SystemClock {
  shared ??= new SystemClock();
  return shared;
}
