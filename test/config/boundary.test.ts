// The boundary between config and producers (src/options.ts): the config
// layer parses, fills defaults, parses networks and compiles relabel rules
// once; the producers take the result as it is and parse nothing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseAgentConfig, parseReflectorConfig, parseSenderConfig } from '../../src/config/index.js';
import { TwampReflector } from '../../src/reflector.js';
import { silentLogger } from '../../src/util/log.js';
import type { CompiledRelabel, Labels } from '../../src/otel/relabel.js';
import { testMeter } from '../helpers/metrics.js';

describe('config → producer settings', () => {
  it('allow/deny are parsed once, at load, into typed networks (a single address is a /32 or /128)', () => {
    const r = parseReflectorConfig({ id: 'r', allow: ['10.0.0.0/8', '2001:db8::1'], deny: '10.6.0.0/16' });
    assert.deepEqual(r.allow, [{ address: '10.0.0.0', prefix: 8, family: 4 }, { address: '2001:db8::1', prefix: 128, family: 6 }]);
    assert.deepEqual(r.deny, [{ address: '10.6.0.0', prefix: 16, family: 4 }]);
  });

  it('a bad network is refused at load wherever it is (reflector allow, probe.allow, a module\'s allow), naming the entry', () => {
    assert.throws(() => parseReflectorConfig({ id: 'r', allow: ['10.0.0.0/8', '10.0.0.0/40'] }),
      (e: unknown) => e instanceof ConfigError && /allow\[1\]: expected an IPv4\/IPv6 network in CIDR notation, got "10\.0\.0\.0\/40"/.test(e.message));
    const agent = (probe: string) => `$version: "1.0"\ncollectors: []\n${probe}\nmodules: { m: { model: g711, n_packets: 1, allow: [192.0.2.0/24, nonsense] } }\n`;
    assert.throws(() => parseAgentConfig(agent('probe: { allow: [192.0.2.0/33] }')), (e: unknown) =>
      e instanceof ConfigError && /probe\.allow\[0\]: expected an IPv4\/IPv6 network/.test(e.message) &&
      /modules\.m\.allow\[1\]: expected an IPv4\/IPv6 network/.test(e.message));
  });

  it('every reflector default is filled at load: per-client limits and the Light settings too', () => {
    const r = parseReflectorConfig({ id: 'r', light_port: 0 });
    assert.equal(r.control, true);
    assert.deepEqual(r.modes, ['open']);
    assert.equal(r.kdfCount, 2048);
    assert.equal(r.maxConnectionsPerClient, 8);
    assert.equal(r.allowThirdPartySender, false);
    assert.deepEqual(r.allowReplyPorts, []);
    assert.equal(r.lightRateLimit, 1000);
    assert.equal(r.lightFormat, 'auto');
    assert.equal(r.relabeler, undefined, 'no rules, no engine');
  });

  it('relabel rules come compiled; the producer applies that engine and compiles nothing of its own', async () => {
    const rules = parseSenderConfig({
      id: 's', reflector: '127.0.0.1', n_packets: 1, model: 'g711',
      relabel: [{ target_label: 'site', replacement: 'ams' }],
    });
    assert.deepEqual(rules.relabeler?.apply('twamp_rx_packets', { a: '1' }), { name: 'twamp_rx_packets', labels: { a: '1', site: 'ams' } });

    // A reflector whose settings carry an engine but no rules: the series show the engine ran.
    const seen: string[] = [];
    const stub: CompiledRelabel = {
      rules: [], isEmpty: false,
      apply: (name: string, labels: Labels) => { seen.push(name); return { name, labels: { ...labels, via: 'load-time engine' } }; },
    };
    const meter = testMeter();
    const reflector = new TwampReflector({ ...parseReflectorConfig({ id: 'r', listen: '127.0.0.1', port: 0 }), relabeler: stub },
      { meterProvider: meter.provider, logger: silentLogger });
    try {
      await reflector.start();
      const snap = await meter.collect();
      assert.ok(seen.length > 0, 'the engine of the settings ran');
      assert.ok(snap.points('twamp_reflector_session_attempts', { via: 'load-time engine' }).length > 0, snap.names().join(', '));
    } finally {
      await reflector.stop();
      await meter.shutdown();
    }
  });
});
