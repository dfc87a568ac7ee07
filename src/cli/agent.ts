/**
 * The agent: one MeterProvider, the exporters the config and environment ask
 * for, and one producer per enabled collector. Reflectors start before
 * senders (so a demo sender finds its reflector); a collector that fails to
 * start is logged and the others keep running.
 */
import { MeterProvider, type IMetricReader } from '@opentelemetry/sdk-metrics';
import { defaultResource, resourceFromAttributes, detectResources, envDetector, type Resource } from '@opentelemetry/resources';
import type { AgentConfig } from '../config/types.js';
import { TwampSender } from '../sender.js';
import { TwampReflector } from '../reflector.js';
import type { Logger } from '../session/log.js';
import { PrometheusEndpoint, createOtlpReader, exportersFromEnv, otlpFromEnv } from './exporters.js';
import { VERSION } from '../version.js';

export interface AgentOptions {
  logger: Logger;
  env?: NodeJS.ProcessEnv;
}

export class Agent {
  readonly meterProvider: MeterProvider;
  readonly prometheus: PrometheusEndpoint | undefined;
  readonly senders: TwampSender[] = [];
  readonly reflectors: TwampReflector[] = [];
  private readonly readers: IMetricReader[] = [];
  private readonly otlpEnabled: boolean;

  constructor(readonly config: AgentConfig, private readonly o: AgentOptions) {
    const env = o.env ?? process.env;
    const wanted = exportersFromEnv(env);
    const promCfg = config.prometheus ?? (wanted?.has('prometheus')
      ? { host: env.OTEL_EXPORTER_PROMETHEUS_HOST ?? '0.0.0.0', port: Number(env.OTEL_EXPORTER_PROMETHEUS_PORT ?? 9464), path: '/metrics' }
      : undefined);
    if (promCfg && (!wanted || wanted.has('prometheus'))) {
      this.prometheus = new PrometheusEndpoint(promCfg, config.naming);
      this.readers.push(this.prometheus.reader);
    }
    this.otlpEnabled = wanted ? wanted.has('otlp') : config.otlp !== undefined;
    if (this.otlpEnabled) this.readers.push(createOtlpReader(otlpFromEnv(config.otlp, env)));
    this.meterProvider = new MeterProvider({ resource: agentResource(config, env), readers: this.readers });
  }

  get otlp(): boolean {
    return this.otlpEnabled;
  }

  async start(): Promise<void> {
    const log = this.o.logger;
    const labels = { ...this.config.labels, host: this.config.host };
    const common = { meterProvider: this.meterProvider, labels, logger: log, naming: this.config.naming };
    for (const c of this.config.collectors) {
      if (c.disabled) { log.info(`[${c.id}] disabled`); continue; }
      if (c.type === 'twamp_reflector') {
        const r = new TwampReflector(c, common);
        try {
          await r.start();
          this.reflectors.push(r);
        } catch (e) {
          log.error(`[${c.id}] reflector not started: ${(e as Error).message}`);
        }
      }
    }
    for (const c of this.config.collectors) {
      if (c.disabled || c.type !== 'twamp_sender') continue;
      const s = new TwampSender(c, common);
      await s.start();
      this.senders.push(s);
      log.info(`[${c.id}] TWAMP sender: ${c.model.model} × ${c.nPackets} to ${c.reflector}:${c.port} every ${c.interval} s`);
    }
    if (this.prometheus) {
      const { url } = await this.prometheus.start();
      log.info(`Prometheus metrics at ${url}`);
    }
    if (this.otlpEnabled) log.info('OTLP/HTTP metrics export enabled');
  }

  /** Stop producers (senders send Stop-Sessions), flush a last export, close endpoints. */
  async stop(): Promise<void> {
    await Promise.allSettled(this.senders.map((s) => s.stop()));
    await Promise.allSettled(this.reflectors.map((r) => r.stop()));
    await this.meterProvider.forceFlush().catch(() => undefined);
    await this.meterProvider.shutdown().catch(() => undefined);
    await this.prometheus?.stop();
  }
}

/** service.name, service.version, service.instance.id and host.name by default; OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME win. */
export function agentResource(config: AgentConfig, env: NodeJS.ProcessEnv): Resource {
  const ours = resourceFromAttributes({
    'service.name': 'otel-twamp',
    'service.version': VERSION,
    'service.instance.id': config.host,
    'host.name': config.host,
  });
  // envDetector reads process.env; pass through only when env is the process' own.
  const fromEnv = env === process.env ? detectResources({ detectors: [envDetector] }) : resourceFromAttributes({});
  return defaultResource().merge(ours).merge(fromEnv);
}
