// A relabel regex too long or too deeply nested is a config error naming the
// rule (V8 would throw "Regular expression too large" or overflow its stack,
// the former only when the regex is first used, i.e. at scrape time), and a
// config with 50,000 labels validates in linear time.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { compileRelabel, MAX_REGEX_LENGTH, MAX_REGEX_NESTING, RelabelConfigError } from '../../src/otel/relabel.js';
import { ConfigError, parseAgentConfig } from '../../src/config/index.js';
import { repoRoot } from '../helpers/peers.js';

const CLI = path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

function relabelError(regex: string, dialect: 'prometheus' | 'gufo' = 'prometheus'): RelabelConfigError {
  try {
    compileRelabel([{ source_labels: ['a'], target_label: 'b' }, { source_labels: ['a'], regex, target_label: 'b' }], { dialect });
  } catch (e) {
    assert.ok(e instanceof RelabelConfigError, String(e));
    return e;
  }
  assert.fail(`regex of ${regex.length} characters accepted`);
}

const nested = (depth: number, open = '(') => `${open.repeat(depth)}a${')'.repeat(depth)}`;

function agentYaml(relabelRegex: string | undefined, labels = ''): string {
  const rule = relabelRegex === undefined ? '' : `    relabel:\n      - source_labels: [a]\n        regex: "${relabelRegex}"\n        target_label: b\n`;
  return `$version: "1.0"\ncollectors:\n  - id: r\n    type: twamp_reflector\n    port: 18999\n${rule}${labels}`;
}

describe('relabel regex bounds', () => {
  it('a regex of 100,000 characters: error naming rule and field, without echoing it', () => {
    for (const dialect of ['prometheus', 'gufo'] as const) {
      const e = relabelError('a'.repeat(100_000), dialect);
      assert.equal(e.ruleIndex, 1);
      assert.equal(e.field, 'regex');
      assert.match(e.message, new RegExp(`^relabel\\[1\\]\\.regex: invalid regular expression "a+"… \\(100000 characters\\): longer than ${MAX_REGEX_LENGTH} characters`));
      assert.ok(e.message.length < 300, `message of ${e.message.length} characters`);
    }
  });

  it('groups nested 10,000 deep, and more than the nesting bound within the length bound', () => {
    assert.match(relabelError(nested(10_000)).message, /^relabel\[1\]\.regex: .*longer than 4096/);
    assert.ok(nested(MAX_REGEX_NESTING + 1).length < MAX_REGEX_LENGTH);
    for (const open of ['(', '(?:', '(?P<g>']) {
      const deep = open === '(?P<g>' ? `${'(?:'.repeat(MAX_REGEX_NESTING)}(?P<g>a)${')'.repeat(MAX_REGEX_NESTING)}` : nested(MAX_REGEX_NESTING + 1, open);
      assert.match(relabelError(deep).message, new RegExp(`groups nested more than ${MAX_REGEX_NESTING} deep`), open);
    }
    // At the bounds: accepted, and it works.
    const ok = compileRelabel([{ source_labels: ['a'], regex: nested(MAX_REGEX_NESTING), target_label: 'b' }]);
    assert.deepEqual(ok.apply('m', { a: 'a' })?.labels, { a: 'a', b: 'a' });
    compileRelabel([{ source_labels: ['a'], regex: 'a'.repeat(MAX_REGEX_LENGTH), target_label: 'b' }]);
    // Escaped and bracketed parentheses are not groups.
    compileRelabel([{ source_labels: ['a'], regex: `${'\\('.repeat(200)}[(]{3}`, target_label: 'b' }]);
  });

  it('a V8 error message is reduced to its reason (the pattern is not repeated)', () => {
    const e = relabelError(`(${'a'.repeat(300)}`);
    assert.match(e.message, /: Unterminated group$/);
    assert.ok(e.message.length < 200, e.message);
  });

  it('in a config: a ConfigError naming the collector and the rule', () => {
    for (const re of ['a'.repeat(100_000), nested(10_000), nested(500)]) {
      assert.throws(() => parseAgentConfig(agentYaml(re), 'agent.yaml', {}), (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.equal(e.issues.length, 1);
        assert.match(e.message, /^agent\.yaml:8:9: collectors\[0\] \(id "r"\): relabel\[0\]\.regex: invalid regular expression /);
        assert.ok(e.message.length < 400);
        return true;
      });
    }
  });

  it('agent --check: one line, exit code 1, no stack trace', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'otel-twamp-relabel-'));
    try {
      for (const re of ['a'.repeat(100_000), nested(10_000), nested(MAX_REGEX_NESTING + 1)]) {
        const file = path.join(dir, 'agent.yaml');
        writeFileSync(file, agentYaml(re));
        const r = spawnSync(process.execPath, [CLI, 'agent', '--check', '--config', file], { encoding: 'utf8', timeout: 20_000 });
        assert.equal(r.status, 1, r.stderr.slice(0, 500));
        assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr.slice(0, 500));
        assert.match(r.stderr, /relabel\[0\]\.regex: invalid regular expression/);
        assert.doesNotMatch(r.stderr, /\n\s+at |SyntaxError/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('large label maps validate in linear time', { timeout: 120_000 }, () => {
  const N = 50_000;
  const many = (indent: string, n: number) => Array.from({ length: n }, (_, i) => `${indent}l${i}: v${i}\n`).join('');

  it(`${N} labels validate in about ten times the time of ${N / 10} (linear, not quadratic)`, () => {
    // The yaml package's own duplicate-key check compared each key with every
    // earlier one of its map: 50,000 labels took ~20 s. A ratio of run times
    // in one process, not an absolute bound, so a busy machine does not fail
    // it: linear gives ~10, quadratic ~100.
    const text = (n: number) => agentYaml(undefined, `    labels:\n${many('      ', n)}`);
    const small = text(N / 10);
    const big = text(N);
    const time = (t: string): number => {
      const t0 = performance.now();
      const cfg = parseAgentConfig(t, 'agent.yaml', {});
      assert.ok(Object.keys(cfg.collectors[0]!.labels).length >= N / 10);
      return performance.now() - t0;
    };
    time(small); // warm up
    const tSmall = Math.min(time(small), time(small), time(small));
    const tBig = time(big);
    assert.ok(tBig < 35 * tSmall + 1000, `${N} labels: ${Math.round(tBig)} ms; ${N / 10}: ${Math.round(tSmall)} ms`);
  });

  it('duplicate keys are still reported, with both lines, in every map and in document order', () => {
    const text = `$version: "1.0"
agent:
  labels: {a: 1, b: 2, a: 3}
collectors:
  - id: r
    type: twamp_reflector
    labels:
      x: 1
      y: 2
      x: 3
    port: 1
    port: 2
`;
    assert.throws(() => parseAgentConfig(text, 'agent.yaml', {}), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.deepEqual(e.issues.map((i) => [i.path.join('.'), i.line, i.message, i.collectorId]), [
        ['agent.labels.a', 3, 'duplicate key (first defined on line 3)', undefined],
        ['collectors.0.labels.x', 10, 'duplicate key (first defined on line 8)', 'r'],
        ['collectors.0.port', 12, 'duplicate key (first defined on line 11)', 'r'],
      ]);
      return true;
    });
    // Distinct keys with the same text but different YAML types are not duplicates (as the yaml package decides).
    assert.throws(() => parseAgentConfig(`$version: "1.0"\nagent:\n  labels: {"1": a, 1: b}\ncollectors: []\n`, 'agent.yaml', {}),
      (e: unknown) => e instanceof ConfigError && !/duplicate/.test(e.message) && /invalid label name "1"/.test(e.message));
  });
});
