// Member sets from DNS in a mesh definition (docs/configuration.md "Mesh",
// "Members from DNS"): the schema of a set, the pure expansion of what DNS
// answered into members and groups, and `self` matching a member's address.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/config/errors.js';
import { meshPairs, parseMesh, pickSelf, planFor, withDnsMembers } from '../../src/config/mesh.js';

const base = (members: string, groups = '  - {type: mesh, members: [pods], test: voice}') => `tests:
  voice: {model: g711, n_packets: 50, interval: 10}
members:
${members}
groups:
${groups}
`;

function errorOf(text: string): string {
  try {
    parseMesh(text, 'mesh.yaml');
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.message;
  }
  assert.fail('expected a ConfigError');
}

describe('mesh definition: member sets from DNS', () => {
  it('a set is a member entry with dns (A by default, port 862, interval 30 s); groups may name it', () => {
    const mesh = parseMesh(base('  - {name: pods, dns: twamp.monitoring.svc.cluster.local., labels: {site: k8s}}'), 'mesh.yaml');
    assert.deepEqual(mesh.members, []);
    assert.deepEqual(mesh.memberSets, [{
      name: 'pods', dns: 'twamp.monitoring.svc.cluster.local', type: 'A', port: 862, listen: '0.0.0.0', labels: { site: 'k8s' }, intervalMs: 30_000,
    }]);
    assert.deepEqual(mesh.setMembers, { pods: [] });
    // Before DNS answers, the set has no members and nobody measures anybody.
    assert.deepEqual(meshPairs(mesh), []);
  });

  it('SRV owner names with underscores; SRV sets take ports from the records', () => {
    const mesh = parseMesh(base('  - {name: pods, dns: _twamp-control._tcp.twamp.svc, type: SRV, interval: 0.5}'), 'mesh.yaml');
    assert.equal(mesh.memberSets[0]!.type, 'SRV');
    assert.equal(mesh.memberSets[0]!.intervalMs, 500);
    assert.match(errorOf(base('  - {name: pods, dns: _twamp._tcp.svc, type: SRV, port: 862}')),
      /mesh\.yaml:4:\d+: members\[0\]\.port: an SRV member set takes each member's port from its record; leave port out/);
  });

  it('errors name the key: bad names, types, intervals, unknown keys, a set name used twice', () => {
    assert.match(errorOf(base('  - {name: pods, dns: "not a name"}')), /members\[0\]\.dns: expected a DNS name/);
    assert.match(errorOf(base('  - {name: pods, dns: a.example, type: MX}')), /members\[0\]\.type: expected one of "A", "AAAA", "SRV"/);
    assert.match(errorOf(base('  - {name: pods, dns: a.example, interval: 0}')), /members\[0\]\.interval: expected a number of seconds > 0/);
    assert.match(errorOf(base('  - {name: pods, dns: a.example, address: 192.0.2.1}')), /members\[0\]\.address: not supported: a member set from DNS has no address: its members are what DNS answers/);
    assert.match(errorOf(base('  - {name: pods, dns: a.example}\n  - {name: pods, address: 192.0.2.1}')),
      /members\[1\]\.name: duplicate member name "pods": already members\[0\]/);
    assert.match(errorOf(base('  - {name: pods, dns: a.example}', '  - {type: mesh, members: [pod], test: voice}')),
      /groups\[0\]\.members\[0\]: unknown member "pod" \(did you mean "pods"\?\)/);
  });

  it('a light test needs light_port on a target set too', () => {
    const text = `tests:
  l: {model: g711, n_packets: 5, control: false}
members:
  - {name: pods, dns: a.example}
groups:
  - {type: mesh, members: [pods], test: l}
`;
    assert.match(errorOf(text), /test "l" has control: false, but target member "pods" has no light_port/);
    assert.doesNotThrow(() => parseMesh(text.replace('dns: a.example', 'dns: a.example, light_port: 4000'), 'mesh.yaml'));
  });

  it('expansion: A members are named by address; groups naming the set mean its members; labels and ports from the set', () => {
    const mesh = parseMesh(base(`  - {name: fra, address: 192.0.2.1, labels: {site: fra}}
  - {name: pods, dns: twamp.svc, port: 8620, listen: 0.0.0.0, labels: {site: k8s}}`, '  - {type: mesh, members: [fra, pods], test: voice}'), 'mesh.yaml');
    const now = withDnsMembers(mesh, { pods: [{ name: '10.0.0.6', address: '10.0.0.6' }, { name: '10.0.0.5', address: '10.0.0.5' }] });
    assert.deepEqual(now.members.map((m) => [m.name, m.address, m.port, m.labels.site]), [
      ['fra', '192.0.2.1', 862, 'fra'], ['10.0.0.5', '10.0.0.5', 8620, 'k8s'], ['10.0.0.6', '10.0.0.6', 8620, 'k8s'],
    ]);
    assert.deepEqual(now.setMembers, { pods: ['10.0.0.5', '10.0.0.6'] });
    assert.deepEqual(meshPairs(now).map((p) => `${p.src}->${p.dst}`).sort(), [
      '10.0.0.5->10.0.0.6', '10.0.0.5->fra', '10.0.0.6->10.0.0.5', '10.0.0.6->fra', 'fra->10.0.0.5', 'fra->10.0.0.6',
    ]);
    const plan = planFor(now, '10.0.0.5');
    assert.deepEqual(plan.senders.map((s) => [s.id, s.reflector, s.port, s.labels.src, s.labels.dst, s.labels.dst_site]), [
      ['mesh/voice/10.0.0.5->10.0.0.6', '10.0.0.6', 8620, '10.0.0.5', '10.0.0.6', 'k8s'],
      ['mesh/voice/10.0.0.5->fra', '192.0.2.1', 862, '10.0.0.5', 'fra', 'fra'],
    ]);
    assert.deepEqual([plan.reflector?.listen, plan.reflector?.port], ['0.0.0.0', 8620]);
    // Deterministic: the same answer in another order gives the same plan (and stagger offsets).
    const again = withDnsMembers(mesh, { pods: [{ name: '10.0.0.5', address: '10.0.0.5' }, { name: '10.0.0.6', address: '10.0.0.6' }] });
    assert.deepEqual(planFor(again, '10.0.0.5'), plan);
    // A member that vanished leaves every pair it was in; the others are unchanged.
    const less = withDnsMembers(now, { pods: [{ name: '10.0.0.5', address: '10.0.0.5' }] });
    assert.deepEqual(less.members.map((m) => m.name), ['fra', '10.0.0.5']);
    assert.deepEqual(planFor(less, '10.0.0.5').senders.map((s) => s.id), ['mesh/voice/10.0.0.5->fra']);
    assert.deepEqual(planFor(less, '10.0.0.5').senders[0], plan.senders[1]);
  });

  it('expansion: SRV members carry the record port; a name already a member stays that member and joins the set', () => {
    const mesh = parseMesh(base(`  - {name: 10.0.0.9, address: 10.0.0.9, port: 1234}
  - {name: pods, dns: _t._tcp.svc, type: SRV}
  - {name: more, dns: more.svc}`, '  - {type: star, probes: [pods], reflectors: [more], test: voice}'), 'mesh.yaml');
    const now = withDnsMembers(mesh, {
      pods: [{ name: 'a.svc', address: '10.0.0.1', port: 9001 }, { name: 'b.svc', address: '10.0.0.2', port: 9002 }],
      more: [{ name: '10.0.0.9', address: '10.0.0.9' }, { name: 'a.svc', address: '10.0.0.1' }],
    });
    assert.deepEqual(now.members.map((m) => [m.name, m.port, m.dynamic]), [
      ['10.0.0.9', 1234, undefined], ['a.svc', 9001, 'pods'], ['b.svc', 9002, 'pods'],
    ]);
    assert.deepEqual(now.setMembers, { pods: ['a.svc', 'b.svc'], more: ['10.0.0.9', 'a.svc'] });
    assert.deepEqual(meshPairs(now).map((p) => `${p.src}->${p.dst}`), ['a.svc->10.0.0.9', 'b.svc->10.0.0.9', 'b.svc->a.svc']);
    assert.deepEqual(planFor(now, 'b.svc').senders.map((s) => `${s.reflector}:${s.port}`), ['10.0.0.9:1234', '10.0.0.1:9001']);
  });

  it('expansion: an address already a member is that member, not a second one that would measure it', () => {
    const mesh = parseMesh(base(`  - {name: fra, address: 10.0.0.5}
  - {name: pods, dns: twamp.svc}`, '  - {type: mesh, members: [fra, pods], test: voice}'), 'mesh.yaml');
    const now = withDnsMembers(mesh, { pods: [{ name: '10.0.0.5', address: '10.0.0.5' }, { name: '10.0.0.6', address: '10.0.0.6' }] });
    assert.deepEqual(now.members.map((m) => m.name), ['fra', '10.0.0.6']);
    assert.deepEqual(now.setMembers, { pods: ['fra', '10.0.0.6'] });
    assert.deepEqual(meshPairs(now).map((p) => `${p.src}->${p.dst}`), ['fra->10.0.0.6', '10.0.0.6->fra']);
    assert.equal(pickSelf(now, { host: 'x', localAddresses: ['10.0.0.5'] }), 'fra');
  });

  it('self: a member name, or the address of one member (e.g. the pod IP); a set name is not a member', () => {
    const mesh = withDnsMembers(parseMesh(base('  - {name: pods, dns: twamp.svc}'), 'mesh.yaml'), {
      pods: [{ name: '10.0.0.5', address: '10.0.0.5' }, { name: '10.0.0.6', address: '10.0.0.6' }],
    });
    assert.equal(pickSelf(mesh, { self: '10.0.0.6', host: 'pod-b', localAddresses: [] }), '10.0.0.6');
    assert.equal(pickSelf(mesh, { host: 'pod-b', localAddresses: ['127.0.0.1', '10.0.0.6'] }), '10.0.0.6');
    assert.throws(() => pickSelf(mesh, { self: 'pods', host: 'pod-b', localAddresses: [] }), /"pods" is a member set from DNS in mesh\.yaml, not a member/);
    const srv = withDnsMembers(parseMesh(base('  - {name: pods, dns: _t._tcp.svc, type: SRV}'), 'mesh.yaml'), {
      pods: [{ name: 'pod-a.twamp.svc', address: '10.0.0.5', port: 862 }],
    });
    assert.equal(pickSelf(srv, { self: '10.0.0.5', host: 'x', localAddresses: [] }), 'pod-a.twamp.svc');
    assert.equal(pickSelf(srv, { host: 'x', localAddresses: ['10.0.0.5'] }), 'pod-a.twamp.svc');
  });
});
