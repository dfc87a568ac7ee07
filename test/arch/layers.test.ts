// The layer order of docs/internals.md "Development": an import points only
// down (util → protocol → measure → session → otel → producers → config → cli).
// util/ holds I/O-free helpers every layer may use (logging, addresses,
// messageOf) and imports nothing above it.
// The producers' settings (options.ts) are on the producers' layer: the
// config layer makes them, the producers only read them. Known exceptions
// would be listed by name below and may only shrink: a new upward import
// fails this test, and so does an exception that no longer exists.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { repoRoot } from '../helpers/peers.js';

/** Layer of a file under src/, lowest first; undefined for files any layer may import. */
function layerOf(rel: string): number | undefined {
  if (rel === 'version.ts') return undefined; // a constant, imported from anywhere
  if (rel === 'index.ts') return 7;
  const top = rel.split('/')[0]!;
  const layers: Record<string, number> = {
    util: 0, protocol: 1, measure: 2, session: 3, otel: 4, 'sender.ts': 5, 'reflector.ts': 5, 'options.ts': 5, config: 6, cli: 6,
  };
  return layers[top];
}

/** Upward imports that exist (from → to), to be removed by restructuring; never to grow. None today. */
const KNOWN_UPWARD = new Set<string>([]);

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('layering', () => {
  it('no import in src/ points up the layer order', () => {
    const src = resolve(repoRoot(), 'src');
    const found: string[] = [];
    for (const file of sources(src)) {
      const from = relative(src, file);
      const fromLayer = layerOf(from);
      if (fromLayer === undefined) continue;
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)) {
        const to = relative(src, resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')));
        const toLayer = layerOf(to);
        if (toLayer === undefined || toLayer <= fromLayer) continue;
        // config and cli are one layer: cli may import config and config must not import cli.
        found.push(`${from} → ${to}`);
      }
    }
    const unexpected = found.filter((f) => !KNOWN_UPWARD.has(f));
    const gone = [...KNOWN_UPWARD].filter((k) => !found.includes(k));
    assert.deepEqual(unexpected, [], `imports pointing up the layers:\n${unexpected.join('\n')}`);
    assert.deepEqual(gone, [], `listed as known but no longer there (remove from KNOWN_UPWARD):\n${gone.join('\n')}`);
  });

  it('every file under src/ has a layer (a new top-level file or folder is placed in the order)', () => {
    const src = resolve(repoRoot(), 'src');
    const unplaced = sources(src).map((f) => relative(src, f)).filter((f) => layerOf(f) === undefined && f !== 'version.ts');
    assert.deepEqual(unplaced, []);
  });

  it('the producers and their settings import nothing from config or cli', () => {
    const src = resolve(repoRoot(), 'src');
    const bad = ['sender.ts', 'reflector.ts', 'options.ts']
      .filter((f) => /from\s+'\.\/(config|cli)\//.test(readFileSync(join(src, f), 'utf8')));
    assert.deepEqual(bad, []);
  });

  it('util imports nothing from the other layers', () => {
    const src = resolve(repoRoot(), 'src');
    const bad = sources(join(src, 'util')).filter((f) => /from\s+'\.\.\//.test(readFileSync(f, 'utf8')));
    assert.deepEqual(bad.map((f) => relative(src, f)), []);
  });

  it('cli and config take logging and address helpers from util, not session', () => {
    const src = resolve(repoRoot(), 'src');
    const helpers = new Set(['Logger', 'LogLevel', 'consoleLogger', 'silentLogger', 'warnLogger', 'childLogger',
      'formatHostPort', 'unmapAddress', 'ipFamily', 'Cidr', 'parseCidr', 'formatCidr', 'ClientAcl']);
    const bad: string[] = [];
    for (const file of [...sources(join(src, 'cli')), ...sources(join(src, 'config'))]) {
      for (const m of readFileSync(file, 'utf8').matchAll(/^import(?: type)? \{([^}]*)\} from '\.\.\/session\/[^']+'/gm)) {
        for (const name of m[1]!.split(',').map((x) => x.replace(/^\s*type\s+/, '').split(' as ')[0]!.trim())) {
          if (helpers.has(name)) bad.push(`${relative(src, file)}: ${name}`);
        }
      }
    }
    assert.deepEqual(bad, []);
  });

  it('config does not import cli', () => {
    const src = resolve(repoRoot(), 'src');
    const bad = sources(join(src, 'config')).filter((f) => /from\s+'\.\.\/cli\//.test(readFileSync(f, 'utf8')));
    assert.deepEqual(bad.map((f) => relative(src, f)), []);
  });
});
