// `otel-twamp reflect` as a user runs it: a child process serving our sender
// and perfSONAR twping, logging sessions as they come and go, exporting its
// counters, stopping cleanly on SIGINT/SIGTERM; usage errors name the flag.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { repoRoot, freePort, requirePeersOrSkip, runTwping } from '../helpers/peers.js';
import { TwampSender } from '../../src/sender.js';
import { logSessionEvent } from '../../src/cli/reflect.js';
import type { Logger } from '../../src/util/log.js';
import { parseSenderConfig } from '../../src/config/index.js';

const MAIN = join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

interface Child {
  cp: ChildProcess;
  stderr(): string;
  stdout(): string;
  /** Resolves when stderr matches re (rejects after timeoutMs). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startCli(args: string[]): Child {
  const cp = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  cp.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  cp.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    for (const w of [...waiters]) if (w.re.test(err)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    cp.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    cp,
    stderr: () => err,
    stdout: () => out,
    exited,
    waitFor(re, timeoutMs = 10_000) {
      if (re.test(err)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${re} in:\n${err}`)), timeoutMs);
        waiters.push({ re, resolve: () => { clearTimeout(t); resolve(); } });
      });
    },
  };
}

async function runCli(args: string[]): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const c = startCli(args);
  const { code } = await c.exited;
  return { code, stderr: c.stderr(), stdout: c.stdout() };
}

describe('otel-twamp reflect', { timeout: 120_000 }, () => {
  it('serves a sender, logs the session start and end at info, exports counters, exits 0 on SIGINT', async () => {
    const port = await freePort();
    const metricsPort = await freePort();
    const c = startCli(['reflect', '--listen', '127.0.0.1', '--port', String(port), '--max-sessions', '4',
      '--refwait', '30', '--servwait', '30', '--metrics', `127.0.0.1:${metricsPort}`]);
    try {
      await c.waitFor(/Prometheus metrics at http:\/\/127\.0\.0\.1:\d+\/metrics/);
      assert.match(c.stderr(), new RegExp(`INFO  \\[reflect\\] TWAMP reflector listening on 127\\.0\\.0\\.1:${port}`));
      const sender = new TwampSender(parseSenderConfig({ id: 's', reflector: '127.0.0.1', port, n_packets: 10, model: 'g711', reply_timeout: 1 }));
      const o = await sender.runOnce();
      assert.ok(o.ok, o.ok ? '' : o.error.message);
      assert.equal(o.result.session.stats.rxPackets, 10);
      await c.waitFor(/session on port \d+ ended .*10 packets reflected/);
      assert.match(c.stderr(), /INFO  \[reflect\] client 127\.0\.0\.1:\d+: session accepted, reflector port \d+/);
      assert.match(c.stderr(), /INFO  \[reflect\] client 127\.0\.0\.1:\d+: session on port \d+ ended/);
      const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      assert.match(body, /^twamp_reflector_reflected_pkt_total\{[^}]*collector_id="reflect"[^}]*\} 10$/m);
      assert.match(body, /^twamp_reflector_session_started_total\{[^}]*\} 1$/m);
    } finally {
      c.cp.kill('SIGINT');
    }
    const { code } = await c.exited;
    assert.equal(code, 0, c.stderr());
    assert.match(c.stderr(), /SIGINT: stopping/);
    assert.match(c.stderr(), /stopped: 1 session request\(s\), 1 started, 10 packet\(s\) reflected, 0 dropped/);
  });

  it('SIGTERM stops it with exit 0; --test-port-range is used for test sessions', async () => {
    const port = await freePort();
    const udp = await freePort('127.0.0.1', 'udp');
    const c = startCli(['reflect', '--listen', '127.0.0.1', '--port', String(port), '--test-port-range', `${udp}-${udp}`]);
    await c.waitFor(/listening on/);
    const sender = new TwampSender(parseSenderConfig({ id: 's', reflector: '127.0.0.1', port, n_packets: 3, model: 'g711', reply_timeout: 1 }));
    const o = await sender.runOnce();
    assert.ok(o.ok, o.ok ? '' : o.error.message);
    assert.equal(o.result.session.reflectorTestPort, udp);
    c.cp.kill('SIGTERM');
    const { code } = await c.exited;
    assert.equal(code, 0, c.stderr());
    assert.match(c.stderr(), /SIGTERM: stopping/);
  });

  it('--max-sessions is enforced (refusal logged)', async () => {
    const port = await freePort();
    const c = startCli(['reflect', '--listen', '127.0.0.1', '--port', String(port), '--max-sessions', '1']);
    await c.waitFor(/listening on/);
    try {
      const long = new TwampSender(parseSenderConfig({ id: 'a', reflector: '127.0.0.1', port, n_packets: 50, model: 'g711', reply_timeout: 1 }));
      const first = long.runOnce();
      await c.waitFor(/session accepted/);
      const second = await new TwampSender(parseSenderConfig({ id: 'b', reflector: '127.0.0.1', port, n_packets: 2, model: 'g711' })).runOnce();
      assert.equal(second.ok, false);
      assert.ok(!second.ok && second.reason === 'refused', !second.ok ? second.error.message : '');
      assert.ok((await first).ok);
      assert.match(c.stderr(), /session limit 1 reached/);
    } finally {
      c.cp.kill('SIGINT');
      await c.exited;
    }
  });

  it('serves perfSONAR twping', async (t) => {
    const p = requirePeersOrSkip(t);
    if (!p) return;
    const port = await freePort();
    const c = startCli(['reflect', '--listen', '127.0.0.1', '--port', String(port)]);
    try {
      await c.waitFor(/listening on/);
      await runTwping(p, `127.0.0.1:${port}`, ['-c', '10', '-i', '0.01f']);
      await c.waitFor(/session on port \d+ ended .*10 packets reflected/);
    } finally {
      c.cp.kill('SIGINT');
    }
    assert.equal((await c.exited).code, 0);
  });

  it('exit 1 when the port cannot be bound, naming it', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    try {
      const r = await runCli(['reflect', '--listen', '127.0.0.1', '--port', String(port)]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`cannot listen for TWAMP-Control: EADDRINUSE`));
      assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
    } finally {
      srv.close();
    }
  });

  it('exit 2: usage errors name the flag', async () => {
    const cases: [string[], RegExp][] = [
      [['reflect', '--port', 'abc'], /otel-twamp reflect: --port: expected an integer between 0 and 65535, got "abc"/],
      [['reflect', '--listen', 'example.com'], /--listen: expected an IPv4\/IPv6 address/],
      [['reflect', '--max-sessions', '0'], /--max-sessions: /],
      [['reflect', '--refwait=-1'], /--refwait: expected a number of seconds/],
      [['reflect', '--servwait', 'x'], /--servwait: /],
      [['reflect', '--test-port-range', '9-1'], /--test-port-range: expected "lo-hi"/],
      [['reflect', '--metrics', 'nowhere'], /--metrics: expected HOST:PORT/],
      [['reflect', '--log-level', 'loud'], /--log-level: /],
      [['reflect', '--bogus'], /unknown option --bogus/],
      [['reflect', 'extra'], /Unexpected argument 'extra'|positional/i],
    ];
    await Promise.all(cases.map(async ([args, re]) => {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
    }));
  });

  it('--help', async () => {
    const r = await runCli(['reflect', '--help']);
    assert.equal(r.code, 0);
    for (const f of ['--listen', '--port', '--max-sessions', '--refwait', '--servwait', '--test-port-range', '--metrics']) {
      assert.ok(r.stdout.includes(f), f);
    }
  });
});

describe('logSessionEvent', () => {
  it('one info line per accepted and ended session', () => {
    const lines: string[] = [];
    const base: Logger = {
      debug: (m) => lines.push(`debug ${m}`), info: (m) => lines.push(`info ${m}`),
      warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`),
    };
    logSessionEvent(base, { type: 'accepted', peer: 'client 192.0.2.1:5000', port: 40000, requestedPort: 0 });
    logSessionEvent(base, { type: 'accepted', peer: 'client 192.0.2.1:5000', port: 40001, requestedPort: 862 });
    logSessionEvent(base, { type: 'ended', peer: 'client 192.0.2.1:5000', port: 40000, why: 'stopped', reflected: 10 });
    assert.deepEqual(lines, [
      'info client 192.0.2.1:5000: session accepted, reflector port 40000',
      'info client 192.0.2.1:5000: session accepted, reflector port 40001 (requested 862 was unusable)',
      'info client 192.0.2.1:5000: session on port 40000 ended (stopped), 10 packets reflected',
    ]);
  });
});
