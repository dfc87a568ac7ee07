// LightReflector decisions driven through its receive() seam with a fake
// reply socket and a fake millisecond clock: where replies may go, that no
// packet throws past the handler, the global and octet budgets, the
// symmetric-only mode, the authenticated-STAMP anti-replay window (RFC 4303
// §3.4.3 style) and the authenticated reply's tail (RFC 8762 §4.2.2: octets
// after 111 are not HMAC-covered and are not echoed).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LightReflector, REPLAY_WINDOW } from '../../src/session/lightReflector.js';
import { lightRig } from '../helpers/lightRig.js';
import { systemClock } from '../../src/session/clock.js';
import type { ReflectorCounters } from '../../src/session/reflectorSession.js';
import type { RemoteInfo } from 'node:dgram';
import { replyTargetProblem } from '../../src/session/address.js';
import type { Logger } from '../../src/util/log.js';
import fc from 'fast-check';
import { fuzzParams, testTimeout } from '../helpers/fuzz.js';
import {
  writeStampSenderPacket, writeStampAuthSenderPacket, verifyStampPacket, encodeTlv, decodeReflectorPacket,
  TLV_TYPE_EXTRA_PADDING, TLV_FLAG_U, STAMP_AUTH_SIZE,
} from '../../src/protocol/index.js';

const KEY = Buffer.from('light-unit-key');
const NTP_NOW = 3_900_000_000n << 32n;

const rig = lightRig;

function stamp(seq = 1, size = 44): Buffer {
  const b = Buffer.alloc(size);
  writeStampSenderPacket(b, { seq, timestamp: NTP_NOW, errorEstimate: 1, ssid: 7 });
  return b;
}

/** T1 defaults to ~1 ms per seq after NTP_NOW (the reflector orders T1 at sub-microsecond precision). */
function authStamp(seq: number, t1: bigint = NTP_NOW + (BigInt(seq) << 22n), ssid = 9, tail?: Buffer): Buffer {
  const b = Buffer.alloc(STAMP_AUTH_SIZE + (tail?.length ?? 0));
  tail?.copy(b, STAMP_AUTH_SIZE);
  writeStampAuthSenderPacket(b, { seq, timestamp: t1, errorEstimate: 1, ssid }, KEY);
  return b;
}

describe('LightReflector: reply targets (replyTargetProblem)', () => {
  it('never replies to port 0, ports below 1024, multicast, broadcast or unspecified sources; counts them dropped', async () => {
    const { lr, counters, sent, rx } = rig();
    try {
      rx(stamp(), '127.0.0.1', 0);
      rx(stamp(), '127.0.0.1', 53);
      rx(stamp(), '127.0.0.1', 862);
      rx(stamp(), '224.0.0.1');
      rx(stamp(), '239.1.2.3');
      rx(stamp(), '255.255.255.255');
      rx(stamp(), '0.0.0.0');
      rx(stamp(), 'ff02::1');
      rx(stamp(), '::');
      rx(stamp(), '::ffff:224.0.0.9');
      assert.equal(sent.length, 0);
      assert.equal(lr.badTarget, 10);
      assert.equal(counters.droppedPackets, 10);
      assert.equal(counters.reflectedPackets, 0);
      rx(stamp(), '127.0.0.1', 1024);
      rx(stamp(), '::1', 50000);
      assert.equal(sent.length, 2);
      assert.equal(counters.reflectedPackets, 2);
    } finally {
      await lr.close();
    }
  });

  it('allowReplyPorts opens chosen low ports, no others (never port 0)', async () => {
    const { lr, sent, rx } = rig({ allowReplyPorts: new Set([862]) });
    try {
      rx(stamp(), '127.0.0.1', 862);
      rx(stamp(), '127.0.0.1', 53);
      rx(stamp(), '127.0.0.1', 0);
      assert.deepEqual(sent.map((s) => s.port), [862]);
      assert.equal(lr.badTarget, 2);
    } finally {
      await lr.close();
    }
  });
});

describe('LightReflector: nothing a peer sends throws past the handler', () => {
  it('an exception while answering is counted and logged once a minute, and the next packet is answered', async () => {
    const lines: string[] = [];
    const log: Logger = { debug() {}, info() {}, warn: (m) => lines.push(m), error: (m) => lines.push(m) };
    const counters: ReflectorCounters = { reflectedPackets: 0, reflectedOctets: 0, droppedPackets: 0 };
    const lr = new LightReflector({ host: '127.0.0.1', port: 0, clock: systemClock(), counters, log });
    let fail = true;
    let sent = 0;
    lr.attach({
      send() {
        if (fail) throw Object.assign(new RangeError('Port should be > 0 and < 65536. Received 0.'), { code: 'ERR_SOCKET_BAD_PORT' });
        sent++;
      },
    });
    const ri = { address: '127.0.0.1', port: 40000, family: 'IPv4', size: 44 } as RemoteInfo;
    try {
      assert.doesNotThrow(() => lr.receive(stamp(), ri));
      assert.doesNotThrow(() => lr.receive(stamp(), ri));
      assert.equal(lr.errors, 2);
      assert.equal(counters.droppedPackets, 2);
      assert.equal(counters.reflectedPackets, 0);
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0]!, /127\.0\.0\.1:40000.*not reflected.*Port should be/);
      // Garbage rinfo (no address) is survived too.
      assert.doesNotThrow(() => lr.receive(stamp(), {} as RemoteInfo));
      fail = false;
      lr.receive(stamp(), ri);
      assert.equal(sent, 1);
      assert.equal(counters.reflectedPackets, 1);
    } finally {
      await lr.close();
    }
  });
});

describe('LightReflector: budgets', () => {
  it('maxPps caps replies across many sources; it refills over time', async () => {
    const { lr, counters, sent, clock, rx } = rig({ maxPps: 10 });
    try {
      for (let i = 0; i < 100; i++) rx(stamp(i), `10.0.${i >> 8}.${i & 255}`);
      assert.equal(sent.length, 10);
      assert.equal(lr.rateLimited, 90);
      assert.equal(lr.globalRateLimited, 90);
      assert.equal(counters.droppedPackets, 90);
      clock.ms += 500;
      for (let i = 0; i < 100; i++) rx(stamp(i), `10.1.${i >> 8}.${i & 255}`);
      assert.equal(sent.length, 15);
    } finally {
      await lr.close();
    }
  });

  it('maxOctetsPerSource bounds the reply octets (IP level) to one source; other sources unaffected', async () => {
    // 44-octet replies = 72 octets at IPv4 level: 1000 octets = 13 replies.
    const { lr, sent, clock, rx } = rig({ maxOctetsPerSource: 1000 });
    try {
      for (let i = 0; i < 50; i++) rx(stamp(i));
      assert.equal(sent.length, 13);
      assert.equal(lr.rateLimited, 37);
      assert.equal(lr.globalRateLimited, 0);
      rx(stamp(), '127.0.0.2');
      assert.equal(sent.length, 14);
      // Larger requests spend more: 1000-octet requests (1028 at IP level) never fit a 1000-octet second.
      clock.ms += 10_000;
      rx(stamp(1, 1000), '127.0.0.3');
      assert.equal(sent.length, 14);
      rx(stamp(1, 900), '127.0.0.3');
      assert.equal(sent.length, 15);
    } finally {
      await lr.close();
    }
  });

  it('maxOctets bounds the reply octets of all sources together; IPv6 overhead is 48', async () => {
    const { lr, sent, rx } = rig({ maxOctets: 1000 }, 6);
    try {
      // 44 + 48 = 92 octets per reply: 10 fit in 1000.
      for (let i = 0; i < 30; i++) rx(stamp(i), `2001:db8::${i + 1}`);
      assert.equal(sent.length, 10);
      assert.equal(lr.globalRateLimited, 20);
    } finally {
      await lr.close();
    }
  });

  it('defaults do not bother a normal sender (1 pps, 100-packet bursts of 1500 octets)', async () => {
    const { lr, sent, clock, rx } = rig();
    try {
      for (let i = 0; i < 60; i++) { rx(stamp(i)); clock.ms += 1000; }
      for (let i = 0; i < 100; i++) rx(stamp(i, 1472));
      assert.equal(sent.length, 160);
      assert.equal(lr.rateLimited, 0);
    } finally {
      await lr.close();
    }
  });
});

describe('LightReflector: symmetricOnly', () => {
  it('off (default): a 14-octet request gets a 44-octet reply; on: requests shorter than 44 are not answered', async () => {
    const off = rig();
    const on = rig({ symmetricOnly: true });
    try {
      off.rx(stamp(1, 44).subarray(0, 14));
      assert.equal(off.sent[0]!.msg.length, 44);
      on.rx(stamp(1, 44).subarray(0, 14));
      on.rx(stamp(2, 44).subarray(0, 43));
      assert.equal(on.sent.length, 0);
      assert.equal(on.lr.asymmetric, 2);
      assert.equal(on.counters.droppedPackets, 2);
      on.rx(stamp(3, 44));
      on.rx(stamp(4, 100));
      assert.deepEqual(on.sent.map((s) => s.msg.length), [44, 100]);
    } finally {
      await off.lr.close();
      await on.lr.close();
    }
  });
});

describe('LightReflector: authenticated STAMP', () => {
  it('HMAC failures are counted through onRefused("hmac")', async () => {
    const reasons: string[] = [];
    const { lr, sent, counters, rx } = rig({ authKey: KEY, onRefused: (r) => reasons.push(r) });
    try {
      const bad = authStamp(1);
      bad[50] ^= 1;
      rx(bad);
      rx(stamp(2, 44));
      rx(stamp(3, 112));
      assert.deepEqual(reasons, ['hmac', 'hmac', 'hmac']);
      assert.equal(lr.authFailed, 3);
      assert.equal(counters.droppedPackets, 3);
      rx(authStamp(1));
      assert.equal(sent.length, 1);
    } finally {
      await lr.close();
    }
  });

  it('bad-HMAC packets from many sources do not use up the global budget of authenticated senders', async () => {
    const { lr, sent, rx } = rig({ authKey: KEY, maxPps: 10 });
    try {
      for (let i = 0; i < 200; i++) rx(stamp(i, 112), `10.9.${i >> 8}.${i & 255}`);
      assert.equal(lr.authFailed, 200);
      for (let s = 1; s <= 10; s++) rx(authStamp(s));
      assert.equal(sent.length, 10);
      rx(authStamp(11));
      assert.equal(sent.length, 10);
      assert.equal(lr.globalRateLimited, 1);
    } finally {
      await lr.close();
    }
  });

  it('replays are dropped: duplicates and seqs older than the window; reordering inside the window is fine', async () => {
    const { lr, sent, counters, rx } = rig({ authKey: KEY });
    try {
      const p5 = authStamp(5);
      rx(Buffer.from(p5));
      rx(Buffer.from(p5));
      assert.equal(sent.length, 1);
      assert.equal(lr.replayed, 1);
      rx(authStamp(3)); // T1 before the packet that opened the window: an earlier session's, refused
      assert.equal(sent.length, 1, 'a packet older than the first packet of the window is refused');
      rx(authStamp(7));
      rx(authStamp(6)); // reordered: new seq, T1 after the window's start
      rx(authStamp(6));
      assert.equal(sent.length, 3);
      rx(authStamp(5000));
      rx(authStamp(5000 - REPLAY_WINDOW + 1)); // the oldest seq still inside the window
      rx(authStamp(5000 - REPLAY_WINDOW)); // just outside
      rx(authStamp(7)); // long gone
      assert.equal(sent.length, 5);
      assert.equal(lr.replayed, 5);
      assert.equal(counters.droppedPackets, 5);
      // Another SSID or another source port is another sender with its own window.
      rx(authStamp(7, undefined, 10));
      rx(authStamp(7), '127.0.0.1', 40001);
      assert.equal(sent.length, 7);
      assert.equal(lr.replayWindowCount, 3);
    } finally {
      await lr.close();
    }
  });

  it('a sender restarting at seq 0 (newer T1) is served; packets of its earlier session replayed after that are not', async () => {
    const { lr, sent, rx, clock } = rig({ authKey: KEY });
    try {
      const old: Buffer[] = [];
      for (let s = 0; s < 2000; s++) { const p = authStamp(s); old.push(Buffer.from(p)); rx(p); clock.ms += 1; }
      assert.equal(sent.length, 2000);
      const later = NTP_NOW + 100_000n * (1n << 32n);
      for (let s = 0; s < 10; s++) rx(authStamp(s, later + BigInt(s)));
      assert.equal(sent.length, 2010);
      for (const p of [old[1999]!, old[1500]!, old[20]!, old[5]!]) rx(Buffer.from(p));
      assert.equal(sent.length, 2010);
      assert.equal(lr.replayed, 4);
    } finally {
      await lr.close();
    }
  });

  it('sequence numbers wrap around 2^32', async () => {
    const { lr, sent, rx } = rig({ authKey: KEY });
    try {
      const seqs = [0xfffffffe, 0xffffffff, 0, 1];
      seqs.forEach((s, i) => rx(authStamp(s, NTP_NOW + (BigInt(i) << 22n))));
      assert.equal(sent.length, 4);
      rx(authStamp(0xffffffff, NTP_NOW + (1n << 22n)));
      assert.equal(sent.length, 4);
      assert.equal(lr.replayed, 1);
    } finally {
      await lr.close();
    }
  });

  it('the reply keeps the request length but echoes none of its unauthenticated octets (after 111)', async () => {
    const { lr, sent, rx } = rig({ authKey: KEY });
    try {
      // A single Extra Padding TLV (our sender's padding) comes back understood, its value zeroed.
      const tlv = encodeTlv(TLV_TYPE_EXTRA_PADDING, Buffer.alloc(20, 0xab));
      rx(authStamp(1, undefined, 9, tlv));
      // Anything else (a TLV chain without a verified HMAC TLV, raw padding) comes back as zeros.
      const chain = Buffer.concat([encodeTlv(2, Buffer.alloc(8, 0xcd)), encodeTlv(TLV_TYPE_EXTRA_PADDING, Buffer.alloc(8, 0xee))]);
      rx(authStamp(2, undefined, 9, chain));
      rx(authStamp(3, undefined, 9, Buffer.from('GET / HTTP/1.1\r\nHost: victim\r\n\r\n')));
      assert.equal(sent.length, 3);
      const [a, b, c] = sent.map((s) => s.msg);
      assert.equal(a!.length, STAMP_AUTH_SIZE + tlv.length);
      assert.ok(verifyStampPacket(a!, a!.length, KEY));
      assert.equal(a![112]! & TLV_FLAG_U, 0);
      assert.equal(a![113], TLV_TYPE_EXTRA_PADDING);
      assert.equal(a!.readUInt16BE(114), 20);
      assert.ok(a!.subarray(116).every((x) => x === 0), 'Extra Padding value zeroed');
      assert.equal(b!.length, STAMP_AUTH_SIZE + chain.length);
      assert.ok(b!.subarray(112).every((x) => x === 0));
      assert.equal(c!.length, STAMP_AUTH_SIZE + 32);
      assert.ok(c!.subarray(112).every((x) => x === 0));
      assert.equal(decodeReflectorPacket(c!, c!.length, 'authenticated').senderSeq, 3);
    } finally {
      await lr.close();
    }
  });
});

describe('LightReflector: fuzz', { timeout: testTimeout(60_000) }, () => {
  it('any datagram from any source: no unexpected exception, every packet reflected or dropped', async () => {
    const address = fc.oneof(
      fc.ipV4(), fc.ipV6(), fc.constantFrom('0.0.0.0', '::', '255.255.255.255', 'ff02::1', '::ffff:224.0.0.1', '', 'not-an-ip'),
    );
    const port = fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.constantFrom(0, 7, 19, 53, 123, 862, -1, 70000, 1.5));
    for (const authKey of [undefined, KEY]) {
      fc.assert(fc.property(
        fc.array(fc.record({ msg: fc.uint8Array({ maxLength: 300 }), address, port, valid: fc.boolean() }), { maxLength: 40 }),
        fc.boolean(), fc.boolean(),
        (pkts, stateful, symmetricOnly) => {
          const r = rig({ ...(authKey ? { authKey } : {}), stateful, symmetricOnly, maxPps: 20 });
          let seq = 0;
          for (const p of pkts) {
            // Some authenticated packets that verify, so the replay window and the reply paths run too.
            const msg = p.valid && authKey ? authStamp(seq++, undefined, 3, Buffer.from(p.msg.subarray(0, 40))) : Buffer.from(p.msg);
            r.rx(msg, p.address, p.port);
          }
          void r.lr.close();
          assert.equal(r.lr.errors, 0);
          assert.equal(r.counters.reflectedPackets + r.counters.droppedPackets, pkts.length);
          assert.equal(r.sent.length, r.counters.reflectedPackets);
          for (const s of r.sent) assert.equal(replyTargetProblem(s.address, s.port), undefined);
        },
      ), fuzzParams(200));
    }
  });
});
