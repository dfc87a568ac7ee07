// Both naming profiles and relabel rules, end to end through the agent's
// Prometheus endpoint: renames via generated Views, label rewrites and
// per-series drops in the producers, otel names, units and attributes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseAgentConfig } from '../../src/config/load.js';
import { Agent } from '../../src/cli/agent.js';
import { silentLogger } from '../../src/util/log.js';
import { freePort } from '../helpers/peers.js';

async function runAgent(yaml: string, check: (text: string, agent: Agent) => void | Promise<void>): Promise<void> {
  const agent = new Agent(parseAgentConfig(yaml), { logger: silentLogger, env: {} });
  await agent.start();
  try {
    const deadline = Date.now() + 10_000;
    while (agent.senders.some((s) => !s.lastOutcome) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await check(await agent.prometheus!.render(), agent);
  } finally {
    await agent.stop();
  }
}

async function config(naming: string, senderExtra: string): Promise<string> {
  const prom = await freePort();
  const port = await freePort();
  return `
$version: "1.0"
agent: { host: h1, labels: { site: lab } }
naming: ${naming}
sender: { listen: "127.0.0.1:${prom}" }
collectors:
  - { id: r1, type: twamp_reflector, listen: 127.0.0.1, port: ${port} }
  - id: s1
    type: twamp_sender
    reflector: 127.0.0.1
    port: ${port}
    n_packets: 10
    model: g711
    interval: 60
${senderExtra}`;
}

describe('naming profiles and relabeling through the Prometheus endpoint', { timeout: 60_000 }, () => {
  it('legacy: rename via View, label rewrite and drop in the producer', async () => {
    const yaml = await config('legacy', `    relabel:
      - { source_labels: [__name__], regex: twamp_rt_avg_delay_ns, target_label: __name__, replacement: rtt_avg_ns }
      - { source_labels: [__name__], regex: "twamp_(in|out)_mos", action: drop }
      - { source_labels: [reflector], regex: "(.*):(.*)", target_label: reflector_host, replacement: "\${1}" }
      - { regex: model, action: labeldrop }`);
    await runAgent(yaml, (text) => {
      assert.match(text, /^rtt_avg_ns\{[^}]*collector_id="s1"[^}]*\} \d+$/m, 'renamed by the View');
      assert.doesNotMatch(text, /^twamp_rt_avg_delay_ns\{/m);
      assert.doesNotMatch(text, /^twamp_(in|out)_mos\{/m, 'dropped');
      assert.match(text, /^twamp_rt_min_delay_ns\{[^}]*reflector_host="127\.0\.0\.1"/m, 'label added');
      assert.doesNotMatch(text, /^twamp_tx_packets\{[^}]*model=/m, 'label dropped');
      // The reflector has no rules: untouched.
      assert.match(text, /^twamp_reflector_reflected_pkt_total\{[^}]*collector_id="r1"[^}]*\} 10$/m);
      assert.match(text, /^twamp_agent_build_info\{[^}]*version="[\d.]+"[^}]*node_version=/m);
    });
  });

  it('otel: dotted names scraped with underscores, seconds, semantic-convention attributes', async () => {
    await runAgent(await config('otel', ''), (text) => {
      const line = /^twamp_sender_round_trip_delay_avg\{([^}]*)\} (\S+)$/m.exec(text);
      assert.ok(line, text.slice(0, 2000));
      const [, labels, value] = line;
      assert.ok(Number(value) > 0 && Number(value) < 1, `seconds, got ${value}`);
      assert.match(labels!, /server_address="127\.0\.0\.1"/);
      assert.match(labels!, /server_port="\d+"/);
      assert.match(labels!, /network_type="ipv4"/);
      assert.match(labels!, /twamp_collector_id="s1"/);
      assert.match(labels!, /twamp_model="g711"/);
      assert.match(labels!, /twamp_dscp="be"/);
      assert.match(labels!, /site="lab"/);
      assert.doesNotMatch(labels!, /(^|,)host=/, 'host is a resource attribute in the otel profile');
      assert.match(text, /^# UNIT twamp_sender_round_trip_delay_avg s$/m);
      assert.match(text, /^twamp_reflector_reflected_packets_total\{/m);
      assert.match(text, /^target_info\{[^}]*host_name="h1"/m);
    });
  });

  it('otel: relabel rules use the Prometheus-visible names of attributes', async () => {
    const yaml = await config('otel', `    relabel:
      - { source_labels: [server_address], target_label: peer }
      - { regex: "twamp_(model|dscp)", action: labeldrop }`);
    await runAgent(yaml, (text) => {
      const line = /^twamp_sender_sent_packets\{([^}]*)\} 10$/m.exec(text);
      assert.ok(line, text.slice(0, 2000));
      assert.match(line[1]!, /peer="127\.0\.0\.1"/);
      assert.match(line[1]!, /server_address=/, 'the original attribute keeps its dotted key');
      assert.doesNotMatch(line[1]!, /twamp_model|twamp_dscp/);
    });
  });
});
