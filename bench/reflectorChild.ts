/**
 * Our reflector in a process of its own (for the capacity, sender-CPU and
 * memory parts), so what it costs is not mixed with the load generator's or
 * the bench driver's. IPC: it sends { type: 'ready', port } once listening,
 * and answers { type: 'mem' } with a post-GC memoryUsage, { type: 'stats' }
 * with its counters and CPU time.
 */
import { TwampReflector } from '../src/reflector.js';
import { toParent, failToParent } from './lib.js';
import { parseReflectorConfig } from '../src/config/index.js';

const maxSessions = Number(process.argv[2] ?? 1000);

function gcNow(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) { gc(); gc(); }
}

async function main(): Promise<void> {
  // The reflector's admission limits (max_connections 256, max_pps_per_session 10,000,
  // max_pps 100,000 by default) are raised out of the way: this measures what the
  // reflector can do, not the policy that protects it.
  const reflector = new TwampReflector(parseReflectorConfig({
    id: 'bench', listen: '127.0.0.1', port: 0, max_sessions: maxSessions,
    max_connections: 100_000, max_sessions_per_connection: 100_000,
    // Every bench client connects from 127.0.0.1 (fidelity: 40 senders at once).
    max_connections_per_client: 100_000,
    max_pps_per_session: 10_000_000, max_pps: 100_000_000,
  }));
  const { port } = await reflector.start();
  process.on('message', (m) => {
    const msg = m as { type: string };
    if (msg.type === 'mem') {
      gcNow();
      // Let finalizers and freed handles settle before reading RSS.
      setTimeout(() => {
        gcNow();
        const u = process.memoryUsage();
        toParent({
          type: 'mem', rss: u.rss, heapUsed: u.heapUsed, heapTotal: u.heapTotal, external: u.external,
          arrayBuffers: u.arrayBuffers, activeSessions: reflector.activeSessions,
        });
      }, 200);
    } else if (msg.type === 'stats') {
      const c = reflector.counters;
      toParent({
        type: 'stats', reflectedPackets: c.reflectedPackets, droppedPackets: c.droppedPackets,
        sessionsStarted: c.sessionsStarted, activeSessions: reflector.activeSessions, cpu: process.cpuUsage(),
      });
    }
  });
  process.on('SIGTERM', () => { void reflector.stop().finally(() => process.exit(0)); });
  toParent({ type: 'ready', port });
}

main().catch(failToParent);
