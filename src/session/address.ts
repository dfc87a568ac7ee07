/** Address helpers shared by the control client and server. */
import { isIP } from 'node:net';
import { lookup } from 'node:dns/promises';
import { TwampSessionError } from './errors.js';
import { unmapAddress, isZeroAddress } from '../util/net.js';

/** Resolve a reflector name (A/AAAA via the system resolver); IP literals pass through. */
export async function resolveHost(host: string, peerLabel: string): Promise<{ address: string; family: 4 | 6 }> {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const fam = isIP(bare);
  if (fam !== 0) return { address: bare, family: fam as 4 | 6 };
  try {
    const r = await lookup(bare);
    return { address: r.address, family: r.family === 6 ? 6 : 4 };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new TwampSessionError('dns', peerLabel, `cannot resolve "${bare}" (${code})`, { cause: e });
  }
}

/**
 * Ports a reflector never answers unless the operator lists them: everything
 * below 1024 (the well-known services a spoofed source would aim our replies
 * at: echo 7, chargen 19, DNS 53, NTP 123, SNMP 161, and other reflectors'
 * TWAMP port 862, which would make two reflectors answer each other forever).
 */
export const LOWEST_REPLY_PORT = 1024;

/**
 * Why a reply to `address`:`port` must not be sent, or undefined when it may.
 * A reply never goes to port 0 (dgram throws on it), to a port below 1024 not
 * in `allowedLowPorts`, or to an address that cannot be a unicast sender:
 * unspecified, multicast, the limited broadcast or reserved (240/4). A
 * subnet's directed broadcast cannot be known here; the kernel refuses it
 * because our sockets never set SO_BROADCAST.
 */
export function replyTargetProblem(address: string, port: number, allowedLowPorts?: ReadonlySet<number>): string | undefined {
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return `port ${port}`;
  if (port < LOWEST_REPLY_PORT && !allowedLowPorts?.has(port)) return `port ${port} (below ${LOWEST_REPLY_PORT})`;
  const a = unmapAddress(address);
  const fam = isIP(a);
  if (fam === 4) {
    const first = Number(a.slice(0, a.indexOf('.')));
    if (first === 0) return `unspecified address ${a}`;
    if (first >= 224 && first <= 239) return `multicast address ${a}`;
    if (first >= 240) return a === '255.255.255.255' ? `broadcast address ${a}` : `reserved address ${a}`;
    return undefined;
  }
  if (fam === 6) {
    const lower = a.toLowerCase();
    if (isZeroAddress(lower) || lower === '::') return `unspecified address ${a}`;
    if (lower.startsWith('ff')) return `multicast address ${a}`;
    return undefined;
  }
  return `not an IP address: ${JSON.stringify(address)}`;
}
