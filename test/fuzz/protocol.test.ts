// Property-based fuzzing of every wire decoder and the pure protocol helpers
// . Decoders must return a value or throw DecodeError — never any
// other exception — for random octets, truncations and bit flips of valid
// encodings; valid encodings round-trip byte-exactly. Budget: test/helpers/fuzz.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ServerGreeting, SetupResponse, ServerStart, RequestTwSession, AcceptSession, StartSessions, StartAck, StopSessions,
  DecodeError, clientCommandLength, Command,
  decodeSenderPacket, decodeReflectorPacket, writeSenderPacket, buildReflection, reflectorReplyLength,
  SENDER_HEADER_SIZE, REFLECTOR_HEADER_SIZE, TRUNCATED_REFLECTOR_SIZE, type PacketLayout,
  ntpFromUnixNs, unixNsFromNtp, ntpDiffNs, ntpIntervalFromNs, nsFromNtpInterval, readTimestamp, writeTimestamp,
  encodeErrorEstimate, decodeErrorEstimate, errorEstimateFromSeconds, errorEstimateSeconds,
  parseDscp, dscpName, typePFromDscp, dscpFromTypeP,
  unprotectSenderPacket, unprotectReflectorPacket, protectSenderPacket, protectReflectorPacket, testSessionKeys,
  decryptToken, encryptToken, ControlCipher, type SecurityMode,
} from '../../src/protocol/index.js';
import { check, onlyThrows, bytesAround, mutation, mutate, testTimeout } from '../helpers/fuzz.js';

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u64 = fc.bigInt({ min: 0n, max: 0xffffffffffffffffn });
const octets = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((a) => Buffer.from(a));
/** Offsets a caller might pass: mostly small, sometimes negative or fractional. */
const offsetArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant(0) },
  { weight: 3, arbitrary: fc.integer({ min: -4, max: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom(0.5, Number.NaN, -0, Infinity, 2 ** 40) },
);

interface Codec<T> {
  SIZE: number;
  NAME: string;
  decode(b: Uint8Array, offset?: number): T;
}

/** Decoders with an arbitrary of valid encoder inputs. */
const CONTROL: { codec: Codec<unknown>; encode: (m: never) => Buffer; init: fc.Arbitrary<unknown> }[] = [
  {
    codec: ServerGreeting, encode: ServerGreeting.encode as (m: never) => Buffer,
    init: fc.record({ modes: u32, count: u32, challenge: octets(16), salt: octets(16) }),
  },
  {
    codec: SetupResponse, encode: SetupResponse.encode as (m: never) => Buffer,
    init: fc.record({ mode: u32, keyId: octets(80), token: octets(64), clientIv: octets(16) }),
  },
  {
    codec: ServerStart, encode: ServerStart.encode as (m: never) => Buffer,
    init: fc.record({ accept: u8, serverIv: octets(16), startTime: u64 }),
  },
  {
    codec: AcceptSession, encode: AcceptSession.encode as (m: never) => Buffer,
    init: fc.record({ accept: u8, port: u16, sid: octets(16), reflectedOctets: u16, serverOctets: u16, hmac: octets(16) }),
  },
  {
    codec: StartSessions, encode: StartSessions.encode as (m: never) => Buffer,
    init: fc.record({ hmac: octets(16) }),
  },
  {
    codec: StartAck, encode: StartAck.encode as (m: never) => Buffer,
    init: fc.record({ accept: u8, hmac: octets(16) }),
  },
  {
    codec: StopSessions, encode: StopSessions.encode as (m: never) => Buffer,
    init: fc.record({ accept: u8, numberOfSessions: u32, hmac: octets(16) }),
  },
  {
    codec: RequestTwSession, encode: RequestTwSession.encode as (m: never) => Buffer,
    init: fc.oneof(fc.constant(4 as const), fc.constant(6 as const)).chain((ipvn) => fc.record({
      command: fc.constantFrom(Command.REQUEST_TW_SESSION, Command.REQUEST_TW_MICRO_SESSIONS),
      ipvn: fc.constant(ipvn),
      confSender: u8, confReceiver: u8, numberOfScheduleSlots: u32, numberOfPackets: u32,
      senderPort: u16, receiverPort: u16,
      senderAddress: ipvn === 4 ? fc.ipV4() : fc.ipV6(),
      receiverAddress: ipvn === 4 ? fc.ipV4() : fc.ipV6(),
      sid: octets(16), paddingLength: u32, startTime: u64, timeout: u64, typeP: u32,
      octetsToBeReflected: u16, lengthOfPaddingToReflect: u16, hmac: octets(16),
    })),
  },
];

const LAYOUTS: PacketLayout[] = ['open', 'authenticated'];
const layoutArb = fc.constantFrom<PacketLayout>(...LAYOUTS);

describe('fuzz: TWAMP-Control decoders', { timeout: testTimeout(60_000) }, () => {
  for (const { codec, encode, init } of CONTROL) {
    it(`${codec.NAME}: random octets and offsets → value or DecodeError`, () => {
      check(150, fc.property(bytesAround(codec.SIZE), offsetArb, (bytes, offset) => {
        onlyThrows([DecodeError], () => codec.decode(bytes, offset), codec.NAME);
      }));
    });

    it(`${codec.NAME}: truncations, bit flips and extensions of valid encodings → value or DecodeError`, () => {
      check(150, fc.property(init, mutation(), (msg, m) => {
        const wire = mutate(encode(msg as never), m);
        const out = onlyThrows([DecodeError], () => codec.decode(wire), codec.NAME);
        // A decoder never accepts fewer octets than its message.
        if (wire.length < codec.SIZE) assert.ok(out instanceof DecodeError, `${wire.length} octets decoded`);
      }));
    });

    it(`${codec.NAME}: encode → decode → encode is byte-exact, also at an offset`, () => {
      check(150, fc.property(init, fc.integer({ min: 0, max: 16 }), (msg, at) => {
        const wire = encode(msg as never);
        assert.equal(wire.length, codec.SIZE);
        const again = encode(codec.decode(wire) as never);
        assert.deepEqual(again, wire);
        // Embedded in a larger buffer: decode reads only its own octets.
        const big = Buffer.alloc(at + codec.SIZE + 7, 0xa5);
        wire.copy(big, at);
        assert.deepEqual(encode(codec.decode(big, at) as never), wire);
      }));
    });
  }

  it('Request-TW-Session: decoded fields equal the encoded ones (addresses canonical)', () => {
    const { init } = CONTROL.find((c) => c.codec === RequestTwSession)!;
    check(200, fc.property(init, (msg) => {
      const m = msg as RequestTwSession.RequestTwSession;
      const d = RequestTwSession.decode(RequestTwSession.encode(m));
      const { senderAddress, receiverAddress, ...rest } = m;
      const { senderAddress: ds, receiverAddress: dr, ...drest } = d;
      assert.deepEqual(drest, rest);
      // The textual form may change (RFC 5952 canonical), the address may not.
      for (const [a, b] of [[senderAddress, ds], [receiverAddress, dr]] as const) {
        const one = Buffer.alloc(112);
        const two = Buffer.alloc(112);
        RequestTwSession.encode({ ...m, senderAddress: a }, one);
        RequestTwSession.encode({ ...m, senderAddress: b }, two);
        assert.deepEqual(two, one, `${a} decoded as ${b}`);
      }
    }));
  });

  it('Request-TW-Session: any 112 octets with Command 5/11 and IPVN 4/6 decode', () => {
    check(200, fc.property(octets(112), fc.constantFrom(5, 11), fc.constantFrom(4, 6), u8, (b, cmd, ipvn, hi) => {
      b[0] = cmd;
      b[1] = (hi & 0xf0) | ipvn; // high nibble MBZ, ignored
      const d = RequestTwSession.decode(b);
      assert.equal(d.ipvn, ipvn);
      // Re-encoding reproduces every octet except the MBZ ones.
      const again = RequestTwSession.encode(d);
      assert.equal(again[1], ipvn);
      assert.deepEqual(again.subarray(2, 16), b.subarray(2, 16));
      assert.deepEqual(again.subarray(48, 92), b.subarray(48, 92));
      assert.deepEqual(again.subarray(92, 96), Buffer.alloc(4), 'MBZ octets 92–95 go out as zero');
      assert.deepEqual(again.subarray(96, 112), b.subarray(96, 112));
    }));
  });

  it('clientCommandLength: undefined or a sane length; Start-/Stop-N lengths are exact even for huge N', () => {
    check(300, fc.property(bytesAround(16), fc.constantFrom(undefined, 2, 3, 5, 7, 9, 11), (b, cmd) => {
      if (cmd !== undefined && b.length > 0) b[0] = cmd;
      const len = onlyThrows([DecodeError], () => clientCommandLength(b), 'clientCommandLength');
      if (b.length < 16) { assert.ok(len instanceof DecodeError); return; }
      if (len === undefined) {
        assert.ok(![2, 3, 5, 7, 9, 11].includes(b[0]!), `command ${b[0]} has a known length`);
        return;
      }
      assert.ok(typeof len === 'number' && Number.isSafeInteger(len) && len >= 32 && len % 16 === 0, `length ${String(len)}`);
      if (b[0] === 5 || b[0] === 11) assert.equal(len, 112);
      else if (b[0] === 2 || b[0] === 3) assert.equal(len, 32);
      else {
        const n = Buffer.from(b).readUInt32BE(12);
        // The caller must cap N: the length is exact, never wrapped or negative.
        assert.equal(len, 32 + 16 * n);
        assert.ok(len <= 32 + 16 * 0xffffffff);
      }
    }));
  });
});

describe('fuzz: TWAMP-Test packets', { timeout: testTimeout(60_000) }, () => {
  it('decodeSenderPacket / decodeReflectorPacket: random octets and lengths → value or DecodeError', () => {
    const lengthArb = (n: number) => fc.oneof(fc.constant(n), fc.integer({ min: -2, max: n + 4 }), fc.constantFrom(0.5, Number.NaN, Infinity));
    check(300, fc.property(
      fc.uint8Array({ maxLength: 260 }).chain((b) => fc.tuple(fc.constant(b), lengthArb(b.length))), layoutArb,
      ([bytes, length], layout) => {
        const s = onlyThrows([DecodeError], () => decodeSenderPacket(bytes, length, layout), 'sender');
        if (!(s instanceof DecodeError)) assert.ok(length >= SENDER_HEADER_SIZE[layout] && length <= bytes.length);
        const r = onlyThrows([DecodeError], () => decodeReflectorPacket(bytes, length, layout), 'reflector');
        if (!(r instanceof DecodeError)) {
          const min = layout === 'open' ? TRUNCATED_REFLECTOR_SIZE : REFLECTOR_HEADER_SIZE[layout];
          assert.ok(length >= min && length <= bytes.length);
        }
      },
    ));
  });

  it('decodeReflectorPacket: every open length ≥ 38 decodes; Sender TTL only from the full header', () => {
    check(300, fc.property(fc.integer({ min: TRUNCATED_REFLECTOR_SIZE, max: 300 }).chain((n) => octets(n)), (b) => {
      const r = decodeReflectorPacket(b);
      assert.equal(r.length, b.length);
      assert.equal(r.senderTtl, b.length >= REFLECTOR_HEADER_SIZE.open ? b[40] : undefined);
      assert.equal(r.senderSeq, b.readUInt32BE(24));
      assert.equal(r.senderErrorEstimate, b.readUInt16BE(36));
    }));
  });

  it('writeSenderPacket → decodeSenderPacket round trip, padding untouched', () => {
    check(300, fc.property(layoutArb, u32, u64, u16, fc.nat({ max: 64 }), (layout, seq, timestamp, errorEstimate, pad) => {
      const size = SENDER_HEADER_SIZE[layout] + pad;
      const b = Buffer.alloc(size, 0x5a);
      writeSenderPacket(b, { seq, timestamp, errorEstimate }, layout);
      assert.deepEqual(decodeSenderPacket(b, size, layout), { seq, timestamp, errorEstimate });
      assert.ok(b.subarray(SENDER_HEADER_SIZE[layout]).every((x) => x === 0x5a));
    }));
  });

  const fieldsArb = fc.record({ seq: u32, receiveTimestamp: u64, timestamp: u64, errorEstimate: u16, senderTtl: u8 });

  it('buildReflection: never writes past reflectorReplyLength, copies the sender fields (any request ≥ header)', () => {
    check(400, fc.property(
      layoutArb, fc.integer({ min: 0, max: 200 }), fieldsArb, fc.nat({ max: 32 }), fc.boolean(),
      (layout, extra, f, slack, inPlace) => {
        const reqLen = SENDER_HEADER_SIZE[layout] + extra;
        const replyLen = reflectorReplyLength(reqLen, layout);
        const request = Buffer.alloc(Math.max(reqLen, inPlace ? replyLen + slack : 0));
        for (let i = 0; i < request.length; i++) request[i] = (i * 7 + 3) & 0xff;
        const original = Buffer.from(request);
        const out = inPlace ? request : Buffer.alloc(replyLen + slack, 0xee);
        const canary = Buffer.from(out.subarray(replyLen));
        const n = buildReflection(request, reqLen, out, f, layout);
        assert.equal(n, replyLen);
        assert.equal(n, Math.max(reqLen, REFLECTOR_HEADER_SIZE[layout]));
        assert.deepEqual(out.subarray(replyLen), canary, 'octets past the reply were written');
        const sender = decodeSenderPacket(original, reqLen, layout);
        const r = decodeReflectorPacket(out, n, layout);
        assert.equal(r.senderSeq, sender.seq);
        assert.equal(r.senderTimestamp, sender.timestamp);
        assert.equal(r.senderErrorEstimate, sender.errorEstimate);
        assert.equal(r.seq, f.seq);
        assert.equal(r.timestamp, f.timestamp);
        assert.equal(r.receiveTimestamp, f.receiveTimestamp);
        assert.equal(r.errorEstimate, f.errorEstimate);
        assert.equal(r.senderTtl, f.senderTtl);
        // Padding: the request's, highest-numbered octets dropped.
        const pad = n - REFLECTOR_HEADER_SIZE[layout];
        const senderSize = SENDER_HEADER_SIZE[layout];
        assert.deepEqual(out.subarray(REFLECTOR_HEADER_SIZE[layout], n), original.subarray(senderSize, senderSize + pad));
      },
    ));
  });

  it('buildReflection: requests shorter than the sender header → DecodeError', () => {
    check(100, fc.property(layoutArb, fc.integer({ min: -3, max: 47 }), fieldsArb, (layout, len, f) => {
      fc.pre(len < SENDER_HEADER_SIZE[layout]);
      const out = Buffer.alloc(200);
      assert.throws(() => buildReflection(Buffer.alloc(Math.max(0, len)), len, out, f, layout), DecodeError);
    }));
  });
});

describe('fuzz: timestamps, Error Estimate, DSCP', { timeout: testTimeout(60_000) }, () => {
  const NS = 1_000_000_000n;
  const HALF_ERA_NS = (1n << 31n) * NS;

  it('ntpFromUnixNs → unixNsFromNtp is exact within ±68 years of the pivot', () => {
    const pivotArb = fc.bigInt({ min: -(1n << 62n), max: 1n << 62n });
    check(500, fc.property(pivotArb, fc.bigInt({ min: -HALF_ERA_NS + NS, max: HALF_ERA_NS - NS }), (pivot, delta) => {
      const unixNs = pivot + delta;
      const ts = ntpFromUnixNs(unixNs);
      assert.ok(ts >= 0n && ts <= 0xffffffffffffffffn);
      assert.equal(unixNsFromNtp(ts, pivot), unixNs);
    }));
  });

  it('unixNsFromNtp → ntpFromUnixNs is within one nanosecond for any 64-bit timestamp', () => {
    check(500, fc.property(u64, fc.bigInt({ min: -(1n << 62n), max: 1n << 62n }), (ts, pivot) => {
      const back = ntpFromUnixNs(unixNsFromNtp(ts, pivot));
      const d = ntpDiffNs(back, ts);
      assert.ok(d >= -1n && d <= 1n, `diff ${d} ns`);
    }));
  });

  it('ntpDiffNs is antisymmetric and matches the ns difference', () => {
    // a − b ≡ 2^63 (mod 2^64) is excluded here: see the next test.
    check(500, fc.property(u64, u64, (a, b) => {
      fc.pre(BigInt.asUintN(64, a - b) !== 1n << 63n);
      assert.equal(ntpDiffNs(a, b), -ntpDiffNs(b, a));
      assert.equal(ntpDiffNs(a, a), 0n);
    }));
    check(300, fc.property(fc.bigInt({ min: -(1n << 60n), max: 1n << 60n }), fc.bigInt({ min: -HALF_ERA_NS + NS, max: HALF_ERA_NS - NS }), (x, d) => {
      const diff = ntpDiffNs(ntpFromUnixNs(x + d), ntpFromUnixNs(x));
      assert.ok(diff - d >= -1n && diff - d <= 1n, `${diff} vs ${d}`);
    }));
  });

  it('ntpDiffNs exactly half the 64-bit range apart: ambiguous, both orders the negative extreme (as documented)', () => {
    const a = 0n;
    const b = 1n << 63n;
    assert.equal(ntpDiffNs(a, b), ntpDiffNs(b, a));
    assert.ok(ntpDiffNs(a, b) < 0n);
  });

  it('NTP intervals: ns → interval → ns is exact; any u64 interval converts back within 1 unit', () => {
    check(300, fc.property(fc.bigInt({ min: 0n, max: (1n << 32n) * NS - NS }), (ns) => {
      assert.equal(nsFromNtpInterval(ntpIntervalFromNs(ns)), ns);
    }));
    check(300, fc.property(u64, (i) => {
      const ns = nsFromNtpInterval(i);
      const back = onlyThrows([RangeError], () => ntpIntervalFromNs(ns));
      if (back instanceof RangeError) return; // rounding up past 2^64 − 1 units
      const d = (back as bigint) - i;
      assert.ok(d >= -3n && d <= 3n);
    }));
  });

  it('readTimestamp/writeTimestamp round trip at any in-range offset; RangeError outside', () => {
    check(300, fc.property(u64, fc.integer({ min: -2, max: 20 }), fc.integer({ min: 0, max: 24 }), (ts, off, size) => {
      const b = Buffer.alloc(size);
      const w = onlyThrows([RangeError], () => writeTimestamp(b, off, ts));
      if (w instanceof RangeError) { assert.ok(off < 0 || off + 8 > size); return; }
      assert.equal(readTimestamp(b, off), ts);
    }));
  });

  it('Error Estimate: encode ↔ decode round trip for every valid field and every 16-bit value', () => {
    check(300, fc.property(fc.record({ synchronized: fc.boolean(), z: fc.boolean(), scale: fc.integer({ min: 0, max: 63 }), multiplier: fc.integer({ min: 1, max: 255 }) }), (e) => {
      assert.deepEqual(decodeErrorEstimate(encodeErrorEstimate(e)), { ...e });
    }));
    check(300, fc.property(u16, (v) => {
      const e = decodeErrorEstimate(v);
      if (e.multiplier === 0) assert.throws(() => encodeErrorEstimate(e), RangeError);
      else assert.equal(encodeErrorEstimate(e), v);
    }));
  });

  it('errorEstimateFromSeconds: never Multiplier 0, never understates, for any non-negative finite seconds', () => {
    const secondsArb = fc.oneof(
      fc.double({ min: 0, max: Number.MAX_VALUE, noNaN: true }),
      fc.double({ min: 0, max: 1e-6, noNaN: true }),
      fc.double({ min: 0, max: 1e4, noNaN: true }),
      fc.constantFrom(0, -0, Number.MIN_VALUE, 2 ** -32, 2 ** -33, 255 * 2 ** 31, 255 * 2 ** 31 + 1),
    );
    check(500, fc.property(secondsArb, fc.boolean(), (s, sync) => {
      const v = errorEstimateFromSeconds(s, sync);
      assert.ok(Number.isInteger(v) && v >= 0 && v <= 0xffff);
      const e = decodeErrorEstimate(v);
      assert.notEqual(e.multiplier, 0, `${s} s → 0x${v.toString(16)}`);
      assert.equal(e.synchronized, sync);
      assert.equal(e.z, false);
      const max = 255 * 2 ** 31;
      assert.ok(errorEstimateSeconds(v) >= Math.min(s, max), `${s} s understated as ${errorEstimateSeconds(v)}`);
    }));
  });

  it('parseDscp never throws and returns undefined or 0..63 for any string, number or value', () => {
    const tokens = fc.constantFrom('be', 'ef', 'cs', 'af', 'cp', 'nc', '0', '1', '4', '6', '9', ' ', '\t', 'E', 'F', '+', '-', '.', 'x', '\u0130');
    const dscpish = fc.array(tokens, { maxLength: 6 }).map((a) => a.join(''));
    check(500, fc.property(fc.oneof(fc.string(), dscpish, fc.double(), fc.integer(), fc.anything()), (v) => {
      const d = parseDscp(v as string | number);
      assert.ok(d === undefined || (Number.isInteger(d) && d >= 0 && d <= 63), `${fc.stringify(v)} → ${String(d)}`);
    }));
    check(64, fc.property(fc.integer({ min: 0, max: 63 }), (d) => {
      assert.equal(parseDscp(dscpName(d)), d);
      assert.equal(parseDscp(`CP${d}`), d);
      assert.equal(dscpFromTypeP(typePFromDscp(d)), d);
    }));
  });
});

describe('fuzz: crypto', { timeout: testTimeout(60_000) }, () => {
  const modeArb = fc.constantFrom<SecurityMode>('open', 'authenticated', 'encrypted', 'mixed');
  const keysArb = fc.tuple(octets(16), octets(32), octets(16)).map(([a, h, sid]) => testSessionKeys(a, h, sid));

  it('unprotect*Packet of random octets with random keys → boolean or DecodeError, never a crash', () => {
    const lengthArb = (n: number) => fc.oneof(fc.constant(n), fc.integer({ min: -2, max: n + 4 }), fc.constantFrom(0.5, Number.NaN));
    check(200, fc.property(
      keysArb, modeArb, fc.uint8Array({ maxLength: 200 }).chain((b) => fc.tuple(fc.constant(b), lengthArb(b.length))),
      (keys, mode, [bytes, length]) => {
        for (const [fn, name] of [[unprotectSenderPacket, 'sender'], [unprotectReflectorPacket, 'reflector']] as const) {
          const buf = Buffer.from(bytes);
          const r = onlyThrows([DecodeError], () => fn(buf, length, keys, mode), name);
          assert.ok(typeof r === 'boolean' || r instanceof DecodeError);
          if (mode === 'open' || mode === 'mixed') assert.equal(r, true);
          // A forged HMAC on random octets (2^-128) is never expected.
          else if (typeof r === 'boolean') assert.equal(r, false, `${name}: random octets verified`);
        }
      },
    ));
  });

  it('protect → unprotect round trip; a flipped protected bit fails the HMAC', () => {
    check(150, fc.property(
      keysArb, fc.constantFrom<SecurityMode>('authenticated', 'encrypted'), fc.boolean(), fc.nat({ max: 40 }), fc.nat(),
      octets(112 + 40),
      (keys, mode, reflector, pad, bit, content) => {
        const protect = reflector ? protectReflectorPacket : protectSenderPacket;
        const unprotect = reflector ? unprotectReflectorPacket : unprotectSenderPacket;
        const hmacAt = reflector ? 96 : 32;
        const len = hmacAt + 16 + pad;
        const buf = Buffer.from(content.subarray(0, len));
        const plain = Buffer.from(buf);
        protect(buf, len, keys, mode);
        const wire = Buffer.from(buf);
        assert.equal(unprotect(buf, len, keys, mode), true);
        const covered = mode === 'authenticated' ? 16 : hmacAt;
        assert.deepEqual(buf.subarray(0, covered), plain.subarray(0, covered));
        const flipped = Buffer.from(wire);
        const at = bit % (covered + 16);
        flipped[at < covered ? at : hmacAt + (at - covered)]! ^= 1 << (bit & 7);
        assert.equal(unprotect(flipped, len, keys, mode), false);
      },
    ));
  });

  it('decryptToken of any 64 octets with any key returns contents; encryptToken inverts it', () => {
    check(200, fc.property(octets(64), octets(16), (token, dk) => {
      const t = decryptToken(token, dk);
      assert.equal(t.challenge.length + t.aesSessionKey.length + t.hmacKey.length, 64);
      assert.deepEqual(encryptToken(t, dk), token);
    }));
  });

  it('ControlCipher: random ciphertext decrypts and fails the HMAC; real messages verify; flips fail', () => {
    const cmdArb = fc.array(fc.integer({ min: 1, max: 7 }).chain((blocks) => octets(16 * blocks)), { minLength: 1, maxLength: 4 });
    check(150, fc.property(
      octets(16), octets(16), octets(32), fc.constantFrom('authenticated' as const, 'encrypted' as const, 'mixed' as const),
      cmdArb, fc.uint8Array({ maxLength: 96 }), fc.nat(),
      (key, iv, hmacKey, mode, messages, junk, bit) => {
        // Random octets, any length: whole blocks decrypt, partial blocks are a RangeError (programming error).
        const rx0 = new ControlCipher(key, iv, hmacKey, mode);
        const r = onlyThrows([RangeError], () => rx0.decrypt(junk));
        if (junk.length % 16 !== 0) assert.ok(r instanceof RangeError);
        else if (junk.length >= 16) assert.equal(rx0.verifyHmac(r as Buffer), false);

        const tx = new ControlCipher(key, iv, hmacKey, mode);
        const rx = new ControlCipher(key, iv, hmacKey, mode);
        const wires = messages.map((m) => tx.encrypt(Buffer.from(m)));
        const last = wires.length - 1;
        wires.forEach((w, i) => {
          const wire = Buffer.from(w);
          if (i === last) wire[bit % wire.length]! ^= 1 << (bit & 7);
          const plain = rx.decrypt(wire);
          assert.equal(rx.verifyHmac(plain), i !== last, `message ${i}`);
        });
      },
    ));
  });

  it('ControlCipher.decryptServerStart: any 48 octets with the right IV decode; Accept ≠ 0 is passed through', () => {
    check(150, fc.property(octets(16), octets(16), octets(32), octets(48), (key, iv, hmacKey, wire) => {
      iv.copy(wire, 16);
      const rx = new ControlCipher(key, iv, hmacKey, 'authenticated');
      const out = rx.decryptServerStart(wire);
      assert.equal(out.length, 48);
      assert.deepEqual(out.subarray(0, 32), wire.subarray(0, 32));
      if (wire[15] !== 0) assert.deepEqual(out, wire);
      assert.ok(ServerStart.decode(out));
    }));
  });
});
