// Third parties and hostile requests (README "Security"): a Request-TW-Session
// may not aim test replies at another host (Sender Address) or at a service
// port (Sender Port); the reflector binds no privileged port and keeps to
// test_port_range; nothing a peer sends throws past a handler; test packets
// failing their HMAC are counted in refused{reason="hmac"}.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { TwampReflector } from '../../src/reflector.js';
import { ControlServer, newControlServerCounters } from '../../src/session/controlServer.js';
import { systemClock } from '../../src/session/clock.js';
import { ControlClient } from '../../src/session/controlClient.js';
import { connect } from 'node:net';
import { once } from 'node:events';
import {
  writeSenderPacket, ntpIntervalFromNs, Command, Mode, ServerGreeting, SetupResponse, ServerStart, RequestTwSession,
  AcceptSession, StartSessions, StartAck,
} from '../../src/protocol/index.js';
import { StreamReader } from '../../src/session/streamReader.js';
import { sleep, udp } from '../helpers/udp.js';
import { parseReflectorConfig } from '../../src/config/index.js';

const refused = (r: { counters: { refused: Map<string, number> } }, reason: string): number => r.counters.refused.get(reason) ?? 0;

const uncaught: unknown[] = [];
const onUncaught = (e: unknown): void => { uncaught.push(e); };
process.on('uncaughtException', onUncaught);
after(() => { process.off('uncaughtException', onUncaught); });

function req(senderPort: number, over: Partial<{ senderAddress: string; receiverPort: number }> = {}) {
  return {
    ipvn: 4 as const, senderPort, receiverPort: over.receiverPort ?? 0,
    senderAddress: over.senderAddress ?? '127.0.0.1', receiverAddress: '127.0.0.1', paddingLength: 27,
    startTime: 0n, timeout: ntpIntervalFromNs(100_000_000n), typeP: 0,
  };
}

async function withReflector<T>(cfg: Record<string, unknown>, fn: (r: TwampReflector, port: number) => Promise<T>): Promise<T> {
  const r = new TwampReflector(parseReflectorConfig({ id: 't', listen: '127.0.0.1', port: 0, ...cfg }));
  const { port } = await r.start();
  try {
    return await fn(r, port);
  } finally {
    await r.stop();
  }
}

/** Accept and port of a Request-TW-Session (refusals come back as errors from the client). */
async function ask(c: ControlClient, r: ReturnType<typeof req>): Promise<{ accept: number; port: number }> {
  try {
    const a = await c.requestSession(r);
    return { accept: a.accept, port: a.port };
  } catch (e) {
    const m = /Accept (\d+)/.exec((e as Error).message);
    if (!m) throw e;
    return { accept: Number(m[1]), port: 0 };
  }
}

async function client(port: number): Promise<ControlClient> {
  return ControlClient.connect({ host: '127.0.0.1', port, timeoutMs: 3000 });
}

/** An open-mode TWAMP-Control client written by hand (RFC 4656 §3.1, RFC 5357 §3), for commands ControlClient never sends. */
async function rawOpenClient(port: number) {
  const sock = connect(port, '127.0.0.1');
  await once(sock, 'connect');
  const reader = new StreamReader(sock, 'raw client');
  const read = (n: number, what: string): Promise<Buffer> => reader.read(n, 3000, what);
  await read(ServerGreeting.SIZE, 'Server-Greeting');
  sock.write(SetupResponse.encode({ mode: Mode.UNAUTHENTICATED, keyId: Buffer.alloc(80), token: Buffer.alloc(64), clientIv: Buffer.alloc(16) }));
  await read(ServerStart.SIZE, 'Server-Start');
  return {
    async request(r: ReturnType<typeof req> & { timeout: bigint }): Promise<{ port: number }> {
      sock.write(RequestTwSession.encode(r));
      const acc = AcceptSession.decode(await read(AcceptSession.SIZE, 'Accept-Session'));
      assert.equal(acc.accept, 0, 'Accept-Session');
      return acc;
    },
    async start(): Promise<void> {
      sock.write(StartSessions.encode({}));
      assert.equal(StartAck.decode(await read(StartAck.SIZE, 'Start-Ack')).accept, 0, 'Start-Ack');
    },
    write: (b: Buffer): void => { sock.write(b); },
    close: (): void => { sock.destroy(); },
  };
}

describe('third parties', { timeout: 60_000 }, () => {
  it('a Sender Address other than the client\'s own is refused (Accept 3, sender_address) unless allow_third_party_sender', async () => {
    await withReflector({}, async (r, port) => {
      const c = await client(port);
      try {
        assert.equal((await ask(c, req(40000, { senderAddress: '127.0.0.2' }))).accept, 3);
        assert.equal(refused(r, 'sender_address'), 1);
        assert.equal((await ask(c, req(40000, { senderAddress: '0.0.0.0' }))).accept, 0, 'zero = the client\'s own (RFC 5357 §3.5)');
        assert.equal((await ask(c, req(40000))).accept, 0);
      } finally { c.close(); }
    });
    await withReflector({ allow_third_party_sender: true, deny: ['127.0.0.9'] }, async (r, port) => {
      const c = await client(port);
      try {
        assert.equal((await ask(c, req(40000, { senderAddress: '127.0.0.2' }))).accept, 0, 'allowed third party');
        assert.equal((await ask(c, req(40000, { senderAddress: '127.0.0.9' }))).accept, 3, 'a denied network stays denied');
        assert.equal((await ask(c, req(40000, { senderAddress: '224.0.0.1' }))).accept, 3, 'never multicast');
        assert.equal((await ask(c, req(40000, { senderAddress: '255.255.255.255' }))).accept, 3, 'never broadcast');
        assert.equal(refused(r, 'sender_address'), 3);
      } finally { c.close(); }
    });
  });

  it('Sender Port 0 or below 1024 is refused (Accept 3, reply_port) unless in allow_reply_ports', async () => {
    await withReflector({}, async (r, port) => {
      const c = await client(port);
      try {
        for (const p of [0, 7, 19, 53, 123, 161, 862, 1023]) assert.equal((await ask(c, req(p))).accept, 3, `Sender Port ${p}`);
        assert.equal(refused(r, 'reply_port'), 8);
        assert.equal((await ask(c, req(1024))).accept, 0);
      } finally { c.close(); }
    });
    await withReflector({ allow_reply_ports: [862] }, async (r, port) => {
      const c = await client(port);
      try {
        assert.equal((await ask(c, req(862))).accept, 0, 'listed');
        assert.equal((await ask(c, req(53))).accept, 3, 'not listed');
        assert.equal(refused(r, 'reply_port'), 1);
      } finally { c.close(); }
    });
  });

  it('Receiver Port: never below 1024, never outside test_port_range, never one in use', async () => {
    const busy = createSocket('udp4');
    await new Promise<void>((res) => busy.bind(20_013, '127.0.0.1', () => res()));
    try {
      await withReflector({ test_port_range: '20010-20019' }, async (_r, port) => {
        const c = await client(port);
        try {
          const low = await ask(c, req(40000, { receiverPort: 700 }));
          assert.equal(low.accept, 0);
          assert.ok(low.port >= 20010 && low.port <= 20019, `requested 700, got ${low.port}`);
          const outside = await ask(c, req(40000, { receiverPort: 30_123 }));
          assert.ok(outside.port >= 20010 && outside.port <= 20019, `requested 30123 (outside the range), got ${outside.port}`);
          const inUse = await ask(c, req(40000, { receiverPort: 20_013 }));
          assert.equal(inUse.accept, 0);
          assert.notEqual(inUse.port, 20_013, 'a port in use is not shared');
          const inside = await ask(c, req(40000, { receiverPort: 20_017 }));
          assert.equal(inside.port, 20_017, 'a free port in the range is granted as requested');
        } finally { c.close(); }
      });
      await withReflector({}, async (_r, port) => {
        const c = await client(port);
        try {
          const low = await ask(c, req(40000, { receiverPort: 862 }));
          assert.equal(low.accept, 0);
          assert.ok(low.port >= 1024, `requested 862, got ${low.port}`);
        } finally { c.close(); }
      });
    } finally {
      busy.close();
    }
  });
});

describe('hostile requests', { timeout: 60_000 }, () => {
  it('odd requests and commands never throw past a handler; the server keeps serving', async () => {
    await withReflector({ allow_third_party_sender: true }, async (r, port) => {
      const c = await client(port);
      try {
        for (const [p, a] of [[0, '127.0.0.1'], [9, '240.0.0.1'], [40000, '0.0.0.1'], [40000, '239.255.255.250']] as const) {
          assert.notEqual((await ask(c, req(p, { senderAddress: a }))).accept, 0, `${a}:${p}`);
        }
      } finally { c.close(); }
      // A raw, garbage-filled Stop-Sessions on a connection with a running session.
      const c2 = await rawOpenClient(port);
      const s = await udp();
      try {
        const acc = await c2.request({ ...req(s.address().port), timeout: ntpIntervalFromNs(2_000_000_000n) });
        await c2.start();
        const stop = Buffer.alloc(32, 0xff);
        stop[0] = Command.STOP_SESSIONS;
        c2.write(stop);
        await sleep(100);
        const got = new Promise<Buffer>((res) => s.once('message', res));
        const pkt = Buffer.alloc(41);
        writeSenderPacket(pkt, { seq: 0, timestamp: 1n << 32n, errorEstimate: 1 });
        s.send(pkt, acc.port, '127.0.0.1');
        assert.ok(await Promise.race([got, sleep(1000).then(() => undefined)]), 'still reflecting within the Timeout after Stop-Sessions');
      } finally { c2.close(); s.close(); }
      assert.equal(refused(r, 'internal'), 0);
      assert.deepEqual(uncaught, []);
      const c3 = await client(port);
      assert.equal((await ask(c3, req(40000))).accept, 0, 'still serving');
      c3.close();
    });
  });
});

describe('HMAC failures', { timeout: 60_000 }, () => {
  it('a test packet whose HMAC does not verify counts in refused{reason="hmac"} (and dropped_pkt)', async () => {
    const counters = newControlServerCounters();
    const secret = Buffer.from('a shared secret');
    const server = new ControlServer({
      host: '127.0.0.1', port: 0, clock: systemClock(), log: { debug() {}, info() {}, warn() {}, error() {} }, counters,
      modes: ['authenticated'], lookupKey: (id) => (id === 'k' ? secret : undefined), kdfCount: 1024,
    });
    const { port } = await server.listen();
    const s: UdpSocket = await udp();
    try {
      const c = await ControlClient.connect({ host: '127.0.0.1', port, timeoutMs: 3000, modes: ['authenticated'], keyId: 'k', secret: () => Buffer.from(secret) });
      const acc = await c.requestSession({ ...req(s.address().port), paddingLength: 64 });
      await c.startSessions();
      s.send(Buffer.alloc(112, 0x5a), acc.port, '127.0.0.1'); // not protected with the session's keys
      await sleep(200);
      assert.equal(counters.refused.get('hmac'), 1);
      assert.ok(counters.droppedPackets >= 1);
      c.close();
    } finally {
      s.close();
      await server.close();
    }
  });
});
