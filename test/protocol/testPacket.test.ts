import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createDecipheriv } from 'node:crypto';
import {
  DecodeError,
  REFLECTOR_HEADER_SIZE,
  SENDER_HEADER_SIZE,
  TRUNCATED_REFLECTOR_SIZE,
  buildReflection,
  decodeReflectorPacket,
  decodeSenderPacket,
  patchReflectorTimestamp,
  reflectorReplyLength,
  writeSenderPacket,
} from '../../src/protocol/index.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('TWAMP-Test packets: sizes (RFC 5357 §4, erratum 5045)', () => {
  it('header sizes', () => {
    assert.deepEqual(SENDER_HEADER_SIZE, { open: 14, authenticated: 48 });
    assert.deepEqual(REFLECTOR_HEADER_SIZE, { open: 41, authenticated: 112 });
    assert.equal(TRUNCATED_REFLECTOR_SIZE, 38);
  });

  it('reply length = max(request, reflector header)', () => {
    assert.equal(reflectorReplyLength(14), 41);
    assert.equal(reflectorReplyLength(41), 41);
    assert.equal(reflectorReplyLength(200), 200);
    assert.equal(reflectorReplyLength(48, 'authenticated'), 112);
    assert.equal(reflectorReplyLength(112, 'authenticated'), 112);
    assert.equal(reflectorReplyLength(1000, 'authenticated'), 1000);
  });
});

describe('TWAMP-Test packets: Gufo Agent byte vectors', () => {
  // Test-Request: seq 1024, T1 0xE3D0D020…, Error Estimate 15, padded to 20 with zeros.
  const request = hex('00000400 e3d0d02000000000 000f 000000000000');
  // Test-Response: seq 1024, T3 …22…, EE 15, MBZ, T2 …21…, sender seq 1025,
  // T1 …20…, sender EE 14, MBZ, TTL 250, padded to 50 with zeros.
  const response = hex(
    '00000400 e3d0d02200000000 000f 0000 e3d0d02100000000 00000401 e3d0d02000000000 000e 0000 fa' + '00'.repeat(9),
  );

  it('writes and decodes the sender packet', () => {
    const buf = Buffer.alloc(20);
    writeSenderPacket(buf, { seq: 1024, timestamp: 0xe3d0d02000000000n, errorEstimate: 15 });
    assert.deepEqual(buf, request);
    assert.deepEqual(decodeSenderPacket(request), { seq: 1024, timestamp: 0xe3d0d02000000000n, errorEstimate: 15 });
  });

  it('decodes the reflector packet', () => {
    assert.deepEqual(decodeReflectorPacket(response), {
      seq: 1024,
      timestamp: 0xe3d0d02200000000n,
      errorEstimate: 15,
      ssid: 0,
      receiveTimestamp: 0xe3d0d02100000000n,
      senderSeq: 1025,
      senderTimestamp: 0xe3d0d02000000000n,
      senderErrorEstimate: 14,
      senderTtl: 250,
      length: 50,
    });
  });

  it('builds the same reflector packet from a 50-octet request', () => {
    const req = Buffer.alloc(50);
    writeSenderPacket(req, { seq: 1025, timestamp: 0xe3d0d02000000000n, errorEstimate: 14 });
    const out = Buffer.alloc(64, 0xee);
    const n = buildReflection(req, 50, out, {
      seq: 1024,
      receiveTimestamp: 0xe3d0d02100000000n,
      timestamp: 0xe3d0d02200000000n,
      errorEstimate: 15,
      senderTtl: 250,
    });
    assert.equal(n, 50);
    assert.deepEqual(out.subarray(0, n), response);
    assert.deepEqual(out.subarray(n), Buffer.alloc(14, 0xee)); // nothing written past the reply
  });
});

describe('TWAMP-Test packets: reflection', () => {
  const fields = {
    seq: 7,
    receiveTimestamp: 0xeeadf86bb0ebbba5n,
    timestamp: 0xeeadf86bb0edb2f6n,
    errorEstimate: 0x0001,
    senderTtl: 255,
  };

  function request(length: number, layout: 'open' | 'authenticated' = 'open'): Buffer {
    const b = Buffer.alloc(length);
    for (let i = 0; i < length; i++) b[i] = (i * 7 + 3) & 0xff; // recognisable padding
    writeSenderPacket(b, { seq: 99, timestamp: 0xeeadf86bb0ced4e4n, errorEstimate: 0x8f83 }, layout);
    return b;
  }

  it('keeps the size and drops the highest-numbered padding octets (RFC 5357 §4.2.1)', () => {
    for (const layout of ['open', 'authenticated'] as const) {
      const sh = SENDER_HEADER_SIZE[layout];
      const rh = REFLECTOR_HEADER_SIZE[layout];
      for (const len of [sh, sh + 1, rh - 1, rh, rh + 1, rh + 27, 1472]) {
        const req = request(len, layout);
        const out = Buffer.alloc(2000, 0xee);
        const n = buildReflection(req, len, out, fields, layout);
        assert.equal(n, Math.max(len, rh), `${layout} ${len}`);
        assert.deepEqual(out.subarray(rh, n), req.subarray(sh, sh + n - rh), `${layout} ${len} padding`);
        const d = decodeReflectorPacket(out, n, layout);
        assert.equal(d.senderSeq, 99);
        assert.equal(d.senderTimestamp, 0xeeadf86bb0ced4e4n);
        assert.equal(d.senderErrorEstimate, 0x8f83);
        assert.equal(d.senderTtl, 255);
        assert.equal(d.seq, 7);
        assert.equal(d.receiveTimestamp, fields.receiveTimestamp);
        assert.equal(d.timestamp, fields.timestamp);
        assert.equal(d.length, n);
      }
    }
  });

  it('zeroes MBZ octets of the reply even in a dirty buffer', () => {
    const out = Buffer.alloc(41, 0xff);
    buildReflection(request(14), 14, out, fields);
    assert.equal(out.readUInt16BE(14), 0);
    assert.equal(out.readUInt16BE(38), 0);
    const auth = Buffer.alloc(112, 0xff);
    buildReflection(request(48, 'authenticated'), 48, auth, fields, 'authenticated');
    for (const [a, b] of [[4, 16], [26, 32], [40, 48], [52, 64], [74, 80], [81, 112]] as const) {
      assert.deepEqual(auth.subarray(a, b), Buffer.alloc(b - a), `octets ${a}–${b - 1}`);
    }
  });

  it('works in place (reply written over the request buffer)', () => {
    for (const layout of ['open', 'authenticated'] as const) {
      for (const len of [SENDER_HEADER_SIZE[layout], 60, 200]) {
        const req = request(len, layout);
        const expected = Buffer.alloc(300);
        const n = buildReflection(req, len, expected, fields, layout);
        const inPlace = Buffer.alloc(300);
        req.copy(inPlace);
        assert.equal(buildReflection(inPlace, len, inPlace, fields, layout), n);
        assert.deepEqual(inPlace.subarray(0, n), expected.subarray(0, n), `${layout} ${len}`);
      }
    }
  });

  it('patches T3 just before send', () => {
    const out = Buffer.alloc(112);
    buildReflection(request(41), 41, out, fields);
    patchReflectorTimestamp(out, 0x0102030405060708n);
    assert.equal(out.subarray(4, 12).toString('hex'), '0102030405060708');
    buildReflection(request(112, 'authenticated'), 112, out, fields, 'authenticated');
    patchReflectorTimestamp(out, 0x0102030405060708n, 'authenticated');
    assert.equal(out.subarray(16, 24).toString('hex'), '0102030405060708');
    assert.equal(decodeReflectorPacket(out, 112, 'authenticated').timestamp, 0x0102030405060708n);
  });

  it('rejects requests shorter than the sender header', () => {
    assert.throws(() => buildReflection(Buffer.alloc(13), 13, Buffer.alloc(41), fields), DecodeError);
    assert.throws(() => buildReflection(Buffer.alloc(47), 47, Buffer.alloc(112), fields, 'authenticated'), DecodeError);
  });
});

describe('TWAMP-Test packets: sender writing and decoding', () => {
  it('leaves padding untouched and zeroes MBZ/HMAC in the authenticated layout', () => {
    const open = Buffer.alloc(41, 0xab);
    writeSenderPacket(open, { seq: 1, timestamp: 2n, errorEstimate: 1 });
    assert.deepEqual(open.subarray(14), Buffer.alloc(27, 0xab));
    const auth = Buffer.alloc(112, 0xab);
    writeSenderPacket(auth, { seq: 0x01020304, timestamp: 0x1122334455667788n, errorEstimate: 0x0001 }, 'authenticated');
    assert.equal(
      auth.subarray(0, 48).toString('hex'),
      '01020304' + '00'.repeat(12) + '1122334455667788' + '0001' + '00'.repeat(6) + '00'.repeat(16),
    );
    assert.deepEqual(auth.subarray(48), Buffer.alloc(64, 0xab));
    assert.deepEqual(decodeSenderPacket(auth, 112, 'authenticated'), { seq: 0x01020304, timestamp: 0x1122334455667788n, errorEstimate: 1 });
    assert.throws(() => writeSenderPacket(Buffer.alloc(13), { seq: 0, timestamp: 0n, errorEstimate: 1 }), RangeError);
  });

  it('ignores MBZ on decode and reads the open-mode SSID (RFC 8972)', () => {
    const auth = Buffer.alloc(48, 0xff);
    writeSenderPacket(auth, { seq: 5, timestamp: 6n, errorEstimate: 7 }, 'authenticated');
    auth.fill(0xff, 4, 16);
    auth.fill(0xff, 26, 48);
    assert.deepEqual(decodeSenderPacket(auth, 48, 'authenticated'), { seq: 5, timestamp: 6n, errorEstimate: 7 });
    const refl = Buffer.alloc(41);
    refl.writeUInt16BE(0x1234, 14);
    refl[38] = 0xff;
    refl[39] = 0xff;
    refl[40] = 64;
    const d = decodeReflectorPacket(refl);
    assert.equal(d.ssid, 0x1234);
    assert.equal(d.senderTtl, 64);
  });

  it('throws DecodeError on truncation and inconsistent lengths', () => {
    assert.throws(() => decodeSenderPacket(Buffer.alloc(13)), DecodeError);
    assert.throws(() => decodeSenderPacket(Buffer.alloc(47), 47, 'authenticated'), DecodeError);
    assert.throws(() => decodeSenderPacket(Buffer.alloc(20), 21), DecodeError);
    assert.throws(() => decodeReflectorPacket(Buffer.alloc(37)), DecodeError);
    assert.throws(() => decodeReflectorPacket(Buffer.alloc(111), 111, 'authenticated'), DecodeError);
    assert.throws(() => decodeReflectorPacket(Buffer.alloc(64), 65), DecodeError);
    // 38..40 octets: accepted without Sender TTL (twampy).
    assert.equal(decodeReflectorPacket(Buffer.alloc(38)).senderTtl, undefined);
    assert.equal(decodeReflectorPacket(Buffer.alloc(40)).senderTtl, undefined);
    assert.equal(decodeReflectorPacket(Buffer.alloc(41)).senderTtl, 0);
    // The length argument, not the buffer size, bounds the packet (reused receive buffers).
    assert.equal(decodeReflectorPacket(Buffer.alloc(1500), 38).senderTtl, undefined);
  });
});

/**
 * Authenticated seq-0 packets from a captured perfSONAR twping ↔ twampd 5.2.3
 * session (RFC 5357 §4.1.2 / §4.2.1 layouts; the TestAESKey below was derived
 * from that session's pass-phrase and SID). Only octets 0–15 are
 * encrypted (AES-ECB with the session's TestAESKey, RFC 4656 §4.1.2), so
 * decrypting that block gives the plaintext layout to check offsets against.
 */
describe('TWAMP-Test packets: captured perfSONAR authenticated layout', () => {
  const testAesKey = hex('1a3866522ac54cb8fe89c36ba599755b');
  const sender = hex(`
    c6ff52625b52bed45656b3248cb7c1cceeada3d85b31e3a70001000000000000
    579d14c59e1f76d5219ffb960fa0e1fd6e636801f19b561ccafa70ace6873aed
    131fc1d6b43c3e33f01caf900c1e9142755310c4a8265d0f3e3649c71b42c2bc
    2e0f7689275cf7b14cbe2d3095b5668c`);
  const reflector = hex(`
    c6ff52625b52bed45656b3248cb7c1cceeada3d85b42fe820001000000000000
    eeada3d85b410731000000000000000000000000000000000000000000000000
    eeada3d85b31e3a70001000000000000ff000000000000000000000000000000
    579d14c59e1f76d5219ffb960fa0e1fd`);

  function decryptBlock0(pkt: Buffer): Buffer {
    const d = createDecipheriv('aes-128-ecb', testAesKey, null).setAutoPadding(false);
    const plain = Buffer.from(pkt);
    Buffer.concat([d.update(pkt.subarray(0, 16)), d.final()]).copy(plain, 0);
    return plain;
  }

  it('decodes both packets and rebuilds the reflection except the HMAC', () => {
    const s = decryptBlock0(sender);
    const r = decryptBlock0(reflector);
    assert.deepEqual(s.subarray(0, 16), Buffer.alloc(16)); // seq 0 + 12 MBZ
    assert.deepEqual(decodeSenderPacket(s, 112, 'authenticated'), { seq: 0, timestamp: 0xeeada3d85b31e3a7n, errorEstimate: 1 });
    const d = decodeReflectorPacket(r, 112, 'authenticated');
    assert.deepEqual(d, {
      seq: 0,
      timestamp: 0xeeada3d85b42fe82n,
      errorEstimate: 1,
      ssid: 0,
      receiveTimestamp: 0xeeada3d85b410731n,
      senderSeq: 0,
      senderTimestamp: 0xeeada3d85b31e3a7n,
      senderErrorEstimate: 1,
      senderTtl: 255,
      length: 112,
    });
    const out = Buffer.alloc(112);
    const n = buildReflection(s, 112, out, {
      seq: d.seq,
      receiveTimestamp: d.receiveTimestamp,
      timestamp: d.timestamp,
      errorEstimate: d.errorEstimate,
      senderTtl: 255,
    }, 'authenticated');
    assert.equal(n, 112);
    assert.deepEqual(out.subarray(0, 96), r.subarray(0, 96));
    assert.deepEqual(out.subarray(96, 112), Buffer.alloc(16)); // HMAC left for the crypto layer
  });
});
