// Authenticated STAMP (RFC 8762 §4.2.2 / §4.3.2) end to end: our sender with
// `control: false`, `format: stamp`, `mode: authenticated` against our
// reflector's `light_port` with `light_key_id`; wrong keys, unauthenticated
// senders and forged replies are dropped/counted, never measured, never fatal.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import os from 'node:os';
import path from 'node:path';
import { TwampSender } from '../../src/sender.js';
import { TwampReflector } from '../../src/reflector.js';
import { parseReflectorConfig, parseSenderConfig } from '../../src/config/load.js';
import {
  buildStampAuthReflection, signStampPacket, patchReflectorTimestamp, verifyStampPacket, STAMP_AUTH_SIZE,
} from '../../src/protocol/index.js';
import { testMeter } from '../helpers/metrics.js';

const SECRET = 'stamp-shared-secret';
const BASE = { id: 'la', reflector: '127.0.0.1', control: false, format: 'stamp', mode: 'authenticated', key_id: 'stamp',
  model: 'cbr', bandwidth: 400_000, size: 160, reply_timeout: 0.5 };

describe('authenticated STAMP: our sender ↔ our Light reflector', { timeout: 60_000 }, () => {
  let dir: string;
  let keyFile: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'otel-twamp-e2e-stamp-auth-'));
    keyFile = path.join(dir, 'stamp.pfs');
    await writeFile(keyFile, `stamp\t${Buffer.from(SECRET).toString('hex')}\nother 6f74686572\n`, { mode: 0o600 });
  });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  async function authReflector(extra: Record<string, unknown> = {}) {
    const meter = testMeter();
    const r = new TwampReflector(parseReflectorConfig({ id: 'la', listen: '127.0.0.1', port: 0, light_port: 0, key_file: keyFile, light_key_id: 'stamp', ...extra }),
      { meterProvider: meter.provider });
    await r.start();
    return { r, meter, lightPort: r.lightAddress!.port };
  }

  for (const stateful of [false, true]) {
    it(`${stateful ? 'stateful' : 'stateless'}: 112-octet base + TLV, every packet back, 0 loss`, async () => {
      const { r, meter, lightPort } = await authReflector({ light_stateful: stateful });
      try {
        const s = new TwampSender(parseSenderConfig({ ...BASE, port: lightPort, secret: SECRET, n_packets: 30 }));
        const out = await s.runOnce();
        assert.ok(out.ok, out.ok ? '' : out.error.message);
        const ses = out.result.session;
        assert.equal(ses.mode, 'authenticated');
        assert.equal(ses.format, 'stamp');
        assert.equal(ses.control, false);
        assert.equal(ses.stats.txPackets, 30);
        assert.equal(ses.stats.rxPackets, 30);
        assert.equal(ses.stats.rt.loss, 0);
        assert.equal(ses.invalidReplies, 0);
        assert.equal(ses.badHmacReplies, 0);
        // A stateful reflector that lost nothing counts like ours from 0: it looks stateless too.
        assert.equal(ses.reflectorStateless, true);
        // 160-octet IP packets: 132-octet payloads (112 + Extra Padding TLV), same size back.
        assert.deepEqual(ses.replyPayload, { min: 132, max: 132 });
        assert.ok(ses.ssid! >= 1 && ses.ssid! <= 0xffff);
        const snap = await meter.collect();
        assert.equal(snap.value('twamp_reflector_reflected_pkt'), 30);
        assert.equal(snap.value('twamp_reflector_dropped_pkt') ?? 0, 0);
      } finally {
        await r.stop();
        await meter.shutdown();
      }
    });
  }

  it('wrong secret: the reflector drops every packet (counted), the sender measures total loss, no crash', async () => {
    const { r, meter, lightPort } = await authReflector();
    try {
      const s = new TwampSender(parseSenderConfig({ ...BASE, port: lightPort, secret: 'not-the-secret', n_packets: 20, reply_timeout: 0.2 }));
      const out = await s.runOnce();
      assert.ok(out.ok, out.ok ? '' : out.error.message);
      assert.equal(out.result.session.stats.txPackets, 20);
      assert.equal(out.result.session.stats.rxPackets, 0);
      const snap = await meter.collect();
      assert.equal(snap.value('twamp_reflector_dropped_pkt'), 20);
      assert.equal(snap.value('twamp_reflector_reflected_pkt') ?? 0, 0);
      // Unauthenticated STAMP and TWAMP Light senders are dropped too.
      for (const format of ['stamp', 'twamp'] as const) {
        const open = new TwampSender(parseSenderConfig({ id: 'o', reflector: '127.0.0.1', control: false, format, model: 'cbr', bandwidth: 400_000, size: 160,
          reply_timeout: 0.2, port: lightPort, n_packets: 5 }));
        const o2 = await open.runOnce();
        assert.ok(o2.ok, o2.ok ? '' : o2.error.message);
        assert.equal(o2.result.session.stats.rxPackets, 0);
      }
      const after = await meter.collect();
      assert.equal(after.value('twamp_reflector_dropped_pkt'), 30);
      // Still serving the right key.
      const good = await new TwampSender(parseSenderConfig({ ...BASE, port: lightPort, secret: SECRET, n_packets: 5 })).runOnce();
      assert.ok(good.ok && good.result.session.stats.rxPackets === 5);
    } finally {
      await r.stop();
      await meter.shutdown();
    }
  });

  it('sender: replies with a bad HMAC are counted invalid, not measured', async () => {
    // A reflector that answers in the authenticated layout but signs with another key.
    const fake: UdpSocket = createSocket('udp4');
    await new Promise<void>((res) => fake.bind(0, '127.0.0.1', () => res()));
    let seen = 0;
    fake.on('message', (m, ri) => {
      seen++;
      if (!verifyStampPacket(m, m.length, Buffer.from(SECRET))) return;
      const len = buildStampAuthReflection(m, m.length, m, { seq: m.readUInt32BE(0), receiveTimestamp: 1n << 32n, timestamp: 1n << 32n, errorEstimate: 1, senderTtl: 255 });
      patchReflectorTimestamp(m, 2n << 32n, 'authenticated');
      signStampPacket(m, Buffer.from('wrong'));
      fake.send(m, 0, len, ri.port, ri.address);
    });
    try {
      const s = new TwampSender(parseSenderConfig({ ...BASE, port: fake.address().port, secret: SECRET, n_packets: 10, reply_timeout: 0.3 }));
      const out = await s.runOnce();
      assert.ok(out.ok, out.ok ? '' : out.error.message);
      const ses = out.result.session;
      assert.equal(seen, 10);
      assert.equal(ses.stats.rxPackets, 0);
      assert.equal(ses.badHmacReplies, 10);
      assert.equal(ses.invalidReplies, 10);
      assert.ok(STAMP_AUTH_SIZE === 112);
    } finally {
      fake.close();
    }
  });

  it('config: sender STAMP authenticated accepted; other Light modes refused; reflector light_key_id checks', () => {
    const B = { ...BASE, n_packets: 1 };
    const cfg = parseSenderConfig({ ...B, secret: 's' });
    assert.deepEqual(cfg.modes, ['authenticated']);
    assert.equal(cfg.format, 'stamp');
    assert.equal(cfg.control, false);
    assert.throws(() => parseSenderConfig({ ...B, mode: 'encrypted', secret: 's' }), /one mode, "open" or "authenticated"/);
    assert.throws(() => parseSenderConfig({ ...B, mode: ['authenticated', 'open'], secret: 's' }), /one mode/);
    assert.throws(() => parseSenderConfig({ ...B }), /secret or secret_file is required/);
    assert.throws(() => parseSenderConfig({ ...B, format: 'twamp', secret: 's' }), /unauthenticated only/);
    const rc = parseReflectorConfig({ id: 'r', light_port: 862, key_file: keyFile, light_key_id: 'stamp' });
    assert.equal(rc.lightKeyId, 'stamp');
    assert.throws(() => parseReflectorConfig({ id: 'r', light_port: 862, light_key_id: 'stamp' }), /light_key_id needs key_file/);
    assert.throws(() => parseReflectorConfig({ id: 'r', key_file: keyFile, light_key_id: 'stamp' }), /only used with light_port/);
    assert.throws(() => parseReflectorConfig({ id: 'r', light_port: 862, key_file: keyFile, light_key_id: 'nope' }), /"nope" is not in key_file/);
  });
});
