// STAMP (RFC 8762 / RFC 8972) base packets and the Light/STAMP reflection:
// byte-exact layouts, RFC 8762 §4.6 sizes (never larger than max(request, 44)),
// SSID copy, TLV pass-through with the U flag, and twampy's captured packets.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  writeStampSenderPacket, decodeStampSenderPacket, buildLightReflection, lightReplyLength, parseTlvs, encodeTlv,
  reflectTlvs, lightRequestKey, STAMP_BASE_SIZE, TLV_FLAG_U, TLV_TYPE_EXTRA_PADDING,
  decodeReflectorPacket, decodeSenderPacket, writeSenderPacket, DecodeError, decodeErrorEstimate,
} from '../../src/protocol/index.js';
import { loadCapture, fixturePath } from '../helpers/pcap.js';

const T1 = 0xe9a1b2c3_d4e5f607n;
const T2 = 0xe9a1b2c4_00000001n;
const T3 = 0xe9a1b2c4_00100000n;

describe('STAMP sender packet (RFC 8762 §4.2.1, RFC 8972 SSID)', () => {
  it('lays out seq, T1, Error Estimate, SSID and 28 MBZ octets byte-exactly', () => {
    const buf = Buffer.alloc(44, 0xff);
    writeStampSenderPacket(buf, { seq: 0x01020304, timestamp: T1, errorEstimate: 0x8001, ssid: 0xbeef });
    assert.equal(buf.toString('hex'),
      '01020304' + 'e9a1b2c3d4e5f607' + '8001' + 'beef' + '00'.repeat(28));
    assert.deepEqual(decodeStampSenderPacket(buf), { seq: 0x01020304, timestamp: T1, errorEstimate: 0x8001, ssid: 0xbeef });
  });

  it('leaves octets from 44 on (TLVs) untouched, rejects short buffers and bad SSIDs', () => {
    const buf = Buffer.alloc(50, 0xab);
    writeStampSenderPacket(buf, { seq: 1, timestamp: 0n, errorEstimate: 1, ssid: 1 });
    assert.equal(buf.subarray(44).toString('hex'), 'ab'.repeat(6));
    assert.throws(() => writeStampSenderPacket(Buffer.alloc(43), { seq: 1, timestamp: 0n, errorEstimate: 1, ssid: 1 }), RangeError);
    assert.throws(() => writeStampSenderPacket(Buffer.alloc(44), { seq: 1, timestamp: 0n, errorEstimate: 1, ssid: 0x10000 }), RangeError);
    assert.throws(() => decodeStampSenderPacket(Buffer.alloc(43)), DecodeError);
  });
});

describe('TLVs (RFC 8972 §4)', () => {
  it('encodes with U set and parses exact chains only', () => {
    const a = encodeTlv(TLV_TYPE_EXTRA_PADDING, Buffer.alloc(4));
    const b = encodeTlv(200, Buffer.from([1, 2]));
    assert.equal(a.toString('hex'), '80010004' + '00000000');
    const chain = Buffer.concat([a, b]);
    assert.deepEqual(parseTlvs(chain, 0)!.map((t) => [t.flags, t.type, t.offset, t.length]), [[0x80, 1, 0, 4], [0x80, 200, 8, 2]]);
    assert.equal(parseTlvs(chain.subarray(0, chain.length - 1), 0), undefined, 'truncated value');
    assert.equal(parseTlvs(Buffer.concat([chain, Buffer.alloc(2)]), 0), undefined, 'dangling octets');
  });

  it('reflector clears U on Extra Padding, keeps U on unknown types, leaves padding alone', () => {
    const base = Buffer.alloc(44);
    const pkt = Buffer.concat([base, encodeTlv(TLV_TYPE_EXTRA_PADDING, Buffer.alloc(3, 7)), encodeTlv(250, Buffer.from([9]))]);
    assert.equal(reflectTlvs(pkt, pkt.length), 2);
    assert.equal(pkt[44], 0x00, 'Extra Padding understood: U cleared');
    assert.equal(pkt[44 + 7], TLV_FLAG_U, 'unknown type 250: U stays set');
    // Zero padding (a TWAMP-Light sender's) is not a TLV chain with U set: untouched.
    const zero = Buffer.alloc(60);
    assert.equal(reflectTlvs(zero, zero.length), 0);
    assert.ok(zero.every((o) => o === 0));
  });
});

describe('Light/STAMP reflection (RFC 8762 §4.3, §4.6)', () => {
  const fields = { seq: 7, receiveTimestamp: T2, timestamp: T3, errorEstimate: 0x0001, senderTtl: 255 };

  it('answers a 44-octet STAMP packet with the 44-octet reflector layout, SSID copied', () => {
    const req = Buffer.alloc(44);
    writeStampSenderPacket(req, { seq: 5, timestamp: T1, errorEstimate: 0x3fff, ssid: 0x1234 });
    const out = Buffer.alloc(64, 0xee);
    const n = buildLightReflection(req, req.length, out, fields);
    assert.equal(n, 44);
    assert.equal(out.subarray(0, n).toString('hex'),
      '00000007' + 'e9a1b2c400100000' + '0001' + '1234' + 'e9a1b2c400000001' +
      '00000005' + 'e9a1b2c3d4e5f607' + '3fff' + '0000' + 'ff' + '000000');
    const r = decodeReflectorPacket(out, n);
    assert.equal(r.ssid, 0x1234);
    assert.equal(r.senderSeq, 5);
    assert.equal(r.senderTtl, 255);
  });

  it('a 14-octet TWAMP-Light request gets a 44-octet reply (never larger than max(request, 44))', () => {
    const req = Buffer.alloc(14);
    writeSenderPacket(req, { seq: 3, timestamp: T1, errorEstimate: 0x3fff });
    const out = Buffer.alloc(44);
    assert.equal(buildLightReflection(req, 14, out, fields), 44);
    assert.equal(out.readUInt16BE(14), 0, 'no SSID in a 14-octet packet');
    for (const len of [14, 20, 41, 43, 44, 45, 100, 1472]) assert.equal(lightReplyLength(len), Math.max(len, 44));
    assert.throws(() => buildLightReflection(Buffer.alloc(13), 13, Buffer.alloc(44), fields), DecodeError);
  });

  it('copies octets beyond 44 (padding or TLVs) at the same offsets, also in place', () => {
    const req = Buffer.alloc(100);
    writeStampSenderPacket(req, { seq: 9, timestamp: T1, errorEstimate: 1, ssid: 77 });
    encodeTlv(TLV_TYPE_EXTRA_PADDING, Buffer.alloc(52, 0x5a)).copy(req, 44);
    const copy = Buffer.from(req);
    const n = buildLightReflection(req, req.length, req, fields); // in place
    assert.equal(n, 100);
    assert.deepEqual(req.subarray(48), copy.subarray(48), 'TLV value copied');
    assert.equal(req[44], 0x00, 'U cleared on Extra Padding');
    assert.equal(decodeReflectorPacket(req, n).senderSeq, 9);
    // Random TWAMP-Light padding from octet 14 on: the reflector's header overwrites 14–43, the rest comes back as is.
    const twamp = Buffer.alloc(80, 0x3c);
    writeSenderPacket(twamp, { seq: 1, timestamp: T1, errorEstimate: 1 });
    const out = Buffer.alloc(80);
    assert.equal(buildLightReflection(twamp, 80, out, fields), 80);
    assert.deepEqual(out.subarray(44), twamp.subarray(44));
  });

  it('lightRequestKey reads seq and SSID (0 below 16 octets)', () => {
    const req = Buffer.alloc(44);
    writeStampSenderPacket(req, { seq: 11, timestamp: T1, errorEstimate: 1, ssid: 4242 });
    assert.deepEqual(lightRequestKey(req, 44), { seq: 11, ssid: 4242 });
    assert.deepEqual(lightRequestKey(req, 14), { seq: 11, ssid: 0 });
    assert.equal(lightRequestKey(req, 13), undefined);
  });
});

describe('twampy-light.pcap (twampy sender → twampy responder)', () => {
  const cap = loadCapture(fixturePath('conformance', 'twampy-light.pcap'));
  const requests = cap.udp.filter((u) => u.dst.port === 20001);
  const replies = cap.udp.filter((u) => u.src.port === 20001);

  it('holds five 14-octet requests and five 38-octet replies', () => {
    assert.equal(requests.length, 5);
    assert.equal(replies.length, 5);
    for (const r of requests) assert.equal(r.payload.length, 14);
    for (const r of replies) assert.equal(r.payload.length, 38);
  });

  it('requests decode as TWAMP sender packets with Error Estimate 0x3fff (unsynchronised) and re-encode byte-exactly', () => {
    for (const [i, r] of requests.entries()) {
      const p = decodeSenderPacket(r.payload);
      assert.equal(p.seq, i);
      assert.equal(p.errorEstimate, 0x3fff);
      assert.equal(decodeErrorEstimate(p.errorEstimate).synchronized, false);
      const again = Buffer.alloc(14);
      writeSenderPacket(again, p);
      assert.deepEqual(again, r.payload);
    }
  });

  it('our Light reflection of each captured request matches the captured reply in its 38 octets', () => {
    for (const rep of replies) {
      const refl = decodeReflectorPacket(rep.payload);
      assert.equal(refl.length, 38);
      assert.equal(refl.senderTtl, undefined);
      assert.equal(refl.ssid, 0);
      const req = requests.find((q) => decodeSenderPacket(q.payload).seq === refl.senderSeq)!;
      const out = Buffer.alloc(STAMP_BASE_SIZE, 0xee);
      const n = buildLightReflection(req.payload, req.payload.length, out, {
        seq: refl.seq, receiveTimestamp: refl.receiveTimestamp, timestamp: refl.timestamp,
        errorEstimate: refl.errorEstimate, senderTtl: 255,
      });
      assert.equal(n, 44, 'we answer a 14-octet request with the 44-octet STAMP base (RFC 8762 §4.6)');
      assert.deepEqual(out.subarray(0, 38), rep.payload);
      // twampy is stateful per address/port: its seq counts from 0 like ours here.
      assert.equal(refl.seq, refl.senderSeq);
    }
  });
});
