/**
 * Small waits and a log recorder shared by the agent and mesh tests.
 */
import assert from 'node:assert/strict';
import type { Logger } from '../../src/util/log.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 50 ms; fails the test naming `what` when it is not true within `ms`. */
export async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Runs `f` with environment variable `name` set to `value`, restoring it afterwards. */
export async function withEnv<T>(name: string, value: string, f: () => Promise<T>): Promise<T> {
  const saved = process.env[name];
  process.env[name] = value;
  try {
    return await f();
  } finally {
    if (saved === undefined) delete process.env[name];
    else process.env[name] = saved;
  }
}

/** A logger that keeps every line as `LEVEL message` (debug dropped). */
export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const rec = (level: string) => (msg: string) => { lines.push(`${level} ${msg}`); };
  return { lines, debug: () => undefined, info: rec('info'), warn: rec('warn'), error: rec('error') };
}
