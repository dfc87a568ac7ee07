// Reflector limit helpers: CIDR parsing, the client ACL, the packet
// rate limiter and the rate-limited log; and the config keys that feed them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimiter, RateLimitedLog, TokenBucket } from '../../src/session/limits.js';
import { parseCidr, formatCidr, ClientAcl } from '../../src/util/net.js';
import type { ReflectorConfig } from '../../src/config/index.js';
import { agentWith, issueAt, parse, parseError } from '../config/helpers.js';

describe('CIDR and client ACL', () => {
  it('parses IPv4/IPv6 networks and bare addresses; rejects the rest', () => {
    assert.equal(formatCidr(parseCidr('10.0.0.0/8')!), '10.0.0.0/8');
    assert.equal(formatCidr(parseCidr('192.0.2.7')!), '192.0.2.7/32');
    assert.equal(formatCidr(parseCidr('2001:db8::/32')!), '2001:db8::/32');
    assert.equal(formatCidr(parseCidr('::1')!), '::1/128');
    assert.equal(formatCidr(parseCidr('::ffff:10.1.2.3/32')!), '10.1.2.3/32');
    for (const bad of ['', '10.0.0.0/33', '2001:db8::/129', 'example.com', '10.0.0/8', '10.0.0.0/-1', '1.2.3.4/8/9']) {
      assert.equal(parseCidr(bad), undefined, bad);
    }
  });

  it('deny wins; an empty allow list allows all; IPv4-mapped addresses match IPv4 networks', () => {
    const open = new ClientAcl();
    assert.equal(open.active, false);
    assert.equal(open.check('203.0.113.1'), undefined);
    const acl = new ClientAcl([parseCidr('10.0.0.0/8')!, parseCidr('2001:db8::/32')!], [parseCidr('10.6.6.0/24')!]);
    assert.equal(acl.check('10.1.2.3'), undefined);
    assert.equal(acl.check('::ffff:10.1.2.3'), undefined);
    assert.equal(acl.check('10.6.6.6'), 'denied');
    assert.equal(acl.check('::ffff:10.6.6.6'), 'denied');
    assert.equal(acl.check('192.0.2.1'), 'not allowed');
    assert.equal(acl.check('2001:db8::1'), undefined);
    assert.equal(acl.check('2001:db9::1'), 'not allowed');
    assert.equal(acl.check('garbage'), 'not allowed');
    const denyOnly = new ClientAcl([], [parseCidr('0.0.0.0/0')!]);
    assert.equal(denyOnly.check('1.2.3.4'), 'denied');
    assert.equal(denyOnly.check('::1'), undefined, 'an IPv4 deny-all leaves IPv6 alone');
  });
});

describe('RateLimiter', () => {
  it('lets one second\'s worth through at once, then refills at the rate', () => {
    let now = 0;
    const r = new RateLimiter(100, () => now);
    let passed = 0;
    for (let i = 0; i < 300; i++) if (r.take()) passed++;
    assert.equal(passed, 100);
    now += 500;
    passed = 0;
    for (let i = 0; i < 300; i++) if (r.take()) passed++;
    assert.equal(passed, 50);
    now += 10_000; // never more than a second's worth banked
    passed = 0;
    for (let i = 0; i < 300; i++) if (r.take()) passed++;
    assert.equal(passed, 100);
  });

  it('a steady stream at the rate passes entirely', () => {
    let now = 0;
    const r = new RateLimiter(1000, () => now);
    let passed = 0;
    for (let i = 0; i < 5000; i++) { now += 1; if (r.take()) passed++; }
    assert.equal(passed, 5000);
  });
});

describe('TokenBucket (packets and octets)', () => {
  it('a packet passes only when both budgets allow it; each refills at its own rate, capped at one second', () => {
    const b = new TokenBucket(10, 1000, 0);
    let passed = 0;
    for (let i = 0; i < 20; i++) if (b.spend(300, 0)) passed++;
    assert.equal(passed, 3, 'the octet budget (1000/s) stops the fourth 300-octet packet');
    assert.equal(b.spend(100, 0), true, 'a smaller packet still fits the octets left');
    assert.equal(b.spend(1, 0), false, 'nothing left of the octets');
    passed = 0;
    for (let i = 0; i < 20; i++) if (b.spend(1, 10_000)) passed++;
    assert.equal(passed, 10, 'the packet budget (10/s) stops the eleventh, with octets to spare');
    assert.equal(b.spend(0, 10_099), false);
    assert.equal(b.spend(0, 10_100), true, 'one packet refilled after 100 ms');
  });

  it('full() tells when the bucket holds nothing worth keeping', () => {
    const b = new TokenBucket(10, 1000, 0);
    assert.equal(b.full(0), true);
    b.spend(500, 0);
    assert.equal(b.full(100), false, 'packets refilled, octets not yet');
    assert.equal(b.full(500), true);
    assert.equal(b.full(-5), false, 'time going backwards refills nothing');
  });
});

describe('RateLimitedLog', () => {
  it('one line per key per interval; the next line or flush() tells how many were held back', () => {
    let now = 0;
    const lines: string[] = [];
    const log = { debug: () => undefined, info: (m: string) => lines.push(`I ${m}`), warn: (m: string) => lines.push(`W ${m}`), error: () => undefined };
    const rl = new RateLimitedLog(log, 60_000, () => now);
    for (let i = 0; i < 10; i++) rl.line('acl', 'warn', `denied ${i}`);
    rl.line('timeout', 'info', 'slow');
    assert.deepEqual(lines, ['W denied 0', 'I slow']);
    now += 61_000;
    rl.line('acl', 'warn', 'denied again');
    assert.equal(lines[2], 'W denied again (9 more like this in the last 61 s not logged)');
    rl.line('acl', 'warn', 'once more');
    rl.flush();
    assert.equal(lines[3], 'W once more (1 more like this not logged)');
    rl.flush();
    assert.equal(lines.length, 4);
  });
});

describe('reflector limit keys', () => {
  it('defaults', () => {
    const d = parse(agentWith('- id: r\n  type: twamp_reflector')).collectors[0] as ReflectorConfig;
    assert.equal(d.maxConnections, 256);
    assert.equal(d.maxSessionsPerConnection, 16);
    assert.equal(d.maxSessionDurationMs, 3_600_000);
    assert.equal(d.maxPpsPerSession, 10_000);
    assert.equal(d.maxPps, 100_000);
    assert.equal(d.maxPadding, 9000);
    assert.deepEqual(d.allow, []);
    assert.deepEqual(d.deny, []);
    assert.equal(d.controlTimeoutMs, 30_000);
  });

  it('every key set; networks normalized; a single network may be given without a list', () => {
    const r = parse(agentWith(`
- id: r
  type: twamp_reflector
  max_connections: 10
  max_sessions_per_connection: 2
  max_session_duration: 60
  max_pps_per_session: 500
  max_pps: 2000
  max_padding: 1472
  allow: ["10.0.0.0/8", "2001:db8::/32", 192.0.2.1]
  deny: 10.6.0.0/16
  control_timeout: 5`)).collectors[0] as ReflectorConfig;
    assert.equal(r.maxConnections, 10);
    assert.equal(r.maxSessionsPerConnection, 2);
    assert.equal(r.maxSessionDurationMs, 60_000);
    assert.equal(r.maxPpsPerSession, 500);
    assert.equal(r.maxPps, 2000);
    assert.equal(r.maxPadding, 1472);
    // Parsed once at load into typed networks (the producers never parse them again).
    assert.deepEqual(r.allow, [
      { address: '10.0.0.0', prefix: 8, family: 4 },
      { address: '2001:db8::', prefix: 32, family: 6 },
      { address: '192.0.2.1', prefix: 32, family: 4 },
    ]);
    assert.deepEqual(r.deny, [{ address: '10.6.0.0', prefix: 16, family: 4 }]);
    assert.equal(r.controlTimeoutMs, 5000);
  });

  it('bad values name the key and the item', () => {
    const err = parseError(agentWith(`
- id: r
  type: twamp_reflector
  allow: ["10.0.0.0/8", "10.0.0.0/40"]
  max_connections: 0
  control_timeout: -1`));
    assert.match(issueAt(err, ['collectors', 0, 'allow', 1]).message, /expected an IPv4\/IPv6 network in CIDR notation, got "10\.0\.0\.0\/40"/);
    assert.match(issueAt(err, ['collectors', 0, 'max_connections']).message, /between 1 and 100000/);
    assert.match(issueAt(err, ['collectors', 0, 'control_timeout']).message, /seconds > 0/);
  });
});
