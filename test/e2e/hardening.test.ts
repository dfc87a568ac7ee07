// Reflector hardening: every limit and the client ACL refuse with
// the right answer and a counted reason while legitimate clients carry on;
// SERVWAIT/REFWAIT with small values; a slowloris is dropped at
// control_timeout; refusal logs are rate limited.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { TwampReflector } from '../../src/reflector.js';
import { ControlClient } from '../../src/session/controlClient.js';
import { TwampSessionError } from '../../src/session/errors.js';
import { REFUSAL_REASONS } from '../../src/session/controlServer.js';
import type { Logger } from '../../src/util/log.js';
import {
  writeSenderPacket, ntpIntervalFromNs, SetupResponse, Mode, RequestTwSession,
} from '../../src/protocol/index.js';
import { sleep, udp } from '../helpers/udp.js';
import { parseReflectorConfig } from '../../src/config/index.js';



function packet(seq: number, length = 41): Buffer {
  const b = Buffer.alloc(length, 0xab);
  writeSenderPacket(b, { seq, timestamp: BigInt(seq + 1) << 32n, errorEstimate: 0x0001 });
  return b;
}

function request(sender: UdpSocket, paddingLength = 27) {
  return {
    ipvn: 4 as const, senderPort: sender.address().port, receiverPort: 0,
    senderAddress: '127.0.0.1', receiverAddress: '127.0.0.1', paddingLength,
    startTime: 0n, timeout: ntpIntervalFromNs(100_000_000n), typeP: 0,
  };
}

/** A collecting logger. */
function memLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (l: string) => (m: string) => { lines.push(`${l} ${m}`); };
  return { lines, debug: () => undefined, info: push('info'), warn: push('warn'), error: push('error') };
}

async function withReflector<T>(cfg: Record<string, unknown>, fn: (r: TwampReflector, port: number) => Promise<T>, logger?: Logger): Promise<T> {
  const r = new TwampReflector(parseReflectorConfig({ id: 'h', listen: '127.0.0.1', port: 0, ...cfg }), logger ? { logger } : {});
  const { port } = await r.start();
  try {
    return await fn(r, port);
  } finally {
    await r.stop();
  }
}

/** Raw TCP client: connect (optionally from a given loopback address) and collect everything received. */
async function raw(port: number, localAddress?: string): Promise<{ s: Socket; data: () => Buffer; closed: Promise<number> }> {
  const s = connect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) });
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  s.on('error', () => undefined);
  const t0 = Date.now();
  const closed = new Promise<number>((r) => s.once('close', () => r(Date.now() - t0)));
  await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); });
  return { s, data: () => Buffer.concat(chunks), closed };
}

/** The Accept value of a Request-TW-Session: 0, or the one in the client's refusal. */
async function acceptOf(c: ControlClient, req: ReturnType<typeof request>): Promise<number> {
  try {
    return (await c.requestSession(req)).accept;
  } catch (e) {
    const m = /Request-TW-Session refused: Accept (\d+)/.exec((e as Error).message);
    if (!m) throw e;
    return Number(m[1]);
  }
}

const greetingModes = (b: Buffer): number => b.readUInt32BE(12);
const refused = (r: TwampReflector, reason: string): number => r.counters.refused.get(reason) ?? 0;

async function legitSessionWorks(port: number): Promise<void> {
  const s = await udp();
  const c = await ControlClient.connect({ host: '127.0.0.1', port, timeoutMs: 2000 });
  try {
    const acc = await c.requestSession(request(s));
    await c.startSessions();
    const got = new Promise<Buffer>((r) => s.once('message', r));
    s.send(packet(1), acc.port, '127.0.0.1');
    const reply = await Promise.race([got, sleep(1000).then(() => undefined)]);
    assert.ok(reply, 'a legitimate session is reflected');
    await c.stopSessions(1);
  } finally {
    c.close();
    s.close();
  }
}

describe('reflector limits and ACL', { timeout: 60_000 }, () => {
  it('deny list: a denied network gets a greeting with Modes 0 and is counted "acl"; others are served', async () => {
    await withReflector({ deny: ['127.0.0.2/32', '2001:db8::/32'] }, async (r, port) => {
      const bad = await raw(port, '127.0.0.2');
      await bad.closed;
      assert.equal(bad.data().length, 64);
      assert.equal(greetingModes(bad.data()), 0, 'Modes 0: the server will not talk to this client');
      assert.equal(refused(r, 'acl'), 1);
      assert.equal(r.counters.controlConnections, 0, 'a refused connection is not accepted');
      await legitSessionWorks(port);
    });
  });

  it('allow list: only listed networks; deny wins over allow; IPv4-mapped peers match as IPv4', async () => {
    await withReflector({ allow: ['127.0.0.0/30'], deny: ['127.0.0.3'] }, async (r, port) => {
      const outside = await raw(port, '127.0.0.9');
      await outside.closed;
      assert.equal(greetingModes(outside.data()), 0);
      const denied = await raw(port, '127.0.0.3');
      await denied.closed;
      assert.equal(greetingModes(denied.data()), 0);
      assert.equal(refused(r, 'acl'), 2);
      await legitSessionWorks(port); // 127.0.0.1 is inside 127.0.0.0/30
      const err = await ControlClient.connect({ host: '127.0.0.1', port, timeoutMs: 2000 }).then((c) => { c.close(); });
      assert.equal(err, undefined);
    });
    await withReflector({ listen: '::', allow: ['10.0.0.0/8'] }, async (r, port) => {
      // A dual-stack listener sees 127.0.0.1 as ::ffff:127.0.0.1: outside 10/8, refused.
      const c = await ControlClient.connect({ host: '127.0.0.1', port, timeoutMs: 2000 }).then(() => undefined, (e: unknown) => e);
      assert.ok(c instanceof TwampSessionError && c.reason === 'refused', String(c));
      assert.match((c as Error).message, /Modes = 0/);
      assert.equal(refused(r, 'acl'), 1);
    });
  });

  it('max_connections: the connection over the limit gets Modes 0, counted "connection_limit"; a slot frees on close', async () => {
    await withReflector({ max_connections: 2 }, async (r, port) => {
      const a = await raw(port);
      const b = await raw(port);
      // Past set-up, so not evictable (README "Security": eviction takes connections not set up).
      for (const x of [a, b]) x.s.write(SetupResponse.encode({ mode: Mode.UNAUTHENTICATED }));
      await sleep(50);
      const third = await raw(port);
      await third.closed;
      assert.equal(greetingModes(third.data()), 0);
      assert.equal(refused(r, 'connection_limit'), 1);
      assert.notEqual(greetingModes(a.data()), 0);
      a.s.destroy();
      await a.closed;
      await sleep(50);
      await legitSessionWorks(port);
      b.s.destroy();
    });
  });

  it('max_sessions_per_connection: Accept 4 on that connection only, counted "session_limit"', async () => {
    await withReflector({ max_sessions_per_connection: 2 }, async (r, port) => {
      const s = await udp();
      const c = await ControlClient.connect({ host: '127.0.0.1', port, timeoutMs: 2000 });
      try {
        assert.equal(await acceptOf(c, request(s)), 0);
        assert.equal(await acceptOf(c, request(s)), 0);
        assert.equal(await acceptOf(c, request(s)), 4);
        assert.equal(refused(r, 'session_limit'), 1);
        await legitSessionWorks(port); // another connection has its own budget
      } finally {
        c.close();
        s.close();
      }
    });
  });

  it('max_sessions (total): Accept 5, counted "session_limit"', async () => {
    await withReflector({ max_sessions: 2 }, async (r, port) => {
      const s = await udp();
      const c1 = await ControlClient.connect({ host: '127.0.0.1', port, timeoutMs: 2000 });
      const c2 = await ControlClient.connect({ host: '127.0.0.1', port, timeoutMs: 2000 });
      try {
        assert.equal(await acceptOf(c1, request(s)), 0);
        assert.equal(await acceptOf(c2, request(s)), 0);
        assert.equal(await acceptOf(c2, request(s)), 5);
        assert.equal(refused(r, 'session_limit'), 1);
      } finally {
        c1.close();
        c2.close();
        s.close();
      }
    });
  });

  it('max_padding: a larger Padding Length gets Accept 3, counted "padding"; within it is accepted', async () => {
    await withReflector({ max_padding: 100 }, async (r, port) => {
      const s = await udp();
      const c = await ControlClient.connect({ host: '127.0.0.1', port, timeoutMs: 2000 });
      try {
        assert.equal(await acceptOf(c, request(s, 101)), 3);
        assert.equal(refused(r, 'padding'), 1);
        assert.equal(await acceptOf(c, request(s, 100)), 0);
      } finally {
        c.close();
        s.close();
      }
    });
  });

  it('max_pps_per_session and max_pps: the excess is dropped and counted "rate"; unsolicited floods do not eat the budget', async () => {
    await withReflector({ max_pps_per_session: 50 }, async (r, port) => {
      const s = await udp();
      const stranger = await udp();
      const c = await ControlClient.connect({ host: '127.0.0.1', port, timeoutMs: 2000 });
      try {
        const acc = await c.requestSession(request(s));
        await c.startSessions();
        // A stranger floods the session port first: dropped as unsolicited, not rate.
        for (let i = 0; i < 200; i++) stranger.send(packet(i), acc.port, '127.0.0.1');
        await sleep(100);
        let replies = 0;
        s.on('message', () => { replies++; });
        for (let i = 0; i < 200; i++) s.send(packet(i), acc.port, '127.0.0.1');
        await sleep(300);
        assert.ok(replies >= 45 && replies <= 70, `about one second's worth (50) reflected, got ${replies}`);
        assert.equal(refused(r, 'rate') + replies, 200, 'every packet of the sender is either reflected or counted');
        assert.ok(r.counters.droppedPackets >= 200 + refused(r, 'rate'));
        await c.stopSessions(1);
      } finally {
        c.close();
        s.close();
        stranger.close();
      }
    });
    await withReflector({ max_pps: 60 }, async (r, port) => {
      const a = await udp();
      const b = await udp();
      const c = await ControlClient.connect({ host: '127.0.0.1', port, timeoutMs: 2000 });
      try {
        const accA = await c.requestSession(request(a));
        const accB = await c.requestSession(request(b));
        await c.startSessions();
        let replies = 0;
        a.on('message', () => { replies++; });
        b.on('message', () => { replies++; });
        for (let i = 0; i < 50; i++) { a.send(packet(i), accA.port, '127.0.0.1'); b.send(packet(i), accB.port, '127.0.0.1'); }
        await sleep(300);
        assert.ok(replies >= 55 && replies <= 80, `the total budget (60) is shared, got ${replies}`);
        assert.equal(refused(r, 'rate') + replies, 100);
      } finally {
        c.close();
        a.close();
        b.close();
      }
    });
  });

  it('max_session_duration: an older session is ended and counted "duration"', async () => {
    await withReflector({ max_session_duration: 0.4 }, async (r, port) => {
      const s = await udp();
      const c = await ControlClient.connect({ host: '127.0.0.1', port, timeoutMs: 2000 });
      try {
        const acc = await c.requestSession(request(s));
        await c.startSessions();
        let replies = 0;
        s.on('message', () => { replies++; });
        s.send(packet(1), acc.port, '127.0.0.1');
        await sleep(100);
        assert.equal(replies, 1);
        assert.equal(r.activeSessions, 1);
        await sleep(500);
        assert.equal(r.activeSessions, 0);
        assert.equal(refused(r, 'duration'), 1);
        s.send(packet(2), acc.port, '127.0.0.1');
        await sleep(100);
        assert.equal(replies, 1, 'nothing reflected after the session ended');
      } finally {
        c.close();
        s.close();
      }
    });
  });

  it('modes [authenticated, encrypted]: an open-only client is refused (no common mode) and counted', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const keyFile = join(mkdtempSync(join(tmpdir(), 'hard-')), 'keys');
    writeFileSync(keyFile, `alice ${Buffer.from('secret').toString('hex')}\n`);
    await withReflector({ modes: ['authenticated', 'encrypted'], key_file: keyFile }, async (r, port) => {
      const e = await ControlClient.connect({ host: '127.0.0.1', port, timeoutMs: 2000 }).then(() => undefined, (x: unknown) => x);
      assert.ok(e instanceof TwampSessionError && e.reason === 'refused', String(e));
      assert.match((e as Error).message, /no common security mode: we allow open; the server offers authenticated, encrypted/);
      // A raw client ignoring the offer and choosing open anyway: Server-Start Accept 3.
      const x = await raw(port);
      await sleep(50);
      x.s.write(SetupResponse.encode({ mode: Mode.UNAUTHENTICATED, keyId: Buffer.alloc(80), token: Buffer.alloc(64), clientIv: Buffer.alloc(16) }));
      await x.closed;
      assert.equal(x.data().length, 64 + 48);
      assert.equal(x.data()[64 + 15], 3, 'Server-Start Accept 3');
      await sleep(50);
      assert.equal(refused(r, 'mode'), 2);
      const ok = await ControlClient.connect({ host: '127.0.0.1', port, timeoutMs: 5000, modes: ['encrypted'], keyId: 'alice', secret: () => Buffer.from('secret') });
      ok.close();
    });
  });
});

describe('reflector timeouts', { timeout: 60_000 }, () => {
  it('SERVWAIT: an idle control connection without sessions is closed, counted "timeout"', async () => {
    await withReflector({ servwait: 0.4 }, async (r, port) => {
      const c = await ControlClient.connect({ host: '127.0.0.1', port, timeoutMs: 2000 });
      await sleep(700);
      assert.equal(r.counters.refused.get('timeout'), 1);
      await sleep(50);
      assert.equal(r.controlConnections, 0);
      c.close();
    });
  });

  it('REFWAIT: a started session without packets ends, counted "refwait"; the connection stays', async () => {
    await withReflector({ refwait: 0.4 }, async (r, port) => {
      const s = await udp();
      const c = await ControlClient.connect({ host: '127.0.0.1', port, timeoutMs: 2000 });
      try {
        await c.requestSession(request(s));
        await c.startSessions();
        assert.equal(r.activeSessions, 1);
        await sleep(700);
        assert.equal(r.activeSessions, 0);
        assert.equal(refused(r, 'refwait'), 1);
        // The control connection is still usable.
        assert.equal(await acceptOf(c, request(s)), 0);
      } finally {
        c.close();
        s.close();
      }
    });
  });

  it('slowloris: 1 octet every 200 ms is dropped at control_timeout, in set-up and inside a command', async () => {
    await withReflector({ control_timeout: 1 }, async (r, port) => {
      // Set-Up-Response (164 octets) would take 33 s at this pace.
      const a = await raw(port);
      const wire = SetupResponse.encode({ mode: Mode.UNAUTHENTICATED, keyId: Buffer.alloc(80), token: Buffer.alloc(64), clientIv: Buffer.alloc(16) });
      let i = 0;
      const trickleA = setInterval(() => { if (!a.s.destroyed) a.s.write(wire.subarray(i, ++i)); }, 200);
      const tA = await a.closed;
      clearInterval(trickleA);
      assert.ok(tA >= 900 && tA < 2500, `closed after ${tA} ms`);

      // Past set-up (SERVWAIT 900 s): a command begun must still complete within control_timeout.
      const b = await raw(port);
      await sleep(50);
      b.s.write(wire);
      await sleep(100);
      const u = await udp();
      const cmd = RequestTwSession.encode(request(u));
      u.close();
      let j = 0;
      const t0 = Date.now();
      const trickleB = setInterval(() => { if (!b.s.destroyed) b.s.write(cmd.subarray(j, ++j)); }, 200);
      await b.closed;
      clearInterval(trickleB);
      const tB = Date.now() - t0;
      assert.ok(tB >= 900 && tB < 2500, `closed after ${tB} ms`);
      assert.equal(refused(r, 'timeout'), 2);
      await legitSessionWorks(port);
    });
  });
});

describe('refusal logs', { timeout: 30_000 }, () => {
  it('at most one line per reason per interval, with the count of the others; the counter counts all', async () => {
    const log = memLog();
    await withReflector({ deny: ['127.0.0.0/8'] }, async (r, port) => {
      for (let i = 0; i < 20; i++) {
        const c = await raw(port);
        await c.closed;
      }
      assert.equal(refused(r, 'acl'), 20);
      assert.equal(log.lines.filter((l) => /allow\/deny/.test(l)).length, 1, log.lines.join('\n'));
    }, log);
    // stop() flushes the held-back count.
    assert.match(log.lines.join('\n'), /19 more like this not logged/);
  });

  it('the reasons are a closed set', () => {
    assert.deepEqual([...new Set(REFUSAL_REASONS)].length, REFUSAL_REASONS.length);
    for (const r of REFUSAL_REASONS) assert.match(r, /^[a-z_]+$/);
  });
});
