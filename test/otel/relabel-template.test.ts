// The two replacement-template dialects on their own (src/otel/relabel/template.ts):
// Go regexp.Expand for Prometheus, and Gufo Agent's `$N` → `${N}` rewrite
// followed by Rust regex Captures::expand. Parsed once, expanded per series.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expand, hasRef, parseGoTemplate, parseGufoTemplate } from '../../src/otel/relabel/template.js';

/** A match of `(?<net>\d+)\.(\d+)` on "10.7": $0 "10.7", $1 = net "10", $2 "7". */
const M = /(?<net>\d+)\.(\d+)/u.exec('10.7')!;

describe('Go template (prometheus dialect)', () => {
  it('$1, ${1}, $name, ${name} are references; $$ is a literal $', () => {
    assert.deepEqual(parseGoTemplate('$1'), [1]);
    assert.deepEqual(parseGoTemplate('${1}'), [1]);
    assert.deepEqual(parseGoTemplate('$net'), [{ name: 'net' }]);
    assert.deepEqual(parseGoTemplate('a${net}b'), ['a', { name: 'net' }, 'b']);
    assert.deepEqual(parseGoTemplate('$$1'), ['$1']);
  });
  it('a name runs as far as letters, digits and _ go: `$1x` is the group named "1x"', () => {
    assert.deepEqual(parseGoTemplate('$1x'), [{ name: '1x' }]);
    assert.deepEqual(parseGoTemplate('$1_x'), [{ name: '1_x' }]);
    assert.deepEqual(parseGoTemplate('${1}_x'), [1, '_x']);
    assert.deepEqual(parseGoTemplate('$1-x'), [1, '-x']);
    assert.deepEqual(parseGoTemplate('$é'), [{ name: 'é' }]); // Go: unicode letters
  });
  it('a number with a leading zero or over 8 digits is a name, as in Go', () => {
    assert.deepEqual(parseGoTemplate('$0'), [0]);
    assert.deepEqual(parseGoTemplate('$01'), [{ name: '01' }]);
    assert.deepEqual(parseGoTemplate('$12345678'), [12345678]);
    assert.deepEqual(parseGoTemplate('$123456789'), [{ name: '123456789' }]);
  });
  it('a malformed reference is literal text', () => {
    assert.deepEqual(parseGoTemplate('$'), ['$']);
    assert.deepEqual(parseGoTemplate('a$-b'), ['a$-b']);
    assert.deepEqual(parseGoTemplate('${1'), ['${1']);
    assert.deepEqual(parseGoTemplate('${}'), ['${}']);
    assert.deepEqual(parseGoTemplate('${a-b}'), ['${a-b}']);
  });
  it('expands against a match: missing groups and names are empty', () => {
    assert.equal(expand(parseGoTemplate('${2}/$net|$0'), M), '7/10|10.7');
    assert.equal(expand(parseGoTemplate('[$9][$nope][$1x]'), M), '[][][]');
  });
});

describe('Gufo template (gufo dialect)', () => {
  it('`$N` is rewritten to `${N}` first: `$1x` is group 1 then "x"', () => {
    assert.deepEqual(parseGufoTemplate('$1x'), [1, 'x']);
    assert.deepEqual(parseGufoTemplate('v$1$2'), ['v', 1, 2]);
    assert.deepEqual(parseGufoTemplate('$01'), [1]); // Rust: any digits are an index
  });
  it('$name is [A-Za-z0-9_]+ (ASCII only), ${…} takes anything up to }', () => {
    assert.deepEqual(parseGufoTemplate('$net-x'), [{ name: 'net' }, '-x']);
    assert.deepEqual(parseGufoTemplate('$é'), ['$é']);
    assert.deepEqual(parseGufoTemplate('${a-b}'), [{ name: 'a-b' }]);
    assert.deepEqual(parseGufoTemplate('${12}'), [12]);
  });
  it('$$ is a literal $, also before digits; a malformed reference is literal', () => {
    assert.deepEqual(parseGufoTemplate('$$1'), ['$1']);
    assert.deepEqual(parseGufoTemplate('$$'), ['$']);
    assert.deepEqual(parseGufoTemplate('$'), ['$']);
    assert.deepEqual(parseGufoTemplate('a${1'), ['a${1']);
  });
  it('expands against a match', () => {
    assert.equal(expand(parseGufoTemplate('$2@$net-->$0'), M), '7@10-->10.7');
    assert.equal(expand(parseGufoTemplate('$1x'), M), '10x');
  });
});

describe('template helpers', () => {
  it('hasRef: whether any reference is left after parsing', () => {
    assert.equal(hasRef(parseGoTemplate('plain')), false);
    assert.equal(hasRef(parseGoTemplate('$$1')), false);
    assert.equal(hasRef(parseGoTemplate('x_$1')), true);
    assert.equal(hasRef(parseGufoTemplate('$name')), true);
  });
  it('a literal-only template expands to itself without reading the match', () => {
    assert.equal(expand(parseGoTemplate('lit'), M), 'lit');
    assert.equal(expand(parseGoTemplate(''), M), '');
  });
});
