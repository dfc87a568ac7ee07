/**
 * 64-bit NTP-format timestamps (RFC 4656 §4.1.2, RFC 5905 §6), kept as one
 * bigint `(seconds << 32n) | fraction` and never passed through a float:
 * a double cannot hold 64 bits, and 2^-32 s (≈ 0.23 ns) resolution matters
 * for exact round trips.
 */
import { readU32, writeU32 } from './bytes.js';

export type NtpTimestamp = bigint;

/** Seconds from 1900-01-01 (NTP era 0) to 1970-01-01 (Unix epoch). */
export const NTP_UNIX_OFFSET_S = 2208988800n;

const NS_PER_S = 1_000_000_000n;
const FRACTION_UNITS = 1n << 32n;
const U32_MASK = 0xffffffffn;
/** One NTP era (2^32 s) in ns. */
const ERA_NS = FRACTION_UNITS * NS_PER_S;
/** 2024-01-01T00:00:00Z: default era pivot, within ±68 years of any plausible "now". */
const DEFAULT_PIVOT_UNIX_NS = 1_704_067_200n * NS_PER_S;

/** Signed division rounded to the nearest integer, ties away from zero. */
function divRound(n: bigint, d: bigint): bigint {
  return n >= 0n ? (n + d / 2n) / d : -((-n + d / 2n) / d);
}

/** Floor division for a positive divisor (bigint `/` truncates toward zero). */
function divFloor(n: bigint, d: bigint): bigint {
  const q = n / d;
  return n % d < 0n ? q - 1n : q;
}

/**
 * Unix time in ns → NTP timestamp. The fraction is rounded to the nearest
 * 2^-32 s (never reaches 2^32: 999 999 999 ns → 0xFFFFFFFC). Seconds are
 * taken mod 2^32, which is what the wire carries after the 2036 era wrap
 * (RFC 5905 §6).
 */
export function ntpFromUnixNs(unixNs: bigint): bigint {
  const ntpNs = unixNs + NTP_UNIX_OFFSET_S * NS_PER_S;
  const seconds = divFloor(ntpNs, NS_PER_S);
  const subNs = ntpNs - seconds * NS_PER_S;
  const fraction = (subNs * FRACTION_UNITS + NS_PER_S / 2n) / NS_PER_S;
  return (BigInt.asUintN(32, seconds) << 32n) | fraction;
}

/**
 * NTP timestamp → Unix time in ns, choosing the NTP era that puts the result
 * closest to `pivotUnixNs` (normally the local clock; default 2024-01-01), so
 * timestamps after the 2036-02-07 wrap decode correctly (RFC 5905 §6).
 */
export function unixNsFromNtp(ts: bigint, pivotUnixNs: bigint = DEFAULT_PIVOT_UNIX_NS): bigint {
  const v = BigInt.asUintN(64, ts);
  const fractionNs = ((v & U32_MASK) * NS_PER_S + (FRACTION_UNITS >> 1n)) >> 32n;
  const era0Ns = ((v >> 32n) - NTP_UNIX_OFFSET_S) * NS_PER_S + fractionNs;
  return era0Ns + divRound(pivotUnixNs - era0Ns, ERA_NS) * ERA_NS;
}

/**
 * Signed `a − b` in ns, rounded to the nearest ns. The 64-bit difference is
 * taken mod 2^64 and read as two's complement, so it stays right across the
 * era wrap and when `b` is later than `a` (reordering, clock offset).
 * Antisymmetric, ntpDiffNs(a, b) === -ntpDiffNs(b, a), for timestamps less
 * than half the 64-bit range (~68 years) apart; exactly half the range apart
 * the sign is ambiguous and both orders read as the negative extreme.
 */
export function ntpDiffNs(a: bigint, b: bigint): bigint {
  return divRound(BigInt.asIntN(64, a - b) * NS_PER_S, FRACTION_UNITS);
}

/**
 * Duration in ns → NTP interval (same 32.32 layout, RFC 4656 §3.5; used by
 * Request-TW-Session Timeout, RFC 5357 §3.5). Throws RangeError outside
 * 0..2^64−1 units.
 */
export function ntpIntervalFromNs(ns: bigint): bigint {
  if (ns < 0n) throw new RangeError(`NTP interval cannot be negative: ${ns} ns`);
  const units = (ns * FRACTION_UNITS + NS_PER_S / 2n) / NS_PER_S;
  if (units > BigInt.asUintN(64, -1n)) throw new RangeError(`NTP interval too large: ${ns} ns`);
  return units;
}

/** NTP interval → duration in ns, rounded to the nearest ns. */
export function nsFromNtpInterval(i: bigint): bigint {
  if (i < 0n || i > BigInt.asUintN(64, -1n)) {
    throw new RangeError(`NTP interval must be an unsigned 64-bit value, got ${i}`);
  }
  return (i * NS_PER_S + (FRACTION_UNITS >> 1n)) >> 32n;
}

/** Reads 8 octets (seconds, fraction) at `offset`. RangeError when out of bounds. */
export function readTimestamp(buf: Uint8Array, offset: number): bigint {
  if (!(offset >= 0 && offset + 8 <= buf.length)) {
    throw new RangeError(`timestamp at offset ${offset} exceeds buffer of ${buf.length} octets`);
  }
  return (BigInt(readU32(buf, offset)) << 32n) | BigInt(readU32(buf, offset + 4));
}

/** Writes `ts` (taken mod 2^64) as 8 octets at `offset`. RangeError when out of bounds. */
export function writeTimestamp(buf: Uint8Array, offset: number, ts: bigint): void {
  if (!(offset >= 0 && offset + 8 <= buf.length)) {
    throw new RangeError(`timestamp at offset ${offset} exceeds buffer of ${buf.length} octets`);
  }
  const v = BigInt.asUintN(64, ts);
  writeU32(buf, offset, Number(v >> 32n));
  writeU32(buf, offset + 4, Number(v & U32_MASK));
}

/** TAI − UTC in seconds since 2017-01-01 (IERS Bulletin C); PTP counts TAI. */
const TAI_UTC_OFFSET_S = 37n;

/**
 * A PTPv2 truncated timestamp (RFC 8186 / RFC 8762 §4.2.1, Error Estimate Z
 * bit set: 32-bit seconds since 1970-01-01 TAI ‖ 32-bit nanoseconds) as an
 * NTP timestamp (UTC).
 */
export function ntpFromPtpTruncated(ts: bigint): bigint {
  const sec = ts >> 32n;
  const ns = ts & 0xffffffffn;
  return ntpFromUnixNs((sec - TAI_UTC_OFFSET_S) * 1_000_000_000n + ns);
}

/**
 * A reflector's timestamp in NTP format, decoded with the Z bit of the Error
 * Estimate that belongs to it (RFC 8186 §2). Some reflectors copy
 * the sender's Z bit instead of setting their own, so a "PTP" value whose
 * seconds look like NTP seconds (≥ 2^31: NTP era 0 is past 2^31 since 1968,
 * PTP seconds reach it only in 2038) or whose nanoseconds overflow is read
 * as NTP.
 */
export function reflectorTimestampToNtp(ts: bigint, z: boolean): bigint {
  if (!z) return ts;
  const sec = ts >> 32n;
  const frac = ts & 0xffffffffn;
  if (sec >= 0x80000000n || frac >= 1_000_000_000n) return ts;
  return ntpFromPtpTruncated(ts);
}
