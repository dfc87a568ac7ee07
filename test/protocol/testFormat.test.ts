/**
 * The test-packet format table (src/protocol/testFormat.ts) against the
 * codecs' own constants, against real perfSONAR twping ↔ twampd and twampy
 * captures (test/fixtures/conformance: every field at the offset the table
 * gives, encryption exactly over the range it gives, timestamps the table calls
 * stampable clear on the wire), and the RFC 7750 / RFC 8972 CoS additions.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createDecipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  TEST_FORMATS, testFormat, replyLength, buildReply, packetGuard, decodeReply, writeSenderHeader, decodeSenderHeader,
  buildTwampReply, testSessionKeys, writeCosTlv, readCosValue, reflectTlvs, findAnsweredCos, encodeTlv,
  SENDER_HEADER_SIZE, REFLECTOR_HEADER_SIZE, STAMP_BASE_SIZE, STAMP_AUTH_SIZE, TRUNCATED_REFLECTOR_SIZE, COS_TLV_SIZE,
  TLV_FLAG_U, TLV_FLAG_M, TLV_TYPE_CLASS_OF_SERVICE, TLV_TYPE_EXTRA_PADDING,
  type SecurityMode, type CosReflection, type ReflectionFields,
} from '../../src/protocol/index.js';
import { readTimestamp } from '../../src/protocol/timestamp.js';
import { loadCapture, fixturePath } from '../helpers/pcap.js';

describe('test-packet format table', () => {
  it('holds every protocol × mode (and RFC 7750 for TWAMP), and nothing else', () => {
    assert.deepEqual(TEST_FORMATS.map((f) => f.id).sort(), [
      'stamp/authenticated', 'stamp/open',
      'twamp/authenticated', 'twamp/authenticated+dscp-ecn', 'twamp/encrypted', 'twamp/encrypted+dscp-ecn',
      'twamp/mixed', 'twamp/mixed+dscp-ecn', 'twamp/open', 'twamp/open+dscp-ecn',
    ]);
    assert.throws(() => testFormat('stamp', 'encrypted'), TypeError);
    assert.throws(() => testFormat('stamp', 'mixed'), TypeError);
    assert.throws(() => testFormat('stamp', 'open', { dscpEcn: true }), /Class of Service/);
  });

  it('agrees with the codecs\' sizes (RFC 4656, RFC 5357 erratum 5045, RFC 8762, RFC 7750)', () => {
    const size = (id: string) => TEST_FORMATS.find((f) => f.id === id)!;
    assert.equal(size('twamp/open').sender.size, SENDER_HEADER_SIZE.open);
    assert.equal(size('twamp/open').reflector.size, REFLECTOR_HEADER_SIZE.open);
    assert.equal(size('twamp/authenticated').sender.size, SENDER_HEADER_SIZE.authenticated);
    assert.equal(size('twamp/encrypted').reflector.size, REFLECTOR_HEADER_SIZE.authenticated);
    assert.equal(size('twamp/mixed').reflector.size, 41);
    // RFC 7750: S-DSCP-ECN after Sender TTL; open header 44 (2 MBZ follow), authenticated stays 112.
    assert.deepEqual([size('twamp/open+dscp-ecn').reflector.size, size('twamp/open+dscp-ecn').reflector.sDscpEcn], [44, 41]);
    assert.deepEqual([size('twamp/authenticated+dscp-ecn').reflector.size, size('twamp/authenticated+dscp-ecn').reflector.sDscpEcn], [112, 81]);
    assert.equal(size('twamp/open').reflector.sDscpEcn, undefined);
    assert.equal(size('stamp/open').sender.size, STAMP_BASE_SIZE);
    assert.equal(size('stamp/open').reflector.size, STAMP_BASE_SIZE);
    assert.equal(size('stamp/authenticated').sender.size, STAMP_AUTH_SIZE);
    assert.deepEqual([size('stamp/open').sender.ssid, size('stamp/authenticated').sender.ssid, size('twamp/open').sender.ssid], [14, 26, undefined]);
    assert.equal(size('twamp/open').minReply, TRUNCATED_REFLECTOR_SIZE);
    assert.equal(size('stamp/open').tlvOffset, 44);
    assert.equal(size('twamp/open').tlvOffset, undefined);
  });

  it('says where a timestamp can be written after protection (T1 / T3 outside the covered range)', () => {
    const at = (p: 'twamp' | 'stamp', m: SecurityMode) => [testFormat(p, m).sender.stampOffset, testFormat(p, m).reflector.stampOffset];
    assert.deepEqual(at('twamp', 'open'), [4, 4]);
    assert.deepEqual(at('twamp', 'mixed'), [4, 4]);
    assert.deepEqual(at('twamp', 'authenticated'), [16, 16]); // protection covers octets 0–15 only
    assert.deepEqual(at('twamp', 'encrypted'), [undefined, undefined]); // 0–31 / 0–95 encrypted
    assert.deepEqual(at('stamp', 'open'), [4, 4]);
    assert.deepEqual(at('stamp', 'authenticated'), [undefined, undefined]); // HMAC over 0–95
  });

  it('reply lengths: never above max(request, reflector header); authenticated STAMP keeps the request\'s', () => {
    assert.equal(replyLength(testFormat('twamp'), 14), 41);
    assert.equal(replyLength(testFormat('twamp', 'open', { dscpEcn: true }), 14), 44);
    assert.equal(replyLength(testFormat('twamp', 'authenticated'), 48), 112);
    assert.equal(replyLength(testFormat('stamp'), 14), 44);
    assert.equal(replyLength(testFormat('stamp', 'authenticated'), 200), 200);
    for (const f of TEST_FORMATS) for (const n of [f.sender.size, 300]) assert.ok(replyLength(f, n) <= Math.max(n, f.reflector.size), f.id);
  });
});

// ---------------------------------------------------------------------------
// Against the captures

interface VectorPacket {
  frame: number;
  dir: 'sender->reflector' | 'reflector->sender';
  udp_payload_len: number;
  plain_hex_first64?: string;
  fields: Record<string, unknown>;
}
interface VectorCapture { mode: number; keys?: { test_aes_key: string }; test_packets: VectorPacket[] }
const vectors = JSON.parse(readFileSync(fixturePath('conformance', 'vectors.json'), 'utf8')) as { captures: Record<string, VectorCapture> };
const MODE_NAME: Record<number, SecurityMode> = { 1: 'open', 2: 'authenticated', 4: 'encrypted', 8: 'mixed' };
const tsOf = (f: unknown): bigint => BigInt(`0x${(f as { hex: string }).hex}`);

for (const file of ['open.pcap', 'open-nopad.pcap', 'mixed.pcap', 'authenticated.pcap', 'authenticated-nopad.pcap', 'encrypted.pcap', 'twampy-light.pcap']) {
  const cap = vectors.captures[file]!;
  const fmt = testFormat('twamp', MODE_NAME[cap.mode] ?? 'open');
  it(`${file}: fields at the table's offsets, protection exactly over its range (${fmt.id})`, () => {
    const capture = loadCapture(fixturePath('conformance', file));
    let checked = 0;
    for (const p of cap.test_packets) {
      const wire = capture.udp.find((u) => u.frame === p.frame)!.payload;
      const side = p.dir === 'sender->reflector' ? fmt.sender : fmt.reflector;
      const prot = side.protection;
      // Decrypt with the table's cipher over the table's range only.
      const plain = Buffer.from(wire);
      if (prot.encrypted > 0) {
        const d = createDecipheriv(prot.cipher!, Buffer.from(cap.keys!.test_aes_key, 'hex'), prot.cipher === 'aes-128-ecb' ? null : Buffer.alloc(16));
        d.setAutoPadding(false);
        Buffer.concat([d.update(wire.subarray(0, prot.encrypted)), d.final()]).copy(plain);
        assert.notDeepEqual(plain.subarray(0, prot.encrypted), wire.subarray(0, prot.encrypted), 'the range is encrypted');
      }
      if (p.plain_hex_first64 !== undefined) {
        // The independent decoder's plaintext: our decryption range is exactly right (too short or too long would differ).
        assert.equal(plain.subarray(0, 64).toString('hex'), p.plain_hex_first64, `frame ${p.frame} plaintext`);
      }
      assert.ok(wire.length >= (p.dir === 'sender->reflector' ? side.size : fmt.minReply), `frame ${p.frame} length`);
      const f = p.fields;
      assert.equal(plain.readUInt32BE(side.seq), f['seq']);
      assert.equal(readTimestamp(plain, side.timestamp), tsOf(f['timestamp']));
      if (side.stampOffset !== undefined) {
        // Stampable: the timestamp travels in clear, after the protection was applied.
        assert.deepEqual(wire.subarray(side.stampOffset, side.stampOffset + 8), plain.subarray(side.stampOffset, side.stampOffset + 8));
      }
      if (p.dir === 'reflector->sender') {
        const r = decodeReply(plain, plain.length, fmt);
        assert.equal(r.receiveTimestamp, tsOf(f['receive_timestamp']));
        assert.equal(r.senderSeq, f['sender_seq']);
        assert.equal(r.senderTimestamp, tsOf(f['sender_timestamp']));
        if (f['truncated_at'] === undefined) assert.equal(r.senderTtl, f['sender_ttl']);
        else assert.equal(r.senderTtl, undefined);
        assert.equal(r.sDscpEcn, undefined, 'twampd offers no RFC 7750');
      } else {
        assert.deepEqual(decodeSenderHeader(plain, plain.length, fmt), {
          seq: f['seq'], timestamp: tsOf(f['timestamp']), errorEstimate: parseInt((f['error_estimate'] as { hex: string }).hex, 16), ssid: 0,
        });
      }
      checked++;
    }
    assert.ok(checked >= 10);
  });
}

// ---------------------------------------------------------------------------
// RFC 7750 and the CoS TLV

const FIELDS: ReflectionFields = { seq: 9, receiveTimestamp: 0x1111n << 32n, timestamp: 0x2222n << 32n, errorEstimate: 0x8001, senderTtl: 254 };

describe('RFC 7750 S-DSCP-ECN', () => {
  it('open: the received DS byte at octet 41, two MBZ octets, header 44, padding from the request', () => {
    const f = testFormat('twamp', 'open', { dscpEcn: true });
    const req = Buffer.alloc(60, 0xab);
    writeSenderHeader(req, f, { seq: 3, timestamp: 0x33n, errorEstimate: 1 });
    const out = Buffer.alloc(60);
    const n = buildReply(f, req, 60, out, { ...FIELDS, sDscpEcn: (8 << 2) | 1 });
    assert.equal(n, 60);
    assert.equal(out[41], 0x21);
    assert.deepEqual([out[42], out[43]], [0, 0]);
    assert.deepEqual(out.subarray(44), Buffer.alloc(16, 0xab));
    const r = decodeReply(out, n, f);
    assert.deepEqual([r.senderSeq, r.senderTtl, r.sDscpEcn], [3, 254, 0x21]);
    // Without RFC 7750 the same octet is padding / MBZ and no S-DSCP-ECN is read.
    assert.equal(decodeReply(out, n, testFormat('twamp')).sDscpEcn, undefined);
    // A bare 14-octet request gets the 44-octet header.
    assert.equal(buildReply(f, req, 14, Buffer.alloc(44), FIELDS), 44);
  });

  it('authenticated: at octet 81, inside the encrypted range in encrypted mode, and survives protection', () => {
    const keys = testSessionKeys(Buffer.alloc(16, 1), Buffer.alloc(32, 2), Buffer.alloc(16, 3));
    for (const mode of ['authenticated', 'encrypted'] as const) {
      const f = testFormat('twamp', mode, { dscpEcn: true });
      const g = packetGuard(f, { testKeys: keys });
      const req = Buffer.alloc(48);
      writeSenderHeader(req, f, { seq: 5, timestamp: 0x55n, errorEstimate: 1 });
      const out = Buffer.alloc(112);
      const n = buildTwampReply(req, 48, out, { ...FIELDS, sDscpEcn: 0xb8 }, f);
      assert.equal(out[81], 0xb8);
      g.protectReflector(out, n);
      assert.equal(out[81] === 0xb8, mode === 'authenticated', `${mode}: octet 81 ${mode === 'authenticated' ? 'clear' : 'encrypted'}`);
      assert.ok(g.unprotectReflector(out, n));
      assert.equal(decodeReply(out, n, f).sDscpEcn, 0xb8);
    }
  });

  it('symmetrical size: the padding starts after the 44-octet header (sized from the actual header, not RFC 7750\'s 28 MBZ)', () => {
    const f = testFormat('twamp', 'open', { dscpEcn: true });
    const req = Buffer.alloc(64);
    req.fill(0x77, 44); // octets to reflect after the sender's header + MBZ up to 44
    const out = Buffer.alloc(64);
    buildTwampReply(req, 64, out, FIELDS, f, true);
    assert.deepEqual(out.subarray(44), Buffer.alloc(20, 0x77));
  });
});

describe('RFC 8972 Class of Service TLV', () => {
  const cosReflection = (tos: number, allow: number[] = []): CosReflection => ({
    receivedTos: tos, replyDscp: -1, refused: false, permit: (d1, rx) => d1 === rx || allow.includes(d1),
  });
  const stampRequest = (dscp1: number): Buffer => {
    const f = testFormat('stamp');
    const req = Buffer.alloc(STAMP_BASE_SIZE + COS_TLV_SIZE + 8);
    writeSenderHeader(req, f, { seq: 1, timestamp: 0x10n, errorEstimate: 1, ssid: 0x4242 });
    writeCosTlv(req, STAMP_BASE_SIZE, dscp1);
    req.set(encodeTlv(TLV_TYPE_EXTRA_PADDING, Buffer.alloc(4)), STAMP_BASE_SIZE + COS_TLV_SIZE);
    return req;
  };

  it('the sender writes DSCP1 with U = 1 and RP = 0', () => {
    const req = stampRequest(46);
    assert.deepEqual([req[44], req[45], req.readUInt16BE(46)], [TLV_FLAG_U, TLV_TYPE_CLASS_OF_SERVICE, 4]);
    assert.deepEqual(readCosValue(req, 48), { dscp1: 46, dscp2: 0, ecn: 0, rp: 0 });
    assert.throws(() => writeCosTlv(Buffer.alloc(60), 44, 64), RangeError);
  });

  it('the reflector fills DSCP2 and ECN as received, clears U, and grants DSCP1 when the policy permits it (RP 0)', () => {
    const req = stampRequest(46);
    const cos = cosReflection((8 << 2) | 2, [46]);
    const out = Buffer.alloc(req.length);
    buildReply(testFormat('stamp'), req, req.length, out, FIELDS, { cos });
    assert.equal(out[44]! & TLV_FLAG_U, 0);
    assert.deepEqual(readCosValue(out, 48), { dscp1: 46, dscp2: 8, ecn: 2, rp: 0 });
    assert.deepEqual([cos.replyDscp, cos.refused], [46, false]);
    assert.deepEqual(findAnsweredCos(out, out.length), { dscp1: 46, dscp2: 8, ecn: 2, rp: 0 });
    assert.equal(out.readUInt16BE(14), 0x4242, 'SSID copied');
  });

  it('refused DSCP1: RP = 1 and the reply keeps the received DSCP (RFC 8972 §4.4)', () => {
    const req = stampRequest(46);
    const cos = cosReflection(8 << 2); // arrived as CS1; EF not allowed
    const out = Buffer.alloc(req.length);
    buildReply(testFormat('stamp'), req, req.length, out, FIELDS, { cos });
    assert.deepEqual(readCosValue(out, 48), { dscp1: 46, dscp2: 8, ecn: 0, rp: 1 });
    assert.deepEqual([cos.replyDscp, cos.refused], [8, true]);
    // DSCP1 equal to the received DSCP is always granted.
    const same = cosReflection(46 << 2);
    buildReply(testFormat('stamp'), stampRequest(46), req.length, Buffer.alloc(req.length), FIELDS, { cos: same });
    assert.deepEqual([same.replyDscp, same.refused], [46, false]);
  });

  it('with the received TOS unknown the TLV comes back unprocessed (U = 1): no invented DSCP2', () => {
    const req = stampRequest(46);
    const cos = cosReflection(-1, [46]);
    const out = Buffer.alloc(req.length);
    buildReply(testFormat('stamp'), req, req.length, out, FIELDS, { cos });
    assert.equal(out[44]! & TLV_FLAG_U, TLV_FLAG_U);
    assert.equal(cos.replyDscp, -1);
    assert.equal(findAnsweredCos(out, out.length), undefined);
    // And without a CoS context at all (a reflector that does not know the TLV).
    const plain = Buffer.alloc(req.length);
    buildReply(testFormat('stamp'), req, req.length, plain, FIELDS);
    assert.equal(findAnsweredCos(plain, plain.length), undefined);
  });

  it('a CoS TLV of the wrong length is flagged malformed (M)', () => {
    const req = Buffer.alloc(STAMP_BASE_SIZE + 10);
    req.set(encodeTlv(TLV_TYPE_CLASS_OF_SERVICE, Buffer.alloc(6)), STAMP_BASE_SIZE);
    const cos = cosReflection(0);
    assert.equal(reflectTlvs(req, req.length, STAMP_BASE_SIZE, cos), 1);
    assert.equal(req[44], TLV_FLAG_M);
    assert.equal(cos.replyDscp, -1);
  });
});

describe('packetGuard', () => {
  it('open formats need nothing; protected ones refuse to run without their key', () => {
    assert.ok(packetGuard(testFormat('twamp', 'mixed')).unprotectReflector(Buffer.alloc(41), 41));
    assert.throws(() => packetGuard(testFormat('twamp', 'authenticated')), TypeError);
    assert.throws(() => packetGuard(testFormat('stamp', 'authenticated')), TypeError);
  });

  it('authenticated STAMP: sign and verify over 0–95; a changed T1 fails', () => {
    const f = testFormat('stamp', 'authenticated');
    const g = packetGuard(f, { stampKey: Buffer.from('secret') });
    const pkt = Buffer.alloc(112);
    writeSenderHeader(pkt, f, { seq: 1, timestamp: 7n, errorEstimate: 1, ssid: 3 });
    g.protectSender(pkt, 112);
    assert.ok(g.unprotectSender(pkt, 112));
    pkt[f.sender.timestamp + 7] = 8;
    assert.equal(g.unprotectSender(pkt, 112), false);
  });
});
