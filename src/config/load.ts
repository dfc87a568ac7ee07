/**
 * Loads an agent config (Gufo Agent format, YAML or JSON), validates it
 * completely and returns the normalized {@link AgentConfig}; and parses one
 * Gufo-style collector object into the settings a producer takes
 * ({@link parseSenderConfig}, {@link parseReflectorConfig}). All problems
 * are collected and thrown together as one {@link ConfigError}, each naming
 * the offending key with `file:line:col` when the config came from text.
 *
 * The steps live in their own modules: `sourceMap.ts` (text → value and
 * positions), `schema.ts` (checks), `normalize.ts` (→ settings), `files.ts`
 * (secret and key files), `issues.ts` (locating problems).
 */
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type * as z from 'zod';
import { ConfigError } from './errors.js';
import { describeValue } from './fields.js';
import { fileContext, MAX_CONFIG_FILE_OCTETS, readBoundedFile, type FileContext } from './files.js';
import { fallbackMessage, finish, fromZod, isRecord, type RawIssue } from './issues.js';
import { toCollector, toMesh, toOtlp, toProbe, toReflector, toSender } from './normalize.js';
import {
  agentFileSchema, collectorSchema, defaultsSectionSchema, probeModuleSchema, probeSectionSchema, reflectorSchema, senderSchema,
} from './schema.js';
import type { AgentFile, ParsedSender } from './schema.js';
import { parseConfigText, type SourceMap } from './sourceMap.js';
import type { AgentConfig, CollectorConfig, ProbeModuleConfig, ReflectorConfig, SenderConfig } from './types.js';
import { messageOf } from '../util/errors.js';

// What other modules (mesh.ts, the CLI, tests) take from here, from where it was before the split.
export { fallbackMessage, finish, fromZod, type RawIssue } from './issues.js';
export { parseConfigText } from './sourceMap.js';
export { DEFAULT_OTLP_ENDPOINT, otlpEndpointFromEnv, toReflector, toSender } from './normalize.js';
export {
  MAX_CONFIG_FILE_OCTETS, MAX_KEY_FILE_OCTETS, MAX_SECRET_FILE_OCTETS, parseKeyFile, readBoundedFile, type FileContext,
} from './files.js';

export const DEFAULT_INTERVAL_S = 60;

// ---------------------------------------------------------------------------
// The agent file, by concern

/** The agent's default interval when `agent.defaults` is valid (collectors are checked with it), else the default. */
function defaultIntervalOf(raw: unknown): number {
  const agent = isRecord(raw) && isRecord(raw.agent) ? raw.agent : {};
  const defaults = defaultsSectionSchema.safeParse(agent.defaults ?? {});
  return defaults.success ? defaults.data.interval : DEFAULT_INTERVAL_S;
}

/**
 * `collectors:`, one by one so that every broken one is reported, and ids
 * unique (a repeat names the line of the first).
 */
function parseCollectors(rawCollectors: readonly unknown[], defaultInterval: number, source: string, map: SourceMap, issues: RawIssue[]): CollectorConfig[] {
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
  return collectors;
}

/** `modules:` (docs/configuration.md "Probe endpoint (multi-target)"), one by one like the collectors. */
function parseModules(rawModules: Record<string, unknown>, defaultInterval: number, source: string, issues: RawIssue[]): Record<string, ProbeModuleConfig> {
  const modules: Record<string, ProbeModuleConfig> = {};
  const moduleSchema = probeModuleSchema();
  for (const [name, body] of Object.entries(rawModules)) {
    const parsed = moduleSchema.safeParse(body ?? {}, { error: fallbackMessage });
    if (!parsed.success) { issues.push(...fromZod(parsed.error.issues, ['modules', name])); continue; }
    const { allow, ...senderKeys } = parsed.data;
    const files = fileContext(source);
    // A module is a sender whose reflector a /probe request names.
    const keys: ParsedSender = { ...senderKeys, type: 'twamp_sender', id: name, reflector: '', interval: undefined, disabled: false };
    const sender = toSender(keys, defaultInterval, files);
    for (const f of files.issues) issues.push({ path: ['modules', name, ...f.path], message: f.message });
    modules[name] = { name, sender, ...(allow !== undefined ? { allow } : {}) };
  }
  return modules;
}

/** The agent-wide sections of a valid file, with the parsed collectors and modules. */
function assemble(f: AgentFile, parts: { defaultInterval: number; collectors: CollectorConfig[]; modules: Record<string, ProbeModuleConfig> },
  files: FileContext, env: NodeJS.ProcessEnv): AgentConfig {
  const config: AgentConfig = {
    version: f.$version,
    host: f.agent.host ?? os.hostname(),
    labels: f.agent.labels,
    defaultInterval: parts.defaultInterval,
    maxConcurrentSessions: f.agent.max_concurrent_sessions,
    maxSessionsPerReflector: f.agent.max_sessions_per_reflector,
    naming: f.naming,
    collectors: parts.collectors,
  };
  if (f.sender?.listen !== undefined) {
    config.prometheus = { host: f.sender.listen.host, port: f.sender.listen.port, path: f.sender.path };
  }
  if (f.otlp !== undefined) config.otlp = toOtlp(f.otlp, env);
  if (f.modules !== undefined) config.modules = parts.modules;
  if (f.modules !== undefined || f.probe !== undefined) config.probe = toProbe(f.probe ?? probeSectionSchema.parse({}));
  if (f.mesh !== undefined) config.mesh = toMesh(f.mesh, files);
  return config;
}

// ---------------------------------------------------------------------------
// Public API

/**
 * Parses and validates agent config text (YAML or JSON).
 * @param source names the text in messages (a file path, or `'<inline>'`).
 * @param env where OTLP endpoint defaults come from.
 * @throws ConfigError listing every problem found.
 */
export function parseAgentConfig(text: string, source = '<inline>', env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const { raw, map } = parseConfigText(text, source);

  const issues: RawIssue[] = [];
  const top = agentFileSchema.safeParse(raw, { error: fallbackMessage });
  if (!top.success) issues.push(...fromZod(top.error.issues));

  const defaultInterval = defaultIntervalOf(raw);
  const rawCollectors = isRecord(raw) && Array.isArray(raw.collectors) ? (raw.collectors as unknown[]) : [];
  const collectors = parseCollectors(rawCollectors, defaultInterval, source, map, issues);
  const modules = parseModules(isRecord(raw) && isRecord(raw.modules) ? raw.modules : {}, defaultInterval, source, issues);

  if (issues.length > 0 || !top.success) {
    throw new ConfigError(
      finish(issues, source, map, (path) => {
        if (path[0] !== 'collectors' || typeof path[1] !== 'number') return undefined;
        const item = rawCollectors[path[1]];
        return isRecord(item) && typeof item.id === 'string' ? item.id : undefined;
      }),
    );
  }
  return assemble(top.data, { defaultInterval, collectors, modules }, fileContext(source), env);
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
    throw new ConfigError({ source: path, path: [], message: `cannot read config file: ${messageOf(err)}` });
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
 * Validates one Gufo-style `twamp_sender` collector object (snake_case keys,
 * as in the agent file; `type` may be omitted) and returns the settings
 * `new TwampSender(...)` takes: defaults filled, `secret_file` read,
 * relabel rules compiled.
 * @throws ConfigError listing every problem found.
 */
export function parseSenderConfig(raw: unknown, defaults?: { interval?: number }, source = '<inline>'): SenderConfig {
  const interval = checkedDefaultInterval(defaults, source);
  return parseStandalone(senderSchema(false), raw, source, (p, files) => toSender({ ...p, type: 'twamp_sender' }, interval, files));
}

/**
 * Validates one Gufo-style `twamp_reflector` collector object (snake_case
 * keys; `type` may be omitted) and returns the settings
 * `new TwampReflector(...)` takes (`key_file` read, networks parsed).
 * @throws ConfigError listing every problem found.
 */
export function parseReflectorConfig(raw: unknown, defaults?: { interval?: number }, source = '<inline>'): ReflectorConfig {
  const interval = checkedDefaultInterval(defaults, source);
  return parseStandalone(reflectorSchema(false), raw, source, (p, files) => toReflector({ ...p, type: 'twamp_reflector' }, interval, files));
}
