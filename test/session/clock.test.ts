// The one clock behind every timestamp: the host's UTC clock (CLOCK_REALTIME
// through the native helper, else wall-anchored), and honest about
// synchronisation in its Error Estimate.
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

  it('unsynchronised per the kernel: S bit clear, Scale 0 / Multiplier 1 as twampd sends, not the 16 s maximum error', () => {
    const c = new SystemClock({ kernelStatus: () => ({ synchronized: false, estErrorUs: 16_000_000, maxErrorUs: 16_000_000 }) });
    const ee = decodeErrorEstimate(c.errorEstimate);
    assert.equal(ee.synchronized, false);
    assert.equal(ee.scale, 0);
    assert.equal(ee.multiplier, 1, 'never multiplier 0');
    // twping sums four estimates into err=; 16 s each printed err=3.2e+04 ms.
    assert.ok(4 * errorEstimateSeconds(c.errorEstimate) * 1e3 < 1e-3);
  });

  it('without a kernel answer: unsynchronised, Scale 0 / Multiplier 1', () => {
    const c = new SystemClock({ kernelStatus: () => undefined });
    assert.equal(c.synchronized, false);
    assert.equal(c.errorEstimate, 0x0001);
  });

  it('synchronised without an estimate from the kernel: 1 ms, S set; errorSeconds overrides', () => {
    const c = new SystemClock({ kernelStatus: () => ({ synchronized: true, estErrorUs: 0, maxErrorUs: 0 }) });
    assert.ok(Math.abs(errorEstimateSeconds(c.errorEstimate) - 0.001) < 0.00001);
    const o = new SystemClock({ synchronized: false, errorSeconds: 0.25 });
    assert.ok(Math.abs(errorEstimateSeconds(o.errorEstimate) - 0.25) < 0.01);
    assert.equal(decodeErrorEstimate(o.errorEstimate).synchronized, false);
  });

  it('reads its UTC source on every call, so a step of the host clock is followed at once', () => {
    let now = 1_700_000_000_000_000_000n;
    const c = new SystemClock({ synchronized: false, realtimeNs: () => now });
    assert.equal(c.source.kind, 'realtime');
    assert.equal(c.nowUnixNs(), now);
    now += 5_000_000_000n; // an NTP step of +5 s
    assert.equal(c.nowUnixNs(), now);
    assert.equal(unixNsFromNtp(c.nowNtp()), now);
    const mono = c.monoNs();
    assert.ok(c.monoNs() >= mono, 'monoNs stays monotonic');
  });

  it('with the native helper it reads CLOCK_REALTIME; without (OTEL_TWAMP_NATIVE=0) the anchored fallback says why', (t) => {
    const saved = process.env.OTEL_TWAMP_NATIVE;
    try {
      process.env.OTEL_TWAMP_NATIVE = '0';
      const anchored = new SystemClock({ synchronized: false });
      assert.equal(anchored.source.kind, 'anchored');
      assert.match((anchored.source as { reason: string }).reason, /OTEL_TWAMP_NATIVE=0/);
      const a = anchored.nowUnixNs();
      assert.ok(anchored.nowUnixNs() >= a);
      delete process.env.OTEL_TWAMP_NATIVE;
      const c = new SystemClock({ synchronized: false });
      if (c.source.kind !== 'realtime') {
        const ci = (process.env.CI ?? '').toLowerCase();
        if (ci !== '' && ci !== '0' && ci !== 'false') assert.fail(`CI: native clock unavailable: ${c.source.reason}`);
        t.skip(`native helper unavailable: ${c.source.reason}`);
        return;
      }
      // Against the wall clock Node reads (Date.now, ms resolution).
      const wall = BigInt(Date.now()) * 1_000_000n;
      const ours = c.nowUnixNs();
      assert.ok(ours - wall < 5_000_000n && wall - ours < 5_000_000n, `${ours} vs ${wall}`);
    } finally {
      if (saved === undefined) delete process.env.OTEL_TWAMP_NATIVE;
      else process.env.OTEL_TWAMP_NATIVE = saved;
    }
  });

  it('the kernel status is readable here when the native helper is built (Linux)', (t) => {
    const k = kernelClockStatus();
    if (k === undefined) { t.skip('native helper not built or not Linux: sync state falls back to unsynchronised'); return; }
    assert.equal(typeof k.synchronized, 'boolean');
    assert.ok(k.maxErrorUs >= 0);
  });
});
