// Proves the interop harness itself: perfSONAR twping against a twampd started
// by test/helpers/peers.ts, on loopback, open and authenticated mode; plus the
// twping output parsers against the captured outputs in test/fixtures/conformance.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import {
  TEST_USER,
  parseTwpingOutput,
  parseTwpingRaw,
  requirePeersOrSkip,
  runTwping,
  startTwampd,
  type TwpingResult,
} from '../helpers/peers.js';
import { fixturePath } from '../helpers/pcap.js';

function explain(r: TwpingResult, log: string): string {
  return `twping exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}\n--- twampd log\n${log}`;
}

function assertClean(r: TwpingResult, log: string, n: number): void {
  const why = explain(r, log);
  assert.equal(r.code, 0, why);
  assert.equal(r.sent, n, why);
  assert.equal(r.lost, 0, why);
  assert.equal(r.duplicates, 0, why);
  assert.match(r.sid ?? '', /^[0-9a-f]{32}$/, why);
  for (const v of [r.rtMinMs, r.rtMedianMs, r.rtMaxMs]) {
    assert.ok(typeof v === 'number' && v > 0 && v < 1000, `RTT ${v} ms\n${why}`);
  }
  assert.ok(r.rtMinMs! <= r.rtMaxMs!, why);
}

describe('interop harness: perfSONAR twping -> twampd', { timeout: 60_000, concurrency: true }, () => {
  it('open mode: 20 packets, none lost, RTT parsed', async (t) => {
    const p = requirePeersOrSkip(t);
    if (!p) return;
    const d = await startTwampd(p, { host: '127.0.0.1' });
    try {
      const r = await runTwping(p, d.target, ['-A', 'O', '-c', '20', '-i', '0.01'], 20_000);
      assertClean(r, d.log(), 20);
      assert.ok(r.reflectorPort && r.senderPort, explain(r, d.log()));
    } finally {
      await d.stop();
    }
    assert.equal(existsSync(d.stateDir), !!process.env.OTEL_TWAMP_KEEP_STATE, 'stop() cleans the state dir');
  });

  it('authenticated mode (-A A -u testuser -k pfs): 20 packets, none lost', async (t) => {
    const p = requirePeersOrSkip(t);
    if (!p) return;
    const d = await startTwampd(p, { authmode: 'OAEM' });
    try {
      const r = await runTwping(
        p,
        d.target,
        ['-A', 'A', '-u', TEST_USER, '-k', d.pfsFile, '-c', '20', '-i', '0.01'],
        20_000,
      );
      assertClean(r, d.log(), 20);
    } finally {
      await d.stop();
    }
  });

  it('IPv6 loopback and raw records (-R)', async (t) => {
    const p = requirePeersOrSkip(t);
    if (!p) return;
    const d = await startTwampd(p, { host: '::1', authmode: 'O' });
    try {
      assert.equal(d.target, `[::1]:${d.port}`);
      const r = await runTwping(p, d.target, ['-c', '5', '-i', '0.01', '-R'], 20_000);
      const why = explain(r, d.log());
      assert.equal(r.code, 0, why);
      assert.equal(r.raw?.length, 5, why);
      assert.deepEqual(r.raw!.map((x) => x.senderSeq), [0, 1, 2, 3, 4], why);
      for (const rec of r.raw!) {
        assert.equal(rec.lost, false, why);
        assert.equal(rec.senderTtl, 255, why); // twping sends with IP TTL 255
        assert.ok(rec.roundTripMs! > 0 && rec.roundTripMs! < 1000, why);
      }
      assert.equal(r.sent, 5);
      assert.equal(r.lost, 0);
    } finally {
      await d.stop();
    }
  });

  it('runTwping rejects on timeout with the output so far, and kills twping', async (t) => {
    const p = requirePeersOrSkip(t);
    if (!p) return;
    const d = await startTwampd(p);
    try {
      const started = Date.now();
      await assert.rejects(runTwping(p, d.target, ['-c', '100', '-i', '0.1'], 500), (e: Error) => {
        assert.match(e.message, /timed out after 500 ms/);
        assert.match(e.message, /--- stderr/);
        return true;
      });
      assert.ok(Date.now() - started < 5000);
    } finally {
      await d.stop();
    }
  });

  it('an authmode the server does not offer is refused (non-zero exit, no summary)', async (t) => {
    const p = requirePeersOrSkip(t);
    if (!p) return;
    const d = await startTwampd(p, { authmode: 'O' });
    try {
      const r = await runTwping(p, d.target, ['-A', 'A', '-u', TEST_USER, '-k', d.pfsFile, '-c', '3'], 20_000);
      assert.notEqual(r.code, 0, explain(r, d.log()));
      assert.equal(r.sent, undefined);
    } finally {
      await d.stop();
    }
  });
});

describe('twping output parsers', () => {
  const captured = (name: string): string => readFileSync(fixturePath('conformance', `${name}.twping.txt`), 'utf8');

  it('parses every captured *.twping.txt summary', () => {
    for (const name of ['open', 'open-nopad', 'authenticated', 'authenticated-nopad', 'encrypted', 'mixed']) {
      const r = parseTwpingOutput(captured(name));
      assert.equal(r.sent, 5, name);
      assert.equal(r.lost, 0, name);
      assert.equal(r.duplicates, 0, name);
      assert.match(r.sid ?? '', /^7f000001[0-9a-f]{24}$/, name);
      assert.ok(r.rtMinMs! > 0 && r.rtMaxMs! >= r.rtMinMs! && r.rtMedianMs! > 0, name);
      assert.equal(r.reflectorPort, r.senderPort! + 1, name);
    }
    const open = parseTwpingOutput(captured('open'));
    assert.deepEqual([open.rtMinMs, open.rtMedianMs, open.rtMaxMs], [0.201, 0.5, 1.77]);
  });

  it('handles loss, nan, other units and the -M summary', () => {
    const lossy = parseTwpingOutput(
      [
        '--- twping statistics from [localhost]:9000 to [198.18.0.2]:9001 ---',
        'SID:\tc6120002eeb1a7550780cb6cefd7adf0',
        '200 sent, 23 lost (11.500%), 1 send duplicates, 2 reflect duplicates',
        'round-trip time min/median/max = 150/300/1.2e+03 us, (unsync)',
      ].join('\n'),
    );
    assert.equal(lossy.sent, 200);
    assert.equal(lossy.lost, 23);
    assert.equal(lossy.lossPercent, 11.5);
    assert.equal(lossy.duplicates, 3);
    assert.deepEqual([lossy.rtMinMs, lossy.rtMedianMs, lossy.rtMaxMs], [0.15, 0.3, 1.2]);

    const dead = parseTwpingOutput(
      '--- twping statistics from [localhost]:9000 to [127.0.0.1]:9001 ---\n' +
        '3 sent, 3 lost (100.000%), 0 send duplicates, 0 reflect duplicates\n' +
        'round-trip time min/median/max = nan/nan/nan ms, (err=9.31e-07 ms)\n',
    );
    assert.equal(dead.lost, 3);
    assert.equal(dead.rtMinMs, undefined);

    const m = parseTwpingOutput('SUMMARY\t3.00\nSID\tabc\nSENT\t3\nLOST\t0\nDUPS_FWD\t0\nDUPS_BCK\t1\nMIN\t2.5e-05\nMEDIAN\t0.0001\nMAX\t0.000117779\n');
    assert.equal(m.sent, 3);
    assert.equal(m.duplicates, 1);
    assert.ok(Math.abs(m.rtMinMs! - 0.025) < 1e-12);
  });

  it('parses -R raw records, including a lost one', () => {
    const recs = parseTwpingRaw(
      [
        '0 17199712453040261547 0 2.32831e-10 17199712453040733994 0 2.32831e-10 255 0 17199712453040789828 0 2.32831e-10 17199712453040845663 0 2.32831e-10 255',
        '1 17199712453059348382 0 2.32831e-10 00000000000000000000 0 0 0 0 00000000000000000000 0 0 00000000000000000000 0 0 0',
      ].join('\n'),
    );
    assert.equal(recs.length, 2);
    assert.equal(recs[0]!.lost, false);
    // (845663-261547) - (789828-733994) NTP fraction units = 528282 / 2^32 s
    assert.ok(Math.abs(recs[0]!.roundTripMs! - (528282 / 2 ** 32) * 1000) < 1e-9);
    assert.equal(recs[1]!.lost, true);
    assert.equal(recs[1]!.roundTripMs, undefined);
  });
});
