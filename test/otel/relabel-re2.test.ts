// The RE2 → JavaScript translator on its own (src/otel/relabel/re2.ts): each
// construct RE2 (Go regexp/syntax, Rust regex) accepts means the same once
// translated, and what RE2 rejects or Node cannot express is an error. The
// engine tests (relabel.test.ts) and the comparison with a real Prometheus
// (relabel-prometheus.test.ts) exercise it through whole rules.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { translateRe2 } from '../../src/otel/relabel.js';
import { compileRegex } from '../../src/otel/relabel/re2.js';

/** The translated regex, searched (unanchored) in `text`: true when it matches. */
function finds(re2: string, text: string): boolean {
  const { source, flags } = translateRe2(re2);
  return new RegExp(source, flags).test(text);
}

/** Whole-text match, as Prometheus anchors it. */
function matches(re2: string, text: string): boolean {
  return compileRegex(re2, true).test(text);
}

function rejects(re2: string, message: RegExp): void {
  assert.throws(() => translateRe2(re2), message, re2);
}

describe('RE2 translator: flags', () => {
  it('no flag: a JS unicode regex; a leading (?i) adds i', () => {
    assert.equal(translateRe2('abc').flags, 'u');
    assert.equal(translateRe2('(?i)abc').flags, 'iu');
    assert.ok(finds('(?i)eu-west', 'EU-West'));
    assert.ok(!finds('eu-west', 'EU-West'));
  });
  it('(?s): `.` also matches a newline; without it `.` excludes only \\n', () => {
    assert.ok(!matches('a.b', 'a\nb'));
    assert.ok(matches('(?s)a.b', 'a\nb'));
    for (const c of ['\r', '\u2028', '\u2029', '\u0085', 'é', '😀']) assert.ok(matches('a.b', `a${c}b`), JSON.stringify(c));
  });
  it('(?m): ^ and $ also match at line boundaries; without it they anchor the text', () => {
    assert.ok(!finds('^b', 'a\nb'));
    assert.ok(finds('(?m)^b', 'a\nb'));
    assert.ok(!finds('a$', 'a\nb'));
    assert.ok(finds('(?m)a$', 'a\nb'));
    assert.ok(finds('(?ms)a.^b', 'a\nb'));
  });
  it('flags other than i, s, m, and flags after the start, are errors', () => {
    rejects('(?U)a+', /unsupported flag \(\?U\)/);
    rejects('a(?i)b', /inline flags are only supported at the start/);
    rejects('(?i:a)b', /inline flags are only supported at the start/);
  });
});

describe('RE2 translator: anchors and escapes', () => {
  it('\\A and \\z anchor the text even with (?m)', () => {
    assert.ok(finds('\\Aab\\z', 'ab'));
    assert.ok(!finds('(?m)\\Ab', 'a\nb'));
    assert.ok(!finds('(?m)a\\z', 'a\nb'));
  });
  it('\\Q…\\E quotes metacharacters; an unclosed \\Q runs to the end', () => {
    assert.ok(matches('\\Q1.2*[x]\\E', '1.2*[x]'));
    assert.ok(!matches('\\Q1.2\\E', '132'));
    assert.ok(matches('a\\Q(b)', 'a(b)'));
    assert.ok(matches('\\Q$1\\E-x', '$1-x'));
  });
  it('\\s is ASCII whitespace only (no \\v, no NBSP), \\S its complement, also in a class', () => {
    for (const c of ['\t', '\n', '\f', '\r', ' ']) assert.ok(matches('\\s', c), JSON.stringify(c));
    for (const c of ['\v', '\u00a0', '\u2003']) assert.ok(!matches('\\s', c), JSON.stringify(c));
    assert.ok(matches('\\S', '\u00a0'));
    assert.ok(!matches('\\S', ' '));
    assert.ok(matches('[\\s,]+', ' ,\t'));
    assert.ok(!matches('[\\s,]+', '\u00a0'));
  });
  it('\\a is BEL, \\x{…} a code point (beyond the BMP too)', () => {
    assert.ok(matches('\\a', '\x07'));
    assert.ok(matches('\\x{41}\\x{1F600}', 'A😀'));
    rejects('\\x{41', /unterminated \\x\{/);
  });
  it('escaped punctuation is literal (a JS u regex refuses \\- or \\/ outside a class)', () => {
    for (const c of '-/:@`~!#%&=<>,;\'"') assert.ok(matches(`a\\${c}b`, `a${c}b`), c);
    assert.ok(matches('\\.\\*\\+\\?\\(\\)\\[\\]\\{\\}\\|\\^\\$\\\\', '.*+?()[]{}|^$\\'));
  });
  it('\\d, \\w, \\b pass through with their ASCII meaning', () => {
    assert.ok(matches('\\d+\\w*', '42ab_'));
    assert.ok(!matches('\\d', '٣')); // Arabic-Indic digit: not \d in RE2 nor in JS
    assert.ok(finds('\\bx\\b', 'a x b'));
  });
  it('a backslash at the end is an error, a backreference is one (RE2 has none)', () => {
    rejects('a\\', /trailing backslash/);
    rejects('(a)\\1', /backreference \\1 is not supported/);
  });
});

describe('RE2 translator: groups and repetition', () => {
  it('(?P<name>…) and (?<name>…) are named groups; (?:…) does not capture', () => {
    const m = new RegExp(translateRe2('(?P<net>\\d+)\\.(?<host>\\d+)(?:x)?').source, 'u').exec('10.7');
    assert.equal(m?.groups?.net, '10');
    assert.equal(m?.groups?.host, '7');
    assert.equal(m?.length, 3);
  });
  it('lookahead and lookbehind are errors (RE2 rejects them)', () => {
    for (const re of ['a(?=b)', 'a(?!b)', '(?<=a)b', '(?<!a)b']) rejects(re, /lookaround assertions are not supported/);
  });
  it('{n}, {n,}, {n,m} repeat; any other brace is literal', () => {
    assert.ok(matches('a{2}', 'aa'));
    assert.ok(matches('a{2,}', 'aaaa'));
    assert.ok(matches('a{1,3}', 'aaa'));
    assert.ok(!matches('a{1,3}', 'aaaa'));
    for (const lit of ['a{', 'a{x}', 'a{,3}', '}', 'a{}']) assert.ok(matches(lit, lit), lit);
  });
  it('nesting deeper than the bound is an error, at the bound it is not', () => {
    assert.doesNotThrow(() => translateRe2('('.repeat(100) + 'a' + ')'.repeat(100)));
    rejects('('.repeat(101) + 'a' + ')'.repeat(101), /groups nested more than 100 deep/);
  });
});

describe('RE2 translator: character classes', () => {
  it('] first in a class (after ^ too) is literal, [ inside a class is literal', () => {
    assert.ok(matches('[]a]+', ']a]'));
    assert.ok(matches('[^]a]', 'b'));
    assert.ok(!matches('[^]a]', ']'));
    assert.ok(matches('[[x]+', '[x['));
  });
  it('POSIX classes inside a bracket expression', () => {
    assert.ok(matches('[[:alpha:]]+-[[:digit:]]', 'eu-1'));
    assert.ok(matches('[[:xdigit:][:space:]]+', 'Fa 9'));
    assert.ok(matches('[[:punct:]]+', '!/:@[`{~\\'));
    assert.ok(!matches('[[:punct:]]', 'a'));
    assert.ok(matches('[[:word:]]+', 'a_1'));
    assert.ok(!matches('[[:upper:]]', 'a'));
  });
  it('negated or unknown POSIX classes and an unclosed class are errors', () => {
    rejects('[[:^digit:]]', /negated POSIX classes are not supported/);
    rejects('[[:bogus:]]', /invalid character class range/);
    rejects('[abc', /missing closing \]/);
  });
  it('Unicode classes: \\pL, \\p{Greek} (a script, bare as in RE2), \\P and \\p{^…} negate', () => {
    assert.ok(matches('\\pL+', 'éa'));
    assert.ok(!matches('\\pL', '1'));
    assert.ok(matches('\\p{Greek}+', 'αβ'));
    assert.ok(!matches('\\p{Greek}', 'a'));
    assert.ok(matches('\\P{Greek}', 'a'));
    assert.ok(matches('\\p{^Greek}', 'a'));
    assert.ok(!matches('\\P{^Greek}', 'a'));
    assert.ok(matches('\\p{Lu}\\p{Nd}', 'A1'));
    assert.ok(matches('\\p{Any}', '😀'));
    rejects('a\\p', /missing class after \\p/);
    rejects('\\p{Greek', /unterminated \\p\{/);
  });
});

describe('compileRegex', () => {
  it('anchored (prometheus) matches the whole text, unanchored (gufo) searches', () => {
    assert.ok(!compileRegex('1;', true).test('1;2'));
    assert.ok(compileRegex('1;', false).test('1;2'));
    assert.ok(!compileRegex('a|b', true).test('ab')); // the whole alternation is anchored
  });
  it('a pattern RE2 accepts but V8 cannot is an error with V8\'s reason, not its whole message', () => {
    assert.throws(() => compileRegex('\\p{Nope}', false), (e: Error) => /property name/i.test(e.message) && !e.message.includes('/'));
  });
});
