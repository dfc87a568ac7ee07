// The departure schedulers (src/session/pacer.ts) on a fake clock, without
// sockets: PacedSender (event-loop pacing) and ScheduledSender (the window
// handed to the native scheduler). The clock is a counter the test moves;
// setTimeout is node:test's mock timer where the test needs to step it, so
// nothing here depends on how fast or loaded the machine is.
import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import { PacedSender, ScheduledSender } from '../../src/session/pacer.js';
import type { Clock } from '../../src/session/clock.js';

/** Monotonic time the test controls; each reading may also advance it by `stepNs` (time passing while code runs). */
class FakeClock implements Clock {
  now = 0n;
  reads = 0;
  constructor(private readonly stepNs = 0n) {}
  monoNs(): bigint {
    this.reads++;
    const t = this.now;
    this.now += this.stepNs;
    return t;
  }
  nowUnixNs(): bigint { return this.now; }
  nowNtp(): bigint { return this.now; }
  readonly errorEstimate = 0;
  readonly synchronized = false;
  advanceMs(ms: number): void { this.now += BigInt(ms * 1e6); }
}

const MS = 1_000_000;

/** Lets the real event loop run `n` turns (PacedSender polls with setImmediate). */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

describe('PacedSender', { timeout: 30_000 }, () => {
  afterEach(() => mock.timers.reset());

  it('no packets: resolves without sending', async () => {
    await new PacedSender(new FakeClock()).run(0, () => assert.fail('sent'));
  });

  it('packet 0 leaves at once; each later one at start + the sum of the gaps before it', async () => {
    // 10 µs pass at every clock reading: the pacer polls (gaps < 1.5 ms) and time moves only as it reads.
    const clock = new FakeClock(10_000n);
    const gaps = [1 * MS, 0.5 * MS, 1.2 * MS, 0.3 * MS, 1 * MS, 0.7 * MS, 1 * MS, 1 * MS];
    const sentAt: number[] = [];
    await new PacedSender(clock).run(gaps.length, (seq) => {
      sentAt.push(Number(clock.now));
      return gaps[seq]!;
    });
    let due = 0;
    for (const [seq, t] of sentAt.entries()) {
      // Sent when due within half a polling period: never more than a couple of readings early or late.
      assert.ok(Math.abs(t - due) <= 50_000, `packet ${seq}: sent at ${t} ns, due at ${due} ns`);
      due += gaps[seq]!;
    }
  });

  it('a stall is caught up in order at once, and the schedule is not shifted', async () => {
    const clock = new FakeClock(1_000n);
    const sent: { seq: number; at: number }[] = [];
    await new PacedSender(clock).run(8, (seq) => {
      sent.push({ seq, at: Number(clock.now) });
      if (seq === 1) clock.now += 3_500_000n; // the loop is blocked 3.5 ms right after packet 1
      return 1 * MS;
    });
    assert.deepEqual(sent.map((s) => s.seq), [0, 1, 2, 3, 4, 5, 6, 7]);
    // Packets 2, 3 and 4 (due at 2, 3, 4 ms) were all due when the loop woke at ~4.5 ms: a burst.
    const burst = sent.slice(2, 5).map((s) => s.at);
    assert.ok(burst.every((t) => t >= 4.5 * MS && t < 4.6 * MS), `burst at ${burst.join(', ')}`);
    // Packet 5 is still due at 5 ms: the stall did not push the rest of the schedule back.
    for (const { seq, at } of sent.slice(5)) assert.ok(Math.abs(at - seq * MS) <= 20_000, `packet ${seq} at ${at} ns`);
  });

  it('long gaps wait on a coarse timer, polling only the last stretch', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const clock = new FakeClock(10_000n);
    const sentAt: number[] = [];
    const run = new PacedSender(clock).run(2, () => { sentAt.push(Number(clock.now)); return 100 * MS; });
    assert.equal(sentAt.length, 1);
    const readsBefore = clock.reads;
    await turns(5);
    assert.equal(clock.reads, readsBefore, 'the pacer polled during a 100 ms gap instead of sleeping');
    // The timer is set for the gap minus the polling stretch (1.5 ms), in whole ms.
    clock.now = 98_600_000n; // the timer fired a little late, as timers do
    mock.timers.tick(98);
    await run;
    assert.equal(sentAt.length, 2);
    assert.ok(Math.abs(sentAt[1]! - 100 * MS) <= 50_000, `sent at ${sentAt[1]} ns`);
    // ~1.5 ms of polling at 10 µs a reading: a couple of hundred readings, not the ten thousand of a 100 ms poll.
    assert.ok(clock.reads - readsBefore < 1_000, `${clock.reads - readsBefore} clock readings`);
  });

  it('an abort stops before the next departure; an aborted signal sends nothing', async () => {
    const clock = new FakeClock(10_000n);
    const ac = new AbortController();
    let sent = 0;
    await new PacedSender(clock).run(100, (seq) => {
      sent++;
      if (seq === 3) ac.abort();
      return 1 * MS;
    }, ac.signal);
    assert.equal(sent, 4);
    await new PacedSender(clock).run(10, () => assert.fail('sent after abort'), AbortSignal.abort());
  });

  it('a send that throws rejects the run and sends nothing more', async () => {
    const clock = new FakeClock(10_000n);
    let sent = 0;
    const err = new Error('EPERM');
    await assert.rejects(new PacedSender(clock).run(10, (seq) => {
      sent++;
      if (seq === 2) throw err;
      return 1 * MS;
    }), (e) => e === err);
    await turns(3);
    assert.equal(sent, 3);
  });
});

describe('ScheduledSender', { timeout: 30_000 }, () => {
  afterEach(() => mock.timers.reset());

  /** Runs with gaps from `gap(seq)`, recording each (seq, deadline) and the clock when scheduled. */
  function start(clock: FakeClock, n: number, gap: (seq: number) => number, signal?: AbortSignal) {
    const calls: { seq: number; deadline: bigint; at: bigint }[] = [];
    const run = new ScheduledSender(clock).run(n, (seq, deadline) => {
      calls.push({ seq, deadline, at: clock.now });
      return gap(seq);
    }, signal);
    return { calls, run };
  }

  it('deadlines are start + 5 ms lead + the sum of the gaps, exact to the ns (fractional gaps do not drift)', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const clock = new FakeClock();
    clock.now = 1_000n;
    const gaps = [1_000_000.5, 2_000_000.25, 999_999.75, 1_000_000.5];
    const { calls, run } = start(clock, 5, (seq) => gaps[seq]!);
    const { lastDeadlineMonoNs } = await run;
    const t0 = 1_000n + 5_000_000n;
    assert.deepEqual(calls.map((c) => c.deadline - t0), [0n, 1_000_001n, 3_000_001n, 4_000_001n, 5_000_001n]);
    assert.equal(lastDeadlineMonoNs, calls.at(-1)!.deadline);
  });

  it('schedules a 200 ms window ahead and tops it up every 50 ms, in order, each packet once', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const clock = new FakeClock();
    const n = 100; // 20 ms apart: 2 s of departures
    const { calls, run } = start(clock, n, () => 20 * MS);
    const t0 = 5n * BigInt(MS);
    // First fill (now = 0, t0 = 5 ms): deadlines up to now + 200 ms, i.e. due up to 195 ms: packets 0..9.
    assert.equal(calls.length, 10);
    let resolved = false;
    void run.then(() => { resolved = true; });
    for (let k = 1; k <= 60 && !resolved; k++) {
      clock.advanceMs(50);
      mock.timers.tick(50);
      await turns(1);
      // Never more than 200 ms ahead of the clock at the time a packet is handed over.
      for (const c of calls) assert.ok(c.deadline - c.at <= 200n * BigInt(MS), `packet ${c.seq} scheduled ${c.deadline - c.at} ns ahead`);
    }
    const { lastDeadlineMonoNs } = await run;
    assert.deepEqual(calls.map((c) => c.seq), [...Array(n).keys()]);
    assert.deepEqual(calls.map((c) => c.deadline), calls.map((_, i) => t0 + BigInt(i * 20 * MS)));
    assert.equal(lastDeadlineMonoNs, t0 + BigInt((n - 1) * 20 * MS));
    // The whole window was handed over ~200 ms before the last deadline, not at it.
    assert.ok(calls.at(-1)!.at < lastDeadlineMonoNs - 100n * BigInt(MS));
  });

  it('an abort resolves with the last deadline scheduled so far; nothing more is scheduled', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const clock = new FakeClock();
    const ac = new AbortController();
    const { calls, run } = start(clock, 1000, () => 20 * MS, ac.signal);
    assert.equal(calls.length, 10);
    ac.abort();
    clock.advanceMs(50);
    mock.timers.tick(50);
    const { lastDeadlineMonoNs } = await run;
    assert.equal(calls.length, 10);
    assert.equal(lastDeadlineMonoNs, calls[9]!.deadline);
  });

  it('no packets: resolves with the start, nothing scheduled', async () => {
    const clock = new FakeClock();
    clock.now = 7n;
    const { calls, run } = start(clock, 0, () => 1);
    assert.equal((await run).lastDeadlineMonoNs, 7n + 5_000_000n);
    assert.equal(calls.length, 0);
  });

  it('a schedule that throws rejects the run', async () => {
    const clock = new FakeClock();
    const err = new Error('ENOBUFS');
    await assert.rejects(new ScheduledSender(clock).run(10, (seq) => {
      if (seq === 1) throw err;
      return MS;
    }), (e) => e === err);
  });
});
