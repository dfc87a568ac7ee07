// GET /probe?target=&module= (README "Probe endpoint (multi-target)"): one
// sender session per request with a named module, answered in the Prometheus
// text format with probe_success / probe_duration_seconds; unknown modules,
// bad targets and targets outside the allow list refused; concurrency, rate
// and the scrape timeout bound what a scraper can make the agent send.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { request } from 'node:http';
import { PrometheusEndpoint, type PrometheusLimits } from '../../src/cli/exporters.js';
import { ProbeRunner, parseProbeTarget } from '../../src/cli/probeEndpoint.js';
import { parseAgentConfig, parseReflectorConfig, ConfigError } from '../../src/config/index.js';
import type { AgentConfig, NamingProfile } from '../../src/config/index.js';
import { TwampReflector } from '../../src/reflector.js';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { Agent } from '../../src/cli/agent.js';
import { silentLogger } from '../../src/util/log.js';

const HOST = '127.0.0.1';

function agentFile(extra: string): AgentConfig {
  return parseAgentConfig(`$version: "1.0"\n${extra}\ncollectors: []\n`);
}

const MODULES = `
modules:
  default: { model: g711, n_packets: 5, reply_timeout: 0.5 }
  fast: { model: g711, n_packets: 3, reply_timeout: 0.3, control_timeout: 1 }
  long: { model: g711, n_packets: 100, reply_timeout: 3 }
  hang: { model: g711, n_packets: 3, reply_timeout: 0.3, control_timeout: 30 }
  v6only: { model: g711, n_packets: 3, reply_timeout: 0.3, allow: ["::1"] }`;

interface Setup {
  endpoint: PrometheusEndpoint;
  runner: ProbeRunner;
  port: number;
}

async function withProbe(cfgText: string, limits: Partial<PrometheusLimits>, fn: (s: Setup) => Promise<void>, naming: NamingProfile = 'legacy'): Promise<void> {
  const cfg = agentFile(cfgText);
  const endpoint = new PrometheusEndpoint({ host: HOST, port: 0, path: '/metrics' }, naming, limits);
  const runner = new ProbeRunner({ modules: cfg.modules!, probe: cfg.probe!, naming, agentLabels: {} });
  endpoint.probe = runner;
  const mp = new MeterProvider({ readers: [endpoint.reader] });
  const { port } = await endpoint.start();
  try {
    await fn({ endpoint, runner, port });
  } finally {
    await mp.shutdown();
    await endpoint.stop();
  }
}

function get(port: number, path: string, headers: Record<string, string> = {}, timeoutMs = 20_000):
  Promise<{ status: number; body: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: HOST, port, path, agent: false, timeout: timeoutMs, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode!, body, ms: Date.now() - t0 }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** value of the first sample of `name` (with `labels` as a substring of its label set). */
function sample(body: string, name: string, labels = ''): number | undefined {
  for (const line of body.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name && (m[2] ?? '').includes(labels)) return Number(m[3]);
  }
  return undefined;
}

/** A TCP server that accepts and never says a word (a reflector that hangs before its Server-Greeting). */
async function silentServer(): Promise<{ server: Server; port: number; connections: number; sockets: Socket[] }> {
  const st = { server: undefined as unknown as Server, port: 0, connections: 0, sockets: [] as Socket[] };
  st.server = createServer((s) => { st.connections++; st.sockets.push(s); s.on('error', () => undefined); });
  await new Promise<void>((r) => st.server.listen(0, HOST, () => r()));
  st.port = (st.server.address() as { port: number }).port;
  return st;
}

async function closeSilent(st: { server: Server; sockets: Socket[] }): Promise<void> {
  for (const s of st.sockets) s.destroy();
  await new Promise<void>((r) => st.server.close(() => r()));
}

describe('probe modules and probe section in the agent file', () => {
  it('modules take the twamp_sender keys; probe limits have defaults; /probe stays off without modules', () => {
    const cfg = agentFile(`probe: { allow: [127.0.0.0/8] }${MODULES}`);
    assert.equal(cfg.modules!.default!.sender.nPackets, 5);
    assert.equal(cfg.modules!.default!.sender.id, 'default');
    assert.equal(cfg.modules!.hang!.sender.controlTimeoutMs, 30_000);
    assert.deepEqual(cfg.modules!.v6only!.allow, [{ address: '::1', prefix: 128, family: 6 }]); // parsed once, at load
    assert.deepEqual(cfg.probe, { allow: [{ address: '127.0.0.0', prefix: 8, family: 4 }], maxConcurrent: 8, maxPerSecond: 10, maxPerTargetPerSecond: 1, timeoutMs: 10_000 });
    const none = agentFile('');
    assert.equal(none.modules, undefined);
    assert.equal(none.probe, undefined);
    assert.deepEqual(agentFile('modules: { m: { model: g711, n_packets: 1 } }').probe!.allow, []);
  });

  it('a module with id, reflector or interval, or a broken sender key, is refused naming the module and key', () => {
    assert.throws(() => agentFile('modules:\n  m: { model: g711, n_packets: 1, reflector: 192.0.2.1, interval: 5, n_packet: 2 }'), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      const text = e.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
      assert.match(text, /modules\.m\.reflector: .*target comes from the \?target= parameter/);
      assert.match(text, /modules\.m\.interval: .*scrape_interval/);
      assert.match(text, /modules\.m\.n_packet: unknown key \(did you mean "n_packets"\?\)/);
      return true;
    });
    assert.throws(() => agentFile('modules:\n  m: { model: g711, n_packets: 1, format: stamp }'), /modules\.m\.format: .*needs control: false/);
    assert.throws(() => agentFile('probe: { max_concurrent: 0 }'), /probe\.max_concurrent/);
  });

  it('targets: host, host:port, [v6]:port; anything else is a message', () => {
    assert.deepEqual(parseProbeTarget('192.0.2.1'), { host: '192.0.2.1', port: undefined });
    assert.deepEqual(parseProbeTarget('r1.example:4862'), { host: 'r1.example', port: 4862 });
    assert.deepEqual(parseProbeTarget('[::1]:862'), { host: '::1', port: 862 });
    assert.deepEqual(parseProbeTarget('::1'), { host: '::1', port: undefined });
    assert.equal(typeof parseProbeTarget('a b'), 'string');
    assert.equal(typeof parseProbeTarget('h:0'), 'string');
    assert.equal(typeof parseProbeTarget('h:99999'), 'string');
    assert.equal(typeof parseProbeTarget('[1.2.3.4]:5'), 'string');
  });
});

describe('GET /probe', { timeout: 120_000 }, () => {
  let reflector: TwampReflector;
  let rport = 0;
  before(async () => {
    reflector = new TwampReflector(parseReflectorConfig({ id: 'r', listen: HOST, port: 0 }), {});
    await reflector.start();
    rport = reflector.address!.port;
  });
  after(async () => { await reflector.stop(); });

  it('runs one session and answers its gauges with the collector names, probe_success 1 and a duration', async () => {
    await withProbe(`probe: { allow: [127.0.0.0/8], max_per_target_per_second: 100 }${MODULES}`, {}, async ({ port, runner }) => {
      const r = await get(port, `/probe?target=${HOST}:${rport}`);
      assert.equal(r.status, 200, r.body);
      assert.equal(sample(r.body, 'probe_success'), 1, r.body);
      assert.ok(sample(r.body, 'probe_duration_seconds')! > 0);
      assert.equal(sample(r.body, 'twamp_tx_packets', `collector_id="default",reflector="${HOST}:${rport}"`), 5, r.body);
      assert.equal(sample(r.body, 'twamp_sender_success'), 1);
      assert.equal(sample(r.body, 'probe_failure_reason', 'reason="connect"'), 0);
      // Gauges only: a per-scrape session's counters and histogram would restart at every scrape.
      assert.doesNotMatch(r.body, /_total\b|_bucket\{|# TYPE \S+ (counter|histogram)/);
      assert.doesNotMatch(r.body, /target_info/);
      assert.equal(runner.stats.started, 1);
      // A second probe runs a second session: no cached body.
      const again = await get(port, `/probe?target=${HOST}:${rport}&module=fast`);
      assert.equal(sample(again.body, 'twamp_tx_packets', 'collector_id="fast"'), 3, again.body);
      assert.equal(runner.stats.started, 2);
    });
  });

  it('otel profile: the otel names and error_type for the reason', async () => {
    await withProbe(`probe: { allow: [127.0.0.0/8] }${MODULES}`, {}, async ({ port }) => {
      const r = await get(port, `/probe?target=${HOST}:${rport}`);
      assert.equal(sample(r.body, 'probe_success'), 1, r.body);
      assert.match(r.body, /^twamp_sender_packets_sent\{|^twamp_sender_\w+\{/m);
      assert.doesNotMatch(r.body, /^twamp_tx_packets/m);
      assert.equal(sample(r.body, 'probe_failure_reason', 'error_type="timeout"'), 0, r.body);
    }, 'otel');
  });

  it('a failed session is a successful scrape: 200, probe_success 0 and the reason', async () => {
    const closed = await silentServer();
    const closedPort = closed.port;
    await closeSilent(closed); // nothing listens there now
    await withProbe(`probe: { allow: [127.0.0.0/8] }${MODULES}`, {}, async ({ port }) => {
      const r = await get(port, `/probe?target=${HOST}:${closedPort}`);
      assert.equal(r.status, 200);
      assert.equal(sample(r.body, 'probe_success'), 0, r.body);
      assert.equal(sample(r.body, 'probe_failure_reason', 'reason="connect"'), 1, r.body);
      assert.equal(sample(r.body, 'probe_failure_reason', 'reason="timeout"'), 0);
      assert.match(r.body, /^# probe failed \(connect\): /m);
    });
  });

  it('refuses unknown modules (400 naming them and the known ones), and bad targets', async () => {
    await withProbe(`probe: { allow: [127.0.0.0/8] }${MODULES}`, {}, async ({ port, runner }) => {
      const u = await get(port, `/probe?target=${HOST}&module=nope`);
      assert.equal(u.status, 400);
      assert.match(u.body, /unknown module "nope"; known modules: "default", "fast", "hang", "long", "v6only"/);
      assert.equal((await get(port, '/probe?module=fast')).status, 400);
      const bad = await get(port, '/probe?target=a%20b');
      assert.equal(bad.status, 400);
      assert.match(bad.body, /target "a b"/);
      assert.equal(runner.stats.started, 0);
    });
    await withProbe('probe: { allow: [127.0.0.0/8] }\nmodules: { only: { model: g711, n_packets: 1 } }', {}, async ({ port }) => {
      const r = await get(port, `/probe?target=${HOST}`);
      assert.equal(r.status, 400);
      assert.match(r.body, /no module given and no module named "default"; known modules: "only"/);
    });
  });

  it('allow list: none configured refuses every target; outside it 403; a module allow replaces probe.allow', async () => {
    await withProbe(MODULES, {}, async ({ port, runner }) => {
      const r = await get(port, `/probe?target=${HOST}:${rport}`);
      assert.equal(r.status, 403);
      assert.match(r.body, /probe\.allow is empty, so every target is refused/);
      assert.equal(runner.stats.started, 0);
    });
    await withProbe(`probe: { allow: [127.0.0.2/32], max_per_target_per_second: 100 }${MODULES}`, {}, async ({ port, runner }) => {
      const r = await get(port, `/probe?target=${HOST}:${rport}`);
      assert.equal(r.status, 403);
      assert.match(r.body, /address 127\.0\.0\.1\) refused: not in probe\.allow/);
      // A host name is resolved and its address checked.
      const byName = await get(port, `/probe?target=localhost:${rport}`);
      assert.equal(byName.status, 403, byName.body);
      const v6 = await get(port, `/probe?target=${HOST}:${rport}&module=v6only`);
      assert.equal(v6.status, 403);
      assert.match(v6.body, /not in modules\.v6only\.allow/);
      assert.equal(runner.stats.forbidden, 3);
    });
  });

  it('max_concurrent: one more probe while the bound is reached gets 503', async () => {
    const hang = await silentServer();
    try {
      await withProbe(`probe: { allow: [127.0.0.0/8], max_concurrent: 1 }${MODULES}`, {}, async ({ port, runner }) => {
        const first = get(port, `/probe?target=${HOST}:${hang.port}&module=hang`, { 'X-Prometheus-Scrape-Timeout-Seconds': '3' });
        const deadline = Date.now() + 5_000;
        while (runner.stats.running === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        const second = await get(port, `/probe?target=127.0.0.2:${rport}`);
        assert.equal(second.status, 503);
        assert.match(second.body, /too many probes running \(probe\.max_concurrent 1\)/);
        assert.equal(runner.stats.busy, 1);
        assert.equal((await first).status, 200);
      });
    } finally {
      await closeSilent(hang);
    }
  });

  it('rates: per target and all together give 429; a probe also spends a scrape of the endpoint rate', async () => {
    await withProbe(`probe: { allow: [127.0.0.0/8], max_per_target_per_second: 0.1 }${MODULES}`, {}, async ({ port }) => {
      assert.equal((await get(port, `/probe?target=${HOST}:${rport}&module=fast`)).status, 200);
      const again = await get(port, `/probe?target=${HOST}:${rport}&module=fast`);
      assert.equal(again.status, 429);
      assert.match(again.body, /probed too often \(probe\.max_per_target_per_second 0\.1\)/);
      // Another target still may.
      assert.equal((await get(port, `/probe?target=127.0.0.2:${rport}&module=fast`)).status, 200);
    });
    await withProbe(`probe: { allow: [127.0.0.0/8], max_per_second: 0.1 }${MODULES}`, {}, async ({ port }) => {
      assert.equal((await get(port, `/probe?target=${HOST}:${rport}&module=fast`)).status, 200);
      const r = await get(port, `/probe?target=127.0.0.2:${rport}&module=fast`);
      assert.equal(r.status, 429);
      assert.match(r.body, /probe\.max_per_second 0\.1/);
    });
    await withProbe(`probe: { allow: [127.0.0.0/8] }${MODULES}`, { maxScrapesPerSecond: 1 }, async ({ port, runner }) => {
      assert.equal((await get(port, '/metrics')).status, 200);
      const r = await get(port, `/probe?target=${HOST}:${rport}&module=fast`);
      assert.equal(r.status, 429);
      assert.match(r.body, /too many scrapes/);
      assert.equal(runner.stats.started, 0);
    });
  });

  it('the scrape timeout bounds the session: a module that cannot fit is not run, a hanging one is cut', async () => {
    const hang = await silentServer();
    try {
      await withProbe(`probe: { allow: [127.0.0.0/8], max_per_target_per_second: 100 }${MODULES}`, {}, async ({ port, runner }) => {
        // long: 100 packets at 50/s + 3 s reply_timeout = 5 s > 2 s - 0.5 s.
        const r = await get(port, `/probe?target=${HOST}:${hang.port}&module=long`, { 'X-Prometheus-Scrape-Timeout-Seconds': '2' });
        assert.equal(r.status, 200);
        assert.equal(sample(r.body, 'probe_success'), 0, r.body);
        assert.equal(sample(r.body, 'probe_failure_reason', 'reason="timeout"'), 1);
        assert.match(r.body, /module "long" needs at least 5\.0 s/);
        assert.equal(hang.connections, 0, 'no session started');
        // hang: control_timeout 30 s, but the scrape allows 2 s: cut at 1.5 s.
        const h = await get(port, `/probe?target=${HOST}:${hang.port}&module=hang`, { 'X-Prometheus-Scrape-Timeout-Seconds': '2' });
        assert.equal(h.status, 200);
        assert.equal(sample(h.body, 'probe_success'), 0, h.body);
        assert.equal(sample(h.body, 'probe_failure_reason', 'reason="timeout"'), 1, h.body);
        assert.ok(h.ms < 10_000, `answered after ${h.ms} ms`);
        assert.equal(hang.connections, 1);
        assert.equal(runner.stats.running, 0);
      });
    } finally {
      await closeSilent(hang);
    }
  });

  it('without modules the endpoint has no /probe', async () => {
    const endpoint = new PrometheusEndpoint({ host: HOST, port: 0, path: '/metrics' }, 'legacy');
    const { port } = await endpoint.start();
    try {
      const r = await get(port, `/probe?target=${HOST}`);
      assert.equal(r.status, 404);
    } finally {
      await endpoint.stop();
    }
  });
});

describe('agent wiring', () => {
  it('the agent sets the probe hook only with modules; a change of modules or probe limits restarts the agent', () => {
    const withModules = agentFile(`probe: { allow: [127.0.0.0/8] }${MODULES}`);
    withModules.prometheus = { host: HOST, port: 0, path: '/metrics' };
    const a = new Agent(withModules, { logger: silentLogger });
    assert.ok(a.prometheus?.probe instanceof ProbeRunner);
    const plain = agentFile('');
    plain.prometheus = { host: HOST, port: 0, path: '/metrics' };
    assert.equal(new Agent(plain, { logger: silentLogger }).prometheus?.probe, undefined);
    const tighter = agentFile(`probe: { allow: [127.0.0.0/8], max_concurrent: 2 }${MODULES}`);
    tighter.prometheus = withModules.prometheus;
    assert.match(a.needsFullRestart(tighter) ?? '', /probe modules or limits changed/);
    const same = agentFile(`probe: { allow: [127.0.0.0/8] }${MODULES}`);
    same.prometheus = withModules.prometheus;
    assert.equal(a.needsFullRestart(same), undefined);
  });
});
