// Property-based fuzzing of the sender side: TwampSender.runOnce()
// against a fake TWAMP-Control server that answers each step (Server-Greeting,
// Server-Start, Accept-Session, Start-Ack) with the valid message, a mutated
// one (truncation, bit flips, octet overwrites, extension), random octets,
// silence, a close or a reset, possibly dripped in chunks; the test UDP port
// it hands out answers with valid reflections, random octets or nothing.
// runOnce must always resolve — never reject, never hang past
// control_timeout × steps + test time + slack — with ok:true or ok:false and
// a reason from the FailureReason set; nothing may escape as an unhandled
// rejection or exception. Budget: test/helpers/fuzz.ts.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { createSocket, type Socket as UdpSocket, type RemoteInfo } from 'node:dgram';
import fc from 'fast-check';
import {
  ServerGreeting, ServerStart, AcceptSession, StartAck, Mode, SetupResponse, buildReflection, reflectorReplyLength,
  ntpFromUnixNs,
} from '../../src/protocol/index.js';
import { TwampSender } from '../../src/sender.js';
import type { FailureReason } from '../../src/session/errors.js';
import { checkAsync, CrashTrap, mutation, mutate, testTimeout, type Mutation } from '../helpers/fuzz.js';
import { parseSenderConfig } from '../../src/config/index.js';

const HOST = '127.0.0.1';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const REASONS = ['dns', 'connect', 'timeout', 'closed', 'protocol', 'refused', 'socket', 'aborted'] as const satisfies readonly FailureReason[];

const CONTROL_TIMEOUT_S = 0.25;
const REPLY_TIMEOUT_S = 0.15;
const N_PACKETS = 3;
/** connect, Server-Start, Accept-Session, Start-Ack, Stop-Sessions write, plus the greeting. */
const CONTROL_STEPS = 6;
/** 3 packets of cbr 100 octets at 800 kbit/s: 1 ms apart. */
const TEST_MS = N_PACKETS * 1 + REPLY_TIMEOUT_S * 1000;
const SLACK_MS = 1500;
const RUN_BOUND_MS = CONTROL_TIMEOUT_S * 1000 * CONTROL_STEPS + TEST_MS + SLACK_MS;

// ---------------------------------------------------------------------------
// The fake server's answers

type Answer =
  | { kind: 'valid'; drip: number[] }
  | { kind: 'mutated'; m: Mutation; drip: number[] }
  | { kind: 'random'; bytes: Uint8Array }
  | { kind: 'silent' }
  | { kind: 'close' }
  | { kind: 'reset' };

const dripArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant<number[]>([]) },
  { weight: 1, arbitrary: fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 3 }) },
);

const answerArb: fc.Arbitrary<Answer> = fc.oneof(
  { weight: 10, arbitrary: dripArb.map((drip) => ({ kind: 'valid' as const, drip })) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('mutated' as const), m: mutation(), drip: dripArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('random' as const), bytes: fc.uint8Array({ minLength: 0, maxLength: 130 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'silent' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'close' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reset' as const }) },
);

/** How the handed-out test port answers each test packet. */
type UdpBehaviour = 'reflect' | 'silent' | 'random' | 'truncated' | 'mixed';

const scenarioArb = fc.record({
  greeting: answerArb,
  greetingFields: fc.record({
    modes: fc.oneof({ weight: 5, arbitrary: fc.constant(Mode.UNAUTHENTICATED) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }) }),
    count: fc.oneof(fc.constant(1024), fc.integer({ min: 0, max: 0xffffffff })),
  }),
  serverStart: answerArb,
  serverStartAccept: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }),
  acceptSession: answerArb,
  acceptSessionAccept: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }),
  startAck: answerArb,
  startAckAccept: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }),
  /** Extra octets pushed after the Start-Ack (a server that babbles). */
  trailing: fc.option(fc.uint8Array({ minLength: 1, maxLength: 64 }), { freq: 5 }),
  udp: fc.constantFrom<UdpBehaviour>('reflect', 'reflect', 'silent', 'random', 'truncated', 'mixed'),
  udpRandom: fc.array(fc.uint8Array({ minLength: 0, maxLength: 120 }), { minLength: 1, maxLength: 4 }),
});
type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

// ---------------------------------------------------------------------------
// Fake server

class FuzzServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  readonly udp: UdpSocket = createSocket('udp4');
  port = 0;
  udpPort = 0;
  scenario: Scenario | undefined;
  private udpCount = 0;

  async start(): Promise<void> {
    this.server = createServer((s) => this.onConnection(s));
    await new Promise<void>((r) => this.server!.listen(0, HOST, r));
    this.port = (this.server.address() as { port: number }).port;
    await new Promise<void>((r) => this.udp.bind(0, HOST, () => r()));
    this.udpPort = this.udp.address().port;
    this.udp.on('message', (m, ri) => this.onUdp(m, ri));
    this.udp.on('error', () => undefined);
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.udp.close();
  }

  /** Destroy every open control connection (between runs). */
  dropAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  private onUdp(msg: Buffer, ri: RemoteInfo): void {
    const sc = this.scenario;
    if (!sc) return;
    const n = this.udpCount++;
    let behaviour = sc.udp;
    if (behaviour === 'mixed') behaviour = (['reflect', 'random', 'truncated', 'silent'] as const)[n % 4]!;
    if (behaviour === 'silent') return;
    if (behaviour === 'random') {
      this.udp.send(sc.udpRandom[n % sc.udpRandom.length]!, ri.port, ri.address);
      return;
    }
    const out = Buffer.alloc(reflectorReplyLength(Math.max(msg.length, 14)) + 8);
    let len = msg.length >= 14
      ? buildReflection(msg, msg.length, out, {
        seq: n, receiveTimestamp: ntpFromUnixNs(BigInt(Date.now()) * 1_000_000n), timestamp: ntpFromUnixNs(BigInt(Date.now()) * 1_000_000n),
        errorEstimate: 1, senderTtl: 255,
      })
      : 0;
    if (behaviour === 'truncated') len = Math.min(len, 37 - (n % 38));
    this.udp.send(out.subarray(0, len), ri.port, ri.address);
  }

  private async answer(s: Socket, a: Answer, valid: Buffer): Promise<boolean> {
    let bytes: Buffer;
    switch (a.kind) {
      case 'silent':
        return false;
      case 'close':
        s.end();
        return false;
      case 'reset':
        s.resetAndDestroy();
        return false;
      case 'random':
        bytes = this.safePort(Buffer.from(a.bytes), valid.length === 48 && valid === this.lastAccept);
        s.write(bytes);
        return true;
      case 'valid':
      case 'mutated': {
        bytes = a.kind === 'valid' ? valid : mutate(valid, a.m);
        if (valid === this.lastAccept) bytes = this.safePort(bytes, true);
        const drip = a.drip;
        if (drip.length === 0) { s.write(bytes); return true; }
        // Drip in drip.length + 1 chunks with small pauses (well inside control_timeout).
        const cut = Math.ceil(bytes.length / (drip.length + 1));
        for (let i = 0; i <= drip.length; i++) {
          if (s.destroyed) return false;
          s.write(bytes.subarray(i * cut, (i + 1) * cut));
          if (i < drip.length) await sleep(drip[i]!);
        }
        return true;
      }
    }
  }

  private lastAccept: Buffer | undefined;

  /**
   * Accept-Session's port (octets 2–3) as handed out: a non-zero port is
   * replaced by our own UDP port, so a mutated message never sends test
   * packets to some other program's port on this host.
   */
  private safePort(b: Buffer, isAccept: boolean): Buffer {
    if (!isAccept || b.length < 4) return b;
    const out = Buffer.from(b);
    if (out.readUInt16BE(2) !== 0) out.writeUInt16BE(this.udpPort, 2);
    return out;
  }

  private onConnection(s: Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => undefined);
    const sc = this.scenario;
    if (!sc) { s.destroy(); return; }
    this.udpCount = 0;
    void this.converse(s, sc).catch(() => s.destroy());
  }

  private async converse(s: Socket, sc: Scenario): Promise<void> {
    let buf = Buffer.alloc(0);
    let wake: (() => void) | undefined;
    s.on('data', (d: Buffer) => { buf = Buffer.concat([buf, d]); wake?.(); });
    s.on('end', () => wake?.());
    const need = async (n: number): Promise<Buffer | undefined> => {
      while (buf.length < n) {
        if (s.destroyed || s.readableEnded) return undefined;
        await new Promise<void>((r) => { wake = r; setTimeout(r, 50); });
      }
      const out = buf.subarray(0, n);
      buf = buf.subarray(n);
      return out;
    };
    const greeting = ServerGreeting.encode({ modes: sc.greetingFields.modes, count: sc.greetingFields.count });
    if (!await this.answer(s, sc.greeting, greeting)) return;
    if (!await need(SetupResponse.SIZE)) return;
    const ss = ServerStart.encode({ accept: sc.serverStartAccept, serverIv: Buffer.alloc(16), startTime: 1n << 32n });
    if (!await this.answer(s, sc.serverStart, ss)) return;
    // Commands until the client hangs up.
    for (;;) {
      const first = await need(16);
      if (!first) return;
      const cmd = first[0]!;
      const rest = await need(cmd === 5 ? 96 : 16);
      if (!rest) return;
      if (cmd === 5) {
        this.lastAccept = AcceptSession.encode({ accept: sc.acceptSessionAccept, port: this.udpPort, sid: Buffer.alloc(16, 7) });
        if (!await this.answer(s, sc.acceptSession, this.lastAccept)) return;
      } else if (cmd === 2) {
        if (!await this.answer(s, sc.startAck, StartAck.encode({ accept: sc.startAckAccept }))) return;
        if (sc.trailing) s.write(sc.trailing);
      }
      // Stop-Sessions (3) and anything else: no reply.
    }
  }
}

describe('fuzz: TwampSender against a misbehaving TWAMP server', { timeout: testTimeout(120_000) }, () => {
  let fake: FuzzServer;
  let trap: CrashTrap;

  before(async () => {
    trap = new CrashTrap().install();
    fake = new FuzzServer();
    await fake.start();
  });
  after(async () => {
    await fake.stop();
    trap.uninstall();
  });

  function sender(): TwampSender {
    return new TwampSender(parseSenderConfig({
      id: 'fuzz-sender', reflector: HOST, port: fake.port, n_packets: N_PACKETS, model: 'cbr', size: 100, bandwidth: 800_000,
      control_timeout: CONTROL_TIMEOUT_S, reply_timeout: REPLY_TIMEOUT_S,
    }));
  }

  it('the fake server, answering validly, gives a successful run', async () => {
    fake.scenario = {
      greeting: { kind: 'valid', drip: [] }, greetingFields: { modes: Mode.UNAUTHENTICATED, count: 1024 },
      serverStart: { kind: 'valid', drip: [] }, serverStartAccept: 0,
      acceptSession: { kind: 'valid', drip: [5] }, acceptSessionAccept: 0,
      startAck: { kind: 'valid', drip: [] }, startAckAccept: 0,
      trailing: null, udp: 'reflect', udpRandom: [new Uint8Array(0)],
    };
    const out = await sender().runOnce();
    assert.ok(out.ok, out.ok ? '' : `${out.reason}: ${out.error.message}`);
    assert.equal(out.result.session.stats.rxPackets, N_PACKETS);
    fake.dropAll();
  });

  it('runOnce always resolves, within its bound, with ok or a known FailureReason', async (t) => {
    const s = sender();
    const seen = new Map<string, number>();
    await checkAsync(25, fc.asyncProperty(scenarioArb, async (sc) => {
      fake.scenario = sc;
      const t0 = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const hang = new Promise<'hang'>((r) => { timer = setTimeout(() => r('hang'), RUN_BOUND_MS); });
      let out: Awaited<ReturnType<TwampSender['runOnce']>> | 'hang';
      try {
        out = await Promise.race([s.runOnce(), hang]);
      } catch (e) {
        assert.fail(`runOnce rejected: ${(e as Error).stack ?? String(e)}`);
      } finally {
        clearTimeout(timer);
      }
      const ms = Date.now() - t0;
      assert.notEqual(out, 'hang', `runOnce did not resolve within ${RUN_BOUND_MS} ms`);
      if (out === 'hang') return;
      const key = out.ok ? 'ok' : out.reason;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      if (!out.ok) {
        assert.ok((REASONS as readonly string[]).includes(out.reason), `unknown reason ${out.reason}`);
        assert.ok(out.error instanceof Error);
        assert.notEqual(out.reason, 'aborted', 'nobody aborted this run');
      } else {
        const st = out.result.session.stats;
        assert.equal(st.txPackets, N_PACKETS);
        assert.ok(st.rxPackets <= st.txPackets, `rx ${st.rxPackets} > tx ${st.txPackets}`);
      }
      assert.ok(ms < RUN_BOUND_MS, `run took ${ms} ms`);
      // Let the client's close and the fake's teardown settle, then check nothing escaped.
      fake.dropAll();
      await sleep(5);
      trap.assertClean('sender');
    }));
    t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries(seen))}`);
    // The scenarios reach both outcomes (a vacuous run would only ever fail early).
    assert.ok((seen.get('ok') ?? 0) > 0 || seen.size > 1, `outcomes: ${JSON.stringify([...seen])}`);
  });
});
