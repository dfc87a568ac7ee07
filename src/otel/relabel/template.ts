// Replacement templates of the two dialects: Go regexp.Expand (Prometheus) and
// Rust regex Captures::expand after Gufo Agent's `$N` → `${N}` rewrite. Pure.

/** Pre-parsed template: literal strings and capture references (group number or name). */
export type Template = readonly (string | number | { readonly name: string })[];

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
export function parseGoTemplate(t: string): Template {
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
export function parseGufoTemplate(raw: string): Template {
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

export function expand(tpl: Template, m: RegExpExecArray): string {
  if (tpl.length === 1 && typeof tpl[0] === 'string') return tpl[0];
  let s = '';
  for (const part of tpl) {
    if (typeof part === 'string') s += part;
    else if (typeof part === 'number') s += m[part] ?? '';
    else s += m.groups?.[part.name] ?? '';
  }
  return s;
}

export function hasRef(tpl: Template): boolean {
  return tpl.some((p) => typeof p !== 'string');
}
