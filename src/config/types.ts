/**
 * Normalized configuration: validated, defaults filled, camelCase, durations
 * in milliseconds where the name says so. Produced by `load.ts` from the
 * Gufo Agent-compatible YAML (snake_case, seconds).
 */
import { inspect } from 'node:util';
import type { ModelConfig } from '../measure/models.js';
import type { RelabelRule } from '../otel/relabel.js';
import type { SecurityMode } from '../protocol/crypto.js';

export type { ModelConfig, ModelName } from '../measure/models.js';
export type { RelabelRule } from '../otel/relabel.js';

export type { SecurityMode } from '../protocol/crypto.js';

/**
 * A shared secret (TWAMP pass-phrase). It never shows in logs, messages,
 * JSON or util.inspect output: only reveal() gives the octets, for key
 * derivation.
 */
export class Secret {
  readonly #value: Buffer;

  constructor(value: string | Uint8Array) {
    this.#value = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
  }

  /** A copy of the secret's octets. */
  reveal(): Buffer {
    return Buffer.from(this.#value);
  }

  get length(): number {
    return this.#value.length;
  }

  toString(): string {
    return '[secret]';
  }

  toJSON(): string {
    return '[secret]';
  }

  [inspect.custom](): string {
    return 'Secret [redacted]';
  }
}

export type RelabelDialect = 'prometheus' | 'gufo';
export type NamingProfile = 'legacy' | 'otel';
export type CollectorType = 'twamp_sender' | 'twamp_reflector';

export const COLLECTOR_TYPES: readonly CollectorType[] = ['twamp_sender', 'twamp_reflector'];

interface CommonCollectorConfig {
  id: string;
  /** Repetition interval, seconds. */
  interval: number;
  disabled: boolean;
  labels: Record<string, string>;
  relabel: RelabelRule[];
  relabelDialect: RelabelDialect;
}

export interface SenderConfig extends CommonCollectorConfig {
  type: 'twamp_sender';
  /** IPv4/IPv6 literal or hostname. */
  reflector: string;
  /** TWAMP-Control port of the reflector. */
  port: number;
  /** Receiver Port requested in Request-TW-Session; 0 = let the server choose. */
  reflectorPort: number;
  /** DSCP code point 0..63. */
  dscp: number;
  nPackets: number;
  model: ModelConfig;
  /** Timeout for each TWAMP-Control message. */
  controlTimeoutMs: number;
  /** How long a reflection may take before the packet counts as lost. */
  replyTimeoutMs: number;
  /** MOS computation: ITU-T G.107 (default) or Gufo Agent's formula, for comparable dashboards. */
  mos: 'g107' | 'gufo';
  /**
   * Security modes the sender accepts, in order of preference (`mode`); the
   * first one the server offers is used. Absent = ['open'].
   */
  modes?: SecurityMode[];
  /** KeyID sent in Set-Up-Response (`key_id`); required unless only open mode is allowed. */
  keyId?: string;
  /** Shared secret for `keyId` (`secret`, or the contents of `secret_file`). */
  secret?: Secret;
  /**
   * `control: false`: TWAMP Light / STAMP, no TWAMP-Control; `port` is then the
   * reflector's UDP test port. Absent = true.
   */
  control?: boolean;
  /** Test packet format (`format`): 'twamp' (14 octets + padding) or 'stamp' (44 + SSID); absent = 'twamp'. */
  format?: 'twamp' | 'stamp';
  /**
   * Delay of the first session after start, ms (the sessions then follow every
   * `interval` from there); mesh senders get a per-pair offset so many agents
   * do not start at the same moment. Absent = 0.
   */
  startOffsetMs?: number;
}

export interface ReflectorConfig extends CommonCollectorConfig {
  type: 'twamp_reflector';
  /** IP address the control listener binds to. */
  listen: string;
  /** TWAMP-Control port; 0 = ephemeral. */
  port: number;
  maxSessions: number;
  /** RFC 5357 §4.2 REFWAIT. */
  refwaitMs: number;
  /** RFC 5357 §3.1 SERVWAIT. */
  servwaitMs: number;
  /** Inclusive UDP port range for test sessions; absent = ephemeral ports. */
  testPortRange?: [number, number];
  /** Security modes clients may choose (`modes`); absent = ['open']. */
  modes?: SecurityMode[];
  /** PBKDF2 iteration count announced in Server-Greeting (`kdf_count`); absent = 2048. */
  kdfCount?: number;
  /** Where `keys` came from (`key_file`). */
  keyFile?: string;
  /** KeyID → shared secret, read from `key_file` (perfSONAR pfstore format). */
  keys?: ReadonlyMap<string, Secret>;
  /** Concurrent control connections (`max_connections`); more get a greeting with Modes 0. */
  maxConnections: number;
  /** Sessions one control connection may hold (`max_sessions_per_connection`); more get Accept 4. */
  maxSessionsPerConnection: number;
  /** A session older than this is ended (`max_session_duration`). */
  maxSessionDurationMs: number;
  /** Packets per second reflected per session (`max_pps_per_session`); excess dropped and counted. */
  maxPpsPerSession: number;
  /** Packets per second reflected in total (`max_pps`); excess dropped and counted. */
  maxPps: number;
  /** Largest Padding Length accepted in Request-TW-Session (`max_padding`); larger gets Accept 3. */
  maxPadding: number;
  /** Client networks allowed ("addr/prefix"); empty = all (`allow`). */
  allow: string[];
  /** Client networks refused; wins over `allow` (`deny`). */
  deny: string[];
  /** Bound on each expected control message as a whole (`control_timeout`). */
  controlTimeoutMs: number;
  // Per-client and third-party keys: present only when not the default (REFLECTOR_LIMIT_DEFAULTS).
  /** Control connections one client may hold (`max_connections_per_client`); absent = 8. */
  maxConnectionsPerClient?: number;
  /** Sessions one client may hold over all its connections (`max_sessions_per_client`); absent = 64. */
  maxSessionsPerClient?: number;
  /** IPv6 clients are grouped by this prefix length for the per-client limits (`client_ipv6_prefix`); absent = 64. */
  clientIpv6Prefix?: number;
  /** Authenticated set-ups (key derivations) per second per client (`kdf_rate_per_client`); absent = 10. */
  kdfRatePerClient?: number;
  /** Accept a Sender Address other than the control connection's peer (`allow_third_party_sender`); absent = false. */
  allowThirdPartySender?: boolean;
  /** Ports below 1024 test replies may go to (`allow_reply_ports`); absent = none. */
  allowReplyPorts?: number[];
  /** UDP port of the TWAMP-Light / STAMP reflector (`light_port`); absent = none. */
  lightPort?: number;
  /** `control: false`: Light only, no TWAMP-Control listener. Absent = true. */
  control?: boolean;
  /** Light: per-sender sequence numbers (`light_stateful`); absent = stateless. */
  lightStateful?: boolean;
  /** Light: packets per second accepted per source address (`light_rate_limit`); absent = 1000. */
  lightRateLimit?: number;
  /** Light: replies per second to all sources together (`light_max_pps`); absent = 10000. */
  lightMaxPps?: number;
  /** Light: reply octets (IP level) per second to one source address (`light_max_octets_per_source`); absent = 1,250,000. */
  lightMaxOctetsPerSource?: number;
  /** Light: reply octets (IP level) per second to all sources together (`light_max_octets`); absent = 12,500,000. */
  lightMaxOctets?: number;
  /** Light: answer only requests at least as long as their reply, i.e. ≥ 44 octets (`light_symmetric_only`); absent = false. */
  lightSymmetricOnly?: boolean;
  /** Light: whether requests carry a STAMP SSID (`light_format`: auto, twamp, stamp; src/protocol/stamp.ts LightFormat); absent = auto. */
  lightFormat?: 'twamp' | 'stamp';
  /**
   * Light: authenticated STAMP (`light_key_id`): the entry of `keys` whose
   * secret is the HMAC-SHA-256 key; unauthenticated packets are then dropped.
   */
  lightKeyId?: string;
}

export type CollectorConfig = SenderConfig | ReflectorConfig;

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
  /** Target networks ("addr/prefix") for this module; replaces `probe.allow` when present. */
  allow?: string[];
}

/** The `probe:` section: limits and access list of /probe. */
export interface ProbeConfig {
  /** Target networks ("addr/prefix"); empty = every target refused. */
  allow: string[];
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
