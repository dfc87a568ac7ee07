// The README's examples, run as written on loopback (README "The agent",
// "One-shot probe", "As a library"): the agent file passes --check and, run,
// measures its own reflector; the probe command measures that reflector; the
// library example, saved as a module inside the package (so that
// `import 'otel-twamp'` resolves to this package, as for an installed one),
// prints a round-trip result. Also the producers' default logger (README "As a
// library", docs/library.md "Logging"): a failed session is printed without
// any configuration, and nothing with silentLogger.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { parse } from 'yaml';
import { freePort, repoRoot } from './helpers/peers.js';

const root = repoRoot();
const README = readFileSync(join(root, 'README.md'), 'utf8');

/** Fenced code blocks of a Markdown text, with their info string. */
function blocks(markdown: string): { lang: string; code: string }[] {
  return [...markdown.matchAll(/^```([\w-]*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1]!, code: m[2]! }));
}

function one<T>(items: T[], what: string): T {
  assert.equal(items.length, 1, `README has exactly one ${what}`);
  return items[0]!;
}

// npx finds this package's own bin inside the package; never ask the registry.
const env = { ...process.env, npm_config_yes: 'false', npm_config_update_notifier: 'false' };
mkdirSync(join(root, 'dist'), { recursive: true });
const work = mkdtempSync(join(root, 'dist', 'readme-examples-'));

function sh(line: string, timeout = 60_000) {
  return spawnSync('sh', ['-c', line], { cwd: work, env, encoding: 'utf8', timeout });
}

async function waitFor(url: string, pattern: RegExp, ms: number): Promise<string> {
  const end = Date.now() + ms;
  let last = '';
  while (Date.now() < end) {
    try {
      last = await (await fetch(url)).text();
      if (pattern.test(last)) return last;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(`${url} did not show ${pattern} within ${ms} ms; last answer:\n${last}`);
}

after(() => rmSync(work, { recursive: true, force: true }));

const shLines = blocks(README).filter((b) => b.lang === 'sh').flatMap((b) => b.code.split('\n'));
const agentYaml = one(blocks(README).filter((b) => b.lang === 'yaml' && /type: twamp_sender/.test(b.code)), 'agent file (yaml block with a twamp_sender)').code;
const checkLine = one(shLines.filter((l) => /otel-twamp agent --config agent\.yaml --check/.test(l)), 'agent --check command');
const runLine = one(shLines.filter((l) => /otel-twamp agent --config agent\.yaml(\s|$)/.test(l) && !/--check/.test(l)), 'agent run command');
const probeLine = one(shLines.filter((l) => /otel-twamp probe /.test(l)), 'probe command');
const library = one(blocks(README).filter((b) => /^(js|javascript|ts|typescript|mjs)$/.test(b.lang) && /from 'otel-twamp'/.test(b.code)), 'library example').code;

describe('README examples, run as written', { timeout: 180_000 }, () => {
  let agent: ChildProcess | undefined;
  let agentLog = '';
  after(() => {
    if (agent?.pid !== undefined && agent.exitCode === null) process.kill(-agent.pid, 'SIGTERM');
  });

  before(() => writeFileSync(join(work, 'agent.yaml'), agentYaml));

  it('the agent file passes agent --check', () => {
    const r = sh(checkLine);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /OK — 2 collector\(s\) enabled/);
  });

  it('the agent runs: its sender measures its reflector, the endpoint shows the result', async () => {
    agent = spawn('sh', ['-c', `exec ${runLine}`], { cwd: work, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    agent.stdout!.on('data', (d: Buffer) => { agentLog += d.toString(); });
    agent.stderr!.on('data', (d: Buffer) => { agentLog += d.toString(); });
    const listen = (parse(agentYaml) as { sender: { listen: string; path: string } }).sender;
    const text = await waitFor(`http://${listen.listen}${listen.path}`, /^twamp_rx_packets\{[^}]*collector_id="voice"[^}]*\} [1-9]/m, 60_000)
      .catch((e: Error) => assert.fail(`${e.message}\nagent log:\n${agentLog}`));
    assert.match(text, /^twamp_rt_avg_delay_ns\{[^}]*site="lab"[^}]*\} \d+/m);
  });

  it('the probe command measures the agent\'s reflector and prints the README\'s lines', () => {
    const r = sh(probeLine);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const target = /probe (\S+)/.exec(probeLine)![1]!;
    assert.match(r.stdout, new RegExp(`^TWAMP probe to ${target.replace(/\./g, '\\.')}: g711, 50 packets`, 'm'));
    assert.match(r.stdout, /^ {2}round trip +\d+\.\d{3} /m);
    assert.match(r.stdout, /^ {2}loss {9}round trip \d+\/50 /m);
    assert.match(r.stdout, /^ {2}MOS \(g711\) {3}outbound \d\.\d\d/m);
    // The output quoted in the README is this output's shape.
    const quoted = one(blocks(README).filter((b) => b.lang === '' && b.code.startsWith('TWAMP probe to ')), 'probe output').code;
    assert.ok(quoted.startsWith(`TWAMP probe to ${target}: g711, 50 packets`), quoted);
  });

  it('the library example measures on loopback and prints the result', () => {
    writeFileSync(join(work, 'example.mjs'), library);
    const r = spawnSync(process.execPath, ['example.mjs'], { cwd: work, env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^round trip avg \d+\.\d{3} ms, loss \d+$/m, r.stdout + r.stderr);
    assert.equal(r.stderr, '', 'no warning on a working set-up');
  });
});

describe('the producers\' default logger', { timeout: 60_000 }, () => {
  const run = (loggerOption: string, port: number) => {
    const script = `
      import { TwampSender, silentLogger } from 'otel-twamp';
      import { parseSenderConfig } from 'otel-twamp/config';
      const sender = new TwampSender(parseSenderConfig({ id: 'closed', reflector: '127.0.0.1', port: ${port}, n_packets: 1, model: 'g711', control_timeout: 2 })${loggerOption});
      const outcome = await sender.runOnce();
      console.log(JSON.stringify({ ok: outcome.ok, reason: outcome.ok ? null : outcome.reason }));`;
    writeFileSync(join(work, 'logger.mjs'), script);
    return spawnSync(process.execPath, ['logger.mjs'], { cwd: work, env, encoding: 'utf8', timeout: 30_000 });
  };

  it('a sender to a closed port prints a warning naming the reflector, by default', async () => {
    const port = await freePort();
    const r = run('', port);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { ok: false, reason: 'connect' });
    assert.match(r.stderr, new RegExp(`^\\[otel-twamp\\] \\[closed\\] test session failed \\(connect\\): .*127\\.0\\.0\\.1:${port}`, 'm'));
  });

  it('logger: silentLogger prints nothing', async () => {
    const port = await freePort();
    const r = run(', { logger: silentLogger }', port);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { ok: false, reason: 'connect' });
    assert.equal(r.stderr, '');
  });
});
