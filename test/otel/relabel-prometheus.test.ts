// Oracle: the same rules through a real Prometheus (2.42, Debian package `prometheus`)
// metric_relabel_configs must give the same series as compileRelabel(…, 'prometheus').
// One Prometheus process, one scrape job per rule set. CI must have it installed.

import assert from 'node:assert/strict';
import { before, describe, it, type TestContext } from 'node:test';
import { compileRelabel, type RelabelRule } from '../../src/otel/relabel.js';
import {
  canonical,
  dedupeFirst,
  findPrometheus,
  ORACLE_EXPOSITION,
  parseExposition,
  PROMETHEUS_INSTALL_HINT,
  runPrometheusOracle,
  withoutReservedLabels,
  type OracleJob,
  type OracleRun,
  type Series,
} from '../helpers/prometheus.js';

const CASES: OracleJob[] = [
  { name: 'no_rules', rules: [] },
  // replace
  { name: 'replace_defaults_copy', rules: [{ source_labels: ['host'], target_label: 'node' }] },
  { name: 'replace_static_add', rules: [{ target_label: 'env', replacement: 'prod' }] },
  {
    name: 'replace_groups',
    rules: [{
      source_labels: ['reflector', 'zone'], regex: '10\\.0\\.0\\.(\\d+);(\\w+)-(.*)',
      target_label: 'site', replacement: '${2}-${3}/r$1',
    }],
  },
  {
    name: 'replace_named_groups',
    rules: [{
      source_labels: ['reflector'], regex: '(?P<net>\\d+\\.\\d+)\\.\\d+\\.(?P<last>\\d+)',
      target_label: 'refl_short', replacement: '$net:${last}$$',
    }],
  },
  { name: 'replace_go_name_pitfall', rules: [{ source_labels: ['host'], regex: '(.*)', target_label: 'host', replacement: '$1x' }] },
  { name: 'replace_template_target', rules: [{ source_labels: ['service'], regex: '(.+)', target_label: 'svc_${1}', replacement: 'yes' }] },
  { name: 'replace_invalid_expanded_target', rules: [{ source_labels: ['zone'], target_label: '${1}', replacement: 'v' }] },
  { name: 'replace_delete_by_empty', rules: [{ source_labels: ['zone'], regex: 'eu-.*', target_label: 'zone', replacement: '' }] },
  { name: 'replace_missing_source_deletes', rules: [{ source_labels: ['peer'], target_label: 'host' }] },
  { name: 'replace_case_insensitive', rules: [{ source_labels: ['zone'], regex: '(?i)us-(.*)', target_label: 'region' }] },
  { name: 'replace_separator', rules: [{ source_labels: ['host', 'zone', 'service'], separator: '', target_label: 'hz' }] },
  { name: 'replace_posix_quote', rules: [{ source_labels: ['zone'], regex: '([[:alpha:]]+)-\\Q1\\E', target_label: 'zone_word' }] },
  // keep / drop
  { name: 'keep', rules: [{ action: 'keep', source_labels: ['collector'], regex: 'twamp_sender' }] },
  { name: 'keep_is_anchored', rules: [{ action: 'keep', source_labels: ['reflector', 'host'], regex: '10\\.0\\.0\\.1' }] },
  { name: 'drop', rules: [{ action: 'drop', source_labels: ['__name__'], regex: 'twamp_rt_.*_ns' }] },
  { name: 'drop_is_anchored', rules: [{ action: 'drop', source_labels: ['reflector'], regex: '0\\.1' }] },
  { name: 'drop_missing_label_is_empty', rules: [{ action: 'drop', source_labels: ['service'], regex: '' }] },
  { name: 'keepequal', rules: [{ action: 'keepequal', source_labels: ['host'], target_label: 'zone' }] },
  { name: 'dropequal', rules: [{ action: 'dropequal', source_labels: ['host'], target_label: 'zone' }] },
  // label actions
  { name: 'labeldrop', rules: [{ action: 'labeldrop', regex: 'reflector|zo.*' }] },
  { name: 'labelkeep', rules: [{ action: 'labelkeep', regex: '__name__|host|service' }] },
  { name: 'labelmap', rules: [{ action: 'labelmap', regex: '(re|zo)(.*)', replacement: 'm_${1}_$2' }] },
  { name: 'lowercase', rules: [{ action: 'lowercase', source_labels: ['zone', 'service'], target_label: 'zs' }] },
  { name: 'uppercase', rules: [{ action: 'uppercase', source_labels: ['host'], target_label: 'host' }] },
  { name: 'lowercase_missing_deletes', rules: [{ action: 'lowercase', source_labels: ['peer'], target_label: 'collector' }] },
  { name: 'hashmod', rules: [{ action: 'hashmod', source_labels: ['reflector', '__name__'], modulus: 8, target_label: 'shard' }] },
  {
    name: 'hashmod_big_modulus',
    rules: [{ action: 'hashmod', source_labels: ['__name__', 'host'], modulus: 2 ** 52 + 1, target_label: 'shard' }],
  },
  // __name__
  {
    name: 'name_rename',
    rules: [{ source_labels: ['__name__'], regex: 'twamp_rt_(.*)_ns', target_label: '__name__', replacement: 'twamp_round_trip_${1}_nanoseconds' }],
  },
  { name: 'name_keep', rules: [{ action: 'keep', source_labels: ['__name__'], regex: 'twamp_(tx|rx)_packets' }] },
  // chains
  {
    name: 'chain_tmp_shard',
    rules: [
      { action: 'hashmod', source_labels: ['__name__', 'reflector'], modulus: 2, target_label: '__tmp_shard' },
      { action: 'keep', source_labels: ['__tmp_shard'], regex: '1' },
      { source_labels: ['__tmp_shard'], target_label: 'shard' },
    ],
  },
  { name: 'collisions_first_wins', rules: [{ action: 'labeldrop', regex: 'reflector|host|zone|service' }] },
];

/** Rule sets where Prometheus 2.42 is known to differ from the engine; checked separately. */
const DIVERGENT: OracleJob[] = [
  { name: 'div_labelkeep_drops_name', rules: [{ action: 'labelkeep', regex: 'host|zone' }] },
  { name: 'div_name_emptied', rules: [{ source_labels: ['__name__'], regex: 'twamp_mos', target_label: '__name__', replacement: '' }] },
  { name: 'div_labelmap_invalid_name', rules: [{ action: 'labelmap', regex: '(h)(ost)', replacement: '${3}' }] },
  {
    name: 'div_template_target_empty',
    rules: [
      { source_labels: ['host'], regex: '(a)', target_label: 'x${1}', replacement: 'v' },
      { source_labels: ['host'], regex: '(a)', target_label: 'x${1}', replacement: '' },
    ],
  },
  { name: 'div_tmp_label_stored', rules: [{ source_labels: ['host'], target_label: '__tmp_host' }] },
];

const INPUT = parseExposition(ORACLE_EXPOSITION);
const bin = findPrometheus();
if (!bin) {
  console.warn(`\n*** WARNING: relabel Prometheus oracle NOT RUN — ${PROMETHEUS_INSTALL_HINT}${process.env.CI ? ' (CI: failing)' : ''}\n`);
}

function engine(rules: RelabelRule[]): Series[] {
  const c = compileRelabel(rules, { dialect: 'prometheus' });
  const out: Series[] = [];
  for (const s of INPUT) {
    const r = c.apply(s.name, s.labels);
    if (r) out.push({ name: r.name, labels: r.labels, value: s.value });
  }
  return dedupeFirst(out);
}

describe('relabel engine vs real Prometheus metric_relabel_configs', { timeout: 60_000 }, () => {
  let run: OracleRun | undefined;

  before(async () => {
    if (bin) run = await runPrometheusOracle(bin, [...CASES, ...DIVERGENT], { timeoutMs: 20_000 });
  });

  function oracle(t: TestContext, name: string) {
    if (!bin) {
      if (process.env.CI) assert.fail(`${PROMETHEUS_INSTALL_HINT} (required when CI is set)`);
      t.skip(PROMETHEUS_INSTALL_HINT);
      return undefined;
    }
    const r = run!.results.get(name);
    assert.ok(r, `no result for ${name}`);
    return r;
  }

  for (const c of CASES) {
    it(c.name, (t) => {
      const r = oracle(t, c.name);
      if (!r) return;
      assert.equal(r.up, 1, `Prometheus scrape failed for ${c.name}:\n${run!.log}`);
      assert.deepEqual(canonical(engine(c.rules)), canonical(withoutReservedLabels(r.series)));
    });
  }

  it('sanity: the rule sets are not all no-ops', (t) => {
    if (!oracle(t, 'no_rules')) return;
    const base = canonical(run!.results.get('no_rules')!.series).join('\n');
    // drop_is_anchored must change nothing: that is its point.
    for (const c of CASES.filter((x) => x.name !== 'no_rules' && x.name !== 'drop_is_anchored')) {
      assert.notEqual(canonical(withoutReservedLabels(run!.results.get(c.name)!.series)).join('\n'), base, c.name);
    }
  });

  // Known divergences: assert what Prometheus 2.42 does, and what the engine does instead.
  it('divergence: labelkeep without __name__ fails the whole Prometheus scrape; the engine drops each series', (t) => {
    const r = oracle(t, 'div_labelkeep_drops_name');
    if (!r) return;
    assert.equal(r.up, 0);
    assert.equal(r.series.length, 0);
    assert.deepEqual(engine(DIVERGENT[0]!.rules), []);
  });

  it('divergence: an emptied __name__ loses the whole scrape in Prometheus; the engine drops that series only', (t) => {
    const r = oracle(t, 'div_name_emptied');
    if (!r) return;
    assert.equal(r.up, 0);
    assert.equal(r.series.length, 0);
    const e = engine(DIVERGENT[1]!.rules);
    assert.equal(e.length, INPUT.length - 1);
    assert.ok(!e.some((s) => s.name === 'twamp_mos'));
  });

  it('divergence: labelmap to an invalid name fails the Prometheus scrape; the engine skips that label', (t) => {
    const r = oracle(t, 'div_labelmap_invalid_name');
    if (!r) return;
    assert.equal(r.up, 0);
    assert.deepEqual(canonical(engine(DIVERGENT[2]!.rules)), canonical(engine([])));
  });

  it('divergence: 2.42 does not delete a templated target on empty replacement; the engine (like current Prometheus) does', (t) => {
    const r = oracle(t, 'div_template_target_empty');
    if (!r) return;
    assert.equal(r.up, 1);
    assert.ok(r.series.some((s) => s.labels.xa === 'v'), '2.42 keeps xa="v"');
    assert.ok(!engine(DIVERGENT[3]!.rules).some((s) => 'xa' in s.labels));
  });

  it('divergence: Prometheus stores __-prefixed labels made by metric relabeling; the engine strips them', (t) => {
    const r = oracle(t, 'div_tmp_label_stored');
    if (!r) return;
    assert.equal(r.up, 1);
    assert.ok(r.series.every((s) => s.labels.__tmp_host === s.labels.host));
    assert.deepEqual(canonical(engine(DIVERGENT[4]!.rules)), canonical(withoutReservedLabels(r.series)));
  });
});
