// Every YAML example of Gufo Agent's collector docs (twamp_sender,
// twamp_reflector, and its agent-config example), wrapped in an agent file, parses.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ReflectorConfig, SenderConfig } from '../../src/config/index.js';
import { agentWith, issueAt, parse, parseError } from './helpers.js';

// twamp_sender.md, verbatim. Note they omit `reflector`, which Gufo's config
// struct requires as well (a String without default).
const SENDER_DOC_SNIPPETS: Record<string, string> = {
  basic: `
  - id: Twamp Sender
    type: twamp_sender
    n_packets: 100
    model: g711`,
  g711: `
  - id: Twamp Sender
    type: twamp_sender
    interval: 10
    n_packets: 100
    model: g711`,
  g729: `
  - id: Twamp Sender
    type: twamp_sender
    interval: 10
    n_packets: 100
    model: g729`,
  cbr: `
  - id: Twamp Sender
    type: twamp_sender
    interval: 10
    n_packets: 100
    model: cbr
    bandwidth: 10000000
    size: 256`,
  imix: `
  - id: Twamp Sender
    type: twamp_sender
    interval: 10
    n_packets: 100
    model: imix
    bandwidth: 10000000`,
};

const EXPECTED_MODEL: Record<string, SenderConfig['model']> = {
  basic: { model: 'g711' },
  g711: { model: 'g711' },
  g729: { model: 'g729' },
  cbr: { model: 'cbr', bandwidth: 10_000_000, size: 256 },
  imix: { model: 'imix', bandwidth: 10_000_000 },
};

function withReflector(snippet: string, reflector = '192.0.2.1'): string {
  return snippet.replace('type: twamp_sender', `type: twamp_sender\n    reflector: ${reflector}`);
}

describe('twamp_sender.md examples', () => {
  for (const [name, snippet] of Object.entries(SENDER_DOC_SNIPPETS)) {
    it(`${name}: verbatim, reports only the missing reflector`, () => {
      const err = parseError(agentWith(snippet));
      assert.equal(err.issues.length, 1, err.message);
      const issue = issueAt(err, ['collectors', 0, 'reflector']);
      assert.match(issue.message, /required key is missing/);
      assert.equal(issue.collectorId, 'Twamp Sender');
      assert.equal(issue.line, 4); // the collector's map starts on line 4 of the wrapped file
    });

    it(`${name}: parses with a reflector`, () => {
      const cfg = parse(agentWith(withReflector(snippet)));
      assert.equal(cfg.collectors.length, 1);
      const s = cfg.collectors[0] as SenderConfig;
      assert.equal(s.type, 'twamp_sender');
      assert.equal(s.id, 'Twamp Sender');
      assert.equal(s.reflector, '192.0.2.1');
      assert.equal(s.nPackets, 100);
      assert.equal(s.interval, name === 'basic' ? 60 : 10);
      assert.deepEqual(s.model, EXPECTED_MODEL[name]);
    });
  }

  it('Cisco IOS: reflector_port: 9447', () => {
    const cfg = parse(
      agentWith(withReflector(SENDER_DOC_SNIPPETS.g711!, '198.51.100.7') + '\n    reflector_port: 9447'),
    );
    const s = cfg.collectors[0] as SenderConfig;
    assert.equal(s.reflectorPort, 9447);
    assert.equal(s.port, 862);
  });

  it('"Configuring Reflectors / Gufo Agent": listen: "" means all interfaces', () => {
    const cfg = parse(
      agentWith(`
    - id: TWAMP Reflector
      type: twamp_reflector
      interval: 10
      listen: ""
      port: 862`),
    );
    const r = cfg.collectors[0] as ReflectorConfig;
    assert.equal(r.type, 'twamp_reflector');
    assert.equal(r.listen, '0.0.0.0');
    assert.equal(r.port, 862);
    assert.equal(r.interval, 10);
  });
});

describe('twamp_reflector.md examples', () => {
  it('reflector config example', () => {
    const cfg = parse(
      agentWith(`
- id: TWAMP Reflector
  type: twamp_reflector
  listen: "0.0.0.0"
  port: 862`),
    );
    const r = cfg.collectors[0] as ReflectorConfig;
    assert.deepEqual(r, {
      type: 'twamp_reflector',
      id: 'TWAMP Reflector',
      interval: 60,
      disabled: false,
      labels: {},
      relabel: [],
      relabelDialect: 'prometheus',
      relabeler: undefined,
      listen: '0.0.0.0',
      port: 862,
      control: true,
      maxSessions: 1000,
      refwaitMs: 900_000,
      servwaitMs: 900_000,
      modes: ['open'],
      kdfCount: 2048,
      maxConnections: 256,
      maxSessionsPerConnection: 16,
      maxSessionDurationMs: 3_600_000,
      maxPpsPerSession: 10_000,
      maxPps: 100_000,
      maxPadding: 9000,
      allow: [],
      deny: [],
      controlTimeoutMs: 30_000,
      maxConnectionsPerClient: 8,
      maxSessionsPerClient: 64,
      clientIpv6Prefix: 64,
      kdfRatePerClient: 10,
      allowThirdPartySender: false,
      allowReplyPorts: [],
      lightStateful: false,
      lightRateLimit: 1000,
      lightMaxPps: 10_000,
      lightMaxOctetsPerSource: 1_250_000,
      lightMaxOctets: 12_500_000,
      lightSymmetricOnly: false,
      lightFormat: 'auto',
      lightCosAllow: [],
    });
  });

  it('"Configuring Senders / Gufo Agent" (a whole collectors: block)', () => {
    const cfg = parse(`$version: "1.0"
$type: zeroconf
collectors:
    - id: TWAMP Session
      type: twamp_sender
      interval: 10
      reflector: 127.0.0.1
      port: 862
      n_packets: 200
      model: g711
      dscp: ef
      labels:
        service: voip
`);
    const s = cfg.collectors[0] as SenderConfig;
    assert.equal(s.reflector, '127.0.0.1');
    assert.equal(s.port, 862);
    assert.equal(s.nPackets, 200);
    assert.equal(s.dscp, 46);
    assert.deepEqual(s.labels, { service: 'voip' });
    assert.equal(s.interval, 10);
  });
});

describe("Gufo Agent's agent-config example", () => {
  it('parses', () => {
    const cfg = parse(
      agentWith(`
- id: TWAMP Session
  type: twamp_sender
  interval: 10
  reflector: 127.0.0.1
  n_packets: 200
  model: g711
  dscp: ef
  labels: {service: voip}`),
    );
    assert.deepEqual(cfg.collectors[0], {
      type: 'twamp_sender',
      id: 'TWAMP Session',
      interval: 10,
      disabled: false,
      labels: { service: 'voip' },
      relabel: [],
      relabelDialect: 'prometheus',
      relabeler: undefined,
      reflector: '127.0.0.1',
      port: 862,
      reflectorPort: 0,
      dscp: 46,
      nPackets: 200,
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
});
