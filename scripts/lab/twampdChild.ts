/**
 * perfSONAR twampd for the lab's router scenarios, run in namespace otl-b.
 *   node twampdChild.js LISTEN_ADDR CONTROL_PORT
 * Starts it as the interop tests do (test/helpers/peers.ts: foreground,
 * throw-away state dir, open mode), prints `READY <json>` once it listens;
 * SIGTERM stops it. Exit 1 with `ERROR <reason>` when the peers are missing.
 */
import { findPeers, startTwampd } from '../../test/helpers/peers.js';

const [host = '0.0.0.0', port = '8621'] = process.argv.slice(2);
const peers = findPeers();
if ('missing' in peers) {
  process.stdout.write(`ERROR ${peers.missing}\n`);
  process.exit(1);
}
const d = await startTwampd(peers, { host, port: Number(port), authmode: 'O' });
process.stdout.write(`READY ${JSON.stringify({ port: d.port, pid: d.pid })}\n`);
// Its log on stderr at the end, for the lab's failure details.
const stop = (): void => { void d.stop().finally(() => { process.stderr.write(d.log()); process.exit(0); }); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
