// Shape checks for the shipped configs in collector-config/. Each config file
// has its own describe() block; add new ones below (e.g. the demo agent's).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { isCI, repoRoot } from './helpers/peers.js';
import { loadAgentConfig } from '../src/config/load.js';

const configDir = join(repoRoot(), 'collector-config');

type Obj = Record<string, unknown>;

function loadYaml(name: string): Obj {
  const doc: unknown = parse(readFileSync(join(configDir, name), 'utf8'));
  assert.ok(isObj(doc), `${name}: top level must be a mapping`);
  return doc;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: unknown, where: string): Obj {
  assert.ok(isObj(v), `${where} must be a mapping, got ${JSON.stringify(v)}`);
  return v;
}

function strings(v: unknown, where: string): string[] {
  assert.ok(Array.isArray(v) && v.every((x) => typeof x === 'string'), `${where} must be a list of names`);
  return v as string[];
}

/** Collector component ids are "type" or "type/name"; the type selects the factory. */
const componentType = (id: string) => id.split('/')[0]!;

describe('collector-config/otel-collector.yaml', () => {
  const cfg = loadYaml('otel-collector.yaml');
  const service = obj(cfg.service, 'service');
  const pipelines = obj(service.pipelines, 'service.pipelines');

  it('receives OTLP over HTTP on 4318 and gRPC on 4317', () => {
    const otlp = obj(obj(cfg.receivers, 'receivers').otlp, 'receivers.otlp');
    const protocols = obj(otlp.protocols, 'receivers.otlp.protocols');
    assert.match(String(obj(protocols.http, 'otlp http').endpoint), /:4318$/);
    assert.match(String(obj(protocols.grpc, 'otlp grpc').endpoint), /:4317$/);
  });

  it('exports to Prometheus on 0.0.0.0:8889 with resource attributes as labels, and to debug', () => {
    const exporters = obj(cfg.exporters, 'exporters');
    const prom = obj(exporters.prometheus, 'exporters.prometheus');
    assert.equal(prom.endpoint, '0.0.0.0:8889');
    assert.equal(obj(prom.resource_to_telemetry_conversion, 'resource_to_telemetry_conversion').enabled, true);
    assert.ok('debug' in exporters, 'debug exporter declared');
  });

  it('has a metrics pipeline otlp -> batch -> prometheus + debug', () => {
    const metrics = obj(pipelines.metrics, 'service.pipelines.metrics');
    assert.deepEqual(strings(metrics.receivers, 'metrics.receivers'), ['otlp']);
    assert.ok(strings(metrics.processors, 'metrics.processors').includes('batch'));
    const exp = strings(metrics.exporters, 'metrics.exporters');
    assert.ok(exp.includes('prometheus') && exp.includes('debug'), `exporters: ${exp.join(', ')}`);
  });

  it('declares every component a pipeline or the service uses, and uses every declared one', () => {
    const used = new Set<string>();
    for (const [name, raw] of Object.entries(pipelines)) {
      const pl = obj(raw, `pipeline ${name}`);
      assert.ok(['metrics', 'traces', 'logs'].includes(componentType(name)), `pipeline type of ${name}`);
      for (const kind of ['receivers', 'processors', 'exporters'] as const) {
        if (pl[kind] === undefined && kind === 'processors') continue;
        const ids = strings(pl[kind], `${name}.${kind}`);
        assert.ok(kind === 'processors' || ids.length > 0, `${name}.${kind} must not be empty`);
        const declared = obj(cfg[kind], kind);
        for (const id of ids) {
          assert.ok(id in declared, `pipeline ${name} uses ${kind}.${id}, which is not declared`);
          used.add(`${kind}.${id}`);
        }
      }
    }
    const ext = service.extensions === undefined ? [] : strings(service.extensions, 'service.extensions');
    for (const id of ext) {
      assert.ok(id in obj(cfg.extensions, 'extensions'), `service uses extensions.${id}, which is not declared`);
      used.add(`extensions.${id}`);
    }
    for (const kind of ['receivers', 'processors', 'exporters', 'extensions'] as const) {
      for (const id of Object.keys(cfg[kind] === undefined ? {} : obj(cfg[kind], kind))) {
        assert.ok(used.has(`${kind}.${id}`), `${kind}.${id} is declared but not used`);
      }
    }
  });
});

/** Targets of every job of a Prometheus config, by job. */
function promJobs(cfg: Obj): Obj[] {
  assert.ok(Array.isArray(cfg.scrape_configs), 'scrape_configs must be a list');
  return (cfg.scrape_configs as unknown[]).map((j, i) => obj(j, `scrape_configs[${i}]`));
}

function targetsOf(job: Obj): string[] {
  return ((job.static_configs as unknown[] | undefined) ?? []).flatMap((s) => strings(obj(s, 'static_configs[]').targets, 'targets'));
}

/** The two set-ups: pull (Prometheus scrapes the agent) and collector (agent -> OTLP -> collector <- Prometheus). */
const PROMETHEUS_SETUPS = [
  { file: 'prometheus-pull.yml', job: 'otel-twamp-agent', target: 'localhost:9464', other: ':8889', header: /^# Prometheus config for the PULL set-up/ },
  { file: 'prometheus-collector.yml', job: 'otel-collector', target: 'localhost:8889', other: ':9464', header: /^# Prometheus config for the COLLECTOR set-up/ },
] as const;

for (const setup of PROMETHEUS_SETUPS) {
  describe(`collector-config/${setup.file}`, () => {
    const text = readFileSync(join(configDir, setup.file), 'utf8');
    const cfg = loadYaml(setup.file);
    const jobs = promJobs(cfg);

    it('starts with a comment header naming its set-up and the other file', () => {
      assert.match(text, setup.header);
      const other = PROMETHEUS_SETUPS.find((s) => s.file !== setup.file)!.file;
      assert.ok(text.split('\n').filter((l) => l.startsWith('#')).some((l) => l.includes(other)), `header points to ${other}`);
    });

    it(`has one job, ${setup.job}, scraping ${setup.target}/metrics every 10 s, and nothing of the other set-up`, () => {
      assert.deepEqual(jobs.map((j) => j.job_name), [setup.job]);
      const [job] = jobs;
      assert.deepEqual(targetsOf(job!), [setup.target]);
      assert.equal(job!.metrics_path ?? '/metrics', '/metrics');
      assert.equal(job!.scrape_interval ?? obj(cfg.global, 'global').scrape_interval, '10s');
      // A target of the other set-up would be a permanent up == 0 here.
      assert.ok(!jobs.flatMap(targetsOf).some((t) => t.endsWith(setup.other)), `no ${setup.other} target`);
    });

    it('loads alerts.yml, which sits beside it', () => {
      assert.deepEqual(cfg.rule_files, ['alerts.yml']);
    });

    it('passes promtool check config (when promtool is installed)', (t) => {
      const r = spawnSync('promtool', ['check', 'config', join(configDir, setup.file)], { encoding: 'utf8' });
      if (r.error) {
        assert.ok(!isCI(), `promtool not runnable under CI (.ci/run installs prometheus): ${r.error.message}`);
        t.skip('promtool not installed (apt-get install prometheus)');
        return;
      }
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    });
  });
}

describe('the collector set-up end to end (config files agree)', () => {
  it("Prometheus scrapes the port the collector's prometheus exporter listens on, keeping the exported job/instance labels", () => {
    const col = promJobs(loadYaml('prometheus-collector.yml'))[0]!;
    assert.equal(col.honor_labels, true);
    const endpoint = String(obj(obj(loadYaml('otel-collector.yaml').exporters, 'exporters').prometheus, 'exporters.prometheus').endpoint);
    const port = endpoint.split(':').pop();
    assert.ok(targetsOf(col).every((t) => t.endsWith(`:${port}`)), `targets ${targetsOf(col).join(', ')} vs exporter ${endpoint}`);
  });

  it('no prometheus.yml mixing both set-ups is shipped any more', () => {
    assert.ok(!existsSync(join(configDir, 'prometheus.yml')));
  });
});

describe('collector-config/demo-agent.yaml', () => {
  it('is the demo `npm start` runs: a loopback reflector and a g711 sender every 10 s, metrics on :9464', async () => {
    const cfg = await loadAgentConfig(join(repoRoot(), 'collector-config', 'demo-agent.yaml'));
    assert.deepEqual(cfg.prometheus, { host: '127.0.0.1', port: 9464, path: '/metrics' });
    const [r, s] = cfg.collectors;
    assert.equal(r?.type, 'twamp_reflector');
    assert.equal(s?.type, 'twamp_sender');
    if (r?.type !== 'twamp_reflector' || s?.type !== 'twamp_sender') return;
    assert.equal(r.listen, '127.0.0.1');
    assert.ok(r.port >= 1024, 'unprivileged port');
    assert.equal(s.reflector, '127.0.0.1');
    assert.equal(s.port, r.port);
    assert.equal(s.model.model, 'g711');
    assert.equal(s.interval, 10);
  });
});
