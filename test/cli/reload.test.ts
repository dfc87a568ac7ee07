// SIGHUP reload restarts only the collectors whose configuration changed, an
// invalid file keeps the running one, and the series of a removed collector
// leave every export after the grace period.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAgentConfig } from '../../src/config/load.js';
import { Agent } from '../../src/cli/agent.js';
import { silentLogger } from '../../src/util/log.js';
import { freePort, repoRoot } from '../helpers/peers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function yaml(prom: number, twamp: number, collectors: string): string {
  return `
$version: "1.0"
sender: { listen: "127.0.0.1:${prom}" }
collectors:
  - { id: r1, type: twamp_reflector, listen: 127.0.0.1, port: ${twamp} }
${collectors}`;
}
const sender = (id: string, port: number, n = 5) =>
  `  - { id: ${id}, type: twamp_sender, reflector: 127.0.0.1, port: ${port}, n_packets: ${n}, model: g711, interval: 60 }`;

describe('configuration reload', { timeout: 60_000 }, () => {
  it('restarts changed collectors only; removed ones are exported for the grace period, then not', async () => {
    const prom = await freePort();
    const twamp = await freePort();
    const agent = new Agent(parseAgentConfig(yaml(prom, twamp, [sender('s1', twamp), sender('gone', twamp)].join('\n'))),
      { logger: silentLogger, env: {}, staleGraceMs: 500 });
    await agent.start();
    try {
      while (agent.senders.some((s) => !s.lastOutcome)) await sleep(50);
      assert.match(await agent.prometheus!.render(), /collector_id="gone"/, 'scraped once before the reload');
      const reflectorBefore = agent.reflectors[0];
      const next = parseAgentConfig(yaml(prom, twamp, [sender('s1', twamp, 7), sender('s2', twamp)].join('\n')));
      assert.equal(agent.needsFullRestart(next), undefined);
      const changes = await agent.reload(next);
      assert.deepEqual(changes, { stopped: ['gone'], started: ['s2'], restarted: ['s1'], unchanged: ['r1'] });
      assert.equal(agent.reflectors[0], reflectorBefore, 'unchanged collectors keep running');
      while (agent.senders.some((s) => !s.lastOutcome)) await sleep(50);
      let text = await agent.prometheus!.render();
      assert.match(text, /^twamp_tx_packets\{[^}]*collector_id="s1"[^}]*\} 7$/m, 's1 restarted with its new config');
      assert.match(text, /^twamp_tx_packets\{[^}]*collector_id="s2"/m);
      assert.doesNotMatch(text, /^twamp_tx_packets\{[^}]*collector_id="gone"/m, 'gauges of a stopped sender vanish at once');
      assert.match(text, /^twamp_sender_runs_total\{[^}]*collector_id="gone"/m, 'its counters stay during the grace period');
      await sleep(600);
      text = await agent.prometheus!.render();
      assert.doesNotMatch(text, /collector_id="gone"/, 'and are gone after it');
      assert.match(text, /^twamp_sender_runs_total\{[^}]*collector_id="s1"/m);
    } finally {
      await agent.stop();
    }
  });

  it('changes to exporters, naming or Views need a full restart, and say why', async () => {
    const prom = await freePort();
    const twamp = await freePort();
    const agent = new Agent(parseAgentConfig(yaml(prom, twamp, sender('s1', twamp))), { logger: silentLogger, env: {} });
    assert.match(agent.needsFullRestart(parseAgentConfig(yaml(prom + 1, twamp, sender('s1', twamp))))!, /Prometheus endpoint/);
    assert.match(agent.needsFullRestart(parseAgentConfig(`naming: otel\n${yaml(prom, twamp, sender('s1', twamp))}`))!, /naming/);
    const renamed = yaml(prom, twamp, `${sender('s1', twamp).slice(0, -2)}, relabel: [{ source_labels: [__name__], regex: twamp_in_mos, target_label: __name__, replacement: in_mos }] }`);
    assert.match(agent.needsFullRestart(parseAgentConfig(renamed))!, /Views/);
  });

  it('the agent process: SIGHUP with a broken file keeps running, with a good file reloads', async () => {
    const prom = await freePort();
    const twamp = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'otel-twamp-reload-'));
    const file = join(dir, 'agent.yaml');
    writeFileSync(file, yaml(prom, twamp, sender('s1', twamp)));
    const child = spawn(process.execPath, [join(repoRoot(), 'dist', 'src', 'cli', 'main.js'), 'agent', '--config', file],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr.on('data', (d: Buffer) => { log += d.toString(); });
    const waitLog = async (re: RegExp) => {
      const deadline = Date.now() + 10_000;
      while (!re.test(log) && Date.now() < deadline) await sleep(50);
      assert.match(log, re);
    };
    try {
      await waitLog(/Prometheus metrics at/);
      writeFileSync(file, yaml(prom, twamp, sender('s1', twamp).replace(' }', ', bogus_key: 1 }')));
      child.kill('SIGHUP');
      await waitLog(/SIGHUP: configuration not reloaded, keeping the running one: .*bogus_key/);
      const res = await fetch(`http://127.0.0.1:${prom}/metrics`);
      assert.equal(res.status, 200, 'still serving');
      writeFileSync(file, yaml(prom, twamp, sender('s1', twamp, 9)));
      child.kill('SIGHUP');
      await waitLog(/configuration reloaded: restarted s1; 1 unchanged/);
    } finally {
      child.kill('SIGTERM');
    }
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    assert.equal(code, 0, log);
  });
});
