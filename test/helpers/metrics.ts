// Test helpers for reading what the producers export: a pull MetricReader with
// the agent's temporality (gauges DELTA), and lookups by name and attributes.
import { MeterProvider, type ResourceMetrics, type MetricData, type DataPoint } from '@opentelemetry/sdk-metrics';
import { PullMetricReader } from '../../src/cli/exporters.js';

export interface TestMeter {
  provider: MeterProvider;
  reader: PullMetricReader;
  collect(): Promise<Snapshot>;
  shutdown(): Promise<void>;
}

export function testMeter(): TestMeter {
  const reader = new PullMetricReader();
  const provider = new MeterProvider({ readers: [reader] });
  return {
    provider,
    reader,
    async collect() {
      const { resourceMetrics, errors } = await reader.collect();
      if (errors.length) throw new Error(`collection errors: ${errors.map(String).join('; ')}`);
      return new Snapshot(resourceMetrics);
    },
    shutdown: () => provider.shutdown(),
  };
}

export class Snapshot {
  constructor(readonly rm: ResourceMetrics) {}

  metrics(): MetricData[] {
    return this.rm.scopeMetrics.flatMap((s) => s.metrics);
  }

  names(): string[] {
    return this.metrics().map((m) => m.descriptor.name).sort();
  }

  metric(name: string): MetricData | undefined {
    return this.metrics().find((m) => m.descriptor.name === name);
  }

  /** Data points of `name` whose attributes include `attrs`. */
  points(name: string, attrs: Record<string, string> = {}): DataPoint<number>[] {
    const m = this.metric(name);
    if (!m) return [];
    return (m.dataPoints as DataPoint<number>[]).filter((p) =>
      Object.entries(attrs).every(([k, v]) => p.attributes[k] === v));
  }

  /** The single value of `name` matching `attrs`; undefined when absent, throws when ambiguous. */
  value(name: string, attrs: Record<string, string> = {}): number | undefined {
    const ps = this.points(name, attrs);
    if (ps.length > 1) throw new Error(`${name}: ${ps.length} series match ${JSON.stringify(attrs)}`);
    return ps[0]?.value;
  }
}
