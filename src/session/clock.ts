/**
 * The one clock behind every TWAMP timestamp: anchored once to the wall clock
 * (UTC), then advanced by the monotonic high-resolution clock, so timestamps
 * have ns resolution and never go backwards within a process (RFC 4656 §4.1.2
 * wants T1/T2/T3/T4 taken as close to the wire as possible; a wall clock that
 * NTP slews or steps mid-session would corrupt delays).
 */
import { performance } from 'node:perf_hooks';
import { ntpFromUnixNs, errorEstimateFromSeconds } from '../protocol/index.js';

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
  /** Whether the host clock is synchronised (S bit). Unknown → false. */
  synchronized?: boolean;
  /** Claimed timestamp error in seconds (default: 1 ms synced, 1 s unsynced). */
  errorSeconds?: number;
}

export class SystemClock implements Clock {
  private readonly anchorUnixNs: bigint;
  private readonly anchorMonoNs: bigint;
  readonly errorEstimate: number;
  readonly synchronized: boolean;

  constructor(opts: SystemClockOptions = {}) {
    // timeOrigin + now() carries µs precision, better than Date.now()'s ms.
    const mono = process.hrtime.bigint();
    const wallMs = performance.timeOrigin + performance.now();
    this.anchorMonoNs = mono;
    this.anchorUnixNs = BigInt(Math.round(wallMs * 1e6));
    this.synchronized = opts.synchronized ?? false;
    const err = opts.errorSeconds ?? (this.synchronized ? 0.001 : 1);
    this.errorEstimate = errorEstimateFromSeconds(err, this.synchronized);
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
