/**
 * Relabel rules mapped onto the OpenTelemetry SDK. A View can rename an
 * instrument's stream and drop a whole instrument (AggregationType.DROP), but
 * it applies to the instrument provider-wide and cannot drop single series.
 * So the one relabel engine runs at two hooks:
 *  - per series, in each producer's batch callback: label rewrites and
 *    keep/drop (a keep after a rewrite must see the rewritten labels, and an
 *    attribute processor cannot drop a series);
 *  - per instrument, as the Views returned here: renames of `__name__` and
 *    whole-metric drops, which must be static (the same for every series of
 *    the instrument and for every collector that produces it).
 * A rule set that needs something else (a rename that depends on a label
 * value known only at collection time, or two collectors renaming the same
 * instrument differently) is rejected at load with the reason.
 *
 * The returned objects are plain ViewOptions of @opentelemetry/sdk-metrics
 * (this module does not import the SDK): pass them to `new MeterProvider({
 * views })` or `new NodeSDK({ views })`.
 */
import { SENDER_MEASUREMENTS, SENDER_HEALTH, REFLECTOR_METRICS, metricName, prometheusName, streamNameForPrometheus, type MetricSpec, type NamingProfile } from './instruments.js';
import { senderAttributes, reflectorAttributes, attributeKey, prometheusLabelName, type AttributeRole } from './attributes.js';
import { compileRelabel, validMetricName, type Labels, type RelabelRule, type RegexDialect } from './relabel.js';
import { METER_NAME } from '../version.js';

/** Structurally a ViewOptions of @opentelemetry/sdk-metrics 2.x. */
export interface TwampView {
  instrumentName: string;
  meterName: string;
  name?: string;
  /** { type: 1 } is AggregationType.DROP. */
  aggregation?: { type: 1 };
}

export const AGGREGATION_DROP = 1 as const;

/** What createTwampViews needs of a collector (a normalized collector config fits). */
export interface ViewCollector {
  type: 'twamp_sender' | 'twamp_reflector';
  id: string;
  disabled?: boolean;
  labels: Record<string, string>;
  relabel: RelabelRule[];
  relabelDialect: RegexDialect;
  // sender
  reflector?: string;
  port: number;
  model?: { model: string };
  dscp?: number;
  // reflector
  listen?: string;
}

export class ViewConfigError extends Error {
  constructor(readonly collectorId: string, message: string) {
    super(`collector "${collectorId}": relabel: ${message}`);
    this.name = 'ViewConfigError';
  }
}

export interface CreateViewsOptions {
  naming?: NamingProfile;
  /** Agent labels as the producers get them (legacy: including host). */
  agentLabels?: Labels;
}

type Decision = { kind: 'keep' } | { kind: 'rename'; to: string } | { kind: 'drop' };

/**
 * Views for every static rename and whole-metric drop in the collectors'
 * relabel rules. Throws ViewConfigError when a rule cannot be represented.
 */
export function createTwampViews(collectors: readonly ViewCollector[], opts: CreateViewsOptions = {}): TwampView[] {
  const profile = opts.naming ?? 'legacy';
  // instrument name → what each collector producing it wants
  const wants = new Map<string, { spec: MetricSpec; by: Map<string, Decision> }>();
  for (const c of collectors) {
    if (c.disabled) continue;
    const engine = c.relabel.length ? compileRelabel(c.relabel, { dialect: c.relabelDialect, dump: () => undefined }) : undefined;
    const specs = c.type === 'twamp_sender' ? [...SENDER_MEASUREMENTS, ...SENDER_HEALTH] : REFLECTOR_METRICS;
    const base = engine ? identity(profile, c, opts.agentLabels ?? {}) : {};
    for (const spec of specs) {
      const variants = dynamicVariants(profile, spec, base);
      const visible = prometheusName(spec, profile);
      let decision: Decision = { kind: 'keep' };
      if (engine) {
        const outcomes = variants.map((labels) => engine.apply(visible, labels));
        const names = new Set(outcomes.filter((o) => o !== undefined).map((o) => o!.name));
        if (outcomes.every((o) => o === undefined)) decision = { kind: 'drop' };
        else if (names.size > 1) {
          throw new ViewConfigError(c.id, `the new name of ${visible} depends on labels known only at collection time ` +
            `(${[...names].join(' / ')}); a View renames a whole instrument`);
        } else {
          const to = [...names][0]!;
          if (to !== visible) {
            const stream = streamNameForPrometheus(spec, to);
            if (!validMetricName(stream)) throw new ViewConfigError(c.id, `cannot rename ${visible} to invalid metric name "${to}"`);
            decision = { kind: 'rename', to: stream };
          }
        }
      }
      const instrument = metricName(spec, profile);
      let w = wants.get(instrument);
      if (!w) { w = { spec, by: new Map() }; wants.set(instrument, w); }
      w.by.set(c.id, decision);
    }
  }
  const views: TwampView[] = [];
  for (const [instrument, { spec, by }] of wants) {
    const decisions = [...by.entries()];
    // A drop for some collectors only is done per series in their callbacks; a View drops for everyone.
    if (decisions.every(([, d]) => d.kind === 'drop')) {
      views.push({ instrumentName: instrument, meterName: METER_NAME, aggregation: { type: AGGREGATION_DROP } });
      continue;
    }
    const renames = decisions.filter(([, d]) => d.kind === 'rename') as [string, { kind: 'rename'; to: string }][];
    if (renames.length === 0) continue;
    const targets = new Set(renames.map(([, d]) => d.to));
    const keepers = decisions.filter(([, d]) => d.kind === 'keep').map(([id]) => id);
    const visible = prometheusName(spec, profile);
    if (targets.size > 1 || keepers.length > 0) {
      const [id, d] = renames[0]!;
      const other = keepers.length ? `collector "${keepers[0]}" keeps the name`
        : `collector "${renames.find(([, r]) => r.to !== d.to)![0]}" renames it to ${renames.find(([, r]) => r.to !== d.to)![1].to}`;
      throw new ViewConfigError(id, `renames ${visible} to ${d.to} but ${other}; a View renames the instrument for every collector`);
    }
    views.push({ instrumentName: instrument, meterName: METER_NAME, name: renames[0]![1].to });
  }
  return views;
}

function identity(profile: NamingProfile, c: ViewCollector, agentLabels: Labels): Labels {
  const labels = c.type === 'twamp_sender'
    ? senderAttributes(profile, {
      agentLabels, collectorLabels: c.labels, id: c.id, reflector: c.reflector ?? '', port: c.port,
      model: c.model?.model ?? '', dscp: String(c.dscp ?? 0),
    })
    : reflectorAttributes(profile, { agentLabels, collectorLabels: c.labels, id: c.id, listen: c.listen ?? '', port: c.port });
  const out: Labels = {};
  for (const [k, v] of Object.entries(labels)) out[prometheusLabelName(k)] = v;
  return out;
}

/** The static labels, with each label the producer adds to this metric at collection time absent or at two values. */
function dynamicVariants(profile: NamingProfile, spec: MetricSpec, base: Labels): Labels[] {
  const roles: AttributeRole[] = [];
  if (spec.key === 'errors' || spec.key === 'refused') roles.push('reason');
  if (SENDER_MEASUREMENTS.some((s) => s === spec)) roles.push('networkType');
  const variants: Labels[] = [base];
  for (const role of roles) {
    const key = attributeKey(profile, role);
    if (key === undefined) continue;
    for (const v of ['a', 'b']) variants.push({ ...base, [prometheusLabelName(key)]: v });
  }
  return variants;
}
