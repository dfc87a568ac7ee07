// The accuracy lab's router scenarios (scripts/lab/router.ts, docs/internals.md
// "Accuracy lab"): a namespace that really forwards (TTL −1 each way) and
// re-marks DSCP per direction sits between sender and reflector. Our sender and
// twping must each see 1 hop out and 1 hop in; our sender must see the inbound
// re-mark on every reply, and the outbound re-mark as the reflector reports it:
// through RFC 7750 from our reflector, through the STAMP Class of Service TLV
// from our Light reflector, and not at all (unknown) from twampd, which offers
// no RFC 7750. Runs `node dist/scripts/lab.js --only router` as root;
// skipped (one line) without root, `ip` or `nft` — except under CI as root,
// where missing tools are a failure (.ci/run installs iproute2 and nftables).
// OTL_LAB_NS_SUFFIX (passed through) names the lab's namespaces uniquely, so
// concurrent runs do not collide.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { isCI, repoRoot, requirePeersOrSkip } from '../helpers/peers.js';

const LAB_TIMEOUT_MS = 60_000;

function sh(cmd: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const cp = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    let stdout = '';
    let stderr = '';
    cp.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
    cp.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    // SIGTERM first: the lab removes its namespaces on SIGTERM.
    const t = setTimeout(() => { cp.kill('SIGTERM'); setTimeout(() => cp.kill('SIGKILL'), 5000).unref(); }, timeoutMs);
    cp.once('error', (e) => { clearTimeout(t); resolve({ code: 127, stdout, stderr: stderr + String(e) }); });
    cp.once('close', (code) => { clearTimeout(t); resolve({ code, stdout, stderr }); });
  });
}

interface Row { name: string; checks: Array<{ what: string; ok: boolean; detail: string }>; remarked: { fwd: number; ret: number } }

test('lab router: 1 hop each way and per-direction DSCP re-marking across a forwarding namespace', { timeout: LAB_TIMEOUT_MS + 20_000 }, async (t) => {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    t.skip('lab-router: needs root (network namespaces); run as root, e.g. sudo npm test');
    return;
  }
  for (const [tool, arg] of [['ip', '-V'], ['nft', '--version']] as const) {
    const r = await sh(tool, [arg], 5000);
    if (r.code !== 0) {
      const why = `lab-router: \`${tool}\` not available (install ${tool === 'ip' ? 'iproute2' : 'nftables'})`;
      if (isCI()) throw new Error(`${why}; CI is set and this runs as root: the lab must not be skipped`);
      t.skip(why);
      return;
    }
  }
  const peers = requirePeersOrSkip(t);
  if (!peers) return;

  const lab = join(repoRoot(), 'dist', 'scripts', 'lab.js');
  const r = await sh(process.execPath, [lab, '--only', 'router'], LAB_TIMEOUT_MS, { ...process.env, OTEL_TWAMP_PEERS: peers.dir });
  if (r.stdout.includes('LAB SKIPPED')) {
    const why = r.stdout.split('\n').find((l) => l.includes('LAB SKIPPED'))!.replace(/^!+\s*/, '');
    if (isCI()) throw new Error(`${why} (CI is set: the lab must run)`);
    t.skip(`lab-router: ${why}`);
    return;
  }
  const line = r.stdout.split('\n').find((l) => l.startsWith('ROUTER-RESULT '));
  assert.ok(line, `the lab printed no ROUTER-RESULT line (exit ${r.code}):\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`);
  const rows = JSON.parse(line.slice('ROUTER-RESULT '.length)) as Row[];
  assert.deepEqual(rows.map((x) => x.name),
    ['our sender → our reflector', 'our STAMP sender → our Light reflector', 'twping → our reflector', 'our sender → twampd']);
  const failed = rows.flatMap((x) => x.checks.filter((c) => !c.ok).map((c) => `${x.name}: ${c.detail}`));
  assert.deepEqual(failed, [], `router scenarios failed:\n  ${failed.join('\n  ')}`);
  for (const row of rows) {
    // Each scenario must have measured the hops and seen the router's rule fire both ways.
    assert.ok(row.checks.some((c) => /hops|STTL/.test(c.what)), `${row.name}: no hop check ran`);
    assert.ok(row.remarked.fwd > 0 && row.remarked.ret > 0, `${row.name}: the router re-marked nothing`);
  }
  // The outbound re-mark was checked where a reflector reports it, and its absence where none does.
  const outbound = (name: string): string[] => rows.find((x) => x.name === name)!.checks.map((c) => c.detail)
    .filter((d) => d.startsWith('outbound DSCP reported by'));
  assert.deepEqual(outbound('our sender → our reflector'), ['outbound DSCP reported by: measured rfc7750, expected rfc7750']);
  assert.deepEqual(outbound('our STAMP sender → our Light reflector'), ['outbound DSCP reported by: measured cos-tlv, expected cos-tlv']);
  assert.deepEqual(outbound('our sender → twampd'), ['outbound DSCP reported by: measured —, expected null']);
  assert.equal(r.code, 0, `lab exit ${r.code}`);
});
