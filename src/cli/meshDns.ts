/**
 * Mesh members from DNS (docs/configuration.md "Mesh", "Members from DNS"):
 * the A or AAAA records of a name (a Kubernetes headless Service lists its
 * ready pods that way), or its SRV records (RFC 2782: a target and a port
 * per member). Queries go to the `mesh.dns_servers` given, else to the
 * system's resolvers (/etc/resolv.conf), through node:dns's Resolver, never
 * the getaddrinfo() thread pool.
 */
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { DnsMember, MeshMemberSet } from '../config/mesh.js';
import { messageOf } from '../util/errors.js';

export interface MeshResolverOptions {
  /** `ADDRESS` or `ADDRESS:PORT` (`[V6]:PORT`) of the servers to ask; absent or empty = the system's. */
  servers?: readonly string[];
  /** Per try (default 2000 ms). */
  timeoutMs?: number;
  /** Tries per server (default 2). */
  tries?: number;
}

/** Why a query failed, in words, from node:dns's error codes. */
const CODE_TEXT: Readonly<Record<string, string>> = {
  ENOTFOUND: 'no such name (NXDOMAIN)',
  ESERVFAIL: 'the server failed (SERVFAIL)',
  EREFUSED: 'the server refused the query (REFUSED)',
  ETIMEOUT: 'no answer (timed out)',
  ECONNREFUSED: 'the server is not reachable (connection refused)',
  EBADRESP: 'malformed answer',
  EFORMERR: 'the server could not read the query (FORMERR)',
  ECANCELLED: 'cancelled',
};

/** The name of a DNS answer as members are named: lower case, no trailing dot. */
const norm = (name: string): string => name.toLowerCase().replace(/\.$/, '');

export class MeshResolver {
  private readonly resolver: Resolver;

  constructor(o: MeshResolverOptions = {}) {
    this.resolver = new Resolver({ timeout: o.timeoutMs ?? 2000, tries: o.tries ?? 2 });
    if (o.servers && o.servers.length > 0) this.resolver.setServers([...o.servers]);
  }

  /**
   * The members a set's records give now, sorted by name. An answer without
   * records of the type (NODATA) is an empty set; any other failure throws
   * an Error naming the set, the query and why.
   */
  async resolve(set: MeshMemberSet): Promise<DnsMember[]> {
    let out: DnsMember[];
    try {
      if (set.type === 'A') out = (await this.resolver.resolve4(set.dns)).map((a) => ({ name: a, address: a }));
      else if (set.type === 'AAAA') out = (await this.resolver.resolve6(set.dns)).map((a) => ({ name: a, address: a }));
      else out = await this.resolveSrv(set.dns);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENODATA') return [];
      throw new Error(`cannot resolve ${set.type} ${set.dns} (member set ${JSON.stringify(set.name)}): ${(code && CODE_TEXT[code]) ?? messageOf(e)}`);
    }
    return dedupe(out).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * SRV records, one member per (target, port); a target of "." says the
   * service is not offered there (RFC 2782) and gives none. A target is
   * resolved (A, then AAAA) by the same servers, so the senders and the
   * local-address match use its address; when it does not resolve there,
   * the host name is kept and the sender resolves it when it connects.
   */
  private async resolveSrv(name: string): Promise<DnsMember[]> {
    const records = (await this.resolver.resolveSrv(name)).filter((r) => norm(r.name) !== '');
    const ports = new Map<string, Set<number>>();
    for (const r of records) {
      const t = norm(r.name);
      if (!ports.has(t)) ports.set(t, new Set());
      ports.get(t)!.add(r.port);
    }
    const addresses = new Map<string, string>();
    await Promise.all([...ports.keys()].map(async (t) => { addresses.set(t, await this.addressOf(t)); }));
    return records.map((r) => {
      const t = norm(r.name);
      // A target with several ports is several members: name them apart.
      return { name: ports.get(t)!.size > 1 ? `${t}:${r.port}` : t, address: addresses.get(t) ?? t, port: r.port };
    });
  }

  private async addressOf(host: string): Promise<string> {
    if (isIP(host) !== 0) return host;
    for (const lookup of [() => this.resolver.resolve4(host), () => this.resolver.resolve6(host)]) {
      try {
        const list = await lookup();
        if (list.length > 0) return [...list].sort()[0]!;
      } catch {
        // try the next family; the host name is the fallback
      }
    }
    return host;
  }

  /** Abandon queries in flight (they reject with ECANCELLED). */
  cancel(): void {
    this.resolver.cancel();
  }
}

function dedupe(list: DnsMember[]): DnsMember[] {
  const seen = new Set<string>();
  return list.filter((m) => (seen.has(m.name) ? false : (seen.add(m.name), true)));
}

/** Whether two answers give the same members (both sorted by name). */
export function sameMembers(a: readonly DnsMember[], b: readonly DnsMember[]): boolean {
  return a.length === b.length && a.every((m, i) => m.name === b[i]!.name && m.address === b[i]!.address && m.port === b[i]!.port);
}
