// The metric tables of docs/metrics.md and the key tables of
// docs/configuration.md (README "Documentation") are checked against the
// one metric table in src/otel/instruments.ts (which keeps Gufo Agent's
// reference names, test/fixtures/reference/gufo-agent.json) and the config
// schema; the library entry
// point must not load the OTel SDK (the plugin depends on @opentelemetry/api only).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { repoRoot } from './helpers/peers.js';
import { SENDER_MEASUREMENTS, SENDER_EXTRA, SENDER_HEALTH, REFLECTOR_METRICS, AGENT_METRICS, type MetricSpec } from '../src/otel/instruments.js';
import { ATTRIBUTES } from '../src/otel/attributes.js';
import { SENDER_KEYS, REFLECTOR_KEYS, COMMON_KEYS } from '../src/config/schema.js';
import { parseReflectorConfig, parseSenderConfig } from '../src/config/load.js';

// Gufo Agent's reference documentation of the twamp_sender and twamp_reflector
// collectors, as data: the names, types and defaults this plugin stays
// compatible with (test/fixtures/reference/gufo-agent.json).
interface RefOption { name: string; type: string; default?: string | number; description: string }
interface RefMetric { name: string; type: string; description: string }
const GUFO = JSON.parse(readFileSync(join(repoRoot(), 'test', 'fixtures', 'reference', 'gufo-agent.json'), 'utf8')) as {
  twamp_sender: { common_options: RefOption[]; options: RefOption[]; models: Record<string, { options: string[] }>; metrics: RefMetric[] };
  twamp_reflector: { metric_prefix: string; options: RefOption[]; metrics: RefMetric[] };
};

function table(specs: readonly MetricSpec[]): string {
  const rows = specs.map((s) => `| \`${s.legacy.name}\` | ${s.kind} | ${s.legacy.unit} | ${s.description} |`);
  return ['| Metric | Type | Unit | Description |', '|---|---|---|---|', ...rows].join('\n');
}

function section(readme: string, name: string): string {
  const m = new RegExp(`<!-- metrics-table:${name}[^>]*-->\\n([\\s\\S]*?)\\n<!-- /metrics-table:${name} -->`).exec(readme);
  assert.ok(m, `docs/metrics.md has a metrics-table:${name} section`);
  return m[1]!;
}

describe('docs/metrics.md and docs/configuration.md', () => {
  const metricsDoc = readFileSync(join(repoRoot(), 'docs', 'metrics.md'), 'utf8');
  const configuration = readFileSync(join(repoRoot(), 'docs', 'configuration.md'), 'utf8');

  it('sender metric table matches the code', () => {
    assert.equal(section(metricsDoc, 'sender'), table([...SENDER_MEASUREMENTS, ...SENDER_EXTRA, ...SENDER_HEALTH]));
  });

  it('reflector metric table matches the code', () => {
    assert.equal(section(metricsDoc, 'reflector'), table(REFLECTOR_METRICS));
  });

  it('agent metric table matches the code', () => {
    assert.equal(section(metricsDoc, 'agent'), table(AGENT_METRICS));
  });

  it('attribute table matches the code', () => {
    const m = /<!-- attributes-table[^>]*-->\n([\s\S]*?)\n<!-- \/attributes-table -->/.exec(metricsDoc);
    assert.ok(m, 'docs/metrics.md has an attributes-table section');
    const cell = (v: string | undefined) => (v === undefined ? '—' : `\`${v}\``);
    const rows = Object.entries(ATTRIBUTES).map(([role, a]) => `| ${role} | ${cell(a.legacy)} | ${cell(a.otel)} | ${a.description} |`);
    assert.equal(m[1], ['| Role | `legacy` label | `otel` attribute | Description |', '|---|---|---|---|', ...rows].join('\n'));
  });

  it('the configuration reference documents exactly the keys the schema accepts', () => {
    const keysOf = (heading: string): string[] => {
      const start = configuration.indexOf(`\n## ${heading}\n`);
      assert.ok(start >= 0, `docs/configuration.md has a "${heading}" section`);
      const end = configuration.indexOf('\n## ', start + 4);
      const body = configuration.slice(start, end < 0 ? undefined : end);
      // The first table of the section is the key reference.
      const lines = body.split('\n');
      const first = lines.findIndex((l) => l.startsWith('| Key |'));
      assert.ok(first >= 0, `"${heading}" has a key table`);
      const keys: string[] = [];
      for (const line of lines.slice(first + 2)) {
        if (!line.startsWith('|')) break;
        const m = /^\| (`[a-z_$0-9]+`(?: \/ `[a-z_$0-9]+`)*) \|/.exec(line);
        assert.ok(m, `a key row: ${line}`);
        keys.push(...[...m[1]!.matchAll(/`([^`]+)`/g)].map((k) => k[1]!));
      }
      return keys.sort();
    };
    const common = keysOf('Common collector keys');
    assert.deepEqual(common, [...COMMON_KEYS, 'type'].sort());
    assert.deepEqual(keysOf('`twamp_sender`'), SENDER_KEYS.filter((k) => !COMMON_KEYS.includes(k) && k !== 'type').sort());
    assert.deepEqual(keysOf('`twamp_reflector`'), REFLECTOR_KEYS.filter((k) => !COMMON_KEYS.includes(k) && k !== 'type').sort());
  });

  it('the 26 reference sender metrics keep their documented names, types and descriptions', () => {
    const documented = GUFO.twamp_sender.metrics;
    assert.equal(documented.length, 26);
    assert.deepEqual(
      SENDER_MEASUREMENTS.map((s) => [s.legacy.name, s.kind, s.description]),
      documented.map((m) => [m.name, m.type.toLowerCase(), m.description]),
    );
  });

  it('the 4 reference reflector metrics keep their documented names, types and descriptions', () => {
    const documented = GUFO.twamp_reflector.metrics;
    assert.equal(documented.length, 4);
    assert.deepEqual(
      REFLECTOR_METRICS.slice(0, documented.length).map((s) => [s.legacy.name, s.kind, s.description]),
      documented.map((m) => [`${GUFO.twamp_reflector.metric_prefix}${m.name}`, m.type.toLowerCase(), m.description]),
    );
  });

  it('every reference configuration option is accepted, with its documented default', () => {
    const names = (opts: readonly RefOption[]) => opts.map((o) => o.name);
    const missing = (opts: readonly RefOption[], keys: readonly string[]) => names(opts).filter((n) => !keys.includes(n));
    assert.deepEqual(missing(GUFO.twamp_sender.common_options, [...COMMON_KEYS, 'type']), []);
    assert.deepEqual(missing(GUFO.twamp_sender.options, SENDER_KEYS), []);
    assert.deepEqual(missing(GUFO.twamp_reflector.options, REFLECTOR_KEYS), []);
    const modelOptions = [...new Set(Object.values(GUFO.twamp_sender.models).flatMap((m) => m.options))];
    assert.deepEqual(modelOptions.filter((n) => !SENDER_KEYS.includes(n)), []);

    const defaultOf = (opts: readonly RefOption[], name: string) => opts.find((o) => o.name === name)?.default;
    const base = { type: 'twamp_sender', id: 'ref', reflector: '127.0.0.1', n_packets: 10, model: 'g711' };
    const sender = parseSenderConfig(base);
    assert.equal(sender.port, defaultOf(GUFO.twamp_sender.options, 'port'));
    assert.equal(sender.reflectorPort, defaultOf(GUFO.twamp_sender.options, 'reflector_port'));
    assert.equal(sender.dscp, parseSenderConfig({ ...base, dscp: defaultOf(GUFO.twamp_sender.options, 'dscp') }).dscp);
    const reflector = parseReflectorConfig({ type: 'twamp_reflector', id: 'ref' });
    assert.equal(reflector.listen, defaultOf(GUFO.twamp_reflector.options, 'listen'));
    assert.equal(reflector.port, defaultOf(GUFO.twamp_reflector.options, 'port'));
  });

  it('every reference traffic model is accepted with its documented options', () => {
    const values: Record<string, number> = { bandwidth: 10_000_000, size: 256 };
    for (const [model, { options }] of Object.entries(GUFO.twamp_sender.models)) {
      const raw: Record<string, unknown> = { type: 'twamp_sender', id: 'ref', reflector: '127.0.0.1', n_packets: 10, model };
      for (const o of options) raw[o] = values[o];
      const cfg = parseSenderConfig(raw);
      assert.deepEqual(cfg.model, { model, ...Object.fromEntries(options.map((o) => [o, values[o]])) }, model);
    }
  });

  it('the library entry point loads no OpenTelemetry SDK package', () => {
    const script = `
      await import(${JSON.stringify(join(repoRoot(), 'dist', 'src', 'index.js'))});
      const { createRequire } = await import('node:module');
      const loaded = Object.keys(createRequire(import.meta.url).cache ?? {});
      process.stdout.write(JSON.stringify(loaded.filter((p) => /@opentelemetry[\\\\/](sdk|exporter|resources|core)/.test(p))));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), []);
  });
});
