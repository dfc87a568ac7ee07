/**
 * Adversarial run: `sudo npm run attack [-- --only NAME,NAME] [--count N]`.
 *
 * Starts two `otel-twamp reflect` processes on loopback, as an operator
 * would run them (a TWAMP-Control + TWAMP-Light reflector with Prometheus
 * metrics, and an authenticated-STAMP reflector), then replays every attack
 * of docs/security.md against them, one at a time. During each
 * attack perfSONAR `twping` measures from another loopback address
 * (127.0.0.2), as an innocent client would. For each attack it prints
 * whether the reflector held, twping's loss and RTT median/max, the
 * reflector's RSS and open file descriptors before, during and after, and
 * what the attack-specific check saw.
 *
 * Attacks that need a source address or port we cannot bind (port 0, spoofed
 * sources) send through scripts/attack/spoof.py (raw IPv4 socket: root). All
 * traffic stays on 127.0.0.0/8; every loop is bounded in count and time.
 * Needs the perfSONAR peers (`bash scripts/peers.sh .peers` or
 * OTEL_TWAMP_PEERS); exits 0 when every attack held, 1 otherwise, 2 when it
 * cannot run.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import {
  ServerGreeting, SetupResponse, ServerStart, RequestTwSession, AcceptSession, StartSessions,
  Mode, writeStampAuthSenderPacket, STAMP_AUTH_SIZE, typePFromDscp,
} from '../src/protocol/index.js';
import { StreamReader } from '../src/session/streamReader.js';
import { findPeers, runTwping, type Peers, type TwpingResult } from '../test/helpers/peers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const SPOOF = join(ROOT, 'scripts', 'attack', 'spoof.py');
const HOST = '127.0.0.1';
/** The innocent client's address (twping -S). */
const INNOCENT = '127.0.0.2';
const KEY_ID = 'attack';
const PASSPHRASE = 'attack-secret-1';
/** Short timeouts so the slow attacks finish in seconds, not minutes (the defaults are longer). */
const CONTROL_TIMEOUT_S = 5;
const SERVWAIT_S = 8;
const REFWAIT_S = 3;
const MAX_PPS = 20_000;
const KDF_COUNT = 2 ** 20;
/** Most the reflector's RSS may grow during any attack. */
const MAX_RSS_GROWTH_MB = 100;
/** Global TWAMP-Light reply budget given to the reflector under attack. */
const LIGHT_MAX_PPS = 5000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Sample { rssMb: number; fds: number }
interface Measured { before: Sample; during: Sample; after: Sample; twping: TwpingResult | undefined; twpingError?: string; logBytes: number }
interface Verdict { held: boolean; detail: string }
/**
 * An attack calls `ready()` once it is in place (twping starts then) and,
 * if it lasts, keeps it up until `done` (twping finished); one-shot attacks
 * may simply finish. It returns its own verdict.
 */
interface Phase { ready(): void; done: Promise<void> }
interface Attack {
  name: string;
  what: string;
  run(ctx: Ctx, phase: Phase): Promise<Verdict>;
}

interface Reflector { proc: ChildProcess; port: number; lightPort: number; metricsPort: number; log: { bytes: number; lines: string[] }; exited: string | undefined }
interface Ctx { main: Reflector; stamp: Reflector; dir: string; peers: Peers }

async function freePort(type: 'tcp' | 'udp' = 'tcp'): Promise<number> {
  if (type === 'udp') {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, HOST, () => r()));
    const p = s.address().port;
    s.close();
    return p;
  }
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, HOST, () => r()));
  const a = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return a && typeof a === 'object' ? a.port : 0;
}

function sample(pid: number | undefined): Sample {
  if (pid === undefined) return { rssMb: NaN, fds: NaN };
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    return { rssMb: rssKb / 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return { rssMb: NaN, fds: NaN };
  }
}

async function startReflector(args: string[], port: number, lightPort: number, metricsPort: number): Promise<Reflector> {
  const proc = spawn(process.execPath, [CLI, 'reflect', ...args, '--metrics', `${HOST}:${metricsPort}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  const r: Reflector = { proc, port, lightPort, metricsPort, log: { bytes: 0, lines: [] }, exited: undefined };
  const onData = (b: Buffer): void => {
    r.log.bytes += b.length;
    if (r.log.lines.length < 2000) r.log.lines.push(...b.toString('utf8').split('\n').filter(Boolean));
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  proc.once('exit', (code, signal) => { r.exited = `exited with ${signal ?? code}`; });
  for (let i = 0; i < 100; i++) {
    if (r.exited) throw new Error(`reflector ${args.join(' ')} ${r.exited}:\n${r.log.lines.join('\n')}`);
    if (await scrape(metricsPort).then(() => true, () => false)) return r;
    await sleep(100);
  }
  throw new Error(`reflector did not come up:\n${r.log.lines.join('\n')}`);
}

function scrape(port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((res, rej) => {
    const req = httpRequest({ host: HOST, port, path: '/metrics', timeout: timeoutMs, agent: false }, (resp) => {
      let body = '';
      resp.setEncoding('utf8');
      resp.on('data', (d: string) => { body += d; });
      resp.on('end', () => (resp.statusCode === 200 ? res(body) : rej(new Error(`HTTP ${resp.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('scrape timed out')));
    req.on('error', rej);
    req.end();
  });
}

/** Sum of every series of a metric whose name contains `name` (one reflector per process). */
async function metric(port: number, name: string, labelFilter = ''): Promise<number> {
  const text = await scrape(port).catch(() => '');
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m && m[1]!.includes(name) && (m[2] ?? '').includes(labelFilter)) sum += Number(m[3]);
  }
  return sum;
}

function spoof(dstPort: number, payload: Buffer, count: number, seconds: number, src: string): Promise<number> {
  return new Promise((res, rej) => {
    const cp = spawn('python3', [SPOOF, HOST, String(dstPort), payload.toString('hex'), String(count), String(seconds), src], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    cp.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    cp.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    cp.once('error', rej);
    cp.once('close', (code) => (code === 0 ? res(Number(out.trim())) : rej(new Error(`spoof.py: exit ${code}: ${err.trim()}`))));
  });
}

// ------------------------------------------------------------ TWAMP-Control by hand

interface Control { socket: Socket; reader: StreamReader; modes: number }

async function greet(src: string, port: number, timeoutMs = 5000): Promise<Control> {
  const socket = connect({ host: HOST, port, localAddress: src });
  socket.on('error', () => undefined);
  await new Promise<void>((res, rej) => { socket.once('connect', () => res()); socket.once('error', rej); });
  const reader = new StreamReader(socket, `attacker ${src}`);
  const g = ServerGreeting.decode(await reader.read(ServerGreeting.SIZE, timeoutMs, 'Server-Greeting'));
  return { socket, reader, modes: g.modes };
}

async function openControl(src: string, port: number): Promise<Control | undefined> {
  const c = await greet(src, port);
  if (c.modes === 0) { c.socket.destroy(); return undefined; }
  c.socket.write(SetupResponse.encode({ mode: Mode.UNAUTHENTICATED, keyId: Buffer.alloc(80), token: Buffer.alloc(64), clientIv: Buffer.alloc(16) }));
  const s = ServerStart.decode(await c.reader.read(ServerStart.SIZE, 5000, 'Server-Start'));
  if (s.accept !== 0) { c.socket.destroy(); return undefined; }
  return c;
}

async function requestSession(c: Control, o: { senderAddress: string; senderPort: number; receiverPort?: number }): Promise<{ accept: number; port: number }> {
  c.socket.write(RequestTwSession.encode({
    ipvn: 4, senderPort: o.senderPort, receiverPort: o.receiverPort ?? 0, senderAddress: o.senderAddress, receiverAddress: '0.0.0.0',
    paddingLength: 27, startTime: 0n, timeout: 2n << 32n, typeP: typePFromDscp(0),
  }));
  const a = AcceptSession.decode(await c.reader.read(AcceptSession.SIZE, 5000, 'Accept-Session'));
  return { accept: a.accept, port: a.port };
}

async function startSessions(c: Control): Promise<void> {
  c.socket.write(StartSessions.encode({}));
  await c.reader.read(32, 5000, 'Start-Ack');
}

async function udpOn(address: string): Promise<UdpSocket> {
  const s = createSocket('udp4');
  s.on('error', () => undefined);
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  return s;
}

function closedWithin(s: Socket, ms: number): Promise<boolean> {
  if (s.destroyed) return Promise.resolve(true);
  return new Promise((res) => {
    const t = setTimeout(() => res(false), ms);
    s.once('close', () => { clearTimeout(t); res(true); });
  });
}

// ------------------------------------------------------------ the attacks

const ATTACKS: Attack[] = [
  {
    name: 'light-port-0',
    what: 'datagrams with UDP source port 0 to the TWAMP-Light port (dgram.send throws on port 0)',
    async run({ main }, { ready }) {
      ready();
      await spoof(main.lightPort, Buffer.alloc(44), 20, 0, '127.0.0.9:0');
      await sleep(300);
      const probe = await udpOn(HOST);
      const got = new Promise<boolean>((res) => { probe.once('message', () => res(true)); setTimeout(() => res(false), 1000); });
      probe.send(Buffer.alloc(44), main.lightPort, HOST);
      const answered = await got;
      probe.close();
      return { held: main.exited === undefined && answered, detail: main.exited ? `reflector ${main.exited}` : `alive; Light answers afterwards: ${answered}` };
    },
  },
  {
    name: 'control-flood',
    what: '400 control connections from one address, idle after the greeting (pre-Set-Up)',
    async run({ main }, { ready, done }) {
      const socks: Socket[] = [];
      for (let i = 0; i < 400; i++) {
        const s = connect({ host: HOST, port: main.port, localAddress: HOST });
        s.on('error', () => undefined);
        socks.push(s);
        if (i % 50 === 49) await sleep(20);
      }
      await sleep(1000);
      ready();
      await done;
      const open = socks.filter((s) => !s.destroyed).length;
      for (const s of socks) s.destroy();
      return { held: true, detail: `${open} of 400 still open at the end (innocent client judged by twping)` };
    },
  },
  {
    name: 'setup-hog',
    what: '200 open-mode control connections completing Set-Up from one address, then idle',
    async run({ main }, { ready, done }) {
      const got: Control[] = [];
      let refused = 0;
      await Promise.all(Array.from({ length: 200 }, async () => {
        const c = await openControl('127.0.0.3', main.port).catch(() => undefined);
        if (c) got.push(c); else refused++;
      }));
      ready();
      await done;
      for (const c of got) c.socket.destroy();
      return { held: got.length <= 16, detail: `${got.length} connections served, ${refused} refused (per-client limit)` };
    },
  },
  {
    name: 'session-hog',
    what: 'one address requests as many test sessions as it can over its connections',
    async run({ main }, { ready, done }) {
      const conns: Control[] = [];
      for (let i = 0; i < 16; i++) {
        const c = await openControl('127.0.0.3', main.port).catch(() => undefined);
        if (c) conns.push(c);
      }
      let accepted = 0;
      let refused = 0;
      const sock = await udpOn('127.0.0.3');
      for (const c of conns) {
        for (let i = 0; i < 40; i++) {
          const a = await requestSession(c, { senderAddress: '127.0.0.3', senderPort: sock.address().port }).catch(() => ({ accept: -1, port: 0 }));
          if (a.accept === 0) accepted++; else { refused++; if (a.accept === -1) break; }
        }
      }
      ready();
      await done;
      for (const c of conns) c.socket.destroy();
      sock.close();
      return { held: accepted <= 64, detail: `${accepted} sessions accepted, ${refused} refused (max_sessions_per_client)` };
    },
  },
  {
    name: 'slowloris',
    what: `50 connections trickling one octet of Set-Up-Response a second (control_timeout ${CONTROL_TIMEOUT_S} s)`,
    async run({ main }, { ready }) {
      ready();
      const conns = (await Promise.all(Array.from({ length: 50 }, () => greet('127.0.0.4', main.port).catch(() => undefined)))).filter((c): c is Control => c !== undefined);
      const timer = setInterval(() => { for (const c of conns) if (!c.socket.destroyed) c.socket.write(Buffer.alloc(1)); }, 1000);
      const closed = await Promise.all(conns.map((c) => closedWithin(c.socket, (CONTROL_TIMEOUT_S + 3) * 1000)));
      clearInterval(timer);
      for (const c of conns) c.socket.destroy();
      const n = closed.filter(Boolean).length;
      return { held: n === conns.length, detail: `${n} of ${conns.length} closed within control_timeout + 3 s` };
    },
  },
  {
    name: 'idle-after-session',
    what: `a session that ends by REFWAIT (${REFWAIT_S} s), then an idle control connection (SERVWAIT ${SERVWAIT_S} s)`,
    async run({ main }, { ready }) {
      ready();
      const c = await openControl('127.0.0.4', main.port);
      if (!c) return { held: false, detail: 'could not connect' };
      const sock = await udpOn('127.0.0.4');
      await requestSession(c, { senderAddress: '127.0.0.4', senderPort: sock.address().port });
      await startSessions(c);
      const closed = await closedWithin(c.socket, (REFWAIT_S + SERVWAIT_S + 3) * 1000);
      c.socket.destroy();
      sock.close();
      return { held: closed, detail: closed ? 'closed after REFWAIT + SERVWAIT' : `still open after ${REFWAIT_S + SERVWAIT_S + 3} s` };
    },
  },
  {
    name: 'pps-drain',
    what: `one address blasts its own sessions at ~30,000 pps (max_pps ${MAX_PPS})`,
    async run({ main }, { ready, done }) {
      const socks: UdpSocket[] = [];
      const targets: number[] = [];
      const c = await openControl('127.0.0.3', main.port);
      if (!c) return { held: false, detail: 'could not connect' };
      for (let i = 0; i < 4; i++) {
        const s = await udpOn('127.0.0.3');
        const a = await requestSession(c, { senderAddress: '127.0.0.3', senderPort: s.address().port });
        if (a.accept === 0) { socks.push(s); targets.push(a.port); } else s.close();
      }
      await startSessions(c);
      const pkt = Buffer.alloc(41);
      let sent = 0;
      const t0 = Date.now();
      const tick = setInterval(() => {
        for (let k = 0; k < 75; k++) for (let i = 0; i < socks.length; i++) { socks[i]!.send(pkt, targets[i]!, HOST); sent++; }
      }, 10);
      await sleep(500);
      ready();
      await done;
      clearInterval(tick);
      c.socket.destroy();
      for (const s of socks) s.close();
      return { held: true, detail: `${sent} packets in ${((Date.now() - t0) / 1000).toFixed(1)} s on ${socks.length} sessions (innocent client judged by twping)` };
    },
  },
  {
    name: 'kdf-stall',
    what: `authenticated Set-Ups with unknown KeyIDs at kdf_count ${KDF_COUNT} (PBKDF2 per set-up)`,
    async run({ main }, { ready, done }) {
      let made = 0;
      let stop = false;
      const worker = async (): Promise<void> => {
        while (!stop) {
          const c = await greet('127.0.0.5', main.port).catch(() => undefined);
          if (!c) { await sleep(50); continue; }
          made++;
          c.socket.write(SetupResponse.encode({ mode: Mode.AUTHENTICATED, keyId: randomBytes(80), token: randomBytes(64), clientIv: randomBytes(16) }));
          await c.reader.read(ServerStart.SIZE, 10_000, 'Server-Start').catch(() => undefined);
          c.socket.destroy();
        }
      };
      const workers = Array.from({ length: 8 }, worker);
      await sleep(500);
      ready();
      await done;
      stop = true;
      await Promise.all(workers);
      return { held: true, detail: `${made} set-ups with bad KeyIDs (judged by twping's RTT max)` };
    },
  },
  {
    name: 'session-churn-log',
    what: '1,500 sessions set up and torn down as fast as possible (log volume)',
    async run({ main }, { ready }) {
      ready();
      const before = main.log.bytes;
      let sessions = 0;
      const sock = await udpOn('127.0.0.6');
      const workers = Array.from({ length: 6 }, async () => {
        while (sessions < 1500) {
          const c = await openControl('127.0.0.6', main.port).catch(() => undefined);
          if (!c) { await sleep(20); continue; }
          for (let i = 0; i < 10 && sessions < 1500; i++) {
            const a = await requestSession(c, { senderAddress: '127.0.0.6', senderPort: sock.address().port }).catch(() => ({ accept: -1, port: 0 }));
            if (a.accept === 0) sessions++;
          }
          c.socket.destroy();
        }
      });
      await Promise.all(workers);
      await sleep(500);
      sock.close();
      const bytes = main.log.bytes - before;
      return { held: bytes < 64 * 1024, detail: `${sessions} sessions wrote ${(bytes / 1024).toFixed(1)} KiB of log` };
    },
  },
  {
    name: 'third-party-sender',
    what: 'Request-TW-Session naming another host (127.0.0.9) as Sender Address',
    async run({ main }, { ready }) {
      ready();
      const c = await openControl('127.0.0.7', main.port);
      if (!c) return { held: false, detail: 'could not connect' };
      const a = await requestSession(c, { senderAddress: '127.0.0.9', senderPort: 40_000 });
      c.socket.destroy();
      return { held: a.accept !== 0, detail: `Accept ${a.accept}` };
    },
  },
  {
    name: 'low-reply-port',
    what: 'Request-TW-Session with Sender Port 53 (replies aimed at DNS)',
    async run({ main }, { ready }) {
      ready();
      const c = await openControl('127.0.0.7', main.port);
      if (!c) return { held: false, detail: 'could not connect' };
      const a = await requestSession(c, { senderAddress: '127.0.0.7', senderPort: 53 });
      const b = await requestSession(c, { senderAddress: '127.0.0.7', senderPort: 40_001, receiverPort: 53 });
      c.socket.destroy();
      return { held: a.accept !== 0 && (b.accept !== 0 || b.port >= 1024), detail: `sender port 53: Accept ${a.accept}; receiver port 53: Accept ${b.accept}, port ${b.port}` };
    },
  },
  {
    name: 'light-spoof-flood',
    what: 'TWAMP-Light requests from random spoofed 127/8 sources for 5 s',
    async run({ main }, { ready, done }) {
      const before = await metric(main.metricsPort, 'reflected_pkt');
      let finished = false;
      void done.then(() => { finished = true; });
      let sent = 0;
      const t0 = Date.now();
      const flood = (async () => { while (!finished) sent += await spoof(main.lightPort, Buffer.alloc(44), 0, 1, 'random'); })();
      await sleep(500);
      ready();
      await flood;
      const s = (Date.now() - t0) / 1000;
      await sleep(300);
      const replies = (await metric(main.metricsPort, 'reflected_pkt')) - before;
      return { held: replies / s <= LIGHT_MAX_PPS * 1.1, detail: `${sent} spoofed requests in ${s.toFixed(1)} s → ${replies} replies (${Math.round(replies / s)}/s; light_max_pps ${LIGHT_MAX_PPS})` };
    },
  },
  {
    name: 'light-amplification',
    what: '14-octet TWAMP-Light requests at 2,000 pps from one source (reply octets vs request octets)',
    async run({ main }, { ready }) {
      ready();
      const s = await udpOn('127.0.0.8');
      const before = await metric(main.metricsPort, 'reflected_octets');
      let sent = 0;
      const t0 = Date.now();
      await new Promise<void>((done) => {
        const tick = setInterval(() => {
          for (let k = 0; k < 20; k++) { s.send(Buffer.alloc(14), main.lightPort, HOST); sent++; }
          if (Date.now() - t0 > 3000) { clearInterval(tick); done(); }
        }, 10);
      });
      await sleep(300);
      s.close();
      const replyOctets = (await metric(main.metricsPort, 'reflected_octets')) - before;
      const factor = replyOctets / (sent * (14 + 28));
      return { held: factor <= 1.8, detail: `${sent} requests of 42 octets (IP) → ${replyOctets} reply octets: ×${factor.toFixed(2)} at IP level` };
    },
  },
  {
    name: 'stamp-replay',
    what: 'one valid authenticated STAMP packet replayed 50 times',
    async run({ stamp }, { ready }) {
      ready();
      const s = await udpOn('127.0.0.8');
      let replies = 0;
      s.on('message', () => { replies++; });
      const pkt = Buffer.alloc(STAMP_AUTH_SIZE);
      writeStampAuthSenderPacket(pkt, { seq: 7, timestamp: 1n << 32n, errorEstimate: 0x8001, ssid: 1 }, Buffer.from(PASSPHRASE));
      for (let i = 0; i < 51; i++) { s.send(pkt, stamp.lightPort, HOST); await sleep(5); }
      await sleep(500);
      s.close();
      return { held: replies === 1, detail: `51 copies → ${replies} replies` };
    },
  },
  {
    name: 'metrics-idle',
    what: '5,000 idle TCP connections to the Prometheus endpoint',
    async run({ main }, { ready, done }) {
      const socks: Socket[] = [];
      for (let i = 0; i < 5000; i++) {
        const s = connect({ host: HOST, port: main.metricsPort });
        s.on('error', () => undefined);
        socks.push(s);
        if (i % 200 === 199) await sleep(20);
      }
      await sleep(1000);
      ready();
      const scrapeOk = await scrape(main.metricsPort).then(() => true, () => false);
      await done;
      const open = socks.filter((s) => !s.destroyed).length;
      for (const s of socks) s.destroy();
      return { held: scrapeOk, detail: `${open} of 5000 still open; a scrape during the attack ${scrapeOk ? 'worked' : 'FAILED'}` };
    },
  },
  {
    name: 'metrics-pipeline',
    what: '100 clients pipelining 2,000 scrapes each',
    async run({ main }, { ready, done }) {
      const req = Buffer.from(`GET /metrics HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`.repeat(2000));
      const socks: Socket[] = [];
      let received = 0;
      for (let i = 0; i < 100; i++) {
        const s = connect({ host: HOST, port: main.metricsPort });
        s.on('error', () => undefined);
        s.on('data', (d: Buffer) => { received += d.length; });
        s.on('connect', () => s.write(req));
        socks.push(s);
      }
      await sleep(500);
      ready();
      await done;
      for (const s of socks) s.destroy();
      return { held: true, detail: `${(received / 1e6).toFixed(1)} MB of responses sent (judged by RSS and twping)` };
    },
  },
];

// ------------------------------------------------------------ driver

function twpingVerdict(m: Measured, baselineMedianMs: number): { ok: boolean; why: string } {
  const t = m.twping;
  if (!t || t.lossPercent === undefined) return { ok: false, why: `twping failed: ${m.twpingError ?? `exit ${t?.code}: ${(t?.stderr ?? '').trim().split('\n').pop()}`}` };
  if (t.lossPercent > 1) return { ok: false, why: `twping lost ${t.lossPercent} %` };
  if ((t.rtMaxMs ?? 0) > 100) return { ok: false, why: `twping RTT max ${t.rtMaxMs} ms (stalls)` };
  if ((t.rtMedianMs ?? 0) > Math.max(5, baselineMedianMs * 10)) return { ok: false, why: `twping RTT median ${t.rtMedianMs} ms vs ${baselineMedianMs} ms at rest` };
  return { ok: true, why: '' };
}

function fmt(n: number | undefined, digits = 1): string {
  return n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits);
}

async function measure(ctx: Ctx, count: number, attack: Attack | undefined): Promise<{ m: Measured; v: Verdict }> {
  const pid = ctx.main.proc.pid;
  const logBefore = ctx.main.log.bytes;
  const before = sample(pid);
  let peak: Sample = before;
  const sampler = setInterval(() => {
    const s = sample(pid);
    peak = { rssMb: Math.max(peak.rssMb, s.rssMb), fds: Math.max(peak.fds, s.fds) };
  }, 250);
  let ready!: () => void;
  const isReady = new Promise<void>((r) => { ready = r; });
  let finish!: () => void;
  const done = new Promise<void>((r) => { finish = r; });
  const verdict = attack
    ? attack.run(ctx, { ready, done }).catch((e: Error) => ({ held: false, detail: `attack failed to run: ${e.message}` }))
    : (ready(), Promise.resolve({ held: true, detail: '' }));
  // twping starts once the attack is in place (or already over).
  await Promise.race([isReady, verdict]);
  const twr = await runTwping(ctx.peers, `${HOST}:${ctx.main.port}`, ['-S', INNOCENT, '-c', String(count), '-i', '0.02f', '-L', '2'], 120_000)
    .then((r) => ({ r }), (e: Error) => ({ e }));
  finish();
  const v = await verdict;
  clearInterval(sampler);
  await sleep(1500);
  const after = sample(pid);
  const m: Measured = {
    before, during: peak, after, twping: 'r' in twr ? twr.r : undefined, logBytes: ctx.main.log.bytes - logBefore,
    ...('e' in twr ? { twpingError: twr.e.message.split('\n')[0]! } : {}),
  };
  return { m, v };
}

function parseCli(argv: string[]): { only: Set<string> | undefined; count: number } {
  let only: Set<string> | undefined;
  let count = 200;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--only') only = new Set(String(argv[++i]).split(','));
    else if (argv[i] === '--count') count = Number(argv[++i]);
    else {
      process.stderr.write(`usage: npm run attack -- [--only ${ATTACKS.map((a) => a.name).join(',')}] [--count N]\n`);
      process.exit(2);
    }
  }
  for (const n of only ?? []) if (!ATTACKS.some((a) => a.name === n)) { process.stderr.write(`attack: unknown attack ${JSON.stringify(n)}\n`); process.exit(2); }
  return { only, count };
}

async function main(): Promise<number> {
  const { only, count } = parseCli(process.argv.slice(2));
  const peers = findPeers();
  if ('missing' in peers) { process.stderr.write(`attack: ${peers.missing}\n`); return 2; }
  if (process.getuid?.() !== 0) { process.stderr.write('attack: needs root (raw sockets for spoofed sources)\n'); return 2; }
  try { execFileSync('python3', ['--version']); } catch { process.stderr.write('attack: needs python3 (scripts/attack/spoof.py)\n'); return 2; }
  const dir = mkdtempSync(join(tmpdir(), 'otel-twamp-attack-'));
  writeFileSync(join(dir, 'keys.pfs'), `${KEY_ID} ${Buffer.from(PASSPHRASE).toString('hex')}\n`, { mode: 0o600 });
  const [port, lightPort, metricsPort, stampPort, stampMetrics] = [await freePort(), await freePort('udp'), await freePort(), await freePort('udp'), await freePort()];
  const main = await startReflector([
    '--listen', HOST, '--port', String(port), '--light-port', String(lightPort),
    '--modes', 'open,authenticated', '--key-file', join(dir, 'keys.pfs'), '--kdf-count', String(KDF_COUNT),
    '--control-timeout', String(CONTROL_TIMEOUT_S), '--servwait', String(SERVWAIT_S), '--refwait', String(REFWAIT_S),
    '--max-pps', String(MAX_PPS), '--light-max-pps', String(LIGHT_MAX_PPS),
  ], port, lightPort, metricsPort);
  const stamp = await startReflector([
    '--listen', HOST, '--light-port', String(stampPort), '--light-only', '--key-file', join(dir, 'keys.pfs'), '--light-key-id', KEY_ID,
  ], 0, stampPort, stampMetrics);
  const ctx: Ctx = { main, stamp, dir, peers };
  let failed = 0;
  try {
    const rest = await measure(ctx, count, undefined);
    const base = rest.m.twping?.rtMedianMs ?? 0.1;
    console.log(`at rest: twping ${count} packets from ${INNOCENT}: loss ${fmt(rest.m.twping?.lossPercent)} %, RTT median ${fmt(rest.m.twping?.rtMedianMs, 3)} ms, ` +
      `max ${fmt(rest.m.twping?.rtMaxMs, 3)} ms; RSS ${fmt(rest.m.before.rssMb)} MB, fds ${rest.m.before.fds}\n`);
    const header = ['attack', 'result', 'twping loss %', 'RTT med/max ms', 'RSS MB before/during/after', 'fds before/during/after', 'log KiB'];
    console.log(header.join(' | '));
    for (const attack of ATTACKS) {
      if (only && !only.has(attack.name)) continue;
      const { m, v } = await measure(ctx, count, attack);
      const tw = twpingVerdict(m, base);
      const alive = main.exited === undefined && stamp.exited === undefined;
      // Whatever the attack, the reflector must not balloon or leak descriptors.
      const grew = m.during.rssMb - m.before.rssMb > MAX_RSS_GROWTH_MB ? `RSS grew ${fmt(m.during.rssMb - m.before.rssMb)} MB` : '';
      const leaked = m.after.fds > m.before.fds + 4 ? `${m.after.fds - m.before.fds} descriptors not returned` : '';
      const held = v.held && tw.ok && alive && !grew && !leaked;
      if (!held) failed++;
      console.log([
        attack.name, held ? 'held' : 'FAILED', fmt(m.twping?.lossPercent),
        `${fmt(m.twping?.rtMedianMs, 3)}/${fmt(m.twping?.rtMaxMs, 3)}`,
        `${fmt(m.before.rssMb)}/${fmt(m.during.rssMb)}/${fmt(m.after.rssMb)}`,
        `${m.before.fds}/${m.during.fds}/${m.after.fds}`, fmt(m.logBytes / 1024),
      ].join(' | '));
      console.log(`    ${attack.what}: ${v.detail}${tw.ok ? '' : `; ${tw.why}`}${grew ? `; ${grew}` : ''}${leaked ? `; ${leaked}` : ''}` +
        `${alive ? '' : `; reflector ${main.exited ?? stamp.exited}`}`);
      if (!alive) break;
    }
  } finally {
    main.proc.kill('SIGTERM');
    stamp.proc.kill('SIGTERM');
    await sleep(500);
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(failed === 0 ? '\nevery attack held' : `\n${failed} attack(s) FAILED`);
  return failed === 0 ? 0 : 1;
}

main().then((code) => process.exit(code), (e: Error) => { process.stderr.write(`attack: ${e.stack ?? e.message}\n`); process.exit(2); });
