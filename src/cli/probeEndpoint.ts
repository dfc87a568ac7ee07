/**
 * `GET /probe?target=HOST[:PORT]&module=NAME` on the agent's Prometheus
 * endpoint: the multi-target exporter pattern of blackbox_exporter and
 * snmp_exporter (docs/configuration.md "Probe endpoint (multi-target)"). Each request runs
 * one TWAMP test session with a named module (a `twamp_sender` template from
 * the agent file's `modules:`) and answers its results in the Prometheus text
 * format: the sender's gauges under the agent's naming profile (a TwampSender
 * on a throwaway MeterProvider, so names, units, Views and relabel rules are
 * exactly a collector's), plus `probe_success`, `probe_duration_seconds` and
 * `probe_failure_reason`.
 *
 * A failed session is a successful scrape (HTTP 200, probe_success 0: the
 * blackbox convention); refusals of the request itself are HTTP errors:
 * 400 (unknown module, bad target), 403 (target outside the allow list),
 * 429 (rate), 503 (concurrency).
 */
import { isIP } from 'node:net';
import { MeterProvider, DataPointType, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import type { NamingProfile, ProbeConfig, ProbeModuleConfig, SenderConfig } from '../config/types.js';
import { isHostOrIp } from '../config/schema.js';
import { TwampSender } from '../sender.js';
import { createTrafficModel } from '../measure/models.js';
import { createTwampViews } from '../otel/views.js';
import { attributeKey, prometheusLabelName } from '../otel/attributes.js';
import { ClientAcl, type Cidr, unmapAddress, formatHostPort } from '../util/net.js';
import { resolveHost } from '../session/address.js';
import { TwampSessionError, FAILURE_REASONS, type FailureReason } from '../session/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { PullMetricReader, type ProbeHandler } from './exporters.js';
import { messageOf } from '../util/errors.js';

/** A scrape timeout above this is taken as this (a probe holds a concurrency slot that long). */
const PROBE_MAX_TIMEOUT_MS = 300_000;
/**
 * Taken off the scrape timeout so the answer reaches Prometheus before it
 * gives up (blackbox_exporter's --timeout-offset, 0.5 s).
 */
const PROBE_TIMEOUT_OFFSET_MS = 500;
/** Per-target rate buckets kept before idle (full) ones are dropped. */
const MAX_TRACKED_TARGETS = 4096;

export interface ProbeAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface ProbeRunnerOptions {
  modules: Readonly<Record<string, ProbeModuleConfig>>;
  probe: ProbeConfig;
  naming: NamingProfile;
  /** Labels every series gets from the agent (legacy: with host), as a collector's. */
  agentLabels?: Record<string, string>;
  logger?: Logger;
}

/** What the runner did, for tests and logs. */
export interface ProbeStats {
  /** Sessions started (DNS included). */
  started: number;
  /** Probes running now. */
  running: number;
  /** Answered 503: max_concurrent probes were running. */
  busy: number;
  /** Answered 429: over max_per_second or max_per_target_per_second. */
  rateLimited: number;
  /** Answered 403: target outside the allow list. */
  forbidden: number;
}

const EXPOSITION = 'text/plain; version=0.0.4; charset=utf-8';
const TEXT = 'text/plain; charset=utf-8';

class Bucket {
  tokens: number;
  at = performance.now();
  constructor(readonly rate: number) {
    this.tokens = Math.max(1, rate);
  }

  private refill(now: number): void {
    this.tokens = Math.min(Math.max(1, this.rate), this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
  }

  take(): boolean {
    this.refill(performance.now());
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  full(): boolean {
    this.refill(performance.now());
    return this.tokens >= Math.max(1, this.rate);
  }
}

/** Runs /probe requests: validation, limits, allow list, one sender session each. */
export class ProbeRunner implements ProbeHandler {
  readonly stats: ProbeStats = { started: 0, running: 0, busy: 0, rateLimited: 0, forbidden: 0 };
  private readonly global: Bucket;
  private readonly perTarget = new Map<string, Bucket>();
  private readonly acl: ClientAcl | undefined;
  private readonly moduleAcl = new Map<string, ClientAcl | undefined>();
  private readonly serializer: PrometheusSerializer;
  private readonly reasonLabel: string;
  private readonly log: Logger;

  constructor(private readonly opts: ProbeRunnerOptions) {
    this.global = new Bucket(opts.probe.maxPerSecond);
    this.acl = aclOf(opts.probe.allow);
    for (const [name, m] of Object.entries(opts.modules)) this.moduleAcl.set(name, m.allow ? aclOf(m.allow) : this.acl);
    // As the metrics path: no timestamps, no target_info (the resource is the agent's, not the target's).
    this.serializer = new PrometheusSerializer('', false, undefined, true, opts.naming === 'legacy');
    this.reasonLabel = prometheusLabelName(attributeKey(opts.naming, 'reason')!);
    this.log = opts.logger ?? silentLogger;
  }

  /** The longest a probe can take with these request headers (for the connection's inactivity timeout). */
  maxDurationMs(headers: Record<string, string | string[] | undefined>): number {
    return budgetMs(headers, this.opts.probe) + PROBE_TIMEOUT_OFFSET_MS;
  }

  async handle(query: URLSearchParams, headers: Record<string, string | string[] | undefined>): Promise<ProbeAnswer> {
    const known = Object.keys(this.opts.modules).sort();
    const knownText = known.length ? known.map((k) => JSON.stringify(k)).join(', ') : 'none (add a modules: map to the agent file)';
    const modules = query.getAll('module');
    if (modules.length > 1) return refuse(400, `module: given ${modules.length} times; give one`);
    const moduleName = modules[0] ?? 'default';
    const mod = Object.hasOwn(this.opts.modules, moduleName) ? this.opts.modules[moduleName] : undefined;
    if (!mod) {
      return refuse(400, modules.length === 0
        ? `no module given and no module named "default"; known modules: ${knownText}`
        : `unknown module ${JSON.stringify(moduleName)}; known modules: ${knownText}`);
    }
    const targets = query.getAll('target');
    if (targets.length !== 1 || targets[0] === '') {
      return refuse(400, targets.length > 1 ? `target: given ${targets.length} times; give one` : 'target parameter is required: /probe?target=HOST[:PORT]&module=NAME');
    }
    const target = parseProbeTarget(targets[0]!);
    if (typeof target === 'string') return refuse(400, `target ${JSON.stringify(targets[0])}: ${target}`);
    const port = target.port ?? mod.sender.port;

    const acl = this.moduleAcl.get(moduleName);
    const listName = mod.allow ? `modules.${moduleName}.allow` : 'probe.allow';
    if (!acl) {
      this.stats.forbidden++;
      return refuse(403, `target ${JSON.stringify(targets[0])} refused: ${listName} is empty, so every target is refused; ` +
        'list the networks this agent may probe (e.g. probe: { allow: [192.0.2.0/24] })');
    }
    if (this.stats.running >= this.opts.probe.maxConcurrent) {
      this.stats.busy++;
      return refuse(503, `too many probes running (probe.max_concurrent ${this.opts.probe.maxConcurrent}); try again later`, { 'retry-after': '1' });
    }
    const key = `${target.host.toLowerCase()}|${port}`;
    if (!this.global.take()) {
      this.stats.rateLimited++;
      return refuse(429, `too many probes (probe.max_per_second ${this.opts.probe.maxPerSecond}, all targets together)`, { 'retry-after': '1' });
    }
    if (!this.targetBucket(key).take()) {
      this.stats.rateLimited++;
      return refuse(429, `target ${JSON.stringify(targets[0])} probed too often (probe.max_per_target_per_second ${this.opts.probe.maxPerTargetPerSecond})`, { 'retry-after': '1' });
    }

    this.stats.running++;
    this.stats.started++;
    const t0 = performance.now();
    try {
      const display = formatHostPort(target.host, port);
      // Resolved once: the address checked is the address the session uses (no second lookup to answer otherwise).
      let address: string;
      try {
        address = unmapAddress((await resolveHost(target.host, display)).address);
      } catch (e) {
        const reason = e instanceof TwampSessionError ? e.reason : 'dns';
        return this.answer('', { ok: false, reason, message: messageOf(e) }, t0);
      }
      const why = acl.check(address);
      if (why !== undefined) {
        this.stats.forbidden++;
        return refuse(403, `target ${JSON.stringify(targets[0])} (address ${address}) refused: not in ${listName}`);
      }
      const budget = budgetMs(headers, this.opts.probe);
      const config: SenderConfig = { ...mod.sender, reflector: address, port };
      const needMs = (config.nPackets / createTrafficModel(config.model).meanPps) * 1000 + config.replyTimeoutMs;
      if (needMs > budget) {
        return this.answer('', {
          ok: false, reason: 'timeout',
          message: `module ${JSON.stringify(moduleName)} needs at least ${(needMs / 1000).toFixed(1)} s (packets and reply_timeout), ` +
            `the scrape timeout leaves ${(budget / 1000).toFixed(1)} s; raise scrape_timeout or lower n_packets/reply_timeout`,
        }, t0);
      }
      const { exposition, outcome } = await this.runSession(config, budget, display);
      return this.answer(exposition, outcome, t0);
    } finally {
      this.stats.running--;
    }
  }

  private targetBucket(key: string): Bucket {
    let b = this.perTarget.get(key);
    if (b) return b;
    if (this.perTarget.size >= MAX_TRACKED_TARGETS) {
      for (const [k, v] of this.perTarget) if (v.full()) this.perTarget.delete(k);
    }
    b = new Bucket(this.opts.probe.maxPerTargetPerSecond);
    // Still full of busy targets: the oldest goes (the global bucket bounds how fast new ones come).
    if (this.perTarget.size >= MAX_TRACKED_TARGETS) this.perTarget.delete(this.perTarget.keys().next().value!);
    this.perTarget.set(key, b);
    return b;
  }

  /** One session on a throwaway MeterProvider; the gauges it exports, serialized as on the metrics path. */
  private async runSession(config: SenderConfig, budgetMs: number, display: string):
    Promise<{ exposition: string; outcome: Outcome }> {
    const reader = new PullMetricReader();
    const agentLabels = this.opts.agentLabels ?? {};
    const provider = new MeterProvider({
      resource: resourceFromAttributes({}),
      readers: [reader],
      views: createTwampViews([config], { naming: this.opts.naming, agentLabels }),
    });
    // A failed probe is data (probe_success 0), not an agent problem: the sender's warnings go to debug.
    const log = this.log;
    const quiet: Logger = { debug: (m) => log.debug(m), info: (m) => log.debug(m), warn: (m) => log.debug(m), error: (m) => log.debug(m) };
    const sender = new TwampSender(config, { meterProvider: provider, labels: agentLabels, logger: quiet, naming: this.opts.naming });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; void sender.stop(); }, budgetMs);
    try {
      await sender.start();
      // start() runs the first session at once; runOnce() joins it (runs never overlap).
      const o = sender.lastOutcome ?? await sender.runOnce();
      clearTimeout(timer);
      const outcome: Outcome = o.ok ? { ok: true }
        : timedOut ? { ok: false, reason: 'timeout', message: `${display}: no result within the scrape timeout (${(budgetMs / 1000).toFixed(1)} s)` }
          : { ok: false, reason: o.reason, message: o.error.message };
      let exposition = '';
      if (!timedOut) {
        const { resourceMetrics } = await reader.collect();
        exposition = this.serializer.serialize(gaugesOnly(resourceMetrics));
      }
      return { exposition, outcome };
    } finally {
      clearTimeout(timer);
      await sender.stop().catch(() => undefined);
      await provider.shutdown().catch(() => undefined);
    }
  }

  private answer(exposition: string, outcome: Outcome, t0: number): ProbeAnswer {
    const seconds = (performance.now() - t0) / 1000;
    const lines: string[] = [];
    if (!outcome.ok) lines.push(`# probe failed (${outcome.reason}): ${outcome.message.replace(/[\r\n]+/g, ' ')}`);
    lines.push(
      '# HELP probe_success 1 if the TWAMP test session of this probe succeeded, 0 if it failed',
      '# TYPE probe_success gauge',
      `probe_success ${outcome.ok ? 1 : 0}`,
      '# HELP probe_duration_seconds How long the probe took: name resolution, TWAMP-Control set-up, test packets, last replies',
      '# TYPE probe_duration_seconds gauge',
      `probe_duration_seconds ${seconds}`,
      '# HELP probe_failure_reason 1 for the reason this probe failed, 0 for the others (all 0 on success)',
      '# TYPE probe_failure_reason gauge',
      ...FAILURE_REASONS.map((r) => `probe_failure_reason{${this.reasonLabel}="${r}"} ${!outcome.ok && outcome.reason === r ? 1 : 0}`),
    );
    if (!outcome.ok) this.log.debug(`probe failed (${outcome.reason}): ${outcome.message}`);
    return { status: 200, headers: { 'content-type': EXPOSITION }, body: `${exposition}${lines.join('\n')}\n` };
  }
}

type Outcome = { ok: true } | { ok: false; reason: FailureReason; message: string };

function refuse(status: number, message: string, headers: Record<string, string> = {}): ProbeAnswer {
  return { status, headers: { 'content-type': TEXT, ...headers }, body: `${message}\n` };
}

/** An access list, or undefined when the list is empty (then every target is refused). */
function aclOf(cidrs: readonly Cidr[]): ClientAcl | undefined {
  return cidrs.length ? new ClientAcl(cidrs) : undefined;
}

/**
 * The session's bound: Prometheus's X-Prometheus-Scrape-Timeout-Seconds (or
 * probe.timeout without it), capped at PROBE_MAX_TIMEOUT_MS, less
 * PROBE_TIMEOUT_OFFSET_MS.
 */
function budgetMs(headers: Record<string, string | string[] | undefined>, cfg: ProbeConfig): number {
  const h = headers['x-prometheus-scrape-timeout-seconds'];
  const v = Number(Array.isArray(h) ? h[0] : h);
  const ms = Number.isFinite(v) && v > 0 ? v * 1000 : cfg.timeoutMs;
  return Math.max(100, Math.min(ms, PROBE_MAX_TIMEOUT_MS) - PROBE_TIMEOUT_OFFSET_MS);
}

/** `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 literal; a message when it is none of them. */
export function parseProbeTarget(s: string): { host: string; port: number | undefined } | string {
  let host: string;
  let portText: string | undefined;
  const bracket = /^\[([^\]]*)\](?::(.*))?$/.exec(s);
  if (bracket) {
    host = bracket[1]!;
    portText = bracket[2];
    if (isIP(host) !== 6) return 'expected an IPv6 address inside [ ]';
  } else if (s.split(':').length > 2) {
    host = s;
    if (isIP(host) !== 6) return 'expected HOST, HOST:PORT or [IPv6]:PORT';
  } else {
    const i = s.indexOf(':');
    host = i < 0 ? s : s.slice(0, i);
    portText = i < 0 ? undefined : s.slice(i + 1);
  }
  if (!isHostOrIp(host)) return 'expected a host name or an IPv4/IPv6 address';
  if (portText === undefined) return { host, port: undefined };
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) return `port ${JSON.stringify(portText)}: expected 1–65535`;
  return { host, port };
}

/**
 * Only the gauges: a probe's session is new at every scrape, so a counter or
 * histogram would start from zero each time and never show an increase.
 */
function gaugesOnly(rm: ResourceMetrics): ResourceMetrics {
  return {
    ...rm,
    scopeMetrics: rm.scopeMetrics.map((s) => ({ ...s, metrics: s.metrics.filter((m) => m.dataPointType === DataPointType.GAUGE) })),
  };
}
