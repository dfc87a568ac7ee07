/**
 * Creates a producer's instruments from the metric table and registers ONE
 * batch observable callback for all of them (as host-metrics does): the
 * producer snapshots its state once per collection and emits every series
 * through `emit`, which applies the collector's relabel rules per series.
 */
import { ValueType } from '@opentelemetry/api';
import type {
  Meter, ObservableGauge, ObservableCounter, ObservableUpDownCounter, BatchObservableResult, Attributes, Histogram,
} from '@opentelemetry/api';
import { type MetricSpec, type NamingProfile, metricName, prometheusName, exportedValue } from './instruments.js';
import { NUMERIC_ATTRIBUTES, prometheusLabelName } from './attributes.js';
import type { CompiledRelabel, Labels } from './relabel.js';

type Observable = ObservableGauge | ObservableCounter | ObservableUpDownCounter;
type Instrument = Observable | Histogram;

/**
 * Emits one series of a collection. `K` is the key type of the set's metric table
 * (MetricKey in instruments.ts): a key with no instrument does not compile.
 */
export type Emit<K extends string> = (key: K, value: number | undefined, labels: Labels) => void;

export interface InstrumentSetOptions {
  profile: NamingProfile;
  relabel?: CompiledRelabel | undefined;
}

/** The instruments of one metric table; `K` is the table's key type, inferred from `specs`. */
export class InstrumentSet<K extends string> {
  private readonly byKey = new Map<K, { spec: MetricSpec; name: string; visibleName: string; instrument: Instrument }>();
  private readonly profile: NamingProfile;
  private callback: ((r: BatchObservableResult) => void) | undefined;

  constructor(private readonly meter: Meter, specs: readonly MetricSpec<K>[], private readonly o: InstrumentSetOptions) {
    this.profile = o.profile;
    for (const spec of specs) {
      const name = metricName(spec, o.profile);
      const unit = o.profile === 'legacy' ? spec.legacy.unit : spec.otel.unit;
      // Seconds (otel profile) are fractional even where the legacy ns are integers.
      const valueType = o.profile === 'otel' && spec.otel.scale !== 1 ? ValueType.DOUBLE : spec.valueType;
      const description = o.profile === 'otel' ? spec.description.replace(/ in nanoseconds$/, '') : spec.description;
      const opts = { description, unit, valueType };
      const scale = o.profile === 'otel' ? spec.otel.scale : 1;
      const instrument = spec.kind === 'counter' ? meter.createObservableCounter(name, opts)
        : spec.kind === 'updowncounter' ? meter.createObservableUpDownCounter(name, opts)
          : spec.kind === 'histogram' ? meter.createHistogram(name, {
            ...opts, advice: { explicitBucketBoundaries: (spec.buckets ?? []).map((b) => b * scale) } })
            : meter.createObservableGauge(name, opts);
      this.byKey.set(spec.key, { spec, name, visibleName: prometheusName(spec, o.profile), instrument });
    }
  }

  /** Register `snapshot` as the batch callback; it emits every series of one collection. */
  start(snapshot: (emit: Emit<K>) => void): void {
    if (this.callback) return;
    const cb = (r: BatchObservableResult): void => {
      snapshot((key, value, labels) => this.observe(r, key, value, labels));
    };
    this.callback = cb;
    this.meter.addBatchObservableCallback(cb, this.observables());
  }

  private observables(): Observable[] {
    return [...this.byKey.values()].filter((e) => e.spec.kind !== 'histogram').map((e) => e.instrument as Observable);
  }

  /** Record samples into a histogram instrument (relabel applied once for the label set). */
  record(key: K, values: ArrayLike<number>, labels: Labels): void {
    const e = this.byKey.get(key);
    if (!e || e.spec.kind !== 'histogram' || values.length === 0) return;
    const attrs = this.relabelled(e.visibleName, labels);
    if (!attrs) return;
    const h = e.instrument as Histogram;
    for (let i = 0; i < values.length; i++) h.record(exportedValue(e.spec, this.profile, values[i]!), attrs);
  }

  stop(): void {
    if (!this.callback) return;
    this.meter.removeBatchObservableCallback(this.callback, this.observables());
    this.callback = undefined;
  }

  private observe(r: BatchObservableResult, key: K, value: number | undefined, labels: Labels): void {
    if (value === undefined || !Number.isFinite(value)) return;
    const e = this.byKey.get(key);
    if (!e) return;
    const out = this.relabelled(e.visibleName, labels);
    if (!out) return;
    r.observe(e.instrument as Observable, exportedValue(e.spec, this.profile, value), out);
  }

  /**
   * The collector's relabel rules on one series. Rules see what a Prometheus
   * scrape shows: the visible metric name and label names. Renames and
   * whole-metric drops are static per instrument and carried by the generated
   * Views (createTwampViews); per series, only labels and keep/drop apply here.
   * Undefined: dropped.
   */
  private relabelled(visibleName: string, labels: Labels): Attributes | undefined {
    let out: Labels = labels;
    const relabel = this.o.relabel;
    if (relabel && !relabel.isEmpty) {
      const visible = this.profile === 'otel' ? toPrometheusKeys(labels) : { labels, back: undefined };
      const res = relabel.apply(visibleName, visible.labels);
      if (!res) return undefined;
      out = visible.back ? fromPrometheusKeys(res.labels, visible.back) : res.labels;
    }
    return this.profile === 'otel' ? typed(out) : out;
  }
}

/** otel attribute keys → Prometheus label names, remembering the originals. */
function toPrometheusKeys(labels: Labels): { labels: Labels; back: Map<string, string> } {
  const out: Labels = {};
  const back = new Map<string, string>();
  for (const [k, v] of Object.entries(labels)) {
    const p = prometheusLabelName(k);
    out[p] = v;
    back.set(p, k);
  }
  return { labels: out, back };
}

function fromPrometheusKeys(labels: Labels, back: Map<string, string>): Labels {
  const out: Labels = {};
  for (const [k, v] of Object.entries(labels)) out[back.get(k) ?? k] = v;
  return out;
}

/** Semantic-convention attributes that are numbers (server.port) go out as numbers. */
function typed(labels: Labels): Attributes {
  let out: Attributes | undefined;
  for (const k of NUMERIC_ATTRIBUTES) {
    const v = labels[k];
    if (v !== undefined && /^\d+$/.test(v)) {
      out ??= { ...labels };
      out[k] = Number(v);
    }
  }
  return out ?? labels;
}
