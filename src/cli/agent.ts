/**
 * The agent: one MeterProvider, the exporters the config and environment ask
 * for, and one producer per enabled collector. Reflectors start before
 * senders (so a demo sender finds its reflector); a collector that fails to
 * start is logged and the others keep running.
 */
import { MeterProvider, type IMetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { cliResource } from './resource.js';
import type { AgentConfig, CollectorConfig } from '../config/types.js';
import { TwampSender } from '../sender.js';
import { TwampReflector } from '../reflector.js';
import type { Logger } from '../session/log.js';
import { PrometheusEndpoint, createOtlpReader, exportersFromEnv, otlpFromEnv } from './exporters.js';
import { VERSION, METER_NAME } from '../version.js';
import { createTwampViews, type TwampView } from '../otel/views.js';
import { InstrumentSet } from '../otel/instrumentSet.js';
import { AGENT_METRICS } from '../otel/instruments.js';
import { attributeKey } from '../otel/attributes.js';
import { RetiredCollectors } from './staleness.js';

export interface AgentOptions {
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  /** How long series of a removed or restarted collector stay exported (default 5 min). */
  staleGraceMs?: number;
}

export class Agent {
  readonly meterProvider: MeterProvider;
  readonly prometheus: PrometheusEndpoint | undefined;
  private readonly running = new Map<string, { config: CollectorConfig; producer: TwampSender | TwampReflector }>();
  private readonly readers: IMetricReader[] = [];
  private readonly otlpEnabled: boolean;
  readonly views: TwampView[];
  readonly retired: RetiredCollectors;
  private buildInfo: InstrumentSet | undefined;

  constructor(readonly config: AgentConfig, private readonly o: AgentOptions) {
    const env = o.env ?? process.env;
    const wanted = exportersFromEnv(env);
    const promCfg = config.prometheus ?? (wanted?.has('prometheus')
      ? { host: env.OTEL_EXPORTER_PROMETHEUS_HOST ?? '0.0.0.0', port: Number(env.OTEL_EXPORTER_PROMETHEUS_PORT ?? 9464), path: '/metrics' }
      : undefined);
    this.retired = new RetiredCollectors(attributeKey(config.naming, 'collectorId')!, o.staleGraceMs);
    const filter = (rm: ResourceMetrics): ResourceMetrics => this.retired.filter(rm);
    if (promCfg && (!wanted || wanted.has('prometheus'))) {
      this.prometheus = new PrometheusEndpoint(promCfg, config.naming);
      this.prometheus.filter = filter;
      this.readers.push(this.prometheus.reader);
    }
    this.otlpEnabled = wanted ? wanted.has('otlp') : config.otlp !== undefined;
    if (this.otlpEnabled) this.readers.push(createOtlpReader(otlpFromEnv(config.otlp, env), filter));
    this.views = createTwampViews(config.collectors, { naming: config.naming, agentLabels: this.agentLabels() });
    this.meterProvider = new MeterProvider({ resource: cliResource({ host: config.host, env }), readers: this.readers, views: this.views });
  }

  get otlp(): boolean {
    return this.otlpEnabled;
  }

  /** Labels every series gets from the agent: legacy adds `host` (otel: the resource's host.name). */
  private agentLabels(): Record<string, string> {
    return this.config.naming === 'legacy' ? { ...this.config.labels, host: this.config.host } : { ...this.config.labels };
  }

  async start(): Promise<void> {
    const log = this.o.logger;
    this.buildInfo = new InstrumentSet(this.meterProvider.getMeter(METER_NAME, VERSION), AGENT_METRICS, { profile: this.config.naming });
    const info = { ...this.agentLabels(), version: VERSION, node_version: process.versions.node };
    this.buildInfo.start((emit) => emit('build_info', 1, info));
    await this.startCollectors(this.config.collectors);
    if (this.prometheus) {
      const { url } = await this.prometheus.start();
      log.info(`Prometheus metrics at ${url}`);
    }
    if (this.otlpEnabled) log.info('OTLP/HTTP metrics export enabled');
  }

  /** Reflectors first (a sender may measure a reflector of the same agent), then senders. */
  private async startCollectors(collectors: readonly CollectorConfig[]): Promise<void> {
    const log = this.o.logger;
    const common = { meterProvider: this.meterProvider, labels: this.agentLabels(), logger: log, naming: this.config.naming };
    for (const c of collectors) {
      if (c.disabled) { log.info(`[${c.id}] disabled`); continue; }
      this.retired.revive(c.id);
      if (c.type !== 'twamp_reflector') continue;
      const r = new TwampReflector(c, common);
      try {
        await r.start();
        this.running.set(c.id, { config: c, producer: r });
      } catch (e) {
        log.error(`[${c.id}] reflector not started: ${(e as Error).message}`);
      }
    }
    for (const c of collectors) {
      if (c.disabled || c.type !== 'twamp_sender') continue;
      const s = new TwampSender(c, common);
      await s.start();
      this.running.set(c.id, { config: c, producer: s });
      log.info(`[${c.id}] TWAMP sender: ${c.model.model} × ${c.nPackets} to ${c.reflector}:${c.port} every ${c.interval} s`);
    }
  }

  private async stopCollector(id: string): Promise<void> {
    const r = this.running.get(id);
    if (!r) return;
    this.running.delete(id);
    await r.producer.stop();
    this.retired.retire(id);
  }

  get senders(): TwampSender[] {
    return [...this.running.values()].map((r) => r.producer).filter((p): p is TwampSender => p instanceof TwampSender);
  }

  get reflectors(): TwampReflector[] {
    return [...this.running.values()].map((r) => r.producer).filter((p): p is TwampReflector => p instanceof TwampReflector);
  }

  /**
   * Why `next` cannot be applied by restarting collectors alone (exporters,
   * naming, agent labels or the generated Views differ), or undefined.
   */
  needsFullRestart(next: AgentConfig): string | undefined {
    const a = this.config;
    if (JSON.stringify(a.prometheus) !== JSON.stringify(next.prometheus)) return 'the Prometheus endpoint changed';
    if (JSON.stringify(a.otlp) !== JSON.stringify(next.otlp)) return 'the OTLP export changed';
    if (a.naming !== next.naming) return 'the naming profile changed';
    if (a.host !== next.host || JSON.stringify(a.labels) !== JSON.stringify(next.labels)) return 'the agent labels changed';
    const views = createTwampViews(next.collectors, { naming: next.naming, agentLabels: this.agentLabels() });
    if (JSON.stringify(views) !== JSON.stringify(this.views)) return 'metric renames or drops (Views) changed';
    return undefined;
  }

  /**
   * Apply a new configuration by restarting only the collectors whose
   * configuration changed (as Gufo Agent does on SIGHUP). The caller checks
   * needsFullRestart() first.
   */
  async reload(next: AgentConfig): Promise<{ stopped: string[]; started: string[]; restarted: string[]; unchanged: string[] }> {
    const log = this.o.logger;
    const byId = new Map(next.collectors.filter((c) => !c.disabled).map((c) => [c.id, c]));
    const out = { stopped: [] as string[], started: [] as string[], restarted: [] as string[], unchanged: [] as string[] };
    for (const [id, r] of [...this.running]) {
      const n = byId.get(id);
      if (!n) { await this.stopCollector(id); out.stopped.push(id); continue; }
      if (JSON.stringify(n) !== JSON.stringify(r.config)) { await this.stopCollector(id); out.restarted.push(id); }
      else out.unchanged.push(id);
    }
    const toStart = next.collectors.filter((c) => !c.disabled && !this.running.has(c.id));
    for (const c of toStart) if (!out.restarted.includes(c.id)) out.started.push(c.id);
    await this.startCollectors(toStart);
    (this as { config: AgentConfig }).config = next;
    log.info(`configuration reloaded: ${describeChanges(out)}`);
    return out;
  }

  /** Flush a last export with the current results, then stop producers (senders send Stop-Sessions) and close. */
  async stop(): Promise<void> {
    // Flush first: once the producers unregister, their series are no longer observed.
    await this.meterProvider.forceFlush().catch(() => undefined);
    this.buildInfo?.stop();
    const producers = [...this.running.values()];
    this.running.clear();
    await Promise.allSettled(producers.filter((r) => r.producer instanceof TwampSender).map((r) => r.producer.stop()));
    await Promise.allSettled(producers.filter((r) => r.producer instanceof TwampReflector).map((r) => r.producer.stop()));
    await this.meterProvider.shutdown().catch(() => undefined);
    await this.prometheus?.stop();
  }
}

function describeChanges(c: { stopped: string[]; started: string[]; restarted: string[]; unchanged: string[] }): string {
  const part = (what: string, ids: string[]): string | undefined => (ids.length ? `${what} ${ids.join(', ')}` : undefined);
  return [part('restarted', c.restarted), part('started', c.started), part('stopped', c.stopped),
    `${c.unchanged.length} unchanged`].filter(Boolean).join('; ');
}

