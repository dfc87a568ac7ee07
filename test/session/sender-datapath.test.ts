/**
 * The sender on the test-socket datapath (src/session/testPhase.ts over
 * src/session/datapath.ts), on loopback only: kernel timestamps for T1 (TX
 * timestamp) and T4 (receive timestamp), the sender's own departure records
 * instead of the echoed T1, native scheduled departures, hops and DSCP as
 * received, and the node:dgram fallback (OTEL_TWAMP_NATIVE=0).
 *
 * Native tests skip (loudly) when the helper is not built, except under CI;
 * twampd tests skip without the peers (OTEL_TWAMP_PEERS), except under CI.
 */
import { describe, it } from 'node:test';
import { withEnv } from '../helpers/wait.js';
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { systemClock } from '../../src/session/clock.js';
import { runSenderSession } from '../../src/session/senderSession.js';
import type { SenderSessionResult } from '../../src/session/senderResult.js';
import { runLightSenderSession } from '../../src/session/lightSenderSession.js';
import { TwampReflector } from '../../src/reflector.js';
import {
  buildReflection, readTimestamp, writeTimestamp, reflectorReplyLength, ERROR_ESTIMATE_UNSYNC_MIN,
} from '../../src/protocol/index.js';
import { requirePeersOrSkip, startTwampd } from '../helpers/peers.js';
import { needNative } from '../helpers/native.js';
import { parseReflectorConfig } from '../../src/config/index.js';

const us = (ns: number | undefined): string => (ns === undefined ? '-' : `${(ns / 1000).toFixed(1)} µs`);

function summary(r: SenderSessionResult): string {
  const s = r.stats;
  return `rt min/p50/p99 ${us(s.rt.minDelayNs)} / ${us(s.rt.p50DelayNs)} / ${us(s.rt.p99DelayNs)}; ` +
    `out min ${us(s.out.minDelayNs)}, in min ${us(s.in.minDelayNs)}; t1 ${r.timestamps?.t1}, t4 ${r.timestamps?.t4}, ` +
    `departure error p50/p99 ${us(r.timestamps?.departureErrorNs?.p50)} / ${us(r.timestamps?.departureErrorNs?.p99)}; ` +
    `path ${JSON.stringify(r.path)}`;
}


async function ourReflector(): Promise<{ port: number; stop: () => Promise<void> }> {
  const r = new TwampReflector(parseReflectorConfig({ id: 'sdp', type: 'twamp_reflector', listen: '127.0.0.1', port: 0 }));
  const { port } = await r.start();
  return { port, stop: () => r.stop() };
}

const SESSION = {
  host: '127.0.0.1', reflectorPort: 0, nPackets: 100, model: { model: 'cbr' as const, bandwidth: 500 * 100 * 8, size: 100 },
  controlTimeoutMs: 3000, replyTimeoutMs: 500, clock: systemClock(),
};

describe('sender datapath: against our reflector on loopback', { timeout: 60_000 }, () => {
  it('native: kernel T1/T4, scheduled departures, non-negative one-way delays, inbound TTL 255, DSCP as asked', async (t) => {
    if (!needNative(t)) return;
    const refl = await ourReflector();
    try {
      const r = await runSenderSession({ ...SESSION, controlPort: refl.port, dscp: 46 });
      t.diagnostic(summary(r));
      assert.equal(r.stats.rxPackets, 100);
      assert.equal(r.timestamps?.datapath, 'native');
      assert.equal(r.timestamps?.pacing, 'native-thread');
      assert.equal(r.timestamps?.source, 'kernel');
      assert.equal(r.timestamps?.t1, 'kernel', 'T1 records are the kernel TX timestamps');
      assert.equal(r.timestamps?.t4, 'kernel');
      assert.equal(r.timestamps?.nativeUnavailable, undefined);
      assert.ok((r.timestamps?.txTimestamped ?? 0) >= 90, `TX timestamps for ${r.timestamps?.txTimestamped}/100`);
      assert.equal(r.timestamps?.departureErrorNs?.samples, 100);
      // Same host, same clock (CLOCK_REALTIME everywhere): no negative one-way delay.
      assert.ok(r.stats.out.minDelayNs! >= 0, `outbound min ${r.stats.out.minDelayNs} ns`);
      assert.ok(r.stats.in.minDelayNs! >= 0, `inbound min ${r.stats.in.minDelayNs} ns`);
      assert.ok(r.stats.rt.minDelayNs! >= 0 && r.stats.rt.minDelayNs! < 1_000_000, `rt min ${r.stats.rt.minDelayNs} ns`);
      assert.equal(r.t1Mismatches, 0);
      // Our reflector sends with TTL 255 and the session's DSCP (Type-P, RFC 5357 §3.5).
      assert.deepEqual(r.path?.inbound.ttl, { min: 255, max: 255 });
      assert.deepEqual(r.path?.inbound.hops, { min: 0, max: 0 });
      assert.equal(r.path?.inbound.tosSamples, 100);
      assert.equal(r.path?.inbound.dscp, 46);
      assert.equal(r.path?.inbound.ecn, 0);
      assert.equal(r.path?.inbound.remarked, 0);
      assert.ok(r.path?.outbound.senderTtl !== null, 'the reflector echoes the Sender TTL');
    } finally {
      await refl.stop();
    }
  });

  it('JS fallback (OTEL_TWAMP_NATIVE=0): functional, says why, userspace timestamps, hops and DSCP unknown', async () => {
    const refl = await ourReflector();
    try {
      const r = await withEnv('OTEL_TWAMP_NATIVE', '0', () => runSenderSession({ ...SESSION, controlPort: refl.port, dscp: 10 }));
      assert.equal(r.stats.rxPackets, 100);
      assert.equal(r.stats.rt.loss, 0);
      assert.equal(r.timestamps?.datapath, 'js');
      assert.equal(r.timestamps?.pacing, 'event-loop');
      assert.equal(r.timestamps?.source, 'userspace');
      assert.match(r.timestamps?.nativeUnavailable ?? '', /OTEL_TWAMP_NATIVE/);
      assert.equal(r.path?.inbound.hops, null);
      assert.equal(r.path?.inbound.dscp, null);
      assert.equal(r.path?.inbound.tosSamples, 0);
      assert.equal(r.t1Mismatches, 0);
    } finally {
      await refl.stop();
    }
  });
});

/**
 * A fake TWAMP Light reflector writing a wrong T1 (the sender's timestamp
 * plus `garble`) and also answering a sequence number never sent, with T2/T3
 * from the clock. Optionally sends with a chosen TTL.
 */
async function garblingReflector(garbleNs: bigint, ttl = 255): Promise<{ port: number; sock: UdpSocket }> {
  const clock = systemClock();
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  sock.setTTL(ttl);
  let seq = 0;
  sock.on('message', (m, rinfo) => {
    const t2 = clock.nowNtp();
    // Garble T1 (octets 4–11 of the open sender packet) before reflecting it.
    const req = Buffer.from(m);
    writeTimestamp(req, 4, BigInt.asUintN(64, readTimestamp(req, 4) + (garbleNs << 32n) / 1_000_000_000n));
    const reply = (request: Buffer): void => {
      const out = Buffer.alloc(reflectorReplyLength(request.length));
      const len = buildReflection(request, request.length, out, {
        seq: seq++, receiveTimestamp: t2, timestamp: clock.nowNtp(), errorEstimate: ERROR_ESTIMATE_UNSYNC_MIN, senderTtl: 255,
      });
      sock.send(out.subarray(0, len), rinfo.port, rinfo.address);
    };
    reply(req);
    if (req.readUInt32BE(0) === 0) {
      const stray = Buffer.from(req);
      stray.writeUInt32BE(1_000_000, 0); // never sent: unexpected
      reply(stray);
    }
  });
  return { port: sock.address().port, sock };
}

describe('sender datapath: own departure records', { timeout: 60_000 }, () => {
  for (const native of ['native', 'js'] as const) {
    it(`${native}: a reflector that garbles T1 does not move the round trip; unknown sequence numbers are unexpected`, async (t) => {
      if (native === 'native' && !needNative(t)) return;
      const run = async (garble: bigint): Promise<SenderSessionResult> => {
        const f = await garblingReflector(garble);
        try {
          const go = (): Promise<SenderSessionResult> => runLightSenderSession({
            host: '127.0.0.1', port: f.port, format: 'twamp', dscp: 0, nPackets: 50,
            model: { model: 'cbr', bandwidth: 500 * 100 * 8, size: 100 }, replyTimeoutMs: 300, clock: systemClock(),
          });
          return native === 'js' ? await withEnv('OTEL_TWAMP_NATIVE', '0', go) : await go();
        } finally {
          f.sock.close();
        }
      };
      // 999 ms earlier: an echoed-T1 sender would report rt ≈ +999 ms; 999 ms later, ≈ −999 ms.
      for (const garble of [-999_000_000n, 999_000_000n]) {
        const r = await run(garble);
        t.diagnostic(`garble ${Number(garble) / 1e6} ms: ${summary(r)}`);
        assert.equal(r.stats.rxPackets, 50);
        assert.equal(r.t1Mismatches, 50, 'every reply carried a T1 other than ours');
        assert.ok(r.stats.rt.minDelayNs! >= 0, `rt min ${r.stats.rt.minDelayNs} ns`);
        assert.ok(r.stats.rt.maxDelayNs! < 100_000_000, `rt max ${r.stats.rt.maxDelayNs} ns (an echoed T1 would give ~999 ms)`);
        assert.ok(r.stats.out.minDelayNs! >= 0 && r.stats.out.maxDelayNs! < 100_000_000, `out ${r.stats.out.minDelayNs}..${r.stats.out.maxDelayNs} ns`);
        assert.equal(r.stats.unexpected, 1, 'the reply to a sequence number never sent');
        assert.equal(r.timestamps?.datapath, native);
        if (native === 'native') {
          // Fake reflector: TTL 255 as sent, Sender TTL 255 echoed.
          assert.deepEqual(r.path?.inbound.hops, { min: 0, max: 0 });
          assert.deepEqual(r.path?.outbound.hops, { min: 0, max: 0 });
        }
      }
    });
  }

  it('native: received TTL below 255 shows as inbound hops', async (t) => {
    if (!needNative(t)) return;
    const f = await garblingReflector(0n, 250);
    try {
      const r = await runLightSenderSession({
        host: '127.0.0.1', port: f.port, format: 'twamp', dscp: 0, nPackets: 10,
        model: { model: 'cbr', bandwidth: 500 * 100 * 8, size: 100 }, replyTimeoutMs: 300, clock: systemClock(),
      });
      assert.deepEqual(r.path?.inbound.ttl, { min: 250, max: 250 });
      assert.deepEqual(r.path?.inbound.hops, { min: 5, max: 5 });
      assert.equal(r.t1Mismatches, 0);
    } finally {
      f.sock.close();
    }
  });
});

describe('sender datapath: against perfSONAR twampd (interop)', { timeout: 120_000 }, () => {
  it('native, 300 packets at 50 pps: kernel timestamps, rt min < 500 µs, no negative one-way delay, 0 hops, DSCP as received', async (t) => {
    if (!needNative(t)) return;
    const peers = requirePeersOrSkip(t);
    if (!peers) return;
    const d = await startTwampd(peers);
    try {
      const r = await runSenderSession({
        ...SESSION, controlPort: d.port, dscp: 46, nPackets: 300, model: { model: 'g711' }, replyTimeoutMs: 1000,
      });
      t.diagnostic(summary(r));
      assert.equal(r.stats.rxPackets, 300);
      assert.equal(r.timestamps?.source, 'kernel');
      // twampd takes T2/T3 in userspace, so its wake-up latency (tens of µs, more on a loaded host) is in the figure.
      assert.ok(r.stats.rt.minDelayNs! < 500_000, `rt min ${us(r.stats.rt.minDelayNs)} (generous: loopback)`);
      // twampd reads the same CLOCK_REALTIME on this host.
      assert.ok(r.stats.out.minDelayNs! >= 0, `outbound min ${r.stats.out.minDelayNs} ns`);
      assert.ok(r.stats.in.minDelayNs! >= 0, `inbound min ${r.stats.in.minDelayNs} ns`);
      assert.equal(r.t1Mismatches, 0, 'twampd echoes our T1 unchanged');
      assert.deepEqual(r.path?.outbound.hops, { min: 0, max: 0 }, 'twampd echoes the received TTL (255)');
      assert.deepEqual(r.path?.inbound.hops, { min: 0, max: 0 }, 'twampd sends with TTL 255');
      assert.equal(r.path?.inbound.dscp, 46, 'twampd replies with the session DSCP (Type-P)');
      assert.equal(r.path?.inbound.remarked, 0);
    } finally {
      await d.stop();
    }
  });
});
