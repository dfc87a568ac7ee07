import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  Accept,
  AcceptSession,
  Command,
  DEFAULT_CONTROL_PORT,
  DecodeError,
  Mode,
  RequestTwSession,
  ServerGreeting,
  ServerStart,
  SetupResponse,
  StartAck,
  StartSessions,
  StopSessions,
  acceptDescription,
  clientCommandLength,
  ntpIntervalFromNs,
  typePFromDscp,
} from '../../src/protocol/index.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const zeros = (n: number): string => '00'.repeat(n);
const seqHex = (from: number, n: number): string =>
  Array.from({ length: n }, (_, i) => (from + i).toString(16).padStart(2, '0')).join('');

/** A codec module as exported under its namespace. */
interface Codec {
  SIZE: number;
  NAME: string;
  decode(buf: Uint8Array, offset?: number): unknown;
  encode(msg: never, buf?: Buffer, offset?: number): Buffer;
}

const encodeAny = (c: Codec, msg: unknown, buf?: Buffer, offset?: number): Buffer =>
  (c.encode as (m: unknown, b?: Buffer, o?: number) => Buffer)(msg, buf, offset);

/** Known-bytes fixtures: Gufo Agent's codec tests. */
const GUFO = {
  serverGreeting: {
    codec: ServerGreeting as Codec,
    bytes: hex(zeros(12) + '00000001' + '246ae2532f51823ddddbb0a4d83ac19a' + '923115a3bf901a572ddf28e8bda781d6' + '00000400' + zeros(12)),
    msg: {
      modes: 1,
      challenge: hex('246ae2532f51823ddddbb0a4d83ac19a'),
      salt: hex('923115a3bf901a572ddf28e8bda781d6'),
      count: 1024,
    },
    mbz: [[0, 12], [52, 64]],
  },
  setupResponse: {
    codec: SetupResponse as Codec,
    bytes: hex('00000001' + Buffer.from('test-key').toString('hex') + zeros(72) + seqHex(0, 64) + seqHex(0x80, 15) + '08'),
    msg: {
      mode: 1,
      keyId: SetupResponse.keyIdFromString('test-key'),
      token: hex(seqHex(0, 64)),
      clientIv: hex(seqHex(0x80, 15) + '08'),
    },
    mbz: [],
  },
  serverStart: {
    codec: ServerStart as Codec,
    bytes: hex(zeros(15) + '00' + seqHex(0, 16) + 'e3d0d02000000000' + zeros(8)),
    msg: { accept: 0, serverIv: hex(seqHex(0, 16)), startTime: 0xe3d0d02000000000n },
    mbz: [[0, 15], [40, 48]],
  },
  requestTwSession: {
    codec: RequestTwSession as Codec,
    bytes: hex(
      '0504 0000' + zeros(4) + zeros(4) + '0000 0000' + zeros(16) + zeros(16) + zeros(16) +
        '00000000' + 'e3d0d02000000000' + '00000000000000ff' + '0000002e' + zeros(8) + zeros(16),
    ),
    msg: {
      command: 5,
      ipvn: 4,
      confSender: 0,
      confReceiver: 0,
      numberOfScheduleSlots: 0,
      numberOfPackets: 0,
      senderPort: 0,
      receiverPort: 0,
      senderAddress: '0.0.0.0',
      receiverAddress: '0.0.0.0',
      sid: Buffer.alloc(16),
      paddingLength: 0,
      startTime: 0xe3d0d02000000000n,
      timeout: 255n, // Gufo's raw 255 (≈ 59 ns), kept as a byte vector
      typeP: 0x2e, // Gufo puts the DSCP in the last octet; see dscp.test.ts
      octetsToBeReflected: 0,
      lengthOfPaddingToReflect: 0,
      hmac: Buffer.alloc(16),
    },
    // Octet 1 high nibble is handled separately; IPv4 address tails; 92–95.
    mbz: [[20, 32], [36, 48], [92, 96]],
  },
  acceptSession: {
    codec: AcceptSession as Codec,
    bytes: hex('00 00 bb80' + zeros(44)),
    msg: { accept: 0, port: 48000, sid: Buffer.alloc(16), reflectedOctets: 0, serverOctets: 0, hmac: Buffer.alloc(16) },
    mbz: [[1, 2], [24, 32]],
  },
  startSessions: {
    codec: StartSessions as Codec,
    bytes: hex('02' + zeros(31)),
    msg: { hmac: Buffer.alloc(16) },
    mbz: [[1, 16]],
  },
  startAck: {
    codec: StartAck as Codec,
    bytes: hex('00' + zeros(31)),
    msg: { accept: 0, hmac: Buffer.alloc(16) },
    mbz: [[1, 16]],
  },
  stopSessions: {
    codec: StopSessions as Codec,
    bytes: hex('03 00 0000 00000001' + zeros(24)),
    msg: { accept: 0, numberOfSessions: 1, hmac: Buffer.alloc(16) },
    mbz: [[2, 4], [8, 16]],
  },
} as const;

describe('TWAMP-Control messages: Gufo Agent byte vectors', () => {
  for (const [name, v] of Object.entries(GUFO)) {
    it(`${name}: size, decode and re-encode are byte-exact`, () => {
      assert.equal(v.bytes.length, v.codec.SIZE);
      assert.deepEqual(v.codec.decode(v.bytes), v.msg);
      assert.deepEqual(encodeAny(v.codec, v.msg), v.bytes);
    });

    it(`${name}: throws DecodeError on every truncation`, () => {
      for (let len = 0; len < v.codec.SIZE; len++) {
        assert.throws(
          () => v.codec.decode(v.bytes.subarray(0, len)),
          (e: unknown) => e instanceof DecodeError && e.messageName === v.codec.NAME,
          `length ${len}`,
        );
      }
      assert.throws(() => v.codec.decode(v.bytes, 1), DecodeError);
      assert.throws(() => v.codec.decode(v.bytes, -1), DecodeError);
    });

    it(`${name}: ignores MBZ octets set to 0xFF`, () => {
      const dirty = Buffer.from(v.bytes);
      for (const [from, to] of v.mbz) dirty.fill(0xff, from, to);
      if (v.codec === (RequestTwSession as Codec)) dirty[1] = 0xf4; // MBZ nibble
      assert.deepEqual(v.codec.decode(dirty), v.msg);
      // Encoding zeroes them again, even into a dirty caller buffer.
      const target = Buffer.alloc(v.codec.SIZE + 8, 0xee);
      const out = encodeAny(v.codec, v.msg, target, 4);
      assert.equal(out, target);
      assert.deepEqual(target.subarray(4, 4 + v.codec.SIZE), v.bytes);
      assert.deepEqual(target.subarray(0, 4), Buffer.alloc(4, 0xee));
      assert.deepEqual(target.subarray(4 + v.codec.SIZE), Buffer.alloc(4, 0xee));
    });

    it(`${name}: decodes at an offset into copies that do not alias the input`, () => {
      const framed = Buffer.concat([Buffer.alloc(3, 0x55), v.bytes, Buffer.alloc(2, 0x55)]);
      const decoded = v.codec.decode(framed, 3);
      assert.deepEqual(decoded, v.msg);
      framed.fill(0x77);
      assert.deepEqual(decoded, v.msg);
    });

    it(`${name}: encoder rejects a buffer without room`, () => {
      assert.throws(() => encodeAny(v.codec, v.msg, Buffer.alloc(v.codec.SIZE), 1), RangeError);
    });
  }

  it('all decoders throw only DecodeError on random input', () => {
    let seed = 12345;
    const rnd = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 16;
    };
    for (const v of Object.values(GUFO)) {
      for (let i = 0; i < 300; i++) {
        const buf = Buffer.alloc(rnd() % (v.codec.SIZE + 8));
        for (let j = 0; j < buf.length; j++) buf[j] = rnd() & 0xff;
        if (i % 3 === 0 && buf.length > 0) buf[0] = [2, 3, 5, 11][i % 4]!;
        if (i % 2 === 0 && buf.length > 1) buf[1] = (buf[1]! & 0xf0) | (i % 4 === 0 ? 4 : 6);
        try {
          v.codec.decode(buf);
        } catch (e) {
          assert.ok(e instanceof DecodeError, `${v.codec.NAME}: ${String(e)}`);
        }
      }
    }
  });
});

/**
 * Authenticated session captured from twampd/twping (test/fixtures/conformance).
 * The clear parts are used directly; the encrypted parts come from the
 * digest's decrypted streams.
 */
describe('TWAMP-Control messages: captured authenticated session', () => {
  const serverStream = hex(`
    00000000000000000000000000000007dc57ceaf63b506462bc0545b46d0d0f2
    c6e78cdc0e7636dd53d5dd1627790ca200000800000000000000000000000000
    0000000000000000000000000000000073859563f14f887e42ed4132637a2072`);
  const serverDecrypted = hex(`
    eeada3d1fa1a932900000000000000000000496b7f000001eeada3d749b59578
    585a482a000000000000000000000000a77640c239354f76c5ae375950975e8d
    00000000000000000000000000000000c0d2e16524cb12e0b5b1729a5ae40525`);
  const clientSetup = hex(`
    0000000274657374757365720000000000000000000000000000000000000000
    0000000000000000000000000000000000000000000000000000000000000000
    00000000000000000000000000000000000000008add70a6ebb2b8fded376e14
    4aa32917716ff5e1b2c2ed95a53f6127b5f2ee760123f26d153ef8a87ea60167
    c8f19068d765541388b2f455945ce245a273e87fbc32a03c58dc0752e048449e
    dac49a45`);
  const clientDecrypted = hex(`
    050400000000000000000000499449947f000001000000000000000000000000
    7f00000100000000000000000000000000000000000000000000000000000000
    00000040eeada3d84b52652600000002008f96e1000000000000000000000000
    dd70ee6cc2fc05802587bdb30f30567902000000000000000000000000000000
    a0b28f6760d58b46031450bfa860c94f03000000000000010000000000000000
    adb1fdf950f77bfc1f8fc91a9e5f85b9`);

  it('Server-Greeting', () => {
    const g = ServerGreeting.decode(serverStream, 0);
    assert.deepEqual(g, {
      modes: Mode.UNAUTHENTICATED | Mode.AUTHENTICATED | Mode.ENCRYPTED,
      challenge: hex('dc57ceaf63b506462bc0545b46d0d0f2'),
      salt: hex('c6e78cdc0e7636dd53d5dd1627790ca2'),
      count: 2048,
    });
    assert.deepEqual(ServerGreeting.encode(g), serverStream.subarray(0, 64));
  });

  it('Set-Up-Response with KeyID testuser', () => {
    assert.equal(clientSetup.length, SetupResponse.SIZE);
    const r = SetupResponse.decode(clientSetup);
    assert.equal(r.mode, Mode.AUTHENTICATED);
    assert.equal(SetupResponse.keyIdToString(r.keyId), 'testuser');
    assert.deepEqual(r.keyId, SetupResponse.keyIdFromString('testuser'));
    assert.deepEqual(r.clientIv, hex('bc32a03c58dc0752e048449edac49a45'));
    assert.equal(r.token.toString('hex').slice(0, 16), '8add70a6ebb2b8fd');
    assert.deepEqual(SetupResponse.encode(r), clientSetup);
  });

  it('Server-Start (clear octets 0–31 + decrypted Start-Time block)', () => {
    const plain = Buffer.concat([serverStream.subarray(64, 96), serverDecrypted.subarray(0, 16)]);
    const s = ServerStart.decode(plain);
    assert.deepEqual(s, {
      accept: 0,
      serverIv: hex('73859563f14f887e42ed4132637a2072'),
      startTime: 0xeeada3d1fa1a9329n,
    });
    assert.deepEqual(ServerStart.encode(s), plain);
  });

  it('Request-TW-Session (decrypted)', () => {
    const bytes = clientDecrypted.subarray(0, 112);
    const r = RequestTwSession.decode(bytes);
    assert.deepEqual(r, {
      command: 5,
      ipvn: 4,
      confSender: 0,
      confReceiver: 0,
      numberOfScheduleSlots: 0,
      numberOfPackets: 0,
      senderPort: 18836,
      receiverPort: 18836,
      senderAddress: '127.0.0.1',
      receiverAddress: '127.0.0.1',
      sid: Buffer.alloc(16),
      paddingLength: 64,
      startTime: 0xeeada3d84b526526n,
      timeout: 0x00000002008f96e1n,
      typeP: 0,
      octetsToBeReflected: 0,
      lengthOfPaddingToReflect: 0,
      hmac: hex('dd70ee6cc2fc05802587bdb30f305679'),
    });
    assert.deepEqual(RequestTwSession.encode(r), bytes);
  });

  it('Accept-Session (decrypted): port 18795 and the server-assigned SID', () => {
    const bytes = serverDecrypted.subarray(16, 64);
    const a = AcceptSession.decode(bytes);
    assert.deepEqual(a, {
      accept: 0,
      port: 18795,
      sid: hex('7f000001eeada3d749b59578585a482a'),
      reflectedOctets: 0,
      serverOctets: 0,
      hmac: hex('a77640c239354f76c5ae375950975e8d'),
    });
    assert.deepEqual(AcceptSession.encode(a), bytes);
  });

  it('Start-Sessions, Start-Ack, Stop-Sessions (decrypted)', () => {
    const start = clientDecrypted.subarray(112, 144);
    assert.deepEqual(StartSessions.decode(start), { hmac: hex('a0b28f6760d58b46031450bfa860c94f') });
    assert.deepEqual(StartSessions.encode(StartSessions.decode(start)), start);
    const ack = serverDecrypted.subarray(64, 96);
    assert.deepEqual(StartAck.decode(ack), { accept: 0, hmac: hex('c0d2e16524cb12e0b5b1729a5ae40525') });
    assert.deepEqual(StartAck.encode(StartAck.decode(ack)), ack);
    const stop = clientDecrypted.subarray(144, 176);
    assert.deepEqual(StopSessions.decode(stop), {
      accept: 0,
      numberOfSessions: 1,
      hmac: hex('adb1fdf950f77bfc1f8fc91a9e5f85b9'),
    });
    assert.deepEqual(StopSessions.encode(StopSessions.decode(stop)), stop);
  });

  it('frames the decrypted client stream by its first blocks', () => {
    let o = 0;
    const lengths: number[] = [];
    while (o < clientDecrypted.length) {
      const len = clientCommandLength(clientDecrypted.subarray(o, o + 16));
      assert.ok(len !== undefined);
      lengths.push(len);
      o += len;
    }
    assert.deepEqual(lengths, [112, 32, 32]);
  });
});

describe('Request-TW-Session specifics', () => {
  const base: RequestTwSession.RequestTwSessionInit = {
    ipvn: 4,
    senderPort: 9583,
    receiverPort: 9584,
    senderAddress: '192.0.2.1',
    receiverAddress: '198.51.100.7',
    paddingLength: 27,
    startTime: 0n,
    timeout: ntpIntervalFromNs(2_000_000_000n),
    typeP: typePFromDscp(46),
  };

  it('fills defaults and writes Type-P for EF as 0x2E000000', () => {
    const bytes = RequestTwSession.encode(base);
    assert.equal(bytes.length, 112);
    assert.equal(bytes[0], Command.REQUEST_TW_SESSION);
    assert.equal(bytes.subarray(84, 88).toString('hex'), '2e000000');
    assert.equal(bytes.subarray(16, 32).toString('hex'), 'c0000201' + zeros(12));
    assert.equal(bytes.subarray(76, 84).toString('hex'), '0000000200000000');
    const d = RequestTwSession.decode(bytes);
    assert.equal(d.command, 5);
    assert.equal(d.confSender, 0);
    assert.deepEqual(d.sid, Buffer.alloc(16));
    assert.equal(d.receiverAddress, '198.51.100.7');
  });

  it('encodes IPv6 addresses in full and decodes them in RFC 5952 form', () => {
    const bytes = RequestTwSession.encode({ ...base, ipvn: 6, senderAddress: '2001:DB8:0:0:0:0:0:1', receiverAddress: '::' });
    assert.equal(bytes[1], 6);
    assert.equal(bytes.subarray(16, 32).toString('hex'), '20010db8000000000000000000000001');
    assert.equal(bytes.subarray(32, 48).toString('hex'), zeros(16));
    const d = RequestTwSession.decode(bytes);
    assert.equal(d.senderAddress, '2001:db8::1');
    assert.equal(d.receiverAddress, '::');
    for (const a of ['fe80::1:0:0:2', '1:0:0:2::3', '::ffff:192.0.2.1', '1::', '2001:db8:0:1:1:1:1:1']) {
      const rt = RequestTwSession.decode(RequestTwSession.encode({ ...base, ipvn: 6, senderAddress: a, receiverAddress: a }));
      assert.equal(rt.senderAddress, a);
    }
    // RFC 5952 §4.2.3: the first of equal-length zero runs is compressed.
    const eq = RequestTwSession.decode(RequestTwSession.encode({ ...base, ipvn: 6, senderAddress: '1:0:0:2:0:0:3:4', receiverAddress: '::' }));
    assert.equal(eq.senderAddress, '1::2:0:0:3:4');
  });

  it('decodes all-zero addresses as 0.0.0.0 / ::', () => {
    const v4 = RequestTwSession.decode(RequestTwSession.encode({ ...base, senderAddress: '0.0.0.0', receiverAddress: '0.0.0.0' }));
    assert.equal(v4.senderAddress, '0.0.0.0');
    const bytes = RequestTwSession.encode(base);
    bytes[1] = 6;
    bytes.fill(0, 16, 48);
    assert.equal(RequestTwSession.decode(bytes).receiverAddress, '::');
  });

  it('rejects mismatched or malformed addresses on encode', () => {
    assert.throws(() => RequestTwSession.encode({ ...base, senderAddress: '::1' }), RangeError);
    assert.throws(() => RequestTwSession.encode({ ...base, ipvn: 6, senderAddress: '127.0.0.1', receiverAddress: '::1' }), RangeError);
    assert.throws(() => RequestTwSession.encode({ ...base, senderAddress: 'localhost' }), RangeError);
    assert.throws(() => RequestTwSession.encode({ ...base, ipvn: 6, senderAddress: 'fe80::1%eth0', receiverAddress: '::1' }), RangeError);
    assert.throws(() => RequestTwSession.encode({ ...base, senderPort: 65536 }), RangeError);
    assert.throws(() => RequestTwSession.encode({ ...base, timeout: -1n }), RangeError);
    assert.throws(() => RequestTwSession.encode({ ...base, sid: Buffer.alloc(15) }), RangeError);
  });

  it('carries the RFC 6038 fields and returns Conf-* and counts as read', () => {
    const bytes = RequestTwSession.encode({
      ...base,
      octetsToBeReflected: 0xabcd,
      lengthOfPaddingToReflect: 2,
      confSender: 1,
      confReceiver: 2,
      numberOfScheduleSlots: 3,
      numberOfPackets: 4,
      hmac: Buffer.alloc(16, 9),
    });
    assert.equal(bytes.subarray(88, 92).toString('hex'), 'abcd0002');
    const d = RequestTwSession.decode(bytes);
    assert.equal(d.octetsToBeReflected, 0xabcd);
    assert.equal(d.lengthOfPaddingToReflect, 2);
    assert.deepEqual([d.confSender, d.confReceiver, d.numberOfScheduleSlots, d.numberOfPackets], [1, 2, 3, 4]);
    assert.deepEqual(d.hmac, Buffer.alloc(16, 9));
  });

  it('accepts command 11 (RFC 9533) and rejects other commands and IPVN values', () => {
    const bytes = RequestTwSession.encode(base);
    bytes[0] = 11;
    assert.equal(RequestTwSession.decode(bytes).command, 11);
    bytes[0] = 6;
    assert.throws(
      () => RequestTwSession.decode(bytes),
      (e: unknown) => e instanceof DecodeError && e.field === 'Command' && e.offset === 0,
    );
    bytes[0] = 5;
    bytes[1] = 5;
    assert.throws(
      () => RequestTwSession.decode(bytes),
      (e: unknown) =>
        e instanceof DecodeError &&
        e.field === 'IPVN' &&
        e.offset === 1 &&
        e.message === 'Request-TW-Session: field IPVN at offset 1: expected 4 or 6, got 5',
    );
  });
});

describe('other control details', () => {
  it('Start-Sessions and Stop-Sessions check their command octet', () => {
    const start = StartSessions.encode();
    start[0] = 3;
    assert.throws(() => StartSessions.decode(start), (e: unknown) => e instanceof DecodeError && e.field === 'Command');
    const stop = StopSessions.encode({ accept: 0, numberOfSessions: 2 });
    assert.equal(stop.toString('hex'), '0300000000000002' + zeros(24));
    stop[0] = 2;
    assert.throws(() => StopSessions.decode(stop), DecodeError);
  });

  it('KeyID helpers pad, strip and bound the UTF-8 identity', () => {
    const k = SetupResponse.keyIdFromString('testuser');
    assert.equal(k.length, 80);
    assert.equal(k.toString('hex'), Buffer.from('testuser').toString('hex') + zeros(72));
    assert.equal(SetupResponse.keyIdToString(k), 'testuser');
    assert.equal(SetupResponse.keyIdToString(Buffer.alloc(80)), '');
    assert.equal(SetupResponse.keyIdToString(SetupResponse.keyIdFromString('é'.repeat(40))), 'é'.repeat(40));
    assert.throws(() => SetupResponse.keyIdFromString('é'.repeat(41)), RangeError);
    assert.throws(() => SetupResponse.keyIdFromString('x'.repeat(81)), RangeError);
    // A short KeyID buffer is NUL-padded by the encoder.
    const enc = SetupResponse.encode({ mode: 2, keyId: Buffer.from('abc') });
    assert.deepEqual(SetupResponse.decode(enc).keyId, SetupResponse.keyIdFromString('abc'));
  });

  it('open-mode encoders default the optional buffers to zeros', () => {
    assert.deepEqual(SetupResponse.encode({ mode: 1 }), hex('00000001' + zeros(160)));
    assert.deepEqual(ServerStart.encode({ accept: 1 }), hex(zeros(15) + '01' + zeros(32)));
    assert.deepEqual(AcceptSession.encode({ accept: 3, port: 0 }), hex('03' + zeros(47)));
    assert.deepEqual(StartAck.encode({ accept: 0 }), hex(zeros(32)));
  });

  it('Accept-Session carries the RFC 6038 octets', () => {
    const a = AcceptSession.encode({ accept: 0, port: 862, sid: Buffer.alloc(16, 1), reflectedOctets: 0x1234, serverOctets: 0x5678 });
    assert.equal(a.subarray(20, 24).toString('hex'), '12345678');
    assert.equal(AcceptSession.decode(a).serverOctets, 0x5678);
  });

  it('clientCommandLength frames by octet 0 (and N for 7/9)', () => {
    const block = (cmd: number, n = 0): Buffer => {
      const b = Buffer.alloc(16);
      b[0] = cmd;
      b.writeUInt32BE(n, 12);
      return b;
    };
    assert.equal(clientCommandLength(block(5)), 112);
    assert.equal(clientCommandLength(block(11)), 112);
    assert.equal(clientCommandLength(block(2)), 32);
    assert.equal(clientCommandLength(block(3)), 32);
    assert.equal(clientCommandLength(block(7, 1)), 48);
    assert.equal(clientCommandLength(block(9, 3)), 80);
    for (const c of [0, 1, 4, 6, 8, 10, 12, 255]) assert.equal(clientCommandLength(block(c)), undefined, `command ${c}`);
    assert.throws(() => clientCommandLength(Buffer.from([5])), DecodeError);
  });

  it('constants follow the registries', () => {
    assert.equal(DEFAULT_CONTROL_PORT, 862);
    assert.deepEqual(
      [Mode.UNAUTHENTICATED, Mode.AUTHENTICATED, Mode.ENCRYPTED, Mode.MIXED, Mode.INDIVIDUAL_SESSION_CONTROL, Mode.REFLECT_OCTETS, Mode.SYMMETRICAL_SIZE],
      [1, 2, 4, 8, 0x10, 0x20, 0x40],
    );
    assert.equal(Accept.NOT_SUPPORTED, 3);
    assert.equal(acceptDescription(0), 'OK');
    assert.equal(acceptDescription(5), 'cannot perform request due to temporary resource limitations');
    assert.match(acceptDescription(6), /IKEv2/);
    assert.match(acceptDescription(42), /unknown Accept value 42, treated as 1/);
    assert.match(acceptDescription(-1), /treated as 1/);
    assert.equal(Command.REQUEST_TW_SESSION, 5);
  });
});
