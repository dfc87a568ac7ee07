/** CLI plumbing shared by the agent, probe and reflect commands. */
import type { Logger } from '../session/log.js';
import { ConfigError } from '../config/errors.js';

/** A command-line mistake: exit code 2 with the message and a hint. */
export class UsageError extends Error {}

/**
 * Run a config parse for flags; a ConfigError becomes a UsageError naming
 * the flag each key came from.
 */
export function parseFlags<T>(flagOf: Readonly<Record<string, string>>, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    throw new UsageError(e.issues.map((i) => {
      const key = typeof i.path[0] === 'string' ? i.path[0] : '';
      return `${flagOf[key] ?? (key || 'arguments')}: ${i.message}`;
    }).join('\n'));
  }
}

/** Parse a command's arguments; on a UsageError print it (prefixed with the command) and return exit code 2. */
export function parseOrExit<T>(command: string, parse: () => T): T | number {
  try {
    return parse();
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    const lines = e.message.split('\n').map((l) => `otel-twamp ${command}: ${l}`).join('\n');
    process.stderr.write(`${lines}\nTry 'otel-twamp ${command} --help'.\n`);
    return 2;
  }
}

/**
 * Resolve with exit code 0 once SIGINT or SIGTERM arrived and `stop` finished
 * (or after `boundMs`, so a stuck peer cannot keep the process alive).
 */
export function untilStopped(log: Logger, stop: () => Promise<void>, boundMs = 10_000): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    const shutdown = (sig: string): void => {
      if (stopping) return;
      stopping = true;
      log.info(`${sig}: stopping`);
      const force = setTimeout(() => { log.warn('shutdown took too long; exiting'); resolve(0); }, boundMs);
      force.unref();
      void stop()
        .catch((e: unknown) => log.warn(`shutdown: ${(e as Error).message}`))
        .finally(() => { clearTimeout(force); resolve(0); });
    };
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.once('SIGTERM', () => shutdown('SIGTERM'));
  });
}
