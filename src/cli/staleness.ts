/**
 * Series of collectors that are gone. Gauges vanish at once (the readers
 * export them with DELTA temporality), but the SDK keeps exporting an
 * observable counter's last cumulative value forever after its callback is
 * removed (opentelemetry-js #4096). A retired collector's series are kept for
 * a grace period — a dashboard sees the final values, a Prometheus range
 * query spanning the change still works — then filtered out of every export,
 * Prometheus and OTLP alike.
 */
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';

/** Default grace period: long enough for a few scrapes and an OTLP export. */
const DEFAULT_STALE_GRACE_MS = 5 * 60_000;

export class RetiredCollectors {
  private readonly retired = new Map<string, number>();

  constructor(
    /** Attribute that identifies a collector: `collector_id` (legacy) or `twamp.collector.id` (otel). */
    private readonly idKey: string,
    readonly graceMs = DEFAULT_STALE_GRACE_MS,
    private readonly now: () => number = Date.now,
  ) {}

  retire(id: string): void {
    this.retired.set(id, this.now());
  }

  /** The id is in use again (a restarted collector). */
  revive(id: string): void {
    this.retired.delete(id);
  }

  /** Ids whose grace period is over. */
  expired(): Set<string> {
    const t = this.now();
    const out = new Set<string>();
    for (const [id, at] of this.retired) if (t - at >= this.graceMs) out.add(id);
    return out;
  }

  /** Remove data points of expired collectors, and metrics left without any (in place; returns rm). */
  filter(rm: ResourceMetrics): ResourceMetrics {
    const gone = this.expired();
    if (gone.size === 0) return rm;
    for (const sm of rm.scopeMetrics) {
      sm.metrics = sm.metrics.filter((m) => {
        const points = (m.dataPoints as { attributes: Record<string, unknown> }[])
          .filter((p) => !gone.has(String(p.attributes[this.idKey])));
        (m as { dataPoints: unknown[] }).dataPoints = points;
        return points.length > 0;
      });
    }
    return rm;
  }
}
