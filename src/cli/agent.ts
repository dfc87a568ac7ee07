/**
 * The agent: one MeterProvider, the exporters the config and environment ask
 * for, and one producer per enabled collector. Reflectors start before
 * senders (so a demo sender finds its reflector); a collector that fails to
 * start is logged and the others keep running.
 */
import { MeterProvider, type IMetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { cliResource } from './resource.js';
import type { AgentConfig, CollectorConfig, ReflectorConfig } from '../config/types.js';
import { formatHostPort } from '../util/net.js';
import { TwampSender } from '../sender.js';
import { TwampReflector } from '../reflector.js';
import type { Logger } from '../util/log.js';
import { PrometheusEndpoint, createOtlpReader, exportersFromEnv, otlpFromEnv } from './exporters.js';
import { VERSION, METER_NAME } from '../version.js';
import { createTwampViews, type TwampView } from '../otel/views.js';
import { InstrumentSet } from '../otel/instrumentSet.js';
import { AGENT_METRICS, type AgentMetricKey } from '../otel/instruments.js';
import { attributeKey } from '../otel/attributes.js';
import { RetiredCollectors } from './staleness.js';
import { ProbeRunner } from './probeEndpoint.js';
import { MeshRunner, clashingIds, meshDestinationCaps } from './mesh.js';
import { SessionGate } from '../session/sessionGate.js';
import { messageOf } from '../util/errors.js';

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
  private buildInfo: InstrumentSet<AgentMetricKey> | undefined;
  /** Polls the mesh definition (`mesh:`); its collectors run beside the file's (docs/configuration.md "Mesh"). */
  private mesh: MeshRunner | undefined;
  private meshCollectors: CollectorConfig[] = [];
  /** The cap on sender sessions at once, in total and per reflector (`agent.max_concurrent_sessions`, `max_sessions_per_reflector`). */
  readonly gate: SessionGate;
  /** Reloads and mesh versions are applied one at a time. */
  private applying: Promise<unknown> = Promise.resolve();

  constructor(readonly config: AgentConfig, private readonly opts: AgentOptions) {
    const env = opts.env ?? process.env;
    const wanted = exportersFromEnv(env);
    const promCfg = config.prometheus ?? (wanted?.has('prometheus')
      ? { host: env.OTEL_EXPORTER_PROMETHEUS_HOST ?? '0.0.0.0', port: Number(env.OTEL_EXPORTER_PROMETHEUS_PORT ?? 9464), path: '/metrics' }
      : undefined);
    this.gate = new SessionGate({ maxConcurrent: config.maxConcurrentSessions, maxPerDestination: config.maxSessionsPerReflector });
    this.retired = new RetiredCollectors(attributeKey(config.naming, 'collectorId')!, opts.staleGraceMs);
    const filter = (rm: ResourceMetrics): ResourceMetrics => this.retired.filter(rm);
    if (promCfg && (!wanted || wanted.has('prometheus'))) {
      this.prometheus = new PrometheusEndpoint(promCfg, config.naming);
      this.prometheus.filter = filter;
      // /probe (docs/configuration.md "Probe endpoint (multi-target)"): only with modules configured.
      if (config.modules && config.probe) {
        this.prometheus.probe = new ProbeRunner({
          modules: config.modules, probe: config.probe, naming: config.naming, agentLabels: this.agentLabels(), logger: opts.logger,
        });
      }
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
    const log = this.opts.logger;
    this.buildInfo = new InstrumentSet(this.meterProvider.getMeter(METER_NAME, VERSION), AGENT_METRICS, { profile: this.config.naming });
    const info = { ...this.agentLabels(), version: VERSION, node_version: process.versions.node };
    const agentLabels = this.agentLabels();
    this.buildInfo.start((emit) => {
      emit('build_info', 1, info);
      const gate = this.gate.stats;
      emit('sessions_active', gate.active, agentLabels);
      emit('sessions_queued', gate.queued, agentLabels);
      emit('session_queue_wait', gate.waitMs / 1000, agentLabels);
      const mesh = this.mesh;
      if (!mesh) return;
      emit('mesh_errors', mesh.errors, agentLabels);
      if (mesh.current?.mesh.memberSets.length) emit('mesh_dns_errors', mesh.dnsErrors, agentLabels);
      if (!mesh.current) return;
      emit('mesh_generation', mesh.generation, agentLabels);
      emit('mesh_members', mesh.current.mesh.members.length, agentLabels);
      emit('mesh_senders', mesh.current.plan.senders.length, agentLabels);
    });
    await this.startCollectors(this.config.collectors);
    if (this.config.mesh) {
      this.mesh = new MeshRunner({
        config: this.config.mesh, host: this.config.host, naming: this.config.naming, defaultInterval: this.config.defaultInterval,
        logger: log, apply: (collectors, loaded) => this.applyMesh(collectors, meshDestinationCaps(loaded)),
      });
      await this.mesh.start();
    }
    if (this.prometheus) {
      const { url } = await this.prometheus.start();
      log.info(`Prometheus metrics at ${url}`);
    }
    if (this.otlpEnabled) log.info('OTLP/HTTP metrics export enabled');
  }

  /** Reflectors first (a sender may measure a reflector of the same agent), then senders. */
  private async startCollectors(collectors: readonly CollectorConfig[]): Promise<void> {
    const log = this.opts.logger;
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
        log.error(`[${c.id}] reflector not started: ${messageOf(e)}`);
      }
    }
    for (const c of collectors) {
      if (c.disabled || c.type !== 'twamp_sender') continue;
      const s = new TwampSender(c, { ...common, gate: this.gate });
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

  /** Failed resolutions of the mesh's member sets from DNS. */
  get meshDnsErrors(): number {
    return this.mesh?.dnsErrors ?? 0;
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
    if (JSON.stringify([a.modules, a.probe]) !== JSON.stringify([next.modules, next.probe])) return 'the probe modules or limits changed';
    if (JSON.stringify(a.mesh) !== JSON.stringify(next.mesh)) return 'the mesh source changed';
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
  async reload(next: AgentConfig): Promise<ReloadChanges> {
    return this.serialized(async () => {
      this.gate.setLimits({ maxConcurrent: next.maxConcurrentSessions, maxPerDestination: next.maxSessionsPerReflector });
      const out = await this.applyCollectors([...next.collectors, ...this.meshCollectors]);
      // What runs: a reflector that kept its previous configuration keeps it here too.
      const running = new Map([...this.running].map(([id, r]) => [id, r.config]));
      (this as { config: AgentConfig }).config = { ...next, collectors: next.collectors.map((c) => running.get(c.id) ?? c) };
      this.opts.logger.info(`configuration reloaded: ${describeChanges(out)}`);
      return out;
    });
  }

  /** A new mesh version: start and stop only the mesh collectors that changed; cap sessions to its targets at what they allow a client. */
  private async applyMesh(collectors: CollectorConfig[], caps: ReadonlyMap<string, number>): Promise<ReloadChanges> {
    return this.serialized(async () => {
      const clash = clashingIds(this.config.collectors, collectors);
      if (clash.length > 0) throw new Error(`collector id ${clash.join(', ')} is also used in the agent file`);
      this.gate.setDestinationCaps(caps);
      const out = await this.applyCollectors([...this.config.collectors, ...collectors]);
      const running = new Map([...this.running].map(([id, r]) => [id, r.config]));
      this.meshCollectors = collectors.map((c) => running.get(c.id) ?? c);
      return out;
    });
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.applying.then(fn);
    this.applying = p.catch(() => undefined);
    return p;
  }

  /** Restart only the collectors whose configuration differs from `wanted`; stop those not in it, start the new ones. */
  private async applyCollectors(wanted: readonly CollectorConfig[]): Promise<ReloadChanges> {
    const byId = new Map(wanted.filter((c) => !c.disabled).map((c) => [c.id, c]));
    const out: ReloadChanges = { stopped: [], started: [], restarted: [], unchanged: [] };
    const kept: string[] = [];
    for (const [id, r] of [...this.running]) {
      const n = byId.get(id);
      if (!n) { await this.stopCollector(id); out.stopped.push(id); continue; }
      if (JSON.stringify(n) === JSON.stringify(r.config)) { out.unchanged.push(id); continue; }
      if (r.producer instanceof TwampReflector && n.type === 'twamp_reflector' && r.config.type === 'twamp_reflector') {
        if (await this.replaceReflector(r.producer, r.config, n)) out.restarted.push(id);
        else kept.push(id);
        continue;
      }
      await this.stopCollector(id);
      out.restarted.push(id);
    }
    const toStart = wanted.filter((c) => !c.disabled && !this.running.has(c.id));
    for (const c of toStart) if (!out.restarted.includes(c.id)) out.started.push(c.id);
    await this.startCollectors(toStart);
    if (kept.length > 0) out.kept = kept;
    return out;
  }

  /**
   * Give a running reflector a new configuration without losing it when the
   * new one cannot start. A new address or port is bound first and the old
   * reflector stopped only once it listens; on the same port there is
   * nothing to bind first, so the old one stops, the new one starts, and if
   * that fails the old configuration is started again. Returns whether the
   * new configuration runs.
   */
  private async replaceReflector(old: TwampReflector, oldCfg: ReflectorConfig, next: ReflectorConfig): Promise<boolean> {
    const log = this.opts.logger;
    const id = next.id;
    const where = describeListeners(old, oldCfg);
    if (!sharesPort(oldCfg, next)) {
      let fresh: TwampReflector;
      try {
        fresh = this.newReflector(next);
        await fresh.start();
      } catch (e) {
        // start() releases what it bound before failing.
        log.error(`[${id}] new configuration not applied: ${messageOf(e)}; the reflector keeps running on ${where}`);
        return false;
      }
      await old.stop();
      this.running.set(id, { config: next, producer: fresh });
      return true;
    }
    await old.stop();
    try {
      const fresh = this.newReflector(next);
      await fresh.start();
      this.running.set(id, { config: next, producer: fresh });
      return true;
    } catch (e) {
      log.error(`[${id}] new configuration failed to start: ${messageOf(e)}; restarting the previous one on ${where}`);
    }
    try {
      const again = this.newReflector(oldCfg);
      await again.start();
      this.running.set(id, { config: oldCfg, producer: again });
    } catch (e) {
      log.error(`[${id}] the previous configuration did not start again either: ${messageOf(e)}`);
      this.running.delete(id);
      this.retired.retire(id);
    }
    return false;
  }

  private newReflector(c: ReflectorConfig): TwampReflector {
    return new TwampReflector(c, { meterProvider: this.meterProvider, labels: this.agentLabels(), logger: this.opts.logger, naming: this.config.naming });
  }

  /** Flush a last export with the current results, then stop producers (senders send Stop-Sessions) and close. */
  async stop(): Promise<void> {
    await this.mesh?.stop();
    await this.applying;
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

/** What a reload did, by collector id. */
export interface ReloadChanges {
  stopped: string[];
  started: string[];
  restarted: string[];
  unchanged: string[];
  /** Reflectors whose new configuration could not start: they keep running with the previous one. */
  kept?: string[];
}

function describeChanges(c: ReloadChanges): string {
  const part = (what: string, ids: string[] | undefined): string | undefined => (ids?.length ? `${what} ${ids.join(', ')}` : undefined);
  return [part('restarted', c.restarted), part('started', c.started), part('stopped', c.stopped),
    part('kept the previous configuration of', c.kept), `${c.unchanged.length} unchanged`].filter(Boolean).join('; ');
}

/**
 * Whether two reflector configurations listen on a common port number
 * (TWAMP-Control TCP or Light UDP; 0 = ephemeral never clashes): then the
 * new one cannot bind while the old one runs.
 */
function sharesPort(a: ReflectorConfig, b: ReflectorConfig): boolean {
  const tcp = (c: ReflectorConfig) => (c.control === false ? undefined : c.port);
  const clash = (x: number | undefined, y: number | undefined) => x !== undefined && x !== 0 && x === y;
  return clash(tcp(a), tcp(b)) || clash(a.lightPort, b.lightPort);
}

function describeListeners(r: TwampReflector, c: ReflectorConfig): string {
  const parts: string[] = [];
  const control = r.address;
  if (c.control !== false && control) parts.push(`TCP ${formatHostPort(control.address, control.port)}`);
  const light = r.lightAddress;
  if (light) parts.push(`UDP ${formatHostPort(light.address, light.port)}`);
  return parts.join(' and ') || formatHostPort(c.listen, c.port);
}

