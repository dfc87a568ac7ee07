/**
 * The native scheduler's early wake-up adapts to the measured timer latency:
 * schedulerSpinUs is a cap, not a fixed spin per departure; and the spin of
 * all sockets together is bounded by the spin budget (schedulerSpinBudgetUs),
 * read back through schedulerStats().
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { DatapathError, openTestSocket, schedulerStats, type DepartureReport, type TestSocket } from '../../src/session/datapath.js';
import type { SocketSettings } from '../../src/session/native.js';
import { needNative } from '../helpers/native.js';

it('schedulerSpinUs 1000 at 100 pps spins far less than 1 ms per departure, and departures stay on time', async (t) => {
  if (!needNative(t)) return;
  const dst = await openTestSocket({ family: 4, address: '127.0.0.1', native: true, onPackets: () => {}, txTimestamps: false });
  const reps: DepartureReport[] = [];
  const n = 150;
  let done: () => void = () => {};
  const fin = new Promise<void>((r) => { done = r; });
  const s = await openTestSocket({
    family: 4, address: '127.0.0.1', native: true, schedulerSpinUs: 1000, departureReportMs: 50, onPackets: () => {},
    onDeparture: (d) => { reps.push(...d); if (reps.length >= n) done(); },
  });
  try {
    const start = process.hrtime.bigint() + 20_000_000n;
    for (let i = 0; i < n; i++) {
      s.schedule({ id: i, deadlineMonoNs: start + BigInt(i) * 10_000_000n, data: Buffer.alloc(41), address: '127.0.0.1', port: dst.local.port });
    }
    const c0 = process.cpuUsage();
    const t0 = Date.now();
    const guard = setTimeout(done, 10_000);
    await fin;
    clearTimeout(guard);
    const c = process.cpuUsage(c0);
    const cpuPct = ((c.user + c.system) / 1000 / (Date.now() - t0)) * 100;
    assert.equal(reps.length, n);
    // A fixed 1 ms spin per departure at 100 pps would be 10 % of a core by itself.
    assert.ok(cpuPct < 7, `process CPU ${cpuPct.toFixed(1)} % of a core`);
    const errs = reps.map((r) => Number(r.sentMonoNs - r.deadlineMonoNs) / 1000).sort((a, b) => a - b);
    t.diagnostic(`CPU ${cpuPct.toFixed(1)} %, departure error p50 ${errs[n >> 1]!.toFixed(1)} µs, p90 ${errs[Math.floor(n * 0.9)]!.toFixed(1)} µs`);
    assert.ok(errs.every((e) => e >= 0), 'never before the deadline');
  } finally {
    s.close();
    dst.close();
  }
});

/**
 * Opens `sockets` native sockets with `settings`, schedules `perSocket` departures on each at `pps` per socket
 * (phases spread), waits for every report; returns the scheduler counters' deltas over that time and the budget
 * in effect while they were open.
 */
async function runSpin(settings: SocketSettings, sockets: number, perSocket: number, pps: number): Promise<{
  departures: number; spins: number; spunNs: number; wallNs: number; budgetUs: number; early: number;
}> {
  const dst = await openTestSocket({ family: 4, address: '127.0.0.1', native: true, onPackets: () => {}, txTimestamps: false });
  const socks: TestSocket[] = [];
  let left = sockets * perSocket;
  let early = 0;
  let done: () => void = () => {};
  const fin = new Promise<void>((r) => { done = r; });
  try {
    for (let k = 0; k < sockets; k++) {
      socks.push(await openTestSocket({
        family: 4, address: '127.0.0.1', native: true, departureReportMs: 50, txTimestamps: false, ...settings, onPackets: () => {},
        onDeparture: (d) => {
          for (const r of d) if (r.sentMonoNs < r.deadlineMonoNs) early++;
          left -= d.length;
          if (left <= 0) done();
        },
      }));
    }
    const gap = 1_000_000_000n / BigInt(pps);
    const s0 = schedulerStats()!;
    const t0 = process.hrtime.bigint();
    const start = t0 + 20_000_000n;
    socks.forEach((s, k) => {
      for (let i = 0; i < perSocket; i++) {
        s.schedule({ id: i, deadlineMonoNs: start + (gap * BigInt(k)) / BigInt(sockets) + BigInt(i) * gap,
          data: Buffer.alloc(41), address: '127.0.0.1', port: dst.local.port });
      }
    });
    const budgetUs = schedulerStats()!.spinBudgetUs;
    const guard = setTimeout(done, 20_000);
    await fin;
    clearTimeout(guard);
    const s1 = schedulerStats()!;
    return {
      departures: s1.departures - s0.departures, spins: s1.spins - s0.spins, spunNs: s1.spunNs - s0.spunNs,
      wallNs: Number(process.hrtime.bigint() - t0), budgetUs, early,
    };
  } finally {
    for (const s of socks) s.close();
    dst.close();
  }
}

it('schedulerSpinBudgetUs 0: the scheduler never spins, even with schedulerSpinUs 1000, and never sends early', async (t) => {
  if (!needNative(t)) return;
  const r = await runSpin({ schedulerSpinUs: 1000, schedulerSpinBudgetUs: 0 }, 2, 60, 200);
  t.diagnostic(JSON.stringify(r));
  assert.equal(r.budgetUs, 0);
  assert.equal(r.departures, 120);
  assert.equal(r.spins, 0);
  assert.equal(r.spunNs, 0);
  assert.equal(r.early, 0);
});

it('a large budget lets the early wake-up spin (the counters see it)', async (t) => {
  if (!needNative(t)) return;
  const r = await runSpin({ schedulerSpinUs: 1000, schedulerSpinBudgetUs: 1_000_000 }, 1, 100, 200);
  t.diagnostic(JSON.stringify(r));
  assert.equal(r.budgetUs, 1_000_000);
  assert.equal(r.departures, 100);
  assert.ok(r.spins > 0 && r.spunNs > 0, 'some departures were preceded by a spin');
});

it('the default budget (10,000 µs a second: 1 % of a core) bounds the spin of 8 sockets, 2,000 departures a second', async (t) => {
  if (!needNative(t)) return;
  const r = await runSpin({ schedulerSpinUs: 1000 }, 8, 300, 250);
  t.diagnostic(`${JSON.stringify(r)}; spin ${((100 * r.spunNs) / r.wallNs).toFixed(2)} % of the wall time`);
  assert.equal(r.budgetUs, 10_000);
  assert.equal(r.departures, 2400);
  // The bucket holds at most 100 ms of budget (1 ms) and refills at 1 %; 0.5 ms of slack for clock reads.
  const bound = 1_000_000 + r.wallNs / 100 + 500_000;
  assert.ok(r.spunNs <= bound, `spun ${(r.spunNs / 1e6).toFixed(2)} ms > ${(bound / 1e6).toFixed(2)} ms in ${(r.wallNs / 1e9).toFixed(2)} s`);
  assert.equal(r.early, 0, 'never before the deadline');
});

it('schedulerSpinBudgetUs is checked: an integer in [0, 1000000]', async (t) => {
  if (!needNative(t)) return;
  for (const bad of [-1, 1_000_001, 1.5]) {
    await assert.rejects(openTestSocket({ family: 4, address: '127.0.0.1', native: true, schedulerSpinBudgetUs: bad, onPackets: () => {} }),
      (e: unknown) => e instanceof DatapathError && /schedulerSpinBudgetUs must be an integer in \[0, 1000000\]/.test(e.message));
  }
});
