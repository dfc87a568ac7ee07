/**
 * The lab's reflector: our TwampReflector, run in namespace otl-b.
 *   node reflectorChild.js LISTEN_ADDR CONTROL_PORT
 * Prints `READY <json>` once listening; `stats` on stdin prints
 * `STATS <json>` (cumulative reflected/dropped packets). SIGTERM stops it.
 */
import { createInterface } from 'node:readline';
import { TwampReflector } from '../../src/reflector.js';
import { parseReflectorConfig } from '../../src/config/index.js';

const [listen = '0.0.0.0', port = '8620'] = process.argv.slice(2);
const reflector = new TwampReflector(parseReflectorConfig({ id: 'lab-reflector', listen, port: Number(port), refwait: 30, servwait: 60 }));

const bound = await reflector.start();
process.stdout.write(`READY ${JSON.stringify(bound)}\n`);

createInterface({ input: process.stdin }).on('line', (l) => {
  if (l.trim() !== 'stats') return;
  const c = reflector.counters;
  process.stdout.write(`STATS ${JSON.stringify({
    reflected: c.reflectedPackets, dropped: c.droppedPackets, sessionsStarted: c.sessionsStarted,
    active: reflector.activeSessions,
  })}\n`);
});

const stop = (): void => { void reflector.stop().finally(() => process.exit(0)); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
