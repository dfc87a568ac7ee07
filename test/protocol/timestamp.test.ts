import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  NTP_UNIX_OFFSET_S,
  ntpDiffNs,
  ntpFromUnixNs,
  ntpIntervalFromNs,
  nsFromNtpInterval,
  readTimestamp,
  unixNsFromNtp,
  writeTimestamp,
} from '../../src/protocol/index.js';

const S = 1_000_000_000n;

/** Deterministic 64-bit xorshift, so failures reproduce. */
function* xorshift64(seed: bigint): Generator<bigint> {
  let x = seed;
  for (;;) {
    x ^= BigInt.asUintN(64, x << 13n);
    x ^= x >> 7n;
    x ^= BigInt.asUintN(64, x << 17n);
    yield x;
  }
}

describe('NTP timestamps (RFC 4656 §4.1.2)', () => {
  it('encodes 2024-01-01T00:00:00.5Z', () => {
    const unixNs = BigInt(Date.UTC(2024, 0, 1)) * 1_000_000n + 500_000_000n;
    const ts = ntpFromUnixNs(unixNs);
    assert.equal(ts >> 32n, 0xe93c7f00n);
    assert.equal(ts & 0xffffffffn, 0x80000000n);
    assert.equal(unixNsFromNtp(ts), unixNs);
    assert.equal(NTP_UNIX_OFFSET_S, 2208988800n);
  });

  it('matches the Gufo vectors with the correct 2^32 fraction scale', () => {
    // Gufo scales by 2^32−1, giving 0x7FFFFFFF for .5 s; the right value is 0x80000000.
    assert.equal(ntpFromUnixNs(1613124000n * S + 500_000_000n), 0xe3d0d02080000000n);
    assert.equal(unixNsFromNtp(0xe3d0d02000000000n), 1613124000n * S);
    assert.equal(unixNsFromNtp(0xe3d0d02200000000n), 1613124002n * S);
    // Gufo's own encoding of .5 s is 0.23 ns short and rounds back to .5 s.
    assert.equal(unixNsFromNtp(0xe3d0d0207fffffffn), 1613124000n * S + 500_000_000n);
    assert.equal(nsFromNtpInterval(0x80000000n), 500_000_000n);
    assert.equal(nsFromNtpInterval(1n << 32n), 1_000_000_000n);
    assert.equal(nsFromNtpInterval(0xffffffffn), 1_000_000_000n); // 999 999 999.77 ns, rounded
    // Gufo's "Timeout 255" is 255 · 2^-32 s, i.e. 59 ns, not 255 s.
    assert.equal(nsFromNtpInterval(255n), 59n);
  });

  it('rounds the fraction to the nearest unit and never overflows it', () => {
    assert.equal(ntpFromUnixNs(999_999_999n) & 0xffffffffn, 0xfffffffcn);
    assert.equal(ntpFromUnixNs(1n) & 0xffffffffn, 4n); // 4.29 units
    assert.equal(ntpFromUnixNs(0n), NTP_UNIX_OFFSET_S << 32n);
  });

  it('handles the 2036 era wrap by choosing the era closest to the pivot', () => {
    const wrapUnixS = (1n << 32n) - NTP_UNIX_OFFSET_S; // 2036-02-07T06:28:16Z
    assert.equal(wrapUnixS, BigInt(Date.UTC(2036, 1, 7, 6, 28, 16) / 1000));
    assert.equal(ntpFromUnixNs(wrapUnixS * S), 0n);
    assert.equal(ntpFromUnixNs((wrapUnixS + 5n) * S), 5n << 32n);
    assert.equal(unixNsFromNtp(0n), wrapUnixS * S); // default pivot 2024 is nearer 2036 than 1900
    assert.equal(unixNsFromNtp(5n << 32n), (wrapUnixS + 5n) * S);
    assert.equal(unixNsFromNtp(0xffffffffn << 32n), (wrapUnixS - 1n) * S);
    // A pivot in 1950 selects era 0.
    assert.equal(unixNsFromNtp(0n, -20n * 365n * 86400n * S), -NTP_UNIX_OFFSET_S * S);
    // Pivot after the wrap: a 2035 timestamp still decodes to 2035.
    const pivot2040 = BigInt(Date.UTC(2040, 0, 1)) * 1_000_000n;
    const y2035 = BigInt(Date.UTC(2035, 5, 1)) * 1_000_000n + 123_456_789n;
    assert.equal(unixNsFromNtp(ntpFromUnixNs(y2035), pivot2040), y2035);
    // Differences across the wrap stay small and signed.
    const before = ntpFromUnixNs((wrapUnixS - 1n) * S);
    const after = ntpFromUnixNs((wrapUnixS + 1n) * S + 500_000_000n);
    assert.equal(ntpDiffNs(after, before), 2_500_000_000n);
    assert.equal(ntpDiffNs(before, after), -2_500_000_000n);
  });

  it('gives signed differences both ways, rounded to the nearest ns', () => {
    const t = 0xeeadf86bb0ced4e4n;
    const later = t + ntpIntervalFromNs(1_500_000n);
    assert.equal(ntpDiffNs(later, t), 1_500_000n);
    assert.equal(ntpDiffNs(t, later), -1_500_000n);
    assert.equal(ntpDiffNs(t, t), 0n);
    assert.equal(ntpDiffNs(t + 1n, t), 0n); // 0.23 ns
    assert.equal(ntpDiffNs(t + 3n, t), 1n); // 0.70 ns
    assert.equal(ntpDiffNs(t, t + 3n), -1n);
    // Reflector residence from the open.pcap capture (T3 − T2).
    assert.equal(ntpDiffNs(0xeeadf86bb0edb2f6n, 0xeeadf86bb0ebbba5n), 30_000n);
  });

  it('round-trips ns → NTP → ns exactly for many values', () => {
    const rnd = xorshift64(0x9e3779b97f4a7c15n);
    const pivot = BigInt(Date.UTC(2024, 0, 1)) * 1_000_000n;
    const span = 60n * 365n * 86400n * S; // stay within ±68 years of the pivot
    for (let i = 0; i < 20_000; i++) {
      const ns = pivot - span + (rnd.next().value as bigint) % (2n * span);
      assert.equal(unixNsFromNtp(ntpFromUnixNs(ns), pivot), ns, `ns ${ns}`);
      const d = ((rnd.next().value as bigint) % (1000n * S)) - 500n * S;
      assert.equal(ntpDiffNs(ntpFromUnixNs(ns + d), ntpFromUnixNs(ns)), d, `diff ${d}`);
    }
  });

  it('converts intervals for Timeout', () => {
    assert.equal(ntpIntervalFromNs(2n * S), 2n << 32n);
    assert.equal(ntpIntervalFromNs(500_000_000n), 0x80000000n);
    assert.equal(nsFromNtpInterval(0x00000002000ecfa6n), 2_000_226_000n); // open.pcap Timeout, 2.000226 s
    assert.equal(ntpIntervalFromNs(0n), 0n);
    assert.throws(() => ntpIntervalFromNs(-1n), RangeError);
    assert.throws(() => ntpIntervalFromNs(1n << 64n), RangeError);
    assert.throws(() => nsFromNtpInterval(-1n), RangeError);
    for (const ns of [1n, 999n, 123_456_789n, 3n * S + 7n, 900n * S]) {
      assert.equal(nsFromNtpInterval(ntpIntervalFromNs(ns)), ns);
    }
  });

  it('reads and writes 8 big-endian octets', () => {
    const buf = Buffer.alloc(12, 0xaa);
    writeTimestamp(buf, 2, 0xe93c7f0080000000n);
    assert.equal(buf.toString('hex'), 'aaaae93c7f0080000000aaaa');
    assert.equal(readTimestamp(buf, 2), 0xe93c7f0080000000n);
    assert.equal(readTimestamp(new Uint8Array(buf), 2), 0xe93c7f0080000000n);
    assert.throws(() => readTimestamp(buf, 5), RangeError);
    assert.throws(() => writeTimestamp(buf, -1, 0n), RangeError);
  });
});

describe('PTPv2 truncated timestamps (Z bit, RFC 8186 / RFC 8762)', () => {
  it('converts TAI seconds + ns to NTP (UTC), and decodes by the Z bit with a sanity check', async () => {
    const { ntpFromPtpTruncated, reflectorTimestampToNtp, ntpFromUnixNs } = await import('../../src/protocol/timestamp.js');
    // 2024-01-01T00:00:00.5Z UTC = 1704067200.5 s Unix; TAI is 37 s ahead.
    const ptp = ((1704067200n + 37n) << 32n) | 500_000_000n;
    const ntp = ntpFromUnixNs(1704067200_500_000_000n);
    assert.equal(ntpFromPtpTruncated(ptp), ntp);
    assert.equal(ntp, (0xE93C7F00n << 32n) | 0x80000000n, 'the §0.1 example');
    assert.equal(reflectorTimestampToNtp(ptp, true), ntp);
    assert.equal(reflectorTimestampToNtp(ntp, false), ntp);
    // A reflector that copied our Z bit but wrote NTP: NTP-sized seconds are kept as NTP.
    assert.equal(reflectorTimestampToNtp(ntp, true), ntp);
  });
});
