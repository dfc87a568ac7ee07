/**
 * Zod building blocks of the config schemas (src/config/schema.ts): field
 * types with their ranges and their own messages ("expected …, got …"), the
 * strict map that names unknown keys with a suggestion, and the parsers of
 * the text forms (DSCP names, security modes, CIDR lists, port ranges,
 * listen addresses). Each value comes out typed: a CIDR list as parsed
 * networks, a port range as a pair, a DSCP name as its code point.
 */
import net from 'node:net';
import * as z from 'zod';
import { dscpName, parseDscp } from '../protocol/dscp.js';
import { checkKdfCount } from '../protocol/crypto.js';
import type { SecurityMode } from '../protocol/crypto.js';
import { parseCidr, type Cidr } from '../util/net.js';

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
export const seconds = () => z.number({ error: expecting(`a number of seconds > 0 and ≤ ${MAX_SECONDS}`) }).gt(0).max(MAX_SECONDS);

export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: expecting(`one of ${values.map((v) => JSON.stringify(v)).join(', ')}`) });
}

export function exactly<const T extends string>(value: T, hint = '') {
  return z.literal(value, { error: expecting(`${JSON.stringify(value)}${hint}`) });
}

export const string = (what = 'a string') => z.string({ error: expecting(what) });
export const nonEmptyString = (what = 'a non-empty string') => z.string({ error: expecting(what) }).min(1);

/** Label values and the like: YAML numbers and booleans are taken as their text. */
export const scalarString = () =>
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

/**
 * A check that runs only on a map whose listed keys parsed cleanly (so it
 * sees their typed values; never on `null` or a list given for the collector).
 */
export function whenClean(keys: readonly string[]) {
  return (payload: z.core.ParsePayload) =>
    payload.value !== null && typeof payload.value === 'object' && !Array.isArray(payload.value) &&
    !payload.issues.some((i) => typeof i.path?.[0] === 'string' && keys.includes(i.path[0]));
}

const DSCP_FORMS = 'a DSCP name (be, cs0–cs7, af11–af43, ef, nc1, nc2, cp0–cp63, case-insensitive) or an integer 0–63';

export const dscp = () =>
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

const DSCP_LIST_FORMS = `a list of DSCPs, each ${DSCP_FORMS}`;

/**
 * A list of DSCPs (`light_cos_allow`), each as `dscp()` takes it; a single
 * value is a list of one. Every bad or repeated entry is reported at its
 * own position; what comes out is the code points, in the order given.
 */
export const dscpList = () =>
  z
    .union([z.string(), z.number(), z.array(z.unknown())], { error: expecting(DSCP_LIST_FORMS) })
    .transform((v, ctx): number[] => {
      const list = Array.isArray(v) ? v : [v];
      const out: number[] = [];
      let bad = false;
      for (const [i, item] of list.entries()) {
        const at = Array.isArray(v) ? { path: [i] } : {};
        const code = typeof item === 'string' || typeof item === 'number' ? parseDscp(item) : undefined;
        if (code === undefined) {
          ctx.issues.push({ code: 'custom', message: `expected ${DSCP_FORMS}, got ${describeValue(item)}`, input: item, ...at });
          bad = true;
        } else if (out.includes(code)) {
          ctx.issues.push({ code: 'custom', message: `DSCP ${code} (${dscpName(code)}) is listed twice`, input: item, ...at });
          bad = true;
        } else out.push(code);
      }
      return bad ? z.NEVER : out;
    });

// ---------------------------------------------------------------------------
// Security (RFC 4656 §3.1, RFC 5618)

export const SECURITY_MODES = ['open', 'authenticated', 'encrypted', 'mixed'] as const satisfies readonly SecurityMode[];
export const MODE_FORMS = `one of ${SECURITY_MODES.map((m) => JSON.stringify(m)).join(', ')}`;

/** A security mode, or a non-empty list of them without repeats. */
export const modeList = (what: string) =>
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
export const keyId = () =>
  z.string({ error: expecting('a key id (string)') }).superRefine((s, ctx) => {
    const problem = keyIdProblem(s);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `key id ${problem}`, input: s });
  });

/** Never echo a secret's value in a message. */
export const secretString = () =>
  z.string({ error: (iss) => (iss.input === undefined ? 'required key is missing (expected a string)' : 'expected a string') })
    .min(1, { error: 'must not be empty' })
    .refine((s) => !/[\r\n]/.test(s), { error: 'must not contain line breaks (RFC 5357 §3.1)' });

/**
 * The server runs PBKDF2 with this count once per authenticated connection, on
 * the event loop; clients refuse more than 32768 by default (RFC 5357 §6).
 */
const KDF_COUNT_MAX = 2 ** 20;
export const kdfCount = () =>
  z.int({ error: expecting(`a power of two between 1024 and ${KDF_COUNT_MAX}`) }).superRefine((n, ctx) => {
    const problem = checkKdfCount(n, KDF_COUNT_MAX);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem, input: n });
  });

/** Other modules prefix their messages with the key; our location prefix already names it. */
export function withoutPrefix(message: string, prefix: string): string {
  return message.startsWith(`${prefix}: `) ? message.slice(prefix.length + 2) : message;
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
export const portRange = () =>
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

const CIDR_FORM = 'a list of IPv4/IPv6 networks in CIDR notation ("192.0.2.0/24", "2001:db8::/32", or a single address)';

/** A list of networks, parsed once here: what comes out is the typed networks every user of the list shares. */
export const cidrList = () =>
  z
    .union([z.string(), z.array(z.unknown())], { error: expecting(CIDR_FORM) })
    .transform((v, ctx): Cidr[] => {
      const list = Array.isArray(v) ? v : [v];
      const out: Cidr[] = [];
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
        out.push(c);
      }
      return out;
    });

const REPLY_PORTS_FORM = 'a list of ports below 1024 replies may go to (e.g. [862])';

/** `allow_reply_ports`: ports 1–1023 (from 1024 on, every port is allowed anyway). */
export const replyPortList = () =>
  z.array(int(1, 1023), { error: expecting(REPLY_PORTS_FORM) });

// ---------------------------------------------------------------------------
// Addresses

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

export const listenAddress = () =>
  z.string({ error: expecting(LISTEN_FORM) }).transform((s, ctx) => {
    const parsed = parseListen(s);
    if (parsed === undefined) {
      ctx.issues.push({ code: 'custom', message: `expected ${LISTEN_FORM}, got ${describeValue(s)}`, input: s });
      return z.NEVER;
    }
    return parsed;
  });

