// The sender's TWAMP-Control client against scripted servers: every Accept
// field is checked, every wait is bounded, and Stop-Sessions is always sent
// once a session was accepted.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TwampSender } from '../../src/sender.js';
import { StopSessions, ntpIntervalFromNs } from '../../src/protocol/index.js';
import { startFakeServer, type FakeScript } from '../helpers/fakeServer.js';
import { freePort } from '../helpers/peers.js';
import { parseSenderConfig } from '../../src/config/index.js';

function sender(port: number, extra: Record<string, unknown> = {}) {
  return new TwampSender(parseSenderConfig({ id: 't', reflector: '127.0.0.1', port, n_packets: 5, model: 'g711', control_timeout: 0.5, reply_timeout: 0.3, ...extra }));
}

async function run(script: FakeScript, extra: Record<string, unknown> = {}) {
  const fake = await startFakeServer(script);
  try {
    const out = await sender(fake.port, extra).runOnce();
    return { out, fake };
  } finally {
    await fake.close();
  }
}

describe('sender control exchange', { timeout: 60_000 }, () => {
  it('Server-Start Accept ≠ 0: refused, with the Accept value explained', async () => {
    const { out } = await run({ serverStartAccept: 4 });
    assert.equal(out.ok ? '' : out.reason, 'refused');
    assert.match(out.ok ? '' : out.error.message, /reflector 127\.0\.0\.1:\d+: Server-Start refused the connection: Accept 4 \(cannot perform request due to permanent resource limitations\)/);
  });

  it('Accept-Session Accept ≠ 0: refused, naming the requested port', async () => {
    const { out } = await run({ acceptSession: { accept: 5, port: 0 } }, { reflector_port: 9447 });
    assert.equal(out.ok ? '' : out.reason, 'refused');
    assert.match(out.ok ? '' : out.error.message, /Request-TW-Session refused: Accept 5 \(.*temporary.*\) for reflector port 9447/);
  });

  it('unknown Accept values are reported as failures (RFC 4656 §3.3)', async () => {
    const { out } = await run({ startAck: 77, acceptSession: { accept: 0, port: await freePort('127.0.0.1', 'udp') } });
    assert.match(out.ok ? '' : out.error.message, /Start-Sessions refused: Accept 77 \(unknown Accept value 77, treated as 1/);
  });

  it('Accept-Session with port 0: protocol error', async () => {
    const { out } = await run({ acceptSession: { accept: 0, port: 'zero' } });
    assert.equal(out.ok ? '' : out.reason, 'protocol');
    assert.match(out.ok ? '' : out.error.message, /reflector port 0/);
  });

  it('a server that echoes Receiver Port 0: asked again for a concrete port, and the log says so', async () => {
    const fake = await startFakeServer({ acceptSession: { accept: 0, port: 'echo' } });
    const warnings: string[] = [];
    const log = { debug: () => undefined, info: () => undefined, warn: (m: string) => { warnings.push(m); }, error: (m: string) => { warnings.push(m); } };
    try {
      const out = await new TwampSender(parseSenderConfig({ id: 't', reflector: '127.0.0.1', port: fake.port, n_packets: 3, model: 'g711', control_timeout: 0.5, reply_timeout: 0.2 }),
        { logger: log }).runOnce();
      assert.equal(fake.requests.length, 2, 'two Request-TW-Session');
      assert.equal(fake.requests[0]!.receiverPort, 0);
      assert.notEqual(fake.requests[1]!.receiverPort, 0);
      assert.equal(fake.requests[1]!.receiverPort, fake.requests[1]!.senderPort, 'the concrete port asked for is our own test port number');
      // The session runs (the fake reflects nothing: all lost), it does not fail on port 0.
      assert.ok(out.ok || out.reason !== 'protocol', out.ok ? '' : out.error.message);
      assert.ok(warnings.some((w) => /accepted Receiver Port 0 but named no port .*asking again for port \d+/.test(w)), warnings.join('\n'));
    } finally {
      await fake.close();
    }
  });

  for (const silentAfter of ['greeting', 'server-start', 'accept-session'] as const) {
    it(`a server silent after ${silentAfter}: bounded timeout naming the missing message`, async () => {
      const t0 = Date.now();
      const { out } = await run({ silentAfter });
      assert.equal(out.ok ? '' : out.reason, 'timeout');
      // After the greeting the client answers with Set-Up-Response and waits for Server-Start.
      const what = { greeting: 'Server-Start', 'server-start': 'Accept-Session', 'accept-session': 'Accept-Session' }[silentAfter];
      assert.match(out.ok ? '' : out.error.message, new RegExp(`no ${what} within 500 ms`));
      assert.ok(Date.now() - t0 < 5000);
    });
  }

  it('the request is well formed: our bound port, IPVN 4, Type-P = DSCP, padding, Timeout', async () => {
    const udpPort = await freePort('127.0.0.1', 'udp');
    const { fake } = await run({ acceptSession: { accept: 0, port: udpPort } }, { dscp: 'af41' });
    const req = fake.requests[0]!;
    assert.equal(req.ipvn, 4);
    assert.equal(req.senderAddress, '127.0.0.1');
    assert.equal(req.receiverAddress, '127.0.0.1');
    assert.ok(req.senderPort > 0);
    assert.equal(req.receiverPort, 0);
    assert.equal(req.typeP, 34 << 24, 'octet 84 carries DSCP af41 = 34');
    assert.equal(req.paddingLength, 200 - 28 - 14);
    assert.equal(req.timeout, ntpIntervalFromNs(300_000_000n), 'Timeout = reply_timeout in NTP interval format');
    assert.equal(req.confSender, 0);
    assert.equal(req.numberOfPackets, 0);
  });

  it('Stop-Sessions is sent after a completed session, counting 1 session', async () => {
    const udpPort = await freePort('127.0.0.1', 'udp');
    const fake = await startFakeServer({ acceptSession: { accept: 0, port: udpPort } });
    try {
      const out = await sender(fake.port).runOnce();
      assert.ok(out.ok, out.ok ? '' : out.error.message);
      assert.equal(out.result.session.stats.rxPackets, 0, 'nobody reflects on that port');
      assert.equal(out.result.session.stats.rt.loss, 5);
      const stop = StopSessions.decode(await fake.stopSessionsSeen);
      assert.equal(stop.numberOfSessions, 1);
      assert.equal(stop.accept, 0);
      assert.deepEqual(fake.commands, [5, 2, 3]);
    } finally {
      await fake.close();
    }
  });

  it('Stop-Sessions is sent when the sender is stopped mid-session', async () => {
    const udpPort = await freePort('127.0.0.1', 'udp');
    const fake = await startFakeServer({ acceptSession: { accept: 0, port: udpPort } });
    try {
      const s = sender(fake.port, { n_packets: 1000, interval: 60 });
      await s.start();
      await new Promise((r) => setTimeout(r, 300));
      await s.stop();
      const stop = StopSessions.decode(await fake.stopSessionsSeen);
      assert.equal(stop.numberOfSessions, 1);
      assert.equal(s.lastOutcome?.ok, false);
      assert.equal(s.lastOutcome && !s.lastOutcome.ok ? s.lastOutcome.reason : '', 'aborted');
    } finally {
      await fake.close();
    }
  });

  it('an unresolvable host name: dns failure naming the name', async () => {
    const out = await sender(862, { reflector: 'no-such-host.invalid' }).runOnce();
    assert.equal(out.ok ? '' : out.reason, 'dns');
    assert.match(out.ok ? '' : out.error.message, /cannot resolve "no-such-host\.invalid"/);
  });
});
