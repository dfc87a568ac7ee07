/**
 * Generates collector-config/grafana-dashboard-otel.json (the dashboard for
 * `naming: otel`) from collector-config/grafana-dashboard.json (legacy
 * names), by the instrument table (src/otel/instruments.ts) and the attribute
 * table (src/otel/attributes.ts); and the mesh dashboard
 * (collector-config/grafana-dashboard-mesh.json, src × dst matrices of a
 * mesh, docs/configuration.md "Mesh") with its otel twin
 * grafana-dashboard-mesh-otel.json, made the same way:
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/gen-dashboards.js
 *
 * - metric names: each legacy Prometheus name → the otel one (counters keep `_total`);
 * - units: otel exports seconds where legacy exports nanoseconds, so panels in
 *   `ns` become `s` (and their threshold values are scaled);
 * - labels: collector_id → twamp_collector_id, reason → error_type, model →
 *   twamp_model; `reflector` and `listen` (host:port) → server_address in
 *   matchers, server_address + server_port in groupings and legends; `host` →
 *   host_name (the resource attribute: a label in the collector set-up, on
 *   target_info only when Prometheus scrapes the agent); the mesh labels
 *   (src, dst, mesh_test → twamp_mesh_src, … by meshLabelKeys), also in the
 *   matrix transformations' row and column fields.
 * test/collector-config-dashboards.test.ts checks that the committed file is
 * what this script makes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AGENT_METRICS, REFLECTOR_METRICS, SENDER_EXTRA, SENDER_HEALTH, SENDER_MEASUREMENTS, prometheusName, type MetricSpec,
} from '../src/otel/instruments.js';
import { ATTRIBUTES, prometheusLabelName } from '../src/otel/attributes.js';
import { meshLabelKeys } from '../src/config/mesh.js';

type Obj = Record<string, unknown>;

const ALL_SPECS: readonly MetricSpec[] = [...SENDER_MEASUREMENTS, ...SENDER_EXTRA, ...SENDER_HEALTH, ...REFLECTOR_METRICS, ...AGENT_METRICS];

/** Legacy Prometheus name → otel Prometheus name and the factor otel values carry (1e-9: ns → s). */
export const METRIC_MAP: ReadonlyMap<string, { name: string; scale: number }> = new Map(
  ALL_SPECS.map((s) => [prometheusName(s, 'legacy'), { name: prometheusName(s, 'otel'), scale: s.otel.scale }]),
);

/** The mesh sender labels naming both ends and the test: [legacy, otel Prometheus label]. */
const MESH_LABEL_PAIRS: readonly (readonly [string, string])[] = (() => {
  const legacy = meshLabelKeys('legacy');
  const otel = meshLabelKeys('otel');
  return (['src', 'dst', 'test'] as const).map((k) => [legacy[k], prometheusLabelName(otel[k])] as const);
})();

/** Legacy label → otel label(s), in matchers and in groupings. */
interface LabelMapping { matcher: string; grouping: readonly string[]; legend: string }
const HOST_PORT: LabelMapping = { matcher: 'server_address', grouping: ['server_address', 'server_port'], legend: '{{server_address}}:{{server_port}}' };
const LABEL_MAP: ReadonlyMap<string, LabelMapping> = new Map<string, LabelMapping>([
  ...Object.values(ATTRIBUTES).flatMap((a): [string, LabelMapping][] => {
    const { legacy, otel } = a as { legacy: string | undefined; otel: string | undefined };
    if (legacy === undefined || otel === undefined) return [];
    const label = prometheusLabelName(otel);
    return [[legacy, { matcher: label, grouping: [label], legend: `{{${label}}}` }]];
  }),
  ['reflector', HOST_PORT],
  ['listen', HOST_PORT],
  ['host', { matcher: 'host_name', grouping: ['host_name'], legend: '{{host_name}}' }],
  ...MESH_LABEL_PAIRS.map(([legacy, otel]): [string, LabelMapping] => [legacy, { matcher: otel, grouping: [otel], legend: `{{${otel}}}` }]),
]);

const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

/** Rewrites one PromQL expression; returns it and the scales of the metrics it selects. */
function otelPromql(expr: string): { expr: string; scales: Set<number> } {
  const scales = new Set<number>();
  let out = '';
  let braces = 0;
  let brackets = 0;
  let grouping = false;
  let afterGroupingKeyword = false;
  const token = /"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`|[a-zA-Z_:][a-zA-Z0-9_:]*|\s+|[^]/g;
  for (const m of expr.matchAll(token)) {
    const t = m[0];
    if (/^\s+$/.test(t)) { out += t; continue; }
    const pendingGrouping = afterGroupingKeyword;
    afterGroupingKeyword = false;
    if (t === '{') braces++;
    else if (t === '}') braces--;
    else if (t === '[') brackets++;
    else if (t === ']') brackets--;
    else if (t === '(' && pendingGrouping) grouping = true;
    else if (t === ')' && grouping) grouping = false;
    if (!/^[a-zA-Z_:]/.test(t) || brackets > 0) { out += t; continue; }
    if (braces > 0) { out += LABEL_MAP.get(t)?.matcher ?? t; continue; }
    if (grouping) { out += LABEL_MAP.get(t)?.grouping.join(', ') ?? t; continue; }
    if (GROUPING.has(t)) { afterGroupingKeyword = true; out += t; continue; }
    const metric = METRIC_MAP.get(t);
    if (metric) scales.add(metric.scale);
    out += metric?.name ?? t;
  }
  return { expr: out, scales };
}

/** `{{label}}` in a legend → the otel label(s). */
function otelLegend(legend: string): string {
  return legend.replace(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g, (all, l: string) => LABEL_MAP.get(l)?.legend ?? all);
}

/** `label_values(metric{…}, label)` → the otel metric and label. */
function otelVariableQuery(q: string): string {
  const m = /^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$/s.exec(q.trim());
  if (!m) throw new Error(`variable query ${JSON.stringify(q)}: expected label_values(metric, label)`);
  const label = m[2]!;
  // host.name is a resource attribute: every agent's target_info carries it, in both set-ups.
  if (label === 'host') return 'label_values(target_info, host_name)';
  return `label_values(${otelPromql(m[1]!).expr}, ${LABEL_MAP.get(label)?.matcher ?? label})`;
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** v × scale without binary noise (150e6 × 1e-9 is 0.15, not 0.15000000000000002). */
const scaled = (v: number, scale: number): number => Number((v * scale).toPrecision(12));

function scaleThresholds(defaults: Obj, scale: number): void {
  const th = defaults.thresholds;
  if (isObj(th) && Array.isArray(th.steps)) {
    for (const s of th.steps as Obj[]) if (typeof s.value === 'number') s.value = scaled(s.value, scale);
  }
  for (const k of ['min', 'max'] as const) if (typeof defaults[k] === 'number') defaults[k] = scaled(defaults[k] as number, scale);
}

function convertPanel(p: Obj): void {
  let scales = new Set<number>();
  for (const t of (p.targets as Obj[] | undefined) ?? []) {
    if (typeof t.expr === 'string') {
      const r = otelPromql(t.expr);
      t.expr = r.expr;
      scales = new Set([...scales, ...r.scales]);
    }
    if (typeof t.legendFormat === 'string') t.legendFormat = otelLegend(t.legendFormat);
  }
  const defaults = isObj(p.fieldConfig) && isObj(p.fieldConfig.defaults) ? p.fieldConfig.defaults : undefined;
  if (scales.size > 1) throw new Error(`panel "${String(p.title)}" mixes metrics of different otel units`);
  const [scale] = [...scales];
  if (scale !== undefined && scale !== 1) {
    if (defaults?.unit !== 'ns') throw new Error(`panel "${String(p.title)}": otel values are scaled by ${scale}, but the unit is ${String(defaults?.unit)}`);
    defaults.unit = 's';
    scaleThresholds(defaults, scale);
  } else if (defaults?.unit === 'ns') {
    throw new Error(`panel "${String(p.title)}" is in ns but selects no scaled metric`);
  }
  convertMatrixFields(p);
  for (const inner of (p.panels as Obj[] | undefined) ?? []) convertPanel(inner);
}

/** One label name as the otel profile exports it (only one-to-one mappings make sense as a field). */
function otelLabel(label: string): string {
  const m = LABEL_MAP.get(label);
  if (m === undefined) return label;
  if (m.grouping.length !== 1) throw new Error(`label ${label} has no single otel label (${m.grouping.join(', ')})`);
  return m.grouping[0]!;
}

/**
 * A groupingToMatrix transformation names its row and column by label, and
 * Grafana names the matrix's first column `ROW\COLUMN`: both follow the labels.
 */
function convertMatrixFields(p: Obj): void {
  const renames = new Map<string, string>();
  for (const t of (p.transformations as Obj[] | undefined) ?? []) {
    if (t.id !== 'groupingToMatrix' || !isObj(t.options)) continue;
    const o = t.options;
    const before = `${String(o.rowField)}\\${String(o.columnField)}`;
    for (const k of ['rowField', 'columnField'] as const) if (typeof o[k] === 'string') o[k] = otelLabel(o[k] as string);
    renames.set(before, `${String(o.rowField)}\\${String(o.columnField)}`);
  }
  const overrides = isObj(p.fieldConfig) && Array.isArray(p.fieldConfig.overrides) ? (p.fieldConfig.overrides as Obj[]) : [];
  for (const ov of overrides) {
    const m = ov.matcher;
    if (isObj(m) && m.id === 'byName' && typeof m.options === 'string') m.options = renames.get(m.options) ?? m.options;
  }
}

/** The otel-profile dashboard made from the legacy one (a deep copy; the input is not changed). */
export function otelDashboard(legacy: Obj): Obj {
  const d = structuredClone(legacy);
  d.title = `${String(d.title)} (otel names)`;
  d.uid = `${String(d.uid)}-otel`;
  d.description = String(d.description).replace('(legacy metric names)', '(otel metric names: agent `naming: otel`)');
  if (!String(d.description).includes('naming: otel')) throw new Error('dashboard description: "(legacy metric names)" not found');
  d.tags = [...new Set([...((d.tags as string[] | undefined) ?? []), 'otel'])];
  for (const p of d.panels as Obj[]) convertPanel(p);
  for (const v of (d.templating as { list: Obj[] }).list) {
    if (v.type !== 'query') continue;
    const q = isObj(v.query) ? v.query : undefined;
    const text = q ? q.query : v.query;
    if (typeof text !== 'string') continue;
    const converted = otelVariableQuery(text);
    if (q) q.query = converted; else v.query = converted;
    if (typeof v.definition === 'string') v.definition = converted;
    if (v.name === 'host') {
      v.description = 'The agent host (resource attribute host.name). Series carry host_name only in the collector ' +
        'set-up (resource_to_telemetry_conversion); when Prometheus scrapes the agent, keep "All".';
    }
  }
  return d;
}

export function render(d: Obj): string {
  return `${JSON.stringify(d, null, 2)}\n`;
}

export const LEGACY_FILE = 'grafana-dashboard.json';
export const OTEL_FILE = 'grafana-dashboard-otel.json';
export const MESH_FILE = 'grafana-dashboard-mesh.json';
export const MESH_OTEL_FILE = 'grafana-dashboard-mesh-otel.json';

// ---------------------------------------------------------------------------
// The mesh dashboard (legacy names; its otel twin comes from otelDashboard)

const DS = { type: 'prometheus', uid: '${DS_PROMETHEUS}' } as const;
const [SRC, DST, TEST] = MESH_LABEL_PAIRS.map(([legacy]) => legacy) as [string, string, string];
/** Every mesh selector: the chosen tests and ends. */
const SEL = `${TEST}=~"$${TEST}",${SRC}=~"$${SRC}",${DST}=~"$${DST}"`;
const BY_PAIR = `by (${SRC}, ${DST})`;

interface Measure {
  title: string;
  description: string;
  /** PromQL of one value per series, with `SEL` inside each selector. */
  value: string;
  /** How pairs measured by several tests combine: the worst value. */
  worst: 'max' | 'min';
  unit: string;
  /** Threshold steps, base first (its value null). */
  steps: readonly [string, number | null][];
  decimals?: number;
}

const ms = 1e6; // ns
const MEASURES: readonly Measure[] = [
  {
    title: 'Round-trip delay (avg)', unit: 'ns', worst: 'max', decimals: 1,
    description: 'twamp_rt_avg_delay_ns of the last run: (T4 − T1) − (T3 − T2), the reflector\'s residence time excluded. Row: the sender (src); column: the reflector (dst).',
    value: `twamp_rt_avg_delay_ns{${SEL}}`,
    steps: [['green', null], ['yellow', 50 * ms], ['red', 150 * ms]],
  },
  {
    title: 'Round-trip loss (%)', unit: 'percent', worst: 'max', decimals: 2,
    description: 'Packets lost in either direction, % of the packets sent in the last run (twamp_rt_loss / twamp_tx_packets).',
    value: `100 * twamp_rt_loss{${SEL}} / twamp_tx_packets{${SEL}}`,
    steps: [['green', null], ['yellow', 1], ['red', 5]],
  },
  {
    title: 'Jitter src → dst (RFC 3550)', unit: 'ns', worst: 'max', decimals: 2,
    description: 'twamp_out_jitter_ns: interarrival jitter of the outbound direction, from the sender (src) to the reflector (dst); needs no clock synchronisation.',
    value: `twamp_out_jitter_ns{${SEL}}`,
    steps: [['green', null], ['yellow', 10 * ms], ['red', 30 * ms]],
  },
  {
    title: 'MOS src → dst (E-model)', unit: 'none', worst: 'min', decimals: 2,
    description: 'twamp_out_mos: estimated MOS of the outbound direction (heard at the reflector, dst). 4.0 and above good, below 3.6 poor.',
    value: `twamp_out_mos{${SEL}}`,
    steps: [['red', null], ['yellow', 3.6], ['green', 4]],
  },
];

const thresholds = (steps: Measure['steps']) => ({ mode: 'absolute', steps: steps.map(([color, value]) => ({ color, value })) });

function variable(name: string, label: string, description: string, query: string): Obj {
  return {
    name, label, type: 'query', datasource: DS, description,
    query: { query, refId: 'PrometheusVariableQueryEditor-VariableQuery', qryType: 1 },
    definition: query, refresh: 2, multi: true, includeAll: true,
    // ".+", not ".*": "All" keeps series that have the label, so senders outside a mesh stay out.
    allValue: '.+',
    current: { selected: true, text: ['All'], value: ['$__all'] }, sort: 1, regex: '', options: [], hide: 0,
  };
}

function target(expr: string, o: { legend?: string; instant?: boolean; refId?: string } = {}): Obj {
  return o.instant
    ? { datasource: DS, refId: o.refId ?? 'A', expr, legendFormat: '__auto', instant: true, range: false, format: 'table' }
    : { datasource: DS, refId: o.refId ?? 'A', expr, legendFormat: o.legend ?? '', range: true };
}

/** src × dst matrix of one measure: an instant table query turned into a grid by groupingToMatrix. */
function matrixPanel(m: Measure, id: number, gridPos: Obj): Obj {
  const corner = `${SRC}\\${DST}`;
  return {
    type: 'table', title: `${m.title}: src × dst`, id, description: `${m.description} Empty cell: the pair is not measured (or its series went stale).`,
    datasource: DS, gridPos,
    fieldConfig: {
      defaults: {
        unit: m.unit, ...(m.decimals !== undefined ? { decimals: m.decimals } : {}),
        custom: { align: 'center', cellOptions: { type: 'color-background', mode: 'basic' }, inspect: false },
        color: { mode: 'thresholds' }, thresholds: thresholds(m.steps), noValue: '–',
      },
      overrides: [{
        matcher: { id: 'byName', options: corner },
        properties: [{ id: 'custom.cellOptions', value: { type: 'auto' } }, { id: 'custom.align', value: 'left' }, { id: 'displayName', value: 'src \\ dst' }],
      }],
    },
    options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], countRows: false, fields: '' } },
    transformations: [{ id: 'groupingToMatrix', options: { rowField: SRC, columnField: DST, valueField: 'Value', emptyValue: 'null' } }],
    targets: [target(`${m.worst} ${BY_PAIR} (${m.value})`, { instant: true })],
  };
}

/** The same measure over time, one line per pair. */
function trendPanel(m: Measure, id: number, gridPos: Obj): Obj {
  return {
    type: 'timeseries', title: `${m.title} by pair`, id, description: m.description, datasource: DS, gridPos,
    fieldConfig: {
      defaults: {
        unit: m.unit, ...(m.decimals !== undefined ? { decimals: m.decimals } : {}),
        custom: { drawStyle: 'line', lineWidth: 1, fillOpacity: 0, showPoints: 'auto', spanNulls: false, thresholdsStyle: { mode: 'dashed' } },
        color: { mode: 'palette-classic' }, thresholds: thresholds(m.steps),
      },
      overrides: [],
    },
    options: {
      legend: { displayMode: 'table', placement: 'right', calcs: ['lastNotNull', m.worst], showLegend: true, sortBy: 'Last *', sortDesc: m.worst === 'max' },
      tooltip: { mode: 'multi', sort: 'desc' },
    },
    targets: [target(`${m.worst} ${BY_PAIR} (${m.value})`, { legend: `{{${SRC}}} → {{${DST}}}` })],
  };
}

/** The mesh dashboard for the legacy names: a MaDDash-like grid per measure, then each measure over time. */
export function meshDashboard(): Obj {
  const panels: Obj[] = [];
  let id = 1;
  let y = 0;
  const row = (title: string) => { panels.push({ type: 'row', title, id: id++, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] }); y += 1; };
  row('Matrix: rows are senders (src), columns reflectors (dst); last run of each pair');
  const success: Measure = {
    title: 'Probe success', unit: 'none', worst: 'min',
    description: 'twamp_sender_success: 1 if the last test session of the pair succeeded, 0 if it failed (unreachable, refused, timed out).',
    value: `twamp_sender_success{${SEL}}`, steps: [['red', null], ['green', 1]],
  };
  [success, ...MEASURES].forEach((m, i) => {
    const w = i === 0 ? 24 : 12;
    const x = i === 0 ? 0 : ((i - 1) % 2) * 12;
    panels.push(matrixPanel(m, id++, { h: 10, w, x, y }));
    if (i === 0 || i % 2 === 0) y += 10;
  });
  row('Over time, one line per src → dst pair');
  MEASURES.forEach((m, i) => {
    panels.push(trendPanel(m, id++, { h: 9, w: 12, x: (i % 2) * 12, y }));
    if (i % 2 === 1) y += 9;
  });
  // Success matrix: its values are 0/1, so show them as words.
  const successPanel = panels[1]!;
  ((successPanel.fieldConfig as Obj).defaults as Obj).mappings = [
    { type: 'value', options: { 0: { text: 'fail', index: 0 }, 1: { text: 'ok', index: 1 } } },
  ];
  return {
    __inputs: [{ name: 'DS_PROMETHEUS', label: 'Prometheus', description: 'Prometheus scraping otel-twamp (or the OpenTelemetry Collector)', type: 'datasource', pluginId: 'prometheus', pluginName: 'Prometheus' }],
    __requires: [
      { type: 'grafana', id: 'grafana', name: 'Grafana', version: '10.4.0' },
      { type: 'datasource', id: 'prometheus', name: 'Prometheus', version: '1.0.0' },
      { type: 'panel', id: 'table', name: 'Table', version: '' },
      { type: 'panel', id: 'timeseries', name: 'Time series', version: '' },
    ],
    title: 'otel-twamp: mesh',
    uid: 'otel-twamp-mesh',
    description: 'A measurement mesh of otel-twamp agents (mesh: in the agent file) as src × dst matrices of round-trip delay, loss, jitter and MOS (legacy metric names).',
    tags: ['twamp', 'otel-twamp', 'network', 'sla', 'mesh'],
    timezone: 'browser', editable: true, graphTooltip: 1, schemaVersion: 39, version: 1,
    time: { from: 'now-6h', to: 'now' }, refresh: '1m', fiscalYearStartMonth: 0, liveNow: false, links: [],
    annotations: { list: [{ builtIn: 1, datasource: { type: 'grafana', uid: '-- Grafana --' }, enable: true, hide: true, iconColor: 'rgba(0, 211, 255, 1)', name: 'Annotations & Alerts', type: 'dashboard' }] },
    templating: {
      list: [
        { name: 'DS_PROMETHEUS', label: 'Data source', type: 'datasource', query: 'prometheus', hide: 0, current: {}, options: [], refresh: 1, regex: '', includeAll: false, multi: false },
        variable(TEST, 'Test', 'The mesh test (a key of tests in the mesh definition).', `label_values(twamp_sender_success{${SRC}!=""}, ${TEST})`),
        variable(SRC, 'Source (sender)', 'The member that sends (row of the matrices).', `label_values(twamp_sender_success{${TEST}=~"$${TEST}"}, ${SRC})`),
        variable(DST, 'Destination (reflector)', 'The member that reflects (column of the matrices).', `label_values(twamp_sender_success{${TEST}=~"$${TEST}"}, ${DST})`),
      ],
    },
    panels,
  };
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  // dist/scripts/gen-dashboards.js → the repository root is two levels up.
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const dir = join(root, 'collector-config');
  const legacy = JSON.parse(readFileSync(join(dir, LEGACY_FILE), 'utf8')) as Obj;
  writeFileSync(join(dir, OTEL_FILE), render(otelDashboard(legacy)));
  console.log(`wrote collector-config/${OTEL_FILE}`);
  const mesh = meshDashboard();
  writeFileSync(join(dir, MESH_FILE), render(mesh));
  writeFileSync(join(dir, MESH_OTEL_FILE), render(otelDashboard(mesh)));
  console.log(`wrote collector-config/${MESH_FILE} and ${MESH_OTEL_FILE}`);
}
