// The shipped alerts fire on sample series: collector-config/alerts.test.yml
// is a `promtool test rules` file (one refusal on a counter that starts at 0,
// one failed run, loss, MOS, stale and failing senders, targets down), and
// every alert of collector-config/alerts.yml must fire in at least one of its
// tests.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { isCI, repoRoot } from './helpers/peers.js';

const configDir = join(repoRoot(), 'collector-config');
const TESTS = 'alerts.test.yml';

interface AlertTest { eval_time: string; alertname: string; exp_alerts?: { exp_labels?: Record<string, string> }[] }
interface RuleTestFile {
  rule_files: string[];
  tests: { name?: string; input_series: { series: string; values: string }[]; alert_rule_test?: AlertTest[] }[];
}

function load<T>(name: string): T {
  return parse(readFileSync(join(configDir, name), 'utf8')) as T;
}

function alertNames(): string[] {
  const doc = load<{ groups: { rules: { alert?: string }[] }[] }>('alerts.yml');
  return doc.groups.flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r.alert] : [])));
}

/** promtool, or undefined after one clear skip line when it is absent outside CI (under CI it must run). */
function promtool(t: { skip(msg: string): void }, args: string[], cwd?: string): ReturnType<typeof spawnSync> | undefined {
  const r = spawnSync('promtool', args, { encoding: 'utf8', cwd, timeout: 60_000 });
  if (r.error) {
    if (isCI()) throw new Error(`promtool not runnable under CI (.ci/run installs prometheus): ${r.error.message}`);
    t.skip('promtool not installed (apt-get install prometheus): alert rule tests not run');
    return undefined;
  }
  return r;
}

describe('collector-config/alerts.test.yml', () => {
  const file = load<RuleTestFile>(TESTS);

  it('tests the shipped alerts.yml', () => {
    assert.deepEqual(file.rule_files, ['alerts.yml']);
  });

  it('every alert of alerts.yml fires in at least one test', () => {
    const fired = new Set(file.tests.flatMap((t) => (t.alert_rule_test ?? [])
      .filter((a) => (a.exp_alerts ?? []).length > 0).map((a) => a.alertname)));
    const missing = alertNames().filter((a) => !fired.has(a));
    assert.deepEqual(missing, [], `alerts without a firing test in ${TESTS}`);
  });

  it('the counter alerts are tested on one event with the series starting at 0', () => {
    for (const [alert, metric] of [['TwampReflectorRefusing', 'twamp_reflector_refused_total'], ['TwampSenderFailures', 'twamp_sender_errors_total']]) {
      const ok = file.tests.some((t) =>
        (t.alert_rule_test ?? []).some((a) => a.alertname === alert && (a.exp_alerts ?? []).length > 0) &&
        t.input_series.some((s) => s.series.startsWith(`${metric}{`) && /^0( 0)* 1( 1)*$/.test(s.values.trim())));
      assert.ok(ok, `${alert}: a test where ${metric} goes 0 … 0 1 … 1 and the alert fires`);
    }
  });

  it('passes promtool test rules', (t) => {
    const r = promtool(t, ['test', 'rules', TESTS], configDir);
    if (!r) return;
    assert.equal(r.status, 0, `${String(r.stdout)}\n${String(r.stderr)}`);
  });

  it('promtool test rules fails when an expected alert is missing (the check can fail)', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'otel-twamp-rules-'));
    copyFileSync(join(configDir, 'alerts.yml'), join(dir, 'alerts.yml'));
    const broken = structuredClone(file);
    const refusal = broken.tests.flatMap((x) => x.alert_rule_test ?? [])
      .find((a) => a.alertname === 'TwampReflectorRefusing' && (a.exp_alerts ?? []).length > 0);
    assert.ok(refusal);
    refusal.exp_alerts = [];
    writeFileSync(join(dir, TESTS), stringify(broken));
    const r = promtool(t, ['test', 'rules', TESTS], dir);
    if (!r) return;
    assert.notEqual(r.status, 0, 'promtool accepted a test that expects no alert where one fires');
    assert.match(String(r.stdout) + String(r.stderr), /TwampReflectorRefusing/);
  });
});
