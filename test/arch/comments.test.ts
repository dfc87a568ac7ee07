// Comments cite RFC sections and the repository's own docs: never a file a
// reader of the repository cannot open (the team's notes beside it) nor a
// work-tracking number.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { repoRoot } from '../helpers/peers.js';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (f === 'node_modules' || f === 'fixtures') return [];
    return statSync(p).isDirectory() ? sources(p) : /\.(ts|cc|h)$/.test(f) ? [p] : [];
  });
}

/** Comment text of a TypeScript/C++ file: line comments and block comments. */
function comments(text: string): string[] {
  return [...text.matchAll(/\/\/[^\n]*|\/\*[\s\S]*?\*\//g)].map((m) => m[0]);
}

describe('comments', () => {
  it('cite no file outside the repository and no issue number', () => {
    const root = repoRoot();
    const bad: string[] = [];
    for (const dir of ['src', 'test', 'bench', 'scripts', 'native']) {
      for (const file of sources(join(root, dir))) {
        for (const c of comments(readFileSync(file, 'utf8'))) {
          const m = /protocol\.md|\.\.\/shared\b|\bshared\/(?:reference|conformance|peers)|\bissues? #?\d+/i.exec(c);
          if (m) bad.push(`${relative(root, file)}: ${m[0]}`);
        }
      }
    }
    assert.deepEqual(bad, []);
  });
});
