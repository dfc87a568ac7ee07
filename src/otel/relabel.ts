// Relabeling engine: Prometheus `relabel_config` semantics (model/relabel/relabel.go),
// plus the Gufo Agent dialect (unanchored regexes, `drop_if_equal`, `dump`) for
// migrated configs. Pure: no I/O, no OTel imports. Rules compile once; apply() runs
// per series per collection.

import { createHash } from 'node:crypto';

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

export interface CompiledRelabel {
  readonly rules: readonly NormalizedRule[];
  /** Returns the relabeled series, or undefined when the series is dropped. */
  apply(name: string, labels: Labels): { name: string; labels: Labels } | undefined;
  readonly isEmpty: boolean;
}

export interface CompileRelabelOptions {
  dialect?: RegexDialect;
  /** Sink for `action: dump`; default console.error. */
  dump?: (text: string) => void;
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

const NAME = '__name__';

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
const DEFAULT_REGEX = '(.*)';
const DEFAULT_REPLACEMENT = '$1';

// ---------------------------------------------------------------------------------
// Replacement templates

/** Pre-parsed template: literal strings and capture references (group number or name). */
type Template = readonly (string | number | { readonly name: string })[];

function isGoNameChar(c: string): boolean {
  return /^[\p{L}\p{Nd}_]$/u.test(c);
}

/**
 * A replacement template: literal text with `$$` as `$`, and references read
 * by `readRef` at each other `$` (undefined: a malformed reference, and the `$`
 * is literal text).
 */
function parseTemplate(t: string, readRef: (t: string, i: number) => { ref: number | { name: string }; end: number } | undefined): Template {
  const out: (string | number | { name: string })[] = [];
  let lit = '';
  let i = 0;
  while (i < t.length) {
    const c = t[i]!;
    if (c !== '$') {
      lit += c;
      i++;
      continue;
    }
    if (t[i + 1] === '$') {
      lit += '$';
      i += 2;
      continue;
    }
    const r = readRef(t, i);
    if (r === undefined) {
      lit += '$';
      i++;
      continue;
    }
    if (lit) out.push(lit);
    lit = '';
    out.push(r.ref);
    i = r.end;
  }
  if (lit) out.push(lit);
  return out;
}

/** Go regexp.Expand syntax: $1, ${1}, $name, ${name}, $$; `$1x` is the name "1x". */
function parseGoTemplate(t: string): Template {
  return parseTemplate(t, (s, i) => {
    let j = i + 1;
    const brace = s[j] === '{';
    if (brace) j++;
    const start = j;
    for (const ch of s.slice(start)) {
      if (!isGoNameChar(ch)) break;
      j += ch.length;
    }
    if (j === start) return undefined;
    const name = s.slice(start, j);
    if (brace) {
      if (s[j] !== '}') return undefined;
      j++;
    }
    return { ref: goRef(name), end: j };
  });
}

function goRef(name: string): number | { name: string } {
  if (/^[0-9]+$/.test(name) && !(name.length > 1 && name[0] === '0') && name.length <= 8) {
    return Number(name);
  }
  return { name };
}

/**
 * Gufo Agent: `$N` is first rewritten to `${N}` (eval.rs, same regex, same non-overlapping
 * replace), then Rust regex `Captures::expand` applies: `$$`, `$name` ([A-Za-z0-9_]+),
 * `${anything}`; a number is a group index, anything else a group name.
 */
function parseGufoTemplate(raw: string): Template {
  return parseTemplate(raw.replace(/(^|[^$])\$(\d+)/g, '$1$${$2}'), (t, i) => {
    let name: string | undefined;
    let end = i + 1;
    if (t[i + 1] === '{') {
      const close = t.indexOf('}', i + 2);
      if (close >= 0) {
        name = t.slice(i + 2, close);
        end = close + 1;
      }
    } else {
      const m = /^[A-Za-z0-9_]+/.exec(t.slice(i + 1));
      if (m) {
        name = m[0];
        end = i + 1 + m[0].length;
      }
    }
    if (name === undefined) return undefined;
    return { ref: /^[0-9]+$/.test(name) ? Number(name) : { name }, end };
  });
}

function expand(tpl: Template, m: RegExpExecArray): string {
  if (tpl.length === 1 && typeof tpl[0] === 'string') return tpl[0];
  let s = '';
  for (const part of tpl) {
    if (typeof part === 'string') s += part;
    else if (typeof part === 'number') s += m[part] ?? '';
    else s += m.groups?.[part.name] ?? '';
  }
  return s;
}

function hasRef(tpl: Template): boolean {
  return tpl.some((p) => typeof p !== 'string');
}

// ---------------------------------------------------------------------------------
// RE2 (Go / Rust regex) → JavaScript

const POSIX_CLASSES: Record<string, string> = {
  alnum: '0-9A-Za-z', alpha: 'A-Za-z', ascii: '\\x00-\\x7F', blank: '\\t ', cntrl: '\\x00-\\x1F\\x7F',
  digit: '0-9', graph: '!-~', lower: 'a-z', print: ' -~', punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\v\\f\\r ', upper: 'A-Z', word: '0-9A-Za-z_', xdigit: '0-9A-Fa-f',
};

function hexEscape(c: string): string {
  return `\\u{${c.codePointAt(0)!.toString(16)}}`;
}

/**
 * Translates RE2 syntax to a JS `u` regex with the same meaning where it matters for
 * label values: `.` excludes only `\n`, `\s` is `[\t\n\f\r ]`, `^`/`$` are text anchors,
 * `\A`, `\z`, `\Q…\E`, `(?P<name>…)`, POSIX classes, `\pL`, `\x{…}`, and a leading
 * `(?i)`/`(?s)`/`(?m)`. Throws on what RE2 rejects (lookaround, backreferences) and on
 * mid-pattern flags, which Node 20 cannot express.
 */
export function translateRe2(src: string): { source: string; flags: string } {
  let flagI = false;
  let flagS = false;
  let flagM = false;
  let p = src;
  const lead = /^\(\?([a-zA-Z]+)\)/.exec(p);
  if (lead) {
    for (const f of lead[1]!) {
      if (f === 'i') flagI = true;
      else if (f === 's') flagS = true;
      else if (f === 'm') flagM = true;
      else throw new Error(`unsupported flag (?${f})`);
    }
    p = p.slice(lead[0].length);
  }
  let out = '';
  let inClass = false;
  let classStart = false;
  let depth = 0;
  let i = 0;
  while (i < p.length) {
    const c = p[i]!;
    if (c === '\\') {
      const n = p[i + 1];
      if (n === undefined) throw new Error('trailing backslash');
      i += 2;
      if (n === 'Q') {
        const end = p.indexOf('\\E', i);
        const text = end < 0 ? p.slice(i) : p.slice(i, end);
        for (const ch of text) out += /[A-Za-z0-9]/.test(ch) ? ch : hexEscape(ch);
        i = end < 0 ? p.length : end + 2;
      } else if (n >= '1' && n <= '9') {
        throw new Error(`backreference \\${n} is not supported (RE2)`);
      } else if (n === 'A' && !inClass) {
        out += '(?<![\\s\\S])';
      } else if (n === 'z' && !inClass) {
        out += '(?![\\s\\S])';
      } else if (n === 's') {
        out += inClass ? '\\t\\n\\f\\r ' : '[\\t\\n\\f\\r ]';
      } else if (n === 'S' && !inClass) {
        out += '[^\\t\\n\\f\\r ]';
      } else if (n === 'a') {
        out += '\\x07';
      } else if (n === 'x' && p[i] === '{') {
        const end = p.indexOf('}', i);
        if (end < 0) throw new Error('unterminated \\x{');
        out += `\\u{${p.slice(i + 1, end)}}`;
        i = end + 1;
      } else if ((n === 'p' || n === 'P') && p[i] !== '{') {
        const cls = p[i];
        if (cls === undefined) throw new Error(`missing class after \\${n}`);
        out += `\\${n}{${cls}}`;
        i++;
      } else if ((n === 'p' || n === 'P') && p[i] === '{') {
        const end = p.indexOf('}', i);
        if (end < 0) throw new Error(`unterminated \\${n}{`);
        let name = p.slice(i + 1, end);
        let neg = n === 'P';
        if (name.startsWith('^')) {
          neg = !neg;
          name = name.slice(1);
        }
        // RE2 names scripts bare (\p{Greek}); JS needs Script=; categories are 1-2 letters.
        const prop = name.length <= 2 || name === 'Any' ? name : `Script=${name}`;
        out += `\\${neg ? 'P' : 'p'}{${prop}}`;
        i = end + 1;
      } else if (/[!-/:-@[-`{-~]/.test(n)) {
        out += hexEscape(n);
      } else {
        out += '\\' + n;
      }
      classStart = false;
      continue;
    }
    if (inClass) {
      if (c === ']' && !classStart) {
        inClass = false;
        out += ']';
      } else if (c === '[' && p[i + 1] === ':') {
        const m = /^\[:(\^?)([a-z]+):\]/.exec(p.slice(i));
        if (!m || !(m[2]! in POSIX_CLASSES)) throw new Error('invalid character class range');
        if (m[1]) throw new Error('negated POSIX classes are not supported');
        out += POSIX_CLASSES[m[2]!];
        i += m[0].length;
        classStart = false;
        continue;
      } else if (c === '[' || c === ']') {
        out += '\\' + c;
      } else {
        out += c;
      }
      classStart = false;
      i++;
      continue;
    }
    switch (c) {
      case '[':
        inClass = true;
        classStart = true;
        out += '[';
        if (p[i + 1] === '^') {
          out += '^';
          i++;
        }
        break;
      case '.':
        out += flagS ? '[\\s\\S]' : '[^\\n]';
        break;
      case '^':
        out += flagM ? '(?<![^\\n])' : '(?<![\\s\\S])';
        break;
      case '$':
        out += flagM ? '(?![^\\n])' : '(?![\\s\\S])';
        break;
      case ')':
        depth--;
        out += c;
        break;
      case '(':
        if (++depth > MAX_REGEX_NESTING) throw new Error(`groups nested more than ${MAX_REGEX_NESTING} deep`);
        if (p[i + 1] === '?') {
          const rest = p.slice(i + 2);
          if (rest.startsWith('P<')) {
            out += '(?<';
            i += 3;
          } else if (rest.startsWith(':') || (rest.startsWith('<') && !/^<[=!]/.test(rest))) {
            out += '(?' + rest[0];
            i += 2;
          } else if (/^(?:[=!]|<[=!])/.test(rest)) {
            throw new Error('lookaround assertions are not supported (RE2)');
          } else {
            throw new Error('inline flags are only supported at the start of the regex');
          }
        } else {
          out += '(';
        }
        break;
      case '{': {
        const m = /^\{\d+(?:,\d*)?\}/.exec(p.slice(i));
        if (m) {
          out += m[0];
          i += m[0].length - 1;
        } else {
          out += '\\{';
        }
        break;
      }
      case '}':
        out += '\\}';
        break;
      default:
        out += c;
    }
    i++;
  }
  if (inClass) throw new Error('missing closing ]');
  return { source: out, flags: flagI ? 'iu' : 'u' };
}

/**
 * Bounds on a configured regex. RE2 itself refuses programs past a size and
 * nesting limit; V8 instead throws "Regular expression too large" or
 * overflows its stack — the latter only on first use, i.e. at scrape time.
 * Prometheus label regexes are short; these leave ample room.
 */
export const MAX_REGEX_LENGTH = 4096;
export const MAX_REGEX_NESTING = 100;

/** V8's message repeats the whole pattern ("Invalid regular expression: /…/u: reason"); keep the reason. */
function regexProblem(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const m = /^Invalid regular expression: \/[\s\S]*\/[a-z]*: ([^/]*)$/.exec(msg);
  return m ? m[1]! : msg.length > 200 ? `${msg.slice(0, 200)}…` : msg;
}

function compileRegex(src: string, anchored: boolean): RegExp {
  if (src.length > MAX_REGEX_LENGTH) throw new Error(`longer than ${MAX_REGEX_LENGTH} characters (${src.length})`);
  const { source, flags } = translateRe2(src);
  try {
    new RegExp(source, flags); // validate the user's pattern on its own, before wrapping
    const re = new RegExp(anchored ? `^(?:${source})$` : source, flags);
    // V8 compiles a regex on first use; do it now, so "too large" is a config error, not a scrape error.
    re.test('');
    return re;
  } catch (e) {
    throw new Error(regexProblem(e));
  }
}

/** A configured regex for a message: whole when short, else its start and length. */
function shownRegex(src: string): string {
  return src.length <= 80 ? JSON.stringify(src) : `${JSON.stringify(src.slice(0, 60))}… (${src.length} characters)`;
}

// ---------------------------------------------------------------------------------
// Compilation

interface Step {
  readonly rule: NormalizedRule;
  readonly re: RegExp;
  /** Template for target_label (replace). */
  readonly target: Template;
  readonly replacement: Template | undefined;
  /** Prometheus fast path: literal target, literal replacement, default regex. */
  readonly literalSet: boolean;
}

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

function normalize(raw: RelabelRule, i: number, dialect: RegexDialect): NormalizedRule {
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

// Gufo "no regex": anything matches, and $0 = $1 = the joined value.
const MATCH_ALL = /^([\s\S]*)$/u;

function compileStep(rule: NormalizedRule, dialect: RegexDialect): Step {
  let re: RegExp;
  if (rule.regex === undefined) {
    re = MATCH_ALL;
  } else {
    try {
      re = compileRegex(rule.regex, dialect === 'prometheus');
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      throw new RelabelConfigError(rule.index, 'regex', `invalid regular expression ${shownRegex(rule.regex)}: ${msg}`);
    }
  }
  const parse = dialect === 'prometheus' ? parseGoTemplate : parseGufoTemplate;
  const target = parse(rule.targetLabel);
  const replacement = rule.replacement === undefined ? undefined : parse(rule.replacement);
  const literalSet =
    dialect === 'prometheus' && rule.sourceLabels.length === 0 && rule.regex === DEFAULT_REGEX &&
    !hasRef(target) && rule.replacement !== undefined && !rule.replacement.includes('$');
  return { rule, re, target, replacement, literalSet };
}

// ---------------------------------------------------------------------------------
// Application

type Active = Map<string, string>;

/** Prometheus labels.Builder.Set: an empty value deletes the label. */
function set(ls: Active, k: string, v: string): void {
  if (v === '') ls.delete(k);
  else ls.set(k, v);
}

function gufoVirtual(name: string): boolean {
  return name === NAME || name === '__address__' || name.startsWith('__meta_');
}

/** Joined source values; undefined in gufo dialect when a source label is missing. */
function joinSources(ls: Active, r: NormalizedRule, gufo: boolean): string | undefined {
  const src = r.sourceLabels;
  if (src.length === 1) {
    const v = ls.get(src[0]!);
    return v === undefined && gufo ? undefined : (v ?? '');
  }
  let s = '';
  for (let k = 0; k < src.length; k++) {
    const v = ls.get(src[k]!);
    if (v === undefined && gufo) return undefined;
    if (k > 0) s += r.separator;
    s += v ?? '';
  }
  return s;
}

function hashmod(val: string, modulus: number): string {
  // Prometheus sum64(md5): only the last 8 digest bytes survive the shifts, big-endian.
  const digest = createHash('md5').update(val, 'utf8').digest();
  return (digest.readBigUInt64BE(8) % BigInt(modulus)).toString();
}

function formatSeries(ls: Active): string {
  const keys = [...ls.keys()].sort();
  return '{' + keys.map((k) => `${k}=${JSON.stringify(ls.get(k))}`).join(', ') + '}';
}

/** Runs one step; returns false when the series is dropped. */
function runStep(st: Step, ls: Active, gufo: boolean, dump: (t: string) => void): boolean {
  const r = st.rule;
  switch (r.action) {
    case 'keep':
    case 'drop': {
      const val = joinSources(ls, r, gufo);
      const hit = val !== undefined && st.re.test(val);
      return r.action === 'keep' ? hit : !hit;
    }
    case 'keepequal':
    case 'dropequal': {
      const eq = (ls.get(r.targetLabel) ?? '') === joinSources(ls, r, false);
      return r.action === 'keepequal' ? eq : !eq;
    }
    case 'drop_if_equal': {
      const first = ls.get(r.sourceLabels[0]!);
      for (let k = 1; k < r.sourceLabels.length; k++) {
        if (ls.get(r.sourceLabels[k]!) !== first) return true;
      }
      return false;
    }
    case 'replace': {
      if (st.literalSet) {
        // Default regex (.*) always matches: plain add/delete, as Prometheus' fast path.
        set(ls, r.targetLabel, r.replacement!);
        return true;
      }
      const noSources = r.sourceLabels.length === 0;
      const val = noSources ? '' : joinSources(ls, r, gufo);
      if (val === undefined) return true;
      const m = st.re.exec(val);
      if (m === null) return true;
      const target = expand(st.target, m);
      if (!validLabelName(target)) return true;
      // Gufo: no replacement keeps the joined value (not the match).
      const res = st.replacement === undefined ? val : expand(st.replacement, m);
      set(ls, target, res);
      return true;
    }
    case 'lowercase':
      set(ls, r.targetLabel, joinSources(ls, r, false)!.toLowerCase());
      return true;
    case 'uppercase':
      set(ls, r.targetLabel, joinSources(ls, r, false)!.toUpperCase());
      return true;
    case 'hashmod':
      set(ls, r.targetLabel, hashmod(joinSources(ls, r, false)!, r.modulus));
      return true;
    case 'labelmap': {
      // Iterate a sorted snapshot, as Prometheus ranges over the sorted label set.
      const names = [...ls.keys()].sort();
      const moves: [string, string, string][] = [];
      for (const n of names) {
        const m = st.re.exec(n);
        if (m === null) continue;
        const to = st.replacement === undefined ? n : expand(st.replacement, m);
        if (!validLabelName(to)) continue;
        moves.push([n, to, ls.get(n)!]);
      }
      for (const [from, to, v] of moves) {
        if (gufo && !gufoVirtual(from)) ls.delete(from); // Gufo moves; Prometheus copies
        set(ls, to, v);
      }
      return true;
    }
    case 'labeldrop':
    case 'labelkeep': {
      const keep = r.action === 'labelkeep';
      for (const n of [...ls.keys()]) {
        if (gufo && gufoVirtual(n)) continue;
        if (st.re.test(n) !== keep) ls.delete(n);
      }
      return true;
    }
    case 'dump':
      dump(`relabel[${r.index}] dump: ${formatSeries(ls)}`);
      return true;
  }
}

function needsCleanup(name: string, labels: Labels): boolean {
  if (!validMetricName(name)) return true;
  for (const k in labels) {
    if (labels[k] === '' || k.startsWith('__')) return true;
  }
  return false;
}

export function compileRelabel(rules: RelabelRule[], opts: CompileRelabelOptions = {}): CompiledRelabel {
  const dialect: RegexDialect = opts.dialect ?? 'prometheus';
  if (dialect !== 'prometheus' && dialect !== 'gufo') {
    throw new Error(`unknown regex dialect ${JSON.stringify(dialect)}`);
  }
  const dump = opts.dump ?? ((t: string) => console.error(t));
  if (!Array.isArray(rules)) throw new RelabelConfigError(0, 'action', 'relabel must be a list of rules');
  const normalized = rules.map((r, i) => normalize(r, i, dialect));
  const steps = normalized.map((r) => compileStep(r, dialect));
  const gufo = dialect === 'gufo';

  function apply(name: string, labels: Labels): { name: string; labels: Labels } | undefined {
    if (steps.length === 0 && !needsCleanup(name, labels)) return { name, labels };
    const ls: Active = new Map();
    for (const k in labels) {
      const v = labels[k];
      if (v !== undefined && v !== '' && k !== NAME) ls.set(k, v);
    }
    if (name !== '') ls.set(NAME, name);
    for (const st of steps) {
      if (!runStep(st, ls, gufo, dump)) return undefined;
    }
    const outName = ls.get(NAME);
    if (outName === undefined || !validMetricName(outName)) return undefined;
    const keys: string[] = [];
    for (const k of ls.keys()) if (!k.startsWith('__')) keys.push(k);
    keys.sort();
    const out: Labels = {};
    for (const k of keys) out[k] = ls.get(k)!;
    return { name: outName, labels: out };
  }

  return { rules: normalized, apply, isEmpty: steps.length === 0 };
}
