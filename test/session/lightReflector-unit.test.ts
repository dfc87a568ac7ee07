// LightReflector (src/session/lightReflector.ts) decisions not covered by
// lightReflector.test.ts, through its public API only: the attach()/receive()
// seam with a fake reply socket and a fake millisecond clock, and listen() on
// loopback. Stateless and stateful sequence numbers (RFC 8762 §4.3, RFC 5357
// Appendix I), senders keyed by address, port and SSID (RFC 8972 §3), idle
// expiry and the sender cap, which requests carry an SSID (lightFormat), reply
// lengths (RFC 8762 §4.6), the per-source packet budget and the ACL.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { decodeReflectorPacket, writeStampSenderPacket, type LightFormat } from '../../src/protocol/index.js';
import { LightReflector } from '../../src/session/lightReflector.js';
import { lightRig } from '../helpers/lightRig.js';
import { systemClock } from '../../src/session/clock.js';
import type { ReflectorCounters } from '../../src/session/reflectorSession.js';

const NTP_NOW = 3_900_000_000n << 32n;

const rig = lightRig;

/** A STAMP request (44 octets, MBZ zero) with `ssid`; `mbz` puts a non-zero octet in MBZ 16–43. */
function stamp(seq: number, ssid = 0, opts: { size?: number; mbz?: boolean } = {}): Buffer {
  const b = Buffer.alloc(opts.size ?? 44);
  writeStampSenderPacket(b, { seq, timestamp: NTP_NOW, errorEstimate: 1, ssid });
  if (opts.mbz) b[30] = 0xaa;
  return b;
}

describe('LightReflector: sequence numbers', () => {
  it('stateless (default): the reply carries the sender\'s sequence number', () => {
    const r = rig();
    for (const seq of [5, 6, 1000]) {
      r.rx(stamp(seq));
      assert.equal(r.lastSeq(), seq);
    }
    assert.equal(r.lr.stateful, false);
    assert.equal(r.lr.senderCount, 0);
  });

  it('stateful: one counter from 0 per sender, a sender being address, port and SSID', () => {
    const r = rig({ stateful: true });
    const seqs: number[] = [];
    const send = (port: number, ssid: number): void => { r.rx(stamp(900, ssid), undefined, port); seqs.push(r.lastSeq()); };
    send(40000, 1); send(40000, 1); send(40001, 1); send(40000, 2); send(40000, 1); send(40001, 1);
    assert.deepEqual(seqs, [0, 1, 0, 0, 2, 1]);
    assert.equal(r.lr.senderCount, 3);
  });

  it('stateful, TWAMP-Light requests (lightFormat twamp): octets 14–15 are padding, not an SSID', () => {
    const r = rig({ stateful: true, lightFormat: 'twamp' });
    r.rx(stamp(1, 1));
    r.rx(stamp(1, 2));
    assert.equal(r.lastSeq(), 1);
    assert.equal(r.lr.senderCount, 1);
    assert.equal(decodeReflectorPacket(r.sent.at(-1)!.msg).ssid, 0);
  });

  it('stateful: a sender idle longer than idleMs starts again at 0', () => {
    const r = rig({ stateful: true, idleMs: 5_000 });
    r.rx(stamp(1)); r.rx(stamp(2));
    assert.equal(r.lastSeq(), 1);
    r.clock.ms += 4_000;
    r.rx(stamp(3));
    assert.equal(r.lastSeq(), 2, 'forgotten before idleMs');
    r.clock.ms += 5_001;
    r.rx(stamp(4));
    assert.equal(r.lastSeq(), 0);
  });

  it('stateful: at maxSenders, the least recently seen sender is forgotten first', () => {
    const r = rig({ stateful: true, maxSenders: 2 });
    const seqOf = (port: number): number => { r.rx(stamp(1), undefined, port); return r.lastSeq(); };
    const A = 40001, B = 40002, C = 40003;
    assert.deepEqual([seqOf(A), seqOf(B), seqOf(A)], [0, 0, 1]);
    assert.equal(seqOf(C), 0); // forgets B (seen before A's last packet)
    assert.equal(seqOf(A), 2); // A kept its counter
    assert.equal(seqOf(B), 0); // B starts again
    assert.equal(r.lr.senderCount, 2);
  });
});

describe('LightReflector: SSID and reply length', () => {
  const cases: [LightFormat, boolean, number][] = [
    ['auto', false, 7], // STAMP: MBZ 16–43 zero
    ['auto', true, 0], // MBZ not zero: read as TWAMP-Light
    ['stamp', true, 7], // every request of ≥ 44 octets is STAMP
    ['twamp', false, 0], // never an SSID
  ];
  for (const [lightFormat, mbz, ssid] of cases) {
    it(`lightFormat ${lightFormat}, ${mbz ? 'non-zero' : 'zero'} MBZ: the reply's SSID is ${ssid}`, () => {
      const r = rig({ lightFormat });
      r.rx(stamp(1, 7, { mbz }));
      assert.equal(decodeReflectorPacket(r.sent[0]!.msg).ssid, ssid);
    });
  }

  it('a request shorter than 44 octets gets a 44-octet reply, a longer one its own length; under 14 is dropped', () => {
    const r = rig();
    r.rx(Buffer.alloc(14));
    r.rx(stamp(1, 0, { size: 60 }));
    r.rx(Buffer.alloc(13));
    assert.deepEqual(r.sent.map((s) => s.msg.length), [44, 60]);
    assert.equal(r.counters.droppedPackets, 1);
    assert.deepEqual([r.counters.reflectedPackets, r.counters.reflectedOctets], [2, 44 + 28 + 60 + 28]);
  });

  it('the reply goes back to the request\'s source address and port', () => {
    const r = rig();
    r.rx(stamp(1), '127.0.0.3', 45678);
    assert.deepEqual([r.sent[0]!.address, r.sent[0]!.port], ['127.0.0.3', 45678]);
  });
});

describe('LightReflector: per-source budget and ACL', () => {
  it('ratePps packets a second from one source address (any port); others unaffected; refilled over time', () => {
    const r = rig({ ratePps: 3 });
    for (let i = 0; i < 4; i++) r.rx(stamp(i), undefined, 40000 + i);
    assert.equal(r.sent.length, 3);
    assert.equal(r.lr.rateLimited, 1);
    r.rx(stamp(9), '127.0.0.2');
    assert.equal(r.sent.length, 4, 'another source address has its own budget');
    r.clock.ms += 334; // a third of a second: one packet's worth
    r.rx(stamp(10));
    r.rx(stamp(11));
    assert.equal(r.sent.length, 5);
    assert.equal(r.counters.droppedPackets, 2);
  });

  it('the ACL sees the source address (v4-mapped unmapped) and a refusal drops the packet', () => {
    const seen: string[] = [];
    const r = rig({ acl: { check: (a) => { seen.push(a); return a === '127.0.0.9' ? 'not allowed' : undefined; } } });
    r.rx(stamp(1), '::ffff:127.0.0.9');
    r.rx(stamp(2), '127.0.0.8');
    assert.deepEqual(seen, ['127.0.0.9', '127.0.0.8']);
    assert.deepEqual(r.sent.map((s) => decodeReflectorPacket(s.msg).senderSeq), [2]);
    assert.equal(r.counters.droppedPackets, 1);
  });
});

describe('LightReflector on loopback', { timeout: 30_000 }, () => {
  it('listen(): answers a STAMP sender with its SSID, T1 and the received TTL as Sender TTL; close() stops it', async () => {
    const counters: ReflectorCounters = { reflectedPackets: 0, reflectedOctets: 0, droppedPackets: 0 };
    const lr = new LightReflector({ host: '127.0.0.1', port: 0, clock: systemClock(), counters, stateful: true });
    const { port } = await lr.listen();
    const client = createSocket('udp4');
    try {
      client.bind(0, '127.0.0.1');
      await once(client, 'listening');
      client.setTTL(77);
      const replies: Buffer[] = [];
      client.on('message', (m) => replies.push(m));
      for (const seq of [10, 11]) client.send(stamp(seq, 0x1234), port, '127.0.0.1');
      const end = Date.now() + 5_000;
      while (replies.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
      const p = replies.map((m) => decodeReflectorPacket(m));
      assert.deepEqual(p.map((x) => [x.seq, x.senderSeq, x.ssid, x.senderTimestamp]), [[0, 10, 0x1234, NTP_NOW], [1, 11, 0x1234, NTP_NOW]]);
      // Sender TTL: the TTL the request arrived with where the datapath reads it (kernel timestamps), else 255.
      const ttl = lr.timestampSource === 'userspace' ? 255 : 77;
      assert.deepEqual(p.map((x) => x.senderTtl), [ttl, ttl]);
      assert.equal(counters.reflectedPackets, 2);
      await lr.close();
      assert.equal(lr.senderCount, 0);
      client.send(stamp(12, 0x1234), port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(replies.length, 2);
      assert.equal(counters.reflectedPackets, 2);
    } finally {
      client.close();
      await lr.close();
    }
  });
});
