// Counters labelled by a closed set of reasons are exported at 0 for every
// reason from the start (the Prometheus convention for known label values):
// a series born at its first event hides that event from increase()/rate(),
// so one refusal would read as increase(...) = 0 and never alert. Both
// producers, both naming profiles, and the relabel rules still apply to the
// zero series.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { TwampReflector } from '../../src/reflector.js';
import { TwampSender } from '../../src/sender.js';
import { REFUSAL_REASONS } from '../../src/session/controlServer.js';
import type { FailureReason } from '../../src/session/errors.js';
import type { NamingProfile } from '../../src/otel/instruments.js';
import { testMeter, type Snapshot } from '../helpers/metrics.js';
import { freePort } from '../helpers/peers.js';
import { parseReflectorConfig, parseSenderConfig } from '../../src/config/index.js';

/** Every FailureReason; the compiler rejects this list if the type gains or loses one. */
const FAILURE_REASONS = Object.keys({
  dns: 1, connect: 1, timeout: 1, closed: 1, protocol: 1, refused: 1, socket: 1, aborted: 1,
} satisfies Record<FailureReason, 1>) as FailureReason[];

const NAMES = {
  legacy: { errors: 'twamp_sender_errors', refused: 'twamp_reflector_refused', reason: 'reason', id: 'collector_id', visibleReason: 'reason' },
  otel: { errors: 'twamp.sender.errors', refused: 'twamp.reflector.refused', reason: 'error.type', id: 'twamp.collector.id', visibleReason: 'error_type' },
} as const;

/** reason → value of `metric` for collector `id`; throws on a duplicate reason. */
function byReason(snap: Snapshot, profile: NamingProfile, metric: string, id: string): Map<string, number> {
  const n = NAMES[profile];
  const out = new Map<string, number>();
  for (const p of snap.points(metric, { [n.id]: id })) {
    const reason = String(p.attributes[n.reason]);
    assert.ok(!out.has(reason), `${metric}: two series for reason ${reason}`);
    out.set(reason, p.value);
  }
  return out;
}

/** A TCP server that accepts and never greets: a sender's run stays in progress. */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => undefined); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

for (const profile of ['legacy', 'otel'] as const) {
  const n = NAMES[profile];

  describe(`zero series from the start (${profile} profile)`, { timeout: 30_000 }, () => {
    it('sender: every FailureReason at 0 before any run has failed', async () => {
      const meter = testMeter();
      const silent = await silentServer();
      const sender = new TwampSender(parseSenderConfig({
        id: 's0', type: 'twamp_sender', reflector: '127.0.0.1', port: silent.port, n_packets: 5, model: 'g711',
        interval: 3600, control_timeout: 60,
      }), { meterProvider: meter.provider, naming: profile });
      try {
        await sender.start(); // the first run now waits for a greeting that never comes
        const errors = byReason(await meter.collect(), profile, n.errors, 's0');
        assert.equal(sender.lastOutcome, undefined, 'no run has finished yet');
        assert.deepEqual([...errors.keys()].sort(), [...FAILURE_REASONS].sort());
        for (const [reason, v] of errors) assert.equal(v, 0, reason);
      } finally {
        await sender.stop();
        await silent.close();
        await meter.shutdown();
      }
    });

    it('sender: one failure counts 1 for its reason, the others stay at 0', async () => {
      const meter = testMeter();
      const closed = await freePort(); // nothing listens: connect fails
      const sender = new TwampSender(parseSenderConfig({
        id: 's1', type: 'twamp_sender', reflector: '127.0.0.1', port: closed, n_packets: 5, model: 'g711', interval: 3600,
      }), { meterProvider: meter.provider, naming: profile });
      try {
        await sender.start();
        const out = await sender.runOnce(); // the run start() began
        assert.equal(out.ok ? '' : out.reason, 'connect');
        const errors = byReason(await meter.collect(), profile, n.errors, 's1');
        assert.equal(errors.size, FAILURE_REASONS.length);
        for (const reason of FAILURE_REASONS) assert.equal(errors.get(reason), reason === 'connect' ? 1 : 0, reason);
      } finally {
        await sender.stop();
        await meter.shutdown();
      }
    });

    it('reflector: every REFUSAL_REASONS entry at 0 before anything was refused, then one refusal counts 1', async () => {
      const meter = testMeter();
      const reflector = new TwampReflector(parseReflectorConfig({
        id: 'r0', type: 'twamp_reflector', listen: '127.0.0.1', port: 0, deny: ['127.0.0.0/8'],
      }), { meterProvider: meter.provider, naming: profile });
      try {
        const { port } = await reflector.start();
        const before = byReason(await meter.collect(), profile, n.refused, 'r0');
        assert.deepEqual([...before.keys()].sort(), [...REFUSAL_REASONS].sort());
        for (const [reason, v] of before) assert.equal(v, 0, reason);

        // One refused connection (client network denied).
        await new Promise<void>((resolve) => {
          const s = connect(port, '127.0.0.1');
          s.on('error', () => undefined);
          s.on('end', () => s.destroy()); // greeting with Modes 0, then the server closes (RFC 4656 §3.1)
          s.on('close', () => resolve());
          s.resume();
        });
        const deadline = Date.now() + 5000;
        let after = byReason(await meter.collect(), profile, n.refused, 'r0');
        while (after.get('acl') !== 1 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 20));
          after = byReason(await meter.collect(), profile, n.refused, 'r0');
        }
        assert.equal(after.size, REFUSAL_REASONS.length, 'no reason added or lost');
        for (const reason of REFUSAL_REASONS) assert.equal(after.get(reason), reason === 'acl' ? 1 : 0, reason);
      } finally {
        await reflector.stop();
        await meter.shutdown();
      }
    });

    it('the relabel rules apply to the zero series (label added, one reason dropped)', async () => {
      const meter = testMeter();
      const silent = await silentServer();
      const rules = (metric: string) => [
        { source_labels: ['__name__', n.visibleReason], regex: `${metric};(timeout|auth)`, action: 'drop' },
        { target_label: 'env', replacement: 'lab' },
      ];
      const sender = new TwampSender(parseSenderConfig({
        id: 's2', type: 'twamp_sender', reflector: '127.0.0.1', port: silent.port, n_packets: 5, model: 'g711',
        interval: 3600, control_timeout: 60,
        relabel: rules('twamp_sender_errors_total'), // the scraped name in both profiles
      }), { meterProvider: meter.provider, naming: profile });
      const reflector = new TwampReflector(parseReflectorConfig({
        id: 'r2', type: 'twamp_reflector', listen: '127.0.0.1', port: 0,
        relabel: rules('twamp_reflector_refused_total'),
      }), { meterProvider: meter.provider, naming: profile });
      try {
        await reflector.start();
        await sender.start();
        const snap = await meter.collect();
        const errors = snap.points(n.errors, { [n.id]: 's2' });
        const refused = snap.points(n.refused, { [n.id]: 'r2' });
        assert.deepEqual(errors.map((p) => String(p.attributes[n.reason])).sort(),
          FAILURE_REASONS.filter((r) => r !== 'timeout').sort());
        assert.deepEqual(refused.map((p) => String(p.attributes[n.reason])).sort(),
          REFUSAL_REASONS.filter((r) => r !== 'timeout' && r !== 'auth').sort());
        for (const p of [...errors, ...refused]) {
          assert.equal(p.attributes.env, 'lab', JSON.stringify(p.attributes));
          assert.equal(p.value, 0);
        }
      } finally {
        await sender.stop();
        await reflector.stop();
        await silent.close();
        await meter.shutdown();
      }
    });
  });
}
