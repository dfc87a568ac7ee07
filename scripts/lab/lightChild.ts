/**
 * The lab's TWAMP-Light / STAMP reflector: our LightReflector (default
 * policy, stateless), run in namespace otl-b for the router scenarios.
 *   node lightChild.js LISTEN_ADDR UDP_PORT
 * Prints `READY <json>` once listening, `STATS <json>` (CoS TLVs answered
 * and refused) for `stats` on stdin; SIGTERM stops it.
 */
import { createInterface } from 'node:readline';
import { LightReflector } from '../../src/session/lightReflector.js';
import { systemClock } from '../../src/session/clock.js';

const [listen = '0.0.0.0', port = '8622'] = process.argv.slice(2);
const counters = { reflectedPackets: 0, reflectedOctets: 0, droppedPackets: 0 };
const reflector = new LightReflector({ host: listen, port: Number(port), clock: systemClock(), counters });
const bound = await reflector.listen();
process.stdout.write(`READY ${JSON.stringify(bound)}\n`);

createInterface({ input: process.stdin }).on('line', (l) => {
  if (l.trim() !== 'stats') return;
  process.stdout.write(`STATS ${JSON.stringify({ ...counters, cosAnswered: reflector.cosAnswered, cosRefused: reflector.cosRefused })}\n`);
});

const stop = (): void => { void reflector.close().finally(() => process.exit(0)); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
