// Nearest-rank quantiles and nice-edged histograms (src/measure/percentiles.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { quantile, histogram, niceStep, sortedSamples } from '../../src/measure/percentiles.js';

describe('quantile (nearest rank)', () => {
  it('returns measured samples at rank ⌈q·n⌉', () => {
    const a = sortedSamples([5, 1, 4, 2, 3]);
    assert.deepEqual([...a], [1, 2, 3, 4, 5]);
    assert.equal(quantile(a, 0), 1);
    assert.equal(quantile(a, 0.2), 1);
    assert.equal(quantile(a, 0.21), 2);
    assert.equal(quantile(a, 0.5), 3);
    assert.equal(quantile(a, 1), 5);
    const hundred = sortedSamples(Array.from({ length: 100 }, (_, i) => i + 1));
    assert.equal(quantile(hundred, 0.9), 90, 'no floating-point off-by-one at 0.9 · 100');
    assert.equal(quantile(hundred, 0.99), 99);
    assert.equal(quantile(hundred, 0.5), 50);
    assert.equal(quantile([], 0.5), undefined);
    assert.throws(() => quantile(a, 1.5), RangeError);
    assert.throws(() => sortedSamples([1, Number.NaN]), RangeError);
  });
});

describe('histogram', () => {
  it('nice steps', () => {
    assert.equal(niceStep(6, 10), 1);
    assert.equal(niceStep(0.47, 10), 0.05);
    assert.equal(niceStep(1500, 10), 200);
    assert.equal(niceStep(0, 10), 1);
  });

  it('counts every sample once, at most maxBuckets buckets, contiguous nice edges', () => {
    for (const values of [
      [10, 10.5, 11, 11, 11.2, 11.5, 12, 13, 16],
      Array.from({ length: 500 }, (_, i) => 100_000 + ((i * 7919) % 4_000)),
      [0, 10], [3, 3, 3], [-5, 5], [1e9, 1e9 + 1],
    ]) {
      const sorted = sortedSamples(values);
      for (const max of [1, 3, 10, 20]) {
        const b = histogram(sorted, max);
        assert.ok(b.length >= 1 && b.length <= max, `${b.length} buckets ≤ ${max}`);
        assert.equal(b.reduce((n, x) => n + x.count, 0), values.length);
        assert.ok(b[0]!.lo <= sorted[0]! && sorted[sorted.length - 1]! <= b[b.length - 1]!.hi);
        for (let i = 1; i < b.length; i++) assert.equal(b[i]!.lo, b[i - 1]!.hi);
      }
    }
    assert.deepEqual(histogram([], 10), []);
  });

  it('minStep bounds the resolution', () => {
    const b = histogram(sortedSamples([100, 101, 102]), 10, 1000);
    assert.equal(b.length, 1);
    assert.equal(b[0]!.hi - b[0]!.lo, 1000);
  });
});
