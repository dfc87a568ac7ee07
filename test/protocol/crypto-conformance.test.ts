/**
 * src/protocol/crypto.ts against real perfSONAR twping ↔ twampd captures in
 * authenticated, encrypted and mixed mode (test/fixtures/conformance; KeyID and
 * passphrase from its twamp-server.pfs). Expected values come from vectors.json,
 * written by an independent decoder. For every capture: re-derive dk, decrypt
 * the Token, reproduce every key, decrypt and HMAC-verify every control
 * message in both directions, unprotect every test packet, and re-encrypt /
 * re-protect the plaintext back to the captured bytes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
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
  constantTimeEqual,
  decryptToken,
  deriveKey,
  encryptToken,
  protectReflectorPacket,
  protectSenderPacket,
  securityModeOf,
  testSessionKeys,
  unprotectReflectorPacket,
  unprotectSenderPacket,
  type ControlSecurityMode,
  type TestSessionKeys,
} from '../../src/protocol/crypto.js';
import { loadCapture, fixturePath, tcpStream } from '../helpers/pcap.js';

// The credentials twampd and twping used for the recording, in pfstore format
// (`KeyID <hex of the passphrase>`): KeyID testuser, passphrase testsecret123.
const [KEY_ID, PASSPHRASE] = ((): [string, string] => {
  const line = readFileSync(fixturePath('conformance', 'twamp-server.pfs'), 'utf8').trim();
  const m = /^(\S+) ([0-9a-f]+)$/.exec(line);
  if (!m) throw new Error(`test/fixtures/conformance/twamp-server.pfs: not a pfstore line: ${JSON.stringify(line)}`);
  return [m[1]!, Buffer.from(m[2]!, 'hex').toString('utf8')];
})();

interface VectorMessage {
  dir: 'C->S' | 'S->C';
  name: string;
  offset: number;
  length: number;
  frame: number;
  hex_first64: string;
  plain_hex_first64?: string;
  hmac_ok?: boolean;
  fields: Record<string, unknown>;
}
interface VectorPacket {
  frame: number;
  dir: 'sender->reflector' | 'reflector->sender';
  udp_payload_len: number;
  hex_first64: string;
  plain_hex_first64?: string;
  hmac_ok?: boolean;
  fields: { seq: number; sender_seq?: number; hmac?: string };
}
interface VectorCapture {
  file: string;
  mode: number;
  mode_name: string;
  control: { client: string; server: string };
  keys: {
    passphrase: string;
    pbkdf2_count: number;
    dk: string;
    token_plain_challenge: string;
    challenge_ok: boolean;
    aes_key: string;
    hmac_key: string;
    client_iv: string;
    server_iv: string;
    test_aes_key?: string;
    test_hmac_key?: string;
  };
  session: { sid: string; reflector_port: number };
  messages: VectorMessage[];
  test_packets: VectorPacket[];
  summary: { crypto_checks: string };
}

const vectors = JSON.parse(readFileSync(fixturePath('conformance', 'vectors.json'), 'utf8')) as {
  captures: Record<string, VectorCapture>;
};

const first64 = (b: Buffer): string => b.subarray(0, 64).toString('hex');
const tsHex = (f: unknown): bigint => BigInt(`0x${(f as { hex: string }).hex}`);

function modeOf(cap: VectorCapture): ControlSecurityMode {
  const m = securityModeOf(cap.mode);
  assert.ok(m === 'authenticated' || m === 'encrypted' || m === 'mixed', `${cap.file}: mode ${cap.mode}`);
  return m;
}

/** Checks a decrypted control message's codec fields against vectors.json. */
function checkFields(m: VectorMessage, plain: Buffer): void {
  const f = m.fields;
  switch (m.name) {
    case 'Request-TW-Session': {
      const r = RequestTwSession.decode(plain);
      assert.equal(r.command, f.command);
      assert.equal(r.ipvn, f.ipvn);
      assert.equal(r.senderPort, f.sender_port);
      assert.equal(r.receiverPort, f.receiver_port);
      assert.equal(r.sid.toString('hex'), f.sid);
      assert.equal(r.paddingLength, f.padding_length);
      assert.equal(r.startTime, tsHex(f.start_time));
      assert.equal(r.timeout, tsHex(f.timeout));
      assert.equal(r.typeP, f.type_p);
      assert.equal(r.hmac.toString('hex'), f.hmac);
      break;
    }
    case 'Accept-Session': {
      const a = AcceptSession.decode(plain);
      assert.equal(a.accept, f.accept);
      assert.equal(a.port, f.port);
      assert.equal(a.sid.toString('hex'), f.sid);
      assert.equal(a.hmac.toString('hex'), f.hmac);
      break;
    }
    case 'Start-Sessions':
      assert.equal(StartSessions.decode(plain).hmac.toString('hex'), f.hmac);
      break;
    case 'Start-Ack': {
      const a = StartAck.decode(plain);
      assert.equal(a.accept, f.accept);
      assert.equal(a.hmac.toString('hex'), f.hmac);
      break;
    }
    case 'Stop-Sessions': {
      const s = StopSessions.decode(plain);
      assert.equal(s.accept, f.accept);
      assert.equal(s.numberOfSessions, f.num_sessions);
      assert.equal(s.hmac.toString('hex'), f.hmac);
      break;
    }
    default:
      assert.fail(`unexpected encrypted message ${m.name}`);
  }
}

const CAPTURES = ['authenticated.pcap', 'encrypted.pcap', 'mixed.pcap', 'authenticated-nopad.pcap'];

for (const file of CAPTURES) {
  const cap = vectors.captures[file];
  describe(`crypto conformance: ${file}`, () => {
    assert.ok(cap, `${file} in vectors.json`);
    const mode = modeOf(cap);
    const capture = loadCapture(fixturePath('conformance', file));
    const c2s = tcpStream(capture, cap.control.client, cap.control.server).data;
    const s2c = tcpStream(capture, cap.control.server, cap.control.client).data;
    const greeting = ServerGreeting.decode(s2c, 0);
    const setup = SetupResponse.decode(c2s, 0);
    const serverStartWire = s2c.subarray(ServerGreeting.SIZE, ServerGreeting.SIZE + ServerStart.SIZE);
    const serverIv = ServerStart.decode(serverStartWire).serverIv;
    const dk = deriveKey(PASSPHRASE, greeting.salt, greeting.count);
    const token = decryptToken(setup.token, dk);
    const k = cap.keys;
    // Counted like vectors.json summary.crypto_checks: the Challenge plus every HMAC.
    let checks = 0;
    let passed = 0;
    const count = (ok: boolean): void => {
      checks++;
      if (ok) passed++;
    };
    const encryptedMessages = cap.messages.filter((m) => m.plain_hex_first64 !== undefined && m.name !== 'Server-Start');

    it('re-derives dk and every key from the passphrase', () => {
      assert.equal(SetupResponse.keyIdToString(setup.keyId), KEY_ID);
      assert.equal(greeting.count, k.pbkdf2_count);
      assert.equal(dk.toString('hex'), k.dk);
      const challengeOk = constantTimeEqual(token.challenge, greeting.challenge);
      assert.equal(challengeOk, k.challenge_ok);
      count(challengeOk);
      assert.equal(token.challenge.toString('hex'), k.token_plain_challenge);
      assert.equal(token.aesSessionKey.toString('hex'), k.aes_key);
      assert.equal(token.hmacKey.toString('hex'), k.hmac_key);
      assert.equal(setup.clientIv.toString('hex'), k.client_iv);
      assert.equal(serverIv.toString('hex'), k.server_iv);
      assert.deepEqual(encryptToken(token, dk), setup.token, 'Token re-encrypts to the captured one');
      assert.equal(
        constantTimeEqual(decryptToken(setup.token, deriveKey('testsecret124', greeting.salt, greeting.count)).challenge, greeting.challenge),
        false,
        'wrong passphrase detected',
      );
    });

    it('decrypts and verifies the server stream (from Server-Start octet 32)', () => {
      const rx = new ControlCipher(token.aesSessionKey, serverIv, token.hmacKey, mode);
      const ssVec = cap.messages.find((m) => m.name === 'Server-Start')!;
      assert.equal(ssVec.offset, ServerGreeting.SIZE);
      const ss = rx.decryptServerStart(serverStartWire);
      assert.equal(first64(ss), ssVec.plain_hex_first64);
      assert.equal(ServerStart.decode(ss).accept, 0);
      assert.equal(ServerStart.decode(ss).startTime, tsHex(ssVec.fields.start_time));
      for (const m of encryptedMessages.filter((x) => x.dir === 'S->C')) {
        // The client knows each reply's length from its own state.
        const plain = rx.decrypt(s2c.subarray(m.offset, m.offset + m.length));
        assert.equal(first64(plain), m.plain_hex_first64, m.name);
        const ok = rx.verifyHmac(plain);
        assert.equal(ok, true, `${m.name} HMAC`);
        assert.equal(ok, m.hmac_ok);
        count(ok);
        checkFields(m, plain);
      }
    });

    it('decrypts and verifies the client stream with block framing', () => {
      const rx = new ControlCipher(token.aesSessionKey, setup.clientIv, token.hmacKey, mode);
      let o = SetupResponse.SIZE;
      for (const m of encryptedMessages.filter((x) => x.dir === 'C->S')) {
        assert.equal(m.offset, o, `${m.name} offset`);
        const firstBlock = rx.decrypt(c2s.subarray(o, o + 16));
        const len = clientCommandLength(firstBlock);
        assert.equal(len, m.length, `${m.name} length from its first block`);
        const plain = Buffer.concat([firstBlock, rx.decrypt(c2s.subarray(o + 16, o + len!))]);
        assert.equal(first64(plain), m.plain_hex_first64, m.name);
        const ok = rx.verifyHmac(plain);
        assert.equal(ok, true, `${m.name} HMAC`);
        assert.equal(ok, m.hmac_ok);
        count(ok);
        checkFields(m, plain);
        o += len!;
      }
      assert.equal(o, c2s.length, 'whole client stream consumed');
    });

    it('re-encrypts both control streams to the captured bytes', () => {
      for (const [dir, iv, data, start] of [
        ['S->C', serverIv, s2c, ServerGreeting.SIZE + ServerStart.SIZE],
        ['C->S', setup.clientIv, c2s, SetupResponse.SIZE],
      ] as const) {
        const rx = new ControlCipher(token.aesSessionKey, iv, token.hmacKey, mode);
        const tx = new ControlCipher(token.aesSessionKey, iv, token.hmacKey, mode);
        const wire: Buffer[] = [];
        if (dir === 'S->C') {
          const plainSs = rx.decryptServerStart(serverStartWire);
          wire.push(tx.encryptServerStart(plainSs).subarray(32));
        }
        const plainStream = rx.decrypt(data.subarray(start));
        for (const m of encryptedMessages.filter((x) => x.dir === dir)) {
          const plain = Buffer.from(plainStream.subarray(m.offset - start, m.offset - start + m.length));
          const mac = Buffer.from(plain.subarray(plain.length - 16));
          plain.fill(0, plain.length - 16); // encrypt() computes and writes the HMAC itself
          wire.push(tx.encrypt(plain));
          assert.deepEqual(plain.subarray(plain.length - 16), mac, `${dir} ${m.name} HMAC`);
        }
        const from = dir === 'S->C' ? ServerGreeting.SIZE + 32 : SetupResponse.SIZE;
        assert.deepEqual(Buffer.concat(wire), data.subarray(from), `${dir} ciphertext`);
      }
    });

    it('unprotects, verifies and re-protects every test packet', () => {
      const sid = AcceptSession.decode(
        new ControlCipher(token.aesSessionKey, serverIv, token.hmacKey, mode).decrypt(s2c.subarray(96, 160)).subarray(16),
      ).sid;
      assert.equal(sid.toString('hex'), cap.session.sid);
      const keys: TestSessionKeys = testSessionKeys(token.aesSessionKey, token.hmacKey, sid);
      if (k.test_aes_key !== undefined) assert.equal(keys.aesKey.toString('hex'), k.test_aes_key);
      if (k.test_hmac_key !== undefined) assert.equal(keys.hmacKey.toString('hex'), k.test_hmac_key);
      const layout = mode === 'mixed' ? 'open' : 'authenticated';

      assert.equal(cap.test_packets.length, 10);
      for (const p of cap.test_packets) {
        const dgram = capture.udp.find((u) => u.frame === p.frame);
        assert.ok(dgram, `frame ${p.frame}`);
        const wire = dgram.payload;
        assert.equal(wire.length, p.udp_payload_len);
        assert.equal(first64(wire), p.hex_first64);
        const buf = Buffer.from(wire);
        const sender = p.dir === 'sender->reflector';
        const ok = sender
          ? unprotectSenderPacket(buf, buf.length, keys, mode)
          : unprotectReflectorPacket(buf, buf.length, keys, mode);
        assert.equal(ok, true, `frame ${p.frame} HMAC`);
        assert.equal(first64(buf), p.plain_hex_first64 ?? p.hex_first64, `frame ${p.frame} plaintext`);
        if (p.hmac_ok !== undefined) {
          assert.equal(ok, p.hmac_ok);
          count(ok);
        }
        if (sender) {
          assert.equal(decodeSenderPacket(buf, buf.length, layout).seq, p.fields.seq);
          protectSenderPacket(buf, buf.length, keys, mode);
        } else {
          const r = decodeReflectorPacket(buf, buf.length, layout);
          assert.equal(r.seq, p.fields.seq);
          assert.equal(r.senderSeq, p.fields.sender_seq);
          assert.equal(r.senderTtl, 255);
          protectReflectorPacket(buf, buf.length, keys, mode);
        }
        assert.deepEqual(buf, wire, `frame ${p.frame} re-protected`);
      }
    });

    it('matches summary.crypto_checks', () => {
      // Runs after the tests above (node:test runs a suite's tests in order).
      assert.equal(`${passed}/${checks} ok`, cap.summary.crypto_checks);
    });
  });
}
