/**
 * Reflector hardening helpers (issue 7): a client-network access list, a
 * packet-rate limiter for the reflection hot path and a rate-limited logger
 * so that a flood of refusals or faults produces at most one line per cause
 * per interval (with the count of the lines it held back).
 */
import { BlockList, isIP } from 'node:net';
import { unmapAddress } from './address.js';
import type { Logger, LogLevel } from './log.js';

/** An IPv4/IPv6 network in CIDR notation ("10.0.0.0/8", "2001:db8::/32"); a bare address is a /32 or /128. */
export interface Cidr {
  address: string;
  prefix: number;
  family: 4 | 6;
}

/** Parses "addr[/prefix]"; undefined when it is not a valid IPv4/IPv6 network. */
export function parseCidr(s: string): Cidr | undefined {
  const m = /^\s*([^/\s]+)(?:\/(\d{1,3}))?\s*$/.exec(s);
  if (!m) return undefined;
  const address = unmapAddress(m[1]!);
  const family = isIP(address);
  if (family !== 4 && family !== 6) return undefined;
  const max = family === 4 ? 32 : 128;
  const prefix = m[2] === undefined ? max : Number(m[2]);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return undefined;
  return { address, prefix, family };
}

export function formatCidr(c: Cidr): string {
  return `${c.address}/${c.prefix}`;
}

/**
 * Which client networks may use the reflector, like Juniper's client lists
 * or perfSONAR's limits file: deny wins; an empty allow list allows all.
 * IPv4-mapped IPv6 peers (dual-stack listeners) are matched as IPv4.
 */
export class ClientAcl {
  private readonly allow: BlockList | undefined;
  private readonly deny: BlockList | undefined;

  constructor(allow: readonly Cidr[] = [], deny: readonly Cidr[] = []) {
    this.allow = allow.length ? toBlockList(allow) : undefined;
    this.deny = deny.length ? toBlockList(deny) : undefined;
  }

  /** True when the list restricts anything at all. */
  get active(): boolean {
    return this.allow !== undefined || this.deny !== undefined;
  }

  /** undefined when allowed, else why not ('denied' by the deny list, 'not allowed' by the allow list). */
  check(address: string): 'denied' | 'not allowed' | undefined {
    if (!this.active) return undefined;
    const a = unmapAddress(address);
    const family = isIP(a);
    if (family === 0) return 'not allowed';
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (this.deny?.check(a, type)) return 'denied';
    if (this.allow && !this.allow.check(a, type)) return 'not allowed';
    return undefined;
  }
}

function toBlockList(list: readonly Cidr[]): BlockList {
  const b = new BlockList();
  for (const c of list) b.addSubnet(c.address, c.prefix, c.family === 4 ? 'ipv4' : 'ipv6');
  return b;
}

/**
 * A token bucket of `ratePerSecond` tokens, holding at most one second's
 * worth: take() is O(1) and allocation-free (it runs for every test packet).
 */
export class RateLimiter {
  private tokens: number;
  private last: number;

  constructor(private readonly ratePerSecond: number, private readonly now: () => number = () => performance.now()) {
    this.tokens = ratePerSecond;
    this.last = now();
  }

  /** True when a packet may pass now (one token taken), false when it is over the rate. */
  take(): boolean {
    const t = this.now();
    const elapsed = t - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.ratePerSecond, this.tokens + (elapsed * this.ratePerSecond) / 1000);
      this.last = t;
    }
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
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
