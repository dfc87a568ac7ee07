/**
 * The lab's sender: one TWAMP test session with our TwampSender, run in
 * namespace otl-a.
 *   node senderChild.js '<twamp_sender collector config as JSON>'
 * Prints one line `RESULT <json>`: the session statistics (SessionResult)
 * and the addresses/ports negotiated, or the failure reason. Exit 0 when the
 * session ran, 1 when it failed.
 */
import { TwampSender } from '../../src/sender.js';
import { parseSenderConfig } from '../../src/config/index.js';

const config = parseSenderConfig(JSON.parse(process.argv[2] ?? '{}'));
const sender = new TwampSender(config);
const outcome = await sender.runOnce();
if (outcome.ok) {
  const s = outcome.result.session;
  process.stdout.write(`RESULT ${JSON.stringify({
    ok: true, stats: s.stats, senderTestPort: s.senderTestPort, reflectorTestPort: s.reflectorTestPort,
    senderAddress: s.senderAddress, reflectorAddress: s.reflectorAddress, invalidReplies: s.invalidReplies,
    durationMs: outcome.durationMs,
  })}\n`);
  process.exit(0);
} else {
  process.stdout.write(`RESULT ${JSON.stringify({ ok: false, reason: outcome.reason, message: outcome.error.message })}\n`);
  process.exit(1);
}
