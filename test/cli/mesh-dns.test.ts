// Mesh members from DNS (docs/configuration.md "Mesh", "Members from DNS"),
// against a DNS server the test runs on loopback (test/helpers/dnsServer.ts):
// the resolver's answers for A, AAAA and SRV and its failures; an agent whose
// mesh names a set starts a sender when a record appears and stops only that
// one when it vanishes, keeps the members when resolution fails, counts and
// logs it, and says in the log what changed.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAgentConfig, parseReflectorConfig } from '../../src/config/load.js';
import type { MeshMemberSet } from '../../src/config/mesh.js';
import { Agent } from '../../src/cli/agent.js';
import { MeshResolver } from '../../src/cli/meshDns.js';
import { describeMeshCheck } from '../../src/cli/mesh.js';
import { TwampReflector } from '../../src/reflector.js';
import { silentLogger } from '../../src/util/log.js';
import { freePort } from '../helpers/peers.js';
import { startDnsServer } from '../helpers/dnsServer.js';
import { until, sleep, recordingLogger } from '../helpers/wait.js';

const set = (dns: string, type: MeshMemberSet['type']): MeshMemberSet => ({ name: 'pods', dns, type, port: 862, listen: '0.0.0.0', labels: {}, intervalMs: 1000 });

describe('MeshResolver against a local DNS server', () => {
  it('A, AAAA and SRV answers become members, sorted; NODATA is an empty set; failures name the query and why', async () => {
    const dns = await startDnsServer();
    const r = new MeshResolver({ servers: [dns.address], timeoutMs: 300, tries: 1 });
    try {
      dns.set('pods.test', { A: ['10.0.0.6', '10.0.0.5'], AAAA: ['2001:db8::6', '2001:db8::5'] });
      assert.deepEqual(await r.resolve(set('pods.test', 'A')), [{ name: '10.0.0.5', address: '10.0.0.5' }, { name: '10.0.0.6', address: '10.0.0.6' }]);
      assert.deepEqual((await r.resolve(set('POds.test.', 'AAAA'))).map((m) => m.name), ['2001:db8::5', '2001:db8::6']);

      // SRV: targets resolved by the same server; one that does not resolve keeps its host name; several ports = several members.
      dns.set('_twamp._tcp.pods.test', { SRV: [
        { port: 9001, target: 'a.pods.test' }, { port: 9002, target: 'B.pods.test.' }, { port: 9003, target: 'c.pods.test' }, { port: 9004, target: 'c.pods.test' },
      ] });
      dns.set('a.pods.test', { A: ['10.0.0.1'] });
      dns.set('b.pods.test', { AAAA: ['2001:db8::2'] });
      assert.deepEqual(await r.resolve(set('_twamp._tcp.pods.test', 'SRV')), [
        { name: 'a.pods.test', address: '10.0.0.1', port: 9001 },
        { name: 'b.pods.test', address: '2001:db8::2', port: 9002 },
        { name: 'c.pods.test:9003', address: 'c.pods.test', port: 9003 },
        { name: 'c.pods.test:9004', address: 'c.pods.test', port: 9004 },
      ]);

      dns.set('empty.test', { AAAA: ['2001:db8::1'] });
      assert.deepEqual(await r.resolve(set('empty.test', 'A')), [], 'the name exists without A records');
      await assert.rejects(r.resolve(set('nowhere.test', 'A')), /^Error: cannot resolve A nowhere\.test \(member set "pods"\): no such name \(NXDOMAIN\)$/);
      dns.failing.set('pods.test', 'servfail');
      await assert.rejects(r.resolve(set('pods.test', 'A')), /cannot resolve A pods\.test \(member set "pods"\): the server failed \(SERVFAIL\)/);
      dns.failing.set('pods.test', 'drop');
      await assert.rejects(r.resolve(set('pods.test', 'A')), /cannot resolve A pods\.test .*no answer \(timed out\)/);
      assert.ok(dns.queries.includes('SRV _twamp._tcp.pods.test'), dns.queries.join(', '));
    } finally {
      r.cancel();
      await dns.close();
    }
  });
});

describe('agent with a mesh whose members come from DNS', { timeout: 90_000 }, () => {
  it('records added and removed start and stop only their own senders; a failed resolution keeps the members, is counted and logged', async () => {
    const dns = await startDnsServer();
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'otel-twamp-mesh-dns-'));
    // This agent is 127.0.0.1; the other members are reflectors the test runs.
    writeFileSync(join(dir, 'mesh.yaml'), `tests:
  t: {model: g711, n_packets: 5, interval: 1, reply_timeout: 0.5}
members:
  - {name: pods, dns: twamp.mesh.test, type: A, port: ${port}, listen: 127.0.0.1, interval: 0.2, labels: {site: lab}}
groups:
  - {type: mesh, members: [pods], test: t}
`);
    const prom = await freePort();
    writeFileSync(join(dir, 'agent.yaml'), `$version: "1.0"
sender: { listen: "127.0.0.1:${prom}" }
mesh: { source: mesh.yaml, self: 127.0.0.1, interval: 60, dns_servers: ["${dns.address}"] }
`);
    const peers: TwampReflector[] = [];
    for (const ip of ['127.0.0.2', '127.0.0.3']) {
      const r = new TwampReflector(parseReflectorConfig({ id: `peer-${ip}`, listen: ip, port }), { logger: silentLogger });
      await r.start();
      peers.push(r);
    }
    dns.set('twamp.mesh.test', { A: ['127.0.0.1', '127.0.0.2'] });
    const log = recordingLogger();
    const agent = new Agent(parseAgentConfig(`$version: "1.0"
sender: { listen: "127.0.0.1:${prom}" }
mesh: { source: mesh.yaml, self: 127.0.0.1, interval: 60, dns_servers: ["${dns.address}"] }
`, join(dir, 'agent.yaml'), {}), { logger: log, env: {}, staleGraceMs: 0 });
    const ids = () => agent.senders.map((s) => s.config.id).sort().join();
    try {
      await agent.start();
      assert.equal(ids(), 'mesh/t/127.0.0.1->127.0.0.2');
      assert.equal(agent.reflectors.length, 1, 'this member is a target: it runs the mesh reflector');
      assert.ok(log.lines.includes('info mesh: member set pods: A twamp.mesh.test has 2 member(s): 127.0.0.1, 127.0.0.2'), log.lines.join('\n'));
      await until('a session to 127.0.0.2', () => agent.senders.every((s) => s.lastOutcome?.ok === true));
      const first = agent.senders[0];

      // A record appears: its sender starts within a DNS interval; the running one is untouched.
      dns.set('twamp.mesh.test', { A: ['127.0.0.1', '127.0.0.2', '127.0.0.3'] });
      await until('the sender to 127.0.0.3', () => ids() === 'mesh/t/127.0.0.1->127.0.0.2,mesh/t/127.0.0.1->127.0.0.3', 5_000);
      assert.equal(agent.senders.find((s) => s.config.id === 'mesh/t/127.0.0.1->127.0.0.2'), first, 'not restarted');
      assert.ok(log.lines.includes('info mesh: member set pods: 127.0.0.3 appeared in A twamp.mesh.test'), log.lines.join('\n'));
      assert.ok(log.lines.some((l) => l.startsWith(`info mesh: started mesh/t/127.0.0.1->127.0.0.3 (to 127.0.0.3:${port})`)), log.lines.join('\n'));
      await until('a session to 127.0.0.3', () => agent.senders.every((s) => s.lastOutcome?.ok === true));
      let text = await agent.prometheus!.render();
      assert.match(text, /^twamp_tx_packets\{[^}]*dst="127\.0\.0\.3"[^}]*\} 5$/m);
      assert.match(text, /^twamp_tx_packets\{[^}]*dst_site="lab"[^}]*\} 5$/m);
      assert.match(text, /^twamp_mesh_members\{[^}]*\} 3$/m);

      // The server fails: nothing stops, the failure is logged once and counted at every try.
      dns.failing.set('twamp.mesh.test', 'servfail');
      await until('two failed resolutions', () => agent.meshDnsErrors >= 2, 5_000);
      assert.equal(log.lines.filter((l) => l.startsWith('error mesh: cannot resolve A twamp.mesh.test')).length, 1, log.lines.join('\n'));
      assert.ok(log.lines.some((l) => /^error mesh: cannot resolve A twamp\.mesh\.test \(member set "pods"\): the server failed \(SERVFAIL\); keeping the 3 member\(s\) of the last answer$/.test(l)));
      assert.equal(ids(), 'mesh/t/127.0.0.1->127.0.0.2,mesh/t/127.0.0.1->127.0.0.3');
      text = await agent.prometheus!.render();
      assert.match(text, /^twamp_mesh_dns_errors_total\{[^}]*\} [1-9]\d*$/m);
      dns.failing.delete('twamp.mesh.test');

      // A record vanishes: only its sender stops, and its series go (grace 0 here).
      dns.set('twamp.mesh.test', { A: ['127.0.0.1', '127.0.0.3'] });
      await until('the sender to 127.0.0.2 to stop', () => ids() === 'mesh/t/127.0.0.1->127.0.0.3', 5_000);
      assert.ok(log.lines.includes('info mesh: member set pods: 127.0.0.2 vanished from A twamp.mesh.test'), log.lines.join('\n'));
      assert.ok(log.lines.includes('info mesh: stopped mesh/t/127.0.0.1->127.0.0.2'), log.lines.join('\n'));
      assert.ok(log.lines.includes('info mesh: A twamp.mesh.test resolves again'), log.lines.join('\n'));
      text = await agent.prometheus!.render();
      assert.doesNotMatch(text, /dst="127\.0\.0\.2"/);
      assert.match(text, /^twamp_mesh_members\{[^}]*\} 2$/m);
      // An unchanged answer applies nothing: one generation per change (first, +127.0.0.3, -127.0.0.2).
      await sleep(600);
      assert.equal(log.lines.filter((l) => l.includes('mesh: generation')).length, 3, log.lines.join('\n'));

      // This agent's own record vanishes: it is no longer a member and runs nothing of the mesh, reflector included.
      dns.set('twamp.mesh.test', { A: ['127.0.0.3'] });
      await until('this agent to stop its mesh collectors', () => ids() === '' && agent.reflectors.length === 0, 5_000);
      assert.ok(log.lines.some((l) => /^warn mesh: this agent is not a member of generation 4, it runs none of its collectors: mesh\.self: "127\.0\.0\.1" is not a member/.test(l)), log.lines.join('\n'));
      assert.ok(log.lines.includes('info mesh: stopped mesh/reflector'), log.lines.join('\n'));
      // Back in: it starts again.
      dns.set('twamp.mesh.test', { A: ['127.0.0.1', '127.0.0.3'] });
      await until('this agent to run its part again', () => ids() === 'mesh/t/127.0.0.1->127.0.0.3' && agent.reflectors.length === 1, 5_000);
    } finally {
      await agent.stop();
      for (const r of peers) await r.stop();
      await dns.close();
    }
  });

  it('SRV: each member at the port of its record; a target with a new port restarts only its sender; --check prints the set', async () => {
    const dns = await startDnsServer();
    const [pa, pb, pb2] = [await freePort(), await freePort(), await freePort()];
    const dir = mkdtempSync(join(tmpdir(), 'otel-twamp-mesh-srv-'));
    writeFileSync(join(dir, 'mesh.yaml'), `tests:
  t: {model: g711, n_packets: 5, interval: 1, reply_timeout: 0.5}
members:
  - {name: pods, dns: _twamp-control._tcp.mesh.test, type: SRV, listen: 127.0.0.1, interval: 0.2}
groups:
  - {type: mesh, members: [pods], test: t}
`);
    // Both targets are 127.0.0.1: this agent is told its member name (by address it would be ambiguous).
    const agentText = `$version: "1.0"
mesh: { source: mesh.yaml, self: a.mesh.test, interval: 60, dns_servers: ["${dns.address}"] }
`;
    dns.set('_twamp-control._tcp.mesh.test', { SRV: [{ port: pa, target: 'a.mesh.test' }, { port: pb, target: 'b.mesh.test' }] });
    dns.set('a.mesh.test', { A: ['127.0.0.1'] });
    dns.set('b.mesh.test', { A: ['127.0.0.1'] });
    const peers: TwampReflector[] = [];
    for (const port of [pb, pb2]) {
      const r = new TwampReflector(parseReflectorConfig({ id: `peer-${port}`, listen: '127.0.0.1', port }), { logger: silentLogger });
      await r.start();
      peers.push(r);
    }
    const config = parseAgentConfig(agentText, join(dir, 'agent.yaml'), {});
    const check = await describeMeshCheck(config);
    assert.match(check, /^ {2}member set pods: SRV _twamp-control\._tcp\.mesh\.test → 2 member\(s\): a\.mesh\.test, b\.mesh\.test \(every 0\.2 s\)$/m, check);
    assert.match(check, new RegExp(`^ {2}reflector mesh/reflector on 127\\.0\\.0\\.1:${pa}$`, 'm'), check);
    assert.match(check, new RegExp(`^ {2}sender mesh/t/a\\.mesh\\.test->b\\.mesh\\.test to 127\\.0\\.0\\.1:${pb} `, 'm'), check);
    const log = recordingLogger();
    const agent = new Agent(config, { logger: log, env: {}, staleGraceMs: 0 });
    try {
      await agent.start();
      assert.deepEqual(agent.senders.map((s) => [s.config.id, s.config.port]), [['mesh/t/a.mesh.test->b.mesh.test', pb]]);
      assert.equal(agent.reflectors[0]!.address?.port, pa, 'the mesh reflector listens on its own record\'s port');
      await until('a session to b', () => agent.senders[0]?.lastOutcome?.ok === true);
      dns.set('_twamp-control._tcp.mesh.test', { SRV: [{ port: pa, target: 'a.mesh.test' }, { port: pb2, target: 'b.mesh.test' }] });
      await until('the sender to move to the new port', () => agent.senders[0]?.config.port === pb2, 5_000);
      assert.ok(log.lines.includes(`info mesh: member set pods: b.mesh.test changed in SRV _twamp-control._tcp.mesh.test (127.0.0.1:${pb2})`), log.lines.join('\n'));
      assert.ok(log.lines.includes('info mesh: restarted mesh/t/a.mesh.test->b.mesh.test (its settings changed)'), log.lines.join('\n'));
      await until('a session at the new port', () => agent.senders[0]?.lastOutcome?.ok === true);
    } finally {
      await agent.stop();
      for (const r of peers) await r.stop();
      await dns.close();
    }
  });
});
