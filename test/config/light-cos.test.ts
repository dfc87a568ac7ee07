// `light_cos_allow` (docs/configuration.md "twamp_reflector"): the DSCP1
// values an RFC 8972 Class of Service TLV may obtain from the Light reflector
// besides the DSCP its request arrived with. Numbers 0–63 and the sender's
// DSCP names; every bad entry is reported with its own position.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseReflectorConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/config/errors.js';
import { parseMesh } from '../../src/config/mesh.js';
import type { ReflectorConfig } from '../../src/config/index.js';
import { agentWith, configError, issueAt, parse, parseError } from './helpers.js';

/** A Light reflector at lines 4–6 of the wrapped file; `extra` lines follow from line 7. */
function reflector(extra = ''): string {
  return agentWith(`
- id: stamp
  type: twamp_reflector
  light_port: 8620
${extra}`);
}

const reflectorOf = (text: string): ReflectorConfig => parse(text).collectors[0] as ReflectorConfig;
const KEY = ['collectors', 0, 'light_cos_allow'];

describe('light_cos_allow', () => {
  it('absent: empty (only the received DSCP is granted)', () => {
    assert.deepEqual(reflectorOf(reflector()).lightCosAllow, []);
    // Also without light_port (nothing uses it then).
    assert.deepEqual(parseReflectorConfig({ id: 'r' }).lightCosAllow, []);
  });

  it('numbers and DSCP names (case-insensitive, cpN, decimal strings), in the order given', () => {
    const r = reflectorOf(reflector('  light_cos_allow: [ef, AF41, cs1, 0, 63, cp5, "10"]'));
    assert.deepEqual(r.lightCosAllow, [46, 34, 8, 0, 63, 5, 10]);
    assert.deepEqual(reflectorOf(reflector('  light_cos_allow: []')).lightCosAllow, []);
  });

  it('a single value is a list of one', () => {
    assert.deepEqual(reflectorOf(reflector('  light_cos_allow: ef')).lightCosAllow, [46]);
    assert.deepEqual(reflectorOf(reflector('  light_cos_allow: 34')).lightCosAllow, [34]);
  });

  it('every bad entry is reported at its own line and column (of its value), naming the key and the value', () => {
    const err = parseError(reflector(`  light_cos_allow:
    - ef
    - 64
    - -1
    - af44
    - cs1`));
    assert.equal(err.issues.length, 3, err.message);
    const at = (i: number) => issueAt(err, [...KEY, i]);
    assert.match(at(1).message, /^expected a DSCP name \(.*\) or an integer 0–63, got 64$/);
    assert.deepEqual([at(1).line, at(1).column], [9, 9]);
    assert.match(at(2).message, /got -1$/);
    assert.deepEqual([at(2).line, at(2).column], [10, 9]);
    assert.match(at(3).message, /got "af44"$/);
    assert.deepEqual([at(3).line, at(3).column], [11, 9]);
    assert.match(err.message, /^agent\.yaml:9:9: collectors\[0\] \(id "stamp"\): light_cos_allow\[1\]: expected a DSCP name/m);
  });

  it('wrong types: the key for a map or boolean, the entry for a bad item', () => {
    const map = issueAt(parseError(reflector('  light_cos_allow: {ef: 1}')), KEY);
    assert.match(map.message, /^expected a list of DSCPs, each a DSCP name .* or an integer 0–63, got a map$/);
    assert.deepEqual([map.line, map.column], [7, 5]);
    assert.match(issueAt(parseError(reflector('  light_cos_allow: true')), KEY).message, /got true$/);
    const items = parseError(reflector('  light_cos_allow: [true, 4.5, [1], null]'));
    assert.deepEqual(
      items.issues.map((i) => [i.path.at(-1), i.message.replace(/^.*, got /, '')]),
      [[0, 'true'], [1, '4.5'], [2, 'a list'], [3, 'null']],
    );
    assert.ok(items.issues.every((i) => i.line === 7), items.message);
  });

  it('a DSCP listed twice (by number or by name) is an error at the repeat', () => {
    const err = parseError(reflector('  light_cos_allow: [ef, af41, 46]'));
    const issue = issueAt(err, [...KEY, 2]);
    assert.equal(issue.message, 'DSCP 46 (ef) is listed twice');
  });

  it('only used with light_port', () => {
    const err = parseError(agentWith(`
- id: plain
  type: twamp_reflector
  light_cos_allow: [ef]`));
    const issue = issueAt(err, KEY);
    assert.equal(issue.message, 'only used with light_port');
    assert.deepEqual([issue.line, issue.column], [6, 5]);
  });

  it('mesh: the reflector section grants it to every member\'s Light reflector; bad entries named there', () => {
    const mesh = (cos: string) => `tests:
  stamp: {model: g711, n_packets: 50, control: false, format: stamp}
members:
  - {name: fra, address: 192.0.2.1, light_port: 862}
  - {name: ams, address: 192.0.2.2, light_port: 862}
groups:
  - {type: mesh, members: [fra, ams], test: stamp}
reflector:
  light_cos_allow: ${cos}
`;
    const m = parseMesh(mesh('[ef, af41]'), 'mesh.yaml');
    assert.deepEqual(m.reflectors.fra!.lightCosAllow, [46, 34]);
    assert.deepEqual(m.reflectors.ams!.lightCosAllow, [46, 34]);
    assert.throws(() => parseMesh(mesh('[ef, 70]'), 'mesh.yaml'), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /^mesh\.yaml:9:25: reflector\.light_cos_allow\[1\]: expected a DSCP name .*, got 70$/m);
      return true;
    });
  });

  it('inline objects (parseReflectorConfig): the same checks, the entry named by its index', () => {
    assert.deepEqual(parseReflectorConfig({ id: 'r', light_port: 0, light_cos_allow: ['EF', 8] }).lightCosAllow, [46, 8]);
    const err = configError(() => parseReflectorConfig({ id: 'r', light_port: 0, light_cos_allow: [8, 99] }));
    assert.equal(err.message, '<inline>: collector (id "r"): light_cos_allow[1]: expected a DSCP name (be, cs0–cs7, af11–af43, ef, nc1, nc2, cp0–cp63, case-insensitive) or an integer 0–63, got 99');
  });
});
