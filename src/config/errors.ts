/**
 * Configuration errors. Every problem found while loading a config is one
 * {@link ConfigIssue}; they are collected and thrown together as one
 * {@link ConfigError}, so a user fixes a broken file in one pass.
 */

export type ConfigPath = (string | number)[];

export interface ConfigIssue {
  /** File path, or `'<inline>'` for text/objects that did not come from a file. */
  readonly source: string;
  /** Location of the offending key, e.g. `['collectors', 2, 'n_packets']`. */
  readonly path: ConfigPath;
  /** What is wrong, without the location prefix. */
  readonly message: string;
  /** `id` of the collector the path points into, when it has a string id. */
  readonly collectorId?: string;
  /** 1-based line and column of the offending key (or of its parent map when the key is missing). */
  readonly line?: number;
  readonly column?: number;
  /** The text of line `line`, printed under the message with a `^` under `column` (syntax errors). */
  readonly excerpt?: string;
}

/** Line `line` (1-based) of `text` without its line break, or undefined past the end. */
export function sourceLine(text: string, line: number): string | undefined {
  const lines = text.split(/\r?\n/);
  // A final line break ends the last line; it does not start another.
  const count = lines.length - (lines[lines.length - 1] === '' ? 1 : 0);
  return line >= 1 && line <= count ? lines[line - 1] : undefined;
}

/** At most this many characters of an excerpt, around the column. */
const EXCERPT_WIDTH = 100;

/**
 * `   5 |    reflector: x` and `     | ^` under column `column`: the caret
 * lines of a syntax error. Tabs before the column stay tabs so the caret lines up.
 */
export function caretLines(line: number, column: number, excerpt: string): string {
  let text = excerpt;
  let col = Math.max(1, column);
  if (text.length > EXCERPT_WIDTH) {
    const start = Math.max(0, Math.min(col - 1 - EXCERPT_WIDTH / 2, text.length - EXCERPT_WIDTH));
    text = `${start > 0 ? '…' : ''}${text.slice(start, start + EXCERPT_WIDTH)}${start + EXCERPT_WIDTH < excerpt.length ? '…' : ''}`;
    col = col - start + (start > 0 ? 1 : 0);
  }
  const gutter = String(line);
  const pad = text.slice(0, col - 1).replace(/[^\t]/g, ' ');
  return `  ${gutter} | ${text}\n  ${' '.repeat(gutter.length)} | ${pad}^`;
}

/** `collectors[2].relabel[0].regex`, `sender.listen`, `labels["bad-name"]`. */
export function formatPath(path: ConfigPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/**
 * One line per issue:
 * `agent.yaml:14:5: collectors[2] (id "Sender A"): n_packets: expected an integer ≥ 1, got "abc"`.
 */
export function formatIssue(issue: ConfigIssue): string {
  let where = issue.source;
  if (issue.line !== undefined) where += `:${issue.line}:${issue.column ?? 1}`;
  const parts = [where];
  let rest = issue.path;
  if (rest[0] === 'collectors' && typeof rest[1] === 'number') {
    const id = issue.collectorId !== undefined ? ` (id ${JSON.stringify(issue.collectorId)})` : '';
    parts.push(`collectors[${rest[1]}]${id}`);
    rest = rest.slice(2);
  } else if (issue.collectorId !== undefined) {
    // A standalone collector object (parseSenderConfig & co.).
    parts.push(`collector (id ${JSON.stringify(issue.collectorId)})`);
  }
  if (rest.length > 0) parts.push(formatPath(rest));
  const text = `${parts.join(': ')}: ${issue.message}`;
  return issue.excerpt !== undefined && issue.line !== undefined
    ? `${text}\n${caretLines(issue.line, issue.column ?? 1, issue.excerpt)}`
    : text;
}

export interface ConfigErrorOptions {
  /**
   * Print only the first issue and a count of the rest: for syntax errors,
   * where one mistake makes the parser report many more after it. `issues`
   * still holds every one.
   */
  readonly firstOnly?: boolean;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** Of the first issue: file path or `'<inline>'`. */
  readonly source: string;
  /** Of the first issue. */
  readonly path: ConfigPath;
  readonly collectorId?: string;
  readonly line?: number;
  readonly column?: number;
  /** All problems found, in document order; the message lists each on its own line. */
  readonly issues: readonly ConfigIssue[];

  constructor(issues: ConfigIssue | readonly ConfigIssue[], options: ConfigErrorOptions = {}) {
    const list = Array.isArray(issues) ? [...(issues as readonly ConfigIssue[])] : [issues as ConfigIssue];
    if (list.length === 0) throw new TypeError('ConfigError needs at least one issue');
    const more = list.length - 1;
    super(options.firstOnly === true
      ? `${formatIssue(list[0]!)}${more > 0 ? `\n  and ${more} more error${more === 1 ? '' : 's'} after it (often caused by this one)` : ''}`
      : list.map(formatIssue).join('\n'));
    const first = list[0]!;
    this.source = first.source;
    this.path = first.path;
    if (first.collectorId !== undefined) this.collectorId = first.collectorId;
    if (first.line !== undefined) this.line = first.line;
    if (first.column !== undefined) this.column = first.column;
    this.issues = list;
  }
}
