// InstrumentSet on its own (src/otel/instrumentSet.ts), against an SDK
// MeterProvider with the agent's temporality (gauges DELTA, counters
// CUMULATIVE), without a sender or reflector: what one `emit` becomes under
// each naming profile, what is never exported, what a collection without an
// emit leaves, the relabel rules per series, and histogram recording.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ValueType } from '@opentelemetry/api';
import type { Histogram as HistogramPoint } from '@opentelemetry/sdk-metrics';
import { InstrumentSet, type Emit } from '../../src/otel/instrumentSet.js';
import {
  REFLECTOR_METRICS, SENDER_EXTRA, SENDER_HEALTH, SENDER_MEASUREMENTS,
  type NamingProfile, type ReflectorMetricKey, type SenderMetricKey,
} from '../../src/otel/instruments.js';
import { compileRelabel, type Labels, type RelabelRule } from '../../src/otel/relabel.js';
import { testMeter, type TestMeter } from '../helpers/metrics.js';

const SENDER_SPECS = [...SENDER_MEASUREMENTS, ...SENDER_EXTRA, ...SENDER_HEALTH];

/** A sender-table InstrumentSet whose callback emits what `emits` holds at collection time. */
function senderSet(m: TestMeter, profile: NamingProfile, rules: RelabelRule[] = []) {
  const relabel = rules.length ? compileRelabel(rules) : undefined;
  const set = new InstrumentSet(m.provider.getMeter('t'), SENDER_SPECS, { profile, relabel });
  let calls = 0;
  let emits: (emit: Emit<SenderMetricKey>) => void = () => undefined;
  set.start((emit) => { calls++; emits(emit); });
  return {
    set,
    calls: () => calls,
    emitting(f: (emit: Emit<SenderMetricKey>) => void) { emits = f; },
  };
}

function reflectorSet(m: TestMeter, emits: (emit: Emit<ReflectorMetricKey>) => void) {
  const set = new InstrumentSet(m.provider.getMeter('t'), REFLECTOR_METRICS, { profile: 'legacy' });
  set.start(emits);
  return set;
}

async function withMeter(f: (m: TestMeter) => Promise<void>): Promise<void> {
  const m = testMeter();
  try {
    await f(m);
  } finally {
    await m.shutdown();
  }
}

const L: Labels = { collector_id: 'c' };

describe('InstrumentSet: naming profiles', () => {
  it('legacy: the reference names, units and descriptions, values as given (ns)', () => withMeter(async (m) => {
    const s = senderSet(m, 'legacy');
    s.emitting((emit) => { emit('rt_avg_delay', 1_500_000, L); emit('tx_packets', 40, L); });
    const snap = await m.collect();
    const d = snap.metric('twamp_rt_avg_delay_ns')!.descriptor;
    assert.deepEqual([d.unit, d.valueType, d.description], ['ns', ValueType.INT, 'Average round-trip delay in nanoseconds']);
    assert.equal(snap.value('twamp_rt_avg_delay_ns', L), 1_500_000);
    assert.equal(snap.value('twamp_tx_packets', L), 40);
    assert.equal(snap.metric('twamp.sender.round_trip.delay.avg'), undefined);
  }));

  it('otel: dotted names, seconds as doubles (the description loses "in nanoseconds"), counts unscaled', () => withMeter(async (m) => {
    const s = senderSet(m, 'otel');
    s.emitting((emit) => { emit('rt_avg_delay', 1_500_000, L); emit('tx_packets', 40, L); emit('runs', 2, L); });
    const snap = await m.collect();
    const d = snap.metric('twamp.sender.round_trip.delay.avg')!.descriptor;
    assert.deepEqual([d.unit, d.valueType, d.description], ['s', ValueType.DOUBLE, 'Average round-trip delay']);
    assert.ok(Math.abs(snap.value('twamp.sender.round_trip.delay.avg', L)! - 0.0015) < 1e-15);
    assert.equal(snap.value('twamp.sender.sent.packets', L), 40);
    assert.equal(snap.metric('twamp.sender.sent.packets')!.descriptor.valueType, ValueType.INT);
    assert.equal(snap.value('twamp.sender.runs', L), 2);
    assert.equal(snap.metric('twamp_rt_avg_delay_ns'), undefined);
  }));

  it('otel: server.port goes out as a number, other attributes as strings', () => withMeter(async (m) => {
    const s = senderSet(m, 'otel');
    s.emitting((emit) => emit('tx_packets', 1, { 'server.address': '127.0.0.1', 'server.port': '862', 'twamp.collector.id': '7' }));
    const [p] = (await m.collect()).points('twamp.sender.sent.packets');
    assert.deepEqual(p!.attributes, { 'server.address': '127.0.0.1', 'server.port': 862, 'twamp.collector.id': '7' });
  }));

  it('legacy: every attribute stays a string, port included', () => withMeter(async (m) => {
    const s = senderSet(m, 'legacy');
    s.emitting((emit) => emit('tx_packets', 1, { port: '862' }));
    const [p] = (await m.collect()).points('twamp_tx_packets');
    assert.deepEqual(p!.attributes, { port: '862' });
  }));
});

describe('InstrumentSet: observe', () => {
  it('undefined, NaN and infinite values export no series; 0 is a value (zero series)', () => withMeter(async (m) => {
    const s = senderSet(m, 'legacy');
    s.emitting((emit) => {
      emit('rt_min_delay', undefined, L);
      emit('rt_max_delay', Number.NaN, L);
      emit('rt_avg_delay', Number.POSITIVE_INFINITY, L);
      emit('rt_jitter', Number.NEGATIVE_INFINITY, L);
      emit('rt_loss', 0, L);
      emit('errors', 0, { ...L, reason: 'dns' });
    });
    const snap = await m.collect();
    for (const name of ['twamp_rt_min_delay_ns', 'twamp_rt_max_delay_ns', 'twamp_rt_avg_delay_ns', 'twamp_rt_jitter_ns']) {
      assert.deepEqual(snap.points(name), [], name);
    }
    assert.equal(snap.value('twamp_rt_loss', L), 0);
    assert.equal(snap.value('twamp_sender_errors', { reason: 'dns' }), 0);
  }));

  it('one key, several label sets: one series each', () => withMeter(async (m) => {
    const s = senderSet(m, 'legacy');
    s.emitting((emit) => { for (const reason of ['dns', 'connect', 'timeout']) emit('errors', reason.length, { reason }); });
    const snap = await m.collect();
    assert.deepEqual(snap.points('twamp_sender_errors').map((p) => [p.attributes.reason, p.value]).sort(),
      [['connect', 7], ['dns', 3], ['timeout', 7]]);
  }));

  it('the snapshot runs once per collection, and a second start() registers nothing more', () => withMeter(async (m) => {
    const s = senderSet(m, 'legacy');
    s.set.start(() => assert.fail('a second snapshot callback was registered'));
    await m.collect();
    await m.collect();
    assert.equal(s.calls(), 2);
  }));
});

describe('InstrumentSet: what a collection without an emit leaves', () => {
  it('a gauge not emitted is gone from that collection (a failed run withdraws its measurements)', () => withMeter(async (m) => {
    const s = senderSet(m, 'legacy');
    s.emitting((emit) => emit('rt_avg_delay', 100, L));
    assert.equal((await m.collect()).value('twamp_rt_avg_delay_ns', L), 100);
    s.emitting(() => undefined);
    assert.deepEqual((await m.collect()).points('twamp_rt_avg_delay_ns'), []);
    s.emitting((emit) => emit('rt_avg_delay', 200, L));
    assert.equal((await m.collect()).value('twamp_rt_avg_delay_ns', L), 200);
  }));

  it('a counter keeps its last cumulative value (why zero series are emitted from the start)', () => withMeter(async (m) => {
    let n: number | undefined = 3;
    reflectorSet(m, (emit) => { if (n !== undefined) emit('refused', n, { reason: 'mode' }); });
    assert.equal((await m.collect()).value('twamp_reflector_refused', { reason: 'mode' }), 3);
    n = undefined;
    assert.equal((await m.collect()).value('twamp_reflector_refused', { reason: 'mode' }), 3);
  }));

  it('stop() unregisters the snapshot: gauges are gone, the callback is no longer called', () => withMeter(async (m) => {
    const s = senderSet(m, 'legacy');
    s.emitting((emit) => emit('rt_avg_delay', 100, L));
    await m.collect();
    s.set.stop();
    const snap = await m.collect();
    assert.equal(s.calls(), 1);
    assert.deepEqual(snap.points('twamp_rt_avg_delay_ns'), []);
    s.set.stop(); // twice is harmless
  }));
});

describe('InstrumentSet: relabel rules per series', () => {
  it('legacy: rules see the visible names (counters with _total) and drop single series', () => withMeter(async (m) => {
    const s = senderSet(m, 'legacy', [
      { action: 'drop', source_labels: ['__name__', 'reason'], regex: 'twamp_sender_errors_total;dns' },
      { action: 'drop', source_labels: ['__name__'], regex: 'twamp_sender_errors' }, // never matches: the scrape shows _total
    ]);
    s.emitting((emit) => { emit('errors', 1, { reason: 'dns' }); emit('errors', 2, { reason: 'connect' }); });
    const snap = await m.collect();
    assert.deepEqual(snap.points('twamp_sender_errors').map((p) => p.attributes.reason), ['connect']);
  }));

  it('otel: rules see underscored label names; the result keeps the dotted keys and typed port', () => withMeter(async (m) => {
    const s = senderSet(m, 'otel', [
      { source_labels: ['server_address'], regex: '127\\.0\\.0\\.(\\d+)', target_label: 'site', replacement: 'lo-$1' },
      { action: 'drop', source_labels: ['__name__'], regex: 'twamp_sender_round_trip_jitter' },
    ]);
    s.emitting((emit) => {
      const labels = { 'server.address': '127.0.0.9', 'server.port': '862' };
      emit('tx_packets', 5, labels);
      emit('rt_jitter', 1000, labels);
    });
    const snap = await m.collect();
    const [p] = snap.points('twamp.sender.sent.packets');
    assert.deepEqual(p!.attributes, { 'server.address': '127.0.0.9', 'server.port': 862, site: 'lo-9' });
    assert.deepEqual(snap.points('twamp.sender.round_trip.jitter'), []);
  }));

  it('histograms: relabel once per recorded label set; a drop records nothing', () => withMeter(async (m) => {
    const s = senderSet(m, 'legacy', [{ action: 'keep', source_labels: ['collector_id'], regex: 'kept' }]);
    s.set.record('rt_delay', [1e6], { collector_id: 'gone' });
    s.set.record('rt_delay', [1e6, 2e6], { collector_id: 'kept' });
    const metric = (await m.collect()).metric('twamp_rt_delay_ns')!;
    assert.deepEqual(metric.dataPoints.map((p) => p.attributes), [{ collector_id: 'kept' }]);
    assert.equal((metric.dataPoints[0]!.value as HistogramPoint).count, 2);
  }));
});

describe('InstrumentSet: record (histograms)', () => {
  it('legacy: samples in ns into the table\'s buckets', () => withMeter(async (m) => {
    const s = senderSet(m, 'legacy');
    s.set.record('rt_delay', [40e3, 60e3, 2e9], L);
    const metric = (await m.collect()).metric('twamp_rt_delay_ns')!;
    const h = metric.dataPoints[0]!.value as HistogramPoint;
    assert.equal(h.count, 3);
    assert.equal(h.sum, 40e3 + 60e3 + 2e9);
    assert.deepEqual(h.buckets.boundaries.slice(0, 2), [50e3, 100e3]);
    assert.deepEqual(h.buckets.counts.slice(0, 2), [1, 1]);
    assert.equal(h.buckets.counts.at(-1), 1); // 2 s: above the last boundary (1 s)
  }));

  it('otel: samples and bucket boundaries in seconds', () => withMeter(async (m) => {
    const s = senderSet(m, 'otel');
    s.set.record('rt_delay', [40e3], L);
    const metric = (await m.collect()).metric('twamp.sender.round_trip.delay')!;
    const h = metric.dataPoints[0]!.value as HistogramPoint;
    assert.ok(Math.abs(h.sum! - 40e-6) < 1e-15);
    assert.ok(Math.abs(h.buckets.boundaries[0]! - 50e-6) < 1e-15);
    assert.equal(metric.descriptor.unit, 's');
  }));

  it('no samples, or a key that is not a histogram: nothing recorded', () => withMeter(async (m) => {
    const s = senderSet(m, 'legacy');
    s.set.record('rt_delay', [], L);
    s.set.record('rt_avg_delay', [5], L);
    const snap = await m.collect();
    assert.equal(snap.metric('twamp_rt_delay_ns')?.dataPoints.length ?? 0, 0);
    assert.deepEqual(snap.points('twamp_rt_avg_delay_ns'), []);
  }));
});
