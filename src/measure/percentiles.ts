/**
 * Order statistics and histograms of delay samples (pure math, no I/O).
 *
 * Quantiles use the nearest-rank definition (the smallest sample with at
 * least q·n samples at or below it), so every reported percentile is a delay
 * that was actually measured, as in RFC 2330 §11.3's empirical distribution
 * and twping's percentiles — not an interpolation between two packets.
 */

/** Ascending numeric sort into a new Float64Array (NaN is rejected). */
export function sortedSamples(values: Iterable<number>): Float64Array {
  const a = Float64Array.from(values);
  for (const v of a) if (Number.isNaN(v)) throw new RangeError('sortedSamples: NaN sample');
  return a.sort();
}

/**
 * Nearest-rank quantile of ascending `sorted` for 0 ≤ q ≤ 1: the sample at
 * rank ⌈q·n⌉ (1-based), the minimum for q = 0. Undefined for no samples.
 */
export function quantile(sorted: ArrayLike<number>, q: number): number | undefined {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile: q must be within [0, 1], got ${q}`);
  const n = sorted.length;
  if (n === 0) return undefined;
  // The epsilon keeps 0.9·100 = 90.00000000000001 at rank 90.
  const rank = Math.max(1, Math.ceil(q * n - 1e-9));
  return sorted[Math.min(n, rank) - 1];
}

export interface HistogramBucket {
  /** Inclusive lower edge. */
  lo: number;
  /** Exclusive upper edge (the last bucket includes the maximum). */
  hi: number;
  count: number;
}

/**
 * A "nice" step (1, 2 or 5 × 10^k) at least `span / maxBuckets`, so bucket
 * edges read well (0.05 ms, not 0.0473 ms).
 */
export function niceStep(span: number, maxBuckets: number): number {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / Math.max(1, maxBuckets);
  const pow = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) {
    const step = m * pow;
    if (step >= raw * (1 - 1e-12)) return step;
  }
  return 10 * pow;
}

/**
 * Equal-width histogram of ascending samples with at most `maxBuckets`
 * buckets on nice edges covering [min, max]. Every sample is in exactly one
 * bucket. Empty input gives no buckets; constant input gives one bucket.
 * `minStep` bounds the resolution (e.g. 1000 for 1 µs when samples are in ns).
 */
export function histogram(sorted: ArrayLike<number>, maxBuckets = 10, minStep = 0): HistogramBucket[] {
  const n = sorted.length;
  if (n === 0) return [];
  const min = sorted[0]!;
  const max = sorted[n - 1]!;
  const span = max - min;
  let step = Math.max(niceStep(span, maxBuckets), minStep > 0 ? minStep : 0);
  let start = Math.floor(min / step) * step;
  let count = Math.floor((max - start) / step) + 1;
  // Aligning the first edge down can need a bucket or two more than asked: try
  // the next nice steps, then give up the alignment (start at the minimum).
  for (let tries = 0; count > maxBuckets && tries < 2; tries++) {
    step = niceStep(step * (1 + 1e-9) * maxBuckets, maxBuckets);
    start = Math.floor(min / step) * step;
    count = Math.floor((max - start) / step) + 1;
  }
  if (count > maxBuckets) {
    start = min;
    // step ≥ span / maxBuckets, so only a maximum exactly on the last edge overflows: it joins the last bucket.
    count = Math.max(1, Math.min(maxBuckets, Math.floor(span / step) + 1));
  }
  const buckets: HistogramBucket[] = [];
  for (let i = 0; i < count; i++) buckets.push({ lo: start + i * step, hi: start + (i + 1) * step, count: 0 });
  for (let i = 0; i < n; i++) {
    const k = Math.min(count - 1, Math.max(0, Math.floor((sorted[i]! - start) / step)));
    buckets[k]!.count++;
  }
  return buckets;
}
