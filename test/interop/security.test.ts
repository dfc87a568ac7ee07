// Interoperability of the security modes with perfSONAR (owamp 5.2.3): our
// sender against twampd, and twping against our reflector, in authenticated,
// encrypted and mixed mode (RFC 4656, RFC 5357, RFC 5618), IPv4 and IPv6 on
// loopback. Key id testuser, pass-phrase testsecret123 on both sides.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TwampSender } from '../../src/sender.js';
import { TwampReflector } from '../../src/reflector.js';
import {
  requirePeersOrSkip, startTwampd, runTwping, hostPort, TEST_USER, TEST_PASSPHRASE, type TwpingResult,
} from '../helpers/peers.js';
import { parseReflectorConfig, parseSenderConfig } from '../../src/config/index.js';

function explain(r: TwpingResult): string {
  return `twping exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

const MODES = [
  { mode: 'authenticated', letter: 'A' },
  { mode: 'encrypted', letter: 'E' },
  { mode: 'mixed', letter: 'M' },
] as const;

describe('our sender → perfSONAR twampd (authenticated, encrypted, mixed)', { timeout: 180_000, concurrency: true }, () => {
  for (const host of ['127.0.0.1', '::1']) {
    for (const { mode, letter } of MODES) {
      for (const model of ['g711', 'g729'] as const) {
        it(`${host} ${mode} ${model}: every packet reflected`, async (t) => {
          const p = requirePeersOrSkip(t);
          if (!p) return;
          // twampd offering only this mode, so the negotiation cannot fall back.
          const d = await startTwampd(p, { authmode: letter, host });
          try {
            const sender = new TwampSender(parseSenderConfig({
              id: `vs-twampd-${mode}`, reflector: host, port: d.port, n_packets: 30, model,
              mode, key_id: TEST_USER, secret: TEST_PASSPHRASE,
            }));
            const out = await sender.runOnce();
            assert.ok(out.ok, `${out.ok ? '' : out.error.message}\n${d.log()}`);
            const r = out.result.session;
            assert.equal(r.mode, mode);
            assert.equal(r.ipVersion, host === '::1' ? 6 : 4);
            assert.equal(r.stats.txPackets, 30);
            assert.equal(r.stats.rxPackets, 30, d.log());
            assert.equal(r.stats.rt.loss, 0);
            assert.equal(r.stats.unexpected, 0);
            assert.equal(r.badHmacReplies, 0, 'every reply from twampd verifies');
            assert.equal(r.invalidReplies, 0);
            assert.ok(r.stats.rt.minDelayNs! > 0 && r.stats.rt.maxDelayNs! < 1e9);
            assert.ok(r.stats.residence.minNs! >= 0);
            if (mode !== 'mixed' && model === 'g729') {
              // 48-octet sender header (no room for padding), 112-octet reflection.
              const overhead = host === '::1' ? 48 : 28;
              assert.equal(r.paddingLength, 0);
              assert.equal(r.stats.txBytes, 30 * (48 + overhead));
              assert.equal(r.stats.rxBytes, 30 * (112 + overhead));
            }
          } finally {
            await d.stop();
          }
        });
      }
    }
  }

  it('preference list against twampd offering everything: the first listed mode wins', async (t) => {
    const p = requirePeersOrSkip(t);
    if (!p) return;
    const d = await startTwampd(p, { authmode: 'OAEM' });
    try {
      const sender = new TwampSender(parseSenderConfig({
        id: 'pref', reflector: d.host, port: d.port, n_packets: 10, model: 'g711',
        mode: ['encrypted', 'authenticated', 'open'], key_id: TEST_USER, secret: TEST_PASSPHRASE,
      }));
      const out = await sender.runOnce();
      assert.ok(out.ok, out.ok ? '' : out.error.message);
      assert.equal(out.result.session.mode, 'encrypted');
      assert.equal(out.result.session.stats.rxPackets, 10);
    } finally {
      await d.stop();
    }
  });

  it('wrong secret and unknown key id: refused with a clear message', async (t) => {
    const p = requirePeersOrSkip(t);
    if (!p) return;
    const d = await startTwampd(p, { authmode: 'AE' });
    try {
      for (const cfg of [{ key_id: TEST_USER, secret: 'wrong-passphrase' }, { key_id: 'nobody', secret: TEST_PASSPHRASE }]) {
        const sender = new TwampSender(parseSenderConfig({ id: 'bad', reflector: d.host, port: d.port, n_packets: 5, model: 'g711', mode: 'authenticated', ...cfg }));
        const out = await sender.runOnce();
        assert.equal(out.ok, false);
        assert.equal(out.ok ? '' : out.reason, 'refused', out.ok ? '' : out.error.message);
        const msg = out.ok ? '' : out.error.message;
        assert.match(msg, new RegExp(`key id "${cfg.key_id}"`));
        assert.ok(!msg.includes(cfg.secret), msg);
      }
    } finally {
      await d.stop();
    }
  });
});

describe('perfSONAR twping → our reflector (authenticated, encrypted, mixed)', { timeout: 180_000 }, () => {
  let dir: string;
  let pfs: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'otel-twamp-interop-sec-'));
    pfs = path.join(dir, 'twamp.pfs');
    // pfstore format, read by both twping -k and our key_file.
    await writeFile(pfs, `${TEST_USER} ${Buffer.from(TEST_PASSPHRASE).toString('hex')}\n`, { mode: 0o600 });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const host of ['127.0.0.1', '::1']) {
    it(`${host}: -A A, E, M with default and minimal padding, 0 loss, counters agree`, async (t) => {
      const p = requirePeersOrSkip(t);
      if (!p) return;
      const reflector = new TwampReflector(parseReflectorConfig({
        id: 'ours-sec', listen: host, port: 0, modes: ['authenticated', 'encrypted', 'mixed'], key_file: pfs,
      }));
      const { port } = await reflector.start();
      const target = hostPort(host, port);
      try {
        for (const { letter } of MODES) {
          const r = await runTwping(p, target, ['-A', letter, '-u', TEST_USER, '-k', pfs, '-c', '40', '-i', '0.01f', '-R']);
          assert.equal(r.code, 0, explain(r));
          const recs = r.raw ?? [];
          assert.equal(recs.length, 40, explain(r));
          assert.ok(recs.every((x) => !x.lost), explain(r));
          assert.deepEqual(recs.map((x) => x.reflectorSeq).sort((a, b) => a - b), [...Array(40).keys()]);
          assert.ok(recs.every((x) => x.reflectorSendTime >= x.reflectorRecvTime), 'T3 ≥ T2');
          assert.ok(recs.every((x) => x.senderTtl === 255), explain(r));
          // Minimal packets (-s 0): 48-octet (auth/enc) or 14-octet (mixed) requests.
          const min = await runTwping(p, target, ['-A', letter, '-u', TEST_USER, '-k', pfs, '-c', '20', '-i', '0.01f', '-s', '0']);
          assert.equal(min.code, 0, explain(min));
          assert.equal(min.sent, 20, explain(min));
          assert.equal(min.lost, 0, explain(min));
          assert.equal(min.duplicates, 0, explain(min));
        }
        const c = reflector.counters;
        assert.equal(c.sessionsStarted, 6);
        assert.equal(c.reflectedPackets, 3 * 60);
        assert.equal(c.droppedPackets, 0);
        assert.equal(c.refused.size, 0, [...c.refused].join());
        const overhead = host === '::1' ? 48 : 28;
        // auth/enc: 112 both ways (default and -s 0); mixed: 41 both ways.
        assert.equal(c.reflectedOctets, 2 * 60 * (112 + overhead) + 60 * (41 + overhead));
      } finally {
        await reflector.stop();
      }
    });
  }

  it('twping with a wrong pass-phrase, or asking for open mode, is refused and counted; others unaffected', async (t) => {
    const p = requirePeersOrSkip(t);
    if (!p) return;
    const bad = path.join(dir, 'bad.pfs');
    await writeFile(bad, `${TEST_USER} ${Buffer.from('wrong-passphrase').toString('hex')}\n`, { mode: 0o600 });
    const reflector = new TwampReflector(parseReflectorConfig({ id: 'ours-auth', listen: '127.0.0.1', port: 0, modes: ['authenticated'], key_file: pfs }));
    const { port } = await reflector.start();
    const target = hostPort('127.0.0.1', port);
    try {
      const good = runTwping(p, target, ['-A', 'A', '-u', TEST_USER, '-k', pfs, '-c', '100', '-i', '0.01f']);
      const wrong = await runTwping(p, target, ['-A', 'A', '-u', TEST_USER, '-k', bad, '-c', '5'], 20_000);
      assert.notEqual(wrong.code, 0, explain(wrong));
      const open = await runTwping(p, target, ['-A', 'O', '-c', '5'], 20_000);
      assert.notEqual(open.code, 0, explain(open));
      const ok = await good;
      assert.equal(ok.code, 0, explain(ok));
      assert.equal(ok.lost, 0, explain(ok));
      assert.equal(reflector.counters.refused.get('auth'), 1, [...reflector.counters.refused].join());
      // twping finds no common mode and hangs up after the greeting.
      assert.equal(reflector.counters.refused.get('abandoned'), 1, [...reflector.counters.refused].join());
    } finally {
      await reflector.stop();
    }
  });
});
