/**
 * Address helpers with no I/O, shared by every layer: IPv4-mapped
 * addresses, host:port formatting, CIDR networks and client access lists.
 */
import { BlockList, isIP } from 'node:net';

/** '::ffff:1.2.3.4' (a v4 peer on a dual-stack socket) → '1.2.3.4'. */
export function unmapAddress(a: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  return m ? m[1]! : a;
}

export function ipFamily(a: string): 4 | 6 {
  return isIP(unmapAddress(a)) === 6 ? 6 : 4;
}

export function isZeroAddress(a: string): boolean {
  return a === '0.0.0.0' || a === '::' || /^(0+:){7}0+$/.test(a);
}

/** Format host:port with brackets for IPv6 literals. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** An IPv4/IPv6 network in CIDR notation ("10.0.0.0/8", "2001:db8::/32"); a bare address is a /32 or /128. */
export interface Cidr {
  address: string;
  prefix: number;
  family: 4 | 6;
}

/** Parses "addr[/prefix]"; undefined when it is not a valid IPv4/IPv6 network. */
export function parseCidr(s: string): Cidr | undefined {
  const m = /^\s*([^/\s]+)(?:\/(\d{1,3}))?\s*$/.exec(s);
  if (!m) return undefined;
  const address = unmapAddress(m[1]!);
  const family = isIP(address);
  if (family !== 4 && family !== 6) return undefined;
  const max = family === 4 ? 32 : 128;
  const prefix = m[2] === undefined ? max : Number(m[2]);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return undefined;
  return { address, prefix, family };
}

export function formatCidr(c: Cidr): string {
  return `${c.address}/${c.prefix}`;
}

/**
 * Which client networks may use the reflector, like Juniper's client lists
 * or perfSONAR's limits file: deny wins; an empty allow list allows all.
 * IPv4-mapped IPv6 peers (dual-stack listeners) are matched as IPv4.
 */
export class ClientAcl {
  private readonly allow: BlockList | undefined;
  private readonly deny: BlockList | undefined;

  constructor(allow: readonly Cidr[] = [], deny: readonly Cidr[] = []) {
    this.allow = allow.length ? toBlockList(allow) : undefined;
    this.deny = deny.length ? toBlockList(deny) : undefined;
  }

  /** True when the list restricts anything at all. */
  get active(): boolean {
    return this.allow !== undefined || this.deny !== undefined;
  }

  /** undefined when allowed, else why not ('denied' by the deny list, 'not allowed' by the allow list). */
  check(address: string): 'denied' | 'not allowed' | undefined {
    if (!this.active) return undefined;
    const a = unmapAddress(address);
    const family = isIP(a);
    if (family === 0) return 'not allowed';
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (this.deny?.check(a, type)) return 'denied';
    if (this.allow && !this.allow.check(a, type)) return 'not allowed';
    return undefined;
  }
}

function toBlockList(list: readonly Cidr[]): BlockList {
  const b = new BlockList();
  for (const c of list) b.addSubnet(c.address, c.prefix, c.family === 4 ? 'ipv4' : 'ipv6');
  return b;
}

/** fe80::/10 (RFC 4291 §2.5.6): meaningful only with its interface (the %scope). */
export function isLinkLocal6(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(address);
}

/**
 * A link-local IPv6 `address` without a %scope gets the scope of `scoped`
 * (an address Node reported with one, e.g. the control connection's local or
 * remote address). TWAMP-Control carries addresses without scope (RFC 5357
 * §3.5: 16 octets), so a session's link-local Receiver / Sender Address must
 * borrow the interface the control connection runs on, or bind(2) and
 * sendto(2) fail with EINVAL.
 */
export function withScopeOf(address: string, scoped: string): string {
  if (address.includes('%') || !isLinkLocal6(address)) return address;
  const at = scoped.indexOf('%');
  return at < 0 ? address : `${address}${scoped.slice(at)}`;
}
