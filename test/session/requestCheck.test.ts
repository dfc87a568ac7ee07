// The pure Request-TW-Session check (src/session/requestCheck.ts): every
// refusal with its Accept value (RFC 4656 §3.3), counted reason and message,
// the addresses an accepted request binds and replies to, and a property over
// arbitrary decodable requests and policies: it never throws, and an accepted
// request never aims replies at a third party, a low port or a non-unicast
// address the policy does not allow (README "Security").
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Accept, Mode, RequestTwSession, DecodeError, Command } from '../../src/protocol/index.js';
import { checkRequest, type RequestPolicy, type RequestVerdict } from '../../src/session/requestCheck.js';
import { replyTargetProblem } from '../../src/session/address.js';
import { ClientAcl, parseCidr } from '../../src/util/net.js';
import { check } from '../helpers/fuzz.js';

const policy = (over: Partial<RequestPolicy> = {}): RequestPolicy => ({
  features: Mode.UNAUTHENTICATED,
  controlLocal: '192.0.2.1', controlPeer: '192.0.2.7',
  maxPadding: 4096,
  connectionSessions: 0, maxSessionsPerConnection: 16,
  clientKey: '192.0.2.7', clientSessions: 0, maxSessionsPerClient: 8,
  activeSessions: 0, maxSessions: 100,
  allowThirdPartySender: false, aclCheck: () => undefined,
  allowReplyPorts: new Set(),
  ...over,
});

/** A request as the decoder returns it (encode then decode, so the fixture is a real wire message). */
const request = (over: Partial<RequestTwSession.RequestTwSessionInit> = {}): RequestTwSession.RequestTwSession =>
  RequestTwSession.decode(RequestTwSession.encode({
    ipvn: 4, senderPort: 40000, receiverPort: 40001, senderAddress: '0.0.0.0', receiverAddress: '0.0.0.0',
    paddingLength: 27, startTime: 0n, timeout: 0n, typeP: 0, ...over,
  }));

function refused(v: RequestVerdict, accept: number, reason: string, message: RegExp): void {
  assert.equal(v.ok, false, `expected a refusal, got ${JSON.stringify(v)}`);
  if (v.ok) return;
  assert.equal(v.accept, accept, v.message);
  assert.equal(v.reason, reason, v.message);
  assert.match(v.message, message);
}

describe('checkRequest: refusals', () => {
  const cases: [string, RequestTwSession.RequestTwSession, Partial<RequestPolicy>, number, string, RegExp][] = [
    ['Request-TW-Micro-Sessions', request({ command: Command.REQUEST_TW_MICRO_SESSIONS }), {},
      Accept.NOT_SUPPORTED, 'request', /command 11 not supported/],
    ['Conf-Sender set', request({ confSender: 1 }), {}, Accept.NOT_SUPPORTED, 'request', /Conf-Sender\/Conf-Receiver must be 0 .*got 1\/0/],
    ['Conf-Receiver set', request({ confReceiver: 1 }), {}, Accept.NOT_SUPPORTED, 'request', /got 0\/1/],
    ['schedule slots', request({ numberOfScheduleSlots: 3 }), {}, Accept.NOT_SUPPORTED, 'request', /Schedule Slots/],
    ['number of packets', request({ numberOfPackets: 3 }), {}, Accept.NOT_SUPPORTED, 'request', /Packets must be 0/],
    ['padding above max_padding', request({ paddingLength: 4097 }), {}, Accept.NOT_SUPPORTED, 'padding', /Padding Length 4097 exceeds max_padding 4096/],
    ['reflected padding a reply cannot carry (open: 27 octets of header growth)',
      request({ paddingLength: 40, lengthOfPaddingToReflect: 14 }), { features: Mode.UNAUTHENTICATED | Mode.REFLECT_OCTETS },
      Accept.NOT_SUPPORTED, 'padding', /Length of padding to reflect 14 exceeds the 13 octets/],
    ['reflected padding with RFC 7750 (44-octet reflector header)',
      request({ paddingLength: 40, lengthOfPaddingToReflect: 11 }),
      { features: Mode.UNAUTHENTICATED | Mode.REFLECT_OCTETS | Mode.DSCP_ECN_MONITORING },
      Accept.NOT_SUPPORTED, 'padding', /exceeds the 10 octets/],
    ['reflected padding with no room at all', request({ paddingLength: 0, lengthOfPaddingToReflect: 1 }),
      { features: Mode.UNAUTHENTICATED | Mode.REFLECT_OCTETS }, Accept.NOT_SUPPORTED, 'padding', /exceeds the 0 octets/],
    ['max_sessions_per_connection', request(), { connectionSessions: 16 },
      Accept.PERMANENT_RESOURCE_LIMITATION, 'session_limit', /16 sessions on this connection \(max_sessions_per_connection 16\)/],
    ['max_sessions_per_client', request(), { clientSessions: 8 },
      Accept.TEMPORARY_RESOURCE_LIMITATION, 'client_session_limit', /client 192\.0\.2\.7 holds 8 sessions/],
    ['max_sessions', request(), { activeSessions: 100 },
      Accept.TEMPORARY_RESOURCE_LIMITATION, 'session_limit', /session limit 100 reached/],
    ['IPVN 6 on an IPv4 connection', request({ ipvn: 6, senderAddress: '::', receiverAddress: '::' }), {},
      Accept.NOT_SUPPORTED, 'request', /address family mismatch \(IPVN 6/],
    ['third-party Sender Address, allow_third_party_sender off', request({ senderAddress: '198.51.100.9' }), {},
      Accept.NOT_SUPPORTED, 'sender_address', /Sender Address 198\.51\.100\.9 is not the control connection's 192\.0\.2\.7/],
    ['third-party Sender Address the ACL denies', request({ senderAddress: '198.51.100.9' }),
      { allowThirdPartySender: true, aclCheck: (a) => (a.startsWith('198.51.100.') ? 'deny 198.51.100.0/24' : undefined) },
      Accept.NOT_SUPPORTED, 'sender_address', /198\.51\.100\.9: network deny 198\.51\.100\.0\/24/],
    ['reply to a privileged port', request({ senderPort: 53 }), {},
      Accept.NOT_SUPPORTED, 'reply_port', /replies may not go to 192\.0\.2\.7:53: port 53 \(below 1024\) \(allow_reply_ports\)/],
    ['reply to port 0', request({ senderPort: 0 }), {}, Accept.NOT_SUPPORTED, 'reply_port', /192\.0\.2\.7:0: port 0$/],
    ['reply to a multicast address (third party allowed)', request({ senderAddress: '224.0.0.1' }), { allowThirdPartySender: true },
      Accept.NOT_SUPPORTED, 'sender_address', /multicast address 224\.0\.0\.1/],
    ['reply to the limited broadcast', request({ senderAddress: '255.255.255.255' }), { allowThirdPartySender: true },
      Accept.NOT_SUPPORTED, 'sender_address', /broadcast address/],
  ];
  for (const [name, req, over, accept, reason, message] of cases) {
    it(name, () => refused(checkRequest(req, policy(over)), accept, reason, message));
  }

  it('checks in order: the per-connection limit before the per-client and global ones', () => {
    refused(checkRequest(request(), policy({ connectionSessions: 16, clientSessions: 8, activeSessions: 100 })),
      Accept.PERMANENT_RESOURCE_LIMITATION, 'session_limit', /max_sessions_per_connection/);
    refused(checkRequest(request(), policy({ clientSessions: 8, activeSessions: 100 })),
      Accept.TEMPORARY_RESOURCE_LIMITATION, 'client_session_limit', /max_sessions_per_client/);
  });
});

describe('checkRequest: accepted requests', () => {
  it('zero addresses take the control connection\'s, IPv4-mapped forms unmapped', () => {
    const v = checkRequest(request(), policy({ controlLocal: '::ffff:192.0.2.1', controlPeer: '::ffff:192.0.2.7' }));
    assert.deepEqual(v, { ok: true, senderAddress: '192.0.2.7', receiverAddress: '192.0.2.1', family: 4, reflectOctets: false });
  });

  it('link-local addresses take the control connection\'s scope', () => {
    const v = checkRequest(request({ ipvn: 6, senderAddress: 'fe80::7', receiverAddress: 'fe80::1' }),
      policy({ controlLocal: 'fe80::1%eth0', controlPeer: 'fe80::7%eth0', clientKey: 'fe80::' }));
    assert.deepEqual(v, { ok: true, senderAddress: 'fe80::7%eth0', receiverAddress: 'fe80::1%eth0', family: 6, reflectOctets: false });
  });

  it('a third-party sender the ACL allows, with allow_third_party_sender on', () => {
    const acl = new ClientAcl([parseCidr('198.51.100.0/24')!], []);
    const v = checkRequest(request({ senderAddress: '198.51.100.9' }),
      policy({ allowThirdPartySender: true, aclCheck: (a) => acl.check(a) }));
    assert.equal(v.ok, true);
    assert.equal(v.ok && v.senderAddress, '198.51.100.9');
  });

  it('a low reply port listed in allow_reply_ports', () => {
    assert.equal(checkRequest(request({ senderPort: 862 }), policy({ allowReplyPorts: new Set([862]) })).ok, true);
  });

  it('RFC 6038 Reflect Octets: exactly the padding a reply can carry is accepted', () => {
    const v = checkRequest(request({ paddingLength: 40, lengthOfPaddingToReflect: 13 }),
      policy({ features: Mode.UNAUTHENTICATED | Mode.REFLECT_OCTETS }));
    assert.equal(v.ok && v.reflectOctets, true);
  });
});

describe('checkRequest: property over any decodable request and policy', () => {
  const ipv4 = fc.constantFrom('0.0.0.0', '192.0.2.7', '192.0.2.1', '198.51.100.9', '224.0.0.1', '255.255.255.255', '240.0.0.1', '127.0.0.1');
  const ipv6 = fc.constantFrom('::', 'fe80::7', '2001:db8::7', 'ff02::1', '::1', '::ffff:192.0.2.7');
  const control = fc.constantFrom(
    ['192.0.2.1', '192.0.2.7'], ['::ffff:192.0.2.1', '::ffff:192.0.2.7'], ['fe80::1%eth0', 'fe80::7%eth0'],
    ['2001:db8::1', '2001:db8::7'], ['', ''],
  );
  const policyArb = fc.record({
    features: fc.integer({ min: 0, max: 0x1ff }),
    securityMode: fc.constantFrom(undefined, 'open', 'authenticated', 'encrypted', 'mixed'),
    control,
    maxPadding: fc.integer({ min: 0, max: 65535 }),
    connectionSessions: fc.nat(20), clientSessions: fc.nat(20), activeSessions: fc.nat(200),
    allowThirdPartySender: fc.boolean(),
    denyAll: fc.boolean(),
    allowReplyPorts: fc.uniqueArray(fc.integer({ min: 0, max: 1023 }), { maxLength: 3 }),
  }).map((r): RequestPolicy => policy({
    features: r.features, securityMode: r.securityMode as RequestPolicy['securityMode'],
    controlLocal: r.control[0]!, controlPeer: r.control[1]!,
    maxPadding: r.maxPadding, connectionSessions: r.connectionSessions, clientSessions: r.clientSessions,
    activeSessions: r.activeSessions, allowThirdPartySender: r.allowThirdPartySender,
    aclCheck: (a) => (r.denyAll ? `deny all (${a})` : undefined), allowReplyPorts: new Set(r.allowReplyPorts),
  }));
  /** Raw 112 octets with the fields that matter drawn from interesting values; decode may refuse them. */
  const requestArb = fc.record({
    bytes: fc.uint8Array({ minLength: RequestTwSession.SIZE, maxLength: RequestTwSession.SIZE }),
    fields: fc.option(fc.record({
      ipvn: fc.constantFrom(4 as const, 6 as const),
      v4: fc.tuple(ipv4, ipv4), v6: fc.tuple(ipv6, ipv6),
      senderPort: fc.constantFrom(0, 7, 53, 862, 1023, 1024, 40000, 65535),
      paddingLength: fc.integer({ min: 0, max: 70000 }),
      lengthOfPaddingToReflect: fc.integer({ min: 0, max: 200 }),
      command: fc.constantFrom(Command.REQUEST_TW_SESSION, Command.REQUEST_TW_MICRO_SESSIONS),
    }), { nil: undefined }),
  }).map(({ bytes, fields }) => {
    if (fields === undefined) return Buffer.from(bytes);
    const [s, r] = fields.ipvn === 4 ? fields.v4 : fields.v6;
    return RequestTwSession.encode({
      command: fields.command, ipvn: fields.ipvn, senderPort: fields.senderPort, receiverPort: 40001,
      senderAddress: s, receiverAddress: r, paddingLength: fields.paddingLength, startTime: 0n, timeout: 0n, typeP: 0,
      lengthOfPaddingToReflect: fields.lengthOfPaddingToReflect,
    });
  });

  it('never throws; a refusal names its problem; an acceptance never aims replies where the policy forbids', () => {
    let accepted = 0;
    check(2000, fc.property(requestArb, policyArb, (bytes, p) => {
      let req: RequestTwSession.RequestTwSession;
      try { req = RequestTwSession.decode(bytes); } catch (e) { if (e instanceof DecodeError) return; throw e; }
      const v = checkRequest(req, p);
      if (!v.ok) {
        assert.ok([Accept.NOT_SUPPORTED, Accept.PERMANENT_RESOURCE_LIMITATION, Accept.TEMPORARY_RESOURCE_LIMITATION].includes(v.accept as 3));
        assert.ok(v.message.length > 0);
        return;
      }
      assert.equal(req.command, Command.REQUEST_TW_SESSION);
      assert.ok(req.paddingLength <= p.maxPadding);
      assert.ok(p.connectionSessions < p.maxSessionsPerConnection && p.clientSessions < p.maxSessionsPerClient &&
        p.activeSessions < p.maxSessions);
      assert.equal(v.family, req.ipvn);
      assert.equal(replyTargetProblem(v.senderAddress, req.senderPort, p.allowReplyPorts), undefined,
        `accepted replies to ${v.senderAddress}:${req.senderPort}`);
      const peer = p.controlPeer.replace(/^::ffff:/, '');
      if (v.senderAddress !== peer) {
        assert.ok(p.allowThirdPartySender, `third party ${v.senderAddress} accepted (peer ${peer})`);
        assert.equal(p.aclCheck(v.senderAddress), undefined);
      }
      accepted++;
    }));
    // The generators must reach acceptances, or the checks above prove nothing.
    assert.ok(accepted > 0, 'no request was accepted');
  });
});
