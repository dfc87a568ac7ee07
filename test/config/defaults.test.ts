import assert from 'node:assert/strict';
import os from 'node:os';
import { describe, it } from 'node:test';
import {
  DEFAULT_OTLP_ENDPOINT,
  otlpEndpointFromEnv,
  parseAgentConfig,
  parseReflectorConfig,
  parseSenderConfig,
} from '../../src/config/index.js';
import type { ReflectorConfig, SenderConfig } from '../../src/config/index.js';
import { agentWith, parse, SENDER } from './helpers.js';


describe('agent defaults', () => {
  it('minimal file: version, hostname, interval 60, legacy naming, no endpoints', () => {
    const cfg = parse('$version: "1.0"\ncollectors: []\n');
    assert.deepEqual(cfg, {
      version: '1.0',
      host: os.hostname(),
      labels: {},
      defaultInterval: 60,
      maxConcurrentSessions: 100,
      maxSessionsPerReflector: 8,
      naming: 'legacy',
      collectors: [],
    });
  });

  it('agent section, $type zeroconf, naming otel', () => {
    const cfg = parse(`$version: "1.0"
$type: zeroconf
agent:
  host: probe-1
  labels: {region: eu, rack: 7, edge: true}
  defaults:
    interval: 30
naming: otel
collectors: []
`);
    assert.equal(cfg.host, 'probe-1');
    assert.deepEqual(cfg.labels, { region: 'eu', rack: '7', edge: 'true' });
    assert.equal(cfg.defaultInterval, 30);
    assert.equal(cfg.naming, 'otel');
  });

  it('collectors inherit agent.defaults.interval unless they set interval', () => {
    const cfg = parse(
      agentWith(`${SENDER}\n- id: r\n  type: twamp_reflector\n  interval: 5`, 'agent:\n  defaults: {interval: 20}\n'),
    );
    assert.equal(cfg.collectors[0]!.interval, 20);
    assert.equal(cfg.collectors[1]!.interval, 5);
  });

  it('empty (null) optional sections and maps count as absent', () => {
    const cfg = parse(`$version: "1.0"
agent:
  labels:
collectors:
  - id: s
    type: twamp_sender
    reflector: 192.0.2.1
    n_packets: 10
    model: g711
    labels:
    relabel:
`);
    assert.deepEqual(cfg.labels, {});
    assert.deepEqual(cfg.collectors[0]!.labels, {});
    assert.deepEqual(cfg.collectors[0]!.relabel, []);
  });

  it('JSON text is accepted', () => {
    const cfg = parse(
      JSON.stringify({
        $version: '1.0',
        collectors: [{ id: 's', type: 'twamp_sender', reflector: 'twamp.example.net', n_packets: 5, model: 'g729' }],
      }),
      'agent.json',
    );
    assert.equal((cfg.collectors[0] as SenderConfig).reflector, 'twamp.example.net');
  });
});

describe('sender (Prometheus endpoint) section', () => {
  const withSender = (s: string) => parse(`$version: "1.0"\nsender:\n${s}\ncollectors: []\n`);

  it('listen → prometheus with default path', () => {
    assert.deepEqual(withSender('  type: openmetrics\n  mode: pull\n  listen: "0.0.0.0:3000"').prometheus, {
      host: '0.0.0.0',
      port: 3000,
      path: '/metrics',
    });
  });

  it('IPv6, host names, ":port" and a custom path', () => {
    assert.deepEqual(withSender('  listen: "[::1]:9464"\n  path: /m').prometheus, { host: '::1', port: 9464, path: '/m' });
    assert.deepEqual(withSender('  listen: "localhost:9464"').prometheus, { host: 'localhost', port: 9464, path: '/metrics' });
    assert.deepEqual(withSender('  listen: ":9464"').prometheus, { host: '0.0.0.0', port: 9464, path: '/metrics' });
  });

  it('no listen → no Prometheus endpoint', () => {
    assert.equal(withSender('  type: openmetrics').prometheus, undefined);
  });
});

describe('otlp section', () => {
  const withOtlp = (s: string, env: NodeJS.ProcessEnv = {}) =>
    parseAgentConfig(`$version: "1.0"\notlp:${s}\ncollectors: []\n`, '<inline>', env);

  it('absent → undefined; {} → all defaults', () => {
    assert.equal(parse('$version: "1.0"\ncollectors: []\n').otlp, undefined);
    assert.deepEqual(withOtlp(' {}').otlp, {
      endpoint: DEFAULT_OTLP_ENDPOINT,
      protocol: 'http/protobuf',
      headers: {},
      intervalMs: 60_000,
      timeoutMs: 10_000,
      temporality: 'cumulative',
    });
  });

  it('explicit values', () => {
    const o = withOtlp(`
  endpoint: https://otel.example.net:4318/v1/metrics
  protocol: http/json
  headers: {authorization: Bearer x, x-n: 1}
  interval: 15
  timeout: 2.5
  temporality: delta`).otlp;
    assert.deepEqual(o, {
      endpoint: 'https://otel.example.net:4318/v1/metrics',
      protocol: 'http/json',
      headers: { authorization: 'Bearer x', 'x-n': '1' },
      intervalMs: 15_000,
      timeoutMs: 2500,
      temporality: 'delta',
    });
  });

  it('endpoint defaults from the environment', () => {
    assert.equal(withOtlp(' {}', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://col:4318/' }).otlp!.endpoint, 'http://col:4318/v1/metrics');
    assert.equal(
      withOtlp(' {}', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://col:4318', OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://m:1/x' })
        .otlp!.endpoint,
      'http://m:1/x',
    );
    assert.equal(otlpEndpointFromEnv({}), 'http://localhost:4318/v1/metrics');
  });
});

describe('collector defaults', () => {
  it('sender: every default filled', () => {
    const s = parse(agentWith(SENDER)).collectors[0] as SenderConfig;
    assert.deepEqual(s, {
      type: 'twamp_sender',
      id: 's',
      interval: 60,
      disabled: false,
      labels: {},
      relabel: [],
      relabelDialect: 'prometheus',
      relabeler: undefined,
      reflector: '192.0.2.1',
      port: 862,
      reflectorPort: 0,
      dscp: 0,
      nPackets: 10,
      model: { model: 'g711' },
      controlTimeoutMs: 5000,
      replyTimeoutMs: 3000,
      mos: 'g107',
      modes: ['open'],
      control: true,
      format: 'twamp',
      startOffsetMs: 0,
    });
  });

  it('sender: every key set', () => {
    const s = parse(
      agentWith(`
- id: full
  type: twamp_sender
  interval: 7
  disabled: true
  labels: {service: voip, n: 3}
  relabel:
    - source_labels: [service]
      regex: voip
      target_label: class
      replacement: 9
  relabel_dialect: gufo
  reflector: "2001:db8::1"
  port: 1862
  reflector_port: 9447
  dscp: 34
  n_packets: 10000000
  model: imix
  bandwidth: 12252000
  control_timeout: 1.5
  reply_timeout: 0.25`),
    ).collectors[0] as SenderConfig;
    // The rules come compiled (once, at load): the producer applies this engine as it is.
    const { relabeler, ...rest } = s;
    assert.deepEqual(relabeler?.apply('twamp_rx_packets', { service: 'voip' }), { name: 'twamp_rx_packets', labels: { service: 'voip', class: '9' } });
    assert.deepEqual(rest, {
      type: 'twamp_sender',
      id: 'full',
      interval: 7,
      disabled: true,
      labels: { service: 'voip', n: '3' },
      relabel: [{ source_labels: ['service'], regex: 'voip', target_label: 'class', replacement: '9' }],
      relabelDialect: 'gufo',
      reflector: '2001:db8::1',
      port: 1862,
      reflectorPort: 9447,
      dscp: 34,
      nPackets: 10_000_000,
      model: { model: 'imix', bandwidth: 12_252_000 },
      controlTimeoutMs: 1500,
      replyTimeoutMs: 250,
      mos: 'g107',
      modes: ['open'],
      control: true,
      format: 'twamp',
      startOffsetMs: 0,
    });
  });

  it('dscp: names (any case), cpN, decimal strings and integers', () => {
    const cases: [string, number][] = [['be', 0], ['EF', 46], ['af41', 34], ['Cs6', 48], ['nc2', 56], ['cp5', 5], ['"63"', 63], ['0', 0], ['46', 46]];
    for (const [yaml, code] of cases) {
      const s = parse(agentWith(`${SENDER}\n  dscp: ${yaml}`)).collectors[0] as SenderConfig;
      assert.equal(s.dscp, code, yaml);
    }
  });

  it('disabled collectors are included, flagged', () => {
    const cfg = parse(agentWith(`${SENDER}\n  disabled: true\n- id: r\n  type: twamp_reflector`));
    assert.deepEqual(
      cfg.collectors.map((c) => [c.id, c.disabled]),
      [['s', true], ['r', false]],
    );
  });

  it('reflector: defaults and every key set', () => {
    const d = parse(agentWith('- id: r\n  type: twamp_reflector')).collectors[0] as ReflectorConfig;
    assert.equal(d.listen, '0.0.0.0');
    assert.equal(d.port, 862);
    assert.equal(d.maxSessions, 1000);
    assert.equal(d.refwaitMs, 900_000);
    assert.equal(d.servwaitMs, 900_000);
    assert.equal(d.testPortRange, undefined);
    assert.ok(!('testPortRange' in d));

    const r = parse(
      agentWith(`
- id: r
  type: twamp_reflector
  listen: "::"
  port: 0
  max_sessions: 5
  refwait: 30
  servwait: 60
  test_port_range: "20000-20999"`),
    ).collectors[0] as ReflectorConfig;
    assert.equal(r.listen, '::');
    assert.equal(r.port, 0);
    assert.equal(r.maxSessions, 5);
    assert.equal(r.refwaitMs, 30_000);
    assert.equal(r.servwaitMs, 60_000);
    assert.deepEqual(r.testPortRange, [20000, 20999]);
  });
});

describe('parseSenderConfig / parseReflectorConfig (library use)', () => {
  it('take a Gufo-style object without type', () => {
    const s = parseSenderConfig({ id: 'x', reflector: '::1', n_packets: 5, model: 'cbr', bandwidth: 80_000, size: 100 });
    assert.equal(s.type, 'twamp_sender');
    assert.equal(s.interval, 60);
    assert.deepEqual(s.model, { model: 'cbr', bandwidth: 80_000, size: 100 });
    const r = parseReflectorConfig({ id: 'y', type: 'twamp_reflector', port: 0 }, { interval: 10 });
    assert.equal(r.type, 'twamp_reflector');
    assert.equal(r.port, 0);
    assert.equal(r.interval, 10);
  });
});
