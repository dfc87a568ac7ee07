/**
 * Generates collector-config/grafana-dashboard-otel.json (the dashboard for
 * `naming: otel`) from collector-config/grafana-dashboard.json (legacy
 * names), by the instrument table (src/otel/instruments.ts) and the attribute
 * table (src/otel/attributes.ts):
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
 *   target_info only when Prometheus scrapes the agent).
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

type Obj = Record<string, unknown>;

const ALL_SPECS: readonly MetricSpec[] = [...SENDER_MEASUREMENTS, ...SENDER_EXTRA, ...SENDER_HEALTH, ...REFLECTOR_METRICS, ...AGENT_METRICS];

/** Legacy Prometheus name → otel Prometheus name and the factor otel values carry (1e-9: ns → s). */
export const METRIC_MAP: ReadonlyMap<string, { name: string; scale: number }> = new Map(
  ALL_SPECS.map((s) => [prometheusName(s, 'legacy'), { name: prometheusName(s, 'otel'), scale: s.otel.scale }]),
);

/** Legacy label → otel label(s), in matchers and in groupings. */
interface LabelMapping { matcher: string; grouping: readonly string[]; legend: string }
const HOST_PORT: LabelMapping = { matcher: 'server_address', grouping: ['server_address', 'server_port'], legend: '{{server_address}}:{{server_port}}' };
export const LABEL_MAP: ReadonlyMap<string, LabelMapping> = new Map<string, LabelMapping>([
  ...Object.values(ATTRIBUTES).flatMap((a): [string, LabelMapping][] => {
    const { legacy, otel } = a as { legacy: string | undefined; otel: string | undefined };
    if (legacy === undefined || otel === undefined) return [];
    const label = prometheusLabelName(otel);
    return [[legacy, { matcher: label, grouping: [label], legend: `{{${label}}}` }]];
  }),
  ['reflector', HOST_PORT],
  ['listen', HOST_PORT],
  ['host', { matcher: 'host_name', grouping: ['host_name'], legend: '{{host_name}}' }],
]);

const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

/** Rewrites one PromQL expression; returns it and the scales of the metrics it selects. */
export function otelPromql(expr: string): { expr: string; scales: Set<number> } {
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
export function otelLegend(legend: string): string {
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

function scaleThresholds(defaults: Obj, scale: number): void {
  const th = defaults.thresholds;
  if (isObj(th) && Array.isArray(th.steps)) {
    for (const s of th.steps as Obj[]) if (typeof s.value === 'number') s.value *= scale;
  }
  for (const k of ['min', 'max'] as const) if (typeof defaults[k] === 'number') defaults[k] = (defaults[k] as number) * scale;
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
  for (const inner of (p.panels as Obj[] | undefined) ?? []) convertPanel(inner);
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

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  // dist/scripts/gen-dashboards.js → the repository root is two levels up.
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const dir = join(root, 'collector-config');
  const legacy = JSON.parse(readFileSync(join(dir, LEGACY_FILE), 'utf8')) as Obj;
  writeFileSync(join(dir, OTEL_FILE), render(otelDashboard(legacy)));
  console.log(`wrote collector-config/${OTEL_FILE}`);
}
