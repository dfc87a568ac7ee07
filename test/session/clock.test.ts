// The one clock behind every timestamp: wall-anchored, monotonic, and honest
// about synchronisation in its Error Estimate.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SystemClock } from '../../src/session/clock.js';
import { decodeErrorEstimate, errorEstimateSeconds, unixNsFromNtp } from '../../src/protocol/index.js';
import { kernelClockStatus } from '../../src/session/socketOptions.js';

describe('SystemClock', () => {
  it('is anchored to the wall clock and never goes backwards', () => {
    const c = new SystemClock({ synchronized: false });
    const wall = BigInt(Date.now()) * 1_000_000n;
    const ours = unixNsFromNtp(c.nowNtp());
    assert.ok(ours - wall < 50_000_000n && wall - ours < 50_000_000n, `${ours} vs ${wall}`);
    let prev = c.nowNtp();
    for (let i = 0; i < 100_000; i++) {
      const t = c.nowNtp();
      assert.ok(t >= prev);
      prev = t;
    }
  });

  it('synchronised per the kernel: S bit set, the estimated error', () => {
    const c = new SystemClock({ kernelStatus: () => ({ synchronized: true, estErrorUs: 500, maxErrorUs: 16_000_000 }) });
    const ee = decodeErrorEstimate(c.errorEstimate);
    assert.equal(c.synchronized, true);
    assert.equal(ee.synchronized, true);
    assert.ok(Math.abs(errorEstimateSeconds(c.errorEstimate) - 0.0005) < 0.00001);
  });

  it('unsynchronised per the kernel: S bit clear, the maximum error, multiplier never 0', () => {
    const c = new SystemClock({ kernelStatus: () => ({ synchronized: false, estErrorUs: 0, maxErrorUs: 16_000_000 }) });
    const ee = decodeErrorEstimate(c.errorEstimate);
    assert.equal(ee.synchronized, false);
    assert.ok(ee.multiplier > 0);
    assert.ok(Math.abs(errorEstimateSeconds(c.errorEstimate) - 16) < 0.2);
  });

  it('without a kernel answer: unsynchronised, 1 s', () => {
    const c = new SystemClock({ kernelStatus: () => undefined });
    assert.equal(c.synchronized, false);
    assert.ok(Math.abs(errorEstimateSeconds(c.errorEstimate) - 1) < 0.01);
  });

  it('the kernel status is readable here when the native helper is built (Linux)', (t) => {
    const k = kernelClockStatus();
    if (k === undefined) { t.skip('native helper not built or not Linux: sync state falls back to unsynchronised'); return; }
    assert.equal(typeof k.synchronized, 'boolean');
    assert.ok(k.maxErrorUs >= 0);
  });
});
