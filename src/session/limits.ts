/**
 * Reflector hardening helpers: a client-network access list, a
 * packet-rate limiter for the reflection hot path and a rate-limited logger
 * so that a flood of refusals or faults produces at most one line per cause
 * per interval (with the count of the lines it held back).
 */
import { isIP } from 'node:net';
import { unmapAddress } from '../util/net.js';
import type { Logger, LogLevel } from '../util/log.js';

/**
 * A token bucket of `packetsPerSecond` packets and, optionally,
 * `octetsPerSecond` octets, refilled together and holding at most one
 * second's worth of each; the caller passes the time (ms), so it costs no
 * clock read of its own. spend() is O(1) and allocation-free (it runs for
 * every test packet). Used per source and globally by the Light reflector,
 * and under RateLimiter by the TWAMP reflector.
 */
export class TokenBucket {
  private packets: number;
  private octets: number;
  private at: number;

  constructor(private readonly packetsPerSecond: number, private readonly octetsPerSecond = Infinity, nowMs = 0) {
    this.packets = packetsPerSecond;
    this.octets = octetsPerSecond;
    this.at = nowMs;
  }

  /** Refill up to `nowMs`, then take one packet of `octets` if both budgets allow it. */
  spend(octets: number, nowMs: number): boolean {
    const dt = nowMs - this.at;
    if (dt > 0) {
      this.packets = Math.min(this.packetsPerSecond, this.packets + (dt * this.packetsPerSecond) / 1000);
      this.octets = Math.min(this.octetsPerSecond, this.octets + (dt * this.octetsPerSecond) / 1000);
      this.at = nowMs;
    }
    if (this.packets < 1 || this.octets < octets) return false;
    this.packets -= 1;
    this.octets -= octets;
    return true;
  }

  /** True when the bucket would be full at `nowMs`: it holds no state worth keeping. */
  full(nowMs: number): boolean {
    const dt = Math.max(0, nowMs - this.at);
    return this.packets + (dt * this.packetsPerSecond) / 1000 >= this.packetsPerSecond &&
      this.octets + (dt * this.octetsPerSecond) / 1000 >= this.octetsPerSecond;
  }
}

/** A packet-rate TokenBucket that reads its own clock: take() for every test packet of a session. */
export class RateLimiter {
  private readonly bucket: TokenBucket;

  constructor(ratePerSecond: number, private readonly now: () => number = () => performance.now()) {
    this.bucket = new TokenBucket(ratePerSecond, Infinity, now());
  }

  /** True when a packet may pass now (one token taken), false when it is over the rate. */
  take(): boolean {
    return this.bucket.spend(0, this.now());
  }
}

/**
 * At most one log line per key per `intervalMs`; the lines held back are
 * counted and reported with the next line of that key ("… (12 more like
 * this in the last 60 s)") or by flush().
 */
export class RateLimitedLog {
  private readonly state = new Map<string, { last: number; suppressed: number; level: LogLevel; msg: string }>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 60_000,
    private readonly now: () => number = () => Date.now(),
    /** Upper bound on distinct keys remembered (keys are a closed set; this is a safety net). */
    private readonly maxKeys = 1000,
  ) {}

  line(key: string, level: LogLevel, msg: string): void {
    const t = this.now();
    const s = this.state.get(key);
    if (s && t - s.last < this.intervalMs) {
      s.suppressed++;
      s.level = level;
      s.msg = msg;
      return;
    }
    const held = s?.suppressed ?? 0;
    if (!s && this.state.size >= this.maxKeys) this.state.clear();
    this.state.set(key, { last: t, suppressed: 0, level, msg });
    this.log[level](held > 0 ? `${msg} (${held} more like this in the last ${formatSeconds(t - s!.last)} not logged)` : msg);
  }

  /** Log the count of held-back lines of every key (e.g. at shutdown). */
  flush(): void {
    for (const [, s] of this.state) {
      if (s.suppressed > 0) this.log[s.level](`${s.msg} (${s.suppressed} more like this not logged)`);
      s.suppressed = 0;
    }
  }
}

function formatSeconds(ms: number): string {
  return `${Math.round(ms / 1000)} s`;
}

/**
 * Defaults of the reflector limits (docs/configuration.md "twamp_reflector" and docs/security.md):
 * the config schema's defaults and the ControlServer's when an option is absent.
 */
export const REFLECTOR_LIMIT_DEFAULTS = {
  maxConnections: 256,
  maxSessionsPerConnection: 16,
  maxSessionDurationMs: 3_600_000,
  maxPpsPerSession: 10_000,
  maxPps: 100_000,
  maxPadding: 9000,
  controlTimeoutMs: 30_000,
  maxConnectionsPerClient: 8,
  maxSessionsPerClient: 64,
  clientIpv6Prefix: 64,
  kdfRatePerClient: 10,
} as const;

/**
 * The client a peer address belongs to, for per-client limits: an IPv4
 * address (IPv4-mapped IPv6 counts as IPv4) is a client of its own; IPv6
 * addresses are grouped by their first `ipv6Prefix` bits, since one host
 * usually holds a whole /64 (RFC 4291 §2.5.4, RFC 8981) and could otherwise
 * pose as billions of clients. Returns "2001:db8:0:1::/64"-style keys for IPv6.
 */
export function clientKey(address: string, ipv6Prefix: number): string {
  const a = unmapAddress(address);
  if (isIP(a) !== 6) return a;
  const words = ipv6Words(a);
  if (!words) return a;
  const bits = Math.max(0, Math.min(128, Math.trunc(ipv6Prefix)));
  for (let i = 0; i < 8; i++) {
    const keep = Math.max(0, Math.min(16, bits - i * 16));
    words[i] = keep === 0 ? 0 : words[i]! & ((0xffff << (16 - keep)) & 0xffff);
  }
  return `${words.map((w) => w.toString(16)).join(':')}/${bits}`;
}

/** The eight 16-bit words of an IPv6 address (dotted IPv4 tail and "::" allowed); undefined when malformed. */
function ipv6Words(a: string): number[] | undefined {
  let s = a.replace(/%.*$/, '');
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4) {
    const [b0, b1, b2, b3] = v4.slice(1).map(Number) as [number, number, number, number];
    s = `${s.slice(0, v4.index)}${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parse = (h: string): number[] => (h === '' ? [] : h.split(':').map((x) => parseInt(x, 16)));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = 8 - head.length - tail.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0)) return undefined;
  const words = [...head, ...new Array<number>(fill).fill(0), ...tail];
  return words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff) ? words : undefined;
}

/** Anything that admits or refuses one packet at a time (RateLimiter, FairShareMember). */
export interface PacketLimiter {
  take(): boolean;
}

/**
 * A packet budget of `ratePerSecond` shared fairly by the clients that hold
 * sessions (`max_pps`, docs/security.md): each active client is guaranteed
 * an equal share (rate / active clients, a token bucket with one second of
 * burst), and the part of the budget others leave unused can be borrowed.
 * So one client sending far above its share cannot starve another one that
 * stays within its own. O(1) and allocation-free per packet.
 *
 * Every admitted packet takes a token from the shared pool; a packet within
 * its client's share passes even when the pool is empty (the pool goes into
 * debt, bounded by one second), a packet beyond it passes only while the
 * pool has tokens. The sum of the shares is the rate, so the total stays at
 * the rate over time.
 */
export class FairShare {
  /** Shared pool, in packets; between -rate and +rate. */
  tokens: number;
  private last: number;
  /** Clients holding at least one session. */
  active = 0;

  constructor(readonly ratePerSecond: number, readonly now: () => number = () => performance.now()) {
    this.tokens = ratePerSecond;
    this.last = now();
  }

  /** One client's share; inactive until activate(). */
  member(): FairShareMember {
    return new FairShareMember(this);
  }

  /** Refill the pool up to time t. */
  refill(t: number): void {
    const elapsed = t - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.ratePerSecond, this.tokens + (elapsed * this.ratePerSecond) / 1000);
      this.last = t;
    }
  }

  /** The current per-client share, packets per second. */
  get share(): number {
    return this.ratePerSecond / Math.max(1, this.active);
  }
}

export class FairShareMember implements PacketLimiter {
  private tokens: number;
  private last: number;
  private isActive = false;

  constructor(private readonly pool: FairShare) {
    this.tokens = pool.share;
    this.last = pool.now();
  }

  /** The client holds sessions now: it counts in the division. Idempotent. */
  activate(): void {
    if (this.isActive) return;
    this.isActive = true;
    this.pool.active++;
  }

  /** The client holds no session any more. Idempotent. */
  deactivate(): void {
    if (!this.isActive) return;
    this.isActive = false;
    this.pool.active--;
  }

  take(): boolean {
    const pool = this.pool;
    const t = pool.now();
    pool.refill(t);
    const share = pool.share;
    const elapsed = t - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(share, this.tokens + (elapsed * share) / 1000);
      this.last = t;
    } else if (this.tokens > share) {
      this.tokens = share; // more clients since: the burst shrinks with the share
    }
    if (this.tokens >= 1) {
      this.tokens -= 1;
      pool.tokens = Math.max(pool.tokens - 1, -pool.ratePerSecond);
      return true;
    }
    if (pool.tokens >= 1) {
      pool.tokens -= 1;
      return true;
    }
    return false;
  }
}

/**
 * At most `perSecond` lines (token bucket, one second of burst) of one kind
 * of event, e.g. session starts and ends, so a client churning sessions
 * cannot flood the log; the lines held back are summed up in one line ("N
 * more session events not logged") a second later, or by flush().
 */
export class LineBudget {
  private readonly bucket: RateLimiter;
  private suppressed = 0;
  private level: LogLevel = 'info';
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: Logger,
    private readonly perSecond = 10,
    private readonly what = 'session events',
    now: () => number = () => performance.now(),
  ) {
    this.bucket = new RateLimiter(perSecond, now);
  }

  line(level: LogLevel, msg: string): void {
    if (this.bucket.take()) {
      this.log[level](msg);
      return;
    }
    this.suppressed++;
    this.level = level;
    if (this.timer === undefined) {
      this.timer = setTimeout(() => { this.timer = undefined; this.flush(); }, 1000);
      this.timer.unref?.();
    }
  }

  /** Report the lines held back, if any. */
  flush(): void {
    if (this.timer !== undefined) { clearTimeout(this.timer); this.timer = undefined; }
    if (this.suppressed === 0) return;
    const n = this.suppressed;
    this.suppressed = 0;
    this.log[this.level](`${n} more ${this.what} not logged (at most ${this.perSecond} lines per second)`);
  }
}
