/**
 * The reflector on the test-socket datapath ("wire truth"), on loopback only:
 * T2 is the kernel's receive time (not when JavaScript got to the packet),
 * Sender TTL is the received TTL, replies leave with TTL 255 (IPv4 peers of
 * a dual-stack Light socket too) and, on the Light port, with the DSCP of
 * their request; TWAMP-Light requests get no SSID echoed (stamp.ts
 * LightFormat); the reflector says where its timestamps come from.
 *
 * Native tests skip (loudly) when the helper is not built, except under CI.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { openTestSocket, type RxDatagram, type TestSocket } from '../../src/session/datapath.js';
import { systemClock } from '../../src/session/clock.js';
import { LightReflector } from '../../src/session/lightReflector.js';
import { newControlServerCounters } from '../../src/session/controlServer.js';
import { ControlClient } from '../../src/session/controlClient.js';
import { withScopeOf } from '../../src/util/net.js';
import { TwampReflector } from '../../src/reflector.js';
import {
  buildLightReflection, lightRequestKey, isStampRequest, writeStampSenderPacket, writeSenderPacket,
  decodeReflectorPacket, ntpIntervalFromNs, ntpFromUnixNs, readTimestamp, STAMP_BASE_SIZE,
} from '../../src/protocol/index.js';
import { needNative } from '../helpers/native.js';
import { parseReflectorConfig } from '../../src/config/index.js';

/** A test client on the datapath: its received datagrams (with TTL / TOS) queue up for next(). */
async function client(o: { family: 4 | 6; ttl?: number; tos?: number }): Promise<{
  sock: TestSocket; next: (ms?: number) => Promise<RxDatagram>;
}> {
  const queue: RxDatagram[] = [];
  let wake: (() => void) | undefined;
  const sock = await openTestSocket({
    family: o.family, address: o.family === 6 ? '::1' : '127.0.0.1', native: true, txTimestamps: false,
    ...(o.ttl !== undefined ? { ttl: o.ttl } : {}), ...(o.tos !== undefined ? { tos: o.tos } : {}),
    onPackets: (b) => { queue.push(...b); wake?.(); },
  });
  const next = async (ms = 2000): Promise<RxDatagram> => {
    const end = Date.now() + ms;
    while (queue.length === 0) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no reply within ${ms} ms`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        wake = () => { clearTimeout(t); r(); };
      });
      wake = undefined;
    }
    return queue.shift()!;
  };
  return { sock, next };
}

/** A TWAMP-Light request of `length` octets with random padding from octet 14 on (octets 14–43 non-zero). */
function twampLightRequest(seq: number, length: number): Buffer {
  const b = randomFillSync(Buffer.alloc(length));
  for (let i = 14; i < length; i++) if (b[i] === 0) b[i] = 0x5a;
  writeSenderPacket(b, { seq, timestamp: 0n, errorEstimate: 1 });
  return b;
}

function stampRequest(seq: number, ssid: number): Buffer {
  const b = Buffer.alloc(STAMP_BASE_SIZE);
  writeStampSenderPacket(b, { seq, timestamp: 0n, errorEstimate: 1, ssid });
  return b;
}

const FIELDS = { seq: 0, receiveTimestamp: 1n, timestamp: 2n, errorEstimate: 1, senderTtl: 255 };

describe('Light format: STAMP SSID vs TWAMP-Light padding (stamp.ts)', () => {
  it('auto: a TWAMP-Light request with padding at 14–15 gets MBZ there, a STAMP one its SSID', () => {
    const tl = twampLightRequest(1, 60);
    assert.equal(isStampRequest(tl, tl.length), false);
    const out = Buffer.alloc(60);
    buildLightReflection(tl, tl.length, out, FIELDS);
    assert.equal(out.readUInt16BE(14), 0, 'octets 14–15 of a TWAMP-Light reply are MBZ');
    assert.equal(lightRequestKey(tl, tl.length, 'auto')!.ssid, 0);

    const st = stampRequest(2, 0xbeef);
    assert.equal(isStampRequest(st, st.length), true);
    const out2 = Buffer.alloc(44);
    buildLightReflection(st, st.length, out2, FIELDS);
    assert.equal(out2.readUInt16BE(14), 0xbeef, 'STAMP reply echoes the SSID (RFC 8972 §3)');
    assert.equal(lightRequestKey(st, st.length, 'auto')!.ssid, 0xbeef);
    // Shorter than the STAMP base: never STAMP.
    assert.equal(isStampRequest(st, 30), false);
  });

  it("'twamp' never copies, 'stamp' always copies from a ≥ 44-octet request", () => {
    const st = stampRequest(2, 0x1234);
    const out = Buffer.alloc(44);
    buildLightReflection(st, st.length, out, FIELDS, 'twamp');
    assert.equal(out.readUInt16BE(14), 0);
    const tl = twampLightRequest(1, 44);
    buildLightReflection(tl, tl.length, out, FIELDS, 'stamp');
    assert.equal(out.readUInt16BE(14), tl.readUInt16BE(14));
  });
});

describe('IPv6 scope of link-local session addresses (util/net.ts withScopeOf)', () => {
  it('borrows the control connection scope only for unscoped link-local addresses', () => {
    assert.equal(withScopeOf('fe80::1', 'fe80::2%eth0'), 'fe80::1%eth0');
    assert.equal(withScopeOf('FE80::1', 'fe80::2%3'), 'FE80::1%3');
    assert.equal(withScopeOf('fe80::1%eth1', 'fe80::2%eth0'), 'fe80::1%eth1');
    assert.equal(withScopeOf('2001:db8::1', 'fe80::2%eth0'), '2001:db8::1');
    assert.equal(withScopeOf('127.0.0.1', 'fe80::2%eth0'), '127.0.0.1');
    assert.equal(withScopeOf('fe80::1', '::1'), 'fe80::1');
  });
});

describe('TWAMP test session on the datapath', { timeout: 60_000 }, () => {
  async function session(t: TestContext, ttl: number) {
    const r = new TwampReflector(parseReflectorConfig({ id: 'rdp', type: 'twamp_reflector', listen: '127.0.0.1', port: 0 }));
    const { port } = await r.start();
    t.after(() => r.stop());
    const cl = await client({ family: 4, ttl });
    t.after(() => cl.sock.close());
    const c = await ControlClient.connect({ host: '127.0.0.1', port, timeoutMs: 2000 });
    t.after(() => c.close());
    const acc = await c.requestSession({
      ipvn: 4, senderPort: cl.sock.local.port, receiverPort: 0, senderAddress: '127.0.0.1', receiverAddress: '127.0.0.1',
      paddingLength: 27, startTime: 0n, timeout: ntpIntervalFromNs(200_000_000n), typeP: 0,
    });
    await c.startSessions();
    return { r, cl, port: acc.port };
  }

  it('Sender TTL is the received TTL (200), replies leave with TTL 255, timestampSource is kernel', async (t) => {
    if (!needNative(t)) return;
    const { r, cl, port } = await session(t, 200);
    assert.equal(r.timestampSource, 'kernel');
    const req = Buffer.alloc(41);
    writeSenderPacket(req, { seq: 3, timestamp: 0n, errorEstimate: 1 });
    cl.sock.send(req, '127.0.0.1', port, { stampOffset: 4 });
    const d = await cl.next();
    const p = decodeReflectorPacket(d.data);
    assert.equal(p.senderSeq, 3);
    assert.equal(p.senderTtl, 200, 'RFC 5357 §4.2.1: Sender TTL = TTL of the received request');
    assert.equal(d.ttl, 255, 'RFC 5357 §4.2: the reply leaves with TTL 255');
    assert.equal(r.timestampSource, 'kernel');
  });

  it('T2 is the kernel receive time: a blocked event loop delays T3, not T2', async (t) => {
    if (!needNative(t)) return;
    const { cl, port } = await session(t, 255);
    const req = Buffer.alloc(41);
    writeSenderPacket(req, { seq: 0, timestamp: 0n, errorEstimate: 1 });
    const t1 = cl.sock.send(req, '127.0.0.1', port, { stampOffset: 4 }).stampedRealtimeNs;
    // Keep the event loop (the reflector's JS) busy for 80 ms after the request left.
    const until = process.hrtime.bigint() + 80_000_000n;
    while (process.hrtime.bigint() < until) { /* busy */ }
    const d = await cl.next();
    const p = decodeReflectorPacket(d.data);
    const ms = (a: bigint, b: bigint): number => Number(a - b) / 2 ** 32 * 1000;
    const t2MinusT1 = ms(p.receiveTimestamp, ntpFromUnixNs(t1));
    const t3MinusT2 = ms(p.timestamp, p.receiveTimestamp);
    const t4MinusT3 = ms(ntpFromUnixNs(d.rxRealtimeNs), p.timestamp);
    console.log(`T2−T1 ${t2MinusT1.toFixed(3)} ms, T3−T2 ${t3MinusT2.toFixed(3)} ms, T4−T3 ${t4MinusT3.toFixed(3)} ms`);
    assert.ok(t2MinusT1 >= 0 && t2MinusT1 < 20, `T2 − T1 = ${t2MinusT1} ms: T2 is when the kernel got the request`);
    assert.ok(t3MinusT2 >= 70, `T3 − T2 = ${t3MinusT2} ms: the reply waited for the event loop`);
    assert.ok(t4MinusT3 >= 0 && t4MinusT3 < 20, `T4 − T3 = ${t4MinusT3} ms: T3 is stamped right before sendmsg`);
  });
});

describe('Light reflector on the datapath', { timeout: 60_000 }, () => {
  async function light(t: TestContext, o: { host: string; native?: boolean; stateful?: boolean }) {
    const counters = newControlServerCounters();
    const lr = new LightReflector({ host: o.host, port: 0, clock: systemClock(), counters,
      ...(o.native !== undefined ? { native: o.native } : {}), ...(o.stateful ? { stateful: true } : {}) });
    const a = await lr.listen();
    t.after(() => lr.close());
    return { lr, port: a.port, counters };
  }

  it('a dual-stack [::] socket answers an IPv4 sender with TTL 255, its received TTL and its DSCP', async (t) => {
    if (!needNative(t)) return;
    const { lr, port } = await light(t, { host: '::' });
    assert.equal(lr.timestampSource, 'kernel');
    const cl = await client({ family: 4, ttl: 200, tos: 0xb8 }); // EF
    t.after(() => cl.sock.close());
    cl.sock.send(stampRequest(1, 7), '127.0.0.1', port);
    const d = await cl.next();
    assert.equal(d.ttl, 255, 'IPv4 reply from a dual-stack IPv6 socket leaves with TTL 255');
    assert.equal(d.tos & 0xfc, 0xb8, 'reply DSCP = request DSCP (EF)');
    const p = decodeReflectorPacket(d.data);
    assert.equal(p.senderTtl, 200, 'Sender TTL (RFC 8762 §4.3.1) = received TTL');
    assert.equal(p.ssid, 7);
    assert.ok(p.timestamp >= p.receiveTimestamp, 'T3 ≥ T2');
    // Another DSCP, then back to 0: each reply follows its request.
    cl.sock.setTos(0x28); // AF11
    cl.sock.send(stampRequest(2, 7), '127.0.0.1', port);
    assert.equal((await cl.next()).tos & 0xfc, 0x28);
    cl.sock.setTos(0);
    cl.sock.send(stampRequest(3, 7), '127.0.0.1', port);
    assert.equal((await cl.next()).tos & 0xfc, 0);
  });

  it('an IPv6 sender gets hop limit 255, its hop limit as Sender TTL and its traffic class', async (t) => {
    if (!needNative(t)) return;
    const { port } = await light(t, { host: '::' });
    const cl = await client({ family: 6, ttl: 100, tos: 0x88 }); // AF41
    t.after(() => cl.sock.close());
    cl.sock.send(stampRequest(1, 0), '::1', port);
    const d = await cl.next();
    assert.equal(d.ttl, 255);
    assert.equal(d.tos & 0xfc, 0x88);
    assert.equal(decodeReflectorPacket(d.data).senderTtl, 100);
  });

  it('a TWAMP-Light request gets no SSID: octets 14–15 of the reply stay MBZ', async (t) => {
    if (!needNative(t)) return;
    const { port } = await light(t, { host: '127.0.0.1' });
    const cl = await client({ family: 4 });
    t.after(() => cl.sock.close());
    const req = twampLightRequest(9, 64);
    cl.sock.send(req, '127.0.0.1', port);
    const d = await cl.next();
    assert.equal(d.data.length, 64);
    assert.equal(d.data.readUInt16BE(14), 0, 'padding octets 14–15 not copied into the reply');
    assert.deepEqual(d.data.subarray(44), req.subarray(44), 'padding from 44 on reflected (RFC 8762 §4.6)');
  });

  it('a batch of requests is answered in full with kernel T2s (one sendmmsg)', async (t) => {
    if (!needNative(t)) return;
    const { port, counters } = await light(t, { host: '127.0.0.1' });
    const cl = await client({ family: 4 });
    t.after(() => cl.sock.close());
    const n = 200;
    cl.sock.sendBatch(Array.from({ length: n }, (_, i) => ({ data: stampRequest(i, 1), address: '127.0.0.1', port })));
    const seen = new Set<number>();
    for (let i = 0; i < n; i++) {
      const d = await cl.next();
      const p = decodeReflectorPacket(d.data);
      seen.add(p.senderSeq);
      assert.ok(p.timestamp >= p.receiveTimestamp);
      assert.ok(readTimestamp(d.data, 16) > 0n);
    }
    assert.equal(seen.size, n);
    assert.equal(counters.reflectedPackets, n);
    assert.equal(counters.reflectedOctets, n * (44 + 28));
  });

  it('node:dgram fallback: Sender TTL 255 (unknown), userspace timestamps, replies still TTL 255', async (t) => {
    if (!needNative(t)) return; // the receiving side reads TTL through the native datapath
    const { lr, port } = await light(t, { host: '127.0.0.1', native: false });
    assert.equal(lr.timestampSource, 'userspace');
    const cl = await client({ family: 4, ttl: 200 });
    t.after(() => cl.sock.close());
    cl.sock.send(stampRequest(1, 0), '127.0.0.1', port);
    const d = await cl.next();
    assert.equal(decodeReflectorPacket(d.data).senderTtl, 255);
    assert.equal(d.ttl, 255);
  });
});

describe('light_format (config → Light reflector)', { timeout: 30_000 }, () => {
  it("light_format: twamp never echoes an SSID; auto echoes a STAMP request's; a bad value is refused", async (t) => {
    if (!needNative(t)) return;
    const cl = await client({ family: 4 });
    t.after(() => cl.sock.close());
    for (const [format, want] of [['twamp', 0], ['auto', 0x4242]] as const) {
      const r = new TwampReflector(parseReflectorConfig({ id: `lf-${format}`, listen: '127.0.0.1', port: 0, control: false, light_port: 0, light_format: format }));
      const { port } = await r.start();
      try {
        cl.sock.send(stampRequest(1, 0x4242), '127.0.0.1', port);
        assert.equal(decodeReflectorPacket((await cl.next()).data).ssid, want, `light_format ${format}`);
      } finally {
        await r.stop();
      }
    }
    assert.throws(() => new TwampReflector(parseReflectorConfig({ id: 'lf-bad', listen: '127.0.0.1', port: 0, light_port: 0, light_format: 'both' })),
      /light_format/);
  });
});
