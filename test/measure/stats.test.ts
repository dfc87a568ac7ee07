import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SessionStats, ntpDiffNs, type SessionResult } from '../../src/measure/stats.js';

// 2024-01-01T00:00:00Z in NTP (RFC 5905 era 0) plus 1000 s, so that every
// test time, even with a negative clock offset, stays positive.
const EPOCH = (0xe93c7f00n + 1000n) << 32n;

/** NTP timestamp `ns` after EPOCH (ns may be negative), rounded to the nearest unit. */
function ts(ns: number): bigint {
  const n = BigInt(ns);
  const units = n >= 0n ? ((n << 32n) + 500_000_000n) / 1_000_000_000n : -((-n << 32n) + 500_000_000n) / 1_000_000_000n;
  return EPOCH + units;
}

const MS = 1_000_000;
const GAP = 20 * MS;

interface Path {
  /** Forward delay of sender packet s, ns (true, clock-independent). */
  fwd?: (s: number) => number;
  back?: (s: number) => number;
  residence?: number;
  /** Reflector clock minus sender clock, ns. */
  offset?: number;
}

/**
 * One reply for sender seq `s` reflected with reflector seq `r`. `extra`
 * delays the reflector (for a forward duplicate arriving later).
 */
function reply(s: number, r: number, p: Path = {}, extra = 0, sizeIp = 200) {
  const fwd = (p.fwd ?? (() => 10 * MS))(s) + extra;
  const back = (p.back ?? (() => 15 * MS))(s);
  const res = p.residence ?? 50_000;
  const off = p.offset ?? 0;
  const t1 = s * GAP;
  const t2 = t1 + fwd + off;
  const t3 = t2 + res;
  const t4 = t3 - off + back;
  return { senderSeq: s, reflectorSeq: r, t1: ts(t1), t2: ts(t2), t3: ts(t3), t4: ts(t4), sizeIp };
}

function session(n: number, replies: [s: number, r: number][], p: Path = {}, opts = {}): SessionResult {
  const st = new SessionStats(opts);
  for (let s = 0; s < n; s++) st.recordSent({ seq: s, sizeIp: 200, t1: ts(s * GAP) });
  for (const [s, r] of replies) st.recordReply(reply(s, r, p));
  return st.result();
}

function losses(x: SessionResult): { out: number; in: number; rt: number } {
  return { out: x.out.loss, in: x.in.loss, rt: x.rt.loss };
}

function counts(x: SessionResult): { duplicates: number; reordered: number; unexpected: number } {
  return { duplicates: x.duplicates, reordered: x.reordered, unexpected: x.unexpected };
}

describe('ntpDiffNs', () => {
  it('converts signed 64-bit differences', () => {
    const t = 0xe3d0d02000000000n;
    assert.equal(ntpDiffNs(t + 0x80000000n, t), 500_000_000);
    assert.equal(ntpDiffNs(t + (1n << 32n), t), 1_000_000_000);
    assert.equal(ntpDiffNs(t + 0xffffffffn, t), 1_000_000_000); // 999 999 999.77 rounds up
    assert.equal(ntpDiffNs(t, t + (1n << 32n)), -1_000_000_000);
    assert.equal(ntpDiffNs(t + 1n, t), 0); // 0.23 ns
    assert.equal(ntpDiffNs(t + 3n, t), 1); // 0.70 ns
    assert.equal(ntpDiffNs(t, t + 3n), -1);
  });
  it('is correct across the 2036 NTP era wrap', () => {
    assert.equal(ntpDiffNs(0x00000001_00000000n, 0xffffffff_00000000n), 2_000_000_000);
    assert.equal(ntpDiffNs(0xffffffff_00000000n, 0x00000001_00000000n), -2_000_000_000);
  });
});

describe('SessionStats: delays', () => {
  it('Gufo one-packet vector: T1..T4 one second apart', () => {
    const st = new SessionStats();
    const t = 0xe3d0d02000000000n;
    const s = 1n << 32n;
    st.recordSent({ seq: 0, sizeIp: 200, t1: t });
    st.recordReply({ senderSeq: 0, reflectorSeq: 0, t1: t, t2: t + s, t3: t + 2n * s, t4: t + 3n * s, sizeIp: 200 });
    const x = st.result();
    assert.equal(x.rt.avgDelayNs, 2e9);
    assert.equal(x.out.avgDelayNs, 1e9);
    assert.equal(x.in.avgDelayNs, 1e9);
    assert.deepEqual(x.residence, { minNs: 1e9, maxNs: 1e9, avgNs: 1e9 });
    assert.equal(x.rt.jitterNs, 0);
  });

  it('no loss, constant delay: exact delays, jitter 0', () => {
    const x = session(10, Array.from({ length: 10 }, (_, i) => [i, i] as [number, number]));
    const constant = (d: number) => ({ samples: 10, minDelayNs: d, maxDelayNs: d, p50DelayNs: d, p90DelayNs: d, p99DelayNs: d, avgDelayNs: d, jitterNs: 0, loss: 0 });
    assert.deepEqual(x.out, constant(10 * MS));
    assert.deepEqual(x.in, constant(15 * MS));
    assert.deepEqual(x.rt, constant(25 * MS));
    assert.deepEqual(x.residence, { minNs: 50_000, maxNs: 50_000, avgNs: 50_000 });
    assert.deepEqual(counts(x), { duplicates: 0, reordered: 0, unexpected: 0 });
    assert.equal(x.rxPackets, 10);
  });

  it('known jitter sequence (RFC 3550 §6.4.1, seeded from the first sample)', () => {
    // Forward delays 1.0, 1.2, 0.9, 1.1 ms; backward constant.
    //   J1 = 0
    //   J2 = 0 + (200000 − 0)/16                 = 12500
    //   J3 = 12500 + (300000 − 12500)/16         = 30468.75
    //   J4 = 30468.75 + (200000 − 30468.75)/16   = 41064.453125 → 41064
    // (The reference, seeded from 0, would report 92564.)
    const fwd = [1_000_000, 1_200_000, 900_000, 1_100_000];
    const x = session(4, [[0, 0], [1, 1], [2, 2], [3, 3]], { fwd: (s) => fwd[s]! });
    assert.equal(x.out.jitterNs, 41_064);
    assert.equal(x.out.minDelayNs, 900_000);
    assert.equal(x.out.maxDelayNs, 1_200_000);
    assert.equal(x.out.avgDelayNs, 1_050_000);
    assert.equal(x.in.jitterNs, 0);
    assert.equal(x.rt.jitterNs, 41_064); // rt = fwd + constant
    assert.equal(x.rt.avgDelayNs, 16_050_000);
  });

  it('jitter is taken in arrival order', () => {
    // Delays by seq 10, 20, 10 ms; arrival order seq 0, 2, 1 → delays 10, 10, 20:
    // D = 0 then 10 ms → J = 10e6/16 = 625000. In seq order it would be 1 210 937.5.
    const fwd = [10 * MS, 20 * MS, 10 * MS];
    const x = session(3, [[0, 0], [2, 2], [1, 1]], { fwd: (s) => fwd[s]! });
    assert.equal(x.out.jitterNs, 625_000);
    assert.equal(x.reordered, 1);
  });

  it('one-way delays are signed: reflector clock 5 ms behind', () => {
    // True forward 2 ms, backward 3 ms, offset −5 ms: T2 − T1 = −3 ms, T4 − T3 = 8 ms.
    const x = session(3, [[0, 0], [1, 1], [2, 2]], { fwd: () => 2 * MS, back: () => 3 * MS, offset: -5 * MS });
    assert.equal(x.out.minDelayNs, -3 * MS);
    assert.equal(x.out.avgDelayNs, -3 * MS);
    assert.equal(x.in.avgDelayNs, 8 * MS);
    assert.equal(x.rt.avgDelayNs, 5 * MS); // offset cancels; residence excluded
    assert.equal(x.out.jitterNs, 0);
  });

  it('mean is exact and rounded to ns (ties upward)', () => {
    const st = new SessionStats();
    const t = 0xe3d0d02000000000n;
    const ns = (n: number) => (BigInt(n) << 32n) / 1_000_000_000n + 1n; // ≥ n ns, < n + 1 ns… rounds to n
    st.recordSent({ seq: 0, sizeIp: 100, t1: t });
    st.recordSent({ seq: 1, sizeIp: 100, t1: t });
    st.recordReply({ senderSeq: 0, reflectorSeq: 0, t1: t, t2: t + ns(1), t3: t + ns(1), t4: t + ns(1), sizeIp: 100 });
    st.recordReply({ senderSeq: 1, reflectorSeq: 1, t1: t, t2: t + ns(2), t3: t + ns(2), t4: t + ns(2), sizeIp: 100 });
    const x = st.result();
    assert.equal(x.out.minDelayNs, 1);
    assert.equal(x.out.maxDelayNs, 2);
    assert.equal(x.out.avgDelayNs, 2); // 1.5 → 2
    assert.equal(x.out.jitterNs, 0); // 1/16 ns
    assert.equal(x.in.avgDelayNs, 0);

    const neg = session(2, [[0, 0], [1, 1]], { fwd: (s) => [1, 2][s]!, offset: -3 });
    assert.equal(neg.out.avgDelayNs, -1); // −2, −1 → −1.5 → −1
  });
});

describe('SessionStats: loss', () => {
  it('forward loss only', () => {
    // Sent 0..4; seq 2 lost before the reflector, which numbers 0,1,3,4 as 0..3.
    const x = session(5, [[0, 0], [1, 1], [3, 2], [4, 3]]);
    assert.deepEqual(losses(x), { out: 1, in: 0, rt: 1 });
    assert.equal(x.rxPackets, 4);
    assert.equal(x.out.samples, 4);
  });

  it('backward loss only', () => {
    // The reflector saw every packet; reflection 2 was lost on the way back.
    const x = session(5, [[0, 0], [1, 1], [3, 3], [4, 4]]);
    assert.deepEqual(losses(x), { out: 0, in: 1, rt: 1 });
  });

  it('both directions', () => {
    // Sent 0..5. Seq 1 lost forward (reflector: 0→0, 2→1, 3→2, 4→3, 5→4);
    // reflection 2 (seq 3) lost backward.
    const x = session(6, [[0, 0], [2, 1], [4, 3], [5, 4]]);
    assert.deepEqual(losses(x), { out: 1, in: 1, rt: 2 });
  });

  it('tail loss counts in rt only', () => {
    // Sent 0..4; nothing came back after seq 2: lost forward or backward, unknowable.
    const x = session(5, [[0, 0], [1, 1], [2, 2]]);
    assert.deepEqual(losses(x), { out: 0, in: 0, rt: 2 });
  });

  it('everything lost: rt only, no samples', () => {
    const x = session(5, []);
    assert.deepEqual(losses(x), { out: 0, in: 0, rt: 5 });
    assert.deepEqual(x.out, { samples: 0, loss: 0 });
    assert.deepEqual(x.residence, {});
    assert.equal(x.rxPps, 0);
    assert.equal(x.rxBitrate, 0);
  });

  it('empty session: zeros, no NaN', () => {
    const x = new SessionStats().result();
    assert.deepEqual(x, {
      txPackets: 0,
      rxPackets: 0,
      txBytes: 0,
      rxBytes: 0,
      durationNs: 0,
      txPps: 0,
      rxPps: 0,
      txBitrate: 0,
      rxBitrate: 0,
      out: { samples: 0, loss: 0 },
      in: { samples: 0, loss: 0 },
      rt: { samples: 0, loss: 0 },
      duplicates: 0,
      reordered: 0,
      unexpected: 0,
      residence: {},
    });
  });
});

describe('SessionStats: reordering (RFC 4737)', () => {
  it('forward path', () => {
    // Reflector receives 0, 2, 1, 3 and numbers them in that order.
    const x = session(4, [[0, 0], [2, 1], [1, 2], [3, 3]]);
    assert.equal(x.reordered, 1);
    assert.deepEqual(losses(x), { out: 0, in: 0, rt: 0 });
  });

  it('backward path', () => {
    const x = session(4, [[0, 0], [2, 2], [1, 1], [3, 3]]);
    assert.equal(x.reordered, 1);
    assert.deepEqual(losses(x), { out: 0, in: 0, rt: 0 });
  });

  it('a late packet counts once even when several overtook it', () => {
    const x = session(5, [[1, 1], [2, 2], [3, 3], [0, 0], [4, 4]]);
    assert.equal(x.reordered, 1);
  });

  it('forward reordering plus backward loss never gives negative loss', () => {
    // Reflector got 1 then 0 (r 0, 1); reflection of seq 1 lost. The naive
    // forward loss (max s + 1) − (max r + 1) = 1 − 2 would be −1.
    const x = session(2, [[0, 1]]);
    assert.deepEqual(losses(x), { out: 0, in: 1, rt: 1 });
  });
});

describe('SessionStats: duplicates', () => {
  it('forward duplicate: same sender seq, new reflector seq', () => {
    // Reflector received 0, 1, 1, 2 → r 0..3.
    const st = new SessionStats();
    for (let s = 0; s < 3; s++) st.recordSent({ seq: s, sizeIp: 200, t1: ts(s * GAP) });
    for (const [s, r, extra] of [[0, 0, 0], [1, 1, 0], [1, 2, MS], [2, 3, 0]] as const) {
      st.recordReply(reply(s, r, {}, extra));
    }
    const x = st.result();
    assert.deepEqual(losses(x), { out: 0, in: 0, rt: 0 });
    assert.deepEqual(counts(x), { duplicates: 1, reordered: 0, unexpected: 0 });
    assert.equal(x.rxPackets, 3);
    assert.equal(x.rxBytes, 600);
    assert.equal(x.out.samples, 3);
    assert.equal(x.out.maxDelayNs, 10 * MS); // the later copy is not a sample
  });

  it('backward duplicate: same sender and reflector seq', () => {
    const x = session(3, [[0, 0], [1, 1], [1, 1], [2, 2]]);
    assert.deepEqual(losses(x), { out: 0, in: 0, rt: 0 });
    assert.deepEqual(counts(x), { duplicates: 1, reordered: 0, unexpected: 0 });
    assert.equal(x.rxPackets, 3);
  });

  it('backward copy of a forward duplicate', () => {
    const x = session(3, [[0, 0], [1, 1], [1, 2], [1, 2], [2, 3]]);
    assert.deepEqual(losses(x), { out: 0, in: 0, rt: 0 });
    assert.equal(x.duplicates, 2);
  });

  it('forward duplicate with forward loss', () => {
    // Sent 0..3; reflector got 0, 0, 2, 3 (1 lost) → r 0..3.
    const x = session(4, [[0, 0], [0, 1], [2, 2], [3, 3]]);
    assert.deepEqual(losses(x), { out: 1, in: 0, rt: 1 });
    assert.equal(x.duplicates, 1);
  });

  it('a duplicate arriving late is not reordering', () => {
    const x = session(3, [[0, 0], [1, 1], [2, 2], [0, 0]]);
    assert.deepEqual(counts(x), { duplicates: 1, reordered: 0, unexpected: 0 });
  });
});

describe('SessionStats: stateless reflector (reflector seq = sender seq)', () => {
  // Seq 1 lost (either way), seq 2 duplicated (either way).
  const replies: [number, number][] = [[0, 0], [2, 2], [2, 2], [3, 3]];
  it('declared stateless: loss in rt only, duplicates counted', () => {
    const x = session(5, replies, {}, { statelessReflector: true });
    assert.deepEqual(losses(x), { out: 0, in: 0, rt: 2 });
    assert.deepEqual(counts(x), { duplicates: 1, reordered: 0, unexpected: 0 });
    assert.equal(x.rxPackets, 3);
  });
  it('not declared: head loss reads as backward loss, never negative', () => {
    // Indistinguishable from a stateful reflector that lost reflection 1.
    const x = session(5, replies);
    assert.deepEqual(losses(x), { out: 0, in: 1, rt: 2 });
    assert.equal(x.duplicates, 1);
  });
});

describe('SessionStats: unexpected replies', () => {
  it('replies to never-sent seqs are counted and excluded', () => {
    const st = new SessionStats();
    st.recordReply(reply(0, 0)); // before anything was sent
    for (let s = 0; s < 3; s++) st.recordSent({ seq: s, sizeIp: 200, t1: ts(s * GAP) });
    st.recordReply(reply(0, 0));
    st.recordReply(reply(99, 1));
    st.recordReply(reply(1, 2));
    st.recordReply(reply(2, 3));
    const x = st.result();
    assert.equal(x.unexpected, 2);
    assert.equal(x.rxPackets, 3);
    assert.equal(x.duplicates, 0);
    assert.equal(x.rt.loss, 0);
    assert.equal(x.out.maxDelayNs, 10 * MS);
  });
  it('sequence numbers may start anywhere and wrap at 2^32', () => {
    const st = new SessionStats();
    const seqs = [0xfffffffe, 0xffffffff, 0, 1];
    seqs.forEach((seq, i) => st.recordSent({ seq, sizeIp: 200, t1: ts(i * GAP) }));
    seqs.forEach((seq, i) => st.recordReply({ ...reply(i, i), senderSeq: seq }));
    st.recordReply({ ...reply(0, 9), senderSeq: 0xfffffffd }); // before the first
    const x = st.result();
    assert.equal(x.rxPackets, 4);
    assert.equal(x.unexpected, 1);
    assert.deepEqual(losses(x), { out: 0, in: 0, rt: 0 });
    assert.equal(x.reordered, 0);
  });
  it('rejects sequence numbers that are not uint32', () => {
    const st = new SessionStats();
    assert.throws(() => st.recordSent({ seq: -1, sizeIp: 200, t1: ts(0) }), RangeError);
    assert.throws(() => st.recordSent({ seq: 2 ** 32, sizeIp: 200, t1: ts(0) }), RangeError);
    assert.throws(() => st.recordReply({ ...reply(0, 0), reflectorSeq: 0.5 }), RangeError);
  });
});

describe('SessionStats: bytes and rates', () => {
  it('100 g711 packets 20 ms apart: 1.98 s, 50 pps, 80 000 bit/s', () => {
    const x = session(100, Array.from({ length: 100 }, (_, i) => [i, i] as [number, number]));
    assert.equal(x.txPackets, 100);
    assert.equal(x.txBytes, 20_000);
    assert.equal(x.durationNs, 1_980_000_000);
    assert.equal(x.txPps, 50);
    assert.equal(x.txBitrate, 80_000);
    assert.equal(x.rxPackets, 100);
    assert.equal(x.rxBytes, 20_000);
    assert.equal(x.rxPps, 50);
    assert.equal(x.rxBitrate, 80_000);
  });

  it('the last packet is excluded from the bitrate (imix-like sizes)', () => {
    const st = new SessionStats();
    const sizes = [70, 576, 1500];
    sizes.forEach((sizeIp, i) => st.recordSent({ seq: i, sizeIp, t1: ts(i * MS) }));
    const x = st.result();
    assert.equal(x.txBytes, 2146);
    assert.equal(x.durationNs, 2 * MS);
    assert.equal(x.txPps, 1000);
    assert.equal(x.txBitrate, ((70 + 576) * 8) / 0.002);
  });

  it('rx span is over arrivals (T4), and rx counts first replies only', () => {
    // Replies 69 octets (g729 request 60 → 41-octet reflector payload); arrivals 10 ms apart.
    const st = new SessionStats();
    for (let s = 0; s < 3; s++) st.recordSent({ seq: s, sizeIp: 60, t1: ts(s * GAP) });
    st.recordReply(reply(0, 0, { back: () => 15 * MS }, 0, 69));
    st.recordReply(reply(1, 1, { back: () => 5 * MS }, 0, 69)); // arrives 10 ms later
    st.recordReply(reply(1, 1, {}, 0, 69)); // backward duplicate: not counted
    const x = st.result();
    assert.equal(x.txBytes, 180);
    assert.equal(x.rxBytes, 138);
    assert.equal(x.rxPackets, 2);
    assert.equal(x.rxPps, 100);
    assert.equal(x.rxBitrate, (69 * 8) / 0.01);
  });

  it('fewer than two packets: rates 0', () => {
    const x = session(1, [[0, 0]]);
    assert.equal(x.durationNs, 0);
    assert.deepEqual([x.txPps, x.txBitrate, x.rxPps, x.rxBitrate], [0, 0, 0, 0]);
    assert.equal(x.txBytes, 200);
  });
});

describe('SessionStats: scale', () => {
  it('10^6 packets with loss, duplicates and reordering', () => {
    const n = 1_000_000;
    const st = new SessionStats();
    for (let s = 0; s < n; s++) st.recordSent({ seq: s, sizeIp: 200, t1: ts(s * GAP) });
    // Every 1000th packet lost forward, every 1000th (offset 500) reflection lost
    // backward, every 10000th duplicated backward, pairs swapped every 5000.
    let r = 0;
    const got: [number, number][] = [];
    for (let s = 0; s < n; s++) {
      if (s % 1000 === 0) continue;
      const rs = r++;
      if (s % 1000 === 500) continue;
      got.push([s, rs]);
      if (s % 10_000 === 1) got.push([s, rs]);
    }
    for (let k = 0; k + 1 < got.length; k += 5000) [got[k], got[k + 1]] = [got[k + 1]!, got[k]!];
    const t0 = Date.now();
    for (const [s, rs] of got) st.recordReply(reply(s, rs));
    const x = st.result();
    const elapsed = Date.now() - t0;
    assert.equal(x.out.loss, 1000); // seqs 0, 1000, …, 999000: all below the last answered
    assert.equal(x.in.loss, 1000);
    assert.equal(x.rt.loss, 2000);
    assert.equal(x.duplicates, 100);
    assert.ok(x.reordered > 0);
    assert.ok(elapsed < 10_000, `${elapsed} ms`);
  });
});

describe('SessionStats: percentiles', () => {
  it('nearest-rank p50/p90/p99 per direction, and the samples in arrival order', () => {
    const st = new SessionStats();
    const s = (ms: number) => BigInt(Math.round(ms * 1e6)) * (1n << 32n) / 1_000_000_000n;
    // round-trip delays 1..100 ms, arriving in reverse order
    for (let i = 0; i < 100; i++) st.recordSent({ seq: i, sizeIp: 100, t1: s(i * 1000) });
    for (let i = 99; i >= 0; i--) {
      const t1 = s(i * 1000);
      st.recordReply({ senderSeq: i, reflectorSeq: 99 - i, t1, t2: t1, t3: t1, t4: t1 + s(i + 1), sizeIp: 100 });
    }
    const x = st.result();
    assert.equal(x.rt.p50DelayNs, 50 * MS);
    assert.equal(x.rt.p90DelayNs, 90 * MS);
    assert.equal(x.rt.p99DelayNs, 99 * MS);
    const rt = st.delaySamples('rt');
    assert.equal(rt.length, 100);
    assert.equal(rt[0], 100 * MS, 'arrival order');
  });
});

describe('SessionStats: live counts (what a sender waits on while the session runs)', () => {
  it('sentPackets and answeredPackets follow every record and agree with result() at each step', () => {
    const st = new SessionStats();
    const check = (sent: number, answered: number, what: string): void => {
      assert.equal(st.sentPackets, sent, `${what}: sentPackets`);
      assert.equal(st.answeredPackets, answered, `${what}: answeredPackets`);
      const x = st.result();
      assert.equal(x.txPackets, st.sentPackets, `${what}: = txPackets`);
      assert.equal(x.rxPackets, st.answeredPackets, `${what}: = rxPackets`);
    };
    check(0, 0, 'empty');
    st.recordReply(reply(0, 0));
    check(0, 0, 'reply before anything was sent (unexpected)');
    for (let s = 0; s < 4; s++) st.recordSent({ seq: s, sizeIp: 200, t1: ts(s * GAP) });
    check(4, 0, 'four sent');
    st.recordReply(reply(1, 0));
    check(4, 1, 'first reply');
    st.recordReply(reply(1, 0));
    check(4, 1, 'backward duplicate');
    st.recordReply(reply(1, 1));
    check(4, 1, 'forward duplicate');
    st.recordReply(reply(7, 2));
    check(4, 1, 'reply to a packet never sent');
    st.recordReply(reply(0, 3));
    check(4, 2, 'reordered first reply');
    st.recordSent({ seq: 4, sizeIp: 200, t1: ts(4 * GAP) });
    st.recordReply(reply(4, 4));
    check(5, 3, 'sent and answered later');
    assert.deepEqual(counts(st.result()), { duplicates: 2, reordered: 1, unexpected: 2 });
  });
});
