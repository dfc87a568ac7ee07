import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ERROR_ESTIMATE_UNSYNC_MIN,
  decodeErrorEstimate,
  encodeErrorEstimate,
  errorEstimateFromSeconds,
  errorEstimateSeconds,
} from '../../src/protocol/index.js';

describe('Error Estimate (RFC 4656 §4.1.2)', () => {
  it('decodes 0x0001: unsynchronised, 2^-32 s (twping/twampd)', () => {
    assert.equal(ERROR_ESTIMATE_UNSYNC_MIN, 0x0001);
    assert.deepEqual(decodeErrorEstimate(0x0001), { synchronized: false, z: false, scale: 0, multiplier: 1 });
    assert.equal(errorEstimateSeconds(0x0001), 2 ** -32);
  });

  it('decodes 0x8F83: synchronised, scale 15, multiplier 131 ≈ 0.9995 ms', () => {
    assert.deepEqual(decodeErrorEstimate(0x8f83), { synchronized: true, z: false, scale: 15, multiplier: 131 });
    assert.equal(errorEstimateSeconds(0x8f83), 131 / 131072);
    assert.ok(Math.abs(errorEstimateSeconds(0x8f83) - 0.0009995) < 1e-7);
  });

  it('decodes 0x3FFF: unsynchronised, maximal (twampy "unknown")', () => {
    assert.deepEqual(decodeErrorEstimate(0x3fff), { synchronized: false, z: false, scale: 63, multiplier: 255 });
    assert.equal(errorEstimateSeconds(0x3fff), 255 * 2 ** 31);
  });

  it('encodes fields back to the same words and decodes the Z bit', () => {
    for (const v of [0x0001, 0x8f83, 0x3fff, 0xc001, 0x000f]) {
      assert.equal(encodeErrorEstimate(decodeErrorEstimate(v)), v);
    }
    assert.equal(decodeErrorEstimate(0x4001).z, true);
  });

  it('rejects multiplier 0 and out-of-range fields on encode', () => {
    assert.throws(() => encodeErrorEstimate({ synchronized: false, z: false, scale: 0, multiplier: 0 }), RangeError);
    assert.throws(() => encodeErrorEstimate({ synchronized: false, z: false, scale: 0, multiplier: 256 }), RangeError);
    assert.throws(() => encodeErrorEstimate({ synchronized: false, z: false, scale: 64, multiplier: 1 }), RangeError);
    assert.throws(() => encodeErrorEstimate({ synchronized: false, z: false, scale: 1.5, multiplier: 1 }), RangeError);
    // A received multiplier 0 decodes (the caller decides; RFC says discard, twping aborts).
    assert.equal(decodeErrorEstimate(0x8000).multiplier, 0);
    assert.equal(errorEstimateSeconds(0x8000), 0);
  });

  it('encodes seconds with the smallest scale, rounding up, multiplier ≥ 1', () => {
    assert.equal(errorEstimateFromSeconds(0, false), 0x0001);
    assert.equal(errorEstimateFromSeconds(0, true), 0x8001);
    assert.equal(errorEstimateFromSeconds(errorEstimateSeconds(0x8f83), true), 0x8f83);
    assert.equal(errorEstimateFromSeconds(0.001, true), 0x8f84); // 131.07 → 132 at scale 15
    assert.equal(errorEstimateFromSeconds(2 ** -32, false), 0x0001);
    assert.equal(errorEstimateFromSeconds(1e20, false), 0x3fff);
    assert.equal(errorEstimateFromSeconds(Infinity, false), 0x3fff);
    assert.throws(() => errorEstimateFromSeconds(-1, false), RangeError);
    assert.throws(() => errorEstimateFromSeconds(Number.NaN, false), RangeError);
  });

  it('never yields multiplier 0 and never understates the error', () => {
    let x = 1e-12;
    while (x < 1e12) {
      for (const sync of [false, true]) {
        const v = errorEstimateFromSeconds(x, sync);
        const e = decodeErrorEstimate(v);
        assert.ok(e.multiplier >= 1, `multiplier 0 for ${x}`);
        assert.equal(e.synchronized, sync);
        // Beyond the largest encodable bound (255 · 2^31 s) the value saturates.
        assert.ok(errorEstimateSeconds(v) >= Math.min(x, 255 * 2 ** 31), `understated ${x}`);
        // Smallest scale: one step finer would not fit 8 bits.
        if (e.scale > 0) assert.ok(Math.ceil(x * 2 ** (33 - e.scale)) > 255, `scale not minimal for ${x}`);
      }
      x *= 1.37;
    }
  });
});
