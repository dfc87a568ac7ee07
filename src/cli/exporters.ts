/**
 * Exporter wiring for the agent: a Prometheus endpoint on our own HTTP server
 * and OTLP/HTTP push (protobuf or JSON), configured from the agent file and
 * the standard OTEL_* environment variables.
 *
 * Both readers select DELTA temporality for observable gauges: under
 * cumulative temporality the SDK keeps exporting a gauge series forever after
 * its callback stopped observing it (opentelemetry-js #4096), which would
 * leave the results of a failed run or a removed collector looking fresh.
 * With DELTA a gauge series is exported only while it is observed. Counters
 * stay cumulative (Prometheus semantics).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  MetricReader, PeriodicExportingMetricReader, AggregationTemporality, InstrumentType,
  type PushMetricExporter, type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { OTLPMetricExporter as OtlpJsonExporter, AggregationTemporalityPreference } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as OtlpProtoExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import type { OtlpConfig, PrometheusConfig, NamingProfile } from '../config/types.js';
import { formatHostPort } from '../session/errors.js';

/**
 * Gauges DELTA (see above); counters and histograms as configured; up-down
 * counters always CUMULATIVE: they report a level (active sessions, open
 * connections), and the OTLP exporter spec keeps them cumulative under the
 * "delta" temporality preference too (as the exporter's own
 * DeltaTemporalitySelector does). Our selector replaces the exporter's, so it
 * has to say so itself.
 */
function gaugeDeltaSelector(counters: AggregationTemporality) {
  return (t: InstrumentType): AggregationTemporality => {
    switch (t) {
      case InstrumentType.OBSERVABLE_GAUGE:
      case InstrumentType.GAUGE:
        return AggregationTemporality.DELTA;
      case InstrumentType.UP_DOWN_COUNTER:
      case InstrumentType.OBSERVABLE_UP_DOWN_COUNTER:
        return AggregationTemporality.CUMULATIVE;
      default:
        return counters;
    }
  };
}

/** A pull reader: collects on demand (each scrape). */
export class PullMetricReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: gaugeDeltaSelector(AggregationTemporality.CUMULATIVE) });
  }
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

/** Prometheus text exposition on our own http.Server (the stock exporter treats port 0 as 9464). */
export class PrometheusEndpoint {
  readonly reader = new PullMetricReader();
  private server: Server | undefined;
  private readonly serializer: PrometheusSerializer;

  /** Applied to every collection before it is serialized (retired collectors). */
  filter: ((rm: ResourceMetrics) => ResourceMetrics) | undefined;

  constructor(private readonly cfg: PrometheusConfig, naming: NamingProfile) {
    // legacy profile: the reference's exposition, without otel_scope_* labels.
    this.serializer = new PrometheusSerializer('', false, undefined, false, naming === 'legacy');
  }

  async start(): Promise<{ host: string; port: number; url: string }> {
    const server = createServer((req, res) => { void this.handle(req, res); });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(new Error(
        `cannot listen for Prometheus scrapes on ${formatHostPort(this.cfg.host, this.cfg.port)}: ${e.code ?? e.message}`)));
      server.listen({ host: this.cfg.host, port: this.cfg.port }, () => resolve());
    });
    const a = server.address();
    const port = a && typeof a === 'object' ? a.port : this.cfg.port;
    const shown = this.cfg.host === '0.0.0.0' || this.cfg.host === '::' ? 'localhost' : this.cfg.host;
    return { host: this.cfg.host, port, url: `http://${formatHostPort(shown, port)}${this.cfg.path}` };
  }

  /** Render the current exposition (also used by tests and the probe). */
  async render(): Promise<string> {
    const { resourceMetrics, errors } = await this.reader.collect();
    if (errors.length) process.stderr.write(`metric collection errors: ${errors.map(String).join('; ')}\n`);
    const rm = resourceMetrics as ResourceMetrics;
    return this.serializer.serialize(this.filter ? this.filter(rm) : rm);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== this.cfg.path) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`not found: metrics are at ${this.cfg.path}\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' });
      res.end();
      return;
    }
    try {
      const body = await this.render();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`collection failed: ${(e as Error).message}\n`);
    }
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections?.();
    await new Promise<void>((r) => s.close(() => r()));
  }
}

/** OTLP/HTTP push reader (protobuf or JSON), gauges as DELTA (see above). */
export function createOtlpReader(cfg: OtlpConfig, filter?: (rm: ResourceMetrics) => ResourceMetrics): PeriodicExportingMetricReader {
  const counters = cfg.temporality === 'delta' ? AggregationTemporality.DELTA : AggregationTemporality.CUMULATIVE;
  const opts = {
    url: cfg.endpoint,
    headers: cfg.headers,
    timeoutMillis: cfg.timeoutMs,
    temporalityPreference: cfg.temporality === 'delta'
      ? AggregationTemporalityPreference.DELTA : AggregationTemporalityPreference.CUMULATIVE,
  };
  // The exporters also read OTEL_EXPORTER_OTLP_*HEADERS from process.env themselves and add
  // them under ours. cfg.headers already holds the agent's environment (which need not be
  // process.env, see AgentOptions.env), so hide them while the exporter reads its
  // configuration (once, synchronously, in the constructor). url, timeout and temporality
  // are passed explicitly and win anyway; compression and TLS certificate variables are
  // still read from process.env (we have no setting of our own for them).
  const inner: PushMetricExporter = withoutProcessEnv(EXPORTER_HEADER_VARIABLES, () =>
    cfg.protocol === 'http/json' ? new OtlpJsonExporter(opts) : new OtlpProtoExporter(opts));
  const select = gaugeDeltaSelector(counters);
  const exporter: PushMetricExporter = {
    export: (m, cb) => inner.export(filter ? filter(m) : m, cb),
    forceFlush: () => inner.forceFlush(),
    shutdown: () => inner.shutdown(),
    selectAggregationTemporality: select,
    ...(inner.selectAggregation ? { selectAggregation: (t: InstrumentType) => inner.selectAggregation!(t) } : {}),
  };
  return new PeriodicExportingMetricReader({
    exporter,
    exportIntervalMillis: cfg.intervalMs,
    exportTimeoutMillis: Math.min(cfg.timeoutMs, cfg.intervalMs),
  });
}

const EXPORTER_HEADER_VARIABLES = ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_METRICS_HEADERS'];

/** Run `make` with `keys` absent from process.env, restoring them afterwards (synchronous only). */
function withoutProcessEnv<T>(keys: readonly string[], make: () => T): T {
  const saved = new Map<string, string>();
  for (const k of keys) {
    const v = process.env[k];
    if (v !== undefined) {
      saved.set(k, v);
      delete process.env[k];
    }
  }
  try {
    return make();
  } finally {
    for (const [k, v] of saved) process.env[k] = v;
  }
}

/** Which exporters OTEL_METRICS_EXPORTER asks for (undefined when unset). */
export function exportersFromEnv(env: NodeJS.ProcessEnv): Set<string> | undefined {
  const v = env.OTEL_METRICS_EXPORTER?.trim();
  if (!v) return undefined;
  const set = new Set(v.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean));
  for (const e of set) {
    if (!['otlp', 'prometheus', 'none'].includes(e)) {
      throw new Error(`OTEL_METRICS_EXPORTER: unsupported exporter "${e}" (supported: otlp, prometheus, none)`);
    }
  }
  return set;
}

/** OTLP settings from the agent file's `otlp` section overlaid with OTEL_* variables where the file is silent. */
export function otlpFromEnv(file: OtlpConfig | undefined, env: NodeJS.ProcessEnv): OtlpConfig {
  const proto = (env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL)?.trim();
  if (proto && proto !== 'http/protobuf' && proto !== 'http/json') {
    throw new Error(`OTEL_EXPORTER_OTLP_PROTOCOL: unsupported protocol "${proto}" (supported: http/protobuf, http/json)`);
  }
  const intervalEnv = env.OTEL_METRIC_EXPORT_INTERVAL?.trim();
  let intervalMs = file?.intervalMs ?? 60_000;
  if (intervalEnv) {
    const n = Number(intervalEnv);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`OTEL_METRIC_EXPORT_INTERVAL: expected milliseconds > 0, got "${intervalEnv}"`);
    intervalMs = n;
  }
  const timeoutEnv = env.OTEL_METRIC_EXPORT_TIMEOUT?.trim();
  let timeoutMs = file?.timeoutMs ?? 10_000;
  if (timeoutEnv) {
    const n = Number(timeoutEnv);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`OTEL_METRIC_EXPORT_TIMEOUT: expected milliseconds > 0, got "${timeoutEnv}"`);
    timeoutMs = n;
  }
  const tempEnv = env.OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE?.trim().toLowerCase();
  const endpoint = file?.endpoint ?? env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT ??
    (env.OTEL_EXPORTER_OTLP_ENDPOINT ? `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/metrics` : 'http://localhost:4318/v1/metrics');
  return {
    endpoint,
    protocol: file?.protocol ?? (proto as OtlpConfig['protocol'] | undefined) ?? 'http/protobuf',
    headers: mergeHeaders(parseHeaders(env.OTEL_EXPORTER_OTLP_HEADERS), parseHeaders(env.OTEL_EXPORTER_OTLP_METRICS_HEADERS), file?.headers ?? {}),
    intervalMs,
    timeoutMs,
    temporality: file?.temporality ?? (tempEnv === 'delta' ? 'delta' : 'cumulative'),
  };
}

/** Later sources win; header names compare case-insensitively (the winner's spelling is kept). */
function mergeHeaders(...sources: Record<string, string>[]): Record<string, string> {
  const byLower = new Map<string, [string, string]>();
  for (const src of sources) for (const [k, v] of Object.entries(src)) byLower.set(k.toLowerCase(), [k, v]);
  return Object.fromEntries(byLower.values());
}

function parseHeaders(v: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!v) return out;
  for (const part of v.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    out[decodeURIComponent(part.slice(0, i).trim())] = decodeURIComponent(part.slice(i + 1).trim());
  }
  return out;
}
