// Harness for interop tests against independent TWAMP peers: perfSONAR
// twampd/twping (owamp 5.2.3) and nokia twampy, built by `bash scripts/peers.sh`
// into <repo>/.peers (or wherever OTEL_TWAMP_PEERS points).
//
// Everything here stays on loopback. twampd runs in the foreground (-Z) as our
// child with a throw-away state dir, so a test can never leave one behind:
// stop() and a process 'exit' hook kill it by pid.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

export interface Peers {
  /** install prefix (DEST of scripts/peers.sh) */
  dir: string;
  twampd: string;
  twping: string;
  pfstore?: string;
  /** PYTHONPATH for `python3 -m twampy` */
  twampyPath?: string;
}

/** Credentials written into every twampd state dir (and accepted by twping -k). */
export const TEST_USER = 'testuser';
export const TEST_PASSPHRASE = 'testsecret123';

/** The repository root: the nearest directory above this file with a package.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/**
 * How to provide the peers, said once in every skip or CI failure: a prebuilt
 * install prefix through OTEL_TWAMP_PEERS, or a build from the perfSONAR and
 * twampy sources by scripts/peers.sh (docs/internals.md "Interop tests").
 */
export const PEERS_HINT =
  'set OTEL_TWAMP_PEERS=DIR to a prebuilt peers dir (DIR/bin/twampd, DIR/bin/twping), or run `bash scripts/peers.sh .peers` ' +
  '(needs the perfSONAR owamp/I2util and nokia twampy sources in ../shared/peers or $OTEL_TWAMP_SHARED/peers; ' +
  'see docs/internals.md "Interop tests")';

export function findPeers(): Peers | { missing: string } {
  const fromEnv = process.env.OTEL_TWAMP_PEERS;
  const dir = resolve(fromEnv && fromEnv.length > 0 ? fromEnv : join(repoRoot(), '.peers'));
  const where = fromEnv ? `OTEL_TWAMP_PEERS=${fromEnv}` : dir;
  if (!existsSync(dir)) return { missing: `TWAMP peers not found: ${where} does not exist; ${PEERS_HINT}` };
  const twampd = join(dir, 'bin', 'twampd');
  const twping = join(dir, 'bin', 'twping');
  const absent = [twampd, twping].filter((f) => !existsSync(f));
  if (absent.length > 0) {
    return { missing: `TWAMP peers incomplete in ${where}: missing ${absent.join(', ')}; ${PEERS_HINT}` };
  }
  const peers: Peers = { dir, twampd, twping };
  const pfstore = join(dir, 'bin', 'pfstore');
  if (existsSync(pfstore)) peers.pfstore = pfstore;
  const twampy = join(dir, 'twampy', 'src');
  if (existsSync(join(twampy, 'twampy', '__main__.py'))) peers.twampyPath = twampy;
  return peers;
}

/** CI is set to anything but "", "0" or "false". */
export function isCI(): boolean {
  const ci = (process.env.CI ?? '').toLowerCase();
  return ci !== '' && ci !== '0' && ci !== 'false';
}

/**
 * The peers, or undefined after marking the test skipped. Under CI a missing
 * build is a failure, not a skip: interop coverage must not vanish silently.
 */
export function requirePeersOrSkip(t: TestContext): Peers | undefined {
  const p = findPeers();
  if (!('missing' in p)) return p;
  if (isCI()) {
    throw new Error(`${p.missing} (CI is set: interop tests must not be skipped)`);
  }
  t.skip(p.missing);
  return undefined;
}

/** A port that was free on `host` a moment ago (bind to 0, read, close). */
export async function freePort(host = '127.0.0.1', type: 'tcp' | 'udp' = 'tcp'): Promise<number> {
  if (type === 'udp') {
    const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    return new Promise((res, rej) => {
      sock.once('error', rej);
      sock.bind(0, host, () => {
        const { port } = sock.address();
        sock.close(() => res(port));
      });
    });
  }
  const srv = createServer();
  return new Promise((res, rej) => {
    srv.once('error', rej);
    srv.listen({ port: 0, host, exclusive: true }, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        rej(new Error(`freePort: unexpected address ${String(addr)}`));
        return;
      }
      srv.close(() => res(addr.port));
    });
  });
}

// ---------------------------------------------------------------- twampd

export interface TwampdOptions {
  /** control port; 0 or absent = pick a free loopback port */
  port?: number;
  /** '127.0.0.1' (default) or '::1' */
  host?: string;
  /** twampd authmode letters; default 'OAEM' (all modes, as twampd-start.sh and the captures) */
  authmode?: string;
  /** twampd testports: '0' (default, ephemeral) or 'LOW-HIGH' */
  testPorts?: string;
  /** extra twampd arguments */
  args?: string[];
  /** how long to wait for the control port to listen; default 10 s */
  startTimeoutMs?: number;
}

export interface Twampd {
  port: number;
  host: string;
  /** host:port as twping wants it ('[::1]:port' for IPv6) */
  target: string;
  stateDir: string;
  /** pass-phrase file for twping -k (user testuser) */
  pfsFile: string;
  pid: number;
  stop(): Promise<void>;
  /** everything twampd wrote to stdout/stderr so far */
  log(): string;
}

const live = new Set<ChildProcess>();
let exitHook = false;
function trackChild(cp: ChildProcess): void {
  live.add(cp);
  cp.once('exit', () => live.delete(cp));
  if (!exitHook) {
    exitHook = true;
    // last resort if a test forgets stop() or the runner dies: never leave peers behind
    process.once('exit', () => {
      for (const c of live) {
        try {
          c.kill('SIGKILL');
        } catch {
          /* already gone */
        }
      }
    });
  }
}

export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function pfsLine(user: string, pass: string): string {
  // pfstore format: identity <hex of the pass-phrase>
  return `${user} ${Buffer.from(pass, 'utf8').toString('hex')}\n`;
}

/** Is something listening on TCP host:port? Linux: /proc/net/tcp{,6}; elsewhere a connect probe. */
async function isListening(host: string, port: number): Promise<boolean> {
  const file = host.includes(':') ? '/proc/net/tcp6' : '/proc/net/tcp';
  if (existsSync(file)) {
    const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
    // columns: sl local_address rem_address st ...; LISTEN = 0A
    return readFileSync(file, 'utf8')
      .split('\n')
      .slice(1)
      .some((line) => {
        const cols = line.trim().split(/\s+/);
        return cols.length > 3 && cols[1]!.endsWith(`:${hexPort}`) && cols[3] === '0A';
      });
  }
  return new Promise((res) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function startTwampd(p: Peers, opts: TwampdOptions = {}): Promise<Twampd> {
  const pick = !opts.port;
  // a picked port can be taken between freePort() and twampd's bind: retry a few times
  for (let attempt = 1; ; attempt++) {
    try {
      return await startTwampdOnce(p, opts, pick ? await freePort(opts.host ?? '127.0.0.1', 'tcp') : opts.port!);
    } catch (e) {
      if (!pick || attempt >= 3 || !(e instanceof TwampdExitedError)) throw e;
    }
  }
}

class TwampdExitedError extends Error {}

async function startTwampdOnce(p: Peers, opts: TwampdOptions, port: number): Promise<Twampd> {
  const host = opts.host ?? '127.0.0.1';
  const listen = hostPort(host, port);
  const stateDir = mkdtempSync(join(tmpdir(), 'otel-twamp-twampd-'));
  mkdirSync(join(stateDir, 'data'));
  writeFileSync(
    join(stateDir, 'twamp-server.conf'),
    [
      '# generated by test/helpers/peers.ts',
      `authmode ${opts.authmode ?? 'OAEM'}`,
      `testports ${opts.testPorts ?? '0'}`,
      `srcnode ${listen}`,
      `vardir ${stateDir}`,
      `datadir ${join(stateDir, 'data')}`,
      'verbose',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(stateDir, 'twamp-server.limits'),
    [
      '# generated by test/helpers/peers.ts: everything allowed, no limits',
      'limit root with disk=0, bandwidth=0, delete_on_fetch=on, allow_open_mode=on',
      'limit open with parent=root, allow_open_mode=on',
      'limit trusted with parent=root, allow_open_mode=on',
      'assign default open',
      `assign user ${TEST_USER} trusted`,
      '',
    ].join('\n'),
  );
  const pfsFile = join(stateDir, 'twamp-server.pfs');
  writeFileSync(pfsFile, pfsLine(TEST_USER, TEST_PASSPHRASE));
  chmodSync(pfsFile, 0o600);

  const args = ['-Z'];
  if (process.getuid?.() === 0) args.push('-f'); // twampd refuses root without -f (or -U)
  args.push('-c', stateDir, '-R', stateDir, '-d', join(stateDir, 'data'), '-S', listen, ...(opts.args ?? []));

  const cp = spawn(p.twampd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  trackChild(cp);
  let out = '';
  const append = (b: Buffer) => {
    out += b.toString('utf8');
  };
  cp.stdout!.on('data', append);
  cp.stderr!.on('data', append);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitP = new Promise<void>((res) =>
    cp.once('exit', (code, signal) => {
      exited = { code, signal };
      res();
    }),
  );
  let spawnErr: Error | undefined;
  cp.once('error', (e) => {
    spawnErr = e;
  });

  const cleanup = () => {
    try {
      writeFileSync(join(stateDir, 'twampd.log'), out);
    } catch {
      /* state dir gone */
    }
    if (!process.env.OTEL_TWAMP_KEEP_STATE) rmSync(stateDir, { recursive: true, force: true });
  };

  const stop = async (): Promise<void> => {
    if (!exited && cp.exitCode === null && cp.signalCode === null) {
      cp.kill('SIGTERM'); // the master ends its session children itself
      const t = setTimeout(() => cp.kill('SIGKILL'), 3000);
      await exitP;
      clearTimeout(t);
    }
    cleanup();
  };

  const deadline = Date.now() + (opts.startTimeoutMs ?? 10_000);
  for (;;) {
    if (spawnErr) {
      cleanup();
      throw new Error(`cannot run ${p.twampd}: ${spawnErr.message}`);
    }
    if (exited) {
      cleanup();
      throw new TwampdExitedError(
        `twampd on ${listen} exited (code ${exited.code}, signal ${exited.signal}) before listening:\n${out}`,
      );
    }
    if (await isListening(host, port)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`twampd not listening on ${listen} after ${opts.startTimeoutMs ?? 10_000} ms:\n${out}`);
    }
    await sleep(50);
  }
  return { port, host, target: listen, stateDir, pfsFile, pid: cp.pid!, stop, log: () => out };
}

// ---------------------------------------------------------------- twping

/** One `twping -R` line: "SSEQ STIME SS SERR SRTIME SRS SRERR STTL RSEQ RSTIME RSS RSERR RTIME RS RERR RTTL". */
export interface TwpingRecord {
  senderSeq: number;
  /** sender's send time, 64-bit NTP timestamp */
  sendTime: bigint;
  sendSync: boolean;
  /** error estimate, seconds */
  sendErr: number;
  /** reflector's receive time */
  reflectorRecvTime: bigint;
  reflectorRecvSync: boolean;
  reflectorRecvErr: number;
  /** IP TTL of the test packet as the reflector saw it (Sender TTL) */
  senderTtl: number;
  reflectorSeq: number;
  /** reflector's send (Timestamp) */
  reflectorSendTime: bigint;
  reflectorSendSync: boolean;
  reflectorSendErr: number;
  /** sender's receive time of the reflection; 0n when lost */
  recvTime: bigint;
  recvSync: boolean;
  recvErr: number;
  /** IP TTL of the reflection */
  reflectedTtl: number;
  lost: boolean;
  /** (recv - send) - (reflector send - reflector recv), ms; undefined when lost */
  roundTripMs?: number | undefined;
}

export interface TwpingResult {
  code: number;
  stdout: string;
  stderr: string;
  sent?: number | undefined;
  lost?: number | undefined;
  /** send + reflect duplicates */
  duplicates?: number | undefined;
  sendDuplicates?: number | undefined;
  reflectDuplicates?: number | undefined;
  lossPercent?: number | undefined;
  /** note: twping's median is histogram-bucketed (0.1 ms by default), so it may exceed max */
  rtMinMs?: number | undefined;
  rtMedianMs?: number | undefined;
  rtMaxMs?: number | undefined;
  /** sender (twping) and reflector test ports from the statistics header */
  senderPort?: number | undefined;
  reflectorPort?: number | undefined;
  sid?: string;
  raw?: TwpingRecord[];
  /** `-M` key/value summary, as printed */
  machine?: Record<string, string>;
}

const UNIT_TO_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, ms: 1, s: 1000 };

function num(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

/** NTP 64-bit timestamp difference in ms. */
function ntpDiffMs(a: bigint, b: bigint): number {
  return (Number(a - b) / 2 ** 32) * 1000;
}

const RAW_LINE = /^\d+ \d+ [01] \S+ \d+ [01] \S+ \d+ \d+ \d+ [01] \S+ \d+ [01] \S+ \d+$/;

export function parseTwpingRaw(text: string): TwpingRecord[] {
  const out: TwpingRecord[] = [];
  for (const line of text.split('\n')) {
    const l = line.trim();
    if (!RAW_LINE.test(l)) continue;
    const f = l.split(' ');
    const rec: TwpingRecord = {
      senderSeq: Number(f[0]),
      sendTime: BigInt(f[1]!),
      sendSync: f[2] === '1',
      sendErr: Number(f[3]),
      reflectorRecvTime: BigInt(f[4]!),
      reflectorRecvSync: f[5] === '1',
      reflectorRecvErr: Number(f[6]),
      senderTtl: Number(f[7]),
      reflectorSeq: Number(f[8]),
      reflectorSendTime: BigInt(f[9]!),
      reflectorSendSync: f[10] === '1',
      reflectorSendErr: Number(f[11]),
      recvTime: BigInt(f[12]!),
      recvSync: f[13] === '1',
      recvErr: Number(f[14]),
      reflectedTtl: Number(f[15]),
      lost: BigInt(f[12]!) === 0n,
    };
    if (!rec.lost) {
      rec.roundTripMs =
        ntpDiffMs(rec.recvTime, rec.sendTime) - ntpDiffMs(rec.reflectorSendTime, rec.reflectorRecvTime);
    }
    out.push(rec);
  }
  return out;
}

/**
 * Parse twping output. The human summary (default) looks like:
 *
 *   --- twping statistics from [localhost]:9583 to [127.0.0.1]:9584 ---
 *   SID:	7f000001eeadf86a9f430f49504b2028
 *   first:	2026-11-22T23:25:31.690
 *   last:	2026-11-22T23:25:32.122
 *   5 sent, 0 lost (0.000%), 0 send duplicates, 0 reflect duplicates
 *   round-trip time min/median/max = 0.201/0.5/1.77 ms, (err=9.31e-07 ms)
 *
 * (values "nan" when nothing came back; unit per -n). With -N several blocks
 * are printed; the last one wins. `-M` and `-R` outputs are parsed as well.
 */
export function parseTwpingOutput(stdout: string, stderr = ''): Omit<TwpingResult, 'code' | 'stdout' | 'stderr'> {
  const text = `${stdout}\n${stderr}`;
  const r: Omit<TwpingResult, 'code' | 'stdout' | 'stderr'> = {};
  const at = text.lastIndexOf('--- twping statistics from ');
  const block = at >= 0 ? text.slice(at) : '';
  if (block) {
    const hdr = /^--- twping statistics from \[.*?\]:(\d+) to \[.*?\]:(\d+) ---$/m.exec(block);
    if (hdr) {
      r.senderPort = Number(hdr[1]);
      r.reflectorPort = Number(hdr[2]);
    }
    const sid = /^SID:\s+([0-9a-f]+)\s*$/m.exec(block);
    if (sid) r.sid = sid[1];
    const counts = /^(\d+) sent, (\d+) lost \(([^%]+)%\), (\d+) send duplicates, (\d+) reflect duplicates$/m.exec(block);
    if (counts) {
      r.sent = Number(counts[1]);
      r.lost = Number(counts[2]);
      r.lossPercent = num(counts[3]);
      r.sendDuplicates = Number(counts[4]);
      r.reflectDuplicates = Number(counts[5]);
      r.duplicates = r.sendDuplicates + r.reflectDuplicates;
    }
    const rt = /^round-trip time min\/median\/max = (\S+?)\/(\S+?)\/(\S+?) (ns|us|ms|s),/m.exec(block);
    if (rt) {
      const k = UNIT_TO_MS[rt[4]!]!;
      const ms = (s: string | undefined) => {
        const v = num(s);
        return v === undefined ? undefined : v * k;
      };
      r.rtMinMs = ms(rt[1]);
      r.rtMedianMs = ms(rt[2]);
      r.rtMaxMs = ms(rt[3]);
    }
  }

  // -M: "KEY\tVALUE" lines between "SUMMARY\t..." and the end; delays in seconds
  const m = /^SUMMARY\t[\s\S]*$/m.exec(text);
  if (m) {
    const machine: Record<string, string> = {};
    for (const line of m[0].split('\n')) {
      const kv = /^([A-Z_]+)\t(.*)$/.exec(line);
      if (kv && !(kv[1]! in machine)) machine[kv[1]!] = kv[2]!;
    }
    r.machine = machine;
    r.sid ??= machine.SID;
    r.sent ??= num(machine.SENT);
    r.lost ??= num(machine.LOST);
    if (r.duplicates === undefined && machine.DUPS_FWD !== undefined) {
      r.sendDuplicates = num(machine.DUPS_FWD);
      r.reflectDuplicates = num(machine.DUPS_BCK);
      r.duplicates = (r.sendDuplicates ?? 0) + (r.reflectDuplicates ?? 0);
    }
    const sec = (k: string) => {
      const v = num(machine[k]);
      return v === undefined ? undefined : v * 1000;
    };
    r.rtMinMs ??= sec('MIN');
    r.rtMedianMs ??= sec('MEDIAN');
    r.rtMaxMs ??= sec('MAX');
    r.senderPort ??= num(machine.FROM_PORT);
    r.reflectorPort ??= num(machine.TO_PORT);
  }

  const raw = parseTwpingRaw(stdout);
  if (raw.length > 0) {
    r.raw = raw;
    // -R prints no summary: derive what the records tell
    if (r.sent === undefined) {
      r.sent = raw.length;
      r.lost = raw.filter((x) => x.lost).length;
      const rts = raw.flatMap((x) => (x.roundTripMs === undefined ? [] : [x.roundTripMs])).sort((a, b) => a - b);
      if (rts.length > 0) {
        r.rtMinMs = rts[0];
        r.rtMaxMs = rts[rts.length - 1];
        const mid = rts.length >> 1;
        r.rtMedianMs = rts.length % 2 ? rts[mid] : (rts[mid - 1]! + rts[mid]!) / 2;
      }
    }
  }
  return r;
}

/**
 * Run twping against `target` (host:port, [v6]:port). `args` go before the
 * target. Resolves with the exit code and parsed output whatever the code;
 * rejects if it cannot start or runs past timeoutMs (killed; the error holds
 * the output so far).
 */
export async function runTwping(
  p: Peers,
  target: string,
  args: string[],
  timeoutMs = 30_000,
): Promise<TwpingResult> {
  const cp = spawn(p.twping, [...args, target], { stdio: ['ignore', 'pipe', 'pipe'] });
  trackChild(cp);
  let stdout = '';
  let stderr = '';
  cp.stdout!.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
  cp.stderr!.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  const cmd = `twping ${[...args, target].join(' ')}`;
  return new Promise<TwpingResult>((res, rej) => {
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      cp.kill('SIGTERM');
      killTimer = setTimeout(() => cp.kill('SIGKILL'), 1000);
    }, timeoutMs);
    cp.once('error', (e) => {
      clearTimeout(timer);
      rej(new Error(`cannot run ${p.twping}: ${e.message}`));
    });
    cp.once('close', (code, signal) => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      if (timedOut) {
        rej(new Error(`${cmd}: timed out after ${timeoutMs} ms (killed)\n--- stdout\n${stdout}\n--- stderr\n${stderr}`));
        return;
      }
      res({ code: code ?? (signal ? 128 : -1), stdout, stderr, ...parseTwpingOutput(stdout, stderr) });
    });
  });
}
