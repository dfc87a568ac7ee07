/**
 * Zod schemas for the Gufo Agent-compatible config (snake_case, seconds).
 * They check types, ranges and unknown keys and fill static defaults; every
 * schema carries its own message ("expected …, got …") so the loader only
 * has to add the location. Defaults that depend on context (the agent's
 * default interval, the host name, OTLP environment variables) and the
 * snake_case → camelCase mapping live in `load.ts`.
 */
import net from 'node:net';
import * as z from 'zod';
import { parseDscp } from '../protocol/dscp.js';
import { checkKdfCount } from '../protocol/crypto.js';
import { parseCidr, formatCidr, REFLECTOR_LIMIT_DEFAULTS } from '../session/limits.js';
import type { SecurityMode } from '../protocol/crypto.js';
import { checkModelForIpVersion, createTrafficModel, ModelConfigError } from '../measure/models.js';
import type { ModelConfig, ModelName } from '../measure/models.js';
import { compileRelabel, RelabelConfigError } from '../otel/relabel.js';
import type { RelabelRule } from '../otel/relabel.js';
import { COLLECTOR_TYPES } from './types.js';
import type { CollectorType } from './types.js';

// ---------------------------------------------------------------------------
// Messages

/** How a YAML value reads in a message: strings quoted, containers by kind. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  return String(v);
}

type ErrorFn = z.core.$ZodErrorMap;

/** One message for every issue a schema (and its checks) can raise. */
export function expecting(what: string): ErrorFn {
  return (iss) =>
    iss.input === undefined
      ? `required key is missing (expected ${what})`
      : `expected ${what}, got ${describeValue(iss.input)}`;
}

export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** Closest known key within edit distance 2 (case-insensitive), if any. */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

export function unknownKeyMessage(
  key: string,
  known: readonly string[],
  unsupported: Readonly<Record<string, string>> = {},
): string {
  const why = Object.hasOwn(unsupported, key) ? unsupported[key] : undefined;
  if (why !== undefined) return `not supported: ${why}`;
  const suggestion = suggestKey(key, known);
  return suggestion !== undefined
    ? `unknown key (did you mean "${suggestion}"?)`
    : `unknown key; known keys: ${known.join(', ')}`;
}

/**
 * Separator between the per-key messages of one `unrecognized_keys` issue;
 * the loader splits them into one issue per key (in `issue.keys` order).
 */
export const KEY_MESSAGE_SEPARATOR = '\u001f';

/** A map that rejects unknown keys, naming each and suggesting the closest known one. */
export function strictMap<S extends z.ZodRawShape>(
  shape: S,
  what: string,
  unsupported: Readonly<Record<string, string>> = {},
) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (iss) =>
      iss.code === 'unrecognized_keys'
        ? iss.keys.map((k) => unknownKeyMessage(k, known, unsupported)).join(KEY_MESSAGE_SEPARATOR)
        : expecting(what)(iss),
  });
}

// ---------------------------------------------------------------------------
// Building blocks

/** An optional key; an explicit YAML null (`labels:` with nothing after it) counts as absent. */
export function opt<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === null ? undefined : v), schema);
}

export function int(min: number, max?: number) {
  const what = max === undefined ? `an integer ≥ ${min}` : `an integer between ${min} and ${max}`;
  const s = z.int({ error: expecting(what) }).min(min);
  return max === undefined ? s : s.max(max);
}

/** Durations are capped at a day: longer is a typo, and setTimeout overflows at ~24.8 days. */
const MAX_SECONDS = 86_400;
const seconds = () => z.number({ error: expecting(`a number of seconds > 0 and ≤ ${MAX_SECONDS}`) }).gt(0).max(MAX_SECONDS);

export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: expecting(`one of ${values.map((v) => JSON.stringify(v)).join(', ')}`) });
}

function exactly<const T extends string>(value: T, hint = '') {
  return z.literal(value, { error: expecting(`${JSON.stringify(value)}${hint}`) });
}

const string = (what = 'a string') => z.string({ error: expecting(what) });
export const nonEmptyString = (what = 'a non-empty string') => z.string({ error: expecting(what) }).min(1);

/** Label values and the like: YAML numbers and booleans are taken as their text. */
const scalarString = () =>
  z.union([z.string(), z.number(), z.boolean()], { error: expecting('a string') }).transform(String);

/** Prometheus label names; `__` is reserved for internal use. */
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
export function isValidLabelName(name: string): boolean {
  return LABEL_NAME.test(name) && !name.startsWith('__');
}

export const labels = () =>
  opt(
    z
      .record(
        z.string().refine(isValidLabelName),
        scalarString(),
        {
          error: (iss) =>
            iss.code === 'invalid_key'
              ? `invalid label name ${JSON.stringify(iss.input)}: expected [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__"`
              : expecting('a map of label names to values')(iss),
        },
      )
      .default({}),
  );

/** RFC 1123 host name (letters, digits, hyphens; labels ≤ 63; total ≤ 253; not all-numeric TLD). */
const HOST_LABEL = /^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;
export function isHostname(s: string): boolean {
  const name = s.endsWith('.') ? s.slice(0, -1) : s;
  if (name.length === 0 || name.length > 253) return false;
  const parts = name.split('.');
  // A numeric last label would make "10.0.0.300" a host name; RFC 3696 §2 rules it out.
  return parts.every((p) => HOST_LABEL.test(p)) && !/^\d+$/.test(parts[parts.length - 1]!);
}

export const isHostOrIp = (s: string): boolean => net.isIP(s) !== 0 || isHostname(s);

export const hostOrIp = () => {
  const what = 'an IPv4/IPv6 address or a host name';
  return z.string({ error: expecting(what) }).refine(isHostOrIp, { error: expecting(what) });
};

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
export const MODEL_NAMES = ['g711', 'g729', 'cbr', 'imix'] as const satisfies readonly ModelName[];

const commonShape = () => ({
  id: nonEmptyString(),
  interval: opt(int(1).optional()),
  disabled: opt(z.boolean({ error: expecting('true or false') }).default(false)),
  labels: labels(),
  relabel: opt(z.array(relabelRuleSchema, { error: expecting('a list of relabel rules') }).default([])),
  relabel_dialect: opt(oneOf(['prometheus', 'gufo']).default('prometheus')),
});

/**
 * A check that runs only on a map whose listed keys parsed cleanly (so it
 * sees their typed values; never on `null` or a list given for the collector).
 */
function whenClean(keys: readonly string[]) {
  return (payload: z.core.ParsePayload) =>
    payload.value !== null && typeof payload.value === 'object' && !Array.isArray(payload.value) &&
    !payload.issues.some((i) => typeof i.path?.[0] === 'string' && keys.includes(i.path[0]));
}

interface RelabelFields {
  relabel: RelabelRule[];
  relabel_dialect: 'prometheus' | 'gufo';
}

const relabelCheck = z.superRefine<RelabelFields>(
  (v, ctx) => {
    try {
      compileRelabel(v.relabel, { dialect: v.relabel_dialect });
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

const DSCP_FORMS = 'a DSCP name (be, cs0–cs7, af11–af43, ef, nc1, nc2, cp0–cp63, case-insensitive) or an integer 0–63';

const dscp = () =>
  z
    .union([z.string(), z.number()], { error: expecting(DSCP_FORMS) })
    .transform((v, ctx) => {
      const code = parseDscp(v);
      if (code === undefined) {
        ctx.issues.push({ code: 'custom', message: `expected ${DSCP_FORMS}, got ${describeValue(v)}`, input: v });
        return z.NEVER;
      }
      return code;
    });

// ---------------------------------------------------------------------------
// Security (RFC 4656 §3.1, RFC 5618)

export const SECURITY_MODES = ['open', 'authenticated', 'encrypted', 'mixed'] as const satisfies readonly SecurityMode[];
const MODE_FORMS = `one of ${SECURITY_MODES.map((m) => JSON.stringify(m)).join(', ')}`;

/** A security mode, or a non-empty list of them without repeats. */
const modeList = (what: string) =>
  z
    .union([z.string(), z.array(z.unknown())], { error: expecting(what) })
    .transform((v, ctx): SecurityMode[] => {
      const list = Array.isArray(v) ? v : [v];
      if (list.length === 0) {
        ctx.issues.push({ code: 'custom', message: `expected ${what}, got an empty list`, input: v });
        return z.NEVER;
      }
      const out: SecurityMode[] = [];
      for (const [i, m] of list.entries()) {
        if (typeof m !== 'string' || !(SECURITY_MODES as readonly string[]).includes(m)) {
          ctx.issues.push({
            code: 'custom',
            message: `expected ${MODE_FORMS}, got ${describeValue(m)}`,
            input: m,
            ...(Array.isArray(v) ? { path: [i] } : {}),
          });
          return z.NEVER;
        }
        if (out.includes(m as SecurityMode)) {
          ctx.issues.push({ code: 'custom', message: `mode ${JSON.stringify(m)} is listed twice`, input: m, path: [i] });
          return z.NEVER;
        }
        out.push(m as SecurityMode);
      }
      return out;
    });

/** KeyID: 1–80 octets of UTF-8 (Set-Up-Response KeyID field, RFC 4656 §3.1), no whitespace (pfstore format). */
export const KEY_ID_MAX_OCTETS = 80;
export function keyIdProblem(id: string): string | undefined {
  if (id.length === 0) return 'must not be empty';
  if (Buffer.byteLength(id, 'utf8') > KEY_ID_MAX_OCTETS) return `must be at most ${KEY_ID_MAX_OCTETS} octets of UTF-8`;
  if (/[\s\u0000]/.test(id)) return 'must not contain whitespace or NUL';
  return undefined;
}
const keyId = () =>
  z.string({ error: expecting('a key id (string)') }).superRefine((s, ctx) => {
    const problem = keyIdProblem(s);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `key id ${problem}`, input: s });
  });

/** Never echo a secret's value in a message. */
const secretString = () =>
  z.string({ error: (iss) => (iss.input === undefined ? 'required key is missing (expected a string)' : 'expected a string') })
    .min(1, { error: 'must not be empty' })
    .refine((s) => !/[\r\n]/.test(s), { error: 'must not contain line breaks (RFC 5357 §3.1)' });

/**
 * The server runs PBKDF2 with this count once per authenticated connection, on
 * the event loop; clients refuse more than 32768 by default (RFC 5357 §6).
 */
const KDF_COUNT_MAX = 2 ** 20;
const kdfCount = () =>
  z.int({ error: expecting(`a power of two between 1024 and ${KDF_COUNT_MAX}`) }).superRefine((n, ctx) => {
    const problem = checkKdfCount(n, KDF_COUNT_MAX);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem, input: n });
  });

interface SenderSecurityFields {
  mode: SecurityMode[];
  key_id?: string | undefined;
  secret?: string | undefined;
  secret_file?: string | undefined;
}

const senderSecurityCheck = z.superRefine<SenderSecurityFields>(
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

interface ReflectorSecurityFields {
  modes: SecurityMode[];
  key_file?: string | undefined;
}

const reflectorSecurityCheck = z.superRefine<ReflectorSecurityFields>(
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
    port: opt(int(1, 65535).default(862)),
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
    // TWAMP Light / STAMP (issue 5): `control: false` = no TWAMP-Control, `port` is the reflector's UDP port.
    control: opt(z.boolean({ error: expecting('true or false') }).default(true)),
    format: opt(oneOf(['twamp', 'stamp']).default('twamp')),
  };
}

interface SenderLightFields {
  control: boolean;
  format: 'twamp' | 'stamp';
  mode: SecurityMode[];
  reflector_port: number;
}

/**
 * `format: stamp` and `reflector_port` need `control: false` / true
 * respectively; TWAMP Light is open mode only, STAMP open or authenticated
 * (RFC 8762 §4.2.2; one mode: nothing negotiates it).
 */
const senderLightCheck = z.superRefine<SenderLightFields>(
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

interface ModelFields {
  model: ModelName;
  bandwidth?: number | undefined;
  size?: number | undefined;
  reflector?: string | undefined;
}

export function modelConfigOf(v: ModelFields): ModelConfig {
  const cfg: ModelConfig = { model: v.model };
  if (v.bandwidth !== undefined) cfg.bandwidth = v.bandwidth;
  if (v.size !== undefined) cfg.size = v.size;
  return cfg;
}

/** Other modules prefix their messages with the key; our location prefix already names it. */
function withoutPrefix(message: string, prefix: string): string {
  return message.startsWith(`${prefix}: `) ? message.slice(prefix.length + 2) : message;
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

export const listenIp = () => {
  const what = 'an IPv4/IPv6 address ("" or "0.0.0.0" = all interfaces)';
  return z
    .string({ error: expecting(what) })
    .refine((s) => s === '' || net.isIP(s) !== 0, { error: expecting(what) })
    // Gufo's own docs configure `listen: ""`; read it as "all interfaces".
    .transform((s) => (s === '' ? '0.0.0.0' : s));
};

const PORT_RANGE_FORM = '"lo-hi" with 1 ≤ lo ≤ hi ≤ 65535';
const portRange = () =>
  z
    .string({ error: expecting(PORT_RANGE_FORM) })
    .transform((s, ctx): [number, number] => {
      const m = /^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$/.exec(s);
      const lo = Number(m?.[1]);
      const hi = Number(m?.[2]);
      if (!m || lo < 1 || hi > 65535 || lo > hi) {
        ctx.issues.push({ code: 'custom', message: `expected ${PORT_RANGE_FORM}, got ${describeValue(s)}`, input: s });
        return z.NEVER;
      }
      return [lo, hi];
    });

// Reflector limits (issue 7): every one has a safe default.

const CIDR_FORM = 'a list of IPv4/IPv6 networks in CIDR notation ("192.0.2.0/24", "2001:db8::/32", or a single address)';

/** A list of client networks; each normalized to "address/prefix". */
const cidrList = () =>
  z
    .union([z.string(), z.array(z.unknown())], { error: expecting(CIDR_FORM) })
    .transform((v, ctx): string[] => {
      const list = Array.isArray(v) ? v : [v];
      const out: string[] = [];
      for (const [i, item] of list.entries()) {
        const c = typeof item === 'string' ? parseCidr(item) : undefined;
        if (c === undefined) {
          ctx.issues.push({
            code: 'custom',
            message: `expected an IPv4/IPv6 network in CIDR notation, got ${describeValue(item)}`,
            input: item,
            ...(Array.isArray(v) ? { path: [i] } : {}),
          });
          return z.NEVER;
        }
        out.push(formatCidr(c));
      }
      return out;
    });

const REPLY_PORTS_FORM = 'a list of ports below 1024 replies may go to (e.g. [862])';

/** `allow_reply_ports`: ports 1–1023 (from 1024 on, every port is allowed anyway). */
const replyPortList = () =>
  z.array(int(1, 1023), { error: expecting(REPLY_PORTS_FORM) });

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
    port: opt(int(0, 65535).default(862)),
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
  };
}

/** Keys that mean something only with `light_port`. */
const LIGHT_ONLY_KEYS = [
  'light_stateful', 'light_rate_limit', 'light_max_pps', 'light_max_octets_per_source', 'light_max_octets',
  'light_symmetric_only', 'light_key_id', 'light_format',
] as const;

interface ReflectorLightFields {
  light_port?: number | undefined;
  control: boolean;
  light_stateful?: boolean | undefined;
  light_rate_limit?: number | undefined;
  light_max_pps?: number | undefined;
  light_max_octets_per_source?: number | undefined;
  light_max_octets?: number | undefined;
  light_symmetric_only?: boolean | undefined;
  light_key_id?: string | undefined;
  light_format?: 'auto' | 'twamp' | 'stamp' | undefined;
  key_file?: string | undefined;
}

const reflectorLightCheck = z.superRefine<ReflectorLightFields>(
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

// ---------------------------------------------------------------------------
// Agent file

const LISTEN_FORM = '"host:port" (IPv6 as "[::1]:9464", port 1–65535)';

/** Prometheus endpoint address: `host:port`, `[v6]:port`, or `:port` (all interfaces). */
export function parseListen(s: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:[\]]*):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const [, rawHost, rawPort] = m as unknown as [string, string, string];
  const port = Number(rawPort);
  if (port < 1 || port > 65535) return undefined;
  const bracketed = s.startsWith('[');
  if (bracketed && !net.isIPv6(rawHost)) return undefined;
  const host = rawHost === '' ? '0.0.0.0' : rawHost;
  if (!bracketed && !isHostOrIp(host)) return undefined;
  return { host, port };
}

const listenAddress = () =>
  z.string({ error: expecting(LISTEN_FORM) }).transform((s, ctx) => {
    const parsed = parseListen(s);
    if (parsed === undefined) {
      ctx.issues.push({ code: 'custom', message: `expected ${LISTEN_FORM}, got ${describeValue(s)}`, input: s });
      return z.NEVER;
    }
    return parsed;
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
