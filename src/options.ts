/**
 * What the producers (TwampSender, TwampReflector) are built from: settings
 * already validated, every default filled, camelCase, durations in
 * milliseconds where the name says so, networks parsed and relabel rules
 * compiled. The config layer (src/config, `otel-twamp/config`) makes them
 * from the agent file or from a Gufo-style collector object
 * (`parseSenderConfig`, `parseReflectorConfig`); a producer never parses.
 */
import { inspect } from 'node:util';
import type { ModelConfig } from './measure/models.js';
import type { SecurityMode } from './protocol/crypto.js';
import type { LightFormat } from './protocol/stamp.js';
import type { Cidr } from './util/net.js';
import type { CompiledRelabel, RegexDialect, RelabelRule } from './otel/relabel.js';

export type { ModelConfig, ModelName } from './measure/models.js';
export type { SecurityMode } from './protocol/crypto.js';
export type { LightFormat } from './protocol/stamp.js';
export type { Cidr } from './util/net.js';
export type { CompiledRelabel, RelabelRule } from './otel/relabel.js';

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

export type RelabelDialect = RegexDialect;
export type CollectorType = 'twamp_sender' | 'twamp_reflector';

/** The keys every collector has (Gufo's common collector config). */
export interface CommonCollectorConfig {
  id: string;
  /** Repetition interval, seconds (the agent's default interval when the collector has none). */
  interval: number;
  disabled: boolean;
  labels: Record<string, string>;
  /** The rules as configured (the agent's Views are made from them, src/otel/views.ts). */
  relabel: RelabelRule[];
  relabelDialect: RelabelDialect;
  /**
   * The rules compiled once at load (`undefined` when there are none); the
   * producer applies them to every series. Not part of a config's identity
   * (`relabel` is): it serialises as nothing.
   */
  relabeler: CompiledRelabel | undefined;
}

export interface SenderConfig extends CommonCollectorConfig {
  type: 'twamp_sender';
  /** IPv4/IPv6 literal or hostname. */
  reflector: string;
  /** TWAMP-Control port of the reflector; with `control: false` its UDP test port. */
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
   * first one the server offers is used. With `control: false` one mode:
   * 'open', or 'authenticated' with format 'stamp'.
   */
  modes: SecurityMode[];
  /** KeyID sent in Set-Up-Response (`key_id`); present when a mode other than open is allowed. */
  keyId?: string;
  /** Shared secret for `keyId` (`secret`, or the contents of `secret_file`). */
  secret?: Secret;
  /** false: TWAMP Light / STAMP, no TWAMP-Control (`control`). */
  control: boolean;
  /** Test packet format (`format`): 'twamp' (14 octets + padding) or 'stamp' (44 + SSID). */
  format: 'twamp' | 'stamp';
  /**
   * Delay of the first session after start, ms (the sessions then follow every
   * `interval` from there); mesh senders get a per-pair offset so many agents
   * do not start at the same moment; 0 for the others.
   */
  startOffsetMs: number;
}

export interface ReflectorConfig extends CommonCollectorConfig {
  type: 'twamp_reflector';
  /** IP address the listeners bind to. */
  listen: string;
  /** TWAMP-Control port; 0 = ephemeral. */
  port: number;
  /** false: no TWAMP-Control listener, the Light reflector only (`control`). */
  control: boolean;
  maxSessions: number;
  /** RFC 5357 §4.2 REFWAIT. */
  refwaitMs: number;
  /** RFC 5357 §3.1 SERVWAIT. */
  servwaitMs: number;
  /** Inclusive UDP port range for test sessions; absent = ephemeral ports. */
  testPortRange?: [number, number];
  /** Security modes clients may choose (`modes`). */
  modes: SecurityMode[];
  /** PBKDF2 iteration count announced in Server-Greeting (`kdf_count`). */
  kdfCount: number;
  /** Where `keys` came from (`key_file`), resolved. */
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
  /** Client networks allowed (`allow`); empty = all. */
  allow: Cidr[];
  /** Client networks refused; wins over `allow` (`deny`). */
  deny: Cidr[];
  /** Bound on each expected control message as a whole (`control_timeout`). */
  controlTimeoutMs: number;
  /** Control connections one client may hold (`max_connections_per_client`). */
  maxConnectionsPerClient: number;
  /** Sessions one client may hold over all its connections (`max_sessions_per_client`). */
  maxSessionsPerClient: number;
  /** IPv6 clients are grouped by this prefix length for the per-client limits (`client_ipv6_prefix`). */
  clientIpv6Prefix: number;
  /** Authenticated set-ups (key derivations) per second per client (`kdf_rate_per_client`). */
  kdfRatePerClient: number;
  /** Accept a Sender Address other than the control connection's peer (`allow_third_party_sender`). */
  allowThirdPartySender: boolean;
  /** Ports below 1024 test replies may go to (`allow_reply_ports`). */
  allowReplyPorts: number[];
  // TWAMP-Light / STAMP reflector (docs/security.md): off unless `light_port` is set.
  /** UDP port of the TWAMP-Light / STAMP reflector (`light_port`); absent = none; 0 = ephemeral. */
  lightPort?: number;
  /** Light: per-sender sequence numbers (`light_stateful`). */
  lightStateful: boolean;
  /** Light: packets per second accepted per source address (`light_rate_limit`). */
  lightRateLimit: number;
  /** Light: replies per second to all sources together (`light_max_pps`). */
  lightMaxPps: number;
  /** Light: reply octets (IP level) per second to one source address (`light_max_octets_per_source`). */
  lightMaxOctetsPerSource: number;
  /** Light: reply octets (IP level) per second to all sources together (`light_max_octets`). */
  lightMaxOctets: number;
  /** Light: answer only requests at least as long as their reply, i.e. ≥ 44 octets (`light_symmetric_only`). */
  lightSymmetricOnly: boolean;
  /** Light: whether requests carry a STAMP SSID (`light_format`; src/protocol/stamp.ts LightFormat). */
  lightFormat: LightFormat;
  /**
   * Light: the DSCPs an RFC 8972 Class of Service TLV may ask the reply to
   * carry (DSCP1) besides the DSCP its request arrived with (`light_cos_allow`,
   * code points 0..63). Empty (default): only that received DSCP is granted;
   * any other DSCP1 is refused, the reply keeping the received DSCP with
   * RP = 1 (RFC 8972 §4.4; docs/security.md).
   */
  lightCosAllow: number[];
  /**
   * Light: authenticated STAMP (`light_key_id`): the entry of `keys` whose
   * secret is the HMAC-SHA-256 key; unauthenticated packets are then dropped.
   */
  lightKeyId?: string;
}

export type CollectorConfig = SenderConfig | ReflectorConfig;
