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
import { freePort, isCI, repoRoot } from './helpers/peers.js';
import { SENDER_MEASUREMENTS, SENDER_HEALTH, REFLECTOR_METRICS, prometheusName, type NamingProfile } from '../src/otel/instruments.js';
import { ATTRIBUTES, prometheusLabelName } from '../src/otel/attributes.js';
import { meshLabelKeys } from '../src/config/mesh.js';
import { parseAgentConfig } from '../src/config/load.js';
import { Agent } from '../src/cli/agent.js';
import { silentLogger } from '../src/util/log.js';
import {
  MESH_FILE, MESH_OTEL_FILE, METRIC_MAP, OTEL_FILE, LEGACY_FILE, meshDashboard, otelDashboard, render,
} from '../scripts/gen-dashboards.js';

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
  { file: LEGACY_FILE, profile: 'legacy', builtin: BUILTIN, kind: 'sla' },
  { file: OTEL_FILE, profile: 'otel', builtin: BUILTIN_OTEL, kind: 'sla' },
  { file: MESH_FILE, profile: 'legacy', builtin: BUILTIN, kind: 'mesh' },
  { file: MESH_OTEL_FILE, profile: 'otel', builtin: BUILTIN_OTEL, kind: 'mesh' },
] as const;

/** The Prometheus label of each mesh key (src, dst, test) in a profile. */
const meshLabels = (profile: NamingProfile) => {
  const k = meshLabelKeys(profile);
  return { src: prometheusLabelName(k.src), dst: prometheusLabelName(k.dst), test: prometheusLabelName(k.test) };
};

/** Label names a PromQL expression (or label_values query) matches on, groups by or asks for. */
export function labelNames(expr: string): string[] {
  const e = substituteGrafana(expr).replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const out = new Set<string>();
  for (const m of e.matchAll(/\{([^}]*)\}/g)) for (const l of m[1]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) out.add(l[1]!);
  for (const m of e.matchAll(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g)) {
    for (const l of m[1]!.split(',').map((x) => x.trim()).filter(Boolean)) out.add(l);
  }
  const lv = /^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$/s.exec(e.trim());
  if (lv) out.add(lv[2]!);
  return [...out].sort();
}

/** Labels a panel's legends and matrix transformations name. */
function panelFieldLabels(p: Obj): string[] {
  const out = new Set<string>();
  for (const t of (p.targets as Obj[] | undefined) ?? []) {
    for (const m of String(t.legendFormat ?? '').matchAll(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g)) out.add(m[1]!);
  }
  for (const tr of (p.transformations as Obj[] | undefined) ?? []) {
    if (tr.id !== 'groupingToMatrix' || !isObj(tr.options)) continue;
    for (const k of ['rowField', 'columnField'] as const) out.add(String(tr.options[k]));
  }
  return [...out];
}

for (const { file, profile, builtin, kind } of DASHBOARDS) describe(`collector-config/${file}`, () => {
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
    for (const name of kind === 'sla' ? ['collector_id', 'reflector'] : ['mesh_test', 'src', 'dst']) {
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
    const shows = kind === 'mesh'
      ? ['twamp_rt_avg_delay_ns', 'twamp_rt_loss', 'twamp_tx_packets', 'twamp_out_jitter_ns', 'twamp_out_mos', 'twamp_sender_success']
      : undefined;
    for (const name of shows ?? [
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
    const legacyOnly = ['collector_id', 'reflector', 'listen', 'reason', 'host', 'model', 'src', 'dst', 'mesh_test'];
    const otelOnly = ['twamp_collector_id', 'server_address', 'server_port', 'error_type', 'host_name', 'twamp_model', 'twamp_mesh_src', 'twamp_mesh_dst', 'twamp_mesh_test'];
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

  if (kind === 'mesh') {
    const mesh = meshLabels(profile);
    /** Labels the sender series of a mesh carry in this profile (docs/configuration.md "Mesh"). */
    const known = new Set<string>([
      mesh.src, mesh.dst, mesh.test,
      ...Object.values(ATTRIBUTES).flatMap((a) => { const k = (a as { legacy?: string; otel?: string })[profile]; return k === undefined ? [] : [prometheusLabelName(k)]; }),
    ]);

    it(`every query, variable, legend and matrix names only labels of ${profile} mesh sender series`, () => {
      const texts = [
        ...dashboardExprs(d).map((e) => ({ where: e.where, labels: labelNames(e.expr) })),
        ...d.templating.list.filter((v) => v.type === 'query').map((v) => ({ where: `variable ${String(v.name)}`, labels: labelNames(String(isObj(v.query) ? v.query.query : v.query)) })),
        ...allPanels(d).map((p) => ({ where: `panel "${String(p.title)}" legend/transformations`, labels: panelFieldLabels(p) })),
      ];
      for (const { where, labels } of texts) for (const l of labels) assert.ok(known.has(l), `${where}: label ${l} is not on ${profile} mesh series`);
    });

    it('each matrix is an instant table grouped by (src, dst), turned into rows = src and columns = dst', () => {
      const tables = allPanels(d).filter((p) => p.type === 'table');
      assert.ok(tables.length >= 5, 'success, RTT, loss, jitter and MOS matrices');
      for (const p of tables) {
        const [t, ...more] = p.targets as Obj[];
        assert.equal(more.length, 0, `panel "${String(p.title)}": one query (its value field is "Value")`);
        assert.equal(t!.instant, true);
        assert.equal(t!.format, 'table');
        assert.match(String(t!.expr), new RegExp(`^(max|min) by \\(${mesh.src}, ${mesh.dst}\\) \\(`), `panel "${String(p.title)}"`);
        const tr = (p.transformations as Obj[]).find((x) => x.id === 'groupingToMatrix');
        assert.deepEqual(tr?.options, { rowField: mesh.src, columnField: mesh.dst, valueField: 'Value', emptyValue: 'null' });
        const corner = ((p.fieldConfig as Obj).overrides as Obj[]).map((o) => (o.matcher as Obj).options);
        assert.deepEqual(corner, [`${mesh.src}\\${mesh.dst}`], 'the corner column (ROW\\COLUMN) is styled as text');
      }
      const titles = tables.map((p) => String(p.title));
      for (const what of [/success/i, /round-trip delay/i, /loss/i, /jitter/i, /MOS/]) assert.ok(titles.some((x) => what.test(x)), `a matrix of ${String(what)}`);
    });

    it('MOS and success take the worst pair value as min, delay, loss and jitter as max', () => {
      for (const p of allPanels(d)) {
        for (const t of (p.targets as Obj[] | undefined) ?? []) {
          const e = String(t.expr);
          const worst = /mos|success/.test(e) ? 'min' : 'max';
          assert.ok(e.startsWith(`${worst} by (`), `panel "${String(p.title)}": ${e}`);
        }
      }
    });
  }

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

describe(`collector-config/${MESH_FILE} and ${MESH_OTEL_FILE} are generated`, () => {
  it('are what scripts/gen-dashboards.ts makes (regenerate: node dist/scripts/gen-dashboards.js)', () => {
    assert.equal(readFileSync(join(configDir, MESH_FILE), 'utf8'), render(meshDashboard()));
    assert.equal(readFileSync(join(configDir, MESH_OTEL_FILE), 'utf8'), render(otelDashboard(meshDashboard())));
  });

  it('the otel twin renames the mesh labels in queries, variables, legends and matrix fields', () => {
    const otel = JSON.parse(readFileSync(join(configDir, MESH_OTEL_FILE), 'utf8')) as Obj;
    const text = JSON.stringify(otel);
    for (const l of ['twamp_mesh_src', 'twamp_mesh_dst', 'twamp_mesh_test']) assert.ok(text.includes(l), l);
    assert.ok(text.includes('twamp_mesh_src\\\\twamp_mesh_dst'), 'the matrix corner column');
    // (legacy labels left in PromQL and legends: the per-dashboard "uses only otel labels" test)
    const tables = (otel.panels as Obj[]).filter((p) => p.type === 'table');
    for (const p of tables) {
      const tr = (p.transformations as Obj[])[0]!;
      assert.deepEqual([(tr.options as Obj).rowField, (tr.options as Obj).columnField], ['twamp_mesh_src', 'twamp_mesh_dst'], String(p.title));
    }
  });
});

/** Series of a Prometheus text exposition: metric name → label sets. */
function exposition(text: string): Map<string, Set<string>[]> {
  const out = new Map<string, Set<string>[]>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
    if (!m) continue;
    const labels = new Set([...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)].map((x) => x[1]!));
    out.set(m[1]!, [...(out.get(m[1]!) ?? []), labels]);
  }
  return out;
}

describe('the mesh dashboards against what a mesh agent exports', { timeout: 60_000 }, () => {
  for (const [profile, file] of [['legacy', MESH_FILE], ['otel', MESH_OTEL_FILE]] as const) {
    it(`${file}: every metric a query selects is exported by a ${profile} mesh agent with every label the query and panel name`, async () => {
      // Two members on loopback: m1's agent measures m2's reflector (run by m2's agent).
      const dir = mkdtempSync(join(tmpdir(), 'otel-twamp-meshdash-'));
      const [p1, p2, prom] = [await freePort(), await freePort(), await freePort()];
      writeFileSync(join(dir, 'mesh.yaml'), `tests:
  voice: {model: g711, n_packets: 5, interval: 1, reply_timeout: 0.5}
members:
  - {name: m1, address: 127.0.0.1, port: ${p1}, listen: 127.0.0.1, labels: {site: a}}
  - {name: m2, address: 127.0.0.2, port: ${p2}, listen: 127.0.0.2, labels: {site: b}}
groups:
  - {type: mesh, members: [m1, m2], test: voice}
`);
      const agentFile = (self: string, listen?: number) => `$version: "1.0"
naming: ${profile}
${listen !== undefined ? `sender: { listen: "127.0.0.1:${listen}" }\n` : ''}mesh: { source: mesh.yaml, self: ${self} }
`;
      const a1 = new Agent(parseAgentConfig(agentFile('m1', prom), join(dir, 'a1.yaml'), {}), { logger: silentLogger, env: {} });
      const a2 = new Agent(parseAgentConfig(agentFile('m2'), join(dir, 'a2.yaml'), {}), { logger: silentLogger, env: {} });
      try {
        await a1.start();
        await a2.start();
        const deadline = Date.now() + 20_000;
        while (!a1.senders.every((s) => s.lastOutcome?.ok === true)) {
          assert.ok(Date.now() < deadline, 'the mesh senders to finish a session');
          await new Promise((r) => setTimeout(r, 50));
        }
        const series = exposition(await a1.prometheus!.render());
        const d = loadDashboard(file);
        let checked = 0;
        for (const p of allPanels(d)) {
          const panelLabels = panelFieldLabels(p);
          for (const t of (p.targets as Obj[] | undefined) ?? []) {
            const expr = String(t.expr);
            const labels = [...labelNames(expr), ...panelLabels];
            for (const name of metricNames(expr)) {
              const sets = series.get(name);
              assert.ok(sets, `panel "${String(p.title)}": ${name} is not exported`);
              assert.ok(sets.some((s) => labels.every((l) => s.has(l))), `panel "${String(p.title)}": no ${name} series has all of ${labels.join(', ')}`);
              checked++;
            }
          }
        }
        for (const v of d.templating.list.filter((x) => x.type === 'query')) {
          const q = String(isObj(v.query) ? v.query.query : v.query);
          const name = variableMetric(v)!;
          assert.ok(series.get(name)?.some((s) => labelNames(q).every((l) => s.has(l))), `variable ${String(v.name)}: ${q}`);
          checked++;
        }
        assert.ok(checked >= 12, `${checked} selectors checked`);
      } finally {
        await a1.stop();
        await a2.stop();
      }
    });
  }
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
