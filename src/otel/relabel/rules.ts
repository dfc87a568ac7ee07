// Relabel rules as configured → NormalizedRule: Prometheus `relabel_config`
// fields and defaults (model/relabel/relabel.go), plus the Gufo Agent dialect's
// differences (docs/configuration.md "Relabeling"). Pure: no I/O, no regex compilation.

export type Labels = Record<string, string>;

export type RelabelAction =
  | 'replace'
  | 'keep'
  | 'drop'
  | 'keepequal'
  | 'dropequal'
  | 'drop_if_equal'
  | 'labeldrop'
  | 'labelkeep'
  | 'labelmap'
  | 'lowercase'
  | 'uppercase'
  | 'hashmod'
  | 'dump';

/** Raw rule as written in YAML (snake_case, like Prometheus and Gufo Agent). */
export interface RelabelRule {
  action?: RelabelAction;
  source_labels?: string[];
  separator?: string;
  regex?: string;
  replacement?: string;
  target_label?: string;
  modulus?: number;
}

/**
 * prometheus: regexes fully anchored `^(?:re)$`, missing labels read as "".
 * gufo: unanchored search, a missing source label makes replace/keep/drop not match,
 * labelmap moves labels, label actions never touch `__name__`/`__address__`/`__meta_*`.
 */
export type RegexDialect = 'prometheus' | 'gufo';

export class RelabelConfigError extends Error {
  readonly ruleIndex: number;
  readonly field: string;
  constructor(ruleIndex: number, field: string, detail: string) {
    super(`relabel[${ruleIndex}].${field}: ${detail}`);
    this.name = 'RelabelConfigError';
    this.ruleIndex = ruleIndex;
    this.field = field;
  }
}

/** A rule after defaults are filled in (what the engine actually runs). */
export interface NormalizedRule {
  readonly index: number;
  readonly action: RelabelAction;
  readonly sourceLabels: readonly string[];
  readonly separator: string;
  /** Regex as configured, before anchoring; undefined = Gufo "match anything" (no regex given). */
  readonly regex: string | undefined;
  /** undefined = Gufo "keep the joined value" (no replacement given). */
  readonly replacement: string | undefined;
  readonly targetLabel: string;
  readonly modulus: number;
}

const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const METRIC_NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
// Prometheus' relabelTarget: a label name that may contain $1 / ${1} / $name templates.
const RELABEL_TARGET_RE = /^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$/;

export function validLabelName(s: string): boolean {
  return LABEL_NAME_RE.test(s);
}

export function validMetricName(s: string): boolean {
  return METRIC_NAME_RE.test(s);
}

const ACTIONS: ReadonlySet<string> = new Set<RelabelAction>([
  'replace', 'keep', 'drop', 'keepequal', 'dropequal', 'drop_if_equal', 'labeldrop',
  'labelkeep', 'labelmap', 'lowercase', 'uppercase', 'hashmod', 'dump',
]);
const RULE_FIELDS: ReadonlySet<string> = new Set([
  'action', 'source_labels', 'separator', 'regex', 'replacement', 'target_label', 'modulus',
]);
const NEEDS_TARGET: ReadonlySet<RelabelAction> = new Set<RelabelAction>([
  'replace', 'hashmod', 'keepequal', 'dropequal', 'lowercase', 'uppercase',
]);
const NEEDS_SOURCES: ReadonlySet<RelabelAction> = new Set<RelabelAction>([
  'keep', 'drop', 'hashmod', 'keepequal', 'dropequal', 'lowercase', 'uppercase', 'drop_if_equal',
]);

const DEFAULT_SEPARATOR = ';';
export const DEFAULT_REGEX = '(.*)';
const DEFAULT_REPLACEMENT = '$1';

function str(i: number, field: string, v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  // YAML `replacement: 9` arrives as a number; Prometheus (yaml.v2) and Gufo (serde) take it as text.
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new RelabelConfigError(i, field, `must be a string, got ${typeof v}`);
}

/** A config value for an error message; never throws (JSON.stringify does on bigint and cycles). */
function describeValue(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** One rule as written → the rule the engine runs, or a RelabelConfigError naming the rule and field. */
export function normalize(raw: RelabelRule, i: number, dialect: RegexDialect): NormalizedRule {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new RelabelConfigError(i, 'action', 'rule must be a mapping');
  }
  for (const k of Object.keys(raw)) {
    if (!RULE_FIELDS.has(k)) throw new RelabelConfigError(i, k, 'unknown field');
  }
  const actionRaw = str(i, 'action', raw.action) ?? 'replace';
  const action = actionRaw.toLowerCase();
  if (!ACTIONS.has(action)) {
    throw new RelabelConfigError(i, 'action', `unknown relabel action ${JSON.stringify(actionRaw)}`);
  }
  const act = action as RelabelAction;

  let sourceLabels: string[] = [];
  if (raw.source_labels !== undefined && raw.source_labels !== null) {
    if (!Array.isArray(raw.source_labels)) {
      throw new RelabelConfigError(i, 'source_labels', 'must be a list of label names');
    }
    sourceLabels = raw.source_labels.map((l, j) => {
      const s = str(i, `source_labels[${j}]`, l) ?? '';
      if (!validLabelName(s)) {
        throw new RelabelConfigError(i, 'source_labels', `invalid label name ${JSON.stringify(s)}`);
      }
      return s;
    });
  }
  const sepRaw = str(i, 'separator', raw.separator);
  const regexRaw = str(i, 'regex', raw.regex);
  const replRaw = str(i, 'replacement', raw.replacement);
  const targetRaw = str(i, 'target_label', raw.target_label);
  let modulus = 0;
  if (raw.modulus !== undefined && raw.modulus !== null) {
    const m = raw.modulus as unknown;
    if (typeof m !== 'number' || !Number.isSafeInteger(m) || m <= 0) {
      throw new RelabelConfigError(i, 'modulus', `must be a positive integer, got ${describeValue(m)}`);
    }
    modulus = m;
  }

  const targetLabel = targetRaw ?? '';
  if (NEEDS_TARGET.has(act) && targetLabel === '') {
    throw new RelabelConfigError(i, 'target_label', `required for action ${act}`);
  }
  if (act === 'hashmod' && modulus === 0) {
    throw new RelabelConfigError(i, 'modulus', 'required (> 0) for action hashmod');
  }
  if (NEEDS_SOURCES.has(act) && sourceLabels.length === 0) {
    throw new RelabelConfigError(i, 'source_labels', `required for action ${act}`);
  }
  if (act === 'drop_if_equal' && sourceLabels.length < 2) {
    throw new RelabelConfigError(i, 'source_labels', 'drop_if_equal needs at least two label names');
  }
  if (targetLabel !== '') {
    if (act === 'replace' && targetLabel.includes('$')) {
      if (!RELABEL_TARGET_RE.test(targetLabel)) {
        throw new RelabelConfigError(i, 'target_label', `invalid label name template ${JSON.stringify(targetLabel)}`);
      }
    } else if (!validLabelName(targetLabel)) {
      throw new RelabelConfigError(i, 'target_label', `invalid label name ${JSON.stringify(targetLabel)}`);
    }
  }
  // Prometheus accepts a field set to its default value, so do we.
  const defaults: Record<string, unknown> = {
    separator: DEFAULT_SEPARATOR, regex: DEFAULT_REGEX, replacement: DEFAULT_REPLACEMENT,
  };
  const onlyFields = (allowed: readonly string[], what: string): void => {
    for (const k of Object.keys(raw)) {
      const v = (raw as Record<string, unknown>)[k];
      if (k !== 'action' && v !== undefined && !allowed.includes(k) && v !== defaults[k]) {
        throw new RelabelConfigError(i, k, `not allowed for action ${act} (${what})`);
      }
    }
  };
  if (act === 'keepequal' || act === 'dropequal') {
    onlyFields(['source_labels', 'target_label'], 'it takes only source_labels and target_label');
  }
  if (act === 'labeldrop' || act === 'labelkeep') {
    onlyFields(['regex'], 'it takes only regex');
  }
  if ((act === 'lowercase' || act === 'uppercase') && replRaw !== undefined && replRaw !== DEFAULT_REPLACEMENT) {
    throw new RelabelConfigError(i, 'replacement', `not allowed for action ${act}`);
  }
  if (dialect === 'gufo' && (act === 'labeldrop' || act === 'labelkeep' || act === 'labelmap') && regexRaw === undefined) {
    throw new RelabelConfigError(i, 'regex', `required for action ${act}`);
  }
  if (dialect === 'gufo' && act === 'labelmap' && replRaw === undefined) {
    throw new RelabelConfigError(i, 'replacement', 'required for action labelmap');
  }
  const replacement = replRaw ?? (dialect === 'prometheus' ? DEFAULT_REPLACEMENT : undefined);
  if (act === 'labelmap' && replacement !== undefined && !RELABEL_TARGET_RE.test(replacement)) {
    throw new RelabelConfigError(i, 'replacement', `invalid label name template ${JSON.stringify(replacement)}`);
  }
  return {
    index: i,
    action: act,
    sourceLabels,
    separator: sepRaw ?? DEFAULT_SEPARATOR,
    regex: regexRaw ?? (dialect === 'prometheus' ? DEFAULT_REGEX : undefined),
    replacement,
    targetLabel,
    modulus,
  };
}
