// Sender ↔ reflector over loopback, through the producers and a real
// MetricReader: every traffic model, the reference metric names, reflector
// counters, and a failed run withdrawing the measurements.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TwampReflector } from '../../src/reflector.js';
import { TwampSender } from '../../src/sender.js';
import { SENDER_MEASUREMENTS } from '../../src/otel/instruments.js';
import { testMeter, type TestMeter } from '../helpers/metrics.js';
import { freePort } from '../helpers/peers.js';
import { datapathSupport } from '../../src/session/datapath.js';
import { parseReflectorConfig, parseSenderConfig } from '../../src/config/index.js';

const N = 40;

describe('sender ↔ reflector on loopback', { timeout: 120_000 }, () => {
  let meter: TestMeter;
  let reflector: TwampReflector;
  let port: number;

  before(async () => {
    meter = testMeter();
    reflector = new TwampReflector(parseReflectorConfig({ id: 'refl', type: 'twamp_reflector', listen: '127.0.0.1', port: 0 }),
      { meterProvider: meter.provider });
    port = (await reflector.start()).port;
  });
  after(async () => {
    await reflector.stop();
    await meter.shutdown();
  });

  const cases = [
    { model: 'g711', extra: {}, txSize: 200, rxSize: 200, mos: true },
    // reply is at least 41 octets of TWAMP; 44 with RFC 7750 (S-DSCP-ECN, 2 MBZ), offered where the datapath reads the TOS
    { model: 'g729', extra: {}, txSize: 60, rxSize: datapathSupport().native ? 72 : 69, mos: true },
    { model: 'cbr', extra: { bandwidth: 2_000_000, size: 256 }, txSize: 256, rxSize: 256, mos: false },
  ] as const;

  for (const c of cases) {
    it(`${c.model}: ${N} packets, all metrics exported with the reference names`, async () => {
      const before = (await meter.collect()).value('twamp_reflector_reflected_pkt') ?? 0;
      const id = `s-${c.model}`;
      const sender = new TwampSender(parseSenderConfig({
        id, type: 'twamp_sender', reflector: '127.0.0.1', port, n_packets: N, model: c.model, ...c.extra,
      }), { meterProvider: meter.provider });
      const out = await sender.runOnce();
      assert.ok(out.ok, out.ok ? '' : out.error.message);
      await sender.start(); // registers the callback; the run result above is what is observed
      const snap = await meter.collect();
      await sender.stop();
      const l = { collector_id: id };
      assert.equal(snap.value('twamp_tx_packets', l), N);
      assert.equal(snap.value('twamp_rx_packets', l), N);
      assert.equal(snap.value('twamp_tx_bytes', l), N * c.txSize);
      assert.equal(snap.value('twamp_rx_bytes', l), N * c.rxSize);
      for (const dir of ['in', 'out', 'rt']) assert.equal(snap.value(`twamp_${dir}_loss`, l), 0, `${dir} loss`);
      const min = snap.value('twamp_rt_min_delay_ns', l)!;
      const avg = snap.value('twamp_rt_avg_delay_ns', l)!;
      const max = snap.value('twamp_rt_max_delay_ns', l)!;
      assert.ok(min > 0 && min <= avg && avg <= max && max < 1e9, `rt ${min}/${avg}/${max}`);
      assert.ok(snap.value('twamp_rt_jitter_ns', l)! >= 0);
      assert.ok(snap.value('twamp_duration_ns', l)! > 0);
      assert.ok(snap.value('twamp_tx_pps', l)! > 0);
      assert.equal(snap.value('twamp_sender_success', l), 1);
      if (c.mos) {
        for (const dir of ['in', 'out']) {
          const mos = snap.value(`twamp_${dir}_mos`, l)!;
          assert.ok(mos > 3.5 && mos <= 4.5, `${dir} MOS ${mos}`);
        }
        for (const spec of SENDER_MEASUREMENTS) assert.ok(snap.metric(spec.legacy.name), spec.legacy.name);
      } else {
        assert.equal(snap.value('twamp_in_mos', l), undefined, 'no MOS without a voice codec');
      }
      // Labels identify collector and reflector.
      const p = snap.points('twamp_tx_packets', l)[0]!;
      assert.equal(p.attributes.reflector, `127.0.0.1:${port}`);
      assert.equal(p.attributes.collector, 'twamp_sender');
      assert.equal(p.attributes.model, c.model);
      // Reflector side counted the same packets, octets at IP level.
      assert.equal(snap.value('twamp_reflector_reflected_pkt')! - before, N);
    });
  }

  it('imix: sizes follow the 12-packet cycle', async () => {
    const sender = new TwampSender(parseSenderConfig({
      id: 's-imix', type: 'twamp_sender', reflector: '127.0.0.1', port, n_packets: 24, model: 'imix', bandwidth: 5_000_000,
    }), { meterProvider: meter.provider });
    const out = await sender.runOnce();
    assert.ok(out.ok, out.ok ? '' : out.error.message);
    const s = out.result.session.stats;
    assert.equal(s.txPackets, 24);
    assert.equal(s.txBytes, 2 * (7 * 70 + 4 * 576 + 1500));
    assert.equal(s.rxPackets, 24);
    assert.equal(s.rt.loss, 0);
  });

  it('beyond the reference: percentiles, duplicates, reordering, residence, a round-trip histogram', async () => {
    const sender = new TwampSender(parseSenderConfig({
      id: 's-extra', type: 'twamp_sender', reflector: '127.0.0.1', port, n_packets: 30, model: 'g711',
    }), { meterProvider: meter.provider });
    const out = await sender.runOnce();
    assert.ok(out.ok, out.ok ? '' : out.error.message);
    await sender.start();
    const snap = await meter.collect();
    await sender.stop();
    const l = { collector_id: 's-extra' };
    for (const dir of ['rt', 'out', 'in']) {
      const min = snap.value(`twamp_${dir}_min_delay_ns`, l)!;
      const p50 = snap.value(`twamp_${dir}_p50_delay_ns`, l)!;
      const p90 = snap.value(`twamp_${dir}_p90_delay_ns`, l)!;
      const p99 = snap.value(`twamp_${dir}_p99_delay_ns`, l)!;
      const max = snap.value(`twamp_${dir}_max_delay_ns`, l)!;
      assert.ok(min <= p50 && p50 <= p90 && p90 <= p99 && p99 <= max, `${dir}: ${min} ${p50} ${p90} ${p99} ${max}`);
    }
    assert.equal(snap.value('twamp_duplicates', l), 0);
    assert.equal(snap.value('twamp_reordered', l), 0);
    assert.ok(snap.value('twamp_residence_avg_ns', l)! >= 0);
    const hist = snap.metric('twamp_rt_delay_ns')!;
    const point = (hist.dataPoints as { attributes: Record<string, unknown>; value: { count: number; sum?: number } }[])
      .find((p) => p.attributes.collector_id === 's-extra')!;
    assert.equal(point.value.count, 30, 'one histogram sample per answered packet');
  });

  it('reflector counts attempts, started sessions and octets', async () => {
    const snap = await meter.collect();
    const attempts = snap.value('twamp_reflector_session_attempts')!;
    const started = snap.value('twamp_reflector_session_started')!;
    assert.ok(attempts >= 5 && started === attempts, `${attempts} / ${started}`);
    assert.ok(snap.value('twamp_reflector_reflected_octets')! > 0);
  });
});

describe('failed runs', { timeout: 60_000 }, () => {
  it('an unreachable reflector: success 0, error counted by reason, measurements withdrawn', async () => {
    const meter = testMeter();
    const reflector = new TwampReflector(parseReflectorConfig({ id: 'r', type: 'twamp_reflector', listen: '127.0.0.1', port: 0 }),
      { meterProvider: meter.provider });
    const port = (await reflector.start()).port;
    const sender = new TwampSender(parseSenderConfig({
      id: 'flaky', type: 'twamp_sender', reflector: '127.0.0.1', port, n_packets: 5, model: 'g711', control_timeout: 1,
    }), { meterProvider: meter.provider });
    await sender.start();
    try {
      await sender.runOnce();
      let snap = await meter.collect();
      assert.equal(snap.value('twamp_sender_success'), 1);
      assert.equal(snap.value('twamp_tx_packets'), 5);
      await reflector.stop();
      const out = await sender.runOnce();
      assert.equal(out.ok, false);
      assert.equal(out.ok ? '' : out.reason, 'connect');
      assert.match(out.ok ? '' : out.error.message, new RegExp(`127\\.0\\.0\\.1:${port}.*ECONNREFUSED`));
      snap = await meter.collect();
      assert.equal(snap.value('twamp_sender_success'), 0);
      assert.equal(snap.value('twamp_sender_errors', { reason: 'connect' }), 1);
      assert.equal(snap.value('twamp_tx_packets'), undefined, 'stale result withdrawn');
      assert.equal(snap.value('twamp_rt_avg_delay_ns'), undefined, 'stale result withdrawn');
    } finally {
      await sender.stop();
      await meter.shutdown();
    }
  });

  it('a silent server: the run fails with a timeout naming the missing message', async () => {
    const { createServer } = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const silent = createServer((s) => { sockets.push(s); });
    const port = await freePort();
    await new Promise<void>((r) => silent.listen(port, '127.0.0.1', r));
    const sender = new TwampSender(parseSenderConfig({
      id: 'silent', type: 'twamp_sender', reflector: '127.0.0.1', port, n_packets: 5, model: 'g711', control_timeout: 0.3,
    }));
    const out = await sender.runOnce();
    for (const s of sockets) s.destroy();
    silent.close();
    assert.equal(out.ok, false);
    assert.equal(out.ok ? '' : out.reason, 'timeout');
    assert.match(out.ok ? '' : out.error.message, /Server-Greeting/);
  });

  it('a reflector refusing the requested port range is reported as refused', async () => {
    // A server offering no usable mode (Modes = 0) must be reported as a refusal.
    const { createServer } = await import('node:net');
    const srv = createServer((s) => { s.write(Buffer.alloc(64)); });
    const port = await freePort();
    await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
    const sender = new TwampSender(parseSenderConfig({
      id: 'refused', type: 'twamp_sender', reflector: '127.0.0.1', port, n_packets: 5, model: 'g711', control_timeout: 1,
    }));
    const out = await sender.runOnce();
    srv.close();
    assert.equal(out.ok ? '' : out.reason, 'refused');
    assert.match(out.ok ? '' : out.error.message, /Modes = 0/);
  });
});
