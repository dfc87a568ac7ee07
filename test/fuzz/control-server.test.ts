// Property-based fuzzing of the TWAMP-Control server state machine over real
// loopback TCP. fast-check generates what a client sends — a
// Set-Up-Response, then valid Request-TW-Session / Start / Stop mixed with
// truncated messages, junk, unknown and Start-/Stop-N commands with huge N,
// pauses and early closes — and each run checks that:
//   - the reflector never crashes (no unhandled rejection or exception),
//   - every reply is a whole message of a valid size, in the order a model of
//     the server's framing predicts (64 greeting, 48 Server-Start, 48
//     Accept-Session per request, 32 Start-Ack per start),
//   - no garbage request is accepted,
//   - the connection ends within a bound after junk the server cannot frame,
//   - afterwards a legitimate TwampSender.runOnce() still succeeds (rx = tx)
//     and no session outlives its control connection.
// Budget: test/helpers/fuzz.ts.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import fc from 'fast-check';
import {
  SetupResponse, RequestTwSession, StartSessions, StopSessions, ServerGreeting, ServerStart, AcceptSession, StartAck,
  clientCommandLength, Mode,
} from '../../src/protocol/index.js';
import { TwampReflector } from '../../src/reflector.js';
import { TwampSender } from '../../src/sender.js';
import { ControlServer, newControlServerCounters } from '../../src/session/controlServer.js';
import { systemClock } from '../../src/session/clock.js';
import { silentLogger } from '../../src/util/log.js';
import { checkAsync, CrashTrap, testTimeout } from '../helpers/fuzz.js';
import { parseReflectorConfig, parseSenderConfig } from '../../src/config/index.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const HOST = '127.0.0.1';
/** How long the server may take to close after a message it cannot frame. */
const CLOSE_BOUND_MS = 1500;
/** How long expected replies may take to arrive. */
const REPLY_BOUND_MS = 1500;

// ---------------------------------------------------------------------------
// What the client sends

type Step =
  | { t: 'request'; fields: RequestFields }
  | { t: 'start' }
  | { t: 'stop'; n: number; accept: number }
  | { t: 'truncated'; of: Buffer; keep: number }
  | { t: 'junk'; bytes: Uint8Array }
  | { t: 'oversized'; size: number; fill: number }
  | { t: 'nCmd'; cmd: 7 | 9; n: number }
  | { t: 'unknown'; cmd: number }
  | { t: 'pause'; ms: number }
  | { t: 'close'; how: 'end' | 'destroy' };

interface RequestFields {
  ipvn: number;
  confSender: number;
  confReceiver: number;
  numberOfScheduleSlots: number;
  numberOfPackets: number;
  senderPort: number;
  receiverPort: number;
  senderAddress: string;
  receiverAddress: string;
  typeP: number;
  timeoutMs: number;
  /** Octet 1 high nibble (MBZ, ignored by the server). */
  mbz: number;
}

/** Mostly valid requests; the rest hit one of the server's refusals. */
const requestFields: fc.Arbitrary<RequestFields> = fc.record({
  ipvn: fc.oneof({ weight: 8, arbitrary: fc.constant(4) }, { weight: 1, arbitrary: fc.constantFrom(0, 6, 15) }),
  confSender: fc.oneof({ weight: 9, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }),
  confReceiver: fc.oneof({ weight: 9, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }),
  numberOfScheduleSlots: fc.oneof({ weight: 9, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(3) }),
  numberOfPackets: fc.oneof({ weight: 9, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(0xffffffff) }),
  senderPort: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 1, max: 65535 }) }, { weight: 1, arbitrary: fc.constant(0) }),
  // Only port 0 (server's choice): binding random ports could steal another test's.
  receiverPort: fc.constant(0),
  senderAddress: fc.constantFrom('127.0.0.1', '0.0.0.0', '127.0.0.1', '192.0.2.7'),
  receiverAddress: fc.constantFrom('127.0.0.1', '0.0.0.0', '127.0.0.1', '192.0.2.1', '255.255.255.255'),
  typeP: fc.oneof(fc.constant(0), fc.constant(46 << 24), fc.integer({ min: 0, max: 0xffffffff })),
  timeoutMs: fc.integer({ min: 0, max: 300 }),
  mbz: fc.integer({ min: 0, max: 15 }),
});

function encodeRequest(f: RequestFields): Buffer {
  // Encode a valid IPv4 request, then write the fuzzed IPVN (the encoder refuses bad ones).
  const b = RequestTwSession.encode({
    ipvn: 4, confSender: f.confSender, confReceiver: f.confReceiver, numberOfScheduleSlots: f.numberOfScheduleSlots,
    numberOfPackets: f.numberOfPackets, senderPort: f.senderPort, receiverPort: f.receiverPort,
    senderAddress: f.senderAddress, receiverAddress: f.receiverAddress, paddingLength: 27, startTime: 0n,
    timeout: (BigInt(f.timeoutMs) << 32n) / 1000n, typeP: f.typeP,
  });
  b[1] = (f.mbz << 4) | f.ipvn;
  return b;
}

const wholeMessage = fc.oneof(
  requestFields.map(encodeRequest),
  fc.constant(StartSessions.encode({})),
  fc.record({ accept: fc.integer({ min: 0, max: 255 }), numberOfSessions: fc.integer({ min: 0, max: 0xffffffff }) }).map((s) => StopSessions.encode(s)),
);

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: requestFields.map((fields) => ({ t: 'request' as const, fields })) },
  { weight: 4, arbitrary: fc.constant({ t: 'start' as const }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('stop' as const), n: fc.oneof(fc.constant(1), fc.integer({ min: 0, max: 0xffffffff })), accept: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 255 })) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('truncated' as const), of: wholeMessage, keep: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('junk' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 200 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('nCmd' as const), cmd: fc.constantFrom(7 as const, 9 as const), n: fc.oneof(fc.constant(0xffffffff), fc.integer({ min: 0, max: 0xffffffff })) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('unknown' as const), cmd: fc.integer({ min: 0, max: 255 }).filter((c) => ![2, 3, 5].includes(c)) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('pause' as const), ms: fc.integer({ min: 0, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('close' as const), how: fc.constantFrom('end' as const, 'destroy' as const) }) },
);

/** Rarely: a flood bigger than the server's 64 KiB read buffer. */
const oversizedArb: fc.Arbitrary<Step> = fc.record({
  t: fc.constant('oversized' as const), size: fc.integer({ min: 65 * 1024, max: 96 * 1024 }), fill: fc.constantFrom(2, 3, 5, 0, 0xff),
});

type SetupKind = { mode: number; truncate?: number };
const setupArb: fc.Arbitrary<SetupKind> = fc.oneof(
  { weight: 12, arbitrary: fc.constant({ mode: Mode.UNAUTHENTICATED }) },
  { weight: 1, arbitrary: fc.constant({ mode: 0 }) },
  { weight: 1, arbitrary: fc.constantFrom(Mode.AUTHENTICATED, Mode.ENCRYPTED, Mode.MIXED, Mode.UNAUTHENTICATED | Mode.AUTHENTICATED).map((mode) => ({ mode })) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }).map((mode) => ({ mode })) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 163 }).map((truncate) => ({ mode: Mode.UNAUTHENTICATED, truncate })) },
);

const scenarioArb = fc.record({
  setup: setupArb,
  steps: fc.oneof(
    { weight: 12, arbitrary: fc.array(stepArb, { minLength: 1, maxLength: 10 }) },
    { weight: 1, arbitrary: fc.tuple(fc.array(stepArb, { maxLength: 3 }), oversizedArb).map(([a, o]) => [...a, o]) },
  ),
});
type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

function stepBytes(s: Step): Buffer | undefined {
  switch (s.t) {
    case 'request': return encodeRequest(s.fields);
    case 'start': return StartSessions.encode({});
    case 'stop': return StopSessions.encode({ accept: s.accept, numberOfSessions: s.n });
    case 'truncated': return s.of.subarray(0, s.keep % s.of.length);
    case 'junk': return Buffer.from(s.bytes);
    case 'oversized': return Buffer.alloc(s.size, s.fill);
    case 'nCmd': { const b = Buffer.alloc(32); b[0] = s.cmd; b.writeUInt32BE(s.n, 12); return b; }
    case 'unknown': { const b = Buffer.alloc(32); b[0] = s.cmd; return b; }
    default: return undefined;
  }
}

function setupBytes(s: SetupKind): Buffer {
  const b = SetupResponse.encode({ mode: s.mode });
  return s.truncate === undefined ? b : b.subarray(0, s.truncate);
}

// ---------------------------------------------------------------------------
// A model of the server's framing: which replies the client must see

type Reply =
  | { kind: 'greeting' }
  | { kind: 'server-start'; ok: boolean }
  | { kind: 'accept-session'; mayAccept: boolean }
  | { kind: 'start-ack' };

const REPLY_SIZE: Record<Reply['kind'], number> = { greeting: 64, 'server-start': 48, 'accept-session': 48, 'start-ack': 32 };

interface Prediction {
  replies: Reply[];
  /** The server closes on its own (refused set-up, unframeable command). */
  closes: boolean;
}

/** Whether a framed Request-TW-Session could pass the server's checks (else it must be refused). */
function requestMayBeAccepted(msg: Buffer): boolean {
  const ipvn = msg[1]! & 0x0f;
  // Other IPVNs do not decode. IPVN 6 reads our IPv4 octets as IPv6 addresses (7f00:1:: …):
  // whether those bind depends on the host (ip_nonlocal_bind), so either answer is fine.
  if (ipvn !== 4 && ipvn !== 6) return false;
  if (msg[2] !== 0 || msg[3] !== 0) return false;
  if (msg.readUInt32BE(4) !== 0 || msg.readUInt32BE(8) !== 0) return false;
  if (msg.readUInt16BE(12) === 0) return false;
  return true;
}

function predict(stream: Buffer): Prediction {
  const replies: Reply[] = [{ kind: 'greeting' }];
  if (stream.length < SetupResponse.SIZE) return { replies, closes: false };
  const mode = stream.readUInt32BE(0);
  const security = mode & (Mode.UNAUTHENTICATED | Mode.AUTHENTICATED | Mode.ENCRYPTED | Mode.MIXED);
  if (security === 0) return { replies, closes: true };
  if (security !== Mode.UNAUTHENTICATED) return { replies: [...replies, { kind: 'server-start', ok: false }], closes: true };
  replies.push({ kind: 'server-start', ok: true });
  let pos = SetupResponse.SIZE;
  for (;;) {
    if (stream.length - pos < 16) return { replies, closes: false };
    const first = stream.subarray(pos, pos + 16);
    const cmd = first[0]!;
    const len = clientCommandLength(first);
    if (len === undefined || (cmd !== 2 && cmd !== 3 && cmd !== 5)) {
      replies.push({ kind: 'accept-session', mayAccept: false });
      return { replies, closes: true };
    }
    if (stream.length - pos < len) return { replies, closes: false };
    const msg = stream.subarray(pos, pos + len);
    pos += len;
    if (cmd === 5) replies.push({ kind: 'accept-session', mayAccept: requestMayBeAccepted(msg) });
    else if (cmd === 2) replies.push({ kind: 'start-ack' });
  }
}

function checkReply(r: Reply, b: Buffer, i: number): void {
  const where = `reply ${i} (${r.kind})`;
  switch (r.kind) {
    case 'greeting': {
      const g = ServerGreeting.decode(b);
      assert.ok((g.modes & Mode.UNAUTHENTICATED) !== 0, `${where}: modes 0x${g.modes.toString(16)}`);
      break;
    }
    case 'server-start': {
      const s = ServerStart.decode(b);
      if (r.ok) assert.equal(s.accept, 0, `${where}: Accept`);
      else assert.notEqual(s.accept, 0, `${where}: a mode not offered was accepted`);
      break;
    }
    case 'accept-session': {
      const a = AcceptSession.decode(b);
      if (!r.mayAccept) assert.notEqual(a.accept, 0, `${where}: a malformed or unsupported command was accepted`);
      if (a.accept === 0) assert.notEqual(a.port, 0, `${where}: accepted with port 0`);
      else assert.equal(a.port, 0, `${where}: refused with a port`);
      break;
    }
    case 'start-ack':
      assert.equal(StartAck.decode(b).accept, 0, `${where}: Accept`);
      break;
  }
}

/** Received octets must be exactly the first k predicted replies, whole; returns k. */
function checkReplies(received: Buffer, p: Prediction, mustBeComplete: boolean): number {
  let at = 0;
  let k = 0;
  for (const r of p.replies) {
    const size = REPLY_SIZE[r.kind];
    if (received.length - at < size) break;
    checkReply(r, received.subarray(at, at + size), k);
    at += size;
    k++;
  }
  assert.equal(at, received.length,
    `reply stream of ${received.length} octets is not whole predicted messages (${p.replies.map((r) => r.kind).join(', ')})`);
  if (mustBeComplete) assert.equal(k, p.replies.length, `got ${k} of ${p.replies.length} replies`);
  return k;
}

// ---------------------------------------------------------------------------
// Running a scenario

interface Conn {
  socket: Socket;
  received: () => Buffer;
  closed: Promise<void>;
  isClosed: () => boolean;
}

async function open(port: number): Promise<Conn> {
  const socket = connect({ host: HOST, port });
  socket.setNoDelay(true);
  const chunks: Buffer[] = [];
  let isClosed = false;
  socket.on('data', (d: Buffer) => chunks.push(d));
  socket.on('error', () => undefined); // ECONNRESET after the server gives up is expected
  const closed = new Promise<void>((r) => socket.once('close', () => { isClosed = true; r(); }));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, received: () => Buffer.concat(chunks), closed, isClosed: () => isClosed };
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

async function play(port: number, sc: Scenario): Promise<void> {
  const c = await open(port);
  const sent: Buffer[] = [];
  let earlyClose: 'end' | 'destroy' | undefined;
  try {
    const setup = setupBytes(sc.setup);
    c.socket.write(setup);
    sent.push(setup);
    for (const s of sc.steps) {
      if (c.isClosed()) break;
      if (s.t === 'pause') { await sleep(s.ms); continue; }
      if (s.t === 'close') {
        earlyClose = s.how;
        if (s.how === 'end') c.socket.end(); else c.socket.destroy();
        break;
      }
      const b = stepBytes(s)!;
      if (b.length === 0) continue;
      c.socket.write(b);
      sent.push(b);
    }
    const stream = Buffer.concat(sent);
    const p = predict(stream);
    const total = p.replies.reduce((n, r) => n + REPLY_SIZE[r.kind], 0);

    if (earlyClose === 'destroy') {
      // We stopped reading: whatever arrived before must still be whole messages.
      checkReplies(c.received(), p, false);
      return;
    }
    // The predicted replies arrive (or the connection ends: after our FIN the server may stop answering).
    await waitFor(() => c.received().length >= total || c.isClosed(), REPLY_BOUND_MS);
    if (p.closes) {
      const closed = await waitFor(() => c.isClosed(), CLOSE_BOUND_MS);
      assert.ok(closed, `server did not close within ${CLOSE_BOUND_MS} ms after a message it cannot frame`);
    }
    // Replies may legitimately stop early when
    //  - a flood hits the server's read-buffer limit, or
    //  - the server closes with our unread octets in its receive queue: the kernel
    //    then sends RST, which discards replies we had not read yet (TCP, not the server).
    const flooded = sc.steps.some((s) => s.t === 'oversized');
    checkReplies(c.received(), p, earlyClose === undefined && !flooded && !p.closes);
  } finally {
    c.socket.destroy();
    await c.closed;
  }
}

function legitSender(port: number): TwampSender {
  return new TwampSender(parseSenderConfig({
    id: 'fuzz-legit', reflector: HOST, port, n_packets: 3, model: 'cbr', size: 100, bandwidth: 800_000,
    control_timeout: 2, reply_timeout: 1,
  }));
}

describe('fuzz: TWAMP-Control server state machine over loopback TCP', { timeout: testTimeout(120_000) }, () => {
  let reflector: TwampReflector;
  let port: number;
  let trap: CrashTrap;

  before(async () => {
    trap = new CrashTrap().install();
    reflector = new TwampReflector(parseReflectorConfig({ id: 'fuzz-reflector', listen: HOST, port: 0, refwait: 2, servwait: 2 }));
    port = (await reflector.start()).port;
  });
  after(async () => {
    await reflector.stop();
    trap.uninstall();
  });

  it('a legitimate sender succeeds before fuzzing', async () => {
    const out = await legitSender(port).runOnce();
    assert.ok(out.ok, out.ok ? '' : out.error.message);
    assert.equal(out.result.session.stats.rxPackets, out.result.session.stats.txPackets);
  });

  it('random client message sequences: whole replies, bounded closes, no crash, service intact', async () => {
    const sender = legitSender(port);
    await checkAsync(30, fc.asyncProperty(scenarioArb, async (sc) => {
      await play(port, sc);
      trap.assertClean('reflector');
      // No session outlives its control connection.
      const drained = await waitFor(() => reflector.activeSessions === 0, 1000);
      assert.ok(drained, `${reflector.activeSessions} session(s) left after the control connection closed`);
    }));
    // Service intact: a legitimate run still reflects every packet.
    const out = await sender.runOnce();
    assert.ok(out.ok, out.ok ? '' : `legitimate run failed after fuzzing: ${out.error.message}`);
    assert.equal(out.result.session.stats.rxPackets, out.result.session.stats.txPackets);
    trap.assertClean('reflector');
  });

  it('after every fuzzed connection a legitimate runOnce() still succeeds (rx = tx)', async () => {
    const sender = legitSender(port);
    await checkAsync(8, fc.asyncProperty(scenarioArb, async (sc) => {
      await play(port, sc);
      const out = await sender.runOnce();
      assert.ok(out.ok, out.ok ? '' : `legitimate run failed: ${out.reason}: ${out.error.message}`);
      assert.equal(out.result.session.stats.rxPackets, out.result.session.stats.txPackets);
      trap.assertClean('reflector');
    }));
  });

  it('a concurrent fuzzed connection does not disturb a legitimate session', async () => {
    const sender = legitSender(port);
    await checkAsync(5, fc.asyncProperty(fc.array(scenarioArb, { minLength: 1, maxLength: 3 }), async (scs) => {
      const [out] = await Promise.all([sender.runOnce(), ...scs.map((sc) => play(port, sc))]);
      assert.ok(out.ok, out.ok ? '' : `legitimate run failed next to fuzzed connections: ${out.reason}: ${out.error.message}`);
      assert.equal(out.result.session.stats.rxPackets, out.result.session.stats.txPackets);
      trap.assertClean('reflector');
    }));
  });
});

describe('fuzz: TWAMP-Control server timeouts', { timeout: testTimeout(60_000) }, () => {
  // ControlServer directly: its per-message timeout is not configurable through TwampReflector.
  const MESSAGE_MS = 150;
  const SERVWAIT_MS = 200;
  let server: ControlServer;
  let port: number;
  let trap: CrashTrap;
  let udp: UdpSocket;

  before(async () => {
    trap = new CrashTrap().install();
    server = new ControlServer({
      host: HOST, port: 0, clock: systemClock(), log: silentLogger, counters: newControlServerCounters(),
      messageTimeoutMs: MESSAGE_MS, servwaitMs: SERVWAIT_MS, refwaitMs: 1000,
    });
    port = (await server.listen()).port;
    udp = createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, HOST, () => r()));
  });
  after(async () => {
    await server.close();
    udp.close();
    trap.uninstall();
  });

  it('a client that goes silent mid-message (or idle without sessions) is dropped within its timeout', async () => {
    // Valid prefix, then part of a message (possibly none), then silence.
    const prefixArb = fc.array(fc.oneof(
      requestFields.map((f) => ({ ...f, ipvn: 4, confSender: 0, confReceiver: 0, numberOfScheduleSlots: 0, numberOfPackets: 0 })).map(encodeRequest),
      fc.constant(StopSessions.encode({ accept: 0, numberOfSessions: 0 })),
    ), { maxLength: 3 });
    const cutArb = fc.record({ of: wholeMessage, keep: fc.nat() });
    const setupCut = fc.option(fc.integer({ min: 0, max: 163 }), { freq: 4 });
    await checkAsync(8, fc.asyncProperty(setupCut, prefixArb, cutArb, async (setupKeep, prefix, cut) => {
      const c = await open(port);
      try {
        const setup = SetupResponse.encode({ mode: Mode.UNAUTHENTICATED });
        if (setupKeep !== null) {
          c.socket.write(setup.subarray(0, setupKeep));
        } else {
          c.socket.write(Buffer.concat([setup, ...prefix, cut.of.subarray(0, cut.keep % cut.of.length)]));
        }
        const t0 = Date.now();
        const bound = Math.max(MESSAGE_MS, SERVWAIT_MS) + 1000;
        const closed = await waitFor(() => c.isClosed(), bound);
        assert.ok(closed, `silent client still connected after ${Date.now() - t0} ms`);
        trap.assertClean('control server');
      } finally {
        c.socket.destroy();
        await c.closed;
      }
    }));
    const drained = await waitFor(() => server.activeSessions === 0 && server.activeConnections === 0, 1000);
    assert.ok(drained, `${server.activeSessions} sessions / ${server.activeConnections} connections left`);
  });
});
