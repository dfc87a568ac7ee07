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
  return `${parts.join(': ')}: ${issue.message}`;
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

  constructor(issues: ConfigIssue | readonly ConfigIssue[]) {
    const list = Array.isArray(issues) ? [...(issues as readonly ConfigIssue[])] : [issues as ConfigIssue];
    if (list.length === 0) throw new TypeError('ConfigError needs at least one issue');
    super(list.map(formatIssue).join('\n'));
    const first = list[0]!;
    this.source = first.source;
    this.path = first.path;
    if (first.collectorId !== undefined) this.collectorId = first.collectorId;
    if (first.line !== undefined) this.line = first.line;
    if (first.column !== undefined) this.column = first.column;
    this.issues = list;
  }
}
