// Interoperability with an implementation others wrote: our TwampSender
// against perfSONAR twampd, and perfSONAR twping against our TwampReflector,
// in open (unauthenticated) mode, IPv4 and IPv6 on loopback.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TwampSender } from '../../src/sender.js';
import { TwampReflector } from '../../src/reflector.js';
import { testMeter } from '../helpers/metrics.js';
import {
  requirePeersOrSkip, startTwampd, runTwping, freePort, hostPort, TEST_USER, TEST_PASSPHRASE, type TwpingResult,
} from '../helpers/peers.js';
import { parseReflectorConfig, parseSenderConfig } from '../../src/config/index.js';

function explain(r: TwpingResult): string {
  return `twping exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

describe('our sender → perfSONAR twampd (open mode)', { timeout: 120_000, concurrency: true }, () => {
  const models = [
    { model: 'g711' },
    { model: 'g729' },
    { model: 'cbr', bandwidth: 1_000_000, size: 128 },
    { model: 'imix', bandwidth: 2_000_000 },
  ];
  for (const m of models) {
    it(`${m.model}: every packet reflected, delays and loss sane`, async (t) => {
      const p = requirePeersOrSkip(t);
      if (!p) return;
      const d = await startTwampd(p, { authmode: 'O' });
      try {
        const sender = new TwampSender(parseSenderConfig({ id: `vs-twampd-${m.model}`, reflector: d.host, port: d.port, n_packets: 30, ...m }));
        const out = await sender.runOnce();
        assert.ok(out.ok, `${out.ok ? '' : out.error.message}\n${d.log()}`);
        const s = out.result.session.stats;
        assert.equal(s.txPackets, 30);
        assert.equal(s.rxPackets, 30, d.log());
        assert.equal(s.rt.loss, 0);
        assert.equal(s.out.loss, 0);
        assert.equal(s.in.loss, 0);
        assert.equal(s.duplicates, 0);
        assert.equal(s.unexpected, 0);
        assert.ok(s.rt.minDelayNs! > 0 && s.rt.maxDelayNs! < 1e9, `rt ${s.rt.minDelayNs}..${s.rt.maxDelayNs}`);
        // twampd's residence time (T3 − T2) is real and excluded from the round trip.
        assert.ok(s.residence.minNs! >= 0);
        assert.ok(out.result.session.sid.readUInt32BE(0) === 0x7f000001, 'twampd assigned the SID');
        if (m.model === 'g711' || m.model === 'g729') {
          assert.ok(out.result.values.in_mos! > 3.5 && out.result.values.out_mos! > 3.5);
        }
        if (m.model === 'imix') {
          // twampd reads 14 + Padding Length octets: we declare the smallest packet's padding.
          assert.equal(out.result.session.paddingLength, 70 - 28 - 14);
        }
      } finally {
        await d.stop();
      }
    });
  }

  it('explicit reflector_port (as Cisco IOS needs) is requested and used', async (t) => {
    const p = requirePeersOrSkip(t);
    if (!p) return;
    const d = await startTwampd(p, { authmode: 'O' });
    try {
      const want = await freePort('127.0.0.1', 'udp');
      const sender = new TwampSender(parseSenderConfig({
        id: 'explicit-port', reflector: d.host, port: d.port, reflector_port: want, n_packets: 10, model: 'g711',
      }));
      const out = await sender.runOnce();
      assert.ok(out.ok, out.ok ? '' : out.error.message);
      assert.equal(out.result.session.reflectorTestPort, want);
      assert.equal(out.result.session.stats.rxPackets, 10);
    } finally {
      await d.stop();
    }
  });

  it('IPv6: sender to twampd on ::1', async (t) => {
    const p = requirePeersOrSkip(t);
    if (!p) return;
    const d = await startTwampd(p, { authmode: 'O', host: '::1' });
    try {
      const sender = new TwampSender(parseSenderConfig({ id: 'v6', reflector: '::1', port: d.port, n_packets: 20, model: 'g729' }));
      const out = await sender.runOnce();
      assert.ok(out.ok, `${out.ok ? '' : out.error.message}\n${d.log()}`);
      assert.equal(out.result.session.ipVersion, 6);
      assert.equal(out.result.session.stats.rxPackets, 20);
      // g729 over IPv6: same RTP payload, 20 octets more header.
      assert.equal(out.result.session.stats.txBytes, 20 * 80);
    } finally {
      await d.stop();
    }
  });

  it('twampd offering only authenticated mode, sender allowing only open: refused, naming both sides\' modes', async (t) => {
    const p = requirePeersOrSkip(t);
    if (!p) return;
    const d = await startTwampd(p, { authmode: 'A' });
    try {
      const sender = new TwampSender(parseSenderConfig({ id: 'auth-only', reflector: d.host, port: d.port, n_packets: 5, model: 'g711' }));
      const out = await sender.runOnce();
      assert.equal(out.ok, false);
      assert.equal(out.ok ? '' : out.reason, 'refused');
      assert.match(out.ok ? '' : out.error.message, /no common security mode: we allow open; the server offers authenticated \(Modes 0x2\)/);
      // With the key configured, the same server is fine (more in security.test.ts).
      const auth = new TwampSender(parseSenderConfig({
        id: 'auth-ok', reflector: d.host, port: d.port, n_packets: 5, model: 'g711',
        mode: ['open', 'authenticated'], key_id: TEST_USER, secret: TEST_PASSPHRASE,
      }));
      const ok = await auth.runOnce();
      assert.ok(ok.ok, ok.ok ? '' : ok.error.message);
      assert.equal(ok.result.session.mode, 'authenticated');
      assert.equal(ok.result.session.stats.rxPackets, 5);
    } finally {
      await d.stop();
    }
  });
});

describe('perfSONAR twping → our reflector (open mode)', { timeout: 120_000 }, () => {
  for (const host of ['127.0.0.1', '::1']) {
    it(`${host}: padded and minimal packets, all reflected, counters agree`, async (t) => {
      const p = requirePeersOrSkip(t);
      if (!p) return;
      const meter = testMeter();
      const reflector = new TwampReflector(parseReflectorConfig({ id: 'ours', listen: host, port: 0 }), { meterProvider: meter.provider });
      const { port } = await reflector.start();
      try {
        const target = hostPort(host, port);
        // Default padding (41-octet packets both ways), fixed 10 ms schedule, raw records.
        const raw = await runTwping(p, target, ['-c', '50', '-i', '0.01f', '-R']);
        assert.equal(raw.code, 0, explain(raw));
        const recs = raw.raw ?? [];
        assert.equal(recs.length, 50, explain(raw));
        assert.ok(recs.every((r) => !r.lost), explain(raw));
        // Our own reflector sequence counter, from 0, independent of the sender's.
        assert.deepEqual(recs.map((r) => r.reflectorSeq).sort((a, b) => a - b), [...Array(50).keys()]);
        // Sent with TTL/Hop Limit 255, and we report Sender TTL 255 (Node cannot read the received TTL).
        assert.ok(recs.every((r) => r.reflectedTtl === 255 && r.senderTtl === 255), explain(raw));
        // T2 ≤ T3: residence is non-negative.
        assert.ok(recs.every((r) => r.reflectorSendTime >= r.reflectorRecvTime));
        // Minimal 14-octet packets (-s 0): replies are 41 octets.
        const minimal = await runTwping(p, target, ['-c', '20', '-i', '0.01f', '-s', '0']);
        assert.equal(minimal.code, 0, explain(minimal));
        assert.equal(minimal.sent, 20, explain(minimal));
        assert.equal(minimal.lost, 0, explain(minimal));
        assert.equal(minimal.duplicates, 0, explain(minimal));
        const snap = await meter.collect();
        assert.equal(snap.value('twamp_reflector_session_attempts'), 2);
        assert.equal(snap.value('twamp_reflector_session_started'), 2);
        assert.equal(snap.value('twamp_reflector_reflected_pkt'), 70);
        const overhead = host === '::1' ? 48 : 28;
        assert.equal(snap.value('twamp_reflector_reflected_octets'), 70 * (41 + overhead));
      } finally {
        await reflector.stop();
        await meter.shutdown();
      }
    });
  }

  it('several twping clients at once are served concurrently', async (t) => {
    const p = requirePeersOrSkip(t);
    if (!p) return;
    const reflector = new TwampReflector(parseReflectorConfig({ id: 'busy', listen: '127.0.0.1', port: 0 }));
    const { port } = await reflector.start();
    try {
      const runs = await Promise.all([0, 1, 2, 3].map(() =>
        runTwping(p, hostPort('127.0.0.1', port), ['-c', '30', '-i', '0.01f'])));
      for (const r of runs) {
        assert.equal(r.code, 0, explain(r));
        assert.equal(r.sent, 30, explain(r));
        assert.equal(r.lost, 0, explain(r));
      }
      assert.equal(reflector.counters.reflectedPackets, 120);
    } finally {
      await reflector.stop();
    }
  });

  it('twping asking for authenticated mode from an open-only reflector is refused cleanly and counted', async (t) => {
    const p = requirePeersOrSkip(t);
    if (!p) return;
    const reflector = new TwampReflector(parseReflectorConfig({ id: 'open-only', listen: '127.0.0.1', port: 0 }));
    const { port } = await reflector.start();
    try {
      const d = await startTwampd(p, { authmode: 'O' }); // only for its pass-phrase file
      try {
        const r = await runTwping(p, hostPort('127.0.0.1', port), ['-A', 'A', '-u', 'testuser', '-k', d.pfsFile, '-c', '5']);
        assert.notEqual(r.code, 0, explain(r));
        assert.match(r.stderr + r.stdout, /mode|Mode|refused|denied/i, explain(r));
      } finally {
        await d.stop();
      }
      // twping finds no common mode in our greeting (open only) and hangs up without a Set-Up-Response.
      assert.equal(reflector.counters.refused.get('abandoned'), 1, [...reflector.counters.refused].join());
      // The reflector keeps serving open-mode clients afterwards.
      const ok = await runTwping(p, hostPort('127.0.0.1', port), ['-c', '5', '-i', '0.01f']);
      assert.equal(ok.lost, 0, explain(ok));
    } finally {
      await reflector.stop();
    }
  });
});
