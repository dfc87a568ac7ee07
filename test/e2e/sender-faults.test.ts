// Sender and agent robustness: unreachable, slow, refusing and
// misbehaving reflectors, DNS failures and descriptor/port exhaustion make a
// run fail cleanly with a reason metric, and the other collectors of the same
// agent are unaffected. SIGTERM during a running session sends Stop-Sessions
// and the agent exits 0 promptly.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../src/cli/agent.js';
import { parseAgentConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/util/log.js';
import { TwampSender } from '../../src/sender.js';
import { TwampReflector } from '../../src/reflector.js';
import { freePort, repoRoot } from '../helpers/peers.js';
import { startFakeServer } from '../helpers/fakeServer.js';
import { parseReflectorConfig, parseSenderConfig } from '../../src/config/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP server that never says anything. */
async function silentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  return {
    port: typeof a === 'object' && a ? a.port : 0,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

function series(text: string, name: string, id: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(name) && l.includes(`collector_id="${id}"`));
}

describe('sender faults', { timeout: 60_000 }, () => {
  it('one agent, a good sender beside broken ones: each broken run fails with its reason, the good one is unaffected', async () => {
    const refusedPort = await freePort();
    const silent = await silentServer();
    const garbage = await startFakeServer({ acceptSession: { accept: 0, port: 'zero' } }); // accepts with port 0: a protocol error
    const twampPort = await freePort();
    const promPort = await freePort();
    const sender = (id: string, reflector: string, port: number, model = 'model: g711') => `
  - id: ${id}
    type: twamp_sender
    reflector: ${reflector}
    port: ${port}
    interval: 1
    n_packets: 10
    ${model}
    control_timeout: 1
    reply_timeout: 1`;
    const yaml = `
$version: "1.0"
agent:
  host: faults
sender:
  type: openmetrics
  mode: pull
  listen: "127.0.0.1:${promPort}"
  path: /metrics
collectors:
  - id: r
    type: twamp_reflector
    listen: 127.0.0.1
    port: ${twampPort}
    deny: ["127.0.0.2"]
    max_padding: 500
${sender('good', '127.0.0.1', twampPort)}
${sender('unreachable', '127.0.0.1', refusedPort)}
${sender('dns', 'no-such-host.invalid', 862)}
${sender('slow', '127.0.0.1', silent.port)}
${sender('misbehaving', '127.0.0.1', garbage.port)}
${sender('refusing', '127.0.0.1', twampPort, 'model: cbr\n    bandwidth: 1000000\n    size: 1400')}
`;
    const agent = new Agent(parseAgentConfig(yaml, 'faults.yaml'), { logger: silentLogger });
    await agent.start();
    try {
      await sleep(3500);
      const text = await agent.prometheus!.render();
      const expect: Record<string, string> = {
        unreachable: 'connect', dns: 'dns', slow: 'timeout', misbehaving: 'protocol', refusing: 'refused',
      };
      for (const [id, reason] of Object.entries(expect)) {
        const errs = series(text, 'twamp_sender_errors', id);
        assert.ok(errs.some((l) => l.includes(`reason="${reason}"`) && !/ 0$/.test(l)), `${id}: errors{reason="${reason}"}\n${errs.join('\n')}`);
        assert.ok(series(text, 'twamp_sender_success', id).every((l) => / 0$/.test(l)), `${id}: success 0`);
        assert.equal(series(text, 'twamp_rx_packets', id).length, 0, `${id}: no measurement series`);
      }
      assert.deepEqual(series(text, 'twamp_sender_errors', 'good').filter((l) => !/ 0$/.test(l)), [], 'the good sender never failed (every reason at 0)');
      assert.ok(series(text, 'twamp_sender_success', 'good').every((l) => / 1$/.test(l)));
      assert.ok(series(text, 'twamp_sender_runs', 'good').some((l) => Number(l.split(' ').pop()) >= 2), 'the good sender kept running');
      assert.ok(series(text, 'twamp_rx_packets', 'good').some((l) => / 10$/.test(l)));
      // The reflector counted the oversized padding of the refusing sender.
      assert.match(text, /^twamp_reflector_refused_total\{[^}]*reason="padding"[^}]*\} [1-9]/m);
    } finally {
      await agent.stop();
      await silent.close();
      await garbage.close();
    }
  });

  it('descriptor/port exhaustion: the run fails with a reason, nothing throws, the next run succeeds', async () => {
    const r = new TwampReflector(parseReflectorConfig({ id: 'r', listen: '127.0.0.1', port: 0 }));
    const { port } = await r.start();
    const s = new TwampSender(parseSenderConfig({ id: 's', reflector: '127.0.0.1', port, n_packets: 5, model: 'g711', control_timeout: 1, reply_timeout: 1 }));
    const fds: number[] = [];
    try {
      try {
        for (;;) fds.push(openSync('/dev/null', 'r'));
      } catch (e) {
        assert.equal((e as NodeJS.ErrnoException).code, 'EMFILE');
      }
      const out = await s.runOnce();
      // Free the descriptors before asserting (the test runner needs some).
      for (const fd of fds.splice(0)) closeSync(fd);
      assert.equal(out.ok, false);
      assert.ok(!out.ok && ['connect', 'socket'].includes(out.reason), out.ok ? '' : `${out.reason}: ${out.error.message}`);
      assert.match(out.ok ? '' : out.error.message, /EMFILE/);
      const again = await s.runOnce();
      assert.equal(again.ok, true, again.ok ? '' : again.error.message);
    } finally {
      for (const fd of fds) closeSync(fd);
      await s.stop();
      await r.stop();
    }
  });

  it('SIGTERM during a running session: Stop-Sessions is sent and the agent exits 0 within 5 s', async () => {
    const fake = await startFakeServer({ acceptSession: { accept: 0, port: await freePort('127.0.0.1', 'udp') } });
    const dir = mkdtempSync(join(tmpdir(), 'otel-twamp-sigterm-'));
    const f = join(dir, 'agent.yaml');
    writeFileSync(f, `
$version: "1.0"
collectors:
  - id: long
    type: twamp_sender
    reflector: 127.0.0.1
    port: ${fake.port}
    interval: 60
    n_packets: 3000
    model: g711
`);
    const child = spawn(process.execPath, [join(repoRoot(), 'dist', 'src', 'cli', 'main.js'), 'agent', '--config', f],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OTEL_METRICS_EXPORTER: 'none' } });
    let log = '';
    child.stderr.on('data', (d: Buffer) => { log += d.toString(); });
    try {
      // The session is running once Start-Sessions (2) arrived; 3000 g711 packets take 60 s.
      const deadline = Date.now() + 10_000;
      while (!fake.commands.includes(2) && Date.now() < deadline) await sleep(50);
      assert.ok(fake.commands.includes(2), `the session started\n${log}`);
      await sleep(300);
      const t0 = Date.now();
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((r) => {
        const t = setTimeout(() => { child.kill('SIGKILL'); r(null); }, 5000);
        child.once('exit', (c) => { clearTimeout(t); r(c); });
      });
      const took = Date.now() - t0;
      assert.equal(code, 0, log);
      assert.ok(took < 5000, `exited after ${took} ms`);
      const stop = await Promise.race([fake.stopSessionsSeen, sleep(100).then(() => undefined)]);
      assert.ok(stop, 'Stop-Sessions arrived');
      assert.equal(stop[0], 3);
      assert.match(log, /SIGTERM: stopping/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await fake.close();
    }
  });
});
