// Metric keys are types derived from the instrument tables (src/otel/instruments.ts):
// a producer emitting a key its table lacks, or values missing a key, does not
// compile. The `@ts-expect-error` lines below are the test: if the typing
// regressed to plain strings they would compile, and tsc rejects an unused
// `@ts-expect-error`, so the build fails.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AGENT_METRICS, REFLECTOR_METRICS, SENDER_EXTRA, SENDER_HEALTH, SENDER_MEASUREMENTS, SENDER_PATH,
  type AgentMetricKey, type MetricValues, type ReflectorMetricKey, type SenderHealthKey, type SenderMeasurementKey,
  type SenderMetricKey, type SenderPathKey,
} from '../../src/otel/instruments.js';
import { InstrumentSet, type Emit } from '../../src/otel/instrumentSet.js';
import type { SenderValues } from '../../src/sender.js';
import { testMeter } from '../helpers/metrics.js';

/** True when A and B are the same type (not merely mutually assignable through any). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;

describe('metric keys are derived from the tables', () => {
  it('each key type is a union of literals, not string', () => {
    // Compile-time: a table typed `readonly MetricSpec[]` again would widen its keys to string.
    const literal: [false, false, false, false, false] = [
      false satisfies Equal<SenderMeasurementKey, string>, false satisfies Equal<SenderPathKey, string>,
      false satisfies Equal<SenderMetricKey, string>, false satisfies Equal<ReflectorMetricKey, string>,
      false satisfies Equal<AgentMetricKey, string>,
    ];
    const health: true = true satisfies Equal<SenderHealthKey, 'success' | 'run_duration' | 'runs' | 'errors'>;
    assert.ok(literal.every((x) => !x) && health);
    // Run time: the key types cover the tables (the key lists below only compile if each is a key).
    const measurements: SenderMeasurementKey[] = SENDER_MEASUREMENTS.map((s) => s.key);
    const path: SenderPathKey[] = SENDER_PATH.map((s) => s.key);
    assert.equal(measurements.length, 26);
    assert.ok(path.includes('out_hops'));
    const all: SenderMetricKey[] = [...SENDER_MEASUREMENTS, ...SENDER_EXTRA, ...SENDER_HEALTH].map((s) => s.key);
    assert.equal(new Set(all).size, all.length, 'sender keys are unique');
    assert.equal(new Set(REFLECTOR_METRICS.map((s) => s.key)).size, REFLECTOR_METRICS.length, 'reflector keys are unique');
    assert.equal(new Set(AGENT_METRICS.map((s) => s.key)).size, AGENT_METRICS.length, 'agent keys are unique');
  });

  it('the reference keys are literal, per direction', () => {
    const ok: SenderMeasurementKey[] = ['in_min_delay', 'out_jitter', 'rt_loss', 'in_mos', 'tx_bitrate'];
    // @ts-expect-error rt_mos is not a metric of the reference table (MOS is per one-way direction)
    const bad: SenderMeasurementKey = 'rt_mos';
    assert.equal(ok.length, 5);
    assert.equal(bad, 'rt_mos');
  });

  it('an InstrumentSet only takes the keys of its own table', async () => {
    const m = testMeter();
    try {
      const set = new InstrumentSet(m.provider.getMeter('t'), REFLECTOR_METRICS, { profile: 'legacy' });
      set.start((emit) => {
        emit('reflected_pkt', 3, { collector_id: 'r' });
        // @ts-expect-error misspelt key: the reflector table has reflected_pkt, not reflected_pkts
        emit('reflected_pkts', 4, { collector_id: 'r' });
        // @ts-expect-error a sender key on the reflector's set
        emit('tx_packets', 5, { collector_id: 'r' });
      });
      const snap = await m.collect();
      assert.equal(snap.value('twamp_reflector_reflected_pkt', { collector_id: 'r' }), 3);
      assert.equal(snap.metric('twamp_tx_packets'), undefined);
      set.stop();
      // An Emit of one table is not an Emit of another.
      const senderEmit: Emit<SenderMetricKey> = () => undefined;
      // @ts-expect-error a sender emit cannot stand for a reflector emit
      const reflectorEmit: Emit<ReflectorMetricKey> = senderEmit;
      assert.equal(typeof reflectorEmit, 'function');
    } finally {
      await m.shutdown();
    }
  });

  it('values records need every key and refuse unknown ones', () => {
    const twoKeys: MetricValues<'a' | 'b'> = { a: 1, b: undefined };
    // @ts-expect-error b is missing (undefined must be written out: "not observed" is explicit)
    const missing: MetricValues<'a' | 'b'> = { a: 1 };
    // @ts-expect-error c is not a key
    const extra: MetricValues<'a' | 'b'> = { a: 1, b: 2, c: 3 };
    assert.deepEqual([twoKeys, missing, extra].map((v) => Object.keys(v).length), [2, 1, 3]);
    // The sender's values: a result without in_mos (say) does not compile.
    type WithoutMos = Omit<SenderValues, 'in_mos'>;
    const complete: true = true satisfies Equal<keyof SenderValues extends keyof WithoutMos ? true : false, false>;
    assert.ok(complete);
  });
});
