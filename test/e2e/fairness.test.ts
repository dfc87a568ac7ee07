// Per-client fairness of the TWAMP-Control reflector (README "Security"):
// per-client connection and session limits, eviction of connections that have
// not completed set-up when the table is full, SERVWAIT after a session ends,
// control_timeout over a whole command, a fair share of max_pps, key
// derivation off the event loop and its per-client rate, bounded session logs.
// Other clients are played by binding to other 127/8 addresses.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { TwampReflector } from '../../src/reflector.js';
import { ControlServer, newControlServerCounters, type ControlServerCounters } from '../../src/session/controlServer.js';
import { systemClock } from '../../src/session/clock.js';
import { ControlClient } from '../../src/session/controlClient.js';
import type { Logger } from '../../src/util/log.js';
import { sessionEventLogger } from '../../src/cli/reflect.js';
import {
  writeSenderPacket, ntpIntervalFromNs, SetupResponse, RequestTwSession, AcceptSession, StartSessions, Mode, deriveKey,
} from '../../src/protocol/index.js';
import { sleep } from '../helpers/udp.js';
import { parseReflectorConfig } from '../../src/config/index.js';

const refused = (r: { counters: { refused: Map<string, number> } }, reason: string): number => r.counters.refused.get(reason) ?? 0;

function packet(seq: number): Buffer {
  const b = Buffer.alloc(41, 0xab);
  writeSenderPacket(b, { seq, timestamp: BigInt(seq + 1) << 32n, errorEstimate: 0x0001 });
  return b;
}

async function udpOn(address: string): Promise<UdpSocket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  return s;
}

function memLog(debug = false): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (l: string) => (m: string) => { lines.push(`${l} ${m}`); };
  return { lines, debug: debug ? push('debug') : () => undefined, info: push('info'), warn: push('warn'), error: push('error') };
}

async function withReflector<T>(cfg: Record<string, unknown>, fn: (r: TwampReflector, port: number) => Promise<T>, logger?: Logger): Promise<T> {
  const r = new TwampReflector(parseReflectorConfig({ id: 'f', listen: '127.0.0.1', port: 0, ...cfg }), logger ? { logger } : {});
  const { port } = await r.start();
  try {
    return await fn(r, port);
  } finally {
    await r.stop();
  }
}

/**
 * A bare open-mode TWAMP-Control client from a chosen local address (the
 * library client cannot bind one): every message is read whole, in order.
 */
class RawClient {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closedAt: number | undefined;
  readonly closed: Promise<void>;

  private constructor(readonly s: Socket) {
    s.on('data', (d: Buffer) => { this.buf = Buffer.concat([this.buf, d]); this.wake(); });
    s.on('error', () => undefined);
    this.closed = new Promise((r) => s.once('close', () => { this.closedAt = performance.now(); this.wake(); r(); }));
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static async connect(port: number, localAddress: string): Promise<RawClient> {
    const s = connect({ host: '127.0.0.1', port, localAddress });
    await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); });
    return new RawClient(s);
  }

  /** The next n octets, or undefined if the connection closes first or nothing comes within ms. */
  async read(n: number, ms = 3000): Promise<Buffer | undefined> {
    const deadline = performance.now() + ms;
    while (this.buf.length < n) {
      if (this.closedAt !== undefined || performance.now() > deadline) return undefined;
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(50)]);
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Greeting and open-mode set-up; the Server-Start's Accept, or undefined. */
  async setupOpen(): Promise<number | undefined> {
    const greeting = await this.read(64);
    if (!greeting || greeting.readUInt32BE(12) === 0) return undefined;
    this.s.write(SetupResponse.encode({ mode: Mode.UNAUTHENTICATED, keyId: Buffer.alloc(80), token: Buffer.alloc(64), clientIv: Buffer.alloc(16) }));
    const start = await this.read(48);
    return start?.[15];
  }

  /** Request a session for a sender at address:senderPort; the Accept-Session. */
  async request(address: string, senderPort: number): Promise<AcceptSession.AcceptSession | undefined> {
    this.s.write(RequestTwSession.encode({
      ipvn: 4, senderPort, receiverPort: 0, senderAddress: address, receiverAddress: '127.0.0.1', paddingLength: 27,
      startTime: 0n, timeout: ntpIntervalFromNs(100_000_000n), typeP: 0,
    }));
    const a = await this.read(48);
    return a ? AcceptSession.decode(a) : undefined;
  }

  async start(): Promise<boolean> {
    this.s.write(StartSessions.encode({}));
    const ack = await this.read(32);
    return ack !== undefined && ack[0] === 0;
  }

  destroy(): void {
    this.s.destroy();
  }
}

/** A full session from `address`: set-up, request, start, one packet reflected. */
async function sessionFrom(port: number, address: string): Promise<{ c: RawClient; s: UdpSocket; reflectorPort: number }> {
  const c = await RawClient.connect(port, address);
  assert.equal(await c.setupOpen(), 0, `set-up from ${address}`);
  const s = await udpOn(address);
  const acc = await c.request(address, s.address().port);
  assert.equal(acc?.accept, 0, `session from ${address}`);
  assert.ok(await c.start());
  const got = new Promise<Buffer>((r) => s.once('message', r));
  s.send(packet(0), acc!.port, '127.0.0.1');
  assert.ok(await Promise.race([got, sleep(2000).then(() => undefined)]), `a packet from ${address} is reflected`);
  return { c, s, reflectorPort: acc!.port };
}

describe('per-client limits', { timeout: 60_000 }, () => {
  it('max_connections_per_client: the client over it gets Modes 0 (client_connection_limit); another client is served', async () => {
    await withReflector({ max_connections_per_client: 2 }, async (r, port) => {
      const a = await RawClient.connect(port, '127.0.0.2');
      const b = await RawClient.connect(port, '127.0.0.2');
      assert.notEqual((await a.read(64))?.readUInt32BE(12), 0);
      assert.notEqual((await b.read(64))?.readUInt32BE(12), 0);
      const third = await RawClient.connect(port, '127.0.0.2');
      assert.equal((await third.read(64))?.readUInt32BE(12), 0, 'Modes 0: the server will not talk (RFC 4656 §3.1)');
      await third.closed;
      assert.equal(refused(r, 'client_connection_limit'), 1);
      const other = await sessionFrom(port, '127.0.0.3');
      other.c.destroy(); other.s.close();
      // A slot of the client frees when one of its connections closes.
      a.destroy();
      await a.closed;
      await sleep(50);
      const again = await sessionFrom(port, '127.0.0.2');
      again.c.destroy(); again.s.close(); b.destroy();
    });
  });

  it('max_sessions_per_client: counted over all the client\'s connections, Accept 5 (client_session_limit); another client is served', async () => {
    await withReflector({ max_sessions_per_client: 3 }, async (r, port) => {
      const s = await udpOn('127.0.0.2');
      const c1 = await RawClient.connect(port, '127.0.0.2');
      const c2 = await RawClient.connect(port, '127.0.0.2');
      try {
        assert.equal(await c1.setupOpen(), 0);
        assert.equal(await c2.setupOpen(), 0);
        assert.equal((await c1.request('127.0.0.2', s.address().port))?.accept, 0);
        assert.equal((await c1.request('127.0.0.2', s.address().port))?.accept, 0);
        assert.equal((await c2.request('127.0.0.2', s.address().port))?.accept, 0);
        assert.equal((await c2.request('127.0.0.2', s.address().port))?.accept, 5, 'temporary resource limitation (RFC 4656 §3.3)');
        assert.equal(refused(r, 'client_session_limit'), 1);
        const other = await sessionFrom(port, '127.0.0.3');
        other.c.destroy(); other.s.close();
        // The client's sessions end with its connection: its budget is back.
        c1.destroy();
        await c1.closed;
        await sleep(50);
        assert.equal((await c2.request('127.0.0.2', s.address().port))?.accept, 0);
      } finally {
        c1.destroy(); c2.destroy(); s.close();
      }
    });
  });

  it('a full connection table evicts the oldest pre-set-up connection of the client holding most; refuses only when none is evictable', async () => {
    await withReflector({ max_connections: 6, max_connections_per_client: 100 }, async (r, port) => {
      const hostile: RawClient[] = [];
      for (let i = 0; i < 6; i++) {
        const h = await RawClient.connect(port, '127.0.0.1');
        assert.ok(await h.read(64), 'greeting');
        hostile.push(h);
      }
      const legit = await sessionFrom(port, '127.0.0.2');
      assert.equal(refused(r, 'evicted'), 1);
      assert.equal(refused(r, 'connection_limit'), 0);
      assert.equal(refused(r, 'abandoned'), 0, 'an evicted connection is not also counted as abandoned');
      await hostile[0]!.closed; // the oldest went
      assert.equal(hostile[1]!.closedAt, undefined, 'only one was evicted');
      // Five hostile pre-set-up connections and one set-up legit one: make the rest past set-up too.
      for (const h of hostile.slice(1)) h.destroy();
      await sleep(100);
      const done: RawClient[] = [];
      for (let i = 0; i < 5; i++) {
        const c = await RawClient.connect(port, '127.0.0.3');
        assert.equal(await c.setupOpen(), 0);
        done.push(c);
      }
      const late = await RawClient.connect(port, '127.0.0.4');
      assert.equal((await late.read(64))?.readUInt32BE(12), 0, 'nothing evictable: Modes 0');
      assert.equal(refused(r, 'connection_limit'), 1);
      for (const c of done) c.destroy();
      legit.c.destroy(); legit.s.close(); late.destroy();
    });
  });
});

describe('control connection timing', { timeout: 60_000 }, () => {
  for (const [what, cfg] of [
    ['REFWAIT', { refwait: 0.5, servwait: 1 }],
    ['max_session_duration', { max_session_duration: 0.5, servwait: 1 }],
  ] as const) {
    it(`SERVWAIT is re-armed when the last session ends by ${what} while the command read waits`, async () => {
      await withReflector(cfg, async (r, port) => {
        const { c, s } = await sessionFrom(port, '127.0.0.2');
        const t0 = performance.now();
        await Promise.race([c.closed, sleep(6000)]);
        assert.ok(c.closedAt !== undefined, 'the idle control connection is closed');
        const ms = c.closedAt - t0;
        assert.ok(ms >= 900 && ms < 5000, `closed after ${ms.toFixed(0)} ms (session end ~500 ms + SERVWAIT 1 s)`);
        assert.equal(refused(r, 'timeout'), 1);
        s.close();
      });
    });
  }

  it('control_timeout bounds a whole command from its first octet, not each part', async () => {
    await withReflector({ control_timeout: 2 }, async (r, port) => {
      const c = await RawClient.connect(port, '127.0.0.2');
      assert.equal(await c.setupOpen(), 0);
      const msg = RequestTwSession.encode({
        ipvn: 4, senderPort: 40000, receiverPort: 0, senderAddress: '127.0.0.2', receiverAddress: '127.0.0.1',
        paddingLength: 27, startTime: 0n, timeout: 0n, typeP: 0,
      });
      const t0 = performance.now();
      c.s.write(msg.subarray(0, 15));
      await sleep(1700);
      // The 16th octet completes the command's first block just before control_timeout; then trickle.
      let i = 15;
      const trickle = setInterval(() => { if (i < msg.length - 1 && !c.s.destroyed) c.s.write(msg.subarray(i, ++i)); }, 100);
      await Promise.race([c.closed, sleep(6000)]);
      clearInterval(trickle);
      assert.ok(c.closedAt !== undefined, 'a trickled command is dropped');
      const ms = c.closedAt - t0;
      assert.ok(ms < 3000, `dropped ${ms.toFixed(0)} ms after its first octet (control_timeout 2 s)`);
      assert.equal(refused(r, 'timeout'), 1);
    });
  });
});

describe('packet budget', { timeout: 60_000 }, () => {
  it('max_pps is shared fairly: a client within its share loses nothing while another floods', async () => {
    await withReflector({ max_pps: 400, max_pps_per_session: 100_000 }, async (r, port) => {
      // Client A (127.0.0.1): two sessions sending ~2000 pps together.
      const a = await Promise.all([sessionFrom(port, '127.0.0.1'), sessionFrom(port, '127.0.0.1')]);
      // Client B (127.0.0.2): one session at 100 pps, half its share of 200.
      const b = await sessionFrom(port, '127.0.0.2');
      let bGot = 0;
      b.s.on('message', () => { bGot++; });
      let seq = 1;
      const flood = setInterval(() => {
        for (const x of a) for (let k = 0; k < 10; k++) x.s.send(packet(seq++), x.reflectorPort, '127.0.0.1');
      }, 10);
      let bSent = 0;
      const steady = setInterval(() => { b.s.send(packet(bSent++), b.reflectorPort, '127.0.0.1'); }, 10);
      await sleep(1500);
      clearInterval(steady);
      clearInterval(flood);
      await sleep(300);
      assert.ok(refused(r, 'rate') > 100, `A's excess is dropped (${refused(r, 'rate')})`);
      assert.equal(bGot, bSent, `B within its share gets every packet back (${bGot} of ${bSent})`);
      for (const x of [...a, b]) { x.c.destroy(); x.s.close(); }
    });
  });
});

describe('key derivation', { timeout: 90_000 }, () => {
  const KDF_COUNT = 2 ** 19;

  /** A Set-Up-Response choosing authenticated mode with an unknown KeyID: the server derives anyway (uniform timing). */
  async function badKeySetup(port: number, localAddress: string): Promise<number | undefined> {
    const c = await RawClient.connect(port, localAddress);
    try {
      const g = await c.read(64, 10_000);
      if (!g) return undefined;
      c.s.write(SetupResponse.encode({ mode: Mode.AUTHENTICATED, keyId: Buffer.from('nobody'), token: randomBytes(64), clientIv: randomBytes(16) }));
      return (await c.read(48, 30_000))?.[15];
    } finally {
      c.destroy();
    }
  }

  async function withAuthServer<T>(
    opts: { kdfCount: number; kdfRatePerClient?: number },
    fn: (s: ControlServer, port: number, counters: ControlServerCounters) => Promise<T>,
  ) {
    const counters = newControlServerCounters();
    const s = new ControlServer({
      host: '127.0.0.1', port: 0, clock: systemClock(), log: memLog(), counters, modes: ['authenticated'],
      lookupKey: (id) => (id === 'known' ? Buffer.from('a secret') : undefined), ...opts,
    });
    const { port } = await s.listen();
    try {
      return await fn(s, port, counters);
    } finally {
      await s.close();
    }
  }

  it('a flood of bad-KeyID set-ups at a large kdf_count does not stall the event loop', async () => {
    const t = performance.now();
    deriveKey('x', Buffer.alloc(16), KDF_COUNT, KDF_COUNT);
    const syncMs = performance.now() - t;
    await withAuthServer({ kdfCount: KDF_COUNT, kdfRatePerClient: 100 }, async (_s, port) => {
      const h = monitorEventLoopDelay({ resolution: 10 });
      h.enable();
      const accepts = await Promise.all(Array.from({ length: 8 }, (_, i) => badKeySetup(port, `127.0.0.${2 + i}`)));
      h.disable();
      assert.deepEqual(accepts, Array(8).fill(1), 'each unknown KeyID is answered Accept 1 after a derivation');
      const maxMs = h.max / 1e6;
      assert.ok(maxMs < Math.max(syncMs * 0.6, 60), `event loop delay max ${maxMs.toFixed(0)} ms (one synchronous derivation: ${syncMs.toFixed(0)} ms)`);
    });
  });

  it('kdf_rate_per_client: set-ups over the rate get Server-Start Accept 5 (kdf_rate); another client still derives', async () => {
    await withAuthServer({ kdfCount: 1024, kdfRatePerClient: 3 }, async (_s, port, counters) => {
      const accepts = await Promise.all(Array.from({ length: 8 }, () => badKeySetup(port, '127.0.0.2')));
      assert.equal(accepts.filter((a) => a === 5).length >= 4, true, `Accepts: ${accepts.join(',')}`);
      assert.ok(counters.refused.get('kdf_rate')! >= 4);
      assert.equal(await badKeySetup(port, '127.0.0.3'), 1, 'another client is not held back');
    });
  });
});

describe('bounded session logs', { timeout: 60_000 }, () => {
  it('a churn of sessions writes a bounded number of session lines, with a count of the rest', async () => {
    const log = memLog(true);
    await withReflector({ max_sessions_per_connection: 1000, max_sessions_per_client: 1000 }, async (_r, port) => {
      const c = await ControlClient.connect({ host: '127.0.0.1', port, timeoutMs: 3000 });
      const s = await udpOn('127.0.0.1');
      try {
        for (let i = 0; i < 150; i++) {
          await c.requestSession({
            ipvn: 4, senderPort: s.address().port, receiverPort: 0, senderAddress: '127.0.0.1', receiverAddress: '127.0.0.1',
            paddingLength: 27, startTime: 0n, timeout: 0n, typeP: 0,
          });
        }
      } finally {
        c.close();
        s.close();
      }
      await sleep(300); // the 150 sessions end with the connection
    }, log);
    const sessionLines = log.lines.filter((l) => / session (accepted|on port)/.test(l));
    assert.ok(sessionLines.length <= 60, `${sessionLines.length} session lines for 300 events`);
    assert.ok(log.lines.some((l) => /\d+ more session events not logged/.test(l)), 'the rest are counted');
  });

  it('reflect\'s session event log is bounded too', () => {
    const log = memLog();
    const sl = sessionEventLogger(log, 10);
    for (let i = 0; i < 500; i++) sl.onEvent({ type: 'accepted', peer: 'client 192.0.2.1:5000', port: 40000 + i, requestedPort: 0 });
    sl.flush();
    assert.ok(log.lines.length <= 12, `${log.lines.length} lines`);
    assert.match(log.lines.at(-1)!, /\d+ more session events not logged/);
  });
});
