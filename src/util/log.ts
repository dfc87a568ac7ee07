/** Minimal logger interface; the CLI supplies a console logger, libraries may pass their own (default: warnLogger). */
export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * The producers' default logger (docs/library.md
 * "Logging"): warnings and errors go to `console.warn` with an `[otel-twamp]`
 * prefix, so a library user sees a failing session (unreachable reflector,
 * refused set-up) without configuring anything; debug and info are dropped.
 * Pass `logger: silentLogger` to silence it, or `consoleLogger()` / your own.
 */
export const warnLogger: Logger = {
  debug() {},
  info() {},
  warn: (m) => console.warn(`[otel-twamp] ${m}`),
  error: (m) => console.warn(`[otel-twamp] ${m}`),
};

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Logger writing one line per event to stderr, with an ISO timestamp and level. */
export function consoleLogger(level: LogLevel = 'info', prefix = ''): Logger {
  const at = ORDER[level];
  const line = (lvl: LogLevel, msg: string): void => {
    if (ORDER[lvl] < at) return;
    process.stderr.write(`${new Date().toISOString()} ${lvl.toUpperCase().padEnd(5)} ${prefix}${msg}\n`);
  };
  return {
    debug: (m) => line('debug', m),
    info: (m) => line('info', m),
    warn: (m) => line('warn', m),
    error: (m) => line('error', m),
  };
}

/** Prefix every line of a logger (e.g. with the collector id). */
export function childLogger(log: Logger, prefix: string): Logger {
  return {
    debug: (m) => log.debug(prefix + m),
    info: (m) => log.info(prefix + m),
    warn: (m) => log.warn(prefix + m),
    error: (m) => log.error(prefix + m),
  };
}
