// Relabel rules → SDK Views: static renames and whole-metric drops become
// Views, per-series keep/drop stays in the callback, and what a View cannot
// represent fails at load with the reason.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AggregationType, MeterProvider } from '@opentelemetry/sdk-metrics';
import { createTwampViews, AGGREGATION_DROP, type ViewCollector } from '../../src/otel/views.js';
import type { RelabelRule } from '../../src/otel/relabel.js';

function sender(id: string, relabel: RelabelRule[] = [], labels: Record<string, string> = {}): ViewCollector {
  return { type: 'twamp_sender', id, labels, relabel, relabelDialect: 'prometheus', reflector: '192.0.2.1', port: 862, model: { model: 'g711' }, dscp: 46 };
}
function reflector(id: string, relabel: RelabelRule[] = []): ViewCollector {
  return { type: 'twamp_reflector', id, labels: {}, relabel, relabelDialect: 'prometheus', listen: '0.0.0.0', port: 862 };
}

describe('createTwampViews', () => {
  it('no rules, no views', () => {
    assert.deepEqual(createTwampViews([sender('a'), reflector('r')]), []);
  });

  it('AGGREGATION_DROP is the SDK enum value, and the views are accepted by a MeterProvider', () => {
    assert.equal(AGGREGATION_DROP, AggregationType.DROP);
    const views = createTwampViews([sender('a', [{ source_labels: ['__name__'], regex: 'twamp_in_mos', action: 'drop' }])]);
    new MeterProvider({ views });
  });

  it('a rename of __name__ becomes a View with the new stream name', () => {
    const views = createTwampViews([sender('a', [
      // As in Go's regexp.Expand, $1_x would name a group "1_x": braces are needed.
      { source_labels: ['__name__'], regex: 'twamp_rt_(.*)_ns', target_label: '__name__', replacement: 'rtt_${1}_nanoseconds' },
    ])]);
    assert.deepEqual(views.map((v) => [v.instrumentName, v.name]).sort(), [
      ['twamp_rt_avg_delay_ns', 'rtt_avg_delay_nanoseconds'],
      ['twamp_rt_jitter_ns', 'rtt_jitter_nanoseconds'],
      ['twamp_rt_max_delay_ns', 'rtt_max_delay_nanoseconds'],
      ['twamp_rt_min_delay_ns', 'rtt_min_delay_nanoseconds'],
    ]);
  });

  it('counters are matched by their Prometheus name with _total; the View name drops it again', () => {
    const views = createTwampViews([reflector('r', [
      { source_labels: ['__name__'], regex: 'twamp_reflector_reflected_pkt_total', target_label: '__name__', replacement: 'reflected_packets_total' },
    ])]);
    assert.deepEqual(views, [{ instrumentName: 'twamp_reflector_reflected_pkt', meterName: 'otel-twamp', name: 'reflected_packets' }]);
  });

  it('a rename may use static labels (collector labels, reflector, model)', () => {
    const views = createTwampViews([sender('a', [
      { source_labels: ['model', '__name__'], regex: 'g711;twamp_in_mos', target_label: '__name__', replacement: 'voice_in_mos' },
    ])]);
    assert.deepEqual(views.map((v) => v.name), ['voice_in_mos']);
  });

  it('dropping a whole metric everywhere is a DROP View; for one collector of two it stays per series', () => {
    const drop: RelabelRule = { source_labels: ['__name__'], regex: 'twamp_(in|out)_mos', action: 'drop' };
    const all = createTwampViews([sender('a', [drop]), sender('b', [drop])]);
    assert.deepEqual(all.map((v) => [v.instrumentName, v.aggregation?.type]).sort(), [['twamp_in_mos', 1], ['twamp_out_mos', 1]]);
    assert.deepEqual(createTwampViews([sender('a', [drop]), sender('b')]), []);
  });

  it('keep/drop by a label value stays per series (no View)', () => {
    assert.deepEqual(createTwampViews([sender('a', [{ source_labels: ['reason'], regex: 'timeout', action: 'drop' }])]), []);
  });

  it('a rename that depends on a per-run label cannot be a View: load error naming collector and metric', () => {
    assert.throws(() => createTwampViews([sender('a', [
      { source_labels: ['reason'], regex: '(.+)', target_label: '__name__', replacement: 'err_$1' },
    ])]), /collector "a": relabel: the new name of twamp_sender_errors_total depends on labels known only at collection time/);
  });

  it('two collectors renaming the same instrument differently, or one keeping it: load error', () => {
    const r = (to: string): RelabelRule => ({ source_labels: ['__name__'], regex: 'twamp_in_mos', target_label: '__name__', replacement: to });
    assert.throws(() => createTwampViews([sender('a', [r('x_mos')]), sender('b', [r('y_mos')])]), /renames twamp_in_mos to x_mos but collector "b" renames it to y_mos/);
    assert.throws(() => createTwampViews([sender('a', [r('x_mos')]), sender('b')]), /collector "b" keeps the name/);
    assert.equal(createTwampViews([sender('a', [r('x_mos')]), sender('b', [r('x_mos')])]).length, 1);
  });

  it('otel profile: rules see underscored names and attribute keys', () => {
    const views = createTwampViews([sender('a', [
      { source_labels: ['__name__', 'server_address'], regex: 'twamp_sender_round_trip_delay_avg;192\\.0\\.2\\.1', target_label: '__name__', replacement: 'rtt_avg' },
    ])], { naming: 'otel' });
    assert.deepEqual(views, [{ instrumentName: 'twamp.sender.round_trip.delay.avg', meterName: 'otel-twamp', name: 'rtt_avg' }]);
  });
});
