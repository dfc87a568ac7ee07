// An in-repo OTLP/HTTP metrics receiver for end-to-end tests, so they need no
// OpenTelemetry Collector binary (docs/configuration.md "OTLP and the environment").
//
// POST /v1/metrics on 127.0.0.1 (ephemeral port) with
//   - application/json        OTLP/JSON (lowerCamelCase, enums as integers,
//                             64-bit integers as strings or numbers)
//   - application/x-protobuf  ExportMetricsServiceRequest, decoded with
//                             protobufjs from the trimmed upstream protos in
//                             test/fixtures/otlp (an independent decoder, not
//                             the SDK's own serializer)
// optionally `content-encoding: gzip` (or deflate). Answers 200 with an empty
// ExportMetricsServiceResponse in the request's format. Every request is
// recorded with its headers, the decoded body, and a normalized view that
// is the same for both encodings.

import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { EventEmitter } from 'node:events';
import { gunzipSync, inflateSync } from 'node:zlib';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import type { Type } from 'protobufjs';
import { repoRoot } from './peers.js';

export type AttrValue = string | number | boolean;

export interface OtlpPoint {
  attributes: Record<string, AttrValue>;
  /** asInt / asDouble for gauges and sums; `sum` for histograms. */
  value: number;
  startTimeUnixNano: string;
  timeUnixNano: string;
  /** Which oneof field carried the value ('asInt' | 'asDouble'); undefined when neither was present (value 0). */
  valueField?: 'asInt' | 'asDouble';
  /** Histograms only. */
  count?: number;
}

export interface OtlpMetric {
  scope: string;
  scopeVersion: string;
  name: string;
  unit: string;
  description: string;
  kind: 'gauge' | 'sum' | 'histogram';
  temporality?: 'delta' | 'cumulative';
  monotonic?: boolean;
  points: OtlpPoint[];
}

/** One ResourceMetrics, normalized. */
export interface OtlpExport {
  resource: Record<string, unknown>;
  metrics: OtlpMetric[];
}

export interface OtlpRequest {
  /** 0, 1, 2, … in arrival order (all requests, failed ones included). */
  seq: number;
  /** Date.now() when the body was complete. */
  receivedAt: number;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  contentType: string;
  contentEncoding: string | undefined;
  format: 'json' | 'protobuf' | undefined;
  /** Octets on the wire (before decompression). */
  bodyBytes: number;
  status: number;
  /** Why the request was refused (status ≥ 400). */
  error?: string;
  /** The decoded request: parsed JSON, or the protobufjs message as a plain object (longs as strings). */
  decoded?: unknown;
  /** Usually one entry: the SDK sends one resource per request. */
  exports: OtlpExport[];
}

export interface OtlpReceiverOptions {
  host?: string;
  /** Accepted path; default '/v1/metrics'. */
  path?: string;
}

// ------------------------------------------------------------------ protobuf

const FIXTURES = join(repoRoot(), 'test', 'fixtures', 'otlp');
const SERVICE_PROTO = 'opentelemetry/proto/collector/metrics/v1/metrics_service.proto';

let types: { request: Type; response: Type } | undefined;

function protoTypes(): { request: Type; response: Type } {
  if (types) return types;
  const root = new protobuf.Root();
  // imports are written relative to the fixture root, like upstream's include path
  root.resolvePath = (_origin, target) => (target.startsWith('/') ? target : join(FIXTURES, target));
  root.loadSync(SERVICE_PROTO);
  root.resolveAll();
  types = {
    request: root.lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest'),
    response: root.lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceResponse'),
  };
  return types;
}

/** Decode an ExportMetricsServiceRequest into the OTLP/JSON-like plain object shape. */
export function decodeProtobufRequest(body: Uint8Array): unknown {
  const { request } = protoTypes();
  const msg = request.decode(body);
  // camelCase names, 64-bit integers as decimal strings, enums as numbers, bytes as base64: OTLP/JSON-like
  return request.toObject(msg, { longs: String, enums: Number, bytes: String, defaults: false, arrays: true, oneofs: false });
}

// ----------------------------------------------------------- normalization

type Json = Record<string, unknown>;

function isObj(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '') {
    if (v === 'NaN') return NaN;
    if (v === 'Infinity') return Infinity;
    if (v === '-Infinity') return -Infinity;
    const n = Number(v);
    if (Number.isFinite(n)) return n;
  }
  throw new Error(`not a number: ${JSON.stringify(v)}`);
}

/** 64-bit timestamps: decimal string (either encoding may use a number). */
function toNanoString(v: unknown): string {
  if (v === undefined) return '0';
  if (typeof v === 'string' && /^\d+$/.test(v)) return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v).toString();
  throw new Error(`not a 64-bit unsigned integer: ${JSON.stringify(v)}`);
}

function anyValue(v: unknown): unknown {
  if (!isObj(v)) return undefined;
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) return toNumber(v.intValue);
  if ('doubleValue' in v) return toNumber(v.doubleValue);
  if ('arrayValue' in v) return arr((v.arrayValue as Json | undefined)?.values).map(anyValue);
  if ('kvlistValue' in v) return keyValues((v.kvlistValue as Json | undefined)?.values);
  if ('bytesValue' in v) return v.bytesValue;
  return undefined; // empty AnyValue
}

function keyValues(list: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of arr(list)) {
    if (!isObj(kv) || typeof kv.key !== 'string') throw new Error(`bad KeyValue: ${JSON.stringify(kv)}`);
    out[kv.key] = anyValue(kv.value);
  }
  return out;
}

function pointAttributes(list: unknown): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const [k, v] of Object.entries(keyValues(list))) {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw new Error(`attribute ${k}: expected a scalar, got ${JSON.stringify(v)}`);
    }
    out[k] = v;
  }
  return out;
}

/** OTLP/JSON allows enum names as well as integers. */
function temporalityOf(v: unknown): 'delta' | 'cumulative' | undefined {
  if (v === 1 || v === 'AGGREGATION_TEMPORALITY_DELTA') return 'delta';
  if (v === 2 || v === 'AGGREGATION_TEMPORALITY_CUMULATIVE') return 'cumulative';
  return undefined;
}

function numberPoint(p: unknown): OtlpPoint {
  if (!isObj(p)) throw new Error(`bad data point: ${JSON.stringify(p)}`);
  const point: OtlpPoint = {
    attributes: pointAttributes(p.attributes),
    value: 0,
    startTimeUnixNano: toNanoString(p.startTimeUnixNano),
    timeUnixNano: toNanoString(p.timeUnixNano),
  };
  if (p.asInt !== undefined) {
    point.value = toNumber(p.asInt);
    point.valueField = 'asInt';
  } else if (p.asDouble !== undefined) {
    point.value = toNumber(p.asDouble);
    point.valueField = 'asDouble';
  }
  return point;
}

function histogramPoint(p: unknown): OtlpPoint {
  if (!isObj(p)) throw new Error(`bad data point: ${JSON.stringify(p)}`);
  return {
    attributes: pointAttributes(p.attributes),
    value: p.sum === undefined ? 0 : toNumber(p.sum),
    count: p.count === undefined ? 0 : toNumber(p.count),
    startTimeUnixNano: toNanoString(p.startTimeUnixNano),
    timeUnixNano: toNanoString(p.timeUnixNano),
  };
}

/** Normalize an ExportMetricsServiceRequest given as OTLP/JSON (or the protobuf decoder's plain object). */
export function normalizeRequest(body: unknown): OtlpExport[] {
  if (!isObj(body)) throw new Error('request body is not an object');
  return arr(body.resourceMetrics).map((rm): OtlpExport => {
    if (!isObj(rm)) throw new Error('bad ResourceMetrics');
    const resource = keyValues(isObj(rm.resource) ? rm.resource.attributes : undefined);
    const metrics: OtlpMetric[] = [];
    for (const sm of arr(rm.scopeMetrics)) {
      if (!isObj(sm)) throw new Error('bad ScopeMetrics');
      const scope = isObj(sm.scope) ? sm.scope : {};
      for (const m of arr(sm.metrics)) {
        if (!isObj(m)) throw new Error('bad Metric');
        const base = {
          scope: typeof scope.name === 'string' ? scope.name : '',
          scopeVersion: typeof scope.version === 'string' ? scope.version : '',
          name: String(m.name ?? ''),
          unit: String(m.unit ?? ''),
          description: String(m.description ?? ''),
        };
        if (isObj(m.gauge)) {
          metrics.push({ ...base, kind: 'gauge', points: arr(m.gauge.dataPoints).map(numberPoint) });
        } else if (isObj(m.sum)) {
          const t = temporalityOf(m.sum.aggregationTemporality);
          metrics.push({
            ...base, kind: 'sum', ...(t ? { temporality: t } : {}), monotonic: m.sum.isMonotonic === true,
            points: arr(m.sum.dataPoints).map(numberPoint),
          });
        } else if (isObj(m.histogram)) {
          const t = temporalityOf(m.histogram.aggregationTemporality);
          metrics.push({ ...base, kind: 'histogram', ...(t ? { temporality: t } : {}), points: arr(m.histogram.dataPoints).map(histogramPoint) });
        } else {
          throw new Error(`metric ${base.name}: no gauge, sum or histogram (unsupported data: ${Object.keys(m).join(', ')})`);
        }
      }
    }
    return { resource, metrics };
  });
}

// --------------------------------------------------------------- queries

/** Every metric named `name` in the request (normally zero or one). */
export function metricsNamed(req: OtlpRequest, name: string): OtlpMetric[] {
  return req.exports.flatMap((e) => e.metrics.filter((m) => m.name === name));
}

/** The metric named `name`; undefined when absent, throws when it appears twice. */
export function metricOf(req: OtlpRequest, name: string): OtlpMetric | undefined {
  const ms = metricsNamed(req, name);
  if (ms.length > 1) throw new Error(`request #${req.seq}: ${name} appears ${ms.length} times`);
  return ms[0];
}

/** Points of `name` whose attributes include `attrs`. */
export function pointsOf(req: OtlpRequest, name: string, attrs: Record<string, AttrValue> = {}): OtlpPoint[] {
  return metricsNamed(req, name).flatMap((m) =>
    m.points.filter((p) => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v)));
}

/** The single value of `name` matching `attrs`; undefined when absent, throws when ambiguous. */
export function valueOf(req: OtlpRequest, name: string, attrs: Record<string, AttrValue> = {}): number | undefined {
  const ps = pointsOf(req, name, attrs);
  if (ps.length > 1) throw new Error(`request #${req.seq}: ${ps.length} points of ${name} match ${JSON.stringify(attrs)}`);
  return ps[0]?.value;
}

/** Metric names in the request, sorted. */
export function namesOf(req: OtlpRequest): string[] {
  return req.exports.flatMap((e) => e.metrics.map((m) => m.name)).sort();
}

// ---------------------------------------------------------------- server

const MAX_BODY = 64 * 1024 * 1024;

export class OtlpReceiver {
  readonly requests: OtlpRequest[] = [];
  private readonly events = new EventEmitter();
  private server: Server | undefined;
  private port = 0;
  private readonly host: string;
  private readonly path: string;

  private constructor(o: OtlpReceiverOptions) {
    this.host = o.host ?? '127.0.0.1';
    this.path = o.path ?? '/v1/metrics';
    this.events.setMaxListeners(0);
  }

  /** Start a receiver on an ephemeral loopback port. */
  static async start(o: OtlpReceiverOptions = {}): Promise<OtlpReceiver> {
    protoTypes(); // fail early on a broken fixture
    const r = new OtlpReceiver(o);
    await r.listen();
    return r;
  }

  private async listen(): Promise<void> {
    const server = createServer((req, res) => { void this.handle(req, res); });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.host, port: 0 }, () => resolve());
    });
    const a = server.address();
    if (!a || typeof a === 'string') throw new Error(`OtlpReceiver: unexpected address ${String(a)}`);
    this.port = a.port;
  }

  /** Base URL (for OTEL_EXPORTER_OTLP_ENDPOINT), e.g. http://127.0.0.1:41234 */
  get url(): string {
    return `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  /** The metrics URL (for the `otlp.endpoint` key / OTEL_EXPORTER_OTLP_METRICS_ENDPOINT). */
  get metricsUrl(): string {
    return `${this.url}${this.path}`;
  }

  /** Successfully decoded metrics requests, in arrival order. */
  get accepted(): OtlpRequest[] {
    return this.requests.filter((r) => r.status === 200);
  }

  /** A position in the request log: pass it as `since` to wait only for later requests. */
  mark(): number {
    return this.requests.length;
  }

  /**
   * The first accepted request (at log position ≥ since) for which `predicate`
   * holds; waits for it at most `timeoutMs`, then rejects with a summary of
   * what did arrive.
   */
  waitFor(predicate: (r: OtlpRequest) => boolean, timeoutMs: number, since = 0, what = 'a matching OTLP request'): Promise<OtlpRequest> {
    const test = (r: OtlpRequest): boolean => {
      if (r.seq < since || r.status !== 200) return false;
      try {
        return predicate(r);
      } catch {
        return false;
      }
    };
    const found = this.requests.find(test);
    if (found) return Promise.resolve(found);
    return new Promise<OtlpRequest>((resolve, reject) => {
      const onRequest = (r: OtlpRequest): void => {
        if (!test(r)) return;
        clearTimeout(timer);
        this.events.off('request', onRequest);
        resolve(r);
      };
      const timer = setTimeout(() => {
        this.events.off('request', onRequest);
        reject(new Error(`OtlpReceiver: no ${what} within ${timeoutMs} ms; ${this.summary(since)}`));
      }, timeoutMs);
      this.events.on('request', onRequest);
    });
  }

  /** `count` accepted requests at log position ≥ since (bounded wait). */
  async waitForCount(count: number, timeoutMs: number, since = 0): Promise<OtlpRequest[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = this.requests.filter((r) => r.seq >= since && r.status === 200);
      if (got.length >= count) return got.slice(0, count);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`OtlpReceiver: ${got.length} of ${count} requests within ${timeoutMs} ms; ${this.summary(since)}`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(t);
          this.events.off('request', done);
          resolve();
        };
        const t = setTimeout(done, left);
        this.events.on('request', done);
      });
    }
  }

  private summary(since: number): string {
    const rs = this.requests.filter((r) => r.seq >= since);
    if (rs.length === 0) return `no requests since #${since} (${this.requests.length} in all)`;
    const last = rs[rs.length - 1]!;
    const failed = rs.filter((r) => r.status !== 200);
    return `${rs.length} request(s) since #${since}` +
      (failed.length ? `, ${failed.length} refused (last: ${failed[failed.length - 1]!.status} ${failed[failed.length - 1]!.error ?? ''})` : '') +
      `; last #${last.seq} ${last.method} ${last.path} ${last.contentType}: ${namesOf(last).join(', ') || '(no metrics)'}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > MAX_BODY) { tooBig = true; break; }
      chunks.push(c);
    }
    const contentType = String(req.headers['content-type'] ?? '');
    const mime = contentType.split(';')[0]!.trim().toLowerCase();
    const encodingHeader = req.headers['content-encoding'];
    const rec: OtlpRequest = {
      seq: this.requests.length,
      receivedAt: Date.now(),
      method: req.method ?? '',
      path: (req.url ?? '/').split('?')[0]!,
      headers: req.headers,
      contentType,
      contentEncoding: typeof encodingHeader === 'string' ? encodingHeader : undefined,
      format: mime === 'application/json' ? 'json' : mime === 'application/x-protobuf' ? 'protobuf' : undefined,
      bodyBytes: size,
      status: 200,
      exports: [],
    };
    const refuse = (status: number, error: string): void => {
      rec.status = status;
      rec.error = error;
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${error}\n`);
    };
    try {
      if (tooBig) refuse(413, 'body too large');
      else if (rec.path !== this.path) refuse(404, `not found: metrics are accepted at ${this.path}`);
      else if (rec.method !== 'POST') refuse(405, 'POST only');
      else if (!rec.format) refuse(415, `unsupported content-type "${contentType}"`);
      else {
        let body: Buffer = Buffer.concat(chunks);
        const enc = rec.contentEncoding?.trim().toLowerCase();
        if (enc === 'gzip') body = gunzipSync(body);
        else if (enc === 'deflate') body = inflateSync(body);
        else if (enc && enc !== 'identity') throw new HttpError(415, `unsupported content-encoding "${enc}"`);
        rec.decoded = rec.format === 'json' ? JSON.parse(body.toString('utf8')) : decodeProtobufRequest(body);
        rec.exports = normalizeRequest(rec.decoded);
        if (rec.format === 'json') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{}');
        } else {
          // an empty ExportMetricsServiceResponse encodes to zero octets
          const out = protoTypes().response.encode(protoTypes().response.create({})).finish();
          res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': String(out.length) });
          res.end(Buffer.from(out));
        }
      }
    } catch (e) {
      if (e instanceof HttpError) refuse(e.status, e.message);
      else refuse(400, `cannot decode ${rec.format ?? ''} body: ${(e as Error).message}`);
    }
    this.requests.push(rec);
    this.events.emit('request', rec);
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}
