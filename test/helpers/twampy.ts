// Harness for nokia twampy (Python TWAMP-light sender/responder), built by
// `bash scripts/peers.sh` into <peers>/twampy/src. Children are killed by pid
// in stop() (responder) or when they run past their timeout (sender).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import type { TestContext } from 'node:test';
import { requirePeersOrSkip, isCI, hostPort } from './peers.js';

export interface Twampy {
  /** PYTHONPATH for `python3 -m twampy`. */
  path: string;
  python: string;
}

const live = new Set<ChildProcess>();
let hooked = false;
function track(cp: ChildProcess): void {
  live.add(cp);
  cp.once('exit', () => live.delete(cp));
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const c of live) {
        try { c.kill('SIGKILL'); } catch { /* gone */ }
      }
    });
  }
}

/**
 * twampy and a python3 that runs it, or undefined after marking the test
 * skipped. Under CI anything missing is a failure (requirePeersOrSkip semantics).
 */
export function requireTwampyOrSkip(t: TestContext): Twampy | undefined {
  const p = requirePeersOrSkip(t);
  if (!p) return undefined;
  const python = process.env.OTEL_TWAMP_PYTHON ?? 'python3';
  let missing: string | undefined;
  if (!p.twampyPath) {
    missing = `twampy not found in ${p.dir}/twampy/src; rebuild the peers (PEERS_FORCE=1 bash scripts/peers.sh)`;
  } else {
    const r = spawnSync(python, ['-m', 'twampy', '--version'], { env: { ...process.env, PYTHONPATH: p.twampyPath }, encoding: 'utf8', timeout: 15_000 });
    if (r.error || r.status !== 0) {
      missing = `cannot run "${python} -m twampy --version" (needs Python >= 3.11): ${r.error?.message ?? `exit ${r.status}: ${r.stderr}`}`;
    }
  }
  if (missing === undefined) return { path: p.twampyPath!, python };
  if (isCI()) throw new Error(`${missing} (CI is set: interop tests must not be skipped)`);
  console.warn(`\n!!!!! SKIPPING INTEROP TEST "${t.name}": ${missing} !!!!!\n`);
  t.skip(missing);
  return undefined;
}

export interface TwampyResponder {
  host: string;
  port: number;
  stop(): Promise<void>;
  log(): string;
}

/** `python3 -m twampy responder HOST:PORT`, resolved once it answers a probe packet. */
export async function startTwampyResponder(tw: Twampy, host: string, port: number): Promise<TwampyResponder> {
  const cp = spawn(tw.python, ['-m', 'twampy', 'responder', hostPort(host, port)], {
    env: { ...process.env, PYTHONPATH: tw.path }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(cp);
  let out = '';
  cp.stdout!.on('data', (b: Buffer) => { out += b.toString('utf8'); });
  cp.stderr!.on('data', (b: Buffer) => { out += b.toString('utf8'); });
  const exited = new Promise<void>((r) => cp.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (cp.exitCode === null && cp.signalCode === null) {
      cp.kill('SIGKILL'); // its SIGINT handler shuts the socket down from a non-main thread; just end it
      await exited;
    }
  };
  // Probe until it answers (binding takes the interpreter's start-up time).
  const probe = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((r) => probe.bind(0, host, () => r()));
    const answered = await new Promise<boolean>((resolve) => {
      const deadline = Date.now() + 10_000;
      let done = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = (ok: boolean): void => {
        done = true;
        if (timer) clearTimeout(timer);
        resolve(ok);
      };
      probe.once('message', () => finish(true));
      const tick = (): void => {
        if (done) return;
        if (cp.exitCode !== null || Date.now() > deadline) { finish(false); return; }
        probe.send(Buffer.alloc(14), port, host);
        timer = setTimeout(tick, 100);
      };
      tick();
    });
    if (!answered) {
      await stop();
      throw new Error(`twampy responder on ${hostPort(host, port)} did not answer:\n${out}`);
    }
  } finally {
    probe.close();
  }
  return { host, port, stop, log: () => out };
}

export interface TwampySenderResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Loss percentages from twampy's table, by direction. */
  loss: { outbound?: number; inbound?: number; roundtrip?: number };
}

/** `python3 -m twampy sender REMOTE LOCAL -c COUNT -i INTERVAL_MS [extra]`. */
export async function runTwampySender(
  tw: Twampy, remote: string, local: string, count: number, intervalMs: number, extra: string[] = [], timeoutMs = 30_000,
): Promise<TwampySenderResult> {
  const args = ['-m', 'twampy', 'sender', remote, local, '-c', String(count), '-i', String(intervalMs), ...extra];
  const cp = spawn(tw.python, args, { env: { ...process.env, PYTHONPATH: tw.path }, stdio: ['ignore', 'pipe', 'pipe'] });
  track(cp);
  let stdout = '';
  let stderr = '';
  cp.stdout!.on('data', (b: Buffer) => { stdout += b.toString('utf8'); });
  cp.stderr!.on('data', (b: Buffer) => { stderr += b.toString('utf8'); });
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => { cp.kill('SIGKILL'); reject(new Error(`twampy sender timed out:\n${stdout}\n${stderr}`)); }, timeoutMs);
    cp.once('error', (e) => { clearTimeout(timer); reject(e); });
    cp.once('exit', (c) => { clearTimeout(timer); resolve(c); });
  });
  const loss: TwampySenderResult['loss'] = {};
  for (const [key, label] of [['outbound', 'Outbound'], ['inbound', 'Inbound'], ['roundtrip', 'Roundtrip']] as const) {
    const m = new RegExp(`^\\s*${label}:.*?\\s(-?[\\d.]+)%\\s*$`, 'm').exec(stdout);
    if (m) loss[key] = Number(m[1]);
  }
  return { code, stdout, stderr, loss };
}
