// The probe set-up end to end with a real Prometheus: the shipped
// collector-config/prometheus-probe.yml (its params and relabel_configs, the
// __address__ → __param_target → instance dance) with the targets replaced by
// two of our reflectors on loopback and the agent address by a running agent;
// Prometheus scrapes /probe once per target and its API answers both
// targets' probe_success and TWAMP results (README "Probe endpoint (multi-target)").
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { Agent } from '../../src/cli/agent.js';
import { parseAgentConfig, parseReflectorConfig } from '../../src/config/index.js';
import { TwampReflector } from '../../src/reflector.js';
import { silentLogger } from '../../src/util/log.js';
import { findPrometheus, stopChild, PROMETHEUS_INSTALL_HINT } from '../helpers/prometheus.js';
import { isCI, repoRoot } from '../helpers/peers.js';

const HOST = '127.0.0.1';
const bin = findPrometheus();
if (!bin) console.warn(`\n*** WARNING: Prometheus probe set-up NOT RUN — ${PROMETHEUS_INSTALL_HINT}${isCI() ? ' (CI: failing)' : ''}\n`);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, HOST, () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

interface Sample { metric: Record<string, string>; value: [number, string] }

async function query(base: string, q: string): Promise<Sample[]> {
  const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(q)}`, { signal: AbortSignal.timeout(2000) });
  const body = (await res.json()) as { status: string; data?: { result: Sample[] }; error?: string };
  if (body.status !== 'success' || !body.data) throw new Error(`query ${q}: ${body.error ?? res.status}`);
  return body.data.result;
}

type Job = { job_name: string; metrics_path: string; params: Record<string, string[]>; static_configs: { targets: string[] }[];
  relabel_configs: { replacement?: string; target_label?: string }[] };

describe('collector-config/prometheus-probe.yml with a real Prometheus', { timeout: 90_000 }, () => {
  const reflectors: TwampReflector[] = [];
  let agent: Agent | undefined;
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  let log = '';

  before(async () => {
    if (!bin) return;
    for (let i = 0; i < 2; i++) {
      const r = new TwampReflector(parseReflectorConfig({ id: `r${i}`, listen: HOST, port: 0 }), {});
      await r.start();
      reflectors.push(r);
    }
    const cfg = parseAgentConfig(`$version: "1.0"
probe: { allow: [127.0.0.0/8] }
modules:
  default: { model: g711, n_packets: 5, reply_timeout: 0.3 }
collectors: []
`);
    cfg.prometheus = { host: HOST, port: await freePort(), path: '/metrics' };
    agent = new Agent(cfg, { logger: silentLogger });
    await agent.start();
  });

  after(async () => {
    await stopChild(child);
    await agent?.stop();
    for (const r of reflectors) await r.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('Prometheus probes both reflectors through the agent; its API answers each target\'s results', async (t) => {
    if (!bin) {
      assert.ok(!isCI(), PROMETHEUS_INSTALL_HINT);
      t.skip(PROMETHEUS_INSTALL_HINT);
      return;
    }
    const shipped = parse(readFileSync(join(repoRoot(), 'collector-config', 'prometheus-probe.yml'), 'utf8')) as { scrape_configs: Job[] };
    const [job] = shipped.scrape_configs;
    assert.ok(job);
    assert.equal(job.metrics_path, '/probe');
    const targets = reflectors.map((r) => `${HOST}:${r.address!.port}`);
    const agentAddress = `${HOST}:${agent!.config.prometheus!.port}`;
    // Only the addresses change: the shipped params and relabel rules are what is tested.
    const toAgent = job.relabel_configs.filter((r) => r.target_label === '__address__');
    assert.equal(toAgent.length, 1, 'one rule points __address__ at the agent');
    toAgent[0]!.replacement = agentAddress;
    const config = {
      global: { scrape_interval: '2s', scrape_timeout: '2s', evaluation_interval: '1m' },
      scrape_configs: [{ ...job, static_configs: [{ targets }] }],
    };
    dir = mkdtempSync(join(tmpdir(), 'otel-twamp-prom-probe-'));
    const configFile = join(dir, 'prometheus.yml');
    writeFileSync(configFile, JSON.stringify(config, null, 1));
    const webPort = await freePort();
    child = spawn(bin, [`--config.file=${configFile}`, `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=${HOST}:${webPort}`, '--log.level=warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => { if (log.length < 64 * 1024) log += d; });
    let exited: string | undefined;
    child.once('exit', (code, signal) => { exited = `prometheus exited (code ${code}, signal ${signal})`; });

    const base = `http://${HOST}:${webPort}`;
    const deadline = Date.now() + 45_000;
    let success: Sample[] = [];
    for (;;) {
      if (exited) assert.fail(`${exited}\n${log}`);
      if (Date.now() > deadline) assert.fail(`no probe_success for both targets within 45 s: ${JSON.stringify(success)}\n${log}`);
      await new Promise((r) => setTimeout(r, 500));
      try {
        success = await query(base, 'probe_success{job="otel-twamp-probe"}');
      } catch {
        continue; // not listening yet
      }
      if (targets.every((tg) => success.some((s) => s.metric.instance === tg))) break;
    }
    for (const tg of targets) {
      const s = success.find((x) => x.metric.instance === tg)!;
      assert.equal(s.value[1], '1', `probe_success of ${tg}`);
      const up = await query(base, `up{job="otel-twamp-probe",instance="${tg}"}`);
      assert.equal(up[0]?.value[1], '1', `up of ${tg}`);
      // The sender's gauges, named as a twamp_sender collector's, per target.
      const rx = await query(base, `twamp_rx_packets{instance="${tg}"}`);
      assert.equal(rx.length, 1, `twamp_rx_packets of ${tg}: ${JSON.stringify(rx)}`);
      assert.equal(rx[0]!.value[1], '5');
      assert.equal(rx[0]!.metric.reflector, tg);
      assert.equal(rx[0]!.metric.collector_id, 'default');
      const dur = await query(base, `probe_duration_seconds{instance="${tg}"}`);
      assert.ok(Number(dur[0]?.value[1]) > 0);
    }
    assert.ok(reflectors.every((r) => r.address !== undefined));
  });
});
