// The package as users meet it: `npm start` stops promptly however it is
// signalled; the library entry point loads only what a library user installs
// (@opentelemetry/api as a peer, no SDK), while the CLI's SDK packages stay
// dependencies so `npm i -g otel-twamp` works.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { freePort, repoRoot } from './helpers/peers.js';

interface PackageJson {
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

const ROOT = repoRoot();
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson;
const MAIN = join(ROOT, 'dist', 'src', 'cli', 'main.js');
/** SDK-side packages: the CLI's, never the library's. */
const SDK = /^@opentelemetry\/(sdk-.*|exporter-.*|resources|core)$/;

/** The package a module URL or path belongs to (`@scope/name` or `name`), or undefined outside node_modules. */
function packageOf(urlOrPath: string): string | undefined {
  const parts = urlOrPath.replace(/\\/g, '/').split('/node_modules/');
  if (parts.length < 2) return undefined;
  const segs = parts[parts.length - 1]!.split('/');
  return segs[0]!.startsWith('@') ? `${segs[0]}/${segs[1]}` : segs[0];
}

describe('package.json', () => {
  it('@opentelemetry/api is a peer dependency (one API copy shared with the app), and a dev dependency for our build', () => {
    assert.equal(PKG.peerDependencies?.['@opentelemetry/api'], '^1.9.0');
    assert.notEqual(PKG.peerDependenciesMeta?.['@opentelemetry/api']?.optional, true);
    assert.equal(PKG.dependencies['@opentelemetry/api'], undefined);
    assert.ok(PKG.devDependencies['@opentelemetry/api'], 'installed in the repository for the build and tests');
  });

  it('the CLI\'s SDK packages are dependencies with ranges, so npm shares a user\'s compatible copy', () => {
    for (const name of ['@opentelemetry/sdk-metrics', '@opentelemetry/resources', '@opentelemetry/core',
      '@opentelemetry/exporter-prometheus', '@opentelemetry/exporter-metrics-otlp-http', '@opentelemetry/exporter-metrics-otlp-proto']) {
      const range = PKG.dependencies[name];
      assert.ok(range !== undefined, `${name} is a dependency (npm i -g otel-twamp installs it)`);
      assert.match(range, /^\^\d/, `${name}: a caret range, not an exact pin`);
    }
  });

  it('npm start execs node, so signals to npm\'s child reach the agent', () => {
    assert.match(PKG.scripts.start!, /^exec node /);
  });
});

describe('library entry point', () => {
  it('loads no SDK package, and only packages a library user installs', () => {
    const dir = mkdtempSync(join(os.tmpdir(), 'otel-twamp-load-'));
    try {
      const log = join(dir, 'loaded.txt');
      writeFileSync(log, '');
      writeFileSync(join(dir, 'hooks.mjs'), `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(${JSON.stringify(log)}, r.url + '\\n');
  return r;
}`);
      writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n`);
      const script = `
        await import(${JSON.stringify(join(ROOT, 'dist', 'src', 'index.js'))});
        const { createRequire } = await import('node:module');
        process.stdout.write(JSON.stringify(Object.keys(createRequire(import.meta.url).cache ?? {})));`;
      const r = spawnSync(process.execPath, ['--import', join(dir, 'register.mjs'), '--input-type=module', '-e', script],
        { encoding: 'utf8', cwd: ROOT, timeout: 30_000 });
      assert.equal(r.status, 0, r.stderr);
      const loaded = new Set([...readFileSync(log, 'utf8').split('\n'), ...(JSON.parse(r.stdout) as string[])]
        .map(packageOf).filter((p): p is string => p !== undefined));
      assert.ok(loaded.has('@opentelemetry/api'), `the hook sees imports: ${[...loaded].join(', ')}`);
      assert.deepEqual([...loaded].filter((p) => SDK.test(p)), [], 'no SDK package');
      const installed = new Set([...Object.keys(PKG.dependencies), ...Object.keys(PKG.peerDependencies ?? {})]);
      assert.deepEqual([...loaded].filter((p) => !installed.has(p)), [], 'every package loaded is a dependency or a peer');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('npm start stops promptly', { timeout: 120_000 }, () => {
  let dir: string;
  let config: string;
  let prom: number;

  before(async () => {
    dir = mkdtempSync(join(os.tmpdir(), 'otel-twamp-start-'));
    prom = await freePort('127.0.0.1', 'tcp');
    const twamp = await freePort('127.0.0.1', 'tcp');
    config = join(dir, 'agent.yaml');
    // The demo's shape on free ports: a reflector and a sender to it, Prometheus endpoint.
    writeFileSync(config, `$version: "1.0"
agent: { defaults: { interval: 10 } }
sender: { type: openmetrics, mode: pull, listen: "127.0.0.1:${prom}", path: /metrics }
collectors:
  - { id: r, type: twamp_reflector, listen: 127.0.0.1, port: ${twamp} }
  - { id: s, type: twamp_sender, reflector: 127.0.0.1, port: ${twamp}, n_packets: 100, model: g711 }
`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Resolves once the agent says its endpoint is up. */
  async function started(child: ChildProcess, out: { text: string }): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (!/Prometheus metrics at/.test(out.text)) {
      assert.ok(Date.now() < deadline && child.exitCode === null, `agent did not start:\n${out.text}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  function exited(child: ChildProcess, withinMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | 'timeout'> {
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve('timeout'), withinMs);
      child.once('exit', (code, signal) => { clearTimeout(t); resolve({ code, signal }); });
    });
  }

  /** Whatever is left of the child's process group (npm, sh, node) goes, and its pipes close. */
  function cleanUp(child: ChildProcess): void {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
    child.stdout?.destroy();
    child.stderr?.destroy();
  }

  /** True when nothing (no orphaned agent) holds the port any more. */
  function portFree(port: number): Promise<boolean> {
    return new Promise((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
  }

  const npm = spawnSync('npm', ['--version'], { encoding: 'utf8' });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    it(`${sig} to npm's pid: agent and npm exit within 5 s, nothing left behind`, { skip: npm.status !== 0 && 'npm not on PATH' }, async () => {
      // `--config` again: the last one wins, so npm start runs exactly its script on our free ports.
      const child = spawn('npm', ['start', '--silent', '--', '--config', config], {
        cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false' }, detached: true,
      });
      const out = { text: '' };
      child.stdout!.on('data', (d: Buffer) => { out.text += d.toString(); });
      child.stderr!.on('data', (d: Buffer) => { out.text += d.toString(); });
      try {
        await started(child, out);
        child.kill(sig);
        const r = await exited(child, 5000);
        assert.notEqual(r, 'timeout', `npm start still running 5 s after ${sig}:\n${out.text}`);
        assert.deepEqual(r, { code: 0, signal: null }, out.text);
        assert.match(out.text, new RegExp(`${sig}: stopping`));
        assert.ok(await portFree(prom), 'the agent is gone (its Prometheus port is free again)');
      } finally {
        cleanUp(child);
      }
    });
  }

  it('Ctrl-C\'s echo (the terminal\'s SIGINT and npm\'s forwarded copy) still stops cleanly', async () => {
    const child = spawn('sh', ['-c', `exec "${process.execPath}" "${MAIN}" agent --config "${config}"`], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const out = { text: '' };
    child.stdout!.on('data', (d: Buffer) => { out.text += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { out.text += d.toString(); });
    try {
      await started(child, out);
      child.kill('SIGINT');
      // npm forwards its copy a moment after the terminal's reached us, while the agent is stopping.
      await new Promise((r) => setTimeout(r, 10));
      child.kill('SIGINT');
      const r = await exited(child, 5000);
      assert.deepEqual(r, { code: 0, signal: null }, `killed by the second SIGINT instead of a clean stop:\n${out.text}`);
      assert.equal(out.text.match(/SIGINT: stopping/g)?.length, 1);
    } finally {
      cleanUp(child);
    }
  });
});
