/**
 * Zod schemas for the Gufo Agent-compatible config (snake_case, seconds):
 * the collectors, the agent file's sections, probe modules and mesh
 * templates, and the checks across keys. The field types and their messages
 * are in `fields.ts`; defaults that depend on context (the agent's default
 * interval, the host name, OTLP environment variables) and the mapping onto
 * the producers' settings (src/options.ts) are in `normalize.ts`.
 */
import net from 'node:net';
import * as z from 'zod';
import { REFLECTOR_LIMIT_DEFAULTS } from '../session/limits.js';
import { checkModelForIpVersion, createTrafficModel, ModelConfigError } from '../measure/models.js';
import { MODEL_NAMES, type ModelConfig } from '../measure/models.js';
import { compileRelabel, RelabelConfigError } from '../otel/relabel.js';
import type { CompiledRelabel, RegexDialect, RelabelRule } from '../otel/relabel.js';
import {
  cidrList, describeValue, dscp, dscpList, exactly, expecting, hostOrIp, int, kdfCount, keyId, labels, listenAddress, listenIp, modeList,
  MODE_FORMS, nonEmptyString, oneOf, opt, portRange, replyPortList, scalarString, seconds, secretString, strictMap, string,
  whenClean, withoutPrefix,
} from './fields.js';
import { COLLECTOR_TYPES } from './types.js';
import type { CollectorType } from './types.js';
import { DEFAULT_CONTROL_PORT } from '../protocol/constants.js';

// The building blocks mesh.ts and the CLI take from here (the schemas' own module).
export {
  expecting, hostOrIp, int, isHostOrIp, labels, listenIp, nonEmptyString, oneOf, opt, parseListen, strictMap, suggestKey,
} from './fields.js';

// ---------------------------------------------------------------------------
// Relabel rules (structure only; semantics are checked by compileRelabel)

const RELABEL_RULE_SHAPE = {
  action: opt(string().optional()),
  source_labels: opt(z.array(string(), { error: expecting('a list of label names') }).optional()),
  separator: opt(scalarString().optional()),
  regex: opt(scalarString().optional()),
  replacement: opt(scalarString().optional()),
  target_label: opt(string().optional()),
  modulus: opt(int(1).optional()),
};

export const relabelRuleSchema = strictMap(RELABEL_RULE_SHAPE, 'a relabel rule (map)').transform((r): RelabelRule => {
  const out: RelabelRule = {};
  for (const [k, v] of Object.entries(r)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
});

// ---------------------------------------------------------------------------
// Collectors

const SENDER_TYPE = 'twamp_sender' satisfies CollectorType;
const REFLECTOR_TYPE = 'twamp_reflector' satisfies CollectorType;

const commonShape = () => ({
  id: nonEmptyString(),
  interval: opt(int(1).optional()),
  disabled: opt(z.boolean({ error: expecting('true or false') }).default(false)),
  labels: labels(),
  relabel: opt(z.array(relabelRuleSchema, { error: expecting('a list of relabel rules') }).default([])),
  relabel_dialect: opt(oneOf(['prometheus', 'gufo']).default('prometheus')),
});

// What each collector map parses to, key by key, before the checks across
// keys: the checks below take their fields from these, not from copies.
type CommonFields = z.output<z.ZodObject<ReturnType<typeof commonShape>>>;
type SenderFields = z.output<z.ZodObject<ReturnType<typeof senderShape>>>;
type ReflectorFields = z.output<z.ZodObject<ReturnType<typeof reflectorShape>>>;

/**
 * Relabel rules compiled by the check, by their list: the loader hands the
 * same engine to the producer (`relabelerOf`), so rules are compiled once.
 */
const compiled = new WeakMap<RelabelRule[], { dialect: RegexDialect; engine: CompiledRelabel }>();

/** The engine of a collector's rules (compiled by its check, or now); undefined when there are none. */
export function relabelerOf(rules: RelabelRule[], dialect: RegexDialect): CompiledRelabel | undefined {
  if (rules.length === 0) return undefined;
  const hit = compiled.get(rules);
  if (hit?.dialect === dialect) return hit.engine;
  const engine = compileRelabel(rules, { dialect });
  compiled.set(rules, { dialect, engine });
  return engine;
}

const relabelCheck = z.superRefine<Pick<CommonFields, 'relabel' | 'relabel_dialect'>>(
  (v, ctx) => {
    try {
      if (v.relabel.length > 0) compiled.set(v.relabel, { dialect: v.relabel_dialect, engine: compileRelabel(v.relabel, { dialect: v.relabel_dialect }) });
    } catch (err) {
      if (!(err instanceof RelabelConfigError)) throw err;
      ctx.addIssue({
        code: 'custom',
        message: withoutPrefix(err.message, `relabel[${err.ruleIndex}].${err.field}`),
        path: ['relabel', err.ruleIndex, err.field],
        input: v.relabel,
      });
    }
  },
  { when: whenClean(['relabel', 'relabel_dialect']) },
);


const senderSecurityCheck = z.superRefine<Pick<SenderFields, 'mode' | 'key_id' | 'secret' | 'secret_file'>>(
  (v, ctx) => {
    if (v.secret !== undefined && v.secret_file !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'set either secret or secret_file, not both', path: ['secret_file'], input: v.secret_file });
    }
    const secured = v.mode.filter((m) => m !== 'open');
    if (secured.length === 0) return;
    const why = `required when mode includes ${secured.map((m) => JSON.stringify(m)).join(', ')}`;
    if (v.key_id === undefined) ctx.addIssue({ code: 'custom', message: `key_id is ${why}`, path: ['key_id'], input: undefined });
    if (v.secret === undefined && v.secret_file === undefined) {
      ctx.addIssue({ code: 'custom', message: `secret or secret_file is ${why}`, path: ['secret'], input: undefined });
    }
  },
  { when: whenClean(['mode', 'key_id', 'secret', 'secret_file']) },
);

const reflectorSecurityCheck = z.superRefine<Pick<ReflectorFields, 'modes' | 'key_file'>>(
  (v, ctx) => {
    const secured = v.modes.filter((m) => m !== 'open');
    if (secured.length > 0 && v.key_file === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `key_file is required when modes include ${secured.map((m) => JSON.stringify(m)).join(', ')}`,
        path: ['key_file'],
        input: undefined,
      });
    }
  },
  { when: whenClean(['modes', 'key_file']) },
);

function senderShape(typeRequired: boolean) {
  const type = exactly(SENDER_TYPE);
  return {
    type: typeRequired ? type : opt(type.optional()),
    ...commonShape(),
    reflector: hostOrIp(),
    port: opt(int(1, 65535).default(DEFAULT_CONTROL_PORT)),
    reflector_port: opt(int(0, 65535).default(0)),
    dscp: opt(dscp().prefault('be')),
    n_packets: int(1, 10_000_000),
    model: oneOf(MODEL_NAMES),
    bandwidth: opt(int(1).optional()),
    size: opt(int(1).optional()),
    control_timeout: opt(seconds().default(5)),
    reply_timeout: opt(seconds().default(3)),
    mos: opt(oneOf(['g107', 'gufo']).default('g107')),
    mode: opt(modeList(`${MODE_FORMS}, or a list of them in order of preference`).prefault('open')),
    key_id: opt(keyId().optional()),
    secret: opt(secretString().optional()),
    secret_file: opt(nonEmptyString('a file path').optional()),
    // TWAMP Light / STAMP: `control: false` = no TWAMP-Control, `port` is the reflector's UDP port.
    control: opt(z.boolean({ error: expecting('true or false') }).default(true)),
    format: opt(oneOf(['twamp', 'stamp']).default('twamp')),
  };
}


/**
 * `format: stamp` and `reflector_port` need `control: false` / true
 * respectively; TWAMP Light is open mode only, STAMP open or authenticated
 * (RFC 8762 §4.2.2; one mode: nothing negotiates it).
 */
const senderLightCheck = z.superRefine<Pick<SenderFields, 'control' | 'format' | 'mode' | 'reflector_port'>>(
  (v, ctx) => {
    if (v.control) {
      if (v.format !== 'twamp') {
        ctx.addIssue({ code: 'custom', message: `format ${JSON.stringify(v.format)} needs control: false (STAMP has no TWAMP-Control)`, path: ['format'], input: v.format });
      }
      return;
    }
    if (v.reflector_port !== 0) {
      ctx.addIssue({ code: 'custom', message: 'not used with control: false (set port to the reflector\'s UDP test port)', path: ['reflector_port'], input: v.reflector_port });
    }
    const secured = v.mode.filter((m) => m !== 'open');
    if (v.format === 'stamp') {
      const ok = v.mode.length === 1 && (v.mode[0] === 'open' || v.mode[0] === 'authenticated');
      if (!ok) {
        ctx.addIssue({
          code: 'custom',
          message: `control: false with format "stamp" takes one mode, "open" or "authenticated" (STAMP has no encryption and no negotiation); got ${v.mode.map((m) => JSON.stringify(m)).join(', ')}`,
          path: ['mode'],
          input: v.mode,
        });
      }
      return;
    }
    if (secured.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `control: false (TWAMP Light / STAMP) is unauthenticated only; got mode ${secured.map((m) => JSON.stringify(m)).join(', ')}`,
        path: ['mode'],
        input: v.mode,
      });
    }
  },
  { when: whenClean(['control', 'format', 'mode', 'reflector_port']) },
);

/** The model keys (and the reflector, when the template has one: its IP version). */
type ModelFields = Pick<SenderFields, 'model' | 'bandwidth' | 'size'> & { reflector?: string | undefined };

export function modelConfigOf(v: ModelFields): ModelConfig {
  const cfg: ModelConfig = { model: v.model };
  if (v.bandwidth !== undefined) cfg.bandwidth = v.bandwidth;
  if (v.size !== undefined) cfg.size = v.size;
  return cfg;
}

const modelCheck = z.superRefine<ModelFields>(
  (v, ctx) => {
    try {
      createTrafficModel(modelConfigOf(v));
      // An IPv6 literal fixes the IP version now; host names are checked once resolved.
      if (typeof v.reflector === 'string' && net.isIPv6(v.reflector)) {
        checkModelForIpVersion(createTrafficModel(modelConfigOf(v), 6), 6);
      }
    } catch (err) {
      if (!(err instanceof ModelConfigError)) throw err;
      ctx.addIssue({ code: 'custom', message: withoutPrefix(err.message, err.key), path: [err.key], input: v[err.key] });
    }
  },
  { when: whenClean(['model', 'bandwidth', 'size']) },
);

export function senderSchema(typeRequired = true) {
  return strictMap(senderShape(typeRequired), 'a twamp_sender collector (map)').check(modelCheck, relabelCheck, senderSecurityCheck, senderLightCheck);
}


function reflectorLimitsShape() {
  const d = REFLECTOR_LIMIT_DEFAULTS;
  return {
    max_connections: opt(int(1, 100_000).default(d.maxConnections)),
    max_sessions_per_connection: opt(int(1, 100_000).default(d.maxSessionsPerConnection)),
    max_session_duration: opt(seconds().default(d.maxSessionDurationMs / 1000)),
    max_pps_per_session: opt(int(1, 10_000_000).default(d.maxPpsPerSession)),
    max_pps: opt(int(1, 100_000_000).default(d.maxPps)),
    max_padding: opt(int(0, 65_535).default(d.maxPadding)),
    allow: opt(cidrList().default([])),
    deny: opt(cidrList().default([])),
    control_timeout: opt(seconds().default(d.controlTimeoutMs / 1000)),
    // Per client (docs/security.md): source address, IPv6 grouped by client_ipv6_prefix.
    max_connections_per_client: opt(int(1, 100_000).default(d.maxConnectionsPerClient)),
    max_sessions_per_client: opt(int(1, 100_000).default(d.maxSessionsPerClient)),
    client_ipv6_prefix: opt(int(1, 128).default(d.clientIpv6Prefix)),
    kdf_rate_per_client: opt(int(1, 100_000).default(d.kdfRatePerClient)),
    allow_third_party_sender: opt(z.boolean({ error: expecting('true or false') }).default(false)),
    allow_reply_ports: opt(replyPortList().default([])),
  };
}

function reflectorShape(typeRequired: boolean) {
  const type = exactly(REFLECTOR_TYPE);
  return {
    type: typeRequired ? type : opt(type.optional()),
    ...commonShape(),
    listen: opt(listenIp().default('0.0.0.0')),
    port: opt(int(0, 65535).default(DEFAULT_CONTROL_PORT)),
    max_sessions: opt(int(1, 100_000).default(1000)),
    refwait: opt(seconds().default(900)),
    servwait: opt(seconds().default(900)),
    test_port_range: opt(portRange().optional()),
    modes: opt(modeList(`a list of allowed modes, each ${MODE_FORMS}`).prefault(['open'])),
    key_file: opt(nonEmptyString('a file path').optional()),
    kdf_count: opt(kdfCount().default(2048)),
    ...reflectorLimitsShape(),
    ...reflectorLightShape(),
  };
}

/**
 * TWAMP Light / STAMP reflector: `light_port` absent = off; `control: false` = Light only.
 * The budgets and `light_symmetric_only` keep it from amplifying spoofed traffic (docs/security.md).
 */
function reflectorLightShape() {
  return {
    light_port: opt(int(0, 65535).optional()),
    control: opt(z.boolean({ error: expecting('true or false') }).default(true)),
    light_stateful: opt(z.boolean({ error: expecting('true or false') }).optional()),
    light_rate_limit: opt(int(1, 10_000_000).optional()),
    light_max_pps: opt(int(1, 10_000_000).optional()),
    light_max_octets_per_source: opt(int(1, 10_000_000_000).optional()),
    light_max_octets: opt(int(1, 10_000_000_000).optional()),
    light_symmetric_only: opt(z.boolean({ error: expecting('true or false') }).optional()),
    light_key_id: opt(keyId().optional()),
    light_format: opt(oneOf(['auto', 'twamp', 'stamp']).optional()),
    // RFC 8972 §4.4 Class of Service TLV: the DSCP1 values granted besides the received DSCP (docs/security.md).
    light_cos_allow: opt(dscpList().optional()),
  };
}

/** Keys that mean something only with `light_port`. */
const LIGHT_ONLY_KEYS = [
  'light_stateful', 'light_rate_limit', 'light_max_pps', 'light_max_octets_per_source', 'light_max_octets',
  'light_symmetric_only', 'light_key_id', 'light_format', 'light_cos_allow',
] as const;


const reflectorLightCheck = z.superRefine<Pick<ReflectorFields, 'light_port' | 'control' | 'key_file' | (typeof LIGHT_ONLY_KEYS)[number]>>(
  (v, ctx) => {
    if (v.light_port !== undefined) {
      if (v.light_key_id !== undefined && v.key_file === undefined) {
        ctx.addIssue({ code: 'custom', message: 'light_key_id needs key_file (it names an entry of it)', path: ['key_file'], input: undefined });
      }
      return;
    }
    if (!v.control) {
      ctx.addIssue({ code: 'custom', message: 'control: false needs light_port (nothing would listen)', path: ['light_port'], input: undefined });
    }
    for (const k of LIGHT_ONLY_KEYS) {
      if (v[k] !== undefined) ctx.addIssue({ code: 'custom', message: 'only used with light_port', path: [k], input: v[k] });
    }
  },
  { when: whenClean(['light_port', 'control', ...LIGHT_ONLY_KEYS, 'key_file']) },
);

export function reflectorSchema(typeRequired = true) {
  return strictMap(reflectorShape(typeRequired), 'a twamp_reflector collector (map)').check(relabelCheck, reflectorSecurityCheck, reflectorLightCheck);
}

const SUPPORTED_TYPES = COLLECTOR_TYPES.map((t) => JSON.stringify(t)).join(', ');

/** Any collector, dispatched on `type`. */
export const collectorSchema = z.discriminatedUnion('type', [senderSchema(true), reflectorSchema(true)], {
  error: (iss) => {
    const input = iss.input;
    if (input === null || typeof input !== 'object' || Array.isArray(input)) {
      return `expected a collector (map with "id" and "type"), got ${describeValue(input)}`;
    }
    const type = (input as Record<string, unknown>).type;
    return type === undefined
      ? `required key is missing (expected one of ${SUPPORTED_TYPES})`
      : `unsupported collector type ${describeValue(type)}; supported types: ${SUPPORTED_TYPES}`;
  },
});

const TLS_UNSUPPORTED = 'TLS for the metrics endpoint is not implemented; put a TLS-terminating proxy in front';

const senderSection = () =>
  strictMap(
    {
      type: opt(exactly('openmetrics', ' (the only supported sender type)').default('openmetrics')),
      mode: opt(exactly('pull', ' (the only supported mode)').default('pull')),
      listen: opt(listenAddress().optional()),
      path: opt(string('a URL path starting with "/"').startsWith('/').default('/metrics')),
    },
    'a map',
    {
      listen_tls: TLS_UNSUPPORTED,
      cert_path: TLS_UNSUPPORTED,
      key_path: TLS_UNSUPPORTED,
      client_auth_requred_path: TLS_UNSUPPORTED,
      client_auth_required_path: TLS_UNSUPPORTED,
      tls_redirect: TLS_UNSUPPORTED,
    },
  );

const otlpSection = () =>
  strictMap(
    {
      endpoint: opt(z.url({ protocol: /^https?$/, error: expecting('an http(s) URL') }).optional()),
      protocol: opt(oneOf(['http/protobuf', 'http/json']).default('http/protobuf')),
      headers: opt(
        z.record(string(), scalarString(), { error: expecting('a map of header names to values') }).default({}),
      ),
      interval: opt(seconds().default(60)),
      timeout: opt(seconds().default(10)),
      temporality: opt(oneOf(['cumulative', 'delta']).default('cumulative')),
    },
    'a map',
  );

// Probe endpoint (docs/configuration.md "Probe endpoint (multi-target)"): `modules:` and `probe:`.

const NOT_IN_A_MODULE: Readonly<Record<string, string>> = {
  id: 'a module has no id: the series carry the module name as the collector id',
  reflector: 'a module has no reflector: the target comes from the ?target= parameter of /probe',
  interval: "a module has no interval: Prometheus's scrape_interval sets how often it runs",
  type: 'a module is always a twamp_sender; leave type out',
  disabled: 'remove the module instead of disabling it',
};

/**
 * A probe module: the `twamp_sender` keys other than id, reflector, interval
 * (and type, disabled), plus `allow` (target networks; replaces probe.allow
 * for this module). The sender's own checks apply.
 */
export function probeModuleSchema() {
  const { type: _t, id: _i, reflector: _r, interval: _n, disabled: _d, ...rest } = senderShape(false);
  return strictMap({ ...rest, allow: opt(cidrList().optional()) }, 'a probe module (map of twamp_sender keys)', NOT_IN_A_MODULE)
    .check(modelCheck, relabelCheck, senderSecurityCheck, senderLightCheck);
}

// Mesh (docs/configuration.md "Mesh"): test templates and the reflector of a mesh definition.

const NOT_IN_A_MESH_TEST: Readonly<Record<string, string>> = {
  id: 'a mesh test has no id: each sender is named mesh/TEST/SRC->DST',
  reflector: 'a mesh test has no reflector: the targets are the members its groups name',
  port: "a mesh test has no port: a sender uses its target member's port (light_port with control: false)",
  type: 'a mesh test is always a twamp_sender; leave type out',
  disabled: 'remove the group or the test instead of disabling it',
  relabel: 'not in mesh tests (a View renames an instrument for the whole agent); use the agent file',
  relabel_dialect: 'not in mesh tests',
};

/** A mesh test template: the `twamp_sender` keys other than id, reflector and port; the sender's own checks apply. */
export function meshTestSchema() {
  const { type: _t, id: _i, reflector: _r, port: _p, disabled: _d, relabel: _rl, relabel_dialect: _rd, ...rest } = senderShape(false);
  return strictMap(rest, 'a mesh test (map of twamp_sender keys)', NOT_IN_A_MESH_TEST)
    .transform((v) => ({ ...v, relabel: [] as RelabelRule[], relabel_dialect: 'prometheus' as const }))
    .check(modelCheck, senderSecurityCheck, senderLightCheck);
}

const NOT_IN_A_MESH_REFLECTOR: Readonly<Record<string, string>> = {
  id: 'the mesh reflector is named mesh/reflector',
  listen: "set listen on the member (members[].listen)",
  port: "set port on the member (members[].port)",
  light_port: "set light_port on the member (members[].light_port)",
  type: 'leave type out',
  disabled: 'a member that is a target runs the reflector',
  relabel: 'not in a mesh (a View renames an instrument for the whole agent); use the agent file',
  relabel_dialect: 'not in a mesh',
  interval: 'a reflector has no interval',
};

/** The `reflector:` section of a mesh: `twamp_reflector` keys other than id, listen, port, light_port. */
export function meshReflectorSchema() {
  const { type: _t, id: _i, listen: _l, port: _p, light_port: _lp, disabled: _d, relabel: _rl, relabel_dialect: _rd, interval: _n, ...rest } = reflectorShape(false);
  return strictMap(rest, 'a map of twamp_reflector keys', NOT_IN_A_MESH_REFLECTOR)
    .transform((v) => ({ ...v, relabel: [] as RelabelRule[], relabel_dialect: 'prometheus' as const, light_port: undefined as number | undefined }))
    .check(reflectorSecurityCheck);
}

/** `mesh:` of the agent file: where the mesh definition is, which member this agent is. */
export const meshSectionSchema = strictMap(
  {
    source: nonEmptyString('a file path (relative to this file) or an http(s) URL'),
    self: opt(nonEmptyString('a member name').optional()),
    interval: opt(seconds().default(60)),
    // Servers for member sets from DNS (docs/configuration.md "Mesh"); absent = the system's.
    dns_servers: opt(z.array(string().refine((v) => net.isIP(v.replace(/^\[(.*)\](:\d{1,5})?$/, '$1').replace(/^([\d.]+):\d{1,5}$/, '$1')) !== 0),
      { error: expecting('a list of DNS server addresses (IP, IP:PORT or [IPv6]:PORT)') }).optional()),
  },
  'a map with "source"',
);

const probeRate = () => z.number({ error: expecting('a number of probes per second > 0 and ≤ 1000') }).gt(0).max(1000);

export const probeSectionSchema = strictMap(
  {
    allow: opt(cidrList().default([])),
    max_concurrent: opt(int(1, 1000).default(8)),
    max_per_second: opt(probeRate().default(10)),
    max_per_target_per_second: opt(probeRate().default(1)),
    timeout: opt(seconds().default(10)),
  },
  'a map',
);

export const defaultsSectionSchema = strictMap({ interval: opt(int(1).default(60)) }, 'a map');

const agentSection = () =>
  strictMap(
    {
      host: opt(nonEmptyString().optional()),
      labels: labels(),
      defaults: opt(defaultsSectionSchema.prefault({})),
      // The session cap (src/session/sessionGate.ts); 8 per reflector = our reflector's max_connections_per_client.
      max_concurrent_sessions: opt(int(1, 100_000).default(100)),
      max_sessions_per_reflector: opt(int(1, 100_000).default(8)),
    },
    'a map',
  );

/** The whole file except the collectors themselves, which are parsed one by one. */
export const agentFileSchema = strictMap(
  {
    $version: z.literal('1.0', {
      // YAML reads an unquoted 1.0 as the number 1.
      error: (iss) =>
        typeof iss.input === 'number'
          ? `expected the string "1.0", got the number ${iss.input} (quote it: $version: "1.0")`
          : expecting('"1.0"')(iss),
    }),
    $type: opt(exactly('zeroconf').optional()),
    agent: opt(agentSection().prefault({})),
    sender: opt(senderSection().optional()),
    otlp: opt(otlpSection().optional()),
    naming: opt(oneOf(['legacy', 'otel']).default('legacy')),
    probe: opt(probeSectionSchema.optional()),
    modules: opt(z.record(string('a module name'), z.unknown(), { error: expecting('a map of module names to twamp_sender settings') }).optional()),
    mesh: opt(meshSectionSchema.optional()),
    // Required unless `mesh:` is given (the check below).
    collectors: opt(z.array(z.unknown(), { error: expecting('a list of collectors (may be empty)') }).optional()),
  },
  'a map with "$version" and "collectors"',
).check(z.superRefine<{ collectors?: unknown[] | undefined; mesh?: unknown }>((v, ctx) => {
  if (v.collectors === undefined && v.mesh === undefined) {
    ctx.addIssue({ code: 'custom', message: 'required key is missing (expected a list of collectors (may be empty), or a mesh section)', path: ['collectors'], input: undefined });
  }
}, { when: (p) => p.value !== null && typeof p.value === 'object' && !Array.isArray(p.value) && !p.issues.some((i) => i.path?.[0] === 'collectors' || i.path?.[0] === 'mesh') }));

export type AgentFile = z.output<typeof agentFileSchema>;
export type ParsedSender = z.output<ReturnType<typeof senderSchema>>;
export type ParsedReflector = z.output<ReturnType<typeof reflectorSchema>>;
export type ParsedCollector = z.output<typeof collectorSchema>;

/** Every key a collector accepts (common keys included), for the docs check. */
export const SENDER_KEYS: readonly string[] = Object.keys(senderShape(true));
export const REFLECTOR_KEYS: readonly string[] = Object.keys(reflectorShape(true));
export const COMMON_KEYS: readonly string[] = Object.keys(commonShape());
/** Keys of a probe module and of the `probe:` section. */
export const PROBE_MODULE_KEYS: readonly string[] = Object.keys(probeModuleSchema().shape);
export const PROBE_KEYS: readonly string[] = Object.keys(probeSectionSchema.shape);
