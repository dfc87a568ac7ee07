/**
 * The native scheduler's early wake-up adapts to the measured timer latency:
 * schedulerSpinUs is a cap, not a fixed spin per departure.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { openTestSocket, type DepartureReport } from '../../src/session/datapath.js';
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
