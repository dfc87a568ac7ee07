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
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import {
  MetricReader, PeriodicExportingMetricReader, AggregationTemporality, InstrumentType,
  type PushMetricExporter, type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { OTLPMetricExporter as OtlpJsonExporter, AggregationTemporalityPreference } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as OtlpProtoExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import type { OtlpConfig, PrometheusConfig, NamingProfile } from '../config/types.js';
import { formatHostPort } from '../util/net.js';
import { messageOf } from '../util/errors.js';

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

/**
 * Limits of the Prometheus endpoint. It shares the process, and so the event
 * loop, with the reflector: whatever a scraper sends must not cost the
 * reflector file descriptors, memory or timestamps (docs/security.md).
 */
export interface PrometheusLimits {
  /** Connections held at once. One more closes the longest-idle connection, or itself when every one is busy. */
  maxConnections: number;
  /** Requests answered on one connection; the last says `Connection: close`. */
  maxRequestsPerSocket: number;
  /** Requests waiting on one connection (HTTP/1.1 pipelining); one more closes the connection. */
  maxPipelined: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
  /** A request's headers must arrive within this; a connection without any activity (nothing sent, a response not read) is closed after it. */
  requestTimeoutMs: number;
  /** A rendered exposition is served again for this long; concurrent scrapes share one collection. */
  cacheMs: number;
  /** Metrics responses per second, all clients together (burst as large); beyond: 429 and the connection closed. */
  maxScrapesPerSecond: number;
}

export const PROMETHEUS_LIMIT_DEFAULTS: Readonly<PrometheusLimits> = Object.freeze({
  maxConnections: 64,
  maxRequestsPerSocket: 100,
  maxPipelined: 4,
  keepAliveTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  cacheMs: 1_000,
  maxScrapesPerSecond: 20,
});

interface ConnectionState {
  /** Requests received and not yet answered. */
  inFlight: number;
  /** Requests received in all. */
  requests: number;
}

/** Largest request head (request line and headers) node's parser is given; scrapes send a few hundred octets. */
const MAX_HEAD_OCTETS = 8 * 1024;

/**
 * Sits between a client's TCP socket and node's HTTP parser and hands the
 * parser one request head at a time, the next only once the response to the
 * previous one has finished. node parses every request of a chunk it reads,
 * so without this gate one 64 KiB write of pipelined requests became ~1,600
 * requests parsed at once (a flood of them cost hundreds of MB and stalled
 * the event loop the reflector's timestamps share). Octets beyond
 * `maxPipelined` complete heads, or a head over MAX_HEAD_OCTETS, close the
 * connection; while a request is answered the socket is paused, so a client
 * that keeps writing meets TCP back-pressure, not our memory.
 */
class RequestGate extends Duplex {
  private buffered: Buffer = Buffer.alloc(0);
  private answering = false;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;

  constructor(readonly raw: Socket, private readonly maxPipelined: number, private readonly onOverflow: () => void) {
    super({ allowHalfOpen: false });
    this.remoteAddress = raw.remoteAddress;
    this.remotePort = raw.remotePort;
    raw.on('data', (d: Buffer) => { this.onRaw(d); });
    raw.on('end', () => { this.push(null); });
    raw.on('close', () => { this.destroy(); });
    raw.on('error', () => { this.destroy(); });
  }

  /** The response to the request handed over last has finished: hand over the next one. */
  responseDone(): void {
    this.answering = false;
    this.pump();
  }

  private onRaw(d: Buffer): void {
    this.buffered = this.buffered.length === 0 ? d : Buffer.concat([this.buffered, d]);
    if (this.buffered.length > MAX_HEAD_OCTETS * (this.maxPipelined + 1) || countHeads(this.buffered, this.maxPipelined + 1) > this.maxPipelined) {
      this.onOverflow();
      this.raw.destroy();
      return;
    }
    this.pump();
  }

  private pump(): void {
    if (this.answering) { this.raw.pause(); return; }
    const end = this.buffered.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.buffered.length > MAX_HEAD_OCTETS) { this.onOverflow(); this.raw.destroy(); return; }
      this.raw.resume();
      return;
    }
    const head = this.buffered.subarray(0, end + 4);
    this.buffered = this.buffered.subarray(end + 4);
    this.answering = true;
    this.push(head);
  }

  override _read(): void { /* data is pushed by pump() */ }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void { this.raw.write(chunk, cb); }
  override _final(cb: (e?: Error | null) => void): void { this.raw.end(() => { this.raw.destroy(); }); cb(); }
  override _destroy(e: Error | null, cb: (e?: Error | null) => void): void { this.raw.destroy(); cb(e); }
}

/** Complete request heads in `b`, counting no further than `limit`. */
function countHeads(b: Buffer, limit: number): number {
  let n = 0;
  for (let i = b.indexOf('\r\n\r\n'); i >= 0 && n < limit; i = b.indexOf('\r\n\r\n', i + 4)) n++;
  return n;
}

/** What the endpoint has refused, for tests and logs. */
export interface PrometheusEndpointStats {
  /** Collections run for HTTP scrapes (render() calls by others are not counted). */
  collections: number;
  /** Idle connections closed to make room for a new one. */
  evicted: number;
  /** New connections closed because every held connection was busy. */
  refused: number;
  /** Connections closed for pipelining more than maxPipelined requests. */
  pipelineClosed: number;
  /** Requests answered 429 (over maxScrapesPerSecond). */
  rateLimited: number;
}

const TEXT = 'text/plain; charset=utf-8';

/**
 * Answers `GET /probe` (docs/configuration.md "Probe endpoint (multi-target)"); the agent
 * sets one when its file has `modules:`. Its requests pass the same gate,
 * connection limits and scrape rate as the metrics path, never its cache.
 */
export interface ProbeHandler {
  handle(query: URLSearchParams, headers: Record<string, string | string[] | undefined>):
    Promise<{ status: number; headers: Record<string, string>; body: string }>;
  /** The longest handle() may take with these headers. */
  maxDurationMs(headers: Record<string, string | string[] | undefined>): number;
}

/** The probe endpoint's path (blackbox_exporter's and snmp_exporter's). */
const PROBE_PATH = '/probe';

/** End our side once queued writes are flushed, then destroy (a half-open peer cannot hold the socket). */
function closeAfterWrites(socket: Socket): void {
  socket.end(() => { socket.destroy(); });
}

/** Prometheus text exposition on our own http.Server (the stock exporter treats port 0 as 9464). */
export class PrometheusEndpoint {
  readonly reader = new PullMetricReader();
  readonly limits: Readonly<PrometheusLimits>;
  readonly stats: PrometheusEndpointStats = { collections: 0, evicted: 0, refused: 0, pipelineClosed: 0, rateLimited: 0 };
  private server: Server | undefined;
  private front: TcpServer | undefined;
  private readonly serializer: PrometheusSerializer;
  /** Held connections, least recently active first (a Map keeps insertion order). */
  private readonly connections = new Map<RequestGate, ConnectionState>();
  private cached: { body: string; at: number } | undefined;
  private collecting: Promise<string> | undefined;
  private tokens: number;
  private tokensAt = performance.now();

  /** Applied to every collection before it is serialized (retired collectors). */
  filter: ((rm: ResourceMetrics) => ResourceMetrics) | undefined;

  /** Answers /probe when set (the metrics path wins should it be /probe too). */
  probe: ProbeHandler | undefined;

  constructor(private readonly cfg: PrometheusConfig, naming: NamingProfile, limits: Partial<PrometheusLimits> = {}) {
    // legacy profile: the reference's exposition, without otel_scope_* labels.
    this.serializer = new PrometheusSerializer('', false, undefined, false, naming === 'legacy');
    this.limits = { ...PROMETHEUS_LIMIT_DEFAULTS, ...limits };
    this.tokens = this.limits.maxScrapesPerSecond;
  }

  /** Connections the server holds now. */
  get connectionCount(): number {
    return this.connections.size;
  }

  async start(): Promise<{ host: string; port: number; url: string }> {
    const l = this.limits;
    const server = createServer({
      headersTimeout: l.requestTimeoutMs,
      requestTimeout: l.requestTimeoutMs,
      // How often node checks headersTimeout/requestTimeout (default 30 s).
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, l.requestTimeoutMs / 2)),
      maxHeaderSize: 8 * 1024,
    }, (req, res) => { this.onRequest(req, res); });
    server.keepAliveTimeout = l.keepAliveTimeoutMs;
    server.maxRequestsPerSocket = l.maxRequestsPerSocket;
    server.on('clientError', (_e, socket: Duplex) => { socket.destroy(); });
    this.server = server;
    // TCP is accepted here and each connection reaches the HTTP server through a RequestGate.
    const front = createTcpServer((raw) => { this.onConnection(raw); });
    this.front = front;
    await new Promise<void>((resolve, reject) => {
      front.once('error', (e: NodeJS.ErrnoException) => reject(new Error(
        `cannot listen for Prometheus scrapes on ${formatHostPort(this.cfg.host, this.cfg.port)}: ${e.code ?? e.message}`)));
      front.listen({ host: this.cfg.host, port: this.cfg.port }, () => resolve());
    });
    const a = front.address();
    const port = a && typeof a === 'object' ? a.port : this.cfg.port;
    const shown = this.cfg.host === '0.0.0.0' || this.cfg.host === '::' ? 'localhost' : this.cfg.host;
    return { host: this.cfg.host, port, url: `http://${formatHostPort(shown, port)}${this.cfg.path}` };
  }

  /** Render the current exposition (also used by tests and the probe); not cached. */
  async render(): Promise<string> {
    const { resourceMetrics, errors } = await this.reader.collect();
    if (errors.length) process.stderr.write(`metric collection errors: ${errors.map(String).join('; ')}\n`);
    const rm = resourceMetrics as ResourceMetrics;
    return this.serializer.serialize(this.filter ? this.filter(rm) : rm);
  }

  /** The exposition for a scrape: the cached one while fresh, else one collection shared by all waiting scrapes. */
  private scrapeBody(): Promise<string> {
    const c = this.cached;
    if (c && performance.now() - c.at < this.limits.cacheMs) return Promise.resolve(c.body);
    if (this.collecting) return this.collecting;
    this.stats.collections++;
    const p = this.render().then((body) => {
      this.cached = { body, at: performance.now() };
      return body;
    }).finally(() => { this.collecting = undefined; });
    this.collecting = p;
    return p;
  }

  /**
   * Hold at most maxConnections: make room by closing the longest-idle one,
   * or refuse this one. A connection with nothing to do for requestTimeoutMs
   * (no request completing, a response not read), or idle for
   * keepAliveTimeoutMs after a response, is closed.
   */
  private onConnection(raw: Socket): void {
    raw.on('error', () => { raw.destroy(); });
    const gate = new RequestGate(raw, this.limits.maxPipelined, () => { this.stats.pipelineClosed++; });
    const st: ConnectionState = { inFlight: 0, requests: 0 };
    this.connections.set(gate, st);
    raw.once('close', () => { this.connections.delete(gate); });
    raw.setTimeout(this.limits.requestTimeoutMs, () => { raw.destroy(); });
    if (this.connections.size > this.limits.maxConnections && !this.evictIdle(gate)) {
      this.connections.delete(gate);
      raw.destroy();
      this.stats.refused++;
      return;
    }
    this.server!.emit('connection', gate);
  }

  /** Close the longest-idle held connection other than `keep`; false when every one is busy. */
  private evictIdle(keep: RequestGate): boolean {
    for (const [g, st] of this.connections) {
      if (g !== keep && st.inFlight === 0) {
        this.connections.delete(g);
        g.raw.destroy();
        this.stats.evicted++;
        return true;
      }
    }
    return false;
  }

  /** Token bucket over all clients: maxScrapesPerSecond, burst as large. */
  private takeToken(): boolean {
    const now = performance.now();
    const max = this.limits.maxScrapesPerSecond;
    this.tokens = Math.min(max, this.tokens + ((now - this.tokensAt) / 1000) * max);
    this.tokensAt = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const gate = req.socket as unknown as RequestGate;
    const st = this.connections.get(gate);
    if (st === undefined || gate.raw.destroyed) {
      gate.raw.destroy();
      return;
    }
    st.requests++;
    st.inFlight++;
    gate.raw.setTimeout(this.limits.requestTimeoutMs);
    res.once('close', () => {
      st.inFlight--;
      // Most recently active last: eviction takes the longest idle.
      if (this.connections.delete(gate)) this.connections.set(gate, st);
    });
    res.once('finish', () => {
      // node says `Connection: close` on the last allowed response but leaves the connection open.
      if (st.requests >= this.limits.maxRequestsPerSocket || !res.shouldKeepAlive) { closeAfterWrites(gate.raw); return; }
      gate.raw.setTimeout(this.limits.keepAliveTimeoutMs);
      gate.responseDone();
    });
    void this.handle(req, res).catch(() => { gate.raw.destroy(); });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // A scrape has no body; one announced is not read, and the connection closes after the answer.
    const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
    if (hasBody) res.shouldKeepAlive = false;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const probe = this.probe;
    if (probe && path === PROBE_PATH && path !== this.cfg.path) {
      await this.handleProbe(probe, req, res, q < 0 ? '' : url.slice(q + 1));
      return;
    }
    if (path !== this.cfg.path) {
      res.writeHead(404, { 'content-type': TEXT });
      res.end(`not found: metrics are at ${this.cfg.path}${probe ? `, probes at ${PROBE_PATH}` : ''}\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' });
      res.end();
      return;
    }
    if (this.refusedOverRate(res)) return;
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end();
      return;
    }
    try {
      const body = await this.scrapeBody();
      if (res.destroyed) return;
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(body);
    } catch (e) {
      if (res.destroyed) return;
      res.writeHead(500, { 'content-type': TEXT });
      res.end(`collection failed: ${messageOf(e)}\n`);
    }
  }

  /** Over maxScrapesPerSecond (metrics and probes together): 429, and the connection closes after it. */
  private refusedOverRate(res: ServerResponse): boolean {
    if (this.takeToken()) return false;
    this.stats.rateLimited++;
    res.shouldKeepAlive = false;
    res.writeHead(429, { 'content-type': TEXT, 'retry-after': '1' });
    res.end('too many scrapes\n');
    return true;
  }

  /** /probe: GET only, one scrape token like a metrics request, no cache; the connection waits as long as the probe may run. */
  private async handleProbe(probe: ProbeHandler, req: IncomingMessage, res: ServerResponse, query: string): Promise<void> {
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' });
      res.end();
      return;
    }
    if (this.refusedOverRate(res)) return;
    const raw = (req.socket as unknown as RequestGate).raw;
    raw.setTimeout(this.limits.requestTimeoutMs + probe.maxDurationMs(req.headers));
    let answer: Awaited<ReturnType<ProbeHandler['handle']>>;
    try {
      answer = await probe.handle(new URLSearchParams(query), req.headers);
    } catch (e) {
      answer = { status: 500, headers: { 'content-type': TEXT }, body: `probe failed: ${messageOf(e)}\n` };
    }
    if (res.destroyed) return;
    if (answer.status === 429 || answer.status === 503) res.shouldKeepAlive = false;
    res.writeHead(answer.status, answer.headers);
    res.end(answer.body);
  }

  async stop(): Promise<void> {
    const front = this.front;
    this.front = undefined;
    this.server = undefined;
    if (!front) return;
    for (const gate of this.connections.keys()) gate.raw.destroy();
    this.connections.clear();
    await new Promise<void>((r) => front.close(() => r()));
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
