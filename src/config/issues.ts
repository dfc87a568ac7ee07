/**
 * Config problems before and after their location is known: a schema's
 * issues become {@link RawIssue}s (a path and a message), and `finish`
 * attaches the source, the line and column (from the YAML source map) and
 * the collector id, in document order, ready for a ConfigError.
 */
import type * as z from 'zod';
import type { ConfigIssue, ConfigPath } from './errors.js';
import { describeValue, KEY_MESSAGE_SEPARATOR } from './fields.js';
import type { SourceMap } from './sourceMap.js';

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

export function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
