// RE2 (Go / Rust regex) syntax → a JavaScript `u` regex, and the bounds a
// configured regex must stay within. Pure.

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

/** A configured regex, translated, validated and compiled now; `anchored`: Prometheus `^(?:re)$`. */
export function compileRegex(src: string, anchored: boolean): RegExp {
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
export function shownRegex(src: string): string {
  return src.length <= 80 ? JSON.stringify(src) : `${JSON.stringify(src.slice(0, 60))}… (${src.length} characters)`;
}
