/**
 * Parsed config (snake_case, seconds, as the schemas give it) to what the
 * producers and the agent run with (src/options.ts, `types.ts`): camelCase,
 * milliseconds, every default filled, secrets and keys read, relabel rules
 * compiled. Each function takes its parsed object apart key by key and ends
 * with `noKeyLeft`: a key added to a schema and not mapped here, or a
 * setting added to the options and not produced, does not compile.
 */
import { resolve as resolvePath } from 'node:path';
import { Secret } from '../options.js';
import type { CollectorConfig, ReflectorConfig, SenderConfig } from '../options.js';
import { readKeyFile, readSecretFile, type FileContext } from './files.js';
import { modelConfigOf, relabelerOf } from './schema.js';
import type { AgentFile, ParsedCollector, ParsedReflector, ParsedSender } from './schema.js';
import type { MeshSourceConfig, OtlpConfig, ProbeConfig } from './types.js';

export const DEFAULT_OTLP_ENDPOINT = 'http://localhost:4318/v1/metrics';

/**
 * The Light reflector's settings when `light_port` is set and the key is
 * not (docs/security.md "TWAMP-Light / STAMP"); the schema leaves them
 * unset so that it can say a `light_*` key is only used with `light_port`.
 */
export const LIGHT_DEFAULTS = {
  lightStateful: false,
  lightRateLimit: 1000,
  lightMaxPps: 10_000,
  lightMaxOctetsPerSource: 1_250_000,
  lightMaxOctets: 12_500_000,
  lightSymmetricOnly: false,
  lightFormat: 'auto',
} as const satisfies Partial<ReflectorConfig>;

export const ms = (seconds: number): number => Math.round(seconds * 1000);

/** Compile-time proof that a parsed object was taken apart completely: what is left must be nothing. */
function noKeyLeft(rest: Record<string, never>): void {
  void rest;
}

/** The keys every collector has (Gufo's common collector config). */
function commonFields(p: Pick<ParsedSender, 'id' | 'interval' | 'disabled' | 'labels' | 'relabel' | 'relabel_dialect'>, defaultInterval: number) {
  return {
    id: p.id,
    interval: p.interval ?? defaultInterval,
    disabled: p.disabled,
    labels: p.labels,
    relabel: p.relabel,
    relabelDialect: p.relabel_dialect,
    relabeler: relabelerOf(p.relabel, p.relabel_dialect),
  };
}

export function toSender(p: ParsedSender, defaultInterval: number, files: FileContext): SenderConfig {
  const {
    type: _type, id, interval, disabled, labels, relabel, relabel_dialect,
    reflector, port, reflector_port, dscp, n_packets, model, bandwidth, size, control_timeout, reply_timeout, mos,
    mode, key_id, secret, secret_file, control, format,
    ...rest
  } = p;
  noKeyLeft(rest);
  const cfg: SenderConfig = {
    type: 'twamp_sender',
    ...commonFields({ id, interval, disabled, labels, relabel, relabel_dialect }, defaultInterval),
    reflector,
    port,
    reflectorPort: reflector_port,
    dscp,
    nPackets: n_packets,
    model: modelConfigOf({ model, bandwidth, size }),
    controlTimeoutMs: ms(control_timeout),
    replyTimeoutMs: ms(reply_timeout),
    mos,
    modes: mode,
    control,
    format,
    startOffsetMs: 0,
  };
  if (key_id !== undefined) cfg.keyId = key_id;
  if (secret !== undefined) cfg.secret = new Secret(secret);
  else if (secret_file !== undefined) {
    const read = readSecretFile(files, secret_file);
    if (read) cfg.secret = read;
  }
  return cfg;
}

export function toReflector(p: ParsedReflector, defaultInterval: number, files: FileContext): ReflectorConfig {
  const {
    type: _type, id, interval, disabled, labels, relabel, relabel_dialect,
    listen, port, control, max_sessions, refwait, servwait, test_port_range, modes, key_file, kdf_count,
    max_connections, max_sessions_per_connection, max_session_duration, max_pps_per_session, max_pps, max_padding,
    allow, deny, control_timeout, max_connections_per_client, max_sessions_per_client, client_ipv6_prefix,
    kdf_rate_per_client, allow_third_party_sender, allow_reply_ports,
    light_port, light_stateful, light_rate_limit, light_max_pps, light_max_octets_per_source, light_max_octets,
    light_symmetric_only, light_key_id, light_format, light_cos_allow,
    ...rest
  } = p;
  noKeyLeft(rest);
  const cfg: ReflectorConfig = {
    type: 'twamp_reflector',
    ...commonFields({ id, interval, disabled, labels, relabel, relabel_dialect }, defaultInterval),
    listen,
    port,
    control,
    maxSessions: max_sessions,
    refwaitMs: ms(refwait),
    servwaitMs: ms(servwait),
    modes,
    kdfCount: kdf_count,
    maxConnections: max_connections,
    maxSessionsPerConnection: max_sessions_per_connection,
    maxSessionDurationMs: ms(max_session_duration),
    maxPpsPerSession: max_pps_per_session,
    maxPps: max_pps,
    maxPadding: max_padding,
    allow,
    deny,
    controlTimeoutMs: ms(control_timeout),
    maxConnectionsPerClient: max_connections_per_client,
    maxSessionsPerClient: max_sessions_per_client,
    clientIpv6Prefix: client_ipv6_prefix,
    kdfRatePerClient: kdf_rate_per_client,
    allowThirdPartySender: allow_third_party_sender,
    allowReplyPorts: allow_reply_ports,
    lightStateful: light_stateful ?? LIGHT_DEFAULTS.lightStateful,
    lightRateLimit: light_rate_limit ?? LIGHT_DEFAULTS.lightRateLimit,
    lightMaxPps: light_max_pps ?? LIGHT_DEFAULTS.lightMaxPps,
    lightMaxOctetsPerSource: light_max_octets_per_source ?? LIGHT_DEFAULTS.lightMaxOctetsPerSource,
    lightMaxOctets: light_max_octets ?? LIGHT_DEFAULTS.lightMaxOctets,
    lightSymmetricOnly: light_symmetric_only ?? LIGHT_DEFAULTS.lightSymmetricOnly,
    lightFormat: light_format ?? LIGHT_DEFAULTS.lightFormat,
    // Default none: DSCP1 is granted only when it is the DSCP the request arrived with.
    lightCosAllow: light_cos_allow ?? [],
  };
  if (test_port_range !== undefined) cfg.testPortRange = test_port_range;
  if (light_port !== undefined) cfg.lightPort = light_port;
  if (light_key_id !== undefined) cfg.lightKeyId = light_key_id;
  if (key_file !== undefined) {
    cfg.keyFile = resolvePath(files.baseDir, key_file);
    const keys = readKeyFile(files, key_file);
    if (keys) cfg.keys = keys;
    if (keys && light_key_id !== undefined && !keys.has(light_key_id)) {
      files.issues.push({ path: ['light_key_id'], message: `key id ${JSON.stringify(light_key_id)} is not in key_file` });
    }
  }
  return cfg;
}

export function toCollector(p: ParsedCollector, defaultInterval: number, files: FileContext): CollectorConfig {
  return 'reflector' in p ? toSender(p, defaultInterval, files) : toReflector(p, defaultInterval, files);
}

/** OTLP exporter conventions: the signal-specific variable is used as is, the generic one gets `/v1/metrics`. */
export function otlpEndpointFromEnv(env: NodeJS.ProcessEnv): string {
  const specific = env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT?.trim();
  if (specific) return specific;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (base) return `${base.replace(/\/+$/, '')}/v1/metrics`;
  return DEFAULT_OTLP_ENDPOINT;
}

export function toOtlp(o: NonNullable<AgentFile['otlp']>, env: NodeJS.ProcessEnv): OtlpConfig {
  const { endpoint, protocol, headers, interval, timeout, temporality, ...rest } = o;
  noKeyLeft(rest);
  return {
    endpoint: endpoint ?? otlpEndpointFromEnv(env),
    protocol,
    headers,
    intervalMs: ms(interval),
    timeoutMs: ms(timeout),
    temporality,
  };
}

/** `probe:` with its defaults (the schema's, also when the section is absent but `modules:` is not). */
export function toProbe(p: NonNullable<AgentFile['probe']>): ProbeConfig {
  const { allow, max_concurrent, max_per_second, max_per_target_per_second, timeout, ...rest } = p;
  noKeyLeft(rest);
  return {
    allow,
    maxConcurrent: max_concurrent,
    maxPerSecond: max_per_second,
    maxPerTargetPerSecond: max_per_target_per_second,
    timeoutMs: ms(timeout),
  };
}

/** `mesh:`: a relative path names a file beside the agent file; URLs are kept as written. */
export function toMesh(m: NonNullable<AgentFile['mesh']>, files: FileContext): MeshSourceConfig {
  const { source, self, interval, dns_servers, ...rest } = m;
  noKeyLeft(rest);
  return {
    source: /^https?:\/\//i.test(source) ? source : resolvePath(files.baseDir, source),
    intervalMs: ms(interval),
    ...(self !== undefined ? { self } : {}),
    ...(dns_servers !== undefined ? { dnsServers: dns_servers } : {}),
  };
}
