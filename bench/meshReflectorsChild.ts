/**
 * The 200 reflector members of the mesh section (bench/mesh.ts), in one
 * process of their own: one TwampReflector per member address on loopback
 * (127.0.1.1, 127.0.1.2, … — all of 127.0.0.0/8 is local on Linux, nothing to
 * configure), all on the same TCP port, as 200 hosts each running their own
 * reflector would be. The reflectors keep their default limits
 * (docs/security.md): each is reached by one client (the agent under test,
 * from 127.0.0.1) holding one connection and one session at a time, well
 * inside max_connections_per_client 8 and max_sessions_per_client 64.
 *
 * argv: COUNT PREFIX (e.g. 200 127.0.1.). IPC: { type: 'ready', port,
 * addresses } once all listen; { type: 'stats' } is answered with the summed
 * counters.
 */
import { TwampReflector } from '../src/reflector.js';
import { silentLogger } from '../src/util/log.js';
import { toParent, failToParent } from './lib.js';
import { parseReflectorConfig } from '../src/config/index.js';

const count = Number(process.argv[2] ?? 200);
const prefix = process.argv[3] ?? '127.0.1.';

async function main(): Promise<void> {
  if (!Number.isInteger(count) || count < 1 || count > 254) throw new Error(`meshReflectorsChild: COUNT must be 1–254, got ${process.argv[2]}`);
  const reflectors: TwampReflector[] = [];
  const addresses = Array.from({ length: count }, (_, i) => `${prefix}${i + 1}`);
  // The first one picks a free port; the others take the same port on their own address.
  const first = new TwampReflector(parseReflectorConfig({ id: `r1`, listen: addresses[0]!, port: 0 }), { logger: silentLogger });
  const { port } = await first.start();
  reflectors.push(first);
  for (let i = 1; i < count; i++) {
    const r = new TwampReflector(parseReflectorConfig({ id: `r${i + 1}`, listen: addresses[i]!, port }), { logger: silentLogger });
    await r.start();
    reflectors.push(r);
  }
  process.on('message', (m) => {
    if ((m as { type: string }).type !== 'stats') return;
    let sessionsStarted = 0;
    let reflectedPackets = 0;
    let droppedPackets = 0;
    let refused = 0;
    const refusedBy: Record<string, number> = {};
    for (const r of reflectors) {
      const c = r.counters;
      sessionsStarted += c.sessionsStarted;
      reflectedPackets += c.reflectedPackets;
      droppedPackets += c.droppedPackets;
      for (const [why, n] of c.refused) { refused += n; refusedBy[why] = (refusedBy[why] ?? 0) + n; }
    }
    toParent({ type: 'stats', sessionsStarted, reflectedPackets, droppedPackets, refused, refusedBy, rss: process.memoryUsage().rss });
  });
  process.on('SIGTERM', () => { void Promise.all(reflectors.map((r) => r.stop())).finally(() => process.exit(0)); });
  toParent({ type: 'ready', port, addresses });
}

main().catch(failToParent);
