// Adversarial load: thousands of half-open, garbage and otherwise
// broken TWAMP-Control connections plus a flood of unsolicited UDP datagrams
// (to the live session's port, to random ports and to the control port)
// against a TwampReflector, while a legitimate perfSONAR twping session
// (100 packets every 10 ms) completes with no loss and a sane round trip.
// The attackers run in a worker thread (their own event loop); everything is
// closed in finally and the process' open file descriptors return to where
// they were.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { TwampReflector } from '../../src/reflector.js';
import { ControlClient } from '../../src/session/controlClient.js';
import { requirePeersOrSkip, runTwping, hostPort, type TwpingResult } from '../helpers/peers.js';
import type { AttackPlan, AttackReport } from '../helpers/attacker.js';
import { parseReflectorConfig } from '../../src/config/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const openFds = (): number => readdirSync('/proc/self/fd').length;

/**
 * The random-port part of the flood goes to privileged ports below TWAMP's
 * 862: no test (running in parallel) and no client socket sits there,
 * whereas the ephemeral range and twping's test ports (8760–9960) are in use.
 */
const RANDOM_PORTS: [number, number] = [600, 850];

function explain(r: TwpingResult): string {
  return `twping exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

describe('reflector under attack', { timeout: 60_000 }, () => {
  it('2,000 broken control connections and a UDP flood; twping -c 100 -i 0.01f still sees 0 loss', async (t) => {
    const peers = requirePeersOrSkip(t);
    if (!peers) return;
    const fdsBefore = openFds();
    const t0 = Date.now();
    let worker: Worker | undefined;
    const reflector = new TwampReflector(parseReflectorConfig({
      id: 'adversarial', listen: '127.0.0.1', port: 0,
      control_timeout: 2, servwait: 10, max_connections: 1024,
      // Attacker and twping share 127.0.0.1: lift the per-client cap so this tests the global state machine.
      max_connections_per_client: 1024,
    }), { onSessionEvent: (e) => { if (e.type === 'accepted') worker?.postMessage({ sessionPort: e.port, senderPort: e.sender?.port }); } });
    try {
      const { port } = await reflector.start();
      const plan: AttackPlan = {
        host: '127.0.0.1', controlPort: port, connections: 2000, concurrency: 300, maxMs: 15_000, udpPerTick: 100,
        randomPorts: RANDOM_PORTS,
      };
      worker = new Worker(new URL('../helpers/attacker.js', import.meta.url), { workerData: plan });
      const done = new Promise<AttackReport>((resolve, reject) => {
        worker!.on('message', (m: { report?: AttackReport }) => { if (m.report) resolve(m.report); });
        worker!.once('error', reject);
      });
      await sleep(1500); // the attack in full swing
      const tw = await runTwping(peers, hostPort('127.0.0.1', port), ['-c', '100', '-i', '0.01f'], 25_000);
      const peakDuring = openFds();
      worker.postMessage({ stop: true });
      const report = await done;

      const c = reflector.counters;
      const refused = Object.fromEntries([...c.refused].sort());
      t.diagnostic(`attack: ${JSON.stringify(report)}`);
      t.diagnostic(`reflector: connections ${c.controlConnections}, refused ${JSON.stringify(refused)}, ` +
        `dropped packets ${c.droppedPackets}, reflected ${c.reflectedPackets}, fds before ${fdsBefore}, at twping's end ${peakDuring}`);
      t.diagnostic(`twping: sent ${tw.sent}, lost ${tw.lost}, rtt min/median/max ${tw.rtMinMs}/${tw.rtMedianMs}/${tw.rtMaxMs} ms`);

      assert.equal(tw.code, 0, explain(tw));
      assert.equal(tw.sent, 100, explain(tw));
      assert.equal(tw.lost, 0, explain(tw));
      assert.equal(tw.duplicates, 0, explain(tw));
      assert.ok(tw.rtMaxMs !== undefined && tw.rtMaxMs < 200, `sane RTT under attack: max ${tw.rtMaxMs} ms\n${explain(tw)}`);
      const made = Object.values(report.made).reduce((a, b) => a + b, 0);
      assert.ok(made >= 1500, `most of the 2,000 attack connections were made (${made}) within the time bound`);
      assert.ok(report.udpToSession > 1000, `the live session port was flooded (${report.udpToSession})`);
      assert.ok(c.droppedPackets > 1000, `unsolicited datagrams to the live session port are dropped (${c.droppedPackets}), never reflected`);
      assert.equal(c.reflectedPackets, 100, 'only the legitimate packets were reflected');
      for (const reason of c.refused.keys()) {
        assert.ok(['abandoned', 'mode', 'protocol', 'timeout', 'request', 'closed'].includes(reason), `unexpected refusal reason ${reason}`);
      }
      // The reflector recovers: every attacker connection goes, and a new client is served.
      const deadline = Date.now() + 5000;
      while (reflector.controlConnections > 0 && Date.now() < deadline) await sleep(100);
      assert.equal(reflector.controlConnections, 0);
      const ok = await ControlClient.connect({ host: '127.0.0.1', port, timeoutMs: 2000 });
      ok.close();
      t.diagnostic(`total ${Date.now() - t0} ms`);
    } finally {
      await worker?.terminate();
      await reflector.stop();
    }
    await sleep(200);
    const fdsAfter = openFds();
    assert.ok(fdsAfter <= fdsBefore + 5, `file descriptors back to ${fdsBefore} (now ${fdsAfter})`);
  });
});
