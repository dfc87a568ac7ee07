// The shipped Grafana dashboard and Prometheus alerting rules only query
// metrics we export: every metric name in their PromQL must be one of the
// legacy names of src/otel/instruments.ts (counters with the `_total` the
// Prometheus exposition adds). promtool checks the rules, and the
// dashboard's queries too (wrapped in a throw-away rule file).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { isCI, repoRoot } from './helpers/peers.js';
import { SENDER_MEASUREMENTS, SENDER_HEALTH, REFLECTOR_METRICS, prometheusName, type NamingProfile } from '../src/otel/instruments.js';
import { METRIC_MAP, OTEL_FILE, LEGACY_FILE, otelDashboard, render } from '../scripts/gen-dashboards.js';

const configDir = join(repoRoot(), 'collector-config');

/** Names as Prometheus scrapes them: counters get `_total`, gauges and up-down counters do not. */
const exported = (profile: NamingProfile) => new Set(
  [...SENDER_MEASUREMENTS, ...SENDER_HEALTH, ...REFLECTOR_METRICS].map((m) => prometheusName(m, profile)));
const EXPORTED = exported('legacy');
/** Series Prometheus makes itself, and the OTel exporters' resource series. */
const BUILTIN = new Set(['up']);
const BUILTIN_OTEL = new Set(['up', 'target_info']);

const KEYWORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset',
  'inf', 'nan', 'Inf', 'NaN',
]);

/** Grafana's variables, replaced so that the expression is plain PromQL. */
export function substituteGrafana(expr: string): string {
  return expr
    .replace(/\$__(rate_)?interval\b|\$\{__(rate_)?interval\}/g, '5m')
    .replace(/\$__range\b/g, '1h')
    .replace(/\$\{(\w+)(:\w+)?\}|\$(\w+)/g, (_m, a: string | undefined, _f, b: string | undefined) => `${a ?? b}`);
}

/** Metric names selected by a PromQL expression (not functions, labels, keywords or numbers). */
export function metricNames(expr: string): string[] {
  let e = substituteGrafana(expr);
  e = e.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""'); // strings
  e = e.replace(/\{[^}]*\}/g, ' '); // label matchers
  e = e.replace(/\[[^\]]*\]/g, ' '); // ranges and subqueries
  e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' '); // label lists
  const names = new Set<string>();
  for (const m of e.matchAll(/(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const name = m[1]!;
    if (m[2] !== undefined || KEYWORDS.has(name)) continue; // a function call or a keyword
    names.add(name);
  }
  return [...names].sort();
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

interface Dashboard {
  schemaVersion: number;
  title: string;
  uid: string;
  panels: Obj[];
  templating: { list: Obj[] };
}

function loadDashboard(file = LEGACY_FILE): Dashboard {
  const d: unknown = JSON.parse(readFileSync(join(configDir, file), 'utf8'));
  assert.ok(isObj(d), 'dashboard is a JSON object');
  return d as unknown as Dashboard;
}

/** Every panel, rows' nested panels included. */
function allPanels(d: Dashboard): Obj[] {
  return d.panels.flatMap((p) => [p, ...(Array.isArray(p.panels) ? (p.panels as Obj[]) : [])]);
}

function dashboardExprs(d: Dashboard): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const p of allPanels(d)) {
    for (const t of (p.targets as Obj[] | undefined) ?? []) {
      if (typeof t.expr === 'string') out.push({ where: `panel "${String(p.title)}" ${String(t.refId)}`, expr: t.expr });
    }
  }
  return out;
}

/** `label_values(metric{…}, label)` → metric. */
export function variableMetric(v: Obj): string | undefined {
  const q = isObj(v.query) ? v.query.query : v.query;
  if (typeof q !== 'string') return undefined;
  const m = /^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(q.trim());
  return m?.[1];
}

interface RuleFile { groups: { name: string; rules: Obj[] }[] }

function loadAlerts(): RuleFile {
  const doc: unknown = parse(readFileSync(join(configDir, 'alerts.yml'), 'utf8'));
  assert.ok(isObj(doc) && Array.isArray(doc.groups), 'alerts.yml: a map with groups');
  return doc as unknown as RuleFile;
}

function promtool(t: { skip(msg: string): void }, args: string[]): ReturnType<typeof spawnSync> | undefined {
  const r = spawnSync('promtool', args, { encoding: 'utf8' });
  if (r.error) {
    if (isCI()) throw new Error(`promtool not runnable under CI (.ci/run installs prometheus): ${r.error.message}`);
    console.warn(`\n!!!!! SKIPPING promtool CHECK: promtool not installed (apt-get install prometheus) !!!!!\n`);
    t.skip('promtool not installed (apt-get install prometheus)');
    return undefined;
  }
  return r;
}

describe('PromQL metric-name extraction', () => {
  it('finds selectors, not functions, labels, keywords, variables or numbers', () => {
    assert.deepEqual(metricNames('100 * twamp_rt_loss{a="x"} / twamp_tx_packets > 1'), ['twamp_rt_loss', 'twamp_tx_packets']);
    assert.deepEqual(
      metricNames('sum by (collector_id, reason) (increase(twamp_sender_errors_total{collector_id=~"$collector_id"}[$__rate_interval]))'),
      ['twamp_sender_errors_total'],
    );
    assert.deepEqual(metricNames('(a < 3.6) or (b < 3.6e1) and on (x) group_left (y) c'), ['a', 'b', 'c']);
    assert.deepEqual(metricNames('up{job="otel-twamp-agent"} == 0'), ['up']);
    assert.deepEqual(metricNames('changes(m[3m]) == 0 unless bool n offset 5m'), ['m', 'n']);
  });
});

const DASHBOARDS = [
  { file: LEGACY_FILE, profile: 'legacy', builtin: BUILTIN },
  { file: OTEL_FILE, profile: 'otel', builtin: BUILTIN_OTEL },
] as const;

for (const { file, profile, builtin } of DASHBOARDS) describe(`collector-config/${file}`, () => {
  const d = loadDashboard(file);
  const EXPORTED = exported(profile);
  const BUILTIN = builtin;
  /** A legacy name as this profile scrapes it. */
  const named = (legacy: string) => (profile === 'legacy' ? legacy : METRIC_MAP.get(legacy)!.name);

  it('is a Grafana dashboard (schemaVersion 39) with a Prometheus data source variable', () => {
    assert.ok(d.schemaVersion >= 36 && d.schemaVersion <= 41, `schemaVersion ${d.schemaVersion}`);
    assert.ok(d.title && d.uid, 'title and uid');
    const vars = d.templating.list;
    const ds = vars.find((v) => v.name === 'DS_PROMETHEUS');
    assert.equal(ds?.type, 'datasource');
    assert.equal(ds?.query, 'prometheus');
    for (const name of ['collector_id', 'reflector']) {
      const v = vars.find((x) => x.name === name);
      assert.ok(v, `template variable ${name}`);
      assert.equal(v.type, 'query');
    }
  });

  it('every panel and query uses the ${DS_PROMETHEUS} data source', () => {
    for (const p of allPanels(d)) {
      if (p.type === 'row') continue;
      assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${DS_PROMETHEUS}' }, `panel "${String(p.title)}"`);
      for (const t of (p.targets as Obj[] | undefined) ?? []) {
        assert.deepEqual(t.datasource, { type: 'prometheus', uid: '${DS_PROMETHEUS}' }, `panel "${String(p.title)}" target`);
      }
    }
  });

  it('panels have unique ids and do not overlap', () => {
    const ids = allPanels(d).map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'unique panel ids');
    const cells = new Set<string>();
    for (const p of allPanels(d)) {
      const g = p.gridPos as { x: number; y: number; w: number; h: number };
      assert.ok(g.x >= 0 && g.x + g.w <= 24, `panel "${String(p.title)}" fits 24 columns`);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          assert.ok(!cells.has(`${x},${y}`), `panel "${String(p.title)}" overlaps another at ${x},${y}`);
          cells.add(`${x},${y}`);
        }
      }
    }
  });

  it('queries only metrics we export (counters as *_total)', () => {
    const used = new Set<string>();
    for (const { where, expr } of dashboardExprs(d)) {
      for (const name of metricNames(expr)) {
        assert.ok(EXPORTED.has(name) || BUILTIN.has(name), `${where}: ${name} is not an exported metric (${expr})`);
        used.add(name);
      }
    }
    for (const v of d.templating.list) {
      if (v.type !== 'query') continue;
      const name = variableMetric(v);
      assert.ok(name !== undefined, `variable ${String(v.name)}: label_values(metric, label) query`);
      assert.ok(EXPORTED.has(name) || BUILTIN.has(name), `variable ${String(v.name)}: ${name} is not an exported metric`);
    }
    // What the dashboard is for: delays, jitter, loss, MOS, rates, success, reflector counters.
    for (const name of [
      'twamp_rt_min_delay_ns', 'twamp_rt_avg_delay_ns', 'twamp_rt_max_delay_ns',
      'twamp_out_avg_delay_ns', 'twamp_in_avg_delay_ns', 'twamp_in_jitter_ns', 'twamp_out_jitter_ns',
      'twamp_in_loss', 'twamp_out_loss', 'twamp_rt_loss', 'twamp_in_mos', 'twamp_out_mos',
      'twamp_tx_pps', 'twamp_rx_pps', 'twamp_tx_bitrate', 'twamp_rx_bitrate', 'twamp_sender_success',
      'twamp_sender_errors_total', 'twamp_reflector_reflected_pkt_total', 'twamp_reflector_reflected_octets_total',
      'twamp_reflector_session_attempts_total', 'twamp_reflector_session_started_total',
    ]) {
      assert.ok(used.has(named(name)), `the dashboard shows ${named(name)}`);
    }
  });

  it(`uses only ${profile} labels in matchers, groupings and legends`, () => {
    const legacyOnly = ['collector_id', 'reflector', 'listen', 'reason', 'host', 'model'];
    const otelOnly = ['twamp_collector_id', 'server_address', 'server_port', 'error_type', 'host_name', 'twamp_model'];
    const forbidden = profile === 'legacy' ? otelOnly : legacyOnly;
    const promql = [
      ...dashboardExprs(d).map((e) => ({ where: e.where, text: e.expr })),
      ...d.templating.list.filter((v) => v.type === 'query').map((v) => ({ where: `variable ${String(v.name)}`, text: String(isObj(v.query) ? v.query.query : v.query) })),
    ];
    for (const { where, text } of promql) {
      const noStrings = text.replace(/"(?:[^"\\]|\\.)*"/g, '""');
      for (const l of forbidden) {
        // a matcher (label=~…), a grouping list entry (…, label) or label_values' label
        assert.doesNotMatch(noStrings, new RegExp(`(?<![\\w$])${l}\\s*(=~|!~|!=|=|,|\\))`), `${where}: label ${l} is not a ${profile} label: ${text}`);
      }
    }
    for (const p of allPanels(d)) {
      for (const t of (p.targets as Obj[] | undefined) ?? []) {
        for (const l of forbidden) {
          assert.doesNotMatch(String(t.legendFormat ?? ''), new RegExp(`\\{\\{\\s*${l}\\s*\\}\\}`), `panel "${String(p.title)}" legend: ${l}`);
        }
      }
    }
  });

  it('delay and jitter panels are in the unit the profile exports (legacy ns, otel s)', () => {
    for (const p of allPanels(d)) {
      const exprs = ((p.targets as Obj[] | undefined) ?? []).map((t) => String(t.expr ?? ''));
      if (!exprs.some((e) => /delay|jitter/.test(e))) continue;
      const unit = (p.fieldConfig as { defaults?: { unit?: string } } | undefined)?.defaults?.unit;
      assert.equal(unit, profile === 'legacy' ? 'ns' : 's', `panel "${String(p.title)}"`);
    }
  });

  it('its queries are valid PromQL (promtool, Grafana variables substituted)', (t) => {
    const rules = dashboardExprs(d).map(({ expr }, i) => ({ record: `dashboard:query_${i}`, expr: substituteGrafana(expr) }));
    const dir = mkdtempSync(join(tmpdir(), 'otel-twamp-dash-'));
    const f = join(dir, 'dashboard-queries.yml');
    writeFileSync(f, stringify({ groups: [{ name: 'dashboard', rules }] }));
    const r = promtool(t, ['check', 'rules', f]);
    if (!r) return;
    assert.equal(r.status, 0, `${String(r.stdout)}\n${String(r.stderr)}`);
  });
});

describe(`collector-config/${OTEL_FILE} is generated`, () => {
  it('is what scripts/gen-dashboards.ts makes from the legacy dashboard (regenerate: node dist/scripts/gen-dashboards.js)', () => {
    const legacy = JSON.parse(readFileSync(join(configDir, LEGACY_FILE), 'utf8')) as Obj;
    assert.equal(readFileSync(join(configDir, OTEL_FILE), 'utf8'), render(otelDashboard(legacy)));
  });

  it('the generator maps every instrument, with the ns → s scale', () => {
    assert.equal(METRIC_MAP.get('twamp_rt_avg_delay_ns')?.name, 'twamp_sender_round_trip_delay_avg');
    assert.equal(METRIC_MAP.get('twamp_rt_avg_delay_ns')?.scale, 1e-9);
    assert.equal(METRIC_MAP.get('twamp_reflector_refused_total')?.name, 'twamp_reflector_refused_total');
    assert.equal(METRIC_MAP.get('twamp_tx_packets')?.scale, 1);
  });
});

describe('collector-config/alerts.yml', () => {
  const doc = loadAlerts();
  const rules = doc.groups.flatMap((g) => g.rules);
  const alert = (name: string): Obj => {
    const r = rules.find((x) => x.alert === name);
    assert.ok(r, `alert ${name}`);
    return r;
  };

  it('alerts on loss, MOS below 3.6, failing and stale probes, and a down reflector or agent', () => {
    assert.match(String(alert('TwampPacketLoss').expr), /twamp_rt_loss/);
    assert.match(String(alert('TwampLowMos').expr), /twamp_out_mos < 3\.6/);
    assert.match(String(alert('TwampLowMos').expr), /twamp_in_mos < 3\.6/);
    assert.match(String(alert('TwampProbeFailing').expr), /twamp_sender_success == 0/);
    assert.equal(alert('TwampProbeFailing').for, '5m');
    assert.match(String(alert('TwampProbeStale').expr), /twamp_sender_runs_total\[3m\]/);
    assert.match(String(alert('TwampNoSuccessfulRun').expr), /twamp_sender_success\[3m\]/);
    assert.match(String(alert('TwampReflectorDown').expr), /twamp_sender_success/);
    assert.match(String(alert('TwampAgentDown').expr), /^up\{job="otel-twamp-agent"\} == 0$/);
    for (const r of rules) {
      assert.ok(isObj(r.labels) && typeof r.labels.severity === 'string', `${String(r.alert)}: severity label`);
      assert.ok(isObj(r.annotations) && r.annotations.summary && r.annotations.description, `${String(r.alert)}: summary and description`);
    }
  });

  it('uses only metrics we export (counters as *_total)', () => {
    for (const r of rules) {
      for (const name of metricNames(String(r.expr))) {
        assert.ok(EXPORTED.has(name) || BUILTIN.has(name), `${String(r.alert)}: ${name} is not an exported metric`);
      }
    }
  });

  it('the scrape job names match collector-config/prometheus-pull.yml and prometheus-collector.yml', () => {
    for (const [file, job] of [['prometheus-pull.yml', 'otel-twamp-agent'], ['prometheus-collector.yml', 'otel-collector']] as const) {
      const prom = parse(readFileSync(join(configDir, file), 'utf8')) as { scrape_configs: { job_name: string }[] };
      assert.ok(prom.scrape_configs.some((j) => j.job_name === job), `${file}: job ${job}`);
      assert.ok(rules.some((r) => String(r.expr).includes(`up{job="${job}"}`)), `an alert on up{job="${job}"}`);
    }
  });

  it('passes promtool check rules (when promtool is installed)', (t) => {
    const r = promtool(t, ['check', 'rules', join(configDir, 'alerts.yml')]);
    if (!r) return;
    assert.equal(r.status, 0, `${String(r.stdout)}\n${String(r.stderr)}`);
  });
});
