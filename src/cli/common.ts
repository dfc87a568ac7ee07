/** CLI plumbing shared by the agent, probe and reflect commands. */
import { parseArgs as nodeParseArgs, type ParseArgsConfig } from 'node:util';
import type { Logger } from '../util/log.js';
import { ConfigError } from '../config/errors.js';
import { messageOf } from '../util/errors.js';

/** A command-line mistake: exit code 2 with the message and a hint. */
export class UsageError extends Error {}

/**
 * Edit distance (insertions, deletions, substitutions, and swaps of two
 * neighbours, each 1) between `a` and `b`.
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known name closest to `name`, when it is close enough to be a typo
 * (distance at most 2, or a third of the longer name), or when `name` is the
 * start of exactly one known name (`--refw` → `--refwait`).
 */
export function closestName(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const dist = editDistance(name, k);
    if (dist < bestD) { best = k; bestD = dist; }
  }
  if (best !== undefined && bestD <= Math.max(2, Math.floor(Math.max(name.length, best.length) / 3))) return best;
  const prefixed = known.filter((k) => name.length >= 2 && k.startsWith(name));
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/**
 * `util.parseArgs` with our messages: an unknown option is
 * `unknown option --cnt (did you mean --count?)`, suggested from the
 * command's own options; every parse problem is a {@link UsageError}.
 */
export function parseArgs<T extends ParseArgsConfig>(config: T): ReturnType<typeof nodeParseArgs<T>> {
  const options = config.options ?? {};
  // Tokenize leniently first: unknown options come out as tokens instead of Node's generic error.
  const lenient = nodeParseArgs({ ...config, strict: false, allowPositionals: true, tokens: true });
  for (const t of lenient.tokens ?? []) {
    if (t.kind !== 'option') continue;
    // A known short option's token carries its long name.
    if (Object.hasOwn(options, t.name)) continue;
    const hint = closestName(t.name, Object.keys(options));
    throw new UsageError(`unknown option ${t.rawName}${hint !== undefined ? ` (did you mean --${hint}?)` : ''}`);
  }
  try {
    return nodeParseArgs(config);
  } catch (e) {
    const err = e as Error & { code?: string };
    if (!err.code?.startsWith('ERR_PARSE_ARGS_')) throw e;
    // "Option '-c, --count <value>' argument missing" → "--count needs a value".
    const missing = /^Option '(?:-\w, )?(--[\w-]+) <value>' argument missing/.exec(err.message);
    if (missing) throw new UsageError(`${missing[1]} needs a value`);
    const positional = /^Unexpected argument '([^']*)'/.exec(err.message);
    if (positional) throw new UsageError(`unexpected argument ${JSON.stringify(positional[1])} (this command takes no positional arguments)`);
    throw new UsageError(err.message);
  }
}

/** How a command's flags map to config keys, for messages that name what the user typed. */
export interface FlagNames {
  /** Phrases of cross-key messages, rewritten first, in order (`control: false` → `--light`). */
  readonly phrases?: readonly (readonly [RegExp, string])[];
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * A config message in the words of the command line: `phrases` first, then
 * `key: false` as the flag that sets it (`control: false` → `--light`), then
 * every key with an underscore (`key_id`) as its flag (`--key-id`).
 */
function messageInFlags(message: string, flagOf: Readonly<Record<string, string>>, names: FlagNames = {}): string {
  let out = message;
  for (const [re, flag] of names.phrases ?? []) out = out.replace(re, flag);
  // A boolean key the flag switches off: `control: false` is `--light-only`.
  for (const [k, flag] of Object.entries(flagOf)) {
    out = out.replace(new RegExp(`(?<![\\w-])${escapeRe(k)}: false\\b`, 'g'), flag);
  }
  const keys = Object.keys(flagOf).filter((k) => k.includes('_')).sort((a, b) => b.length - a.length);
  for (const k of keys) {
    out = out.replace(new RegExp(`(?<![\\w-])${escapeRe(k)}(?![\\w-])`, 'g'), flagOf[k]!);
  }
  return out;
}

/**
 * Run a config parse for flags; a ConfigError becomes a UsageError naming
 * the flag each key came from, and saying the other keys a message mentions
 * as flags too (see {@link messageInFlags}).
 */
export function parseFlags<T>(flagOf: Readonly<Record<string, string>>, parse: () => T, names: FlagNames = {}): T {
  try {
    return parse();
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    throw new UsageError(e.issues.map((i) => {
      const key = typeof i.path[0] === 'string' ? i.path[0] : '';
      const flag = flagOf[key] ?? (key || 'arguments');
      const message = messageInFlags(i.message, flagOf, names);
      // "--format stamp needs --light" already starts with the flag it is about.
      return message.startsWith(`${flag} `) ? message : `${flag}: ${message}`;
    }).join('\n'));
  }
}

/**
 * Parse a command's arguments; on a UsageError print it (prefixed with the
 * command, none for `''`) and return exit code 2.
 */
export function parseOrExit<T>(command: string, parse: () => T): T | number {
  try {
    return parse();
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    const name = command === '' ? 'otel-twamp' : `otel-twamp ${command}`;
    const lines = e.message.split('\n').map((l) => `${name}: ${l}`).join('\n');
    process.stderr.write(`${lines}\nTry '${name} --help'.\n`);
    return 2;
  }
}

/**
 * Resolve with exit code 0 once SIGINT or SIGTERM arrived and `stop` finished
 * (or after `boundMs`, so a stuck peer cannot keep the process alive).
 *
 * One Ctrl-C often arrives twice: the terminal signals the whole process
 * group and `npm start` forwards its copy to us as well. Repeats within
 * `repeatMs` are that echo and are ignored (without a listener Node would die
 * of the second one, skipping the shutdown); a later one is the user
 * insisting, and resolves 1 at once.
 */
export function untilStopped(log: Logger, stop: () => Promise<void>, boundMs = 10_000, repeatMs = 1000): Promise<number> {
  return new Promise<number>((resolve) => {
    let since: number | undefined;
    let finished = false;
    // The handlers stay until the process exits: a repeat arriving between the
    // end of the shutdown and the exit (Ctrl-C's echo) must not kill it with
    // the signal's default action.
    const finish = (code: number): void => {
      if (finished) return;
      finished = true;
      resolve(code);
    };
    const shutdown = (sig: string): void => {
      if (finished) {
        if (since !== undefined && Date.now() - since >= repeatMs) process.exit(1);
        return;
      }
      if (since !== undefined) {
        if (Date.now() - since >= repeatMs) {
          log.warn(`${sig} again: exiting without finishing the shutdown`);
          finish(1);
        }
        return;
      }
      since = Date.now();
      log.info(`${sig}: stopping`);
      const force = setTimeout(() => { log.warn('shutdown took too long; exiting'); finish(0); }, boundMs);
      force.unref();
      void stop()
        .catch((e: unknown) => log.warn(`shutdown: ${messageOf(e)}`))
        .finally(() => { clearTimeout(force); finish(0); });
    };
    const onSigint = (): void => shutdown('SIGINT');
    const onSigterm = (): void => shutdown('SIGTERM');
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onSigterm);
  });
}
