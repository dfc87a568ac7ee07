// The mesh definition (docs/configuration.md "Mesh"): schema errors naming
// file:line:col and key, the expansion of mesh/star/disjoint groups into what
// one member runs, and the deterministic, spread start offsets.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/config/errors.js';
import { meshPairs, parseMesh, pickSelf, planFor, staggerOffsetMs } from '../../src/config/mesh.js';
import { parse, parseError, issueAt } from './helpers.js';

const EXAMPLE = `tests:
  voice: {model: g711, n_packets: 50, interval: 10}
members:
  - {name: fra, address: 192.0.2.1, labels: {site: fra}}
  - {name: ams, address: 192.0.2.2}
groups:
  - {type: mesh, members: [fra, ams], test: voice}
`;

function meshError(text: string): ConfigError {
  try {
    parseMesh(text, 'mesh.yaml');
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e;
  }
  assert.fail('expected a ConfigError');
}

function members(n: number, labels = (i: number) => `{site: s${i}}`): string {
  return Array.from({ length: n }, (_, i) => `  - {name: m${i}, address: 192.0.2.${i + 1}, labels: ${labels(i)}}`).join('\n');
}

describe('mesh definition: schema', () => {
  it('the documented example parses as written', () => {
    const m = parseMesh(EXAMPLE, 'mesh.yaml');
    assert.deepEqual(m.members.map((x) => [x.name, x.address, x.port]), [['fra', '192.0.2.1', 862], ['ams', '192.0.2.2', 862]]);
    assert.equal(m.tests.voice!.nPackets, 50);
    assert.equal(m.tests.voice!.interval, 10);
    assert.deepEqual(m.tests.voice!.model, { model: 'g711' });
  });

  it('the same as JSON', () => {
    const m = parseMesh(JSON.stringify({
      tests: { voice: { model: 'g711', n_packets: 50, interval: 10 } },
      members: [{ name: 'fra', address: '192.0.2.1' }, { name: 'ams', address: 'ams.example.net' }],
      groups: [{ type: 'mesh', members: ['fra', 'ams'], test: 'voice' }],
    }), 'mesh.json');
    assert.equal(m.members[1]!.address, 'ams.example.net');
  });

  it('unknown members and tests are named, with file:line:col and a suggestion', () => {
    const e = meshError(EXAMPLE.replace('[fra, ams], test: voice', '[fra, amz], test: voise'));
    assert.equal(issueAt(e, ['groups', 0, 'members', 1]).message, 'unknown member "amz" (did you mean "ams"?); members: fra, ams');
    assert.match(e.message, /^mesh\.yaml:7:33: groups\[0\]\.members\[1\]: unknown member "amz"/m);
    assert.match(issueAt(e, ['groups', 0, 'test']).message, /^unknown test "voise" \(did you mean "voice"\?\); tests: voice$/);
    assert.match(e.message, /^mesh\.yaml:7:\d+: groups\[0\]\.test: /m);
  });

  it('duplicate member names are errors naming the first one', () => {
    const e = meshError(EXAMPLE.replace('  - {name: ams', '  - {name: fra, address: 192.0.2.9}\n  - {name: ams'));
    assert.match(issueAt(e, ['members', 1, 'name']).message, /^duplicate member name "fra": already members\[0\] \(line 4\)$/);
    assert.match(e.message, /^mesh\.yaml:5:\d+: members\[1\]\.name: /m);
  });

  it('test templates are twamp_sender keys, checked by the sender schema; id/reflector/port are not', () => {
    let e = meshError(EXAMPLE.replace('n_packets: 50', 'n_packets: abc'));
    assert.match(issueAt(e, ['tests', 'voice', 'n_packets']).message, /^expected an integer between 1 and 10000000, got "abc"$/);
    assert.match(e.message, /^mesh\.yaml:2:\d+: tests\.voice\.n_packets: /m);
    e = meshError(EXAMPLE.replace('n_packets: 50', 'n_packet: 50'));
    assert.match(issueAt(e, ['tests', 'voice', 'n_packet']).message, /did you mean "n_packets"/);
    e = meshError(EXAMPLE.replace('interval: 10}', 'interval: 10, reflector: 192.0.2.9, port: 9}'));
    assert.match(issueAt(e, ['tests', 'voice', 'reflector']).message, /the targets are the members/);
    assert.match(issueAt(e, ['tests', 'voice', 'port']).message, /target member's port/);
    e = meshError(EXAMPLE.replace('model: g711', 'model: cbr'));
    assert.match(issueAt(e, ['tests', 'voice', 'bandwidth']).message, /required/);
    e = meshError(EXAMPLE.replace('interval: 10}', 'interval: 10, mode: authenticated}'));
    assert.match(issueAt(e, ['tests', 'voice', 'key_id']).message, /required when mode includes "authenticated"/);
    // Sender keys other than id/reflector/port pass: dscp, mode list, format with control: false.
    const ok = parseMesh(EXAMPLE.replace('interval: 10}', 'interval: 10, dscp: ef, mode: [open]}'), 'mesh.yaml');
    assert.equal(ok.tests.voice!.dscp, 46);
  });

  it('groups: the type is one of mesh, star, disjoint with their keys', () => {
    let e = meshError(EXAMPLE.replace('type: mesh', 'type: ring'));
    assert.match(issueAt(e, ['groups', 0, 'type']).message, /unsupported group type "ring"; supported types: "mesh", "star", "disjoint"/);
    e = meshError(EXAMPLE.replace('{type: mesh, members: [fra, ams], test: voice}', '{type: star, probes: [fra], test: voice}'));
    assert.match(issueAt(e, ['groups', 0, 'reflectors']).message, /^required key is missing/);
    e = meshError(EXAMPLE.replace('members: [fra, ams]', 'members: []'));
    assert.match(issueAt(e, ['groups', 0, 'members']).message, /non-empty list/);
  });

  it('members: address is an IP or a host name; unknown keys are errors', () => {
    let e = meshError(EXAMPLE.replace('address: 192.0.2.2', 'address: "not an address"'));
    assert.match(issueAt(e, ['members', 1, 'address']).message, /expected an IPv4\/IPv6 address or a host name/);
    e = meshError(EXAMPLE.replace('address: 192.0.2.2', 'adress: 192.0.2.2'));
    assert.match(issueAt(e, ['members', 1, 'adress']).message, /did you mean "address"/);
  });

  it('a light test needs light_port on its target members', () => {
    const text = EXAMPLE.replace('interval: 10}', 'interval: 10, control: false}');
    const e = meshError(text);
    assert.match(issueAt(e, ['groups', 0, 'test']).message, /control: false, but target members "fra", "ams" have no light_port/);
    const ok = parseMesh(text.replace(/address: (192\.0\.2\.\d)/g, 'address: $1, light_port: 8620'), 'mesh.yaml');
    const plan = planFor(ok, 'fra');
    assert.equal(plan.senders[0]!.port, 8620);
    assert.equal(plan.reflector?.lightPort, 8620);
  });
});

describe('mesh definition: expansion', () => {
  it('full mesh: N-1 senders per node with src/dst and prefixed member labels (legacy)', () => {
    const m = parseMesh(`tests: {voice: {model: g711, n_packets: 10, interval: 60, labels: {service: voip}}}
members:
${members(5)}
groups: [{type: mesh, members: [m0, m1, m2, m3, m4], test: voice}]
`, 'mesh.yaml');
    assert.equal(meshPairs(m).length, 20);
    for (const self of ['m0', 'm3']) {
      const plan = planFor(m, self);
      assert.equal(plan.senders.length, 4);
      assert.ok(plan.reflector, 'every member of a full mesh is a target');
      for (const s of plan.senders) {
        const dst = s.labels.dst!;
        assert.notEqual(dst, self);
        assert.equal(s.id, `mesh/voice/${self}->${dst}`);
        assert.equal(s.reflector, `192.0.2.${Number(dst.slice(1)) + 1}`);
        assert.deepEqual(s.labels, {
          service: 'voip', src: self, dst, mesh_test: 'voice', src_site: `s${self.slice(1)}`, dst_site: `s${dst.slice(1)}`,
        });
      }
    }
  });

  it('otel profile: twamp.mesh.* attributes', () => {
    const plan = planFor(parseMesh(EXAMPLE, 'mesh.yaml'), 'fra', { naming: 'otel' });
    assert.deepEqual(plan.senders[0]!.labels, {
      'twamp.mesh.src': 'fra', 'twamp.mesh.dst': 'ams', 'twamp.mesh.test': 'voice', 'twamp.mesh.src.site': 'fra',
    });
  });

  it('star: probes send to reflectors; only reflectors run a reflector', () => {
    const m = parseMesh(`tests: {t: {model: g729, n_packets: 5}}
members:
${members(4)}
groups: [{type: star, probes: [m0, m1], reflectors: [m2, m3], test: t}]
`, 'mesh.yaml');
    const p0 = planFor(m, 'm0');
    assert.deepEqual(p0.senders.map((s) => s.id), ['mesh/t/m0->m2', 'mesh/t/m0->m3']);
    assert.equal(p0.reflector, undefined, 'a probe is no target');
    const p2 = planFor(m, 'm2');
    assert.deepEqual(p2.senders, []);
    assert.equal(p2.reflector?.id, 'mesh/reflector');
    assert.equal(p2.reflector?.port, 862);
  });

  it('disjoint: a to b only, never back; a member in both does not test itself', () => {
    const m = parseMesh(`tests: {t: {model: g711, n_packets: 5}}
members:
${members(3)}
groups: [{type: disjoint, a: [m0, m1], b: [m1, m2], test: t}]
`, 'mesh.yaml');
    assert.deepEqual(meshPairs(m).map((p) => `${p.src}->${p.dst}`), ['m0->m1', 'm0->m2', 'm1->m2']);
    assert.deepEqual(planFor(m, 'm2').senders, []);
    assert.ok(planFor(m, 'm2').reflector);
    assert.equal(planFor(m, 'm0').reflector, undefined);
  });

  it('a pair named by two groups with the same test is one sender; another test is another sender', () => {
    const m = parseMesh(`tests: {a: {model: g711, n_packets: 5}, b: {model: g729, n_packets: 5}}
members:
${members(2)}
groups:
  - {type: mesh, members: [m0, m1], test: a}
  - {type: disjoint, a: [m0], b: [m1], test: a}
  - {type: disjoint, a: [m0], b: [m1], test: b}
`, 'mesh.yaml');
    assert.deepEqual(planFor(m, 'm0').senders.map((s) => s.id), ['mesh/a/m0->m1', 'mesh/b/m0->m1']);
  });

  it('member port and listen go to the senders and the reflector', () => {
    const m = parseMesh(EXAMPLE.replace('address: 192.0.2.2}', 'address: 192.0.2.2, port: 8620, listen: 192.0.2.2}'), 'mesh.yaml');
    assert.equal(planFor(m, 'fra').senders[0]!.port, 8620);
    assert.equal(planFor(m, 'ams').reflector?.listen, '192.0.2.2');
    assert.equal(planFor(m, 'ams').reflector?.port, 8620);
  });

  it('stagger: deterministic per pair, within the interval, spread over it', () => {
    const m = parseMesh(`tests: {t: {model: g711, n_packets: 5, interval: 60}}
members:
${members(50)}
groups: [{type: mesh, members: [${Array.from({ length: 50 }, (_, i) => `m${i}`).join(', ')}], test: t}]
`, 'mesh.yaml');
    const offsets: number[] = [];
    for (const self of m.members.map((x) => x.name)) {
      const plan = planFor(m, self);
      assert.equal(plan.senders.length, 49);
      assert.deepEqual(planFor(m, self).senders.map((s) => s.startOffsetMs), plan.senders.map((s) => s.startOffsetMs), 'same plan twice');
      for (const s of plan.senders) {
        assert.equal(s.startOffsetMs, staggerOffsetMs(s.id, 60_000));
        offsets.push(s.startOffsetMs!);
      }
    }
    assert.ok(offsets.every((o) => o >= 0 && o < 60_000));
    // 2450 senders over 60 one-second slots: each slot holds about 41; a burst would put them in few slots.
    const perSecond = new Array<number>(60).fill(0);
    for (const o of offsets) perSecond[Math.floor(o / 1000)]!++;
    assert.ok(Math.max(...perSecond) < 80, `busiest second holds ${Math.max(...perSecond)}`);
    assert.ok(Math.min(...perSecond) > 15, `quietest second holds ${Math.min(...perSecond)}`);
    assert.notEqual(staggerOffsetMs('mesh/t/m0->m1', 60_000), staggerOffsetMs('mesh/t/m1->m0', 60_000), 'each direction has its own');
  });

  it('self: named, by host name, or by a local address', () => {
    const m = parseMesh(EXAMPLE, 'mesh.yaml');
    assert.equal(pickSelf(m, { self: 'ams', host: 'x', localAddresses: [] }), 'ams');
    assert.throws(() => pickSelf(m, { self: 'amz', host: 'x', localAddresses: [] }), /mesh\.self: "amz" is not a member of mesh\.yaml \(did you mean "ams"\?\)/);
    assert.equal(pickSelf(m, { host: 'fra', localAddresses: [] }), 'fra');
    assert.equal(pickSelf(m, { host: 'x', localAddresses: ['127.0.0.1', '192.0.2.2'] }), 'ams');
    assert.throws(() => pickSelf(m, { host: 'x', localAddresses: ['127.0.0.1'] }), /none has a local address: set mesh\.self/);
    assert.throws(() => pickSelf(m, { host: 'x', localAddresses: ['192.0.2.1', '192.0.2.2'] }), /several members .* set mesh\.self/);
  });
});

describe('agent file: mesh section', () => {
  it('mesh: instead of collectors; the source resolves beside the agent file; interval defaults to 60 s', () => {
    const cfg = parse('$version: "1.0"\nmesh: {source: mesh.yaml, self: fra}\n', '/etc/otel-twamp/agent.yaml');
    assert.deepEqual(cfg.mesh, { source: '/etc/otel-twamp/mesh.yaml', self: 'fra', intervalMs: 60_000 });
    assert.deepEqual(cfg.collectors, []);
    assert.equal(parse('$version: "1.0"\nmesh: {source: "https://x.example/mesh.yaml", interval: 5}\ncollectors: []\n').mesh?.source, 'https://x.example/mesh.yaml');
  });

  it('errors name the key', () => {
    assert.match(issueAt(parseError('$version: "1.0"\nmesh: {sourc: m.yaml}\n'), ['mesh', 'sourc']).message, /did you mean "source"/);
    assert.match(issueAt(parseError('$version: "1.0"\nmesh: {source: m.yaml, interval: 0}\n'), ['mesh', 'interval']).message, /number of seconds > 0/);
    assert.match(issueAt(parseError('$version: "1.0"\n'), ['collectors']).message, /^required key is missing .*or a mesh section/);
  });
});
