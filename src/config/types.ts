/**
 * The agent's configuration as the loader returns it: validated, defaults
 * filled, camelCase, durations in milliseconds where the name says so.
 * Produced by `load.ts` from the Gufo Agent-compatible YAML (snake_case,
 * seconds). The collectors' settings are the producers' own types
 * (src/options.ts), re-exported here.
 */
import type { Cidr } from '../util/net.js';
import type { CollectorConfig, CollectorType, SenderConfig } from '../options.js';
import type { NamingProfile } from '../otel/instruments.js';

export { Secret } from '../options.js';
export type {
  Cidr, CollectorConfig, CollectorType, CommonCollectorConfig, CompiledRelabel, LightFormat, ModelConfig, ModelName,
  ReflectorConfig, RelabelDialect, RelabelRule, SecurityMode, SenderConfig,
} from '../options.js';
export type { NamingProfile } from '../otel/instruments.js';

export const COLLECTOR_TYPES: readonly CollectorType[] = ['twamp_sender', 'twamp_reflector'];

export interface PrometheusConfig {
  host: string;
  port: number;
  path: string;
}

export type OtlpProtocol = 'http/protobuf' | 'http/json';
export type OtlpTemporality = 'cumulative' | 'delta';

export interface OtlpConfig {
  endpoint: string;
  protocol: OtlpProtocol;
  headers: Record<string, string>;
  /** Export interval. */
  intervalMs: number;
  /** Export request timeout. */
  timeoutMs: number;
  temporality: OtlpTemporality;
}

/** A probe module (`modules:`): a sender template run once per /probe request (docs/configuration.md "Probe endpoint (multi-target)"). */
export interface ProbeModuleConfig {
  name: string;
  /** The module's sender settings; `id` is the module name, `reflector` empty until a target fills it. */
  sender: SenderConfig;
  /** Target networks for this module; replaces `probe.allow` when present. */
  allow?: Cidr[];
}

/** The `probe:` section: limits and access list of /probe. */
export interface ProbeConfig {
  /** Target networks; empty = every target refused. */
  allow: Cidr[];
  /** Probes running at once; more get 503. */
  maxConcurrent: number;
  /** Probes started per second, all targets together; more get 429. */
  maxPerSecond: number;
  /** Probes started per second for one target; more get 429. */
  maxPerTargetPerSecond: number;
  /** Bound of a probe when the request carries no X-Prometheus-Scrape-Timeout-Seconds. */
  timeoutMs: number;
}

/** `mesh:` of the agent file (docs/configuration.md "Mesh"). */
export interface MeshSourceConfig {
  /** Absolute file path, or an http(s) URL. */
  source: string;
  /** Member this agent is; absent = the member named like the host, or the one with a local address. */
  self?: string;
  /** How often the source is checked for a new version. */
  intervalMs: number;
  /** Servers member sets from DNS are resolved with (`dns_servers`); absent = the system's. */
  dnsServers?: string[];
}

export interface AgentConfig {
  version: string;
  host: string;
  labels: Record<string, string>;
  /** agent.defaults.interval, seconds. */
  defaultInterval: number;
  /** `agent.max_concurrent_sessions`: sender sessions at once over all reflectors. */
  maxConcurrentSessions: number;
  /** `agent.max_sessions_per_reflector`: sender sessions (control connections) at once to one reflector. */
  maxSessionsPerReflector: number;
  /** Present when `sender.listen` is set. */
  prometheus?: PrometheusConfig;
  /** Present when the `otlp` section is present. */
  otlp?: OtlpConfig;
  naming: NamingProfile;
  /** All collectors, disabled ones included (with `disabled: true`). */
  collectors: CollectorConfig[];
  /** Probe modules by name (`modules:`); absent = /probe answers 404. */
  modules?: Record<string, ProbeModuleConfig>;
  /** /probe limits and allow list; filled with defaults when `modules:` is present. */
  probe?: ProbeConfig;
  /** A mesh definition to run this agent's part of (`mesh:`); its collectors are added to `collectors` when it is applied. */
  mesh?: MeshSourceConfig;
}
