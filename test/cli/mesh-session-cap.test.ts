// The agent's cap on sender sessions at once (docs/configuration.md "The agent
// file": max_concurrent_sessions, max_sessions_per_reflector): six senders
// due at the same second never hold more TWAMP-Control connections to one
// reflector, nor sessions in total, than the caps; the others queue, every
// one still runs, and the wait is exported. The same senders without a tight
// cap do open more at once (so the counting would see a missing gate).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { parseAgentConfig, parseReflectorConfig } from '../../src/config/load.js';
import { Agent } from '../../src/cli/agent.js';
import { expandMesh, meshDestinationCaps } from '../../src/cli/mesh.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TwampReflector } from '../../src/reflector.js';
import { silentLogger } from '../../src/util/log.js';
import { freePort } from '../helpers/peers.js';
import { until as untilWithin } from '../helpers/wait.js';

/** Counts TWAMP-Control connections open at once through a TCP relay to a reflector, per relay and in total. */
class Counter {
  open = 0;
  max = 0;
  constructor(private readonly total?: Counter) {}
  up(): void {
    this.open++;
    this.max = Math.max(this.max, this.open);
    this.total?.up();
  }
  down(): void {
    this.open--;
    this.total?.down();
  }
}

async function relay(to: number, counter: Counter): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    counter.up();
    let closed = false;
    const upstream = net.connect(to, '127.0.0.1');
    sockets.add(client).add(upstream);
    const done = () => {
      if (closed) return;
      closed = true;
      counter.down();
      client.destroy();
      upstream.destroy();
    };
    client.pipe(upstream).pipe(client);
    for (const s of [client, upstream]) { s.on('close', done); s.on('error', done); }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => { for (const s of sockets) s.destroy(); return new Promise((r) => server.close(() => r())); },
  };
}

async function runSix(limits: string, relays: number[], prom?: number): Promise<Agent> {
  const senders = Array.from({ length: 6 }, (_, i) =>
    `  - {type: twamp_sender, id: s${i}, reflector: 127.0.0.1, port: ${relays[i % relays.length]}, model: g711, n_packets: 15, interval: 60, reply_timeout: 0.5}`);
  const agent = new Agent(parseAgentConfig(`$version: "1.0"
${limits}
${prom !== undefined ? `sender: {listen: "127.0.0.1:${prom}"}\n` : ''}collectors:
${senders.join('\n')}
`, 'agent.yaml', {}), { logger: silentLogger, env: {} });
  await agent.start();
  await until('every sender to finish a run', () => agent.senders.length === 6 && agent.senders.every((s) => s.lastOutcome !== undefined));
  return agent;
}

const until = (what: string, cond: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> => untilWithin(what, cond, ms);

describe('agent session cap', { timeout: 90_000 }, () => {
  it('max_sessions_per_reflector and max_concurrent_sessions bound the sessions at once; the rest queue, run, and the wait is exported', async () => {
    const reflector = new TwampReflector(parseReflectorConfig({ id: 'r', listen: '127.0.0.1', port: 0 }), { logger: silentLogger });
    await reflector.start();
    const total = new Counter();
    const a = new Counter(total);
    const b = new Counter(total);
    const ra = await relay(reflector.address!.port, a);
    const rb = await relay(reflector.address!.port, b);
    const prom = await freePort();
    let agent: Agent | undefined;
    try {
      // Three senders per "reflector" (relay), 2 per reflector and 3 in all at once.
      agent = await runSix('agent: {max_concurrent_sessions: 3, max_sessions_per_reflector: 2}', [ra.port, rb.port], prom);
      for (const s of agent.senders) assert.equal(s.lastOutcome?.ok, true, `${s.config.id}: ${s.lastOutcome?.ok === false ? s.lastOutcome.error.message : ''}`);
      assert.ok(a.max <= 2 && b.max <= 2, `per reflector at most 2, saw ${a.max} and ${b.max}`);
      assert.ok(total.max <= 3, `in all at most 3, saw ${total.max}`);
      assert.equal(total.max, 3, 'the cap is used, not undershot');
      const stats = agent.gate.stats;
      assert.equal(stats.granted, 6);
      assert.ok(stats.waited >= 3, `at least three waited, ${stats.waited} did`);
      assert.ok(stats.waitMs > 0);
      assert.deepEqual([stats.active, stats.queued], [0, 0]);
      const text = await agent.prometheus!.render();
      const wait = /^twamp_agent_session_queue_wait_seconds_total\{[^}]*\} (\S+)$/m.exec(text);
      assert.ok(wait && Number(wait[1]) > 0, text.split('\n').filter((l) => l.startsWith('twamp_agent_')).join('\n'));
      assert.match(text, /^twamp_agent_sessions_active\{[^}]*\} 0$/m);
      assert.match(text, /^twamp_agent_sessions_queued\{[^}]*\} 0$/m);
      await agent.stop();
      agent = undefined;

      // Without a tight cap (the defaults: 100 in all, 8 per reflector) the same six run together.
      for (const c of [a, b, total]) c.max = 0;
      agent = await runSix('', [ra.port], undefined);
      assert.ok(a.max > 2, `the defaults let more than 2 run at once, saw ${a.max}`);
      assert.equal(agent.gate.stats.waited, 0);
    } finally {
      await agent?.stop();
      await ra.close();
      await rb.close();
      await reflector.stop();
    }
  });

  it('a reload applies new caps without restarting any collector', async () => {
    const text = (limits: string) => `$version: "1.0"
${limits}
collectors:
  - {type: twamp_sender, id: s, reflector: 127.0.0.1, port: 9, model: g711, n_packets: 1, interval: 60, control_timeout: 0.2}
`;
    const agent = new Agent(parseAgentConfig(text(''), 'agent.yaml', {}), { logger: silentLogger, env: {} });
    try {
      await agent.start();
      assert.deepEqual(agent.gate.limits, { maxConcurrent: 100, maxPerDestination: 8 });
      const next = parseAgentConfig(text('agent: {max_concurrent_sessions: 5, max_sessions_per_reflector: 2}'), 'agent.yaml', {});
      assert.equal(agent.needsFullRestart(next), undefined);
      const out = await agent.reload(next);
      assert.deepEqual([out.restarted, out.started, out.stopped, out.unchanged], [[], [], [], ['s']]);
      assert.deepEqual(agent.gate.limits, { maxConcurrent: 5, maxPerDestination: 2 });
    } finally {
      await agent.stop();
    }
  });

  it('agent keys: defaults 100 and 8; integers ≥ 1', () => {
    const c = parseAgentConfig('$version: "1.0"\ncollectors: []\n', 'agent.yaml', {});
    assert.deepEqual([c.maxConcurrentSessions, c.maxSessionsPerReflector], [100, 8]);
    assert.throws(() => parseAgentConfig('$version: "1.0"\nagent: {max_sessions_per_reflector: 0}\ncollectors: []\n', 'agent.yaml', {}),
      /agent\.yaml:2:\d+: agent\.max_sessions_per_reflector: expected an integer between 1 and 100000/);
  });

  it("a mesh's reflector per-client limits cap its agents' sessions to each target", () => {
    const loaded = expandMesh(`tests:
  a: {model: g711, n_packets: 5}
  b: {model: g729, n_packets: 5}
  l: {model: g711, n_packets: 5, control: false}
members:
  - {name: m1, address: 192.0.2.1}
  - {name: m2, address: 192.0.2.2, port: 8620, light_port: 4000}
  - {name: m3, address: 2001:db8::3, light_port: 4000}
groups:
  - {type: mesh, members: [m1, m2, m3], test: a}
  - {type: star, probes: [m1], reflectors: [m2], test: b}
  - {type: star, probes: [m1], reflectors: [m2, m3], test: l}
reflector: {max_connections_per_client: 2, max_sessions_per_client: 5}
`, { config: { source: 'mesh.yaml', self: 'm1', intervalMs: 60_000 }, host: 'x', naming: 'legacy', defaultInterval: 60 });
    // Control senders only (a Light session holds no control connection), by the HOST:PORT the senders use.
    assert.deepEqual([...meshDestinationCaps(loaded)], [['192.0.2.2:8620', 2], ['[2001:db8::3]:862', 2]]);
  });

  it('an agent never holds more sessions to a mesh target than its reflector allows a client; none is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'otel-twamp-mesh-cap-'));
    const [p1, p2] = [await freePort(), await freePort()];
    // Three tests from m1 to m2, half a second each every second: without a cap they overlap.
    writeFileSync(join(dir, 'mesh.yaml'), `tests:
  a: {model: g711, n_packets: 25, interval: 1, reply_timeout: 0.3}
  b: {model: g729, n_packets: 25, interval: 1, reply_timeout: 0.3}
  c: {model: g711, n_packets: 25, interval: 1, reply_timeout: 0.3, dscp: ef}
members:
  - {name: m1, address: 127.0.0.1, port: ${p1}, listen: 127.0.0.1}
  - {name: m2, address: 127.0.0.2, port: ${p2}, listen: 127.0.0.2}
groups:
  - {type: star, probes: [m1], reflectors: [m2], test: a}
  - {type: star, probes: [m1], reflectors: [m2], test: b}
  - {type: star, probes: [m1], reflectors: [m2], test: c}
reflector: {max_connections_per_client: 1}
`);
    const agentFor = (self: string) => new Agent(parseAgentConfig(`$version: "1.0"
mesh: {source: mesh.yaml, self: ${self}, interval: 60}
`, join(dir, 'agent.yaml'), {}), { logger: silentLogger, env: {} });
    const m2 = agentFor('m2');
    const m1 = agentFor('m1');
    const failures: string[] = [];
    let watch: NodeJS.Timeout | undefined;
    try {
      await m2.start();
      await m1.start();
      assert.equal(m1.senders.length, 3);
      assert.equal(m1.gate.capOf(`127.0.0.2:${p2}`), 1);
      const seen = new Set<unknown>();
      watch = setInterval(() => {
        for (const s of m1.senders) {
          const o = s.lastOutcome;
          if (!o || seen.has(o)) continue;
          seen.add(o);
          if (!o.ok) failures.push(`${s.config.id}: ${o.reason} ${o.error.message}`);
        }
      }, 20);
      await until('six runs', () => seen.size >= 6, 20_000);
      assert.deepEqual(failures, []);
      assert.ok(m1.gate.stats.waited > 0, 'some sessions waited for the one slot');
    } finally {
      if (watch) clearInterval(watch);
      await m1.stop();
      await m2.stop();
    }
  });
});
