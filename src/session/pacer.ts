/**
 * Departure scheduler for test packets. Packet i is due at start + Σ gaps of
 * the packets before it (an absolute schedule, so timer lateness never
 * accumulates into a lower rate). Waiting uses a coarse timer until shortly
 * before the due time, then yields to the event loop (setImmediate) until it
 * is due, which keeps departures within tens of µs without spinning a core
 * through the whole gap.
 *
 * Catch-up policy: when the loop wakes late (a GC pause, a busy event loop),
 * every packet already due is sent at once, in order, with its real departure
 * timestamp; the schedule is not shifted. A stall thus shows as a short burst,
 * and the mean rate over the session stays the model's.
 */
import type { Clock } from './clock.js';

/** Below this remaining wait, stop using timers and poll the event loop. */
const SPIN_NS = 1_500_000;

export class PacedSender {
  constructor(private readonly clock: Clock) {}

  /** Send `n` packets; `send(seq)` sends packet seq and returns the gap (ns) to the next. */
  run(n: number, send: (seq: number) => number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (n <= 0) { resolve(); return; }
      const t0 = this.clock.monoNs();
      let due = 0; // ns after t0, fractional gaps accumulate exactly enough
      let seq = 0;
      // While polling, a packet is seen up to one polling period after it is due.
      // Send when it is due within half a period (EWMA of the period), which centres
      // the departure error on zero instead of lagging by about a period.
      let polling = false;
      let lastPoll = 0;
      let period = 0;
      const tick = (): void => {
        if (signal?.aborted) { resolve(); return; }
        try {
          let now = Number(this.clock.monoNs() - t0);
          if (polling) period += (now - lastPoll - period) / 8;
          lastPoll = now;
          while (seq < n && due <= now + period / 2) {
            due += send(seq);
            seq++;
            now = Number(this.clock.monoNs() - t0);
          }
        } catch (e) {
          reject(e);
          return;
        }
        if (seq >= n) { resolve(); return; }
        const remaining = due - Number(this.clock.monoNs() - t0);
        polling = remaining <= SPIN_NS;
        if (!polling) setTimeout(tick, Math.floor((remaining - SPIN_NS) / 1e6));
        else setImmediate(tick);
      };
      tick();
    });
  }
}

/** How far ahead departures are handed to the native scheduler. */
const WINDOW_NS = 200_000_000;
/** How often the window is topped up (the only event-loop wake-ups of the sending side). */
const REFILL_MS = 50;
/** Lead time of the first departure: building and scheduling the first window takes a moment. */
const LEAD_NS = 5_000_000;

/**
 * Absolute departure schedule handed to a native scheduler thread
 * (TestSocket.schedule, src/session/datapath.ts): packet i is due at start +
 * Σ gaps before it, as with PacedSender, but the wait happens in the native
 * thread, so the event loop neither polls nor wakes per packet. Packets are
 * scheduled in a sliding window (WINDOW_NS ahead, topped up every REFILL_MS)
 * so a long session never holds all of its packets in memory.
 *
 * `schedule(seq, deadlineMonoNs)` builds and schedules packet seq and returns
 * the gap (ns) to the next. Resolves once every packet is scheduled (the last
 * one may still be waiting for its deadline) or the signal aborts.
 */
export class ScheduledSender {
  constructor(private readonly clock: Clock) {}

  run(n: number, schedule: (seq: number, deadlineMonoNs: bigint) => number, signal?: AbortSignal): Promise<{ lastDeadlineMonoNs: bigint }> {
    return new Promise((resolve, reject) => {
      const t0 = this.clock.monoNs() + BigInt(LEAD_NS);
      let due = 0; // ns after t0
      let seq = 0;
      let last = t0;
      const fill = (): void => {
        if (signal?.aborted) { resolve({ lastDeadlineMonoNs: last }); return; }
        try {
          const horizon = Number(this.clock.monoNs() - t0) + WINDOW_NS;
          while (seq < n && due <= horizon) {
            last = t0 + BigInt(Math.round(due));
            due += schedule(seq, last);
            seq++;
          }
        } catch (e) {
          reject(e);
          return;
        }
        if (seq >= n) { resolve({ lastDeadlineMonoNs: last }); return; }
        setTimeout(fill, REFILL_MS);
      };
      fill();
    });
  }
}
