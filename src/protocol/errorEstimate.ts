/**
 * Error Estimate, 16 bits (RFC 4656 §4.1.2; Z bit from RFC 8186):
 *   bit 15 S (synchronised to UTC), bit 14 Z (0 = NTP, 1 = PTPv2 format),
 *   bits 13..8 Scale, bits 7..0 Multiplier;
 *   error = Multiplier · 2^(Scale − 32) seconds.
 */

export interface ErrorEstimate {
  synchronized: boolean;
  /** RFC 8186 timestamp format flag; MBZ in RFC 4656. */
  z: boolean;
  /** 0..63 */
  scale: number;
  /** 1..255 on the wire we send; 0 is possible on decode (a corrupt peer). */
  multiplier: number;
}

const S_BIT = 0x8000;
const Z_BIT = 0x4000;

/**
 * Unsynchronised, 2^-32 s: what twping/twampd send when the clock is not
 * NTP-synced. Safe default; never send Multiplier 0 (RFC 4656 §4.1.2 says
 * discard such packets, and twping aborts the whole session on one).
 */
export const ERROR_ESTIMATE_UNSYNC_MIN = 0x0001;

export function encodeErrorEstimate(e: ErrorEstimate): number {
  if (!Number.isInteger(e.scale) || e.scale < 0 || e.scale > 63) {
    throw new RangeError(`Error Estimate scale must be 0..63, got ${String(e.scale)}`);
  }
  if (!Number.isInteger(e.multiplier) || e.multiplier < 1 || e.multiplier > 255) {
    throw new RangeError(
      `Error Estimate multiplier must be 1..255 (0 is invalid per RFC 4656 §4.1.2), got ${String(e.multiplier)}`,
    );
  }
  return (e.synchronized ? S_BIT : 0) | (e.z ? Z_BIT : 0) | (e.scale << 8) | e.multiplier;
}

export function decodeErrorEstimate(v: number): ErrorEstimate {
  return {
    synchronized: (v & S_BIT) !== 0,
    z: (v & Z_BIT) !== 0,
    scale: (v >>> 8) & 0x3f,
    multiplier: v & 0xff,
  };
}

/**
 * Encodes an error bound in seconds with the smallest Scale whose Multiplier
 * still fits (finest resolution), rounding the multiplier up so the bound is
 * never understated, and never below 1. Z = 0 (NTP timestamps).
 * Values beyond the largest encodable bound (255 · 2^31 s) saturate to it.
 */
export function errorEstimateFromSeconds(seconds: number, synchronized: boolean): number {
  if (Number.isNaN(seconds) || seconds < 0) {
    throw new RangeError(`error estimate must be a non-negative number of seconds, got ${seconds}`);
  }
  const s = synchronized ? S_BIT : 0;
  for (let scale = 0; scale <= 63; scale++) {
    // Multiplying by a power of two is exact in binary floating point.
    const m = Math.ceil(seconds * 2 ** (32 - scale));
    if (m <= 255) return s | (scale << 8) | Math.max(1, m);
  }
  return s | (63 << 8) | 255;
}

/** Error bound in seconds; Multiplier 0 yields 0 (the caller decides what a corrupt value means). */
export function errorEstimateSeconds(v: number): number {
  const { scale, multiplier } = decodeErrorEstimate(v);
  return multiplier * 2 ** (scale - 32);
}
