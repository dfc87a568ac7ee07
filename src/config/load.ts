/**
 * Loads an agent config (Gufo Agent format, YAML or JSON), validates it
 * completely and returns the normalized {@link AgentConfig}. All problems are
 * collected and thrown together as one {@link ConfigError}, each naming the
 * offending key with `file:line:col` when the config came from text.
 */
import { closeSync, constants as fsConstants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import os from 'node:os';
import { dirname, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document } from 'yaml';
import type * as z from 'zod';
import { ConfigError, sourceLine } from './errors.js';
import type { ConfigIssue, ConfigPath } from './errors.js';
import {
  agentFileSchema,
  collectorSchema,
  defaultsSectionSchema,
  describeValue,
  KEY_MESSAGE_SEPARATOR,
  keyIdProblem,
  modelConfigOf,
  probeModuleSchema,
  reflectorSchema,
  senderSchema,
} from './schema.js';
import type { AgentFile, ParsedCollector, ParsedReflector, ParsedSender } from './schema.js';
import { Secret } from './types.js';
import type { AgentConfig, CollectorConfig, OtlpConfig, ProbeConfig, ProbeModuleConfig, ReflectorConfig, SenderConfig } from './types.js';
import { REFLECTOR_LIMIT_DEFAULTS } from '../session/limits.js';

export const DEFAULT_INTERVAL_S = 60;
export const DEFAULT_OTLP_ENDPOINT = 'http://localhost:4318/v1/metrics';

// ---------------------------------------------------------------------------
// Issues and their locations

/** A problem before the source and location are attached. */
export interface RawIssue {
  path: ConfigPath;
  message: string;
}

/** Safety net for any issue a schema did not word itself. */
export const fallbackMessage: z.core.$ZodErrorMap = (iss) => `invalid value ${describeValue(iss.input)}`;

export function fromZod(issues: readonly z.core.$ZodIssue[], prefix: ConfigPath = []): RawIssue[] {
  const out: RawIssue[] = [];
  for (const iss of issues) {
    const path = [...prefix, ...iss.path.map((p) => (typeof p === 'number' ? p : String(p)))];
    if (iss.code === 'unrecognized_keys') {
      // strictMap words one message per key; give each key its own issue and location.
      const messages = iss.message.split(KEY_MESSAGE_SEPARATOR);
      iss.keys.forEach((key, i) => out.push({ path: [...path, key], message: messages[i] ?? 'unknown key' }));
    } else {
      out.push({ path, message: iss.message });
    }
  }
  return out;
}

interface Position {
  line: number;
  column: number;
}

/** Where the config text defines a value: positions come from the parsed YAML document. */
export class SourceMap {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  position(offset: number): Position {
    const { line, col } = this.lines.linePos(offset);
    return { line, column: col };
  }

  /**
   * The key at the end of `path`; for a missing key, the map that should hold
   * it; for a list item, the item.
   */
  locate(path: ConfigPath): Position | undefined {
    let node: unknown = this.doc.contents;
    let offset: number | undefined;
    for (const seg of path) {
      if (isAlias(node)) node = node.resolve(this.doc);
      if (isMap(node)) {
        offset = node.range?.[0] ?? offset;
        const pair = node.items.find((p) => keyText(p.key) === String(seg));
        if (pair === undefined) break;
        offset = (pair.key as { range?: [number, number, number] } | null)?.range?.[0] ?? offset;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        offset = node.range?.[0] ?? offset;
        const item: unknown = node.items[seg];
        if (item === undefined || item === null) break;
        offset = (item as { range?: [number, number, number] }).range?.[0] ?? offset;
        node = item;
      } else {
        break;
      }
    }
    return offset === undefined ? undefined : this.position(offset);
  }

  /** Path of the map key that starts at `offset`, and the line of an earlier key with the same name. */
  keyAt(offset: number): { path: ConfigPath; firstLine?: number } | undefined {
    const walk = (node: unknown, path: ConfigPath): { path: ConfigPath; firstLine?: number } | undefined => {
      if (isMap(node)) {
        for (const pair of node.items) {
          const key = keyText(pair.key);
          const range = (pair.key as { range?: [number, number, number] } | null)?.range;
          if (range?.[0] === offset) {
            const first = node.items.find((p) => p !== pair && keyText(p.key) === key);
            const firstOffset = (first?.key as { range?: [number, number, number] } | undefined)?.range?.[0];
            return firstOffset === undefined
              ? { path: [...path, key] }
              : { path: [...path, key], firstLine: this.position(firstOffset).line };
          }
          const found = walk(pair.value, [...path, key]);
          if (found) return found;
        }
      } else if (isSeq(node)) {
        for (let i = 0; i < node.items.length; i++) {
          const found = walk(node.items[i], [...path, i]);
          if (found) return found;
        }
      }
      return undefined;
    };
    return walk(this.doc.contents, []);
  }
}

/**
 * Keys defined twice in one map (YAML 1.2 §3.2.1.1: keys are unique), in
 * document order: one pass with a set per map, no recursion (a deeply
 * nested document cannot overflow the stack here). Equal means what the
 * yaml package's `uniqueKeys: true` means: scalar keys with the same value.
 */
function duplicateKeys(doc: Document, map: SourceMap, source: string): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const stack: { node: unknown; path: ConfigPath }[] = [{ node: doc.contents, path: [] }];
  while (stack.length > 0) {
    const { node, path } = stack.pop()!;
    const children: { node: unknown; path: ConfigPath }[] = [];
    if (isMap(node)) {
      const seen = new Map<unknown, number>();
      for (const pair of node.items) {
        const key = pair.key;
        const keyPath = [...path, keyText(key)];
        if (isScalar(key)) {
          const at = key.range?.[0];
          const first = seen.get(key.value);
          if (first === undefined) {
            if (at !== undefined) seen.set(key.value, at);
          } else if (at !== undefined) {
            const pos = map.position(at);
            const id = keyPath[0] === 'collectors' && typeof keyPath[1] === 'number' ? doc.getIn(['collectors', keyPath[1], 'id']) : undefined;
            out.push({
              source,
              path: keyPath,
              message: `duplicate key (first defined on line ${map.position(first).line})`,
              line: pos.line,
              column: pos.column,
              ...(typeof id === 'string' ? { collectorId: id } : {}),
            });
          }
        }
        children.push({ node: pair.value, path: keyPath });
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => children.push({ node: item, path: [...path, i] }));
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
  }
  return out.sort((a, b) => a.line! - b.line! || a.column! - b.column!);
}

function keyText(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Attaches source, position and collector id; sorts into document order. */
export function finish(
  raw: readonly RawIssue[],
  source: string,
  map: SourceMap | undefined,
  collectorIdOf: (path: ConfigPath) => string | undefined,
): ConfigIssue[] {
  const issues = raw.map((r): ConfigIssue => {
    const pos = map?.locate(r.path);
    const collectorId = collectorIdOf(r.path);
    return {
      source,
      path: r.path,
      message: r.message,
      ...(collectorId !== undefined ? { collectorId } : {}),
      ...(pos ? { line: pos.line, column: pos.column } : {}),
    };
  });
  const order = (i: ConfigIssue) => (i.line ?? Infinity) * 1e6 + (i.column ?? 0);
  return issues
    .map((issue, index) => ({ issue, index }))
    .sort((a, b) => order(a.issue) - order(b.issue) || a.index - b.index)
    .map((x) => x.issue);
}

// ---------------------------------------------------------------------------
// Files named by the config (secrets), read at load time

/** Where relative file names in a config resolve from, and the problems met reading them. */
export interface FileContext {
  /** Directory of the config file; the working directory for inline configs. */
  baseDir: string;
  issues: RawIssue[];
}

export function fileContext(source: string): FileContext {
  const isFile = source !== '<inline>' && !source.startsWith('<');
  const path = source.startsWith('file:') ? fileURLToPath(source) : source;
  return { baseDir: isFile ? dirname(resolvePath(path)) : process.cwd(), issues: [] };
}

function readProblem(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'is a directory' : e.message;
}

/** Largest `secret_file`: a pass-phrase is a line of text. */
export const MAX_SECRET_FILE_OCTETS = 64 * 1024;
/** Largest `key_file`: thousands of pfstore lines. */
export const MAX_KEY_FILE_OCTETS = 1024 * 1024;
/** Largest agent config file (50,000 labels are about 1 MiB). */
export const MAX_CONFIG_FILE_OCTETS = 16 * 1024 * 1024;

/** Why a file was not read (the message names the path). */
class FileReadError extends Error {}

function describeKind(st: Stats): string {
  return st.isDirectory() ? 'is a directory' : st.isFIFO() ? 'is a FIFO (named pipe)' : st.isCharacterDevice() ? 'is a character device'
    : st.isBlockDevice() ? 'is a block device' : st.isSocket() ? 'is a socket' : 'is not a regular file';
}

/**
 * A regular file's octets, at most `limit` of them. Opened non-blocking, so
 * a FIFO cannot stall the event loop in open(), and refused unless fstat
 * says it is a regular file (no /dev/zero, no pipes); the read stops past
 * `limit` even if the file grows after the fstat.
 */
export function readBoundedFile(path: string, limit: number): Buffer {
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (err) {
    throw new FileReadError(readProblem(err));
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new FileReadError(`${describeKind(st)}, expected a regular file`);
    if (st.size > limit) throw new FileReadError(`is ${st.size} octets, more than the ${limit} allowed`);
    const buf = Buffer.alloc(limit + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n > limit) throw new FileReadError(`grew past the ${limit} octets allowed while being read`);
    }
    return buf.subarray(0, n);
  } catch (err) {
    throw err instanceof FileReadError ? err : new FileReadError(readProblem(err));
  } finally {
    closeSync(fd);
  }
}

/** The file's octets, or undefined after recording an issue naming key and path. */
function readConfigFile(ctx: FileContext, key: string, name: string, limit: number): { path: string; data: Buffer } | undefined {
  const path = resolvePath(ctx.baseDir, name);
  try {
    return { path, data: readBoundedFile(path, limit) };
  } catch (err) {
    ctx.issues.push({ path: [key], message: `cannot read ${JSON.stringify(path)}: ${(err as Error).message}` });
    return undefined;
  }
}

/**
 * secret_file: the pass-phrase itself, on one line (a final line break is
 * ignored). Messages name the file, never its content.
 */
function readSecretFile(ctx: FileContext, name: string): Secret | undefined {
  const f = readConfigFile(ctx, 'secret_file', name, MAX_SECRET_FILE_OCTETS);
  if (!f) return undefined;
  const text = f.data.toString('utf8').replace(/\r?\n$/, '');
  const problem =
    text.length === 0 ? 'is empty' : /[\r\n]/.test(text) ? 'must hold the pass-phrase on a single line' : undefined;
  if (problem !== undefined) {
    ctx.issues.push({ path: ['secret_file'], message: `${JSON.stringify(f.path)} ${problem}` });
    return undefined;
  }
  return new Secret(text);
}

/**
 * Parses a perfSONAR pass-phrase file as `pfstore` writes it (I2util
 * I2ParsePFFile): one `<key id> <hex of the pass-phrase>` per line, blank
 * lines and lines starting with `#` ignored. Errors name file and line.
 */
export function parseKeyFile(text: string, file: string): { keys: Map<string, Secret> } | { error: string } {
  const keys = new Map<string, Secret>();
  const firstLine = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const at = `${JSON.stringify(file)} line ${i + 1}`;
    if (line === '' || line.startsWith('#')) continue;
    const parts = line.split(/\s+/);
    if (parts.length !== 2) return { error: `${at}: expected "<key id> <hex pass-phrase>" (as pfstore writes it)` };
    const [id, hex] = parts as [string, string];
    const idProblem = keyIdProblem(id);
    if (idProblem !== undefined) return { error: `${at}: key id ${idProblem}` };
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(hex)) {
      return { error: `${at}: the pass-phrase of ${JSON.stringify(id)} must be an even number of hex digits` };
    }
    const first = firstLine.get(id);
    if (first !== undefined) return { error: `${at}: key id ${JSON.stringify(id)} already defined on line ${first}` };
    firstLine.set(id, i + 1);
    keys.set(id, new Secret(Buffer.from(hex, 'hex')));
  }
  return { keys };
}

function readKeyFile(ctx: FileContext, name: string): Map<string, Secret> | undefined {
  const f = readConfigFile(ctx, 'key_file', name, MAX_KEY_FILE_OCTETS);
  if (!f) return undefined;
  const parsed = parseKeyFile(f.data.toString('utf8'), f.path);
  if ('error' in parsed) {
    ctx.issues.push({ path: ['key_file'], message: parsed.error });
    return undefined;
  }
  if (parsed.keys.size === 0) {
    ctx.issues.push({ path: ['key_file'], message: `${JSON.stringify(f.path)} holds no keys` });
    return undefined;
  }
  return parsed.keys;
}

// ---------------------------------------------------------------------------
// Normalization (snake_case seconds → camelCase milliseconds, context defaults)

const ms = (seconds: number) => Math.round(seconds * 1000);

/** The keys every collector has (Gufo's common collector config). */
function commonFields(p: ParsedSender | ParsedReflector, defaultInterval: number) {
  return {
    id: p.id,
    interval: p.interval ?? defaultInterval,
    disabled: p.disabled,
    labels: p.labels,
    relabel: p.relabel,
    relabelDialect: p.relabel_dialect,
  };
}

export function toSender(p: ParsedSender, defaultInterval: number, files: FileContext): SenderConfig {
  const cfg: SenderConfig = {
    type: 'twamp_sender',
    ...commonFields(p, defaultInterval),
    reflector: p.reflector,
    port: p.port,
    reflectorPort: p.reflector_port,
    dscp: p.dscp,
    nPackets: p.n_packets,
    model: modelConfigOf(p),
    controlTimeoutMs: ms(p.control_timeout),
    replyTimeoutMs: ms(p.reply_timeout),
    mos: p.mos,
    modes: p.mode,
  };
  if (p.key_id !== undefined) cfg.keyId = p.key_id;
  // Light keys only when not the default, so a plain TWAMP config normalizes as before.
  if (!p.control) cfg.control = false;
  if (p.format !== 'twamp') cfg.format = p.format;
  if (p.secret !== undefined) cfg.secret = new Secret(p.secret);
  else if (p.secret_file !== undefined) {
    const secret = readSecretFile(files, p.secret_file);
    if (secret) cfg.secret = secret;
  }
  return cfg;
}

export function toReflector(p: ParsedReflector, defaultInterval: number, files: FileContext): ReflectorConfig {
  const cfg: ReflectorConfig = {
    type: 'twamp_reflector',
    ...commonFields(p, defaultInterval),
    listen: p.listen,
    port: p.port,
    maxSessions: p.max_sessions,
    refwaitMs: ms(p.refwait),
    servwaitMs: ms(p.servwait),
    modes: p.modes,
    kdfCount: p.kdf_count,
    maxConnections: p.max_connections,
    maxSessionsPerConnection: p.max_sessions_per_connection,
    maxSessionDurationMs: ms(p.max_session_duration),
    maxPpsPerSession: p.max_pps_per_session,
    maxPps: p.max_pps,
    maxPadding: p.max_padding,
    allow: p.allow,
    deny: p.deny,
    controlTimeoutMs: ms(p.control_timeout),
  };
  // Per-client and third-party keys only when not the default, so older configs normalize as before.
  const d = REFLECTOR_LIMIT_DEFAULTS;
  if (p.max_connections_per_client !== d.maxConnectionsPerClient) cfg.maxConnectionsPerClient = p.max_connections_per_client;
  if (p.max_sessions_per_client !== d.maxSessionsPerClient) cfg.maxSessionsPerClient = p.max_sessions_per_client;
  if (p.client_ipv6_prefix !== d.clientIpv6Prefix) cfg.clientIpv6Prefix = p.client_ipv6_prefix;
  if (p.kdf_rate_per_client !== d.kdfRatePerClient) cfg.kdfRatePerClient = p.kdf_rate_per_client;
  if (p.allow_third_party_sender) cfg.allowThirdPartySender = true;
  if (p.allow_reply_ports.length > 0) cfg.allowReplyPorts = p.allow_reply_ports;
  if (p.test_port_range !== undefined) cfg.testPortRange = p.test_port_range;
  if (p.light_port !== undefined) {
    cfg.lightPort = p.light_port;
    cfg.lightStateful = p.light_stateful ?? false;
    cfg.lightRateLimit = p.light_rate_limit ?? 1000;
    cfg.lightMaxPps = p.light_max_pps ?? 10_000;
    cfg.lightMaxOctetsPerSource = p.light_max_octets_per_source ?? 1_250_000;
    cfg.lightMaxOctets = p.light_max_octets ?? 12_500_000;
    cfg.lightSymmetricOnly = p.light_symmetric_only ?? false;
    if (p.light_key_id !== undefined) cfg.lightKeyId = p.light_key_id;
    if (p.light_format !== undefined && p.light_format !== 'auto') cfg.lightFormat = p.light_format;
  }
  if (!p.control) cfg.control = false;
  if (p.key_file !== undefined) {
    cfg.keyFile = resolvePath(files.baseDir, p.key_file);
    const keys = readKeyFile(files, p.key_file);
    if (keys) cfg.keys = keys;
    if (keys && cfg.lightKeyId !== undefined && !keys.has(cfg.lightKeyId)) {
      files.issues.push({ path: ['light_key_id'], message: `key id ${JSON.stringify(cfg.lightKeyId)} is not in key_file` });
    }
  }
  return cfg;
}

function toCollector(p: ParsedCollector, defaultInterval: number, files: FileContext): CollectorConfig {
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

function toOtlp(o: NonNullable<AgentFile['otlp']>, env: NodeJS.ProcessEnv): OtlpConfig {
  return {
    endpoint: o.endpoint ?? otlpEndpointFromEnv(env),
    protocol: o.protocol,
    headers: o.headers,
    intervalMs: ms(o.interval),
    timeoutMs: ms(o.timeout),
    temporality: o.temporality,
  };
}

// ---------------------------------------------------------------------------
// Public API

/**
 * Parses and validates agent config text (YAML or JSON).
 * @param source names the text in messages (a file path, or `'<inline>'`).
 * @param env where OTLP endpoint defaults come from.
 * @throws ConfigError listing every problem found.
 */
function toProbe(p: AgentFile['probe']): ProbeConfig {
  return {
    allow: p?.allow ?? [],
    maxConcurrent: p?.max_concurrent ?? 8,
    maxPerSecond: p?.max_per_second ?? 10,
    maxPerTargetPerSecond: p?.max_per_target_per_second ?? 1,
    timeoutMs: ms(p?.timeout ?? 10),
  };
}

/**
 * YAML or JSON text to a plain value and its source map; syntax errors and
 * duplicate keys are thrown as one ConfigError with file:line:col. Used for
 * the agent file and the mesh definition.
 */
export function parseConfigText(text: string, source: string): { raw: unknown; map: SourceMap } {
  const lines = new LineCounter();
  // uniqueKeys: false — the yaml package checks each key against every earlier key of its
  // map (quadratic: 50,000 labels took ~20 s); duplicateKeys() does the same check in one pass.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: false });
  const map = new SourceMap(doc, lines);

  const duplicates = duplicateKeys(doc, map, source);
  if (doc.errors.length > 0 || duplicates.length > 0) {
    const byPosition = (a: ConfigIssue, b: ConfigIssue) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0);
    throw new ConfigError([...duplicates, ...
      doc.errors.map((e): ConfigIssue => {
        const start = e.linePos?.[0] ?? { line: map.position(e.pos[0]).line, col: map.position(e.pos[0]).column };
        const base = { source, line: start.line, column: start.col };
        if (e.code === 'DUPLICATE_KEY') {
          const key = map.keyAt(e.pos[0]);
          if (key) {
            const first = key.firstLine !== undefined ? ` (first defined on line ${key.firstLine})` : '';
            const id = key.path[0] === 'collectors' && typeof key.path[1] === 'number' ? doc.getIn(['collectors', key.path[1], 'id']) : undefined;
            return {
              ...base,
              path: key.path,
              message: `duplicate key${first}`,
              ...(typeof id === 'string' ? { collectorId: id } : {}),
            };
          }
        }
        // yaml's messages end with " at line L, column C:" and a source excerpt; we print the position
        // and the line (with a caret) ourselves.
        const message = e.message.replace(/ at line \d+, column \d+[\s\S]*$/, '');
        const excerpt = sourceLine(text, start.line);
        return { ...base, path: [], message: `YAML syntax error: ${message}`, ...(excerpt !== undefined ? { excerpt } : {}) };
      })].sort(byPosition),
      // One syntax mistake makes the parser report more after it: print the first, count the rest.
      { firstOnly: doc.errors.some((e) => e.code !== 'DUPLICATE_KEY') },
    );
  }

  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (err) {
    throw new ConfigError({ source, path: [], message: `cannot read YAML: ${(err as Error).message}` });
  }
  return { raw, map };
}

export function parseAgentConfig(text: string, source = '<inline>', env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const { raw, map } = parseConfigText(text, source);

  const issues: RawIssue[] = [];
  const top = agentFileSchema.safeParse(raw, { error: fallbackMessage });
  if (!top.success) issues.push(...fromZod(top.error.issues));

  // Collectors are parsed one by one so that every broken one is reported,
  // using the agent's default interval when that part of the file is valid.
  const agent = isRecord(raw) && isRecord(raw.agent) ? raw.agent : {};
  const defaults = defaultsSectionSchema.safeParse(agent.defaults ?? {});
  const defaultInterval = defaults.success ? defaults.data.interval : DEFAULT_INTERVAL_S;

  const rawCollectors = isRecord(raw) && Array.isArray(raw.collectors) ? (raw.collectors as unknown[]) : [];
  const collectors: CollectorConfig[] = [];
  const firstById = new Map<string, number>();
  rawCollectors.forEach((item, i) => {
    const parsed = collectorSchema.safeParse(item, { error: fallbackMessage });
    if (parsed.success) {
      const files = fileContext(source);
      collectors.push(toCollector(parsed.data, defaultInterval, files));
      for (const f of files.issues) issues.push({ path: ['collectors', i, ...f.path], message: f.message });
    } else {
      issues.push(...fromZod(parsed.error.issues, ['collectors', i]));
    }

    const id = isRecord(item) ? item.id : undefined;
    if (typeof id !== 'string') return;
    const first = firstById.get(id);
    if (first === undefined) {
      firstById.set(id, i);
    } else {
      const firstPos = map.locate(['collectors', first, 'id']);
      const at = firstPos ? ` (line ${firstPos.line})` : '';
      issues.push({
        path: ['collectors', i, 'id'],
        message: `duplicate id ${JSON.stringify(id)}: already used by collectors[${first}]${at}; ids must be unique`,
      });
    }
  });

  // Probe modules, one by one like the collectors (docs/configuration.md "Probe endpoint (multi-target)").
  const rawModules = isRecord(raw) && isRecord(raw.modules) ? raw.modules : {};
  const modules: Record<string, ProbeModuleConfig> = {};
  const moduleSchema = probeModuleSchema();
  for (const [name, body] of Object.entries(rawModules)) {
    const parsed = moduleSchema.safeParse(body ?? {}, { error: fallbackMessage });
    if (!parsed.success) { issues.push(...fromZod(parsed.error.issues, ['modules', name])); continue; }
    const { allow, ...senderKeys } = parsed.data;
    const files = fileContext(source);
    const sender = toSender({ ...senderKeys, id: name, reflector: '', disabled: false } as ParsedSender, defaultInterval, files);
    for (const f of files.issues) issues.push({ path: ['modules', name, ...f.path], message: f.message });
    modules[name] = { name, sender, ...(allow !== undefined ? { allow } : {}) };
  }

  if (issues.length > 0 || !top.success) {
    throw new ConfigError(
      finish(issues, source, map, (path) => {
        if (path[0] !== 'collectors' || typeof path[1] !== 'number') return undefined;
        const item = rawCollectors[path[1]];
        return isRecord(item) && typeof item.id === 'string' ? item.id : undefined;
      }),
    );
  }

  const f = top.data;
  const config: AgentConfig = {
    version: f.$version,
    host: f.agent.host ?? os.hostname(),
    labels: f.agent.labels,
    defaultInterval,
    maxConcurrentSessions: f.agent.max_concurrent_sessions,
    maxSessionsPerReflector: f.agent.max_sessions_per_reflector,
    naming: f.naming,
    collectors,
  };
  if (f.sender?.listen !== undefined) {
    config.prometheus = { host: f.sender.listen.host, port: f.sender.listen.port, path: f.sender.path };
  }
  if (f.otlp !== undefined) config.otlp = toOtlp(f.otlp, env);
  if (f.modules !== undefined) config.modules = modules;
  if (f.modules !== undefined || f.probe !== undefined) config.probe = toProbe(f.probe);
  if (f.mesh !== undefined) {
    // A relative path names a file beside the agent file; URLs are kept as written.
    const src = /^https?:\/\//i.test(f.mesh.source) ? f.mesh.source : resolvePath(fileContext(source).baseDir, f.mesh.source);
    config.mesh = {
      source: src, intervalMs: ms(f.mesh.interval), ...(f.mesh.self !== undefined ? { self: f.mesh.self } : {}),
      ...(f.mesh.dns_servers !== undefined ? { dnsServers: f.mesh.dns_servers } : {}),
    };
  }
  return config;
}

/**
 * Reads and parses an agent config file (a path or a `file:` URL).
 * @throws ConfigError naming the path when the file cannot be read, or listing every problem in it.
 */
export async function loadAgentConfig(path: string): Promise<AgentConfig> {
  const file = path.startsWith('file:') ? fileURLToPath(path) : path;
  let text: string;
  try {
    text = readBoundedFile(file, MAX_CONFIG_FILE_OCTETS).toString('utf8');
  } catch (err) {
    throw new ConfigError({ source: path, path: [], message: `cannot read config file: ${(err as Error).message}` });
  }
  return parseAgentConfig(text, path);
}

function parseStandalone<T, C>(
  schema: z.ZodType<T>,
  raw: unknown,
  source: string,
  normalize: (parsed: T, files: FileContext) => C,
): C {
  const parsed = schema.safeParse(raw, { error: fallbackMessage });
  const id = isRecord(raw) && typeof raw.id === 'string' ? raw.id : undefined;
  if (!parsed.success) throw new ConfigError(finish(fromZod(parsed.error.issues), source, undefined, () => id));
  const files = fileContext(source);
  const cfg = normalize(parsed.data, files);
  if (files.issues.length > 0) throw new ConfigError(finish(files.issues, source, undefined, () => id));
  return cfg;
}

function checkedDefaultInterval(defaults: { interval?: number } | undefined, source: string): number {
  const interval = defaults?.interval ?? DEFAULT_INTERVAL_S;
  if (!Number.isInteger(interval) || interval < 1) {
    throw new ConfigError({ source, path: ['defaults', 'interval'], message: `expected an integer ≥ 1, got ${describeValue(interval)}` });
  }
  return interval;
}

/**
 * Validates one Gufo-style `twamp_sender` collector object (snake_case keys;
 * `type` may be omitted) for library users who build a producer directly.
 * @throws ConfigError listing every problem found.
 */
export function parseSenderConfig(raw: unknown, defaults?: { interval?: number }, source = '<inline>'): SenderConfig {
  const interval = checkedDefaultInterval(defaults, source);
  return parseStandalone(senderSchema(false), raw, source, (p, files) => toSender(p, interval, files));
}

/**
 * Validates one Gufo-style `twamp_reflector` collector object (snake_case
 * keys; `type` may be omitted).
 * @throws ConfigError listing every problem found.
 */
export function parseReflectorConfig(raw: unknown, defaults?: { interval?: number }, source = '<inline>'): ReflectorConfig {
  const interval = checkedDefaultInterval(defaults, source);
  return parseStandalone(reflectorSchema(false), raw, source, (p, files) => toReflector(p, interval, files));
}
