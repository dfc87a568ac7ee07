// The CLI as a user runs it: --help, --check, and a real agent process whose
// Prometheus endpoint is scraped over HTTP.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, freePort } from '../helpers/peers.js';
import { SENDER_MEASUREMENTS, REFLECTOR_METRICS } from '../../src/otel/instruments.js';

const MAIN = join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

function cli(args: string[]) {
  return spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 20_000 });
}

function tmpFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'otel-twamp-cli-'));
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

describe('otel-twamp CLI', { timeout: 60_000 }, () => {
  it('--help documents commands, config sections and environment', () => {
    const r = cli(['--help']);
    assert.equal(r.status, 0);
    for (const word of ['agent', '--config', '--check', 'collectors', 'twamp_sender', 'twamp_reflector', 'otlp',
      'OTEL_METRICS_EXPORTER', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_METRIC_EXPORT_INTERVAL', 'reflector_port', 'imix']) {
      assert.ok(r.stdout.includes(word), `help mentions ${word}`);
    }
  });

  it('--check accepts the demo config', () => {
    const r = cli(['agent', '--config', join(repoRoot(), 'collector-config', 'demo-agent.yaml'), '--check']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /OK — 2 collector\(s\) enabled: demo-reflector \(twamp_reflector\), demo-g711 \(twamp_sender\)/);
  });

  it('--check rejects a bad config with file, line, collector and key', () => {
    const f = tmpFile('bad.yaml', [
      '$version: "1.0"',
      'collectors:',
      '  - id: s1',
      '    type: twamp_sender',
      '    reflector: 127.0.0.1',
      '    n_packets: many',
      '    model: g711',
      '    n_packet: 3',
    ].join('\n'));
    const r = cli(['agent', '--config', f, '--check']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /bad\.yaml:6:\d+: collectors\[0\] \(id "s1"\): n_packets: /);
    assert.match(r.stderr, /n_packet.*did you mean "n_packets"/);
  });

  it('a missing file and a missing --config are clear errors', () => {
    const r = cli(['agent', '--config', '/nonexistent/agent.yaml']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /\/nonexistent\/agent\.yaml/);
    const r2 = cli(['agent']);
    assert.equal(r2.status, 2);
    assert.match(r2.stderr, /--config FILE is required/);
    const r3 = cli(['frobnicate']);
    assert.equal(r3.status, 2);
    assert.match(r3.stderr, /unknown command "frobnicate"/);
  });

  it('agent: real Prometheus exposition with the reference names, clean exit on SIGTERM', async () => {
    const promPort = await freePort();
    const twampPort = await freePort();
    const f = tmpFile('agent.yaml', `
$version: "1.0"
$type: zeroconf
agent:
  host: test-host
  labels: { site: lab }
  defaults: { interval: 1 }
sender:
  type: openmetrics
  mode: pull
  listen: "127.0.0.1:${promPort}"
  path: /metrics
collectors:
  - id: r1
    type: twamp_reflector
    listen: 127.0.0.1
    port: ${twampPort}
  - id: s1
    type: twamp_sender
    reflector: 127.0.0.1
    port: ${twampPort}
    n_packets: 10
    model: g711
`);
    const child = spawn(process.execPath, [MAIN, 'agent', '--config', f], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stderr.on('data', (d: Buffer) => { log += d.toString(); });
    try {
      const deadline = Date.now() + 15_000;
      let text = '';
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        try {
          const res = await fetch(`http://127.0.0.1:${promPort}/metrics`);
          text = await res.text();
          assert.match(res.headers.get('content-type') ?? '', /text\/plain; version=0\.0\.4/);
          if (/^twamp_rx_packets\{.*\} 10$/m.test(text)) break;
        } catch {
          // not listening yet
        }
      }
      assert.match(log, new RegExp(`Prometheus metrics at http://127\\.0\\.0\\.1:${promPort}/metrics`));
      for (const spec of SENDER_MEASUREMENTS) {
        assert.match(text, new RegExp(`^${spec.legacy.name}\\{[^}]*collector_id="s1"`, 'm'), spec.legacy.name);
      }
      for (const spec of REFLECTOR_METRICS) {
        const name = spec.kind === 'counter' ? `${spec.legacy.name}_total` : spec.legacy.name;
        if (spec.key === 'refused') continue; // only present once something was refused
        if (spec.key.startsWith('light_')) continue; // only with light_port
        assert.match(text, new RegExp(`^${name}\\{`, 'm'), name);
      }
      assert.match(text, /^twamp_rx_packets\{[^}]*host="test-host"[^}]*\} 10$/m);
      assert.match(text, /site="lab"/);
      assert.doesNotMatch(text, /otel_scope_name/, 'legacy profile: no scope labels');
      assert.match(text, /^target_info\{[^}]*service_name="otel-twamp"/m);
      const notFound = await fetch(`http://127.0.0.1:${promPort}/other`);
      assert.equal(notFound.status, 404);
    } finally {
      child.kill('SIGTERM');
    }
    const code = await new Promise<number | null>((r) => {
      const t = setTimeout(() => { child.kill('SIGKILL'); r(null); }, 15_000);
      child.once('exit', (c) => { clearTimeout(t); r(c); });
    });
    assert.equal(code, 0, log);
    assert.match(log, /SIGTERM: stopping/);
  });
});
