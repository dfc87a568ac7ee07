// Every relative link of README.md and docs/*.md resolves: the file exists
// and, with a #fragment, the target file has a heading with that anchor
// (GitHub's slugs). The documentation is split over several files (README
// "Documentation"), so a moved section must take its links along.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { repoRoot } from './helpers/peers.js';

/** The text outside fenced code blocks and inline code spans. */
function prose(markdown: string): string[] {
  const out: string[] = [];
  let fence = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) { fence = !fence; continue; }
    if (!fence) out.push(line);
  }
  return out;
}

/** GitHub's heading anchor: lower case, punctuation but `-` and `_` removed, spaces to `-`. */
export function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

export function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const line of prose(markdown)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = slug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    result.add(n === 0 ? base : `${base}-${n}`);
  }
  return result;
}

/** [text](target) links outside code; images included, autolinks and absolute URLs left out. */
export function links(markdown: string): string[] {
  const targets: string[] = [];
  for (const line of prose(markdown)) {
    const text = line.replace(/`[^`]*`/g, '');
    for (const m of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) targets.push(m[1]!);
  }
  return targets.filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t));
}

const root = repoRoot();
const files = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];

describe('documentation links', () => {
  it('the slugs follow GitHub', () => {
    assert.equal(slug('`twamp_sender`'), 'twamp_sender');
    assert.equal(slug('Probe endpoint (multi-target)'), 'probe-endpoint-multi-target');
    assert.equal(slug('Sender (`twamp_sender`), one value per test session'), 'sender-twamp_sender-one-value-per-test-session');
    assert.deepEqual([...anchors('# A\n```\n# not a heading\n```\n## A\n')], ['a', 'a-1']);
    assert.deepEqual(links('[x](a.md#b) `[y](no.md)` [z](https://example.net) ![i](img.png)'), ['a.md#b', 'img.png']);
  });

  it('README.md links to every page of docs/', () => {
    const readme = links(readFileSync(join(root, 'README.md'), 'utf8')).map((t) => t.split('#')[0]);
    for (const f of files.filter((f) => f.startsWith('docs'))) assert.ok(readme.includes(f), `README.md does not link ${f}`);
  });

  for (const file of files) {
    it(`every relative link of ${file} resolves`, () => {
      const text = readFileSync(join(root, file), 'utf8');
      const broken: string[] = [];
      for (const target of links(text)) {
        const [path, fragment] = target.split('#') as [string, string | undefined];
        const dest = path === '' ? join(root, file) : join(root, dirname(file), decodeURIComponent(path));
        if (!existsSync(dest)) { broken.push(`${target}: no file ${relative(root, dest)}`); continue; }
        if (fragment === undefined) continue;
        if (!dest.endsWith('.md')) { broken.push(`${target}: an anchor into a file that is not Markdown`); continue; }
        if (!anchors(readFileSync(dest, 'utf8')).has(fragment)) broken.push(`${target}: no heading with anchor #${fragment} in ${relative(root, dest)}`);
      }
      assert.deepEqual(broken, []);
    });
  }
});
