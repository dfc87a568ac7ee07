import assert from 'node:assert/strict';
import { ConfigError, parseAgentConfig } from '../../src/config/index.js';
import type { AgentConfig, ConfigIssue } from '../../src/config/index.js';

/** Indents a collector snippet (a YAML list item) under `collectors:` of a minimal agent file. */
export function agentWith(collectorsYaml: string, head = ''): string {
  const body = collectorsYaml
    .replace(/^\n/, '')
    .split('\n')
    .map((l) => (l.trim() === '' ? '' : `  ${l}`))
    .join('\n');
  return `$version: "1.0"\n$type: zeroconf\n${head}collectors:\n${body}\n`;
}

/** A minimal twamp_sender collector (collectors: list item) for agentWith(). */
export const SENDER = `
- id: s
  type: twamp_sender
  reflector: 192.0.2.1
  n_packets: 10
  model: g711`;

export const NO_ENV: NodeJS.ProcessEnv = {};

export function parse(text: string, source = 'agent.yaml'): AgentConfig {
  return parseAgentConfig(text, source, NO_ENV);
}

/** Runs `fn`, asserts it throws a ConfigError, and returns it. */
export function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ConfigError');
}

export function parseError(text: string, source = 'agent.yaml'): ConfigError {
  return configError(() => parse(text, source));
}

/** The single issue at `path`, asserting there is exactly one there. */
export function issueAt(err: ConfigError, path: (string | number)[]): ConfigIssue {
  const found = err.issues.filter((i) => JSON.stringify(i.path) === JSON.stringify(path));
  assert.equal(found.length, 1, `expected one issue at ${JSON.stringify(path)}; got:\n${err.message}`);
  return found[0]!;
}
