import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  ConfigError,
  loadAgentConfig,
  parseReflectorConfig,
  parseSenderConfig,
} from '../../src/config/index.js';
import { agentWith, configError, issueAt, parse, parseError } from './helpers.js';

/** A valid sender at lines 4–8 of the wrapped file; `extra` lines follow from line 9. */
function sender(extra = '', id = 'Sender A'): string {
  return agentWith(`
- id: ${id}
  type: twamp_sender
  reflector: 192.0.2.1
  n_packets: 100
  model: g711
${extra}`);
}

describe('ConfigError', () => {
  it('has source, path, collector id, line and column, and the documented message format', () => {
    const err = parseError(sender().replace('n_packets: 100', 'n_packets: abc'));
    assert.ok(err instanceof Error);
    assert.equal(err.name, 'ConfigError');
    assert.equal(err.source, 'agent.yaml');
    assert.deepEqual(err.path, ['collectors', 0, 'n_packets']);
    assert.equal(err.collectorId, 'Sender A');
    assert.equal(err.line, 7);
    assert.equal(err.column, 5);
    assert.equal(
      err.message,
      'agent.yaml:7:5: collectors[0] (id "Sender A"): n_packets: expected an integer between 1 and 10000000, got "abc"',
    );
    assert.equal(err.issues.length, 1);
  });

  it('inline text still gets line:col', () => {
    const err = configError(() => parse(sender().replace('n_packets: 100', 'n_packets: 0'), '<inline>'));
    assert.match(err.message, /^<inline>:7:5: collectors\[0\] \(id "Sender A"\): n_packets: expected an integer between 1 and 10000000, got 0$/);
  });
});

describe('error paths name the exact key', () => {
  it('unknown key, with a suggestion and its position', () => {
    const err = parseError(sender('  n_pakets: 5'));
    const issue = issueAt(err, ['collectors', 0, 'n_pakets']);
    assert.equal(issue.message, 'unknown key (did you mean "n_packets"?)');
    assert.deepEqual([issue.line, issue.column], [9, 5]);
  });

  it('unknown key without a close match lists the known keys', () => {
    const err = parseError(sender('  colour: blue'));
    assert.match(issueAt(err, ['collectors', 0, 'colour']).message, /^unknown key; known keys: .*\bn_packets\b/);
  });

  it('unknown keys in every section', () => {
    const err = parseError(`$version: "1.0"
agnet: {}
agent:
  hots: x
  defaults: {intervall: 5}
sender:
  lisen: ":9464"
  listen_tls: ":9443"
otlp:
  endpiont: http://x
collectors:
  - id: r
    type: twamp_reflector
    max_session: 3
    relabel:
      - source_label: [a]
`);
    assert.match(issueAt(err, ['agnet']).message, /did you mean "agent"/);
    assert.match(issueAt(err, ['agent', 'hots']).message, /did you mean "host"/);
    assert.match(issueAt(err, ['agent', 'defaults', 'intervall']).message, /did you mean "interval"/);
    assert.match(issueAt(err, ['sender', 'lisen']).message, /did you mean "listen"/);
    assert.match(issueAt(err, ['sender', 'listen_tls']).message, /not supported: TLS/);
    assert.match(issueAt(err, ['otlp', 'endpiont']).message, /did you mean "endpoint"/);
    assert.match(issueAt(err, ['collectors', 0, 'max_session']).message, /did you mean "max_sessions"/);
    assert.match(issueAt(err, ['collectors', 0, 'relabel', 0, 'source_label']).message, /did you mean "source_labels"/);
    assert.equal(issueAt(err, ['collectors', 0, 'relabel', 0, 'source_label']).line, 16);
    assert.equal(err.issues.length, 8);
  });

  it('wrong types', () => {
    const err = parseError(
      sender('  port: "862"\n  disabled: yes please\n  labels: [a]\n  control_timeout: 0\n  reflector_port: 70000'),
    );
    assert.equal(issueAt(err, ['collectors', 0, 'port']).message, 'expected an integer between 1 and 65535, got "862"');
    assert.equal(issueAt(err, ['collectors', 0, 'disabled']).message, 'expected true or false, got "yes please"');
    assert.equal(issueAt(err, ['collectors', 0, 'labels']).message, 'expected a map of label names to values, got a list');
    assert.match(issueAt(err, ['collectors', 0, 'control_timeout']).message, /^expected a number of seconds > 0/);
    assert.equal(issueAt(err, ['collectors', 0, 'reflector_port']).message, 'expected an integer between 0 and 65535, got 70000');
  });

  it('missing n_packets points at the collector', () => {
    const err = parseError(sender().replace(/\n\s*n_packets: 100/, ''));
    const issue = issueAt(err, ['collectors', 0, 'n_packets']);
    assert.equal(issue.message, 'required key is missing (expected an integer between 1 and 10000000)');
    assert.deepEqual([issue.line, issue.column], [4, 5]);
  });

  it('missing id and reflector, bad reflector syntax', () => {
    assert.match(issueAt(parseError(sender().replace('- id: Sender A\n    ', '- ')), ['collectors', 0, 'id']).message, /required/);
    for (const bad of ['"10.0.0.300"', '"-bad-.example"', '"[::1]"', '""', '"a..b"']) {
      const err = parseError(sender().replace('reflector: 192.0.2.1', `reflector: ${bad}`));
      assert.match(issueAt(err, ['collectors', 0, 'reflector']).message, /expected an IPv4\/IPv6 address or a host name/, bad);
    }
    for (const good of ['twamp.example.net', 'localhost', '::1', '10.1.2.3', 'r1.', 'xn--80ak6aa92e.com']) {
      parse(sender().replace('reflector: 192.0.2.1', `reflector: "${good}"`));
    }
  });

  it('bad dscp lists the valid forms', () => {
    for (const bad of ['foo', '64', 'af44', '-1', '1.5']) {
      const err = parseError(sender(`  dscp: ${bad}`));
      const issue = issueAt(err, ['collectors', 0, 'dscp']);
      assert.match(issue.message, /^expected a DSCP name \(be, cs0–cs7, af11–af43, ef, nc1, nc2, cp0–cp63, case-insensitive\) or an integer 0–63, got /, bad);
      assert.equal(issue.line, 9);
    }
  });

  it('cbr without size, cbr bandwidth too low', () => {
    const noSize = parseError(sender().replace('model: g711', 'model: cbr\n    bandwidth: 1000000'));
    assert.match(issueAt(noSize, ['collectors', 0, 'size']).message, /required by model cbr/);
    const tooLow = parseError(sender().replace('model: g711', 'model: cbr\n    bandwidth: 100\n    size: 100'));
    const issue = issueAt(tooLow, ['collectors', 0, 'bandwidth']);
    assert.match(issue.message, /^100 bit\/s is below one packet per second/);
    assert.equal(issue.line, 9);
  });

  it('duplicate ids name both positions', () => {
    const err = parseError(agentWith(`
- id: dup
  type: twamp_reflector
- id: other
  type: twamp_reflector
  port: 863
- id: dup
  type: twamp_reflector
  port: 864`));
    const issue = issueAt(err, ['collectors', 2, 'id']);
    assert.equal(issue.message, 'duplicate id "dup": already used by collectors[0] (line 4); ids must be unique');
    assert.equal(issue.line, 9);
    assert.match(err.message, /^agent\.yaml:9:5: collectors\[2\] \(id "dup"\): id: duplicate id "dup": already used by collectors\[0\]/);
  });

  it('invalid label names (collector and agent)', () => {
    const err = parseError(
      sender('  labels:\n    ok_name: 1\n    bad-name: x\n    __reserved: y\n    9lives: z', 'S').replace(
        'collectors:',
        'agent:\n  labels: {"a b": 1}\ncollectors:',
      ),
    );
    for (const name of ['bad-name', '__reserved', '9lives']) {
      const issue = issueAt(err, ['collectors', 0, 'labels', name]);
      assert.match(issue.message, new RegExp(`^invalid label name "${name}"`));
    }
    assert.match(issueAt(err, ['agent', 'labels', 'a b']).message, /^invalid label name "a b"/);
    assert.equal(issueAt(err, ['collectors', 0, 'labels', 'bad-name']).line, 13); // 2 agent lines inserted above
    assert.match(err.message, /collectors\[0\] \(id "S"\): labels\["bad-name"\]: invalid label name/);
  });

  it('bad relabel regex names relabel[i].regex', () => {
    const err = parseError(
      sender(`  relabel:
    - source_labels: [service]
      target_label: class
    - source_labels: [service]
      regex: "voip(("
      target_label: class`),
    );
    const issue = issueAt(err, ['collectors', 0, 'relabel', 1, 'regex']);
    assert.match(issue.message, /invalid regular expression/);
    assert.ok(!issue.message.startsWith('relabel['), 'location is not repeated in the message');
    assert.deepEqual([issue.line, issue.column], [13, 9]);
    assert.match(err.message, /^agent\.yaml:13:9: collectors\[0\] \(id "Sender A"\): relabel\[1\]\.regex: invalid regular expression/);
  });

  it('relabel rule errors found by compileRelabel (unknown action, missing target)', () => {
    const err = parseError(sender('  relabel:\n    - action: frobnicate\n      source_labels: [a]'));
    assert.match(issueAt(err, ['collectors', 0, 'relabel', 0, 'action']).message, /frobnicate/);
  });

  it('relabel_dialect gufo accepts the Gufo-only drop_if_equal action', () => {
    const rules = '  relabel:\n    - action: drop_if_equal\n      source_labels: [a, b]';
    parse(sender(`${rules}\n  relabel_dialect: gufo`));
    assert.match(issueAt(parseError(sender(`  relabel_dialect: prom\n${rules}`)), ['collectors', 0, 'relabel_dialect']).message, /one of "prometheus", "gufo"/);
  });

  it('bad $version / $type', () => {
    const num = parseError('$version: 1.0\ncollectors: []\n');
    assert.equal(issueAt(num, ['$version']).message, 'expected the string "1.0", got the number 1 (quote it: $version: "1.0")');
    assert.match(num.message, /^agent\.yaml:1:1: \$version: /);
    assert.equal(issueAt(parseError('$version: "2.0"\ncollectors: []\n'), ['$version']).message, 'expected "1.0", got "2.0"');
    assert.match(issueAt(parseError('collectors: []\n'), ['$version']).message, /^required key is missing/);
    assert.equal(issueAt(parseError('$version: "1.0"\n$type: static\ncollectors: []\n'), ['$type']).message, 'expected "zeroconf", got "static"');
  });

  it('bad listen', () => {
    for (const bad of ['"9464"', '"0.0.0.0:0"', '"0.0.0.0:65536"', '"::1:9464"', '"[1.2.3.4]:80"', '"bad_host:80"', '9464']) {
      const err = parseError(`$version: "1.0"\nsender:\n  listen: ${bad}\ncollectors: []\n`);
      const issue = issueAt(err, ['sender', 'listen']);
      assert.match(issue.message, /^expected "host:port" \(IPv6 as "\[::1\]:9464", port 1–65535\), got /, bad);
      assert.deepEqual([issue.line, issue.column], [3, 3]);
    }
    const listen = parseError('$version: "1.0"\nsender:\n  type: pushgateway\n  mode: push\n  path: metrics\ncollectors: []\n');
    assert.match(issueAt(listen, ['sender', 'type']).message, /^expected "openmetrics" \(the only supported sender type\)/);
    assert.match(issueAt(listen, ['sender', 'mode']).message, /^expected "pull"/);
    assert.match(issueAt(listen, ['sender', 'path']).message, /^expected a URL path starting with "\/"/);
  });

  it('bad reflector listen / port range / otlp values', () => {
    const err = parseError(
      `$version: "1.0"
otlp:
  endpoint: "ftp://x"
  protocol: grpc
  temporality: lowmemory
collectors:
  - id: r
    type: twamp_reflector
    listen: localhost
    port: -1
    max_sessions: 0
    test_port_range: "3000-2000"
`,
    );
    assert.match(issueAt(err, ['otlp', 'endpoint']).message, /^expected an http\(s\) URL, got "ftp:\/\/x"/);
    assert.match(issueAt(err, ['otlp', 'protocol']).message, /one of "http\/protobuf", "http\/json", got "grpc"/);
    assert.match(issueAt(err, ['otlp', 'temporality']).message, /one of "cumulative", "delta"/);
    assert.match(issueAt(err, ['collectors', 0, 'listen']).message, /^expected an IPv4\/IPv6 address/);
    assert.match(issueAt(err, ['collectors', 0, 'port']).message, /between 0 and 65535, got -1/);
    assert.match(issueAt(err, ['collectors', 0, 'max_sessions']).message, /between 1 and 100000, got 0/);
    assert.match(issueAt(err, ['collectors', 0, 'test_port_range']).message, /^expected "lo-hi" with 1 ≤ lo ≤ hi ≤ 65535, got "3000-2000"/);
  });

  it('unknown collector type lists the supported ones', () => {
    const err = parseError(agentWith('- id: x\n  type: twamp_light'));
    assert.equal(
      issueAt(err, ['collectors', 0, 'type']).message,
      'unsupported collector type "twamp_light"; supported types: "twamp_sender", "twamp_reflector"',
    );
    assert.match(issueAt(parseError(agentWith('- id: x')), ['collectors', 0, 'type']).message, /^required key is missing \(expected one of "twamp_sender", "twamp_reflector"\)/);
    assert.match(issueAt(parseError(agentWith('- just a string')), ['collectors', 0]).message, /^expected a collector/);
  });

  it('collectors: required, a list', () => {
    assert.match(issueAt(parseError('$version: "1.0"\n'), ['collectors']).message, /^required key is missing/);
    assert.match(issueAt(parseError('$version: "1.0"\ncollectors: {}\n'), ['collectors']).message, /got a map$/);
    assert.match(parseError('').message, /^agent\.yaml: expected a map with "\$version" and "collectors", got null$/);
  });
});

describe('YAML-level errors', () => {
  it('syntax errors carry line:col', () => {
    const err = parseError('$version: "1.0"\ncollectors: [\n  - id: x\n');
    assert.ok(err.line !== undefined && err.column !== undefined);
    assert.match(err.message, /^agent\.yaml:\d+:\d+: YAML syntax error: /);
  });

  it('duplicate keys name the key, both lines, and the path', () => {
    const err = parseError(sender('  model: g729'));
    const issue = issueAt(err, ['collectors', 0, 'model']);
    assert.equal(issue.message, 'duplicate key (first defined on line 8)');
    assert.deepEqual([issue.line, issue.column], [9, 5]);
    assert.match(err.message, /^agent\.yaml:9:5: collectors\[0\] \(id "Sender A"\): model: duplicate key/);
  });

  it('duplicate keys in JSON', () => {
    const err = parseError('{"$version": "1.0", "collectors": [], "collectors": []}', 'agent.json');
    assert.deepEqual(err.path, ['collectors']);
    assert.deepEqual([err.line, err.column], [1, 39]);
  });
});

describe('multiple issues are reported together', () => {
  it('across sections and collectors, in document order, one per line', () => {
    const err = parseError(`$version: "1.0"
agent:
  defaults: {interval: 0}
collectors:
  - id: a
    type: twamp_sender
    reflector: 192.0.2.1
    n_packets: -3
    model: cbr
    bandwidth: 100
    size: 100
    dscp: purple
  - id: b
    type: twamp_reflector
    refwait: forever
  - id: a
    type: twamp_sendr
`);
    assert.deepEqual(
      err.issues.map((i) => [i.path.join('.'), i.line]),
      [
        ['agent.defaults.interval', 3],
        ['collectors.0.n_packets', 8],
        ['collectors.0.bandwidth', 10],
        ['collectors.0.dscp', 12],
        ['collectors.1.refwait', 15],
        ['collectors.2.id', 16],
        ['collectors.2.type', 17],
      ],
    );
    const lines = err.message.split('\n');
    assert.equal(lines.length, 7);
    assert.ok(lines.every((l) => l.startsWith('agent.yaml:')));
    assert.match(lines[4]!, /^agent\.yaml:15:5: collectors\[1\] \(id "b"\): refwait: expected a number of seconds > 0/);
    // The first issue's location is also on the error itself.
    assert.deepEqual([err.line, err.column, err.path], [3, 14, ['agent', 'defaults', 'interval']]);
    assert.equal(err.collectorId, undefined);
  });
});

describe('loadAgentConfig', () => {
  it('reads a file and names it in errors', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'otel-twamp-config-'));
    try {
      const good = path.join(dir, 'agent.yaml');
      await writeFile(good, '$version: "1.0"\ncollectors:\n  - id: r\n    type: twamp_reflector\n');
      assert.equal((await loadAgentConfig(good)).collectors[0]!.id, 'r');

      const bad = path.join(dir, 'bad.yaml');
      await writeFile(bad, '$version: "1.0"\ncollectors:\n  - id: r\n    type: twamp_reflector\n    prot: 1\n');
      await assert.rejects(loadAgentConfig(bad), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.source, bad);
        assert.equal(err.message, `${bad}:5:5: collectors[0] (id "r"): prot: unknown key (did you mean "port"?)`);
        return true;
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('missing file → ConfigError naming the path', async () => {
    const missing = path.join(os.tmpdir(), 'otel-twamp-no-such-dir', 'agent.yaml');
    await assert.rejects(loadAgentConfig(missing), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.source, missing);
      assert.equal(err.message, `${missing}: cannot read config file: no such file`);
      return true;
    });
  });
});

describe('parseSenderConfig / parseReflectorConfig errors', () => {
  it('same validation and messages, without line numbers', () => {
    const err = configError(() => parseSenderConfig({ id: 'x', reflector: 'h', n_packets: 'abc', model: 'cbr', bandwidth: 1e6, nPackets: 5 }));
    assert.equal(
      err.message,
      [
        '<inline>: collector (id "x"): n_packets: expected an integer between 1 and 10000000, got "abc"',
        '<inline>: collector (id "x"): nPackets: unknown key (did you mean "n_packets"?)',
        // The model check runs as soon as the model keys themselves are clean.
        '<inline>: collector (id "x"): size: required by model cbr (IP packet size in octets)',
      ].join('\n'),
    );
    assert.equal(err.line, undefined);
    const cbr = configError(() => parseSenderConfig({ id: 'x', reflector: 'h', n_packets: 1, model: 'cbr', bandwidth: 1e6 }, {}, 'api'));
    assert.equal(cbr.message, 'api: collector (id "x"): size: required by model cbr (IP packet size in octets)');
  });

  it('type, if given, must match', () => {
    const err = configError(() => parseReflectorConfig({ id: 'y', type: 'twamp_sender' }));
    assert.equal(err.message, '<inline>: collector (id "y"): type: expected "twamp_reflector", got "twamp_sender"');
  });
});
