// Authenticated, encrypted and mixed TWAMP (RFC 4656 §3.1–3.2 and §4.1.2,
// RFC 5357, RFC 5618) between our sender and our reflector: every mode
// reflects everything, the sender picks its preferred mode among those
// offered, and a refused mode, a wrong secret or an unknown key id fail
// cleanly on the sender and are counted on the reflector, while an open
// session on the same reflector carries on undisturbed. Secrets never reach
// a log line or an error message.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Socket as UdpSocket } from 'node:dgram';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { TwampReflector } from '../../src/reflector.js';
import { TwampSender } from '../../src/sender.js';
import { ControlClient } from '../../src/session/controlClient.js';
import type { Logger } from '../../src/util/log.js';
import {
  writeSenderPacket, protectSenderPacket, unprotectReflectorPacket, decodeReflectorPacket, ntpIntervalFromNs,
  SetupResponse, ServerStart, Mode, type SecurityMode, type TestSessionKeys,
} from '../../src/protocol/index.js';
import { testMeter, type TestMeter } from '../helpers/metrics.js';
import { exchange, sleep, udp } from '../helpers/udp.js';
import { parseReflectorConfig, parseSenderConfig } from '../../src/config/index.js';
import { datapathSupport } from '../../src/session/datapath.js';

/** RFC 7750 (Modes bit 8): our reflector offers it where it reads the received DS byte, and our sender then chooses it. */
const DSCP_ECN = datapathSupport().native ? 0x100 : 0;

const USER = 'testuser';
const SECRET = 'testsecret123';
const WRONG = 'not-the-Secret-42';

/** A logger that keeps every line, to check that no secret is ever logged. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const rec = (m: string): void => { lines.push(m); };
  return { lines, debug: rec, info: rec, warn: rec, error: rec };
}

function assertNoSecret(text: string): void {
  for (const s of [SECRET, WRONG, Buffer.from(SECRET).toString('hex'), Buffer.from(WRONG).toString('hex')]) {
    assert.ok(!text.includes(s), `a secret leaked into: ${text}`);
  }
}

describe('security modes: our sender ↔ our reflector', { timeout: 120_000 }, () => {
  let dir: string;
  let keyFile: string;
  let meter: TestMeter;
  let log: ReturnType<typeof recordingLogger>;
  let all: TwampReflector; // every mode
  let allPort: number;
  let some: TwampReflector; // open + authenticated only
  let somePort: number;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'otel-twamp-e2e-sec-'));
    keyFile = path.join(dir, 'twamp.pfs');
    // pfstore format: key id, hex of the pass-phrase
    await writeFile(keyFile, `# test keys\n${USER}\t${Buffer.from(SECRET).toString('hex')}\nother 6f74686572\n`, { mode: 0o600 });
    meter = testMeter();
    log = recordingLogger();
    all = new TwampReflector(parseReflectorConfig({
      id: 'all', listen: '127.0.0.1', port: 0, modes: ['open', 'authenticated', 'encrypted', 'mixed'], key_file: keyFile,
    }), { meterProvider: meter.provider, logger: log });
    allPort = (await all.start()).port;
    some = new TwampReflector(parseReflectorConfig({
      id: 'some', listen: '127.0.0.1', port: 0, modes: ['open', 'authenticated'], key_file: keyFile, kdf_count: 1024,
    }), { meterProvider: meter.provider, logger: log });
    somePort = (await some.start()).port;
  });

  after(async () => {
    await all.stop();
    await some.stop();
    await meter.shutdown();
    await rm(dir, { recursive: true, force: true });
    assertNoSecret(log.lines.join('\n'));
  });

  const sender = (id: string, port: number, extra: Record<string, unknown>) =>
    new TwampSender(parseSenderConfig({ id, reflector: '127.0.0.1', port, n_packets: 25, model: 'g711', reply_timeout: 1, ...extra }),
      { meterProvider: meter.provider, logger: log });

  const cases: { mode: SecurityMode; model: string; tx: number; rx: number }[] = [
    { mode: 'authenticated', model: 'g711', tx: 200, rx: 200 },
    // g729's 32-octet payload is below the 48-octet header: sent as 48, answered with 112.
    { mode: 'authenticated', model: 'g729', tx: 48 + 28, rx: 112 + 28 },
    { mode: 'encrypted', model: 'g711', tx: 200, rx: 200 },
    { mode: 'encrypted', model: 'g729', tx: 48 + 28, rx: 112 + 28 },
    // Mixed: encrypted control, open test packets (RFC 5618).
    { mode: 'mixed', model: 'g711', tx: 200, rx: 200 },
    // Open test packets: replies of at least 41 octets, 44 with RFC 7750's S-DSCP-ECN.
    { mode: 'mixed', model: 'g729', tx: 60, rx: DSCP_ECN ? 72 : 69 },
  ];
  for (const c of cases) {
    it(`${c.mode}, ${c.model}: every packet reflected, stats sane`, async () => {
      const before = all.counters.reflectedPackets;
      const out = await sender(`${c.mode}-${c.model}`, allPort, { mode: c.mode, key_id: USER, secret: SECRET, model: c.model }).runOnce();
      assert.ok(out.ok, out.ok ? '' : out.error.message);
      const r = out.result.session;
      assert.equal(r.mode, c.mode);
      assert.equal(r.stats.txPackets, 25);
      assert.equal(r.stats.rxPackets, 25);
      assert.equal(r.stats.rt.loss, 0);
      assert.equal(r.stats.unexpected, 0);
      assert.equal(r.badHmacReplies, 0);
      assert.equal(r.invalidReplies, 0);
      assert.equal(r.stats.txBytes, 25 * c.tx);
      assert.equal(r.stats.rxBytes, 25 * c.rx);
      assert.equal(r.paddingLength, c.tx - 28 - (c.mode === 'mixed' ? 14 : 48));
      assert.ok(r.stats.rt.minDelayNs! > 0 && r.stats.rt.maxDelayNs! < 1e9);
      assert.ok(r.stats.residence.minNs! >= 0, 'T3 ≥ T2 after protection');
      assert.ok(out.result.values.in_mos! > 3.5);
      assert.equal(all.counters.reflectedPackets - before, 25);
    });
  }

  it('the sender picks the first mode of its list that the server offers', async () => {
    // "some" offers open + authenticated: [encrypted, authenticated] → authenticated.
    const out = await sender('pref', somePort, { mode: ['encrypted', 'authenticated'], key_id: USER, secret: SECRET }).runOnce();
    assert.ok(out.ok, out.ok ? '' : out.error.message);
    assert.equal(out.result.session.mode, 'authenticated');
    assert.equal(out.result.session.stats.rxPackets, 25);
    // [mixed, open] → open; [open, authenticated] → open (order is preference).
    const o1 = await sender('pref-open', somePort, { mode: ['mixed', 'open'], key_id: USER, secret: SECRET }).runOnce();
    assert.ok(o1.ok && o1.result.session.mode === 'open');
    const o2 = await sender('pref-open2', somePort, { mode: ['open', 'authenticated'], key_id: USER, secret: SECRET }).runOnce();
    assert.ok(o2.ok && o2.result.session.mode === 'open');
  });

  /** Run `fail` while an open session runs against the same reflector; both outcomes. */
  async function besideOpenSession(port: number, fail: () => Promise<import('../../src/sender.js').SenderRunOutcome>) {
    const open = sender(`open-beside-${Math.random()}`, port, { n_packets: 60 }).runOnce();
    await sleep(100);
    const failed = await fail();
    const ok = await open;
    assert.ok(ok.ok, ok.ok ? '' : ok.error.message);
    assert.equal(ok.result.session.stats.rxPackets, 60, 'the parallel open session lost nothing');
    return failed;
  }

  it('refused mode: no common mode → refused on the sender, counted as "mode" on the reflector', async () => {
    const before = some.counters.refused.get('mode') ?? 0;
    const out = await besideOpenSession(somePort, () => sender('no-mode', somePort, { mode: ['encrypted', 'mixed'], key_id: USER, secret: SECRET }).runOnce());
    assert.equal(out.ok, false);
    assert.equal(out.ok ? '' : out.reason, 'refused');
    assert.match(out.ok ? '' : out.error.message, new RegExp('no common security mode: we allow encrypted, mixed; the server offers open, authenticated ' +
      `\\(Modes 0x${(0x63 | DSCP_ECN).toString(16)}\\)`));
    await sleep(50);
    assert.equal((some.counters.refused.get('mode') ?? 0) - before, 1);
  });

  it('a client choosing a mode the server did not offer gets Server-Start Accept ≠ 0 and is counted', async () => {
    const before = some.counters.refused.get('mode') ?? 0;
    const sock = connect(somePort, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.on('data', (d: Buffer) => chunks.push(d));
    await new Promise((res) => sock.once('connect', res));
    sock.write(SetupResponse.encode({ mode: Mode.ENCRYPTED, keyId: SetupResponse.keyIdFromString(USER) }));
    await new Promise((res) => { sock.once('close', res); setTimeout(res, 2000); });
    const wire = Buffer.concat(chunks);
    assert.equal(wire.length, 64 + 48);
    assert.equal(ServerStart.decode(wire.subarray(64)).accept, 3);
    assert.equal((some.counters.refused.get('mode') ?? 0) - before, 1);
    sock.destroy();
  });

  it('wrong secret: refused on the sender (Server-Start Accept 1), counted as "auth"; no secret in the message', async () => {
    const before = all.counters.refused.get('auth') ?? 0;
    const out = await besideOpenSession(allPort, () => sender('wrong-secret', allPort, { mode: 'encrypted', key_id: USER, secret: WRONG }).runOnce());
    assert.equal(out.ok, false);
    assert.equal(out.ok ? '' : out.reason, 'refused');
    const msg = out.ok ? '' : out.error.message;
    assert.match(msg, /Server-Start refused the connection: Accept 1 .* in encrypted mode; check that the server knows key id "testuser"/);
    assertNoSecret(msg);
    await sleep(50);
    assert.equal((all.counters.refused.get('auth') ?? 0) - before, 1);
  });

  it('unknown key id: refused on the sender, counted as "key_id"', async () => {
    const before = all.counters.refused.get('key_id') ?? 0;
    const out = await besideOpenSession(allPort, () => sender('unknown-key', allPort, { mode: 'authenticated', key_id: 'nobody', secret: SECRET }).runOnce());
    assert.equal(out.ok ? '' : out.reason, 'refused');
    assert.match(out.ok ? '' : out.error.message, /key id "nobody"/);
    await sleep(50);
    assert.equal((all.counters.refused.get('key_id') ?? 0) - before, 1);
  });

  it('refusals are exported: reflector refused{reason}, sender errors{reason}', async () => {
    const snap = await meter.collect();
    for (const reason of ['auth', 'key_id']) {
      assert.ok(snap.value('twamp_reflector_refused', { collector_id: 'all', reason })! >= 1, reason);
    }
    assert.ok(snap.value('twamp_reflector_refused', { collector_id: 'some', reason: 'mode' })! >= 2);
    // A scheduled sender exports its failed run as success 0 and errors{reason="refused"}.
    const s = sender('wrong-secret-scheduled', allPort, { mode: 'authenticated', key_id: USER, secret: WRONG, interval: 3600 });
    await s.start();
    await s.runOnce(); // the first scheduled run (start() launched it)
    const after = await meter.collect();
    await s.stop();
    assert.equal(after.value('twamp_sender_errors', { collector_id: 'wrong-secret-scheduled', reason: 'refused' }), 1);
    assert.equal(after.value('twamp_sender_success', { collector_id: 'wrong-secret-scheduled' }), 0);
  });

  it('a server reply whose HMAC does not verify: protocol error, connection closed', async () => {
    // A corrupted server stream (a proxy flips one octet of Accept-Session)
    // fails the HMAC check: the client closes with a protocol error.
    const { createServer } = await import('node:net');
    const proxy = createServer((down) => {
      const up = connect(allPort, '127.0.0.1');
      let seen = 0;
      up.on('data', (d: Buffer) => {
        const b = Buffer.from(d);
        // Server-Greeting 64 + Server-Start 48; the next octets are Accept-Session.
        const at = 64 + 48 + 5 - seen;
        if (at >= 0 && at < b.length) b[at]! ^= 0xff;
        seen += d.length;
        down.write(b);
      });
      down.on('data', (d: Buffer) => up.write(d));
      up.on('close', () => down.destroy());
      down.on('close', () => up.destroy());
      up.on('error', () => undefined);
      down.on('error', () => undefined);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as { port: number }).port;
    try {
      const out = await sender('tampered', port, { mode: 'authenticated', key_id: USER, secret: SECRET }).runOnce();
      assert.equal(out.ok ? '' : out.reason, 'protocol');
      assert.match(out.ok ? '' : out.error.message, /Accept-Session: HMAC does not verify in authenticated mode/);
    } finally {
      await new Promise<void>((r) => proxy.close(() => r()));
    }
  });
});

// ---------------------------------------------------------------------------
// Control client driven by hand: several sessions per connection, packet
// protection on the wire, Stop-Sessions counts.


function protectedPacket(seq: number, keys: TestSessionKeys, mode: 'authenticated' | 'encrypted', length = 112): Buffer {
  const b = Buffer.alloc(length, 0x5a);
  writeSenderPacket(b, { seq, timestamp: BigInt(seq + 1) << 32n, errorEstimate: 0x0001 }, 'authenticated');
  protectSenderPacket(b, length, keys, mode);
  return b;
}


describe('secured control connection with several sessions', { timeout: 60_000 }, () => {
  let dir: string;
  let r: TwampReflector;
  let port: number;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'otel-twamp-e2e-sec2-'));
    const kf = path.join(dir, 'k.pfs');
    await writeFile(kf, `${USER} ${Buffer.from(SECRET).toString('hex')}\n`);
    r = new TwampReflector(parseReflectorConfig({ id: 'multi', listen: '127.0.0.1', port: 0, modes: ['authenticated', 'encrypted'], key_file: kf }));
    port = (await r.start()).port;
  });
  after(async () => {
    await r.stop();
    await rm(dir, { recursive: true, force: true });
  });

  for (const mode of ['authenticated', 'encrypted'] as const) {
    it(`${mode}: two sessions, Stop-Sessions 2, a third on the same connection; tampered packets dropped`, async () => {
      const c = await ControlClient.connect({
        host: '127.0.0.1', port, timeoutMs: 2000, modes: [mode], keyId: USER, secret: () => Buffer.from(SECRET),
      });
      assert.equal(c.mode, mode);
      assert.equal(c.greeting.count, 2048, 'kdf_count default');
      assert.equal(c.greeting.modes, Mode.AUTHENTICATED | Mode.ENCRYPTED | Mode.REFLECT_OCTETS | Mode.SYMMETRICAL_SIZE | DSCP_ECN);
      const started0 = r.counters.sessionsStarted;
      const socks = [await udp(), await udp(), await udp()];
      const request = (s: UdpSocket) => c.requestSession({
        ipvn: 4, senderPort: s.address().port, receiverPort: 0, senderAddress: '127.0.0.1', receiverAddress: '127.0.0.1',
        paddingLength: 64, startTime: 0n, timeout: ntpIntervalFromNs(100_000_000n), typeP: 0,
      });
      const a = await request(socks[0]!);
      const b = await request(socks[1]!);
      assert.notDeepEqual(a.sid, b.sid);
      await c.startSessions();
      for (const [i, acc] of [a, b].entries()) {
        const keys = c.testKeys(acc.sid)!;
        const replies = await exchange(socks[i]!, acc.port, [protectedPacket(0, keys, mode), protectedPacket(1, keys, mode, 48)]);
        assert.equal(replies.length, 2);
        for (const reply of replies) {
          assert.equal(reply.length, 112, 'max(request, 112)');
          assert.ok(unprotectReflectorPacket(reply, reply.length, keys, mode), 'reply HMAC verifies');
          const d = decodeReflectorPacket(reply, reply.length, 'authenticated');
          assert.equal(d.senderTimestamp, BigInt(d.senderSeq + 1) << 32n);
          // The received TTL (the test socket's default 64) on the native datapath; 255 when unknown (RFC 5357 §4.2.1).
          assert.ok(d.senderTtl === 64 || d.senderTtl === 255, `Sender TTL ${d.senderTtl}`);
          assert.ok(d.timestamp >= d.receiveTimestamp);
          assert.notEqual(d.errorEstimate & 0xff, 0, 'Multiplier never 0');
        }
        // Another session's keys do not verify here: dropped, not reflected.
        const other = c.testKeys(i === 0 ? b.sid : a.sid)!;
        const dropped0 = r.counters.droppedPackets;
        assert.equal((await exchange(socks[i]!, acc.port, [protectedPacket(2, other, mode)], 100)).length, 0);
        assert.equal(r.counters.droppedPackets - dropped0, 1);
      }
      assert.equal(r.counters.sessionsStarted - started0, 2);
      await c.stopSessions(2);
      // A third session on the same control connection.
      const third = await request(socks[2]!);
      await c.startSessions();
      assert.equal(r.counters.sessionsStarted - started0, 3, 'stopped sessions are not started again');
      const keys3 = c.testKeys(third.sid)!;
      assert.equal((await exchange(socks[2]!, third.port, [protectedPacket(0, keys3, mode)])).length, 1);
      await c.stopSessions(1);
      c.close();
      for (const s of socks) s.close();
      // The packets keyed for the other session fail their HMAC (counted "hmac"); nothing else is refused.
      assert.deepEqual([...r.counters.refused.keys()], ['hmac'], [...r.counters.refused].join());
    });
  }

  it('a Greeting Count above the client maximum is refused with a clear message', async () => {
    const kf = path.join(dir, 'k.pfs');
    const big = new TwampReflector(parseReflectorConfig({ id: 'big', listen: '127.0.0.1', port: 0, modes: ['authenticated'], key_file: kf, kdf_count: 65536 }));
    const p = (await big.start()).port;
    try {
      await assert.rejects(
        ControlClient.connect({ host: '127.0.0.1', port: p, timeoutMs: 2000, modes: ['authenticated'], keyId: USER, secret: () => Buffer.from(SECRET) }),
        (e: Error & { reason?: string }) => {
          assert.equal(e.reason, 'protocol');
          assert.match(e.message, /unacceptable Server-Greeting: PBKDF2 Count 65536 exceeds the configured maximum 32768/);
          return true;
        });
    } finally {
      await big.stop();
    }
  });
});
