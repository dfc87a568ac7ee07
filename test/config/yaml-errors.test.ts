// One YAML mistake makes the parser report several errors after it; the
// message shows the first with its line and a caret, and counts the rest.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { caretLines, formatIssue, sourceLine } from '../../src/config/errors.js';
import { repoRoot } from '../helpers/peers.js';
import { parseError } from './helpers.js';

/** `reflector:` one column left of its siblings: the yaml package reports five errors. */
const MISINDENTED = `$version: "1.0"
collectors:
  - id: a
    type: twamp_sender
   reflector: 127.0.0.1
    n_packets: 10
    model: g711
`;

describe('YAML syntax errors', () => {
  it('print the first error, the offending line with a caret under the column, and a count of the rest', () => {
    const err = parseError(MISINDENTED);
    assert.ok(err.issues.length >= 3, 'the parser reports cascading errors (all kept in issues)');
    assert.equal(err.message, [
      'agent.yaml:5:1: YAML syntax error: Sequence item without - indicator',
      '  5 |    reflector: 127.0.0.1',
      '    | ^',
      `  and ${err.issues.length - 1} more errors after it (often caused by this one)`,
    ].join('\n'));
    assert.equal(err.message.match(/YAML syntax error/g)?.length, 1);
    assert.deepEqual([err.line, err.column], [5, 1]);
  });

  it('the caret sits under the column, tabs kept so it lines up', () => {
    const err = parseError('$version: "1.0"\ncollectors: []\nagent: {labels: {a: 1}}}\n');
    const [first, excerpt, caret] = err.message.split('\n');
    assert.match(first!, /^agent\.yaml:3:(\d+): YAML syntax error: /);
    const col = Number(/^agent\.yaml:3:(\d+)/.exec(first!)![1]);
    assert.equal(excerpt, '  3 | agent: {labels: {a: 1}}}');
    assert.equal(caret, `    | ${' '.repeat(col - 1)}^`);
    assert.equal(caretLines(12, 3, '\tab: c'), '  12 | \tab: c\n     | \t ^');
  });

  it('a single error has no count; a very long line is cut around the column', () => {
    const err = parseError('$version: "1.0"\ncollectors: [\n');
    assert.equal(err.issues.length, 1, err.message);
    assert.doesNotMatch(err.message, /more error/);
    const long = `${'x'.repeat(300)}!${'y'.repeat(300)}`;
    const [text, caret] = caretLines(1, 301, long).split('\n');
    assert.ok(text!.length < 120, text);
    assert.equal(text![caret!.indexOf('^')], '!');
  });

  it('duplicate keys alone are still each listed (they do not cascade)', () => {
    const err = parseError('$version: "1.0"\ncollectors: []\ncollectors: []\nagent: {}\nagent: {}\n');
    assert.equal(err.message.split('\n').length, 2, err.message);
    assert.doesNotMatch(err.message, /more error|\|/);
  });

  it('sourceLine and formatIssue: past the end there is no excerpt', () => {
    assert.equal(sourceLine('a\nb\n', 2), 'b');
    assert.equal(sourceLine('a\r\nb', 2), 'b');
    assert.equal(sourceLine('a\nb\n', 3), undefined);
    assert.equal(formatIssue({ source: 'f', path: [], message: 'm', line: 2, column: 2, excerpt: 'ab' }), 'f:2:2: m\n  2 | ab\n    |  ^');
  });

  it('agent --check prints it that way', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'otel-twamp-yaml-'));
    try {
      const file = path.join(dir, 'agent.yaml');
      await writeFile(file, MISINDENTED);
      const r = spawnSync(process.execPath, [path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js'), 'agent', '--config', file, '--check'],
        { encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 1);
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 4, r.stderr);
      assert.equal(lines[0], `${file}:5:1: YAML syntax error: Sequence item without - indicator`);
      assert.equal(lines[2], '    | ^');
      assert.match(lines[3]!, /^ {2}and \d+ more errors after it/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
