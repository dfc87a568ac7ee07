// SIGHUP reload that gives a reflector a new configuration keeps the running
// reflector when the new one cannot start: a new port is bound before the old
// reflector stops; on the same port the old configuration is started again
// when the new one fails. Either way the log says why.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAgentConfig } from '../../src/config/load.js';
import { Agent } from '../../src/cli/agent.js';
import { TwampSender } from '../../src/sender.js';
import type { Logger } from '../../src/util/log.js';
import { freePort, repoRoot } from '../helpers/peers.js';
import { parseSenderConfig } from '../../src/config/index.js';

const HOST = '127.0.0.1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function capture(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const at = (lvl: string) => (m: string) => { lines.push(`${lvl} ${m}`); };
  return { logger: { debug: at('DEBUG'), info: at('INFO'), warn: at('WARN'), error: at('ERROR') }, lines };
}

const yaml = (reflector: string) => `$version: "1.0"\ncollectors:\n  - { id: r1, type: twamp_reflector, listen: ${HOST}, ${reflector} }\n`;

/** A TWAMP test session of 3 packets against HOST:port: whether every packet came back. */
async function answers(port: number): Promise<boolean> {
  const s = new TwampSender(parseSenderConfig({ id: 'probe', reflector: HOST, port, n_packets: 3, model: 'g711', reply_timeout: 1, control_timeout: 2 }));
  const o = await s.runOnce();
  return o.ok && o.result.session.stats.rxPackets === 3;
}

function occupyTcp(port: number): Promise<Server> {
  const srv = createServer();
  return new Promise((res, rej) => { srv.once('error', rej); srv.listen({ host: HOST, port, exclusive: true }, () => res(srv)); });
}

function occupyUdp(port: number): Promise<UdpSocket> {
  const s = createSocket('udp4');
  return new Promise((res, rej) => { s.once('error', rej); s.bind({ address: HOST, port, exclusive: true }, () => res(s)); });
}

describe('reload: a reflector that cannot move keeps running', { timeout: 60_000 }, () => {
  it('to a busy port: the old reflector still answers, the log names the busy port; once free, it moves', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const { logger, lines } = capture();
    const agent = new Agent(parseAgentConfig(yaml(`port: ${p1}`)), { logger, env: {} });
    await agent.start();
    const blocker = await occupyTcp(p2);
    try {
      const before = agent.reflectors[0];
      const changes = await agent.reload(parseAgentConfig(yaml(`port: ${p2}`)));
      assert.deepEqual(changes, { stopped: [], started: [], restarted: [], unchanged: [], kept: ['r1'] });
      assert.equal(agent.reflectors[0], before, 'the same reflector object keeps running');
      assert.ok(await answers(p1), `answers on ${p1}`);
      const why = lines.find((l) => l.startsWith('ERROR [r1] new configuration not applied'));
      assert.ok(why, lines.join('\n'));
      assert.match(why, new RegExp(`${HOST}:${p2}: cannot listen for TWAMP-Control: EADDRINUSE; the reflector keeps running on TCP ${HOST}:${p1}`));
      assert.ok(lines.includes('INFO configuration reloaded: kept the previous configuration of r1; 0 unchanged'), lines.join('\n'));
      assert.equal((agent.config.collectors[0] as { port: number }).port, p1, 'agent.config says what runs');

      // Port free again: the same reload now moves it.
      await new Promise<void>((r) => blocker.close(() => r()));
      const moved = await agent.reload(parseAgentConfig(yaml(`port: ${p2}`)));
      assert.deepEqual(moved, { stopped: [], started: [], restarted: ['r1'], unchanged: [] });
      assert.ok(await answers(p2), `answers on ${p2}`);
      assert.equal(agent.reflectors.length, 1);
      assert.equal(agent.reflectors[0]!.address?.port, p2);
      await assert.rejects(occupyTcp(p1).then((s) => { s.close(); throw new Error('free'); }), /free/, `${p1} released`);
    } finally {
      blocker.close();
      await agent.stop();
    }
  });

  it('other keys on the same port: stop, start the new one', async () => {
    const p1 = await freePort();
    const { logger } = capture();
    const agent = new Agent(parseAgentConfig(yaml(`port: ${p1}, max_sessions: 4`)), { logger, env: {} });
    await agent.start();
    try {
      const before = agent.reflectors[0];
      const changes = await agent.reload(parseAgentConfig(yaml(`port: ${p1}, max_sessions: 8`)));
      assert.deepEqual(changes.restarted, ['r1']);
      assert.notEqual(agent.reflectors[0], before);
      assert.ok(await answers(p1));
    } finally {
      await agent.stop();
    }
  });

  it('same control port, new Light port busy: the previous configuration is started again', async () => {
    const p1 = await freePort();
    const udp = await freePort(HOST, 'udp');
    const { logger, lines } = capture();
    const agent = new Agent(parseAgentConfig(yaml(`port: ${p1}`)), { logger, env: {} });
    await agent.start();
    const blocker = await occupyUdp(udp);
    try {
      const changes = await agent.reload(parseAgentConfig(yaml(`port: ${p1}, light_port: ${udp}`)));
      assert.deepEqual(changes.kept, ['r1']);
      assert.equal(agent.reflectors.length, 1);
      assert.equal(agent.reflectors[0]!.lightAddress, undefined, 'the previous configuration (no Light) runs');
      assert.ok(await answers(p1));
      assert.ok(lines.some((l) => new RegExp(`^ERROR \\[r1\\] new configuration failed to start: .*${HOST}:${udp}: cannot bind the TWAMP-Light UDP port: EADDRINUSE; restarting the previous one on TCP ${HOST}:${p1}`).test(l)),
        lines.join('\n'));
    } finally {
      blocker.close();
      await agent.stop();
    }
  });

  it('the agent process: SIGHUP moving the reflector to a busy port keeps it on the old one', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const dir = mkdtempSync(join(tmpdir(), 'otel-twamp-swap-'));
    const file = join(dir, 'agent.yaml');
    writeFileSync(file, yaml(`port: ${p1}`));
    const child = spawn(process.execPath, [join(repoRoot(), 'dist', 'src', 'cli', 'main.js'), 'agent', '--config', file],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr.on('data', (d: Buffer) => { log += d.toString(); });
    const waitLog = async (re: RegExp) => {
      const deadline = Date.now() + 15_000;
      while (!re.test(log) && Date.now() < deadline) await sleep(50);
      assert.match(log, re);
    };
    const blocker = await occupyTcp(p2);
    try {
      await waitLog(new RegExp(`TWAMP reflector listening on ${HOST}:${p1}`));
      writeFileSync(file, yaml(`port: ${p2}`));
      child.kill('SIGHUP');
      await waitLog(/configuration reloaded/);
      assert.match(log, new RegExp(`ERROR +\\[r1\\] new configuration not applied: .*${HOST}:${p2}: cannot listen for TWAMP-Control: EADDRINUSE`));
      assert.ok(await answers(p1), `still answers on ${p1}`);
    } finally {
      blocker.close();
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    }
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    assert.equal(code, 0, log);
  });
});
