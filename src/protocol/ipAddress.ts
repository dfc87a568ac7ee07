/**
 * Textual IP ↔ octets for the 16-octet address fields of Request-TW-Session
 * (RFC 4656 §3.5): IPv4 in the first 4 octets (rest MBZ), IPv6 in all 16.
 * node:net isIP is used for validation only (pure, no I/O).
 */
import { isIP } from 'node:net';

/** Parses `text` as an IP of the given version into `out` at `offset` (4 or 16 octets). */
export function writeIpAddress(text: string, version: 4 | 6, out: Uint8Array, offset: number, field: string): void {
  if (typeof text !== 'string' || isIP(text) !== version || text.includes('%')) {
    throw new RangeError(`${field} must be a textual IPv${version} address without zone, got ${JSON.stringify(text)}`);
  }
  if (version === 4) {
    const parts = text.split('.');
    for (let i = 0; i < 4; i++) out[offset + i] = Number(parts[i]);
    return;
  }
  const groups = ipv6Groups(text);
  for (let i = 0; i < 8; i++) {
    out[offset + 2 * i] = groups[i]! >>> 8;
    out[offset + 2 * i + 1] = groups[i]! & 0xff;
  }
}

function sideGroups(side: string): number[] {
  if (side === '') return [];
  const groups: number[] = [];
  for (const part of side.split(':')) {
    if (part.includes('.')) {
      const [a, b, c, d] = part.split('.').map(Number) as [number, number, number, number];
      groups.push((a << 8) | b, (c << 8) | d);
    } else {
      groups.push(parseInt(part, 16));
    }
  }
  return groups;
}

/** Eight 16-bit groups of an IPv6 address already validated by isIP. */
function ipv6Groups(text: string): number[] {
  const gap = text.indexOf('::');
  if (gap === -1) return sideGroups(text);
  const head = sideGroups(text.slice(0, gap));
  const tail = sideGroups(text.slice(gap + 2));
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/** Formats 4 or 16 octets at `offset` as text; IPv6 per RFC 5952 (lower case, longest zero run compressed). */
export function readIpAddress(buf: Uint8Array, offset: number, version: 4 | 6): string {
  if (version === 4) {
    return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
  }
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((buf[offset + 2 * i]! << 8) | buf[offset + 2 * i + 1]!);
  // IPv4-mapped addresses keep the dotted tail (RFC 5952 §5).
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${readIpAddress(buf, offset + 12, 4)}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  // RFC 5952 §4.2.2: a single zero group is not compressed.
  if (bestLen < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}
