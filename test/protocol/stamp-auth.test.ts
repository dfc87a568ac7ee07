// Authenticated STAMP layouts (RFC 8762 §4.2.2 / §4.3.2, RFC 8972 SSID):
// HMAC-SHA-256/128 over octets 0–95 at 96–111, sign/verify round trip,
// tampering rejected, reflection layout.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import {
  STAMP_AUTH_SIZE, stampHmac, signStampPacket, verifyStampPacket, writeStampAuthSenderPacket,
  decodeStampAuthSenderPacket, buildStampAuthReflection, stampAuthReflectorSsid, decodeReflectorPacket,
  patchReflectorTimestamp, encodeTlv, TLV_TYPE_EXTRA_PADDING, TLV_FLAG_U, DecodeError,
} from '../../src/protocol/index.js';

const KEY = Buffer.from('secret');
const T1 = 0xe93c7f0080000000n;

function senderPacket(length = STAMP_AUTH_SIZE): Buffer {
  const b = Buffer.alloc(length, 0xaa);
  writeStampAuthSenderPacket(b, { seq: 1, timestamp: T1, errorEstimate: 0x0001, ssid: 0x1234 }, KEY);
  return b;
}

describe('authenticated STAMP codec', () => {
  it('sender layout: seq 0, MBZ 4–15, T1 16, EE 24, SSID 26, MBZ 28–95, HMAC 96–111', () => {
    const b = senderPacket();
    assert.equal(b.length, 112);
    assert.equal(b.readUInt32BE(0), 1);
    assert.ok(b.subarray(4, 16).every((x) => x === 0));
    assert.equal(b.readBigUInt64BE(16), T1);
    assert.equal(b.readUInt16BE(24), 0x0001);
    assert.equal(b.readUInt16BE(26), 0x1234);
    assert.ok(b.subarray(28, 96).every((x) => x === 0));
    // Fixed vector (Python hmac/hashlib): HMAC-SHA-256("secret", octets 0–95)[0:16].
    assert.equal(b.subarray(96, 112).toString('hex'), 'e4580b6ac82c8e1830a6660472cf77c1');
    const independent = createHmac('sha256', KEY).update(b.subarray(0, 96)).digest().subarray(0, 16);
    assert.deepEqual(b.subarray(96, 112), independent);
    assert.deepEqual(stampHmac(KEY, b), independent);
    assert.deepEqual(decodeStampAuthSenderPacket(b), { seq: 1, timestamp: T1, errorEstimate: 1, ssid: 0x1234 });
  });

  it('verify round trip; a tampered octet anywhere in 0–111 or another key is rejected', () => {
    const b = senderPacket();
    assert.equal(verifyStampPacket(b, b.length, KEY), true);
    for (const at of [0, 5, 16, 23, 25, 27, 60, 95, 96, 111]) {
      const t = Buffer.from(b);
      t[at]! ^= 0x01;
      assert.equal(verifyStampPacket(t, t.length, KEY), false, `octet ${at} tampered`);
    }
    assert.equal(verifyStampPacket(b, b.length, Buffer.from('secreT')), false);
    // Too short (an unauthenticated 44-octet packet) never verifies.
    assert.equal(verifyStampPacket(b, 44, KEY), false);
    assert.equal(verifyStampPacket(b.subarray(0, 111), 111, KEY), false);
    // Octets from 112 on (TLVs) are not covered.
    const long = senderPacket(140);
    long[130] = 0x55;
    assert.equal(verifyStampPacket(long, long.length, KEY), true);
  });

  it('short buffers and SSIDs out of range are refused', () => {
    assert.throws(() => writeStampAuthSenderPacket(Buffer.alloc(111), { seq: 0, timestamp: 0n, errorEstimate: 1, ssid: 1 }), RangeError);
    assert.throws(() => writeStampAuthSenderPacket(Buffer.alloc(112), { seq: 0, timestamp: 0n, errorEstimate: 1, ssid: 0x10000 }), RangeError);
    assert.throws(() => decodeStampAuthSenderPacket(Buffer.alloc(100)), DecodeError);
    assert.throws(() => signStampPacket(Buffer.alloc(100), KEY), RangeError);
  });

  it('reflection: TWAMP authenticated reflector layout with SSID at 26, signed after the T3 patch', () => {
    const tlv = encodeTlv(TLV_TYPE_EXTRA_PADDING, Buffer.alloc(12));
    const req = Buffer.alloc(112 + tlv.length);
    tlv.copy(req, 112);
    writeStampAuthSenderPacket(req, { seq: 7, timestamp: T1, errorEstimate: 0x8f83, ssid: 0xbeef }, KEY);
    assert.ok(verifyStampPacket(req, req.length, KEY));
    const out = Buffer.alloc(req.length, 0xff);
    const len = buildStampAuthReflection(req, req.length, out, {
      seq: 3, receiveTimestamp: T1 + 100n, timestamp: T1 + 150n, errorEstimate: 0x0001, senderTtl: 255,
    });
    assert.equal(len, req.length);
    patchReflectorTimestamp(out, T1 + 200n, 'authenticated');
    signStampPacket(out, KEY);
    assert.ok(verifyStampPacket(out, len, KEY));
    const r = decodeReflectorPacket(out, len, 'authenticated');
    assert.equal(r.seq, 3);
    assert.equal(r.timestamp, T1 + 200n);
    assert.equal(r.errorEstimate, 1);
    assert.equal(r.receiveTimestamp, T1 + 100n);
    assert.equal(r.senderSeq, 7);
    assert.equal(r.senderTimestamp, T1);
    assert.equal(r.senderErrorEstimate, 0x8f83);
    assert.equal(r.senderTtl, 255);
    assert.equal(stampAuthReflectorSsid(out, len), 0xbeef);
    for (const [from, to] of [[4, 16], [28, 32], [40, 48], [52, 64], [74, 80], [81, 96]] as const) {
      assert.ok(out.subarray(from, to).every((x) => x === 0), `MBZ ${from}–${to - 1}`);
    }
    // Extra Padding TLV understood: U cleared; rest copied.
    assert.equal(out[112]! & TLV_FLAG_U, 0);
    assert.deepEqual(out.subarray(113, len), req.subarray(113, len));
    // T3 is covered: changing it after signing breaks the HMAC.
    patchReflectorTimestamp(out, T1 + 201n, 'authenticated');
    assert.equal(verifyStampPacket(out, len, KEY), false);
  });

  it('in-place reflection and short requests', () => {
    const req = senderPacket();
    const len = buildStampAuthReflection(req, req.length, req, { seq: 1, receiveTimestamp: 5n, timestamp: 6n, errorEstimate: 1, senderTtl: 255 });
    assert.equal(len, 112);
    const r = decodeReflectorPacket(req, len, 'authenticated');
    assert.equal(r.senderSeq, 1);
    assert.equal(r.senderTimestamp, T1);
    assert.equal(stampAuthReflectorSsid(req), 0x1234);
    assert.ok(req.subarray(96, 112).every((x) => x === 0), 'HMAC field zeroed until signed');
    assert.throws(() => buildStampAuthReflection(Buffer.alloc(44), 44, Buffer.alloc(112), { seq: 0, receiveTimestamp: 0n, timestamp: 0n, errorEstimate: 1, senderTtl: 255 }), DecodeError);
  });
});
