// An agent given a mesh (docs/configuration.md "Mesh") runs its member's
// reflector and one sender per peer, exports exactly those series with src
// and dst, applies a changed definition within one poll (only the senders
// that changed), keeps the running one when the new one is bad, and fetches an
// HTTP source again only when its ETag changes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAgentConfig } from '../../src/config/load.js';
import { Agent } from '../../src/cli/agent.js';
import { TwampSender } from '../../src/sender.js';
import { silentLogger } from '../../src/util/log.js';
import { freePort, repoRoot } from '../helpers/peers.js';
import { parseSenderConfig } from '../../src/config/index.js';
import { until, sleep, recordingLogger } from '../helpers/wait.js';

interface M { name: string; ip: string; port: number; site?: string }

function meshYaml(members: M[], interval = 1): string {
  return `tests:
  t: {model: g711, n_packets: 5, interval: ${interval}, reply_timeout: 0.5}
members:
${members.map((m) => `  - {name: ${m.name}, address: ${m.ip}, port: ${m.port}, listen: ${m.ip}${m.site ? `, labels: {site: ${m.site}}` : ''}}`).join('\n')}
groups:
  - {type: mesh, members: [${members.map((m) => m.name).join(', ')}], test: t}
`;
}

function agentYaml(source: string, self: string, prom?: number, interval = 0.2): string {
  return `$version: "1.0"
${prom !== undefined ? `sender: { listen: "127.0.0.1:${prom}" }\n` : ''}mesh: { source: "${source}", self: ${self}, interval: ${interval} }
`;
}

const senderIds = (a: Agent) => a.senders.map((s) => s.config.id).sort();

describe('agent with a mesh', { timeout: 90_000 }, () => {
  it('--check prints what this node runs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'otel-twamp-mesh-'));
    writeFileSync(join(dir, 'mesh.yaml'), meshYaml([
      { name: 'fra', ip: '192.0.2.1', port: 862 }, { name: 'ams', ip: '192.0.2.2', port: 8620 }, { name: 'lon', ip: '192.0.2.3', port: 862 },
    ], 10));
    writeFileSync(join(dir, 'agent.yaml'), agentYaml('mesh.yaml', 'fra'));
    const main = join(repoRoot(), 'dist', 'src', 'cli', 'main.js');
    const ok = spawnSync(process.execPath, [main, 'agent', '--check', '--config', join(dir, 'agent.yaml')], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    const lines = ok.stdout.trim().split('\n');
    assert.match(lines[1]!, /^mesh .*mesh\.yaml: OK — 3 member\(s\), 1 group\(s\), 1 test\(s\); this agent is "fra": 2 sender\(s\), a reflector$/);
    assert.equal(lines[2], '  reflector mesh/reflector on 192.0.2.1:862');
    assert.match(lines[3]!, /^ {2}sender mesh\/t\/fra->ams to 192\.0\.2\.2:8620 test t \(every 10 s, offset \d\.\d{3} s\)$/);
    assert.match(lines[4]!, /^ {2}sender mesh\/t\/fra->lon to 192\.0\.2\.3:862 test t /);
    assert.equal(lines.length, 5);

    writeFileSync(join(dir, 'mesh.yaml'), meshYaml([{ name: 'fra', ip: '192.0.2.1', port: 862 }]).replace('members: [fra]', 'members: [fra, ams]'));
    const bad = spawnSync(process.execPath, [main, 'agent', '--check', '--config', join(dir, 'agent.yaml')], { encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /mesh\.yaml:\d+:\d+: groups\[0\]\.members\[1\]: unknown member "ams"/);
  });

  it('runs N-1 senders with src/dst, follows edits of the file within a poll, keeps the running mesh when the new one is bad', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'otel-twamp-mesh-'));
    const file = join(dir, 'mesh.yaml');
    const ms: M[] = [];
    for (const [i, name] of ['m1', 'm2', 'm3'].entries()) ms.push({ name, ip: `127.0.0.${i + 1}`, port: await freePort(), site: `s${i + 1}` });
    writeFileSync(file, meshYaml(ms));
    const prom = await freePort();
    const log = recordingLogger();
    const agents = [
      new Agent(parseAgentConfig(agentYaml(file, 'm1', prom), join(dir, 'a1.yaml'), {}), { logger: log, env: {}, staleGraceMs: 0 }),
      new Agent(parseAgentConfig(agentYaml(file, 'm2'), join(dir, 'a2.yaml'), {}), { logger: recordingLogger(), env: {} }),
      new Agent(parseAgentConfig(agentYaml(file, 'm3'), join(dir, 'a3.yaml'), {}), { logger: recordingLogger(), env: {} }),
    ];
    const [a1] = agents as [Agent, Agent, Agent];
    try {
      for (const a of agents) await a.start();
      assert.deepEqual(senderIds(a1), ['mesh/t/m1->m2', 'mesh/t/m1->m3']);
      assert.equal(a1.reflectors.length, 1);
      assert.equal(a1.reflectors[0]!.address?.address, '127.0.0.1');
      await until('both senders to finish a session', () => a1.senders.every((s) => s.lastOutcome?.ok === true));
      let text = await a1.prometheus!.render();
      const tx = text.split('\n').filter((l) => l.startsWith('twamp_tx_packets{'));
      assert.equal(tx.length, 2, text);
      for (const dst of ['m2', 'm3']) {
        const line = tx.find((l) => l.includes(`dst="${dst}"`));
        assert.ok(line, `a series to ${dst}`);
        assert.match(line, /src="m1"/);
        assert.match(line, new RegExp(`dst_site="s${dst.slice(1)}"`));
        assert.match(line, /src_site="s1"/);
        assert.match(line, new RegExp(`collector_id="mesh/t/m1->${dst}"`));
        assert.match(line, / 5$/);
      }
      assert.match(text, /^twamp_mesh_generation\{[^}]*\} 1$/m);
      assert.match(text, /^twamp_mesh_members\{[^}]*\} 3$/m);
      assert.match(text, /^twamp_mesh_senders\{[^}]*\} 2$/m);
      const sender12 = a1.senders.find((s) => s.config.id === 'mesh/t/m1->m2');

      // Remove m3: its sender stops within a poll; m1->m2 keeps running untouched.
      writeFileSync(file, meshYaml(ms.slice(0, 2)));
      await until('m1->m3 to stop', () => senderIds(a1).join() === 'mesh/t/m1->m2', 5_000);
      assert.equal(a1.senders[0], sender12, 'the unchanged sender was not restarted');
      assert.ok(log.lines.includes('info mesh: stopped mesh/t/m1->m3'), log.lines.join('\n'));
      text = await a1.prometheus!.render();
      assert.match(text, /^twamp_mesh_generation\{[^}]*\} 2$/m);
      assert.doesNotMatch(text, /dst="m3"/);

      // Add m4 (nothing listens there; the sender starts anyway and reports its failures).
      const m4: M = { name: 'm4', ip: '127.0.0.4', port: await freePort(), site: 's4' };
      writeFileSync(file, meshYaml([...ms.slice(0, 2), m4]));
      await until('m1->m4 to start', () => senderIds(a1).join() === 'mesh/t/m1->m2,mesh/t/m1->m4', 5_000);
      assert.ok(log.lines.some((l) => l.startsWith(`info mesh: started mesh/t/m1->m4 (to 127.0.0.4:${m4.port})`)), log.lines.join('\n'));

      // A bad version is logged once, naming the problem, and changes nothing.
      writeFileSync(file, meshYaml([...ms.slice(0, 2), m4]).replace('n_packets: 5', 'n_packets: many'));
      await until('the error', () => log.lines.some((l) => l.startsWith('error mesh: new version not applied, keeping generation 3:')), 5_000);
      const err = log.lines.find((l) => l.startsWith('error mesh:'))!;
      assert.match(err, /mesh\.yaml:2:\d+: tests\.t\.n_packets: expected an integer/);
      await sleep(600);
      assert.equal(log.lines.filter((l) => l.startsWith('error mesh:')).length, 1, 'the same bad version is reported once');
      assert.deepEqual(senderIds(a1), ['mesh/t/m1->m2', 'mesh/t/m1->m4']);
      text = await a1.prometheus!.render();
      assert.match(text, /^twamp_mesh_generation\{[^}]*\} 3$/m);
      assert.match(text, /^twamp_mesh_errors_total\{[^}]*\} 1$/m);
    } finally {
      for (const a of agents) await a.stop();
    }
  });

  it('a sender with startOffsetMs runs its first session that much later', async () => {
    const port = await freePort();
    const s = new TwampSender(parseSenderConfig({ id: 'late', reflector: '127.0.0.1', port, n_packets: 1, model: 'g711', interval: 60, control_timeout: 1 }), { logger: silentLogger });
    const late = new TwampSender({ ...s.config, id: 'later', startOffsetMs: 1500 }, { logger: silentLogger });
    const t0 = Date.now();
    await s.start();
    await late.start();
    try {
      await until('the first run without offset', () => s.lastOutcome !== undefined, 5_000);
      await sleep(Math.max(0, 300 - (Date.now() - t0)));
      assert.equal(late.lastOutcome, undefined, 'no run before the offset');
      await until('the first run with offset', () => late.lastOutcome !== undefined, 6_000);
      assert.ok(Date.now() - t0 >= 1400);
    } finally {
      await s.stop();
      await late.stop();
    }
  });

  it('an HTTP source is fetched again only when its ETag changes (304 otherwise)', async () => {
    let body = meshYaml([{ name: 'm1', ip: '127.0.0.1', port: 9 }, { name: 'm2', ip: '127.0.0.2', port: 9 }], 60);
    const counts = { 200: 0, 304: 0 };
    const server = createServer((req, res) => {
      const etag = `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;
      if (req.headers['if-none-match'] === etag) { counts[304]++; res.writeHead(304, { etag }).end(); return; }
      counts[200]++;
      res.writeHead(200, { etag, 'content-type': 'application/yaml' }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    const log = recordingLogger();
    const agent = new Agent(parseAgentConfig(agentYaml(`http://127.0.0.1:${port}/mesh.yaml`, 'm1', undefined, 0.1), 'agent.yaml', {}),
      { logger: log, env: {} });
    try {
      await agent.start();
      assert.deepEqual(senderIds(agent), ['mesh/t/m1->m2']);
      await until('five conditional requests', () => counts[304] >= 5);
      assert.equal(counts[200], 1, 'unchanged: never fetched in full again');
      body = meshYaml([{ name: 'm1', ip: '127.0.0.1', port: 9 }, { name: 'm2', ip: '127.0.0.2', port: 9 }, { name: 'm3', ip: '127.0.0.3', port: 9 }], 60);
      await until('the new version', () => senderIds(agent).length === 2, 5_000);
      assert.deepEqual(senderIds(agent), ['mesh/t/m1->m2', 'mesh/t/m1->m3']);
      assert.equal(counts[200], 2);
      const after = counts[304];
      await until('more conditional requests', () => counts[304] >= after + 3);
      assert.equal(counts[200], 2);
      assert.equal(log.lines.filter((l) => l.includes('mesh: generation')).length, 2, log.lines.join('\n'));
    } finally {
      await agent.stop();
      await new Promise((r) => server.close(r));
    }
  });
});
