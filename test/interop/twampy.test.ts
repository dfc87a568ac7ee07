// TWAMP Light interop with nokia twampy (an independent Python implementation):
// our Light sender (`control: false`, both formats) → `twampy responder`, and
// `twampy sender` → our Light reflector (stateless and stateful), IPv4 and IPv6
// on loopback. twampy replies with 38 octets (no MBZ, no Sender TTL): the
// sizes must be taken as received, not assumed.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TwampSender } from '../../src/sender.js';
import { TwampReflector } from '../../src/reflector.js';
import { testMeter } from '../helpers/metrics.js';
import { freePort, hostPort } from '../helpers/peers.js';
import { requireTwampyOrSkip, startTwampyResponder, runTwampySender } from '../helpers/twampy.js';
import { parseReflectorConfig, parseSenderConfig } from '../../src/config/index.js';

const HOSTS = [{ host: '127.0.0.1', overhead: 28 }, { host: '::1', overhead: 48 }];

describe('our Light sender → twampy responder', { timeout: 120_000 }, () => {
  for (const { host, overhead } of HOSTS) {
    for (const format of ['twamp', 'stamp'] as const) {
      it(`${host}, format ${format}: 0 loss, 38-octet replies counted as such`, async (t) => {
        const tw = requireTwampyOrSkip(t);
        if (!tw) return;
        const responder = await startTwampyResponder(tw, host, await freePort(host, 'udp'));
        try {
          const sender = new TwampSender(parseSenderConfig({
            id: `vs-twampy-${format}`, reflector: host, port: responder.port, control: false, format,
            model: 'cbr', bandwidth: 200_000, size: 100, n_packets: 20, reply_timeout: 1,
          }));
          const out = await sender.runOnce();
          assert.ok(out.ok, `${out.ok ? '' : out.error.message}\n${responder.log()}`);
          const s = out.result.session;
          t.diagnostic(`tx ${s.stats.txPackets} rx ${s.stats.rxPackets} rt loss ${s.stats.rt.loss} replies ${JSON.stringify(s.replyPayload)} ` +
            `rt ${s.stats.rt.minDelayNs}..${s.stats.rt.maxDelayNs} ns, stateless=${s.reflectorStateless}`);
          assert.equal(s.stats.txPackets, 20);
          assert.equal(s.stats.rxPackets, 20, responder.log());
          assert.equal(s.stats.rt.loss, 0);
          assert.equal(s.stats.out.loss, 0);
          assert.equal(s.stats.in.loss, 0);
          assert.equal(s.stats.unexpected, 0);
          assert.equal(s.invalidReplies, 0);
          // twampy's reply: 24-octet header + our first 14 octets, no padding (its default --padding 0).
          assert.deepEqual(s.replyPayload, { min: 38, max: 38 });
          assert.equal(s.stats.rxBytes, 20 * (38 + overhead));
          assert.equal(s.stats.txBytes, 20 * 100);
          // twampy counts per address/port from 0, so with no loss its seq equals ours: seen as stateless.
          assert.equal(s.reflectorStateless, true);
          // twampy's Error Estimate 0x0001 has S = 0: never synchronised.
          assert.equal(s.clocksSynchronized, false);
          assert.ok(s.stats.rt.minDelayNs! > 0 && s.stats.rt.maxDelayNs! < 1e9);
        } finally {
          await responder.stop();
        }
      });
    }
  }
});

describe('twampy sender → our Light reflector', { timeout: 120_000 }, () => {
  for (const { host, overhead } of HOSTS) {
    for (const stateful of [false, true]) {
      it(`${host}, ${stateful ? 'stateful' : 'stateless'}: 0 loss in every direction, 44-octet replies to 14-octet requests`, async (t) => {
        const tw = requireTwampyOrSkip(t);
        if (!tw) return;
        const meter = testMeter();
        const r = new TwampReflector(parseReflectorConfig({ id: 'light', listen: host, port: 0, light_port: 0, light_stateful: stateful }), { meterProvider: meter.provider });
        await r.start();
        try {
          const local = hostPort(host, await freePort(host, 'udp'));
          const res = await runTwampySender(tw, hostPort(host, r.lightAddress!.port), local, 10, 100);
          t.diagnostic(res.stdout.trim());
          assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
          assert.deepEqual(res.loss, { outbound: 0, inbound: 0, roundtrip: 0 }, res.stdout);
          const snap = await meter.collect();
          assert.equal(snap.value('twamp_reflector_reflected_pkt'), 10);
          // twampy sends 14-octet packets: we answer with the 44-octet STAMP base (RFC 8762 §4.6).
          assert.equal(snap.value('twamp_reflector_reflected_octets'), 10 * (44 + overhead));
          assert.equal(snap.value('twamp_reflector_dropped_pkt'), 0);
          assert.equal(snap.value('twamp_reflector_light_rate_limited_pkt'), 0);
        } finally {
          await r.stop();
          await meter.shutdown();
        }
      });
    }
  }
});
