/**
 * A cap on the test sessions an agent runs at once, in total and per
 * reflector (docs/configuration.md "Mesh", "Spreading the load": `max_concurrent_sessions`,
 * `max_sessions_per_reflector`). A sender asks for a slot before it opens
 * its TWAMP-Control connection (RFC 5357 §3) and gives it back when the
 * session ends; one TWAMP session holds one control connection, so the
 * per-reflector cap also bounds the control connections this agent holds
 * to one reflector, which our reflector limits per client address
 * (docs/configuration.md "`twamp_reflector`": `max_connections_per_client`, 8 by default).
 *
 * Waiters are served first come, first served among those that can run: a
 * waiter whose reflector is at its cap does not hold up a later one for
 * another reflector, and when a slot frees the oldest waiter that fits gets
 * it, so nobody waits behind younger requests (no starvation).
 */
import { TwampSessionError } from './errors.js';

export interface SessionGateLimits {
  /** Sessions at once over all reflectors (≥ 1). */
  maxConcurrent: number;
  /** Sessions at once to one reflector (≥ 1). */
  maxPerDestination: number;
}

/** What a sender needs of a gate: a slot for a destination, released by calling the function returned. */
export interface SessionSlots {
  /**
   * Wait for a slot to `destination` (the reflector as the sender names it, HOST:PORT).
   * Rejects with a TwampSessionError (reason `aborted`) when `signal` aborts
   * while waiting. The returned release function is idempotent.
   */
  acquire(destination: string, signal?: AbortSignal): Promise<() => void>;
}

interface Waiter {
  destination: string;
  since: number;
  grant: (release: () => void) => void;
}

/** Counters and levels of a gate, for the agent's metrics. */
export interface SessionGateStats {
  /** Sessions holding a slot now. */
  active: number;
  /** Sessions waiting for a slot now. */
  queued: number;
  /** Slots granted since creation. */
  granted: number;
  /** Slots granted after waiting (not at once). */
  waited: number;
  /** Total time spent waiting by granted and abandoned waiters, milliseconds. */
  waitMs: number;
}

export class SessionGate implements SessionSlots {
  private limits_: SessionGateLimits;
  private active = 0;
  private readonly perDestination = new Map<string, number>();
  /** Lower caps of some reflectors (what their per-client limits allow), by destination. */
  private readonly destinationCaps = new Map<string, number>();
  private readonly queue: Waiter[] = [];
  private granted = 0;
  private waited = 0;
  private waitMs = 0;

  constructor(limits: SessionGateLimits, private readonly now: () => number = () => performance.now()) {
    this.limits_ = checkLimits(limits);
  }

  /** New limits (a reloaded agent file); waiters that now fit are served at once, running sessions are not cut. */
  setLimits(limits: SessionGateLimits): void {
    this.limits_ = checkLimits(limits);
    this.drain();
  }

  /**
   * Lower caps for some reflectors, e.g. a mesh's targets whose
   * `max_connections_per_client` is below `maxPerDestination`; replaces the
   * previous ones. The lower of the two applies.
   */
  setDestinationCaps(caps: ReadonlyMap<string, number>): void {
    for (const [d, n] of caps) {
      if (!Number.isInteger(n) || n < 1) throw new RangeError(`session gate: the cap of ${d} must be an integer ≥ 1, got ${String(n)}`);
    }
    this.destinationCaps.clear();
    for (const [d, n] of caps) this.destinationCaps.set(key(d), n);
    this.drain();
  }

  /** Sessions allowed at once to `destination`. */
  capOf(destination: string): number {
    const own = this.destinationCaps.get(key(destination));
    return own === undefined ? this.limits_.maxPerDestination : Math.min(own, this.limits_.maxPerDestination);
  }

  get limits(): SessionGateLimits {
    return { ...this.limits_ };
  }

  get stats(): SessionGateStats {
    return { active: this.active, queued: this.queue.length, granted: this.granted, waited: this.waited, waitMs: this.waitMs };
  }

  /** Sessions holding a slot to `destination` now. */
  activeTo(destination: string): number {
    return this.perDestination.get(key(destination)) ?? 0;
  }

  acquire(destination: string, signal?: AbortSignal): Promise<() => void> {
    const dest = key(destination);
    if (signal?.aborted) return Promise.reject(abortedWhileQueued(destination));
    // drain() leaves no waiter that fits, so a request that fits now takes
    // nothing from an older one: those still queued wait for their own
    // reflector (or for the total, and then this one does not fit either).
    if (this.fits(dest)) {
      this.granted++;
      return Promise.resolve(this.take(dest));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        destination: dest,
        since: this.now(),
        grant: (release) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
      };
      const onAbort = (): void => {
        const i = this.queue.indexOf(waiter);
        if (i < 0) return;
        this.queue.splice(i, 1);
        this.waitMs += this.now() - waiter.since;
        reject(abortedWhileQueued(destination));
        // The one leaving may have been ahead of others for the same slot.
        this.drain();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  private fitsTotal(): boolean {
    return this.active < this.limits_.maxConcurrent;
  }

  private fits(dest: string): boolean {
    return this.fitsTotal() && (this.perDestination.get(dest) ?? 0) < this.capOf(dest);
  }

  private take(dest: string): () => void {
    this.active++;
    this.perDestination.set(dest, (this.perDestination.get(dest) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      const n = (this.perDestination.get(dest) ?? 1) - 1;
      if (n <= 0) this.perDestination.delete(dest);
      else this.perDestination.set(dest, n);
      this.drain();
    };
  }

  /** Serve the oldest waiters that fit, in arrival order. */
  private drain(): void {
    for (let i = 0; i < this.queue.length && this.fitsTotal();) {
      const w = this.queue[i]!;
      if (!this.fits(w.destination)) { i++; continue; }
      this.queue.splice(i, 1);
      this.granted++;
      this.waited++;
      this.waitMs += this.now() - w.since;
      w.grant(this.take(w.destination));
    }
  }
}

/** One reflector, however its name is cased. */
function key(destination: string): string {
  return destination.toLowerCase();
}

function checkLimits(l: SessionGateLimits): SessionGateLimits {
  for (const [k, v] of Object.entries(l)) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`session gate: ${k} must be an integer ≥ 1, got ${String(v)}`);
  }
  return { ...l };
}

function abortedWhileQueued(destination: string): TwampSessionError {
  return new TwampSessionError('aborted', destination, 'stopped while waiting for a session slot');
}
