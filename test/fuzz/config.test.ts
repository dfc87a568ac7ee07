// Property-based fuzzing of the config loader and the relabel engine:
// parseAgentConfig throws only ConfigError (and returns quickly)
// for random YAML-ish text and mutated valid configs; compileRelabel throws
// only RelabelConfigError for random rules; a compiled apply() never throws
// and never returns an empty label value. Budget: test/helpers/fuzz.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { ConfigError, parseAgentConfig } from '../../src/config/index.js';
import { parseReflectorConfig, parseSenderConfig } from '../../src/config/load.js';
import { compileRelabel, RelabelConfigError, validMetricName, type RelabelRule } from '../../src/otel/relabel.js';
import { check, onlyThrows, testTimeout } from '../helpers/fuzz.js';
import { repoRoot } from '../helpers/peers.js';

const NO_ENV: NodeJS.ProcessEnv = {};
/** A parse slower than this is reported as a hang. */
const SLOW_MS = 2000;

const RICH_VALID = `$version: "1.0"
$type: zeroconf
agent:
  host: fuzz-host
  labels: { site: lab, rack: 7 }
  defaults:
    interval: 30
sender:
  listen: "[::1]:9464"
  path: /metrics
otlp:
  endpoint: http://localhost:4318/v1/metrics
  protocol: http/json
  headers: { x-token: abc }
  interval: 15
  timeout: 5
  temporality: delta
naming: otel
collectors:
  - id: refl
    type: twamp_reflector
    listen: "::"
    port: 8620
    max_sessions: 10
    refwait: 2.5
    servwait: 30
    test_port_range: "20000-20100"
    relabel:
      - source_labels: [collector_id]
        regex: "(r.*)"
        target_label: role
        replacement: "reflector-$1"
  - id: s1
    type: twamp_sender
    reflector: example.net
    port: 862
    reflector_port: 0
    dscp: af41
    n_packets: 50
    model: cbr
    size: 200
    bandwidth: 64000
    control_timeout: 2
    reply_timeout: 1
    relabel_dialect: gufo
    relabel:
      - action: labeldrop
        regex: "^tmp_"
      - source_labels: [a, b]
        action: drop_if_equal
  - &tpl
    id: s2
    type: twamp_sender
    reflector: 192.0.2.1
    n_packets: 10
    model: imix
    bandwidth: 1000000
`;

function validTexts(): string[] {
  const texts = [RICH_VALID];
  try {
    texts.push(readFileSync(join(repoRoot(), 'collector-config', 'demo-agent.yaml'), 'utf8'));
  } catch {
    // the rich config alone still covers the loader
  }
  return texts;
}

const VALID = validTexts();

/** Tokens that steer the YAML parser and the schema into their corners. */
const YAML_TOKENS = [
  '$version', '$type', 'agent', 'sender', 'otlp', 'naming', 'collectors', 'defaults', 'labels', 'interval', 'host',
  'id', 'type', 'twamp_sender', 'twamp_reflector', 'reflector', 'listen', 'port', 'reflector_port', 'dscp',
  'n_packets', 'model', 'g711', 'imix', 'cbr', 'size', 'bandwidth', 'control_timeout', 'reply_timeout',
  'max_sessions', 'refwait', 'servwait', 'test_port_range', 'relabel', 'relabel_dialect', 'action', 'regex',
  'source_labels', 'target_label', 'replacement', 'modulus', 'separator', 'endpoint', 'headers', 'temporality',
  '"1.0"', '1.0', '0', '-1', '65536', '1e309', '.inf', '.nan', '0x10', '0o7', 'null', '~', 'true', 'no', '""', "''",
  ':', ': ', '- ', '-', '? ', ',', '[', ']', '{', '}', '&a ', '*a', '&b ', '*b', '<<: ', '!!str ', '!!binary ',
  '!!set ', '!!omap ', '!!timestamp ', '!!int ', '!!map ', '!!seq ', '!custom ', '!<tag:x> ', '|', '>', '|-',
  '#', '"', "'", '\\', '%YAML 1.1\n---\n', '%YAML 1.2\n---\n', '%TAG ! tag:x,2000:\n', '---', '...', '\t', ' ', '  ',
  '\n', '\n  ', '\n    ', '\n- ', '\r\n', '\u00a0', '\ufeff', '\u2028', '€', '__proto__', 'constructor', '127.0.0.1',
  '::1', '[::1]:9464', ':9464', 'http://x', '1-2', '20000-20100', '(.*)', '$1', '${1}', '(?i)', '[[:alpha:]]',
];

const yamlSoup = fc.array(fc.constantFrom(...YAML_TOKENS), { maxLength: 60 }).map((t) => t.join(''));

const yamlLines = fc.array(
  fc.tuple(
    fc.constantFrom('', '  ', '    ', '      ', '- ', '  - ', '    - '),
    fc.constantFrom(...YAML_TOKENS),
    fc.constantFrom(': ', ':', ' ', ': - ', ': [', ': {', ': &a ', ': *a', ''),
    fc.oneof(fc.constantFrom(...YAML_TOKENS), fc.string({ maxLength: 8 }), fc.integer().map(String)),
  ).map((p) => p.join('')),
  { maxLength: 25 },
).map((lines) => `$version: "1.0"\ncollectors:\n${lines.join('\n')}\n`);

type Edit =
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'dupLine'; line: number }
  | { kind: 'swapLines'; a: number; b: number }
  | { kind: 'indent'; line: number; by: number }
  | { kind: 'replaceValue'; line: number; value: string };

const editArb: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 12 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.constantFrom(...YAML_TOKENS), fc.string({ maxLength: 6 })) }),
  fc.record({ kind: fc.constant('dupLine' as const), line: fc.nat() }),
  fc.record({ kind: fc.constant('swapLines' as const), a: fc.nat(), b: fc.nat() }),
  fc.record({ kind: fc.constant('indent' as const), line: fc.nat(), by: fc.integer({ min: -4, max: 4 }) }),
  fc.record({
    kind: fc.constant('replaceValue' as const), line: fc.nat(),
    value: fc.oneof(fc.constantFrom(...YAML_TOKENS), fc.string({ maxLength: 10 }), fc.double().map(String), fc.integer().map(String)),
  }),
);

function applyEdit(text: string, e: Edit): string {
  const lines = text.split('\n');
  const li = (n: number) => n % lines.length;
  switch (e.kind) {
    case 'delete': {
      const at = e.at % (text.length + 1);
      return text.slice(0, at) + text.slice(at + e.len);
    }
    case 'insert': {
      const at = e.at % (text.length + 1);
      return text.slice(0, at) + e.text + text.slice(at);
    }
    case 'dupLine':
      lines.splice(li(e.line), 0, lines[li(e.line)]!);
      return lines.join('\n');
    case 'swapLines': {
      const a = li(e.a);
      const b = li(e.b);
      [lines[a], lines[b]] = [lines[b]!, lines[a]!];
      return lines.join('\n');
    }
    case 'indent': {
      const i = li(e.line);
      lines[i] = e.by >= 0 ? ' '.repeat(e.by) + lines[i] : lines[i]!.replace(new RegExp(`^ {0,${-e.by}}`), '');
      return lines.join('\n');
    }
    case 'replaceValue': {
      const i = li(e.line);
      const colon = lines[i]!.indexOf(': ');
      if (colon >= 0) lines[i] = `${lines[i]!.slice(0, colon + 2)}${e.value}`;
      return lines.join('\n');
    }
  }
}

const mutatedValid = fc.tuple(fc.constantFrom(...VALID), fc.array(editArb, { minLength: 1, maxLength: 6 }))
  .map(([text, edits]) => edits.reduce(applyEdit, text));

/** Schema-shaped values: right keys, values of every kind. */
const anyValue = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom<unknown>(null, true, false, 0, -1, 1, 1.5, 65535, 65536, 1e9, '', 'x', '1.0', 'ef', 'g711', 'cbr', 'imix', '127.0.0.1', '::1', 'prometheus', 'gufo', '1-65535', '0-1', 'twamp_sender', 'twamp_reflector') },
  { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.array(fc.constantFrom<unknown>('a', 1, null, 'collector_id'), { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('a', 'b', '__x', 'bad-name', 'action', 'regex'), fc.constantFrom<unknown>('v', 1, null, '(.*)', 'drop')) },
);
const COLLECTOR_KEYS = [
  'id', 'type', 'interval', 'disabled', 'labels', 'relabel', 'relabel_dialect', 'reflector', 'port', 'reflector_port',
  'dscp', 'n_packets', 'model', 'bandwidth', 'size', 'control_timeout', 'reply_timeout', 'listen', 'max_sessions',
  'refwait', 'servwait', 'test_port_range', 'unknown_key', 'n_packet',
];
const collectorObj = fc.dictionary(fc.constantFrom(...COLLECTOR_KEYS), anyValue, { maxKeys: 10 });
const structuredYaml = fc.record({
  $version: fc.constantFrom<unknown>('1.0', 1, '2.0', null),
  agent: fc.option(fc.dictionary(fc.constantFrom('host', 'labels', 'defaults', 'x'), anyValue, { maxKeys: 3 })),
  sender: fc.option(fc.dictionary(fc.constantFrom('type', 'mode', 'listen', 'path', 'listen_tls'), anyValue, { maxKeys: 3 })),
  otlp: fc.option(fc.dictionary(fc.constantFrom('endpoint', 'protocol', 'headers', 'interval', 'timeout', 'temporality'), anyValue, { maxKeys: 4 })),
  naming: fc.option(anyValue),
  collectors: fc.oneof(fc.array(fc.oneof({ weight: 5, arbitrary: collectorObj }, { weight: 1, arbitrary: anyValue }), { maxLength: 4 }), anyValue),
}, { requiredKeys: ['$version'] }).map((o) => stringify(o));

function parseChecked(text: string): void {
  const t0 = performance.now();
  const r = onlyThrows([ConfigError], () => parseAgentConfig(text, 'fuzz.yaml', NO_ENV), 'parseAgentConfig');
  const ms = performance.now() - t0;
  assert.ok(ms < SLOW_MS, `parseAgentConfig took ${ms.toFixed(0)} ms`);
  if (r instanceof ConfigError) {
    assert.ok(r.issues.length > 0);
    for (const i of r.issues) {
      assert.equal(typeof i.message, 'string');
      if (i.line !== undefined) assert.ok(Number.isInteger(i.line) && i.line >= 1, `line ${i.line}`);
    }
  } else {
    assert.ok(r !== null && typeof r === 'object' && Array.isArray((r as { collectors: unknown }).collectors));
  }
}

describe('fuzz: parseAgentConfig', { timeout: testTimeout(60_000) }, () => {
  it('the seed configs are valid', () => {
    for (const t of VALID) parseAgentConfig(t, 'seed.yaml', NO_ENV);
  });

  it('random YAML-ish token soup → config or ConfigError, quickly', () => {
    check(300, fc.property(fc.oneof(yamlSoup, fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 100 })), parseChecked));
  });

  it('random YAML lines under collectors → config or ConfigError, quickly', () => {
    check(250, fc.property(yamlLines, parseChecked));
  });

  it('mutated valid configs → config or ConfigError, quickly', () => {
    check(300, fc.property(mutatedValid, parseChecked));
  });

  it('schema-shaped documents with values of every kind → config or ConfigError', () => {
    check(300, fc.property(structuredYaml, parseChecked));
  });

  it('parseSenderConfig / parseReflectorConfig on random maps → config or ConfigError', () => {
    const map = fc.oneof(collectorObj, fc.object({ maxDepth: 2 }), fc.dictionary(fc.string({ maxLength: 12 }), fc.anything({ maxDepth: 2 })));
    check(300, fc.property(map, (raw) => {
      onlyThrows([ConfigError], () => parseSenderConfig(raw), 'parseSenderConfig');
      onlyThrows([ConfigError], () => parseReflectorConfig(raw), 'parseReflectorConfig');
    }));
  });

  it('parseSenderConfig / parseReflectorConfig on values that are not maps → ConfigError', () => {
    for (const raw of [null, undefined, 0, 'x', true, [], [1]]) {
      assert.throws(() => parseSenderConfig(raw), ConfigError, `parseSenderConfig(${JSON.stringify(raw)})`);
      assert.throws(() => parseReflectorConfig(raw), ConfigError, `parseReflectorConfig(${JSON.stringify(raw)})`);
    }
  });
});

// ---------------------------------------------------------------------------
// Relabel

const ACTIONS = [
  'replace', 'keep', 'drop', 'keepequal', 'dropequal', 'drop_if_equal', 'labeldrop', 'labelkeep', 'labelmap',
  'lowercase', 'uppercase', 'hashmod', 'dump', 'Replace', 'LABELMAP', 'nope', '',
];
const LABEL_NAMES = ['a', 'b', 'c', 'le', '__name__', '__tmp', 'job', 'collector_id', 'x1', 'A_b'];
const RE_TOKENS = [
  'a', 'b', '.', '.*', '.+', '(', ')', '(.*)', '(?:', '(?P<n>', '(?<m>', '(?i)', '(?s)', '(?m)', '(?=', '[', ']', '[^', '[[:alpha:]]',
  '[[:^digit:]]', '[[:bogus:]]', '\\', '\\d', '\\s', '\\S', '\\w', '\\A', '\\z', '\\Q', '\\E', '\\1', '\\x{41}', '\\x{zz}',
  '\\pL', '\\p{Greek}', '\\p{Nope}', '\\PL', '\\.', '^', '$', '|', '*', '+', '?', '{2}', '{1,3}', '{', '}', '_', '-', ':',
];
const TEMPLATE_TOKENS = ['$1', '${1}', '$2', '$0', '$n', '${n}', '$$', '$', '${', '}', 'x', '_', '-', '$1x', '${m}', '$01', '.'];

const regexArb = fc.array(fc.constantFrom(...RE_TOKENS), { maxLength: 6 }).map((t) => t.join(''));
const templateArb = fc.array(fc.constantFrom(...TEMPLATE_TOKENS), { maxLength: 4 }).map((t) => t.join(''));
const weird = fc.constantFrom<unknown>(null, undefined, 0, 1, -1, 1.5, true, [], {}, ['a'], 'a', 2 ** 60);

const ruleArb = fc.record({
  action: fc.oneof(fc.constantFrom(...ACTIONS), weird),
  source_labels: fc.oneof(fc.array(fc.oneof(fc.constantFrom(...LABEL_NAMES), weird), { maxLength: 3 }), weird),
  separator: fc.oneof(fc.constantFrom(';', '', ',', '$1'), weird),
  regex: fc.oneof({ weight: 4, arbitrary: regexArb }, { weight: 1, arbitrary: weird }),
  replacement: fc.oneof({ weight: 4, arbitrary: templateArb }, { weight: 1, arbitrary: weird }),
  target_label: fc.oneof(fc.constantFrom(...LABEL_NAMES, '$1', '${1}_x', 'bad-name', ''), templateArb, weird),
  modulus: fc.oneof(fc.integer({ min: -2, max: 10 }), weird),
  unknown: weird,
}, { requiredKeys: [] });

/** Rule objects in the shape a YAML config produces (the schema's types). */
const typedRuleArb = fc.record({
  action: fc.constantFrom(...ACTIONS),
  source_labels: fc.array(fc.constantFrom(...LABEL_NAMES), { maxLength: 3 }),
  separator: fc.constantFrom(';', '', ','),
  regex: regexArb,
  replacement: templateArb,
  target_label: fc.oneof(fc.constantFrom(...LABEL_NAMES, '$1', '${1}_x'), templateArb),
  modulus: fc.integer({ min: 1, max: 10 }),
}, { requiredKeys: ['action'] });

const labelValue = fc.oneof(fc.constantFrom('', 'a', 'b', 'ab', 'A', 'reflector', 'x;y', '\n', 'é', '0'), fc.string({ maxLength: 8 }));
const labelsArb = fc.dictionary(fc.constantFrom(...LABEL_NAMES, 'bad-name', ''), labelValue, { maxKeys: 6 });
const metricName = fc.constantFrom('twamp_rt_loss', 'up', '', 'bad-name', 'a:b', '__x', '9x');

function compileChecked(rules: unknown, dialect: 'prometheus' | 'gufo') {
  return onlyThrows([RelabelConfigError], () => compileRelabel(rules as RelabelRule[], { dialect, dump: () => undefined }), 'compileRelabel');
}

function applyChecked(rules: unknown, dialect: 'prometheus' | 'gufo', series: [string, Record<string, string>][]): void {
  const c = compileChecked(rules, dialect);
  if (c instanceof RelabelConfigError) return;
  for (const [name, labels] of series) {
    const before = JSON.stringify(labels);
    const t0 = performance.now();
    const out = (c as ReturnType<typeof compileRelabel>).apply(name, labels);
    assert.ok(performance.now() - t0 < SLOW_MS, 'apply() took too long');
    assert.equal(JSON.stringify(labels), before, 'apply() mutated its input');
    if (out === undefined) continue;
    assert.ok(validMetricName(out.name), `name ${JSON.stringify(out.name)}`);
    for (const [k, v] of Object.entries(out.labels)) {
      assert.equal(typeof v, 'string');
      assert.notEqual(v, '', `label ${k} has an empty value`);
      assert.ok(!k.startsWith('__'), `internal label ${k} leaked`);
    }
  }
}

describe('fuzz: relabel', { timeout: testTimeout(60_000) }, () => {
  const dialect = fc.constantFrom('prometheus' as const, 'gufo' as const);

  it('compileRelabel on random rule objects throws only RelabelConfigError', () => {
    check(400, fc.property(fc.oneof(fc.array(ruleArb, { maxLength: 4 }), weird, fc.array(fc.anything(), { maxLength: 3 })), dialect, (rules, d) => {
      compileChecked(rules, d);
    }));
  });

  it('compileRelabel with a bigint modulus throws RelabelConfigError', () => {
    assert.throws(
      () => compileRelabel([{ action: 'hashmod', source_labels: ['a'], target_label: 't', modulus: 10n as unknown as number }]),
      RelabelConfigError,
    );
  });

  it('compiled apply() on random label sets never throws and never returns an empty label value', () => {
    check(500, fc.property(
      fc.array(fc.oneof({ weight: 3, arbitrary: typedRuleArb }, { weight: 1, arbitrary: ruleArb }), { minLength: 0, maxLength: 5 }),
      dialect,
      fc.array(fc.tuple(metricName, labelsArb), { minLength: 1, maxLength: 4 }),
      (rules, d, series) => applyChecked(rules, d, series),
    ));
  });

  it('rules that compile always apply: valid-by-construction rules on random labels', () => {
    // Rules the schema would accept, so compileRelabel rejects few and apply() runs on most.
    const simple = fc.oneof(
      fc.record({ action: fc.constant('replace'), source_labels: fc.array(fc.constantFrom(...LABEL_NAMES), { minLength: 1, maxLength: 2 }), regex: fc.constantFrom('(.*)', '(a*)b?', '(?i)A(.)', '([^;]*);(.*)', '\\Q.\\E(.*)'), target_label: fc.constantFrom('t', '$1', 'x_${1}'), replacement: fc.constantFrom('$1', '', '${2}-$1', '$$') }),
      fc.record({ action: fc.constantFrom('keep', 'drop'), source_labels: fc.array(fc.constantFrom(...LABEL_NAMES), { minLength: 1, maxLength: 2 }), regex: fc.constantFrom('a.*', '', '.+', '(?s).') }),
      fc.record({ action: fc.constantFrom('labelmap'), regex: fc.constantFrom('(.*)', '_(.*)', 'a(.)'), replacement: fc.constantFrom('$1', 'x_$1', '${1}') }),
      fc.record({ action: fc.constantFrom('labeldrop', 'labelkeep'), regex: fc.constantFrom('a', '.*', '__.*', 'job|le') }),
      fc.record({ action: fc.constantFrom('lowercase', 'uppercase'), source_labels: fc.constant(['a']), target_label: fc.constantFrom('a', 'b', 'le') }),
      fc.record({ action: fc.constant('hashmod'), source_labels: fc.constant(['a', 'b']), target_label: fc.constant('h'), modulus: fc.integer({ min: 1, max: 2 ** 40 }) }),
      fc.record({ action: fc.constantFrom('keepequal', 'dropequal'), source_labels: fc.constant(['a']), target_label: fc.constant('b') }),
      fc.record({ action: fc.constant('drop_if_equal'), source_labels: fc.constant(['a', 'b']) }),
    );
    check(400, fc.property(
      fc.array(simple, { maxLength: 5 }), dialect, fc.array(fc.tuple(metricName, labelsArb), { minLength: 1, maxLength: 4 }),
      (rules, d, series) => applyChecked(rules, d, series),
    ));
  });
});
