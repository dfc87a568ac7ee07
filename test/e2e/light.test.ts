// TWAMP Light / STAMP end to end: our sender with `control: false` against our
// reflector's `light_port`, both packet formats, stateless (round-trip loss
// only, detected from the replies) and stateful (forward/backward split, here
// through a lossy UDP relay), the per-source rate limit, Light-only reflectors
// (`control: false`: no TCP listener) and the config keys.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect } from 'node:net';
import { TwampSender } from '../../src/sender.js';
import { TwampReflector } from '../../src/reflector.js';
import { LightReflector } from '../../src/session/lightReflector.js';
import { systemClock } from '../../src/session/clock.js';
import { parseReflectorConfig, parseSenderConfig } from '../../src/config/load.js';
import { writeStampSenderPacket, decodeReflectorPacket } from '../../src/protocol/index.js';
import { testMeter } from '../helpers/metrics.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function bound(host = '127.0.0.1'): Promise<UdpSocket> {
  const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((r) => s.bind(0, host, () => r()));
  return s;
}

/**
 * A UDP relay between one sender and a reflector that drops chosen packets:
 * `dropForward(seq)` / `dropBackward(senderSeq)` decide per packet.
 */
async function lossyRelay(reflectorPort: number, dropForward: (seq: number) => boolean, dropBackward: (seq: number) => boolean) {
  const front = await bound();
  const back = await bound();
  let sender: { address: string; port: number } | undefined;
  front.on('message', (m, r) => {
    sender = { address: r.address, port: r.port };
    if (m.length >= 4 && dropForward(m.readUInt32BE(0))) return;
    back.send(m, reflectorPort, '127.0.0.1');
  });
  back.on('message', (m) => {
    if (!sender) return;
    if (m.length >= 28 && dropBackward(m.readUInt32BE(24))) return;
    front.send(m, sender.port, sender.address);
  });
  return { port: front.address().port, close: () => { front.close(); back.close(); } };
}

async function lightReflector(extra: Record<string, unknown> = {}) {
  const meter = testMeter();
  const r = new TwampReflector(parseReflectorConfig({ id: 'light', listen: '127.0.0.1', port: 0, light_port: 0, ...extra }), { meterProvider: meter.provider });
  await r.start();
  return { r, meter, lightPort: r.lightAddress!.port };
}

const BASE = { id: 'ls', reflector: '127.0.0.1', control: false, model: 'cbr', bandwidth: 400_000, size: 100, reply_timeout: 0.5 };

describe('TWAMP Light / STAMP: our sender ↔ our reflector', { timeout: 60_000 }, () => {
  for (const format of ['twamp', 'stamp'] as const) {
    it(`${format}, stateless reflector: every packet back, reflector detected as stateless, sizes as observed`, async () => {
      const { r, meter, lightPort } = await lightReflector();
      try {
        const s = new TwampSender(parseSenderConfig({ ...BASE, port: lightPort, format, n_packets: 30 }));
        const out = await s.runOnce();
        assert.ok(out.ok, out.ok ? '' : out.error.message);
        const ses = out.result.session;
        assert.equal(ses.control, false);
        assert.equal(ses.format, format);
        assert.equal(ses.reflectorStateless, true);
        assert.equal(ses.stats.txPackets, 30);
        assert.equal(ses.stats.rxPackets, 30);
        assert.equal(ses.stats.rt.loss, 0);
        assert.equal(ses.stats.unexpected, 0);
        assert.equal(ses.invalidReplies, 0);
        // cbr 100-octet IP packets: 72-octet payloads both ways (≥ 44: same size back).
        assert.deepEqual(ses.replyPayload, { min: 72, max: 72 });
        assert.equal(ses.stats.rxBytes, 30 * 100);
        if (format === 'stamp') assert.ok(ses.ssid! >= 1 && ses.ssid! <= 0xffff);
        else assert.equal(ses.ssid, undefined);
        assert.equal(ses.sid.length, 0);
        assert.ok(ses.stats.rt.minDelayNs! > 0 && ses.stats.rt.maxDelayNs! < 1e9);
        const snap = await meter.collect();
        assert.equal(snap.value('twamp_reflector_reflected_pkt'), 30);
        assert.equal(snap.value('twamp_reflector_reflected_octets'), 30 * 100);
        assert.equal(snap.value('twamp_reflector_light_rate_limited_pkt'), 0);
      } finally {
        await r.stop();
        await meter.shutdown();
      }
    });
  }

  it('small TWAMP packets (14 octets) get 44-octet STAMP-base replies, counted as received', async () => {
    const { r, meter, lightPort } = await lightReflector();
    try {
      // size 42 = 14-octet payload over IPv4.
      const s = new TwampSender(parseSenderConfig({ ...BASE, port: lightPort, format: 'twamp', size: 42, bandwidth: 100_000, n_packets: 10 }));
      const out = await s.runOnce();
      assert.ok(out.ok, out.ok ? '' : out.error.message);
      const ses = out.result.session;
      assert.equal(ses.stats.rxPackets, 10);
      assert.equal(ses.stats.txBytes, 10 * 42);
      assert.deepEqual(ses.replyPayload, { min: 44, max: 44 });
      assert.equal(ses.stats.rxBytes, 10 * (44 + 28));
    } finally {
      await r.stop();
      await meter.shutdown();
    }
  });

  for (const stateful of [false, true]) {
    it(`lossy path, ${stateful ? 'stateful: forward and backward loss split' : 'stateless: round-trip loss only'}`, async () => {
      const { r, meter, lightPort } = await lightReflector({ light_stateful: stateful });
      const relay = await lossyRelay(lightPort, (seq) => seq === 3 || seq === 7, (seq) => seq === 12);
      try {
        const s = new TwampSender(parseSenderConfig({ ...BASE, port: relay.port, format: 'stamp', n_packets: 20 }));
        const out = await s.runOnce();
        assert.ok(out.ok, out.ok ? '' : out.error.message);
        const ses = out.result.session;
        assert.equal(ses.stats.rt.loss, 3);
        assert.equal(ses.stats.rxPackets, 17);
        assert.equal(ses.reflectorStateless, !stateful);
        if (stateful) {
          assert.equal(ses.stats.out.loss, 2);
          assert.equal(ses.stats.in.loss, 1);
        } else {
          assert.equal(ses.stats.out.loss, 0);
          assert.equal(ses.stats.in.loss, 0);
        }
        assert.equal(out.result.values.rt_loss, 3);
      } finally {
        relay.close();
        await r.stop();
        await meter.shutdown();
      }
    });
  }

  it('stateful: separate counters per sender (4-tuple + SSID), each from 0', async () => {
    const { r, meter, lightPort } = await lightReflector({ light_stateful: true });
    const a = await bound();
    const b = await bound();
    try {
      const replies: { who: string; seq: number; senderSeq: number; ssid: number }[] = [];
      a.on('message', (m) => { const d = decodeReflectorPacket(m); replies.push({ who: 'a', seq: d.seq, senderSeq: d.senderSeq, ssid: d.ssid }); });
      b.on('message', (m) => { const d = decodeReflectorPacket(m); replies.push({ who: 'b', seq: d.seq, senderSeq: d.senderSeq, ssid: d.ssid }); });
      const pkt = (seq: number, ssid: number) => {
        const buf = Buffer.alloc(44);
        writeStampSenderPacket(buf, { seq, timestamp: 0n, errorEstimate: 1, ssid });
        return buf;
      };
      for (const seq of [10, 11, 12]) a.send(pkt(seq, 1), lightPort, '127.0.0.1');
      for (const seq of [100, 101]) a.send(pkt(seq, 2), lightPort, '127.0.0.1'); // same 4-tuple, another SSID
      for (const seq of [5, 9]) b.send(pkt(seq, 1), lightPort, '127.0.0.1');
      await sleep(200);
      const of = (who: string, ssid: number) => replies.filter((x) => x.who === who && x.ssid === ssid).map((x) => [x.senderSeq, x.seq]);
      assert.deepEqual(of('a', 1), [[10, 0], [11, 1], [12, 2]]);
      assert.deepEqual(of('a', 2), [[100, 0], [101, 1]]);
      assert.deepEqual(of('b', 1), [[5, 0], [9, 1]]);
    } finally {
      a.close();
      b.close();
      await r.stop();
      await meter.shutdown();
    }
  });

  it('per-source rate limit: excess dropped and counted, never answered', async () => {
    const { r, meter, lightPort } = await lightReflector({ light_rate_limit: 10 });
    const s = await bound();
    try {
      let got = 0;
      s.on('message', () => { got++; });
      const buf = Buffer.alloc(44);
      for (let i = 0; i < 50; i++) {
        writeStampSenderPacket(buf, { seq: i, timestamp: 0n, errorEstimate: 1, ssid: 1 });
        s.send(Buffer.from(buf), lightPort, '127.0.0.1');
      }
      await sleep(300);
      const snap = await meter.collect();
      const limited = snap.value('twamp_reflector_light_rate_limited_pkt')!;
      const reflected = snap.value('twamp_reflector_reflected_pkt')!;
      assert.ok(reflected >= 10 && reflected <= 15, `reflected ${reflected}`); // burst 10 + refill at 10/s
      assert.equal(reflected + limited, 50);
      assert.equal(got, reflected);
      assert.equal(snap.value('twamp_reflector_dropped_pkt'), limited, 'rate-limited packets are dropped packets too');
    } finally {
      s.close();
      await r.stop();
      await meter.shutdown();
    }
  });

  it('token bucket refills at the configured rate (fake clock)', async () => {
    let now = 0;
    const counters = { reflectedPackets: 0, reflectedOctets: 0, droppedPackets: 0 };
    const lr = new LightReflector({ host: '127.0.0.1', port: 0, clock: systemClock(), counters, ratePps: 5, nowMs: () => now });
    const { port } = await lr.listen();
    const s = await bound();
    try {
      const burst = async (n: number) => {
        for (let i = 0; i < n; i++) s.send(Buffer.alloc(14), port, '127.0.0.1');
        await sleep(100);
      };
      await burst(8);
      assert.equal(counters.reflectedPackets, 5);
      assert.equal(lr.rateLimited, 3);
      now += 400; // 2 tokens back
      await burst(4);
      assert.equal(counters.reflectedPackets, 7);
      assert.equal(lr.rateLimited, 5);
      // Too short to be a test packet: dropped, not rate-limited.
      s.send(Buffer.alloc(13), port, '127.0.0.1');
      await sleep(100);
      assert.equal(counters.droppedPackets, 6);
    } finally {
      s.close();
      await lr.close();
    }
  });

  it('control: false runs Light only: no TWAMP-Control listener', async () => {
    const meter = testMeter();
    const r = new TwampReflector(parseReflectorConfig({ id: 'lonly', listen: '127.0.0.1', port: 0, control: false, light_port: 0 }), { meterProvider: meter.provider });
    const addr = await r.start();
    try {
      assert.equal(addr.port, r.lightAddress!.port, 'the Light address stands for the reflector');
      // Nothing listens on TCP at that port number.
      const refused = await new Promise<boolean>((res) => {
        const c = connect({ host: '127.0.0.1', port: addr.port });
        c.once('connect', () => { c.destroy(); res(false); });
        c.once('error', () => res(true));
      });
      assert.ok(refused);
      const s = new TwampSender(parseSenderConfig({ ...BASE, port: addr.port, n_packets: 5 }));
      const out = await s.runOnce();
      assert.ok(out.ok && out.result.session.stats.rxPackets === 5);
      // A full-TWAMP sender fails against it (no control listener).
      const full = new TwampSender(parseSenderConfig({ id: 'full', reflector: '127.0.0.1', port: addr.port, model: 'g711', n_packets: 2, control_timeout: 1 }));
      const fo = await full.runOnce();
      assert.equal(fo.ok, false);
    } finally {
      await r.stop();
      await meter.shutdown();
    }
  });

  it('IPv6: sender and reflector on ::1', async () => {
    const meter = testMeter();
    const r = new TwampReflector(parseReflectorConfig({ id: 'l6', listen: '::1', port: 0, light_port: 0, light_stateful: true }), { meterProvider: meter.provider });
    await r.start();
    try {
      const s = new TwampSender(parseSenderConfig({ ...BASE, reflector: '::1', port: r.lightAddress!.port, format: 'stamp', n_packets: 10 }));
      const out = await s.runOnce();
      assert.ok(out.ok, out.ok ? '' : out.error.message);
      assert.equal(out.result.session.ipVersion, 6);
      assert.equal(out.result.session.stats.rxPackets, 10);
      assert.equal(out.result.session.stats.rxBytes, 10 * 100);
    } finally {
      await r.stop();
      await meter.shutdown();
    }
  });
});

describe('Light config keys', () => {
  it('sender: control, format; their defaults filled at load', () => {
    const plain = parseSenderConfig({ id: 'a', reflector: 'r', model: 'g711', n_packets: 1 });
    assert.equal(plain.control, true);
    assert.equal(plain.format, 'twamp');
    const light = parseSenderConfig({ id: 'a', reflector: 'r', model: 'g711', n_packets: 1, control: false, format: 'stamp' });
    assert.equal(light.control, false);
    assert.equal(light.format, 'stamp');
    assert.equal(light.port, 862);
  });

  it('sender: stamp needs control: false; Light is open mode only; reflector_port is not used', () => {
    assert.throws(() => parseSenderConfig({ id: 'a', reflector: 'r', model: 'g711', n_packets: 1, format: 'stamp' }), /format "stamp" needs control: false/);
    assert.throws(() => parseSenderConfig({ id: 'a', reflector: 'r', model: 'g711', n_packets: 1, control: false, mode: 'authenticated', key_id: 'k', secret: 's' }),
      /unauthenticated only/);
    assert.throws(() => parseSenderConfig({ id: 'a', reflector: 'r', model: 'g711', n_packets: 1, control: false, reflector_port: 5000 }), /reflector_port/);
    assert.throws(() => parseSenderConfig({ id: 'a', reflector: 'r', model: 'g711', n_packets: 1, format: 'owamp' }), /format/);
  });

  it('reflector: light_port, control, light_stateful, light_rate_limit', () => {
    const plain = parseReflectorConfig({ id: 'r' });
    assert.equal(plain.lightPort, undefined);
    assert.equal(plain.control, true);
    const light = parseReflectorConfig({ id: 'r', light_port: 862, control: false, light_stateful: true, light_rate_limit: 50 });
    assert.equal(light.lightPort, 862);
    assert.equal(light.control, false);
    assert.equal(light.lightStateful, true);
    assert.equal(light.lightRateLimit, 50);
    const defaults = parseReflectorConfig({ id: 'r', light_port: 20001 });
    assert.equal(defaults.lightStateful, false);
    assert.equal(defaults.lightRateLimit, 1000);
    assert.throws(() => parseReflectorConfig({ id: 'r', control: false }), /control: false needs light_port/);
    assert.throws(() => parseReflectorConfig({ id: 'r', light_stateful: true }), /only used with light_port/);
    assert.throws(() => parseReflectorConfig({ id: 'r', light_port: 1, light_rate_limit: 0 }), /light_rate_limit/);
    assert.throws(() => parseReflectorConfig({ id: 'r', light_prot: 1 }), /did you mean "light_port"/);
  });
});
