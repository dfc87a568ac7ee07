/**
 * YAML (or JSON) text to a plain value, and where in the text each value is:
 * the source map that gives config messages their `file:line:col`. Syntax
 * errors and duplicate keys are reported here, before any schema runs.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document } from 'yaml';
import { ConfigError, sourceLine } from './errors.js';
import type { ConfigIssue, ConfigPath } from './errors.js';
import { messageOf } from '../util/errors.js';

interface Position {
  line: number;
  column: number;
}

/** Where the config text defines a value: positions come from the parsed YAML document. */
export class SourceMap {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  position(offset: number): Position {
    const { line, col } = this.lines.linePos(offset);
    return { line, column: col };
  }

  /**
   * The key at the end of `path`; for a missing key, the map that should hold
   * it; for a list item, the item.
   */
  locate(path: ConfigPath): Position | undefined {
    let node: unknown = this.doc.contents;
    let offset: number | undefined;
    for (const seg of path) {
      if (isAlias(node)) node = node.resolve(this.doc);
      if (isMap(node)) {
        offset = node.range?.[0] ?? offset;
        const pair = node.items.find((p) => keyText(p.key) === String(seg));
        if (pair === undefined) break;
        offset = (pair.key as { range?: [number, number, number] } | null)?.range?.[0] ?? offset;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        offset = node.range?.[0] ?? offset;
        const item: unknown = node.items[seg];
        if (item === undefined || item === null) break;
        offset = (item as { range?: [number, number, number] }).range?.[0] ?? offset;
        node = item;
      } else {
        break;
      }
    }
    return offset === undefined ? undefined : this.position(offset);
  }

  /** Path of the map key that starts at `offset`, and the line of an earlier key with the same name. */
  keyAt(offset: number): { path: ConfigPath; firstLine?: number } | undefined {
    const walk = (node: unknown, path: ConfigPath): { path: ConfigPath; firstLine?: number } | undefined => {
      if (isMap(node)) {
        for (const pair of node.items) {
          const key = keyText(pair.key);
          const range = (pair.key as { range?: [number, number, number] } | null)?.range;
          if (range?.[0] === offset) {
            const first = node.items.find((p) => p !== pair && keyText(p.key) === key);
            const firstOffset = (first?.key as { range?: [number, number, number] } | undefined)?.range?.[0];
            return firstOffset === undefined
              ? { path: [...path, key] }
              : { path: [...path, key], firstLine: this.position(firstOffset).line };
          }
          const found = walk(pair.value, [...path, key]);
          if (found) return found;
        }
      } else if (isSeq(node)) {
        for (let i = 0; i < node.items.length; i++) {
          const found = walk(node.items[i], [...path, i]);
          if (found) return found;
        }
      }
      return undefined;
    };
    return walk(this.doc.contents, []);
  }
}

/**
 * Keys defined twice in one map (YAML 1.2 §3.2.1.1: keys are unique), in
 * document order: one pass with a set per map, no recursion (a deeply
 * nested document cannot overflow the stack here). Equal means what the
 * yaml package's `uniqueKeys: true` means: scalar keys with the same value.
 */
function duplicateKeys(doc: Document, map: SourceMap, source: string): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const stack: { node: unknown; path: ConfigPath }[] = [{ node: doc.contents, path: [] }];
  while (stack.length > 0) {
    const { node, path } = stack.pop()!;
    const children: { node: unknown; path: ConfigPath }[] = [];
    if (isMap(node)) {
      const seen = new Map<unknown, number>();
      for (const pair of node.items) {
        const key = pair.key;
        const keyPath = [...path, keyText(key)];
        if (isScalar(key)) {
          const at = key.range?.[0];
          const first = seen.get(key.value);
          if (first === undefined) {
            if (at !== undefined) seen.set(key.value, at);
          } else if (at !== undefined) {
            const pos = map.position(at);
            const id = keyPath[0] === 'collectors' && typeof keyPath[1] === 'number' ? doc.getIn(['collectors', keyPath[1], 'id']) : undefined;
            out.push({
              source,
              path: keyPath,
              message: `duplicate key (first defined on line ${map.position(first).line})`,
              line: pos.line,
              column: pos.column,
              ...(typeof id === 'string' ? { collectorId: id } : {}),
            });
          }
        }
        children.push({ node: pair.value, path: keyPath });
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => children.push({ node: item, path: [...path, i] }));
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
  }
  return out.sort((a, b) => a.line! - b.line! || a.column! - b.column!);
}

function keyText(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}

/**
 * YAML or JSON text to a plain value and its source map; syntax errors and
 * duplicate keys are thrown as one ConfigError with file:line:col. Used for
 * the agent file and the mesh definition.
 */
export function parseConfigText(text: string, source: string): { raw: unknown; map: SourceMap } {
  const lines = new LineCounter();
  // uniqueKeys: false — the yaml package checks each key against every earlier key of its
  // map (quadratic: 50,000 labels took ~20 s); duplicateKeys() does the same check in one pass.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: false });
  const map = new SourceMap(doc, lines);

  const duplicates = duplicateKeys(doc, map, source);
  if (doc.errors.length > 0 || duplicates.length > 0) {
    const byPosition = (a: ConfigIssue, b: ConfigIssue) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0);
    throw new ConfigError([...duplicates, ...
      doc.errors.map((e): ConfigIssue => {
        const start = e.linePos?.[0] ?? { line: map.position(e.pos[0]).line, col: map.position(e.pos[0]).column };
        const base = { source, line: start.line, column: start.col };
        if (e.code === 'DUPLICATE_KEY') {
          const key = map.keyAt(e.pos[0]);
          if (key) {
            const first = key.firstLine !== undefined ? ` (first defined on line ${key.firstLine})` : '';
            const id = key.path[0] === 'collectors' && typeof key.path[1] === 'number' ? doc.getIn(['collectors', key.path[1], 'id']) : undefined;
            return {
              ...base,
              path: key.path,
              message: `duplicate key${first}`,
              ...(typeof id === 'string' ? { collectorId: id } : {}),
            };
          }
        }
        // yaml's messages end with " at line L, column C:" and a source excerpt; we print the position
        // and the line (with a caret) ourselves.
        const message = e.message.replace(/ at line \d+, column \d+[\s\S]*$/, '');
        const excerpt = sourceLine(text, start.line);
        return { ...base, path: [], message: `YAML syntax error: ${message}`, ...(excerpt !== undefined ? { excerpt } : {}) };
      })].sort(byPosition),
      // One syntax mistake makes the parser report more after it: print the first, count the rest.
      { firstOnly: doc.errors.some((e) => e.code !== 'DUPLICATE_KEY') },
    );
  }

  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (err) {
    throw new ConfigError({ source, path: [], message: `cannot read YAML: ${messageOf(err)}` });
  }
  return { raw, map };
}
