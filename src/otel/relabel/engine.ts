// Relabeling engine: runs normalised rules on one series with Prometheus
// `relabel_config` semantics (model/relabel/relabel.go), or the Gufo Agent
// dialect (unanchored regexes, `drop_if_equal`, `dump`) for migrated configs.
// Pure: no I/O, no OTel imports. Rules compile once; apply() runs per series
// per collection.

import { createHash } from 'node:crypto';
import {
  DEFAULT_REGEX, normalize, validLabelName, validMetricName, RelabelConfigError,
  type Labels, type NormalizedRule, type RegexDialect, type RelabelRule,
} from './rules.js';
import { expand, hasRef, parseGoTemplate, parseGufoTemplate, type Template } from './template.js';
import { compileRegex, shownRegex } from './re2.js';

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

const NAME = '__name__';

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
