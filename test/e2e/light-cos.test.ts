// The STAMP Class of Service policy of the Light reflector as configured
// (`light_cos_allow`, docs/configuration.md "twamp_reflector", RFC 8972 §4.4),
// end to end on loopback: our STAMP sender (open STAMP: a Class of Service TLV
// with DSCP1 = its `dscp` in every packet) asks for EF replies through a relay
// that re-marks the requests to CS1 on the way out, so DSCP1 differs from the
// DSCP the request arrived with. Checked: each reply's TLV (RP, DSCP2) and DS
// byte as it left the reflector, what the sender measured of it, and the
// reflector's answered/refused counters through a real MeterProvider, in both
// naming profiles.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TwampSender } from '../../src/sender.js';
import { TwampReflector } from '../../src/reflector.js';
import { parseReflectorConfig, parseSenderConfig } from '../../src/config/load.js';
import { findAnsweredCos, STAMP_BASE_SIZE } from '../../src/protocol/index.js';
import type { NamingProfile } from '../../src/otel/instruments.js';
import { testMeter } from '../helpers/metrics.js';
import { needNative } from '../helpers/native.js';
import { remarkingRelay } from '../helpers/remarkingRelay.js';

const EF = 46;
const CS1 = 8;
const AF41 = 34;
const N = 20;

const ANSWERED = { legacy: 'twamp_reflector_light_cos_answered_pkt', otel: 'twamp.reflector.light.cos.answered.packets' } as const;
const REFUSED = { legacy: 'twamp_reflector_light_cos_refused_pkt', otel: 'twamp.reflector.light.cos.refused.packets' } as const;

async function stampReflector(extra: Record<string, unknown>, naming: NamingProfile = 'legacy') {
  const meter = testMeter();
  const r = new TwampReflector(
    parseReflectorConfig({ id: 'cos', listen: '127.0.0.1', port: 0, control: false, light_port: 0, ...extra }),
    { meterProvider: meter.provider, naming },
  );
  await r.start();
  return { r, meter, lightPort: r.lightAddress!.port };
}

/** One run of our open-STAMP sender asking for EF (100-octet packets: room for the CoS TLV). */
async function stampSession(port: number) {
  const s = new TwampSender(parseSenderConfig({
    id: 'stamp', reflector: '127.0.0.1', port, control: false, format: 'stamp', dscp: 'ef',
    model: 'cbr', bandwidth: 400_000, size: 100, n_packets: N, reply_timeout: 0.5,
  }));
  const out = await s.runOnce();
  assert.ok(out.ok, out.ok ? '' : out.error.message);
  return out.result;
}

describe('light_cos_allow: the Class of Service TLV policy end to end', { timeout: 60_000 }, () => {
  const cases = [
    { name: 'default (key absent): DSCP1 EF refused, the path delivered CS1', extra: {}, granted: false },
    { name: 'light_cos_allow: [af41]: EF still refused (not listed)', extra: { light_cos_allow: ['af41'] }, granted: false },
    { name: 'light_cos_allow: [cs1, ef]: EF granted although the request arrived as CS1', extra: { light_cos_allow: [CS1, 'EF'] }, granted: true },
  ];
  for (const c of cases) {
    it(c.name, async (t) => {
      if (!needNative(t)) return;
      const { r, meter, lightPort } = await stampReflector(c.extra);
      const relay = await remarkingRelay({ address: '127.0.0.1', port: lightPort }, CS1 << 2);
      try {
        const res = await stampSession(relay.port);
        const ses = res.session;
        assert.equal(ses.stats.rxPackets, N);
        assert.equal(relay.replies.length, N);
        // Every reply, as the reflector sent it: the TLV's answer and the DS byte it left with.
        const replyDscp = c.granted ? EF : CS1;
        for (const reply of relay.replies) {
          const cos = findAnsweredCos(reply.data, reply.data.length, STAMP_BASE_SIZE);
          assert.deepEqual(cos, { dscp1: EF, dscp2: CS1, ecn: 0, rp: c.granted ? 0 : 1 });
          assert.equal(reply.tos >> 2, replyDscp, 'the reply leaves with DSCP1 if granted, else the received DSCP');
        }
        // What the sender measured of it (README "Metrics": DSCP per direction).
        const out = ses.path!.outbound;
        assert.equal(out.reportedBy, 'cos-tlv');
        assert.equal(out.dscp, CS1);
        assert.equal(out.replyDscpRefused, c.granted ? 0 : N);
        assert.equal(res.values.in_dscp_sent, replyDscp);
        assert.equal(res.values.in_dscp_received, replyDscp);
        assert.equal(res.values.in_dscp_remarked, 0);
        // The reflector's counters, as exported.
        const snap = await meter.collect();
        assert.equal(snap.value(ANSWERED.legacy), N);
        assert.equal(snap.value(REFUSED.legacy), c.granted ? 0 : N);
        assert.equal(snap.metric(ANSWERED.legacy)?.descriptor.unit, '{packet}');
      } finally {
        relay.close();
        await r.stop();
        await meter.shutdown();
      }
    });
  }

  it('no re-marking on the path: DSCP1 equals the received DSCP, granted by default (answered, none refused)', async (t) => {
    if (!needNative(t)) return;
    const { r, meter, lightPort } = await stampReflector({});
    try {
      const res = await stampSession(lightPort);
      assert.equal(res.session.stats.rxPackets, N);
      assert.equal(res.session.path!.outbound.replyDscpRefused, 0);
      assert.equal(res.values.in_dscp_received, EF);
      const snap = await meter.collect();
      assert.equal(snap.value(ANSWERED.legacy), N);
      assert.equal(snap.value(REFUSED.legacy), 0);
    } finally {
      await r.stop();
      await meter.shutdown();
    }
  });

  it('otel profile: the same counts under the OpenTelemetry names', async (t) => {
    if (!needNative(t)) return;
    const { r, meter, lightPort } = await stampReflector({ light_cos_allow: [AF41] }, 'otel');
    const relay = await remarkingRelay({ address: '127.0.0.1', port: lightPort }, CS1 << 2);
    try {
      const snap0 = await meter.collect();
      // At 0 before the first TLV, so a rate over the first one is seen.
      assert.equal(snap0.value(ANSWERED.otel), 0);
      assert.equal(snap0.value(REFUSED.otel), 0);
      await stampSession(relay.port);
      const snap = await meter.collect();
      assert.equal(snap.value(ANSWERED.otel), N);
      assert.equal(snap.value(REFUSED.otel), N);
      assert.equal(snap.metric(REFUSED.otel)?.descriptor.unit, '{packet}');
      assert.equal(snap.value(ANSWERED.legacy), undefined);
    } finally {
      relay.close();
      await r.stop();
      await meter.shutdown();
    }
  });

  it('a reflector without light_port exports no CoS counters', async () => {
    const meter = testMeter();
    const r = new TwampReflector(parseReflectorConfig({ id: 'tcp-only', listen: '127.0.0.1', port: 0 }), { meterProvider: meter.provider });
    await r.start();
    try {
      const snap = await meter.collect();
      assert.ok(snap.names().includes('twamp_reflector_reflected_pkt'));
      assert.equal(snap.metric(ANSWERED.legacy), undefined);
      assert.equal(snap.metric(REFUSED.legacy), undefined);
    } finally {
      await r.stop();
      await meter.shutdown();
    }
  });
});
