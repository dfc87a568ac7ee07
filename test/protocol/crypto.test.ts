/**
 * src/protocol/crypto.ts against known-answer vectors of its primitives (RFC 4656 §3.1, §4.1.2)
 * and the authenticated twping/twampd session in test/fixtures/conformance
 * (passphrase `secret`, KeyID `testuser`), plus round trips and tampering.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  AcceptSession,
  RequestTwSession,
  ServerGreeting,
  ServerStart,
  SetupResponse,
  StartAck,
  StartSessions,
  StopSessions,
  clientCommandLength,
  decodeReflectorPacket,
  decodeSenderPacket,
} from '../../src/protocol/index.js';
import {
  ControlCipher,
  checkKdfCount,
  constantTimeEqual,
  decryptToken,
  deriveKey,
  encryptToken,
  hmac16,
  protectReflectorPacket,
  protectSenderPacket,
  securityModeOf,
  testSessionKeys,
  unprotectReflectorPacket,
  unprotectSenderPacket,
  type SecurityMode,
} from '../../src/protocol/crypto.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const range = (from: number, n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => from + i));

// ---------------------------------------------------------------------------
// Appendix B, verbatim.

const B_SERVER_STREAM = hex(`
00000000000000000000000000000007dc57ceaf63b506462bc0545b46d0d0f2
c6e78cdc0e7636dd53d5dd1627790ca200000800000000000000000000000000
0000000000000000000000000000000073859563f14f887e42ed4132637a2072
707709852fa7a8abd9f86a60aac6167cfc2898191637333797c3e3ea37f63b11
5302c900518b4d6f0bf4a2fa079675182077feb887e5a2c6bab7524f00cd51a1
e14f7c8a9348de5d1cfca6b895b318b1084b15e5ed79e0450f666a455447df11`);

const B_CLIENT_STREAM = hex(`
0000000274657374757365720000000000000000000000000000000000000000
0000000000000000000000000000000000000000000000000000000000000000
00000000000000000000000000000000000000008add70a6ebb2b8fded376e14
4aa32917716ff5e1b2c2ed95a53f6127b5f2ee760123f26d153ef8a87ea60167
c8f19068d765541388b2f455945ce245a273e87fbc32a03c58dc0752e048449e
dac49a45a86e38cbc76f43df6bff638d5c5f120eec3a8d8002acccab827d9372
a97fa2eaa255574a9e9acedbee28f2add26d1502b175555dc27549c3bfed9d47
ddfd66d401233e1e1b3bf510aa24ffaeeb595b8c2bfcdd4cc2693022ee218ac3
1c9a8e5e87813cd4192b8e2e07a4279af25d8b7445ddbbd5c117ca0ed3d217a1
505924a9bfe3597b01c8e5db8906e929c88564090c448ba4bc11dfd195e1a382
807fbbf4e9119e050ab14db650b3cc1d49bbe73f`);

const B_CLIENT_PLAIN = hex(`
050400000000000000000000499449947f000001000000000000000000000000
7f00000100000000000000000000000000000000000000000000000000000000
00000040eeada3d84b52652600000002008f96e1000000000000000000000000
dd70ee6cc2fc05802587bdb30f30567902000000000000000000000000000000
a0b28f6760d58b46031450bfa860c94f03000000000000010000000000000000
adb1fdf950f77bfc1f8fc91a9e5f85b9`);

const B_SERVER_PLAIN = hex(`
eeada3d1fa1a932900000000000000000000496b7f000001eeada3d749b59578
585a482a000000000000000000000000a77640c239354f76c5ae375950975e8d
00000000000000000000000000000000c0d2e16524cb12e0b5b1729a5ae40525`);

const B_SENDER_PACKET = hex(`
c6ff52625b52bed45656b3248cb7c1cceeada3d85b31e3a70001000000000000
579d14c59e1f76d5219ffb960fa0e1fd6e636801f19b561ccafa70ace6873aed
131fc1d6b43c3e33f01caf900c1e9142755310c4a8265d0f3e3649c71b42c2bc
2e0f7689275cf7b14cbe2d3095b5668c`);

const B_REFLECTOR_PACKET = hex(`
c6ff52625b52bed45656b3248cb7c1cceeada3d85b42fe820001000000000000
eeada3d85b410731000000000000000000000000000000000000000000000000
eeada3d85b31e3a70001000000000000ff000000000000000000000000000000
579d14c59e1f76d5219ffb960fa0e1fd`);

const B = {
  dk: '7d7d8e98993cfd87cca29221c935c95f',
  aesKey: '407720cc960bfd0665a034a8cdec5498',
  hmacKey: 'd525e2a105ae637e7a4adccd2e05be0b81ba4b7d51304321f4fe4d9d28880060',
  sid: '7f000001eeada3d749b59578585a482a',
  testAesKey: '1a3866522ac54cb8fe89c36ba599755b',
  testHmacKey: '51959e5fcba3c3d820978d7b3e9c1fd169c8e25a8470b417a789bec93390a6ea',
};

/** Greeting, Set-Up-Response and the keys of Appendix B. */
function appendixB() {
  const greeting = ServerGreeting.decode(B_SERVER_STREAM, 0);
  const setup = SetupResponse.decode(B_CLIENT_STREAM, 0);
  const dk = deriveKey('secret', greeting.salt, greeting.count);
  const token = decryptToken(setup.token, dk);
  const serverIv = ServerStart.decode(B_SERVER_STREAM, 64).serverIv;
  return { greeting, setup, dk, token, serverIv };
}

/** Server-side framing: one block, learn the command, read the rest. */
function readClientCommands(rx: ControlCipher, wire: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let o = 0;
  while (o < wire.length) {
    const first = rx.decrypt(wire.subarray(o, o + 16));
    const len = clientCommandLength(first);
    assert.ok(len !== undefined, `unknown command ${first[0]}`);
    const msg = Buffer.concat([first, rx.decrypt(wire.subarray(o + 16, o + len))]);
    out.push(msg);
    o += len;
  }
  return out;
}

describe('crypto primitives (known vectors)', () => {
  const challenge = range(0x10, 16);
  const aesSessionKey = range(0x20, 16);
  const hmacKey = range(0x30, 32);

  it('derives dk with PBKDF2-HMAC-SHA1', () => {
    assert.equal(deriveKey('secret', range(0, 16), 1024).toString('hex'), '34c2e97a43aa44a08d662a2128c24b28');
    assert.equal(deriveKey(Buffer.from('secret'), range(0, 16), 1024).toString('hex'), '34c2e97a43aa44a08d662a2128c24b28');
  });

  it('encrypts and decrypts the Token', () => {
    const dk = deriveKey('secret', range(0, 16), 1024);
    const token = encryptToken({ challenge, aesSessionKey, hmacKey }, dk);
    assert.equal(
      token.toString('hex'),
      'a42704710de0fca7cc6beba39a1f5194' + '1a3895895f8930d65f66632cb56956e7' +
        'f94ab2e2ef8d700fafeb3ba151b6a8e2' + 'c429f1269797056a9b23e3467284d31f',
    );
    const back = decryptToken(token, dk);
    assert.deepEqual(back, { challenge, aesSessionKey, hmacKey });
  });

  it('derives the per-SID test keys', () => {
    const keys = testSessionKeys(aesSessionKey, hmacKey, hex('c0000201e800000080000000deadbeef'));
    assert.equal(keys.aesKey.toString('hex'), '62a41b0a675144fc2751289175d6f611');
    assert.equal(keys.hmacKey.toString('hex'), '8cc009badf0d031ceebd8fadf8d14048b38557d45f1264218e26affd78ee211a');
  });

  it('computes the truncated HMAC', () => {
    const block = Buffer.alloc(16);
    block[0] = 2;
    assert.equal(hmac16(hmacKey, block).toString('hex'), '281fc9a23939a4f730fbf9f8541361a8');
    assert.deepEqual(hmac16(hmacKey, block.subarray(0, 7), block.subarray(7)), hmac16(hmacKey, block));
  });

  it('validates the PBKDF2 Count', () => {
    for (const ok of [1024, 2048, 32768]) assert.equal(checkKdfCount(ok), undefined, String(ok));
    for (const bad of [0, 512, 1000, 1023, 3072, 65536, 2 ** 32, 1024.5, Number.NaN, -1024]) {
      assert.equal(typeof checkKdfCount(bad), 'string', String(bad));
    }
    assert.equal(checkKdfCount(65536, 65536), undefined);
    assert.equal(checkKdfCount(2 ** 31, 2 ** 31), undefined);
    assert.match(checkKdfCount(65536) ?? '', /maximum 32768/);
    assert.throws(() => deriveKey('secret', range(0, 16), 65536), RangeError);
    assert.throws(() => deriveKey('secret', range(0, 16), 1000), RangeError);
    assert.throws(() => deriveKey('secret', range(0, 15), 1024), RangeError);
  });

  it('maps the Mode field to a security mode', () => {
    assert.equal(securityModeOf(1), 'open');
    assert.equal(securityModeOf(2), 'authenticated');
    assert.equal(securityModeOf(4 | 0x10), 'encrypted');
    assert.equal(securityModeOf(8), 'mixed');
    assert.equal(securityModeOf(0x10), undefined);
    assert.equal(securityModeOf(6), undefined);
  });

  it('compares in constant time, tolerating different lengths', () => {
    assert.equal(constantTimeEqual(range(0, 16), range(0, 16)), true);
    assert.equal(constantTimeEqual(range(0, 16), range(1, 16)), false);
    assert.equal(constantTimeEqual(range(0, 16), range(0, 15)), false);
  });
});

describe('Appendix B: captured authenticated session (passphrase "secret")', () => {
  it('derives dk, decrypts the Token and checks the Challenge', () => {
    const { greeting, setup, dk, token } = appendixB();
    assert.equal(greeting.count, 2048);
    assert.equal(setup.mode, 2);
    assert.equal(SetupResponse.keyIdToString(setup.keyId), 'testuser');
    assert.equal(dk.toString('hex'), B.dk);
    assert.ok(constantTimeEqual(token.challenge, greeting.challenge));
    assert.equal(token.aesSessionKey.toString('hex'), B.aesKey);
    assert.equal(token.hmacKey.toString('hex'), B.hmacKey);
    // The client's Token is reproducible from its parts.
    assert.deepEqual(encryptToken(token, dk), setup.token);
  });

  it('detects a wrong passphrase through the Challenge', () => {
    const { greeting, setup } = appendixB();
    const wrong = decryptToken(setup.token, deriveKey('Secret', greeting.salt, greeting.count));
    assert.equal(constantTimeEqual(wrong.challenge, greeting.challenge), false);
  });

  it('decrypts the server stream and verifies every HMAC', () => {
    const { token, serverIv } = appendixB();
    const rx = new ControlCipher(token.aesSessionKey, serverIv, token.hmacKey, 'authenticated');
    const ss = rx.decryptServerStart(B_SERVER_STREAM.subarray(64, 112));
    assert.deepEqual(ss.subarray(0, 32), B_SERVER_STREAM.subarray(64, 96), 'octets 0–31 stay clear');
    assert.deepEqual(ss.subarray(32), B_SERVER_PLAIN.subarray(0, 16));
    assert.equal(ServerStart.decode(ss).accept, 0);
    assert.equal(ServerStart.decode(ss).startTime, 0xeeada3d1fa1a9329n);

    // The client knows the lengths from its state: Accept-Session, Start-Ack.
    const as = rx.decrypt(B_SERVER_STREAM.subarray(112, 160));
    assert.deepEqual(as, B_SERVER_PLAIN.subarray(16, 64));
    assert.equal(rx.verifyHmac(as), true, 'first HMAC covers Server-Start 32–47 + Accept-Session 0–31');
    const accept = AcceptSession.decode(as);
    assert.equal(accept.accept, 0);
    assert.equal(accept.port, 18795);
    assert.equal(accept.sid.toString('hex'), B.sid);
    assert.equal(accept.hmac.toString('hex'), 'a77640c239354f76c5ae375950975e8d');

    const ack = rx.decrypt(B_SERVER_STREAM.subarray(160, 192));
    assert.deepEqual(ack, B_SERVER_PLAIN.subarray(64, 96));
    assert.equal(rx.verifyHmac(ack), true);
    assert.equal(StartAck.decode(ack).accept, 0);
  });

  it('decrypts the client stream block by block and verifies every HMAC', () => {
    const { setup, token } = appendixB();
    const rx = new ControlCipher(token.aesSessionKey, setup.clientIv, token.hmacKey, 'authenticated');
    const msgs = readClientCommands(rx, B_CLIENT_STREAM.subarray(164));
    assert.deepEqual(msgs.map((m) => m.length), [112, 32, 32]);
    assert.deepEqual(Buffer.concat(msgs), B_CLIENT_PLAIN);
    for (const m of msgs) assert.equal(rx.verifyHmac(m), true);

    const req = RequestTwSession.decode(msgs[0]!);
    assert.equal(req.senderPort, 18836);
    assert.equal(req.receiverPort, 18836);
    assert.equal(req.senderAddress, '127.0.0.1');
    assert.equal(req.paddingLength, 64);
    assert.equal(StartSessions.decode(msgs[1]!).hmac.length, 16);
    assert.equal(StopSessions.decode(msgs[2]!).numberOfSessions, 1);
  });

  it('re-encrypts both streams to the captured bytes', () => {
    const { setup, token, serverIv } = appendixB();
    const { aesSessionKey, hmacKey } = token;

    const ctx = new ControlCipher(aesSessionKey, setup.clientIv, hmacKey, 'authenticated');
    const req = B_CLIENT_PLAIN.subarray(0, 112);
    const clientWire = [
      ctx.encrypt(RequestTwSession.encode(RequestTwSession.decode(req))),
      ctx.encrypt(StartSessions.encode()),
      ctx.encrypt(StopSessions.encode({ accept: 0, numberOfSessions: 1 })),
    ];
    assert.deepEqual(Buffer.concat(clientWire), B_CLIENT_STREAM.subarray(164));

    const stx = new ControlCipher(aesSessionKey, serverIv, hmacKey, 'authenticated');
    const ss = stx.encryptServerStart(
      ServerStart.encode({ accept: 0, serverIv, startTime: 0xeeada3d1fa1a9329n }),
    );
    const asPlain = AcceptSession.encode({ accept: 0, port: 18795, sid: hex(B.sid) });
    const serverWire = [ss, stx.encrypt(asPlain), stx.encrypt(StartAck.encode({ accept: 0 }))];
    assert.deepEqual(Buffer.concat(serverWire), B_SERVER_STREAM.subarray(64));
    assert.equal(asPlain.subarray(32).toString('hex'), 'a77640c239354f76c5ae375950975e8d', 'HMAC written in place');
  });

  it('derives the test keys and unprotects / re-protects the test packets', () => {
    const { token } = appendixB();
    const keys = testSessionKeys(token.aesSessionKey, token.hmacKey, hex(B.sid));
    assert.equal(keys.aesKey.toString('hex'), B.testAesKey);
    assert.equal(keys.hmacKey.toString('hex'), B.testHmacKey);

    const s = Buffer.from(B_SENDER_PACKET);
    assert.equal(unprotectSenderPacket(s, s.length, keys, 'authenticated'), true);
    assert.deepEqual(s.subarray(0, 16), Buffer.alloc(16), 'seq 0, MBZ');
    assert.deepEqual(s.subarray(16), B_SENDER_PACKET.subarray(16), 'only octets 0–15 are encrypted');
    assert.equal(decodeSenderPacket(s, s.length, 'authenticated').seq, 0);
    protectSenderPacket(s, s.length, keys, 'authenticated');
    assert.deepEqual(s, B_SENDER_PACKET);

    const r = Buffer.from(B_REFLECTOR_PACKET);
    assert.equal(unprotectReflectorPacket(r, r.length, keys, 'authenticated'), true);
    const refl = decodeReflectorPacket(r, r.length, 'authenticated');
    assert.equal(refl.seq, 0);
    assert.equal(refl.senderSeq, 0);
    assert.equal(refl.senderTtl, 255);
    protectReflectorPacket(r, r.length, keys, 'authenticated');
    assert.deepEqual(r, B_REFLECTOR_PACKET);
  });
});

describe('ControlCipher', () => {
  const aes = randomBytes(16);
  const hk = randomBytes(32);
  const clientIv = randomBytes(16);
  const serverIv = randomBytes(16);

  for (const mode of ['authenticated', 'encrypted', 'mixed'] as const) {
    it(`round-trips a whole control conversation (${mode})`, () => {
      const cTx = new ControlCipher(aes, clientIv, hk, mode);
      const sRx = new ControlCipher(aes, clientIv, hk, mode);
      const sTx = new ControlCipher(aes, serverIv, hk, mode);
      const cRx = new ControlCipher(aes, serverIv, hk, mode);

      const ssWire = sTx.encryptServerStart(ServerStart.encode({ accept: 0, serverIv, startTime: 0x1234n }));
      assert.deepEqual(ssWire.subarray(16, 32), serverIv);
      assert.notDeepEqual(ssWire.subarray(32, 40), Buffer.from('0000000000001234', 'hex'));
      assert.equal(ServerStart.decode(cRx.decryptServerStart(ssWire)).startTime, 0x1234n);

      const req = RequestTwSession.encode(RequestTwSession.decode(B_CLIENT_PLAIN.subarray(0, 112)));
      req.fill(0, 96);
      const reqWire = cTx.encrypt(Buffer.from(req));
      const startWire = cTx.encrypt(StartSessions.encode());
      const [reqBack, startBack] = readClientCommands(sRx, Buffer.concat([reqWire, startWire]));
      assert.equal(sRx.verifyHmac(reqBack!), true);
      assert.deepEqual(reqBack!.subarray(0, 96), req.subarray(0, 96));
      assert.equal(sRx.verifyHmac(startBack!), true);

      const as = cRx.decrypt(sTx.encrypt(AcceptSession.encode({ accept: 0, port: 9000, sid: randomBytes(16) })));
      assert.equal(cRx.verifyHmac(as), true);
      assert.equal(AcceptSession.decode(as).port, 9000);
      // Decrypting per block gives the same plaintext as per message.
      const ackWire = sTx.encrypt(StartAck.encode({ accept: 0 }));
      const ack = Buffer.concat([cRx.decrypt(ackWire.subarray(0, 16)), cRx.decrypt(ackWire.subarray(16))]);
      assert.equal(cRx.verifyHmac(ack), true);
    });
  }

  it('rejects a tampered message and a tampered HMAC', () => {
    const tx = new ControlCipher(aes, clientIv, hk, 'encrypted');
    const wire = tx.encrypt(StartSessions.encode());
    const flipped = Buffer.from(wire);
    flipped[3]! ^= 0x01;
    assert.equal(new ControlCipher(aes, clientIv, hk, 'encrypted').verifyHmac(
      new ControlCipher(aes, clientIv, hk, 'encrypted').decrypt(flipped),
    ), false);

    const rx = new ControlCipher(aes, clientIv, hk, 'encrypted');
    const plain = rx.decrypt(wire);
    plain[20]! ^= 0x80;
    assert.equal(rx.verifyHmac(plain), false);
  });

  it('fails the first server HMAC when Server-Start 32–47 is left out of the coverage', () => {
    const { token, serverIv } = appendixB();
    const rx = new ControlCipher(token.aesSessionKey, serverIv, token.hmacKey, 'authenticated');
    rx.decrypt(B_SERVER_STREAM.subarray(96, 112)); // plain decrypt: not covered
    assert.equal(rx.verifyHmac(rx.decrypt(B_SERVER_STREAM.subarray(112, 160))), false);
  });

  it('sends Server-Start in clear and starts no stream when Accept ≠ 0', () => {
    const tx = new ControlCipher(aes, serverIv, hk, 'authenticated');
    const plain = ServerStart.encode({ accept: 1, serverIv });
    assert.deepEqual(tx.encryptServerStart(plain), plain);
    const rx = new ControlCipher(aes, serverIv, hk, 'authenticated');
    assert.deepEqual(rx.decryptServerStart(plain), plain);
  });

  it('refuses misuse', () => {
    const c = new ControlCipher(aes, clientIv, hk, 'authenticated');
    c.encrypt(StartSessions.encode());
    assert.throws(() => c.decrypt(Buffer.alloc(16)), /one per direction/);
    assert.throws(() => c.encrypt(Buffer.alloc(20)), RangeError);
    assert.throws(() => new ControlCipher(aes, clientIv, hk.subarray(0, 16), 'authenticated'), RangeError);
    assert.throws(() => new ControlCipher(aes, clientIv, hk, 'open' as 'mixed'), RangeError);
    const s = new ControlCipher(aes, serverIv, hk, 'authenticated');
    assert.throws(() => s.encryptServerStart(ServerStart.encode({ accept: 0, serverIv: clientIv })), /Server-IV/);
  });
});

describe('test packet protection', () => {
  const keys = testSessionKeys(randomBytes(16), randomBytes(32), randomBytes(16));

  const cases: { mode: SecurityMode; sender: number[]; reflector: number[] }[] = [
    { mode: 'authenticated', sender: [0, 16], reflector: [0, 16] },
    { mode: 'encrypted', sender: [0, 32], reflector: [0, 96] },
  ];
  for (const { mode, sender, reflector } of cases) {
    it(`round-trips sender and reflector packets (${mode})`, () => {
      const s = randomBytes(48 + 64);
      s.fill(0, 32, 48);
      const sPlain = Buffer.from(s);
      protectSenderPacket(s, s.length, keys, mode);
      assert.notDeepEqual(s.subarray(sender[0], sender[1]), sPlain.subarray(sender[0], sender[1]));
      assert.deepEqual(s.subarray(sender[1]!, 32), sPlain.subarray(sender[1]!, 32), 'rest of the header clear');
      assert.deepEqual(s.subarray(48), sPlain.subarray(48), 'padding untouched');
      assert.equal(unprotectSenderPacket(s, s.length, keys, mode), true);
      assert.deepEqual(s.subarray(0, 32), sPlain.subarray(0, 32));

      const r = randomBytes(112);
      const rPlain = Buffer.from(r);
      protectReflectorPacket(r, r.length, keys, mode);
      assert.deepEqual(r.subarray(reflector[1]!, 96), rPlain.subarray(reflector[1]!, 96));
      assert.equal(unprotectReflectorPacket(r, r.length, keys, mode), true);
      assert.deepEqual(r.subarray(0, 96), rPlain.subarray(0, 96));
    });

    it(`rejects tampering (${mode})`, () => {
      const s = Buffer.alloc(48);
      protectSenderPacket(s, 48, keys, mode);
      const badMac = Buffer.from(s);
      badMac[40]! ^= 1;
      assert.equal(unprotectSenderPacket(badMac, 48, keys, mode), false);
      const badSeq = Buffer.from(s);
      badSeq[2]! ^= 1;
      assert.equal(unprotectSenderPacket(badSeq, 48, keys, mode), false);
      const otherKeys = testSessionKeys(randomBytes(16), randomBytes(32), randomBytes(16));
      assert.equal(unprotectSenderPacket(Buffer.from(s), 48, otherKeys, mode), false);
      assert.throws(() => unprotectSenderPacket(Buffer.alloc(47), 47, keys, mode), { name: 'DecodeError' });
      assert.throws(() => unprotectReflectorPacket(Buffer.alloc(111), 111, keys, mode), { name: 'DecodeError' });
      assert.throws(() => protectReflectorPacket(Buffer.alloc(112), 104, keys, mode), RangeError);
    });
  }

  it('authenticated mode leaves the timestamps writable after protection', () => {
    const s = Buffer.alloc(48);
    protectSenderPacket(s, 48, keys, 'authenticated');
    s.writeBigUInt64BE(0xeeada3d85b31e3a7n, 16); // T1 taken after protection
    assert.equal(unprotectSenderPacket(s, 48, keys, 'authenticated'), true);
    assert.equal(decodeSenderPacket(s, 48, 'authenticated').timestamp, 0xeeada3d85b31e3a7n);
  });

  it('does nothing in open and mixed mode', () => {
    for (const mode of ['open', 'mixed'] as const) {
      const p = randomBytes(41);
      const copy = Buffer.from(p);
      protectSenderPacket(p, 41, keys, mode);
      protectReflectorPacket(p, 41, keys, mode);
      assert.deepEqual(p, copy);
      assert.equal(unprotectSenderPacket(p, 41, keys, mode), true);
      assert.equal(unprotectReflectorPacket(p, 41, keys, mode), true);
      assert.deepEqual(p, copy);
    }
  });

  it('uses the same keys in both directions (seq-0 first blocks match)', () => {
    const s = Buffer.alloc(48);
    const r = Buffer.alloc(112);
    protectSenderPacket(s, 48, keys, 'authenticated');
    protectReflectorPacket(r, 112, keys, 'authenticated');
    assert.deepEqual(s.subarray(0, 16), r.subarray(0, 16));
    assert.deepEqual(s.subarray(32, 48), r.subarray(96, 112));
  });
});
