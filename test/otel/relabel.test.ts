import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  compileRelabel,
  RelabelConfigError,
  validLabelName,
  validMetricName,
  type Labels,
  type RegexDialect,
  type RelabelRule,
} from '../../src/otel/relabel.js';

const ABC: Labels = { a: '1', b: '2', c: '3' };

function run(rules: RelabelRule[], labels: Labels, dialect: RegexDialect = 'prometheus', name = 'm') {
  return compileRelabel(rules, { dialect }).apply(name, labels);
}
function labelsOf(rules: RelabelRule[], labels: Labels, dialect: RegexDialect = 'prometheus'): Labels | undefined {
  return run(rules, labels, dialect)?.labels;
}
function configError(rules: unknown[], dialect: RegexDialect = 'prometheus'): RelabelConfigError {
  try {
    compileRelabel(rules as RelabelRule[], { dialect });
  } catch (e) {
    assert.ok(e instanceof RelabelConfigError, `not a RelabelConfigError: ${String(e)}`);
    return e;
  }
  assert.fail(`no error for ${JSON.stringify(rules)}`);
}

describe('label and metric names', () => {
  it('validLabelName follows the Prometheus rule', () => {
    for (const ok of ['a', '_', 'A_1', '__name__']) assert.ok(validLabelName(ok), ok);
    for (const bad of ['', '1a', 'a-b', 'a.b', 'a:b', 'é']) assert.ok(!validLabelName(bad), bad);
  });
  it('validMetricName allows colons', () => {
    for (const ok of ['a', 'a:b', ':x', 'twamp_rt_ns']) assert.ok(validMetricName(ok), ok);
    for (const bad of ['', '1a', 'a-b', 'a.b']) assert.ok(!validMetricName(bad), bad);
  });
});

describe('defaults and series shape', () => {
  it('fills Prometheus defaults', () => {
    const [r] = compileRelabel([{ source_labels: ['a'], target_label: 'x' }]).rules;
    assert.deepEqual(
      { action: r!.action, separator: r!.separator, regex: r!.regex, replacement: r!.replacement },
      { action: 'replace', separator: ';', regex: '(.*)', replacement: '$1' },
    );
    assert.deepEqual(labelsOf([{ source_labels: ['a', 'b'], target_label: 'x' }], ABC), { ...ABC, x: '1;2' });
  });
  it('no rules: isEmpty, same object back when already clean', () => {
    const c = compileRelabel([]);
    assert.equal(c.isEmpty, true);
    assert.equal(c.apply('m', ABC)!.labels, ABC);
    assert.equal(compileRelabel([{ action: 'dump' }], { dump: () => {} }).isEmpty, false);
  });
  it('removes empty values and __-prefixed labels, sorts keys', () => {
    const r = run([], { z: '1', e: '', __meta_x: 'm', __tmp: 't', a: '2' });
    assert.deepEqual(r, { name: 'm', labels: { a: '2', z: '1' } });
    assert.deepEqual(Object.keys(r!.labels), ['a', 'z']);
    assert.deepEqual(labelsOf([{ source_labels: ['a'], target_label: '__tmp_a' }], ABC), ABC);
  });
  it('__name__ is a label: rename via replace', () => {
    const rules: RelabelRule[] = [{ source_labels: ['__name__'], regex: 'twamp_(.*)_ns', target_label: '__name__', replacement: 'twamp_${1}_nanoseconds' }];
    assert.deepEqual(run(rules, ABC, 'prometheus', 'twamp_rt_avg_ns'), { name: 'twamp_rt_avg_nanoseconds', labels: ABC });
    assert.deepEqual(run(rules, ABC, 'prometheus', 'other'), { name: 'other', labels: ABC });
  });
  it('drops a series whose __name__ is emptied, removed or invalid', () => {
    assert.equal(run([{ target_label: '__name__', replacement: '' }], ABC), undefined);
    assert.equal(run([{ target_label: '__name__', replacement: '1x' }], ABC), undefined);
    assert.equal(run([{ action: 'labeldrop', regex: '__name__' }], ABC), undefined);
    assert.equal(run([{ action: 'labelkeep', regex: 'a' }], ABC), undefined);
    assert.equal(run([], ABC, 'prometheus', 'bad-name'), undefined);
  });
  it('keeps the input object intact', () => {
    const input = { ...ABC };
    run([{ action: 'labeldrop', regex: 'a' }, { target_label: 'b', replacement: 'x' }], input);
    assert.deepEqual(input, ABC);
  });
});

describe('replace', () => {
  it('groups, ${n}, named groups, $$ and $0 (Go Expand)', () => {
    const l = { ip: '10.0.0.7', zone: 'eu-1' };
    const rule = (replacement: string): RelabelRule[] =>
      [{ source_labels: ['ip', 'zone'], regex: '(?P<net>\\d+\\.\\d+)\\.\\d+\\.(\\d+);(\\w+)-(?<n>\\d)', target_label: 'x', replacement }];
    assert.equal(labelsOf(rule('${2}/$3$$'), l)!.x, '7/eu$');
    assert.equal(labelsOf(rule('$net|${n}'), l)!.x, '10.0|1');
    assert.equal(labelsOf(rule('$0'), l)!.x, '10.0.0.7;eu-1');
    assert.equal(labelsOf(rule('$9|$nope|$'), l)!.x, '||$'); // missing groups are empty, lone $ is literal
  });
  it('`$1x` is the group named "1x" (empty) in prometheus, group 1 + "x" in gufo', () => {
    const rules: RelabelRule[] = [{ source_labels: ['a'], regex: '(.*)', target_label: 'x', replacement: 'v$1x' }];
    assert.equal(labelsOf(rules, ABC)!.x, 'v');
    assert.equal(labelsOf(rules, ABC, 'gufo')!.x, 'v1x');
  });
  it('no match: nothing written', () => {
    assert.deepEqual(labelsOf([{ source_labels: ['a'], regex: '2', target_label: 'x', replacement: 'y' }], ABC), ABC);
  });
  it('empty result deletes the target', () => {
    assert.deepEqual(labelsOf([{ source_labels: ['a'], target_label: 'b', replacement: '' }], ABC), { a: '1', c: '3' });
  });
  it('templated target_label; invalid expansion writes nothing', () => {
    const rules: RelabelRule[] = [{ source_labels: ['k'], regex: '(.*)', target_label: 'svc_${1}', replacement: 'yes' }];
    assert.deepEqual(labelsOf(rules, { k: 'voip' }), { k: 'voip', svc_voip: 'yes' });
    assert.deepEqual(labelsOf(rules, { k: 'a-b' }), { k: 'a-b' });
  });
  it('missing source label: "" in prometheus, rule skipped in gufo', () => {
    const rules: RelabelRule[] = [{ source_labels: ['nope'], target_label: 'a' }];
    assert.deepEqual(labelsOf(rules, ABC), { b: '2', c: '3' });
    assert.deepEqual(labelsOf(rules, ABC, 'gufo'), ABC);
  });
  it('regex is anchored in prometheus, a search in gufo', () => {
    const rules: RelabelRule[] = [{ source_labels: ['a', 'b'], regex: '1;', target_label: 'x', replacement: 'hit' }];
    assert.equal(labelsOf(rules, ABC)!.x, undefined);
    assert.equal(labelsOf(rules, ABC, 'gufo')!.x, 'hit');
  });
  it('RE2 syntax: (?i), POSIX class, \\Q…\\E, `.` stops at newline, literal {', () => {
    const t = (regex: string, v: string) =>
      labelsOf([{ source_labels: ['v'], regex, target_label: 'x', replacement: 'hit' }], { v })!.x === 'hit';
    assert.ok(t('(?i)eu-(.*)', 'EU-1'));
    assert.ok(t('[[:alpha:]]+-[[:digit:]]', 'eu-1'));
    assert.ok(t('\\Q10.0.0.1\\E', '10.0.0.1'));
    assert.ok(!t('\\Q10.0.0.1\\E', '10a0.0.1'));
    assert.ok(!t('a.b', 'a\nb'));
    assert.ok(t('(?s)a.b', 'a\nb'));
    assert.ok(t('a{x', 'a{x'));
    assert.ok(t('a\\sb', 'a b'));
    assert.ok(!t('a\\sb', 'a\u00a0b')); // RE2 \s is ASCII whitespace only
  });
});

describe('Gufo Agent vectors, gufo dialect', () => {
  const kata: Labels = { zzz: 'xxx', subsystem: 'kata', server: 'web000' };
  const evalRule = (extra: Partial<RelabelRule>): RelabelRule[] =>
    [{ source_labels: ['server', 'subsystem'], separator: '@', target_label: 'out', ...extra }];

  it('replace without sources adds z=9 (YAML number)', () => {
    const rules = [{ action: 'replace', target_label: 'z', replacement: 9 }] as unknown as RelabelRule[];
    assert.deepEqual(labelsOf(rules, ABC, 'gufo'), { ...ABC, z: '9' });
    assert.deepEqual(labelsOf(rules, ABC, 'prometheus'), { ...ABC, z: '9' });
  });
  it('source_labels [a,b], replacement $0 → 1;2', () => {
    const rules: RelabelRule[] = [{ source_labels: ['a', 'b'], target_label: 'z', replacement: '$0' }];
    assert.equal(labelsOf(rules, ABC, 'gufo')!.z, '1;2');
    assert.equal(labelsOf(rules, ABC)!.z, '1;2');
  });
  it('concat without regex/replacement → web000@kata', () => {
    assert.equal(labelsOf(evalRule({}), kata, 'gufo')!.out, 'web000@kata');
  });
  it('regex web(\\d+)@ka(.+), replacement $0-->$1->$2 → web000@kata-->000->ta', () => {
    const rules = evalRule({ regex: 'web(\\d+)@ka(.+)', replacement: '$0-->$1->$2' });
    assert.equal(labelsOf(rules, kata, 'gufo')!.out, 'web000@kata-->000->ta');
    assert.equal(labelsOf(rules, kata)!.out, 'web000@kata-->000->ta'); // full match anyway
  });
  it('regex @ka without replacement keeps the joined value; prometheus: anchored, no match', () => {
    assert.equal(labelsOf(evalRule({ regex: '@ka' }), kata, 'gufo')!.out, 'web000@kata');
    assert.equal(labelsOf(evalRule({ regex: '@ka' }), kata)!.out, undefined);
  });
  it('regex @bata → no match, nothing written', () => {
    assert.equal(labelsOf(evalRule({ regex: '@bata' }), kata, 'gufo')!.out, undefined);
  });
  it('@--->$0 without regex → @--->web000@kata (both dialects)', () => {
    assert.equal(labelsOf(evalRule({ replacement: '@--->$0' }), kata, 'gufo')!.out, '@--->web000@kata');
    assert.equal(labelsOf(evalRule({ replacement: '@--->$0' }), kata)!.out, '@--->web000@kata');
  });
  it('drop regex 1;1: gufo search also matches 11;11, prometheus does not', () => {
    const rules: RelabelRule[] = [{ action: 'drop', source_labels: ['a', 'b'], regex: '1;1' }];
    assert.equal(run(rules, { a: '1', b: '1', c: '3' }, 'gufo'), undefined);
    assert.ok(run(rules, { a: '1', b: '2', c: '3' }, 'gufo'));
    assert.equal(run(rules, { a: '11', b: '11' }, 'gufo'), undefined);
    assert.equal(run(rules, { a: '1', b: '1' }), undefined);
    assert.ok(run(rules, { a: '11', b: '11' }));
  });
  it('keep regex 1;1: same, and a missing source drops in gufo', () => {
    const rules: RelabelRule[] = [{ action: 'keep', source_labels: ['a', 'b'], regex: '1;1' }];
    assert.ok(run(rules, { a: '1', b: '1', c: '3' }, 'gufo'));
    assert.equal(run(rules, { a: '1', b: '2', c: '3' }, 'gufo'), undefined);
    assert.ok(run(rules, { a: '11', b: '11' }, 'gufo'));
    assert.equal(run(rules, { a: '11', b: '11' }), undefined);
    assert.equal(run([{ action: 'keep', source_labels: ['nope'], regex: '.*' }], ABC, 'gufo'), undefined);
    assert.ok(run([{ action: 'keep', source_labels: ['nope'], regex: '.*' }], ABC)); // prometheus: "" matches
  });
  it('drop with a missing source never drops in gufo', () => {
    assert.ok(run([{ action: 'drop', source_labels: ['nope'] }], ABC, 'gufo'));
    assert.equal(run([{ action: 'drop', source_labels: ['nope'] }], ABC), undefined); // (.*) matches ""
  });
  it('labeldrop / labelkeep a|b', () => {
    assert.deepEqual(labelsOf([{ action: 'labeldrop', regex: 'a|b' }], ABC, 'gufo'), { c: '3' });
    assert.deepEqual(labelsOf([{ action: 'labelkeep', regex: 'a|b' }], ABC, 'gufo'), { a: '1', b: '2' });
    // prometheus labelkeep would drop __name__ too, and with it the series
    assert.equal(run([{ action: 'labelkeep', regex: 'a|b' }], ABC), undefined);
    assert.deepEqual(labelsOf([{ action: 'labelkeep', regex: '__name__|a|b' }], ABC), { a: '1', b: '2' });
  });
  it('labeldrop is unanchored in gufo: a drops zone_a', () => {
    const l = { a: '1', zone_a: 'z', b: '2' };
    assert.deepEqual(labelsOf([{ action: 'labeldrop', regex: 'a' }], l, 'gufo'), { b: '2' });
    assert.deepEqual(labelsOf([{ action: 'labeldrop', regex: 'a' }], l), { zone_a: 'z', b: '2' });
  });
  it('labelmap a → d: gufo moves, prometheus copies', () => {
    const rules: RelabelRule[] = [{ action: 'labelmap', regex: 'a', replacement: 'd' }];
    assert.deepEqual(labelsOf(rules, ABC, 'gufo'), { b: '2', c: '3', d: '1' });
    assert.deepEqual(labelsOf(rules, ABC), { a: '1', b: '2', c: '3', d: '1' });
  });
  it('labelmap in gufo never moves __name__ (copies it)', () => {
    const r = run([{ action: 'labelmap', regex: '__(name)__', replacement: 'metric_$1' }], ABC, 'gufo', 'm');
    assert.deepEqual(r, { name: 'm', labels: { ...ABC, metric_name: 'm' } });
  });
  it('drop_if_equal', () => {
    const r2: RelabelRule[] = [{ action: 'drop_if_equal', source_labels: ['a', 'b'] }];
    const r3: RelabelRule[] = [{ action: 'drop_if_equal', source_labels: ['a', 'b', 'c'] }];
    assert.equal(run(r2, { a: '1', b: '1', c: '3' }, 'gufo'), undefined);
    assert.ok(run(r2, { a: '1', b: '2', c: '3' }, 'gufo'));
    assert.equal(run(r3, { a: '1', b: '1', c: '1' }, 'gufo'), undefined);
    assert.ok(run(r3, { a: '1', b: '1', c: '3' }, 'gufo'));
    assert.equal(run([{ action: 'drop_if_equal', source_labels: ['x', 'y'] }], ABC, 'gufo'), undefined); // all missing
    assert.equal(run(r2, { a: '1', b: '1' }), undefined); // also available in prometheus dialect
  });
  it('gufo label actions never remove __name__', () => {
    assert.deepEqual(run([{ action: 'labeldrop', regex: 'name' }], ABC, 'gufo'), { name: 'm', labels: ABC });
  });
});

describe('other actions', () => {
  it('keepequal / dropequal compare with target_label (missing = "")', () => {
    const l = { host: 'b', zone: 'b' };
    assert.ok(run([{ action: 'keepequal', source_labels: ['host'], target_label: 'zone' }], l));
    assert.equal(run([{ action: 'dropequal', source_labels: ['host'], target_label: 'zone' }], l), undefined);
    assert.equal(run([{ action: 'keepequal', source_labels: ['host'], target_label: 'zone' }], { host: 'a', zone: 'b' }), undefined);
    assert.equal(run([{ action: 'dropequal', source_labels: ['x'], target_label: 'y' }], ABC), undefined);
  });
  it('lowercase / uppercase (empty result deletes the target)', () => {
    const l = { zone: 'US-East', s: 'VoIP' };
    assert.equal(labelsOf([{ action: 'lowercase', source_labels: ['zone', 's'], target_label: 'x' }], l)!.x, 'us-east;voip');
    assert.equal(labelsOf([{ action: 'uppercase', source_labels: ['zone'], target_label: 'zone' }], l)!.zone, 'US-EAST');
    assert.deepEqual(labelsOf([{ action: 'lowercase', source_labels: ['nope'], target_label: 'zone' }], l), { s: 'VoIP' });
  });
  it('hashmod = last 8 bytes of md5, big-endian uint64, mod modulus', () => {
    const expected = (v: string, m: number) =>
      (BigInt('0x' + createHash('md5').update(v).digest('hex').slice(16)) % BigInt(m)).toString();
    for (const m of [1, 7, 1000, 2 ** 52 + 1]) {
      const out = labelsOf([{ action: 'hashmod', source_labels: ['a', 'b'], modulus: m, target_label: 'h' }], ABC)!;
      assert.equal(out.h, expected('1;2', m));
    }
    // first 8 digest bytes do not matter: md5("1;2") first byte is non-zero yet the value fits in uint64
    assert.ok(BigInt(expected('1;2', 2 ** 52 + 1)) < 2n ** 52n + 1n);
  });
  it('dump logs the active labels and passes the series', () => {
    const seen: string[] = [];
    const c = compileRelabel([{ target_label: 'x', replacement: 'y' }, { action: 'dump' }, { action: 'labeldrop', regex: 'x' }], {
      dump: (t) => seen.push(t),
    });
    assert.deepEqual(c.apply('m', { a: '1' }), { name: 'm', labels: { a: '1' } });
    assert.deepEqual(seen, ['relabel[1] dump: {__name__="m", a="1", x="y"}']);
  });
  it('action names are case-insensitive, as Prometheus', () => {
    assert.equal(run([{ action: 'DROP' as 'drop', source_labels: ['a'], regex: '1' }], ABC), undefined);
  });
  it('rules run in order and stop at the first drop', () => {
    const seen: string[] = [];
    const c = compileRelabel([{ action: 'drop', source_labels: ['a'], regex: '1' }, { action: 'dump' }], { dump: (t) => seen.push(t) });
    assert.equal(c.apply('m', ABC), undefined);
    assert.deepEqual(seen, []);
  });
});

describe('config errors name the rule and field', () => {
  const cases: [string, unknown[], number, string, RegExp?][] = [
    ['unknown action', [{ action: 'explode' }], 0, 'action', /unknown relabel action "explode"/],
    ['invalid regex', [{ action: 'keep', source_labels: ['a'] }, { action: 'dump' }, { source_labels: ['a'], target_label: 'b', regex: '(' }], 2, 'regex', /^relabel\[2\]\.regex: invalid regular expression "\(": /],
    ['lookahead', [{ source_labels: ['a'], target_label: 'b', regex: 'a(?=b)' }], 0, 'regex', /lookaround/],
    ['backreference', [{ source_labels: ['a'], target_label: 'b', regex: '(a)\\1' }], 0, 'regex', /backreference/],
    ['mid-pattern flags', [{ source_labels: ['a'], target_label: 'b', regex: 'a(?i)b' }], 0, 'regex', /inline flags/],
    ['replace without target', [{ source_labels: ['a'] }], 0, 'target_label', /^relabel\[0\]\.target_label: required for action replace$/],
    ['hashmod without target', [{ action: 'hashmod', source_labels: ['a'], modulus: 2 }], 0, 'target_label'],
    ['keepequal without target', [{ action: 'keepequal', source_labels: ['a'] }], 0, 'target_label'],
    ['dropequal without target', [{ action: 'dropequal', source_labels: ['a'] }], 0, 'target_label'],
    ['lowercase without target', [{ action: 'lowercase', source_labels: ['a'] }], 0, 'target_label'],
    ['uppercase without target', [{ action: 'uppercase', source_labels: ['a'] }], 0, 'target_label'],
    ['keep without sources', [{ action: 'keep', regex: 'x' }], 0, 'source_labels'],
    ['drop without sources', [{ action: 'drop', regex: 'x' }], 0, 'source_labels'],
    ['hashmod without sources', [{ action: 'hashmod', target_label: 'h', modulus: 2 }], 0, 'source_labels'],
    ['drop_if_equal with one source', [{ action: 'drop_if_equal', source_labels: ['a'] }], 0, 'source_labels', /at least two/],
    ['hashmod without modulus', [{ action: 'hashmod', source_labels: ['a'], target_label: 'h' }], 0, 'modulus'],
    ['modulus 0', [{ action: 'hashmod', source_labels: ['a'], target_label: 'h', modulus: 0 }], 0, 'modulus'],
    ['modulus fractional', [{ action: 'hashmod', source_labels: ['a'], target_label: 'h', modulus: 1.5 }], 0, 'modulus'],
    ['invalid target label', [{ source_labels: ['a'], target_label: 'a-b' }], 0, 'target_label', /invalid label name "a-b"/],
    ['invalid target template', [{ source_labels: ['a'], target_label: '$1-x' }], 0, 'target_label', /template/],
    ['template not allowed for lowercase', [{ action: 'lowercase', source_labels: ['a'], target_label: 'x_$1' }], 0, 'target_label'],
    ['invalid source label', [{ action: 'keep', source_labels: ['ok', 'not-ok'] }], 0, 'source_labels', /"not-ok"/],
    ['labelmap bad replacement', [{ action: 'labelmap', regex: '(.*)', replacement: 'a-$1' }], 0, 'replacement'],
    ['keepequal with regex', [{ action: 'keepequal', source_labels: ['a'], target_label: 'b', regex: 'x' }], 0, 'regex'],
    ['labeldrop with source_labels', [{ action: 'labeldrop', regex: 'x', source_labels: ['a'] }], 0, 'source_labels'],
    ['lowercase with replacement', [{ action: 'lowercase', source_labels: ['a'], target_label: 'b', replacement: 'x' }], 0, 'replacement'],
    ['unknown field', [{ action: 'drop', source_labels: ['a'], regexp: 'x' }], 0, 'regexp', /unknown field/],
    ['non-string regex', [{ action: 'drop', source_labels: ['a'], regex: ['x'] }], 0, 'regex', /must be a string/],
  ];
  for (const [title, rules, index, field, msg] of cases) {
    it(title, () => {
      const e = configError(rules);
      assert.equal(e.ruleIndex, index);
      assert.equal(e.field, field);
      assert.ok(e.message.startsWith(`relabel[${index}].${field}: `), e.message);
      if (msg) assert.match(e.message, msg);
    });
  }
  it('gufo: labelmap needs regex and replacement, labeldrop needs regex', () => {
    assert.equal(configError([{ action: 'labelmap', replacement: 'x' }], 'gufo').field, 'regex');
    assert.equal(configError([{ action: 'labelmap', regex: 'x' }], 'gufo').field, 'replacement');
    assert.equal(configError([{ action: 'labeldrop' }], 'gufo').field, 'regex');
  });
  it('accepts fields set to their defaults where Prometheus does', () => {
    assert.doesNotThrow(() => compileRelabel([{ action: 'keepequal', source_labels: ['a'], target_label: 'b', separator: ';', regex: '(.*)' }]));
  });
});
