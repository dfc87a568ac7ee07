// The packages as users meet them (README "Install"): `otel-twamp` is the
// library, whose entry point loads only @opentelemetry/api (a peer) and
// whose SDK and exporters are optional peers, used by the command line only;
// `otel-twamp-agent` (packages/agent) is the command line with the SDK and
// exporters. Both are packed and installed here as a user would. Also `npm
// start` stops promptly however it is signalled.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { freePort, repoRoot } from './helpers/peers.js';

interface PackageJson {
  name: string;
  version: string;
  bin?: Record<string, string>;
  exports?: Record<string, unknown>;
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

const ROOT = repoRoot();
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson;
const AGENT_DIR = join(ROOT, 'packages', 'agent');
const AGENT = JSON.parse(readFileSync(join(AGENT_DIR, 'package.json'), 'utf8')) as PackageJson;
/** What the command line runs with (the guide's ranges): optional peers of the library, dependencies of the agent. */
const CLI_PACKAGES: Record<string, string> = {
  '@opentelemetry/sdk-metrics': '^2.12.0', '@opentelemetry/resources': '^2.12.0', '@opentelemetry/core': '^2.12.0',
  '@opentelemetry/exporter-prometheus': '^0.223.0', '@opentelemetry/exporter-metrics-otlp-http': '^0.223.0',
  '@opentelemetry/exporter-metrics-otlp-proto': '^0.223.0',
};
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

  it('the CLI\'s SDK and exporters are optional peers of the library (caret ranges), never its dependencies', () => {
    for (const [name, range] of Object.entries(CLI_PACKAGES)) {
      assert.equal(PKG.peerDependencies?.[name], range, `${name}: an optional peer with the guide's range`);
      assert.equal(PKG.peerDependenciesMeta?.[name]?.optional, true, `${name} is optional: a library install leaves it out`);
      assert.equal(PKG.dependencies[name], undefined, `${name} is not a dependency of the library`);
      assert.ok(PKG.devDependencies[name], `${name} is a dev dependency: npm ci && npm start / npm test in the repository`);
    }
    const sdkDeps = Object.keys(PKG.dependencies).filter((n) => SDK.test(n));
    assert.deepEqual(sdkDeps, [], 'no SDK package among the library\'s dependencies');
  });

  it('the agent package depends on this library\'s version and on the SDK and exporters, and provides the otel-twamp command', () => {
    assert.equal(AGENT.name, 'otel-twamp-agent');
    assert.equal(AGENT.version, PKG.version, 'released together');
    assert.equal(AGENT.dependencies['otel-twamp'], PKG.version);
    for (const [name, range] of Object.entries(CLI_PACKAGES)) assert.equal(AGENT.dependencies[name], range, name);
    assert.equal(AGENT.dependencies['@opentelemetry/api'], PKG.peerDependencies?.['@opentelemetry/api']);
    assert.deepEqual(Object.keys(AGENT.bin ?? {}), ['otel-twamp']);
    assert.match(readFileSync(join(AGENT_DIR, AGENT.bin!['otel-twamp']!), 'utf8'), /^#!\/usr\/bin\/env node\n[\s\S]*import 'otel-twamp\/cli';/);
    assert.ok(PKG.exports?.['./cli'] && PKG.exports['./config'], 'the library exports ./cli (for the agent) and ./config');
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
      // The config parsers are otel-twamp/config: importing the producers loads neither yaml nor zod.
      assert.deepEqual([...loaded].filter((p) => p === 'yaml' || p === 'zod'), [], 'no config parser');
      const installed = new Set([...Object.keys(PKG.dependencies), ...Object.keys(PKG.peerDependencies ?? {})]);
      assert.deepEqual([...loaded].filter((p) => !installed.has(p)), [], 'every package loaded is a dependency or a peer');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * `npm pack`ed and installed into a fresh project, as a user gets them: npm
 * answers from its cache when it can (--prefer-offline), and the native
 * helper's build is skipped (OTEL_TWAMP_SKIP_NATIVE; it degrades to no DSCP).
 */
describe('packed and installed as a user would', { timeout: 600_000 }, () => {
  const npmOk = spawnSync('npm', ['--version'], { encoding: 'utf8' }).status === 0;
  const env = {
    ...process.env, OTEL_TWAMP_SKIP_NATIVE: '1', npm_config_update_notifier: 'false', npm_config_fund: 'false',
    npm_config_audit: 'false', npm_config_yes: 'false', npm_config_loglevel: 'error',
  };
  let packs: string;
  let libTgz: string;
  let agentTgz: string;
  const dirs: string[] = [];

  function npm(args: string[], cwd: string) {
    const r = spawnSync('npm', args, { cwd, env, encoding: 'utf8', timeout: 240_000 });
    assert.equal(r.status, 0, `npm ${args.join(' ')} in ${cwd}:\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  /** A fresh project with `deps` installed. */
  function project(name: string, deps: string[]): string {
    const dir = mkdtempSync(join(os.tmpdir(), `otel-twamp-${name}-`));
    dirs.push(dir);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, type: 'module' }));
    npm(['install', '--prefer-offline', '--no-audit', '--no-fund', ...deps], dir);
    return dir;
  }

  /** Installed packages: each copy's path under node_modules (npm ls --parseable names a deduped one again). */
  function installed(dir: string): string[] {
    const paths = new Set(npm(['ls', '--all', '--parseable'], dir).split('\n').filter((l) => l.includes('/node_modules/')));
    return [...paths].map((p) => p.slice(p.indexOf('/node_modules/') + 1)).sort();
  }

  /** The library's own packages: what installing otel-twamp may add to a project. */
  const OWN = ['otel-twamp', ...Object.keys(PKG.dependencies)].map((n) => `node_modules/${n}`);

  before(() => {
    if (!npmOk) return;
    packs = mkdtempSync(join(os.tmpdir(), 'otel-twamp-packs-'));
    dirs.push(packs);
    // dist/ is built (the tests run from it): pack without running prepare's build again.
    npm(['pack', '--ignore-scripts', '--pack-destination', packs, ROOT, AGENT_DIR], ROOT);
    const files = readdirSync(packs);
    libTgz = join(packs, files.find((f) => f === `otel-twamp-${PKG.version}.tgz`)!);
    agentTgz = join(packs, files.find((f) => f === `otel-twamp-agent-${AGENT.version}.tgz`)!);
  });
  after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

  it('the library with only @opentelemetry/api: no SDK, no exporter installed; the CLI says what to install', { skip: !npmOk && 'npm not on PATH' }, () => {
    const dir = project('lib-only', [libTgz, '@opentelemetry/api@^1.9.0']);
    const pkgs = installed(dir).map((p) => packageOf(`/${p}`));
    assert.ok(pkgs.includes('otel-twamp') && pkgs.includes('@opentelemetry/api'), pkgs.join(', '));
    assert.deepEqual(pkgs.filter((p) => SDK.test(p!)), [], `no SDK or exporter: ${pkgs.join(', ')}`);
    // The command line, run from a library install: one message naming what is missing and what to install.
    const main = join(dir, 'node_modules', 'otel-twamp', 'dist', 'src', 'cli', 'main.js');
    writeFileSync(join(dir, 'a.yaml'), '$version: "1.0"\ncollectors: []\n');
    const r = spawnSync(process.execPath, [main, 'agent', '--config', 'a.yaml'], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1, r.stderr);
    for (const name of Object.keys(CLI_PACKAGES)) assert.ok(r.stderr.includes(name), `names ${name}:\n${r.stderr}`);
    assert.match(r.stderr, /npm i -g otel-twamp-agent/);
    assert.doesNotMatch(r.stderr, /ERR_MODULE_NOT_FOUND|at .*\.js:\d+/, 'no stack trace');
    // What needs no SDK still works: --check and --version.
    const check = spawnSync(process.execPath, [main, 'agent', '--config', 'a.yaml', '--check'], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    assert.equal(check.status, 0, check.stderr);
  });

  it('the README\'s library example runs with the application\'s own sdk-metrics, the one copy installed', { skip: !npmOk && 'npm not on PATH' }, async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const install = /^npm i (otel-twamp @opentelemetry\/api[^\n]*)$/m.exec(readme);
    assert.ok(install, 'README "As a library" has its npm i line');
    const deps = install[1]!.split(/\s+/).map((d) => (d === 'otel-twamp' ? libTgz : d));
    const example = [...readme.matchAll(/^```(?:js|mjs)\n([\s\S]*?)^```$/gm)].map((m) => m[1]!).find((c) => /from 'otel-twamp'/.test(c));
    assert.ok(example, 'README has the library example');
    const dir = project('lib-app', deps);
    // Adding otel-twamp to the application adds the library and its own dependencies, no other copy of
    // anything: the SDK packages are exactly those the application's own packages bring.
    const without = project('lib-app-without', deps.filter((d) => d !== libTgz));
    assert.deepEqual(installed(dir).filter((p) => !OWN.includes(p)), installed(without));
    assert.ok(installed(dir).includes('node_modules/@opentelemetry/sdk-metrics'));
    // The example on free ports (its own are fixed), otherwise as written.
    const [prom, twamp] = [await freePort('127.0.0.1', 'tcp'), await freePort('127.0.0.1', 'tcp')];
    writeFileSync(join(dir, 'example.mjs'), example.replaceAll('9466', String(prom)).replaceAll('18640', String(twamp)));
    const r = spawnSync(process.execPath, ['example.mjs'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^round trip avg \d+\.\d{3} ms, loss \d+$/m);
  });

  it('the agent package: its otel-twamp command runs --version, a probe and an agent on loopback', { skip: !npmOk && 'npm not on PATH' }, async () => {
    // The library's tarball beside it stands in for the registry's otel-twamp of the same version.
    const dir = project('agent', [libTgz, agentTgz]);
    // The library shares the agent's SDK copies: none of its own.
    assert.deepEqual(installed(dir).filter((p) => p.startsWith('node_modules/otel-twamp/node_modules/')), []);
    const bin = join(dir, 'node_modules', 'otel-twamp-agent', AGENT.bin!['otel-twamp']!);
    chmodSync(bin, 0o755);
    const run = (args: string[], timeout = 30_000) => spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8', timeout });
    const version = run(['--version']);
    assert.equal(version.status, 0, version.stderr);
    assert.equal(version.stdout.trim(), PKG.version);
    // npx, as README "Install" says; answered from the local install (npm_config_yes=false: never the registry).
    const npx = spawnSync('npx', ['--offline', 'otel-twamp-agent', '--version'], { cwd: dir, env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(npx.stdout.trim(), PKG.version, npx.stderr);

    const [prom, port] = [await freePort('127.0.0.1', 'tcp'), await freePort('127.0.0.1', 'tcp')];
    writeFileSync(join(dir, 'agent.yaml'), `$version: "1.0"
sender: { listen: "127.0.0.1:${prom}" }
collectors:
  - { id: r, type: twamp_reflector, listen: 127.0.0.1, port: ${port} }
  - { id: s, type: twamp_sender, reflector: 127.0.0.1, port: ${port}, n_packets: 5, model: g711 }
`);
    const agent = spawn(process.execPath, [bin, 'agent', '--config', 'agent.yaml'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    agent.stdout!.on('data', (d: Buffer) => { log += d.toString(); });
    agent.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
    try {
      let text = '';
      for (const end = Date.now() + 30_000; Date.now() < end && !/^twamp_rx_packets\{[^}]*collector_id="s"[^}]*\} 5$/m.test(text);) {
        await new Promise((r) => setTimeout(r, 250));
        text = await fetch(`http://127.0.0.1:${prom}/metrics`).then((x) => x.text(), () => '');
      }
      assert.match(text, /^twamp_rx_packets\{[^}]*collector_id="s"[^}]*\} 5$/m, `agent log:\n${log}`);
      const probe = run(['probe', `127.0.0.1:${port}`, '--count', '5', '--json']);
      assert.equal(probe.status, 0, probe.stdout + probe.stderr);
      assert.equal((JSON.parse(probe.stdout) as { ok: boolean }).ok, true);
    } finally {
      agent.kill('SIGTERM');
      await new Promise((r) => agent.once('exit', r));
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
