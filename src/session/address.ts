/** Address helpers shared by the control client and server. */
import { isIP } from 'node:net';
import { lookup } from 'node:dns/promises';
import { TwampSessionError } from './errors.js';

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
