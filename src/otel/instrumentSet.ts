/**
 * Creates a producer's instruments from the metric table and registers ONE
 * batch observable callback for all of them (as host-metrics does): the
 * producer snapshots its state once per collection and emits every series
 * through `emit`, which applies the collector's relabel rules per series.
 */
import type {
  Meter, ObservableGauge, ObservableCounter, ObservableUpDownCounter, BatchObservableResult, Attributes,
} from '@opentelemetry/api';
import { type MetricSpec, type NamingProfile, metricName, exportedValue } from './instruments.js';
import type { CompiledRelabel, Labels } from './relabel.js';

type Observable = ObservableGauge | ObservableCounter | ObservableUpDownCounter;

export type Emit = (key: string, value: number | undefined, labels: Labels) => void;

export interface InstrumentSetOptions {
  profile: NamingProfile;
  relabel?: CompiledRelabel | undefined;
  /** Called once per distinct problem (e.g. an unsupported rename). */
  warn?: (msg: string) => void;
}

export class InstrumentSet {
  private readonly byKey = new Map<string, { spec: MetricSpec; name: string; instrument: Observable }>();
  private readonly byName = new Map<string, { spec: MetricSpec; instrument: Observable }>();
  private callback: ((r: BatchObservableResult) => void) | undefined;
  private readonly warned = new Set<string>();

  constructor(private readonly meter: Meter, specs: readonly MetricSpec[], private readonly o: InstrumentSetOptions) {
    for (const spec of specs) {
      const name = metricName(spec, o.profile);
      const unit = o.profile === 'legacy' ? spec.legacy.unit : spec.otel.unit;
      const opts = { description: spec.description, unit, valueType: spec.valueType };
      const instrument = spec.kind === 'counter' ? meter.createObservableCounter(name, opts)
        : spec.kind === 'updowncounter' ? meter.createObservableUpDownCounter(name, opts)
          : meter.createObservableGauge(name, opts);
      this.byKey.set(spec.key, { spec, name, instrument });
      this.byName.set(name, { spec, instrument });
    }
  }

  /** Register `snapshot` as the batch callback; it emits every series of one collection. */
  start(snapshot: (emit: Emit) => void): void {
    if (this.callback) return;
    const cb = (r: BatchObservableResult): void => {
      snapshot((key, value, labels) => this.observe(r, key, value, labels));
    };
    this.callback = cb;
    this.meter.addBatchObservableCallback(cb, [...this.byKey.values()].map((e) => e.instrument));
  }

  stop(): void {
    if (!this.callback) return;
    this.meter.removeBatchObservableCallback(this.callback, [...this.byKey.values()].map((e) => e.instrument));
    this.callback = undefined;
  }

  private observe(r: BatchObservableResult, key: string, value: number | undefined, labels: Labels): void {
    if (value === undefined || !Number.isFinite(value)) return;
    const e = this.byKey.get(key);
    if (!e) return;
    let target = e;
    let attrs: Attributes = labels;
    const relabel = this.o.relabel;
    if (relabel && !relabel.isEmpty) {
      const out = relabel.apply(e.name, labels);
      if (!out) return; // dropped by keep/drop rules
      attrs = out.labels;
      if (out.name !== e.name) {
        const other = this.byName.get(out.name);
        if (other) target = { ...other, name: out.name };
        else {
          this.warnOnce(`relabel renamed ${e.name} to ${out.name}: renaming to a new metric name needs the generated Views ` +
            '(createTwampViews); series kept under its original name');
        }
      }
    }
    r.observe(target.instrument, exportedValue(target.spec, this.o.profile, value), attrs);
  }

  private warnOnce(msg: string): void {
    if (this.warned.has(msg)) return;
    this.warned.add(msg);
    this.o.warn?.(msg);
  }
}
