/**
 * DSCP names and the Type-P Descriptor (RFC 4656 §3.5, RFC 5357 §3.5).
 * Names: RFC 2474 class selectors (csN), RFC 2597 AF, RFC 3246 EF, plus the
 * aliases be (0), nc1 (48), nc2 (56) and cpN for any code point, as accepted
 * by Gufo Agent's configs.
 */

const NAMED: ReadonlyMap<string, number> = new Map<string, number>([
  ['be', 0],
  ['cs0', 0], ['cs1', 8], ['cs2', 16], ['cs3', 24], ['cs4', 32], ['cs5', 40], ['cs6', 48], ['cs7', 56],
  ['af11', 10], ['af12', 12], ['af13', 14],
  ['af21', 18], ['af22', 20], ['af23', 22],
  ['af31', 26], ['af32', 28], ['af33', 30],
  ['af41', 34], ['af42', 36], ['af43', 38],
  ['ef', 46],
  ['nc1', 48], ['nc2', 56],
]);

/**
 * Canonical name per code point: `be` for 0, standard PHB names (cs6/cs7
 * rather than the nc1/nc2 aliases), otherwise `cpN`.
 */
const CANONICAL: ReadonlyMap<number, string> = (() => {
  const m = new Map<number, string>();
  for (const [name, dscp] of NAMED) {
    if (name === 'cs0' || name.startsWith('nc')) continue;
    m.set(dscp, name);
  }
  return m;
})();

function isDscp(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 63;
}

/** Parses a DSCP name, `cpN`, a decimal string or an integer 0..63; anything else → undefined. */
export function parseDscp(v: string | number): number | undefined {
  if (typeof v === 'number') return isDscp(v) ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const s = v.trim().toLowerCase();
  const named = NAMED.get(s);
  if (named !== undefined) return named;
  const m = /^(cp)?(\d{1,2})$/.exec(s);
  if (m === null) return undefined;
  const n = Number(m[2]);
  return isDscp(n) ? n : undefined;
}

/** Canonical name, e.g. 46 → 'ef', 5 → 'cp5'. RangeError outside 0..63. */
export function dscpName(dscp: number): string {
  if (!isDscp(dscp)) throw new RangeError(`DSCP must be an integer 0..63, got ${String(dscp)}`);
  return CANONICAL.get(dscp) ?? `cp${dscp}`;
}

/**
 * Type-P Descriptor for a DSCP: prefix 00 then the 6 DSCP bits, so octet 84
 * of Request-TW-Session equals the DSCP (RFC 4656 §3.5; EF → 0x2E000000).
 * Writing the TOS byte (0xB8) there instead is a classic interop bug.
 */
export function typePFromDscp(dscp: number): number {
  return ((dscp & 0x3f) << 24) >>> 0;
}

/**
 * DSCP from a Type-P Descriptor, or undefined for the PHB ID form (prefix 01,
 * RFC 2836) and the reserved prefixes 10/11, which TWAMP does not use.
 */
export function dscpFromTypeP(typeP: number): number | undefined {
  if (typeP >>> 30 !== 0) return undefined;
  return (typeP >>> 24) & 0x3f;
}

/** IPv4 TOS / IPv6 Traffic Class byte for a DSCP with ECN = Not-ECT (RFC 2474 §3, RFC 3168 §5). */
export function tosFromDscp(dscp: number): number {
  return (dscp & 0x3f) << 2;
}
