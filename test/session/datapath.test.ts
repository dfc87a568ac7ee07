/**
 * The test-socket datapath (src/session/datapath.ts over native/datapath.cc),
 * through its JS API, on loopback only.
 *
 * Native tests skip (loudly) when the helper is not built, except under CI,
 * where `npm ci` builds it and a missing helper is a failure.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  datapathSupport, openTestSocket, DatapathError,
  type DepartureReport, type RxDatagram, type TestSocket, type TestSocketOptions, type TxTimestamp,
} from '../../src/session/datapath.js';
import { systemClock } from '../../src/session/clock.js';
import { readTimestamp, unixNsFromNtp } from '../../src/protocol/index.js';
import { needNative } from '../helpers/native.js';

/** True when the native datapath can be tested here; otherwise skips (or fails under CI). */
const HOSTS = [{ family: 4 as const, host: '127.0.0.1' }, { family: 6 as const, host: '::1' }];

/** A socket that collects what it receives, its TX timestamps and departures. */
async function collector(opts: Partial<TestSocketOptions> & { family: 4 | 6; address: string }) {
  const rx: RxDatagram[] = [];
  const tx: TxTimestamp[] = [];
  const deps: DepartureReport[] = [];
  const errors: Error[] = [];
  const waiters: (() => void)[] = [];
  const poke = (): void => { for (const w of waiters.splice(0)) w(); };
  const sock = await openTestSocket({
    ...opts,
    onPackets: opts.onPackets ?? ((b) => { rx.push(...b); poke(); }),
    onTxTimestamp: (s) => { tx.push(...s); poke(); },
    onDeparture: (d) => { deps.push(...d); poke(); },
    onError: (e) => { errors.push(e); poke(); },
  });
  /** Waits until cond() holds (bounded). */
  const until = async (cond: () => boolean, what: string, ms = 5000): Promise<void> => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
      await new Promise<void>((r) => { waiters.push(r); setTimeout(r, 20); });
    }
  };
  return { sock, rx, tx, deps, errors, until };
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * (s.length - 1)))]!;
}

describe('native datapath', () => {
  for (const { family, host } of HOSTS) {
    it(`IPv${family}: kernel receive timestamps, on the clock's timeline, never before the send`, async (t) => {
      if (!needNative(t)) return;
      const clock = systemClock();
      assert.equal(clock.source.kind, 'realtime', 'with the helper built the clock reads CLOCK_REALTIME');
      const r = await collector({ family, address: host });
      const s = await collector({ family, address: host });
      try {
        assert.equal(r.sock.kind, 'native');
        // Linux turns receive timestamping on for the whole host lazily (a deferred static key) when the first
        // timestamping socket appears, so a datagram right after that can arrive unstamped (seen when this file
        // runs alone): wait for a kernel-stamped one-octet datagram before the measured run.
        const warm = Date.now() + 5000;
        for (;;) {
          s.sock.send(Buffer.from([0xff]), host, r.sock.local.port);
          await new Promise((res) => setTimeout(res, 20));
          if (r.rx.some((d) => d.data.length === 1 && d.tsSource === 'kernel')) break;
          if (Date.now() > warm) assert.fail('no kernel-stamped datagram within 5 s');
        }
        const before: bigint[] = [];
        for (let i = 0; i < 20; i++) {
          before.push(clock.nowUnixNs());
          s.sock.send(Buffer.alloc(48, i), host, r.sock.local.port);
          await new Promise((res) => setTimeout(res, 2));
        }
        const mine = (): RxDatagram[] => r.rx.filter((d) => d.port === s.sock.local.port && d.address === host && d.data.length === 48);
        await r.until(() => mine().length >= 20, '20 datagrams');
        const got = mine();
        const offsetsUs: number[] = [];
        for (let i = 0; i < 20; i++) {
          const d = got[i]!;
          assert.equal(d.tsSource, 'kernel');
          assert.equal(d.data[0], i, `datagram ${i} in order`);
          // Same clock as clock.nowUnixNs(): a packet is never received before it was sent
          // (the old anchored clock ran ~20-30 µs ahead of the kernel's and failed this).
          const delta = d.rxRealtimeNs - before[i]!;
          offsetsUs.push(Number(delta) / 1000);
          assert.ok(delta >= 0n, `rx ${d.rxRealtimeNs} before the clock read ${before[i]} taken ahead of the send`);
          assert.ok(delta < 5_000_000_000n, `rx ${Number(delta) / 1e6} ms after the send`);
          if (i > 0) assert.ok(d.rxRealtimeNs >= got[i - 1]!.rxRealtimeNs, 'receive timestamps are monotonic');
        }
        assert.equal(r.sock.timestampSource(), 'kernel');
        t.diagnostic(`rx timestamp - clock read before send: p50 ${quantile(offsetsUs, 0.5).toFixed(1)} µs, ` +
          `max ${quantile(offsetsUs, 1).toFixed(1)} µs`);
      } finally {
        r.sock.close();
        s.sock.close();
      }
    });

    it(`IPv${family}: received TTL/hop limit and TOS/traffic class are read back`, async (t) => {
      if (!needNative(t)) return;
      const r = await collector({ family, address: host });
      const s = await collector({ family, address: host });
      try {
        s.sock.send(Buffer.alloc(40), host, r.sock.local.port);
        await r.until(() => r.rx.length >= 1, 'the first datagram');
        assert.equal(r.rx[0]!.ttl, 255, 'default TTL 255 (RFC 5357 §4.1.2)');
        assert.equal(r.rx[0]!.tos, 0);
        s.sock.setTtl(42);
        s.sock.setTos(0xb8);
        s.sock.send(Buffer.alloc(40), host, r.sock.local.port);
        await r.until(() => r.rx.length >= 2, 'the second datagram');
        assert.equal(r.rx[1]!.ttl, 42);
        assert.equal(r.rx[1]!.tos, 0xb8);
      } finally {
        r.sock.close();
        s.sock.close();
      }
    });
  }

  it('stamps the send time at the offset, as the time it returns, within the clock readings around it', async (t) => {
    if (!needNative(t)) return;
    const clock = systemClock();
    const r = await collector({ family: 4, address: '127.0.0.1' });
    const s = await collector({ family: 4, address: '127.0.0.1' });
    try {
      const buf = Buffer.alloc(64, 0xaa);
      const lo = clock.nowUnixNs();
      const res = s.sock.send(buf, '127.0.0.1', r.sock.local.port, { stampOffset: 12 });
      const hi = clock.nowUnixNs();
      const stamped = unixNsFromNtp(readTimestamp(buf, 12));
      assert.ok(stamped >= lo - 1n && stamped <= hi + 1n, `${stamped} not in [${lo}, ${hi}]`);
      const diff = stamped - res.stampedRealtimeNs;
      assert.ok(diff >= -1n && diff <= 1n, 'the returned time is the one written (NTP rounding ±1 ns)');
      assert.equal(buf[11], 0xaa);
      assert.equal(buf[20], 0xaa);
      await r.until(() => r.rx.length >= 1, 'the stamped datagram');
      assert.deepEqual(r.rx[0]!.data, buf);
      assert.ok(r.rx[0]!.rxRealtimeNs >= res.stampedRealtimeNs);
      // TX timestamp of this send: the real departure, between stamp and receive.
      await s.until(() => s.tx.some((x) => x.txId === res.txId), 'the TX timestamp');
      const tx = s.tx.find((x) => x.txId === res.txId)!;
      assert.equal(tx.source, 'kernel');
      assert.ok(tx.realtimeNs >= res.stampedRealtimeNs && tx.realtimeNs <= r.rx[0]!.rxRealtimeNs,
        `tx ${tx.realtimeNs} not in [stamp ${res.stampedRealtimeNs}, rx ${r.rx[0]!.rxRealtimeNs}]`);
    } finally {
      r.sock.close();
      s.sock.close();
    }
  });

  it('sendBatch: one stamp for the batch, every datagram delivered, consecutive TX ids', async (t) => {
    if (!needNative(t)) return;
    const r = await collector({ family: 6, address: '::1' });
    const s = await collector({ family: 6, address: '::1' });
    try {
      s.sock.send(Buffer.alloc(8), '::1', r.sock.local.port); // TX id 0
      const items = Array.from({ length: 5 }, (_, i) => ({
        data: Buffer.alloc(32, i + 1), address: '::1', port: r.sock.local.port, stampOffset: 4,
      }));
      const res = s.sock.sendBatch(items);
      assert.equal(res.sent, 5);
      assert.equal(res.firstTxId, 1);
      for (const it of items) assert.equal(unixNsFromNtp(readTimestamp(it.data, 4)) - res.stampedRealtimeNs <= 1n, true);
      await r.until(() => r.rx.length >= 6, '6 datagrams');
      assert.deepEqual(r.rx.slice(1).map((d) => d.data[0]), [1, 2, 3, 4, 5]);
      await s.until(() => s.tx.length >= 6, '6 TX timestamps');
      assert.deepEqual(s.tx.map((x) => x.txId).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5]);
    } finally {
      r.sock.close();
      s.sock.close();
    }
  });

  it('scheduled departures leave at their deadlines (200 at 1000 pps), stamped, with TX timestamps', async (t) => {
    if (!needNative(t)) return;
    const r = await collector({ family: 4, address: '127.0.0.1' });
    const s = await collector({ family: 4, address: '127.0.0.1' });
    try {
      const N = 200;
      const start = process.hrtime.bigint() + 30_000_000n;
      for (let i = 0; i < N; i++) {
        const b = Buffer.alloc(48);
        b.writeUInt32BE(i, 0);
        s.sock.schedule({ id: i, deadlineMonoNs: start + BigInt(i) * 1_000_000n, data: b, address: '127.0.0.1', port: r.sock.local.port, stampOffset: 4 });
      }
      await s.until(() => s.deps.length >= N, `${N} departure reports`, 10_000);
      await r.until(() => r.rx.length >= N, `${N} datagrams`, 10_000);
      const lateUs: number[] = [];
      const txUs: number[] = [];
      for (const d of s.deps) {
        assert.equal(d.error, undefined);
        assert.ok(d.sentMonoNs >= d.deadlineMonoNs, `departure ${d.id} left before its deadline`);
        lateUs.push(Number(d.sentMonoNs - d.deadlineMonoNs) / 1000);
        if (d.txRealtimeNs !== undefined) txUs.push(Number(d.txRealtimeNs - d.stampedRealtimeNs) / 1000);
      }
      assert.deepEqual(s.deps.map((d) => d.id).sort((a, b) => a - b), Array.from({ length: N }, (_, i) => i));
      // The stamp in each datagram is the departure's stampedRealtimeNs.
      const byId = new Map(s.deps.map((d) => [d.id, d]));
      for (const d of r.rx) {
        const dep = byId.get(d.data.readUInt32BE(0))!;
        const st = unixNsFromNtp(readTimestamp(d.data, 4));
        assert.ok(st - dep.stampedRealtimeNs <= 1n && dep.stampedRealtimeNs - st <= 1n);
      }
      assert.ok(txUs.length >= N * 0.9, `only ${txUs.length}/${N} departures got their TX timestamp`);
      const p50 = quantile(lateUs, 0.5);
      const p99 = quantile(lateUs, 0.99);
      t.diagnostic(`departure - deadline: p50 ${p50.toFixed(1)} µs, p99 ${p99.toFixed(1)} µs, max ${quantile(lateUs, 1).toFixed(1)} µs; ` +
        `TX - stamp p50 ${quantile(txUs, 0.5).toFixed(1)} µs`);
      // Generous (a shared 2-core machine); precise figures are bench/departure.ts's.
      assert.ok(p50 < 1000, `median departure error ${p50} µs`);
      assert.ok(p99 < 20_000, `p99 departure error ${p99} µs`);
    } finally {
      r.sock.close();
      s.sock.close();
    }
  });

  it('pre-stamped departures are sent untouched; the report carries the real departure', async (t) => {
    if (!needNative(t)) return;
    const r = await collector({ family: 4, address: '127.0.0.1' });
    const s = await collector({ family: 4, address: '127.0.0.1' });
    try {
      const b = Buffer.alloc(48, 0x5c);
      s.sock.schedule({ id: 9, deadlineMonoNs: process.hrtime.bigint() + 5_000_000n, data: b, address: '127.0.0.1', port: r.sock.local.port });
      b.fill(0); // the datapath sends its own copy
      await r.until(() => r.rx.length >= 1, 'the datagram');
      assert.deepEqual(r.rx[0]!.data, Buffer.alloc(48, 0x5c));
      await s.until(() => s.deps.length >= 1, 'the report');
      assert.equal(s.deps[0]!.id, 9);
      assert.ok(s.deps[0]!.txRealtimeNs !== undefined && s.deps[0]!.txRealtimeNs <= r.rx[0]!.rxRealtimeNs);
    } finally {
      r.sock.close();
      s.sock.close();
    }
  });

  it('hostile inputs: truncated datagrams are flagged, bad sends are typed errors, a closed socket refuses', async (t) => {
    if (!needNative(t)) return;
    const r = await collector({ family: 4, address: '127.0.0.1', maxDatagram: 256 });
    const s = await collector({ family: 4, address: '127.0.0.1' });
    try {
      const port = r.sock.local.port;
      s.sock.send(Buffer.alloc(2000, 7), '127.0.0.1', port);
      s.sock.send(Buffer.alloc(0), '127.0.0.1', port);
      s.sock.send(Buffer.alloc(100, 9), '127.0.0.1', port);
      await r.until(() => r.rx.length >= 3, '3 datagrams');
      assert.equal(r.rx[0]!.truncated, true);
      assert.equal(r.rx[0]!.data.length, 256);
      assert.equal(r.rx[1]!.data.length, 0);
      assert.equal(r.rx[2]!.truncated, false);
      assert.equal(r.rx[2]!.data.length, 100);

      assert.throws(() => s.sock.send(Buffer.alloc(8), '127.0.0.1', 0),
        (e: unknown) => e instanceof DatapathError && e.code === 'EINVAL' && e.syscall === 'sendmsg');
      assert.throws(() => s.sock.send(Buffer.alloc(8), 'not-an-address', port), DatapathError);
      assert.throws(() => s.sock.send(Buffer.alloc(8), '127.0.0.1', port, { stampOffset: 4 }),
        (e: unknown) => e instanceof DatapathError && e.code === 'ERR_OUT_OF_RANGE');
      // A scheduled send that fails is reported, not thrown on the thread.
      s.sock.schedule({ id: 1, deadlineMonoNs: process.hrtime.bigint(), data: Buffer.alloc(8), address: '127.0.0.1', port: 0 });
      await s.until(() => s.deps.length >= 1, 'the failed departure');
      assert.equal(s.deps[0]!.error?.code, 'EINVAL');

      // An exception in a callback goes to onError; the socket keeps working.
      let thrown = 0;
      const bad: TestSocket = await openTestSocket({
        family: 4, address: '127.0.0.1', onPackets: () => { thrown++; throw new Error('handler bug'); },
        onError: (e) => r.errors.push(e),
      });
      s.sock.send(Buffer.alloc(8), '127.0.0.1', bad.local.port);
      await r.until(() => thrown >= 1 && r.errors.length >= 1, 'the handler error');
      assert.match(r.errors[0]!.message, /handler bug/);
      s.sock.send(Buffer.alloc(8), '127.0.0.1', bad.local.port);
      await r.until(() => thrown >= 2 && r.errors.length >= 2, 'the second handler error (the socket still receives)');
      bad.close();

      r.sock.close();
      r.sock.close(); // idempotent
      assert.throws(() => r.sock.send(Buffer.alloc(8), '127.0.0.1', port),
        (e: unknown) => e instanceof DatapathError && e.code === 'ERR_SOCKET_CLOSED');
      assert.throws(() => r.sock.schedule({ id: 0, deadlineMonoNs: 0n, data: Buffer.alloc(8), address: '127.0.0.1', port }),
        (e: unknown) => e instanceof DatapathError && e.code === 'ERR_SOCKET_CLOSED');
    } finally {
      r.sock.close();
      s.sock.close();
    }
  });
});

describe('JS fallback datapath (node:dgram)', () => {
  for (const how of ['OTEL_TWAMP_NATIVE=0', 'native: false'] as const) {
    it(`is used with ${how} and says so; userspace stamps, TTL/TOS unknown, setTimeout pacing`, async () => {
      const saved = process.env.OTEL_TWAMP_NATIVE;
      if (how === 'OTEL_TWAMP_NATIVE=0') process.env.OTEL_TWAMP_NATIVE = '0';
      const native = how === 'native: false' ? { native: false } : {};
      let r: Awaited<ReturnType<typeof collector>> | undefined;
      let s: Awaited<ReturnType<typeof collector>> | undefined;
      try {
        if (how === 'OTEL_TWAMP_NATIVE=0') {
          const sup = datapathSupport();
          assert.equal(sup.native, false);
          assert.match((sup as { reason: string }).reason, /OTEL_TWAMP_NATIVE/);
        }
        const rr = await collector({ family: 4, address: '127.0.0.1', ...native });
        r = rr;
        const ss = await collector({ family: 4, address: '127.0.0.1', ...native });
        s = ss;
        assert.equal(r.sock.kind, 'js');
        assert.match(r.sock.fallbackReason ?? '', how === 'native: false' ? /native: false/ : /OTEL_TWAMP_NATIVE/);
        assert.equal(r.sock.timestampSource(), 'userspace');
        const buf = Buffer.alloc(32);
        const res = s.sock.send(buf, '127.0.0.1', r.sock.local.port, { stampOffset: 8 });
        assert.equal(res.txId, -1);
        assert.equal(unixNsFromNtp(readTimestamp(buf, 8)) - res.stampedRealtimeNs <= 1n, true);
        s.sock.schedule({ id: 3, deadlineMonoNs: process.hrtime.bigint() + 10_000_000n, data: Buffer.alloc(32), address: '127.0.0.1', port: r.sock.local.port, stampOffset: 0 });
        await r.until(() => rr.rx.length >= 2, '2 datagrams');
        await s.until(() => ss.deps.length >= 1, 'the departure');
        assert.equal(s.deps[0]!.id, 3);
        assert.ok(s.deps[0]!.sentMonoNs >= s.deps[0]!.deadlineMonoNs);
        for (const d of r.rx) {
          assert.equal(d.tsSource, 'userspace');
          assert.equal(d.ttl, -1);
          assert.equal(d.tos, -1);
        }
        assert.ok(r.rx[0]!.rxRealtimeNs >= res.stampedRealtimeNs);
        const sj = s.sock;
        assert.throws(() => sj.send(Buffer.alloc(8), '127.0.0.1', 0),
          (e: unknown) => e instanceof DatapathError && e.code === 'ERR_SOCKET_BAD_PORT');
        s.sock.close();
        assert.throws(() => sj.send(Buffer.alloc(8), '127.0.0.1', 9),
          (e: unknown) => e instanceof DatapathError && e.code === 'ERR_SOCKET_CLOSED');
      } finally {
        r?.sock.close();
        s?.sock.close();
        if (saved === undefined) delete process.env.OTEL_TWAMP_NATIVE;
        else process.env.OTEL_TWAMP_NATIVE = saved;
      }
    });
  }

  it('native: true fails with a typed error when the native datapath is unavailable', async () => {
    const saved = process.env.OTEL_TWAMP_NATIVE;
    process.env.OTEL_TWAMP_NATIVE = '0';
    try {
      await assert.rejects(openTestSocket({ family: 4, address: '127.0.0.1', native: true, onPackets: () => {} }),
        (e: unknown) => e instanceof DatapathError && e.code === 'ERR_NATIVE_UNAVAILABLE');
    } finally {
      if (saved === undefined) delete process.env.OTEL_TWAMP_NATIVE;
      else process.env.OTEL_TWAMP_NATIVE = saved;
    }
  });
});
