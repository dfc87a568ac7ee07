// Usage errors as a user meets them: unknown options get our message with a
// suggestion from the command's own flags, and probe's config errors name the
// flags the user typed, never the config keys they map to. And every entry
// point exports under one resource (service.name otel-twamp).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import os from 'node:os';
import { join } from 'node:path';
import { freePort, repoRoot } from '../helpers/peers.js';
import { UsageError, closestName, editDistance, parseArgs } from '../../src/cli/common.js';
import { cliResource } from '../../src/cli/resource.js';
import { VERSION } from '../../src/version.js';

const MAIN = join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

function run(...args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stderr: r.stderr };
}

describe('unknown options', { timeout: 60_000 }, () => {
  it('every command says "unknown option" with the closest flag of that command, exit 2', () => {
    for (const [args, line] of [
      [['probe', '127.0.0.1', '--cnt', '3'], 'otel-twamp probe: unknown option --cnt (did you mean --count?)'],
      [['reflect', '--prot', '1862'], 'otel-twamp reflect: unknown option --prot (did you mean --port?)'],
      [['reflect', '--max-pps-per-sesion=4'], 'otel-twamp reflect: unknown option --max-pps-per-sesion (did you mean --max-pps-per-session?)'],
      [['agent', '--cnfig', 'x.yaml'], 'otel-twamp agent: unknown option --cnfig (did you mean --config?)'],
      [['--chek'], 'otel-twamp: unknown option --chek (did you mean --check?)'],
    ] as const) {
      const r = run(...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.split('\n')[0], line);
      assert.doesNotMatch(r.stderr, /To specify a positional argument/);
    }
  });

  it('no suggestion when nothing is close; a missing value names the flag', () => {
    const far = run('probe', '127.0.0.1', '--zzzzzzzz');
    assert.equal(far.status, 2);
    assert.equal(far.stderr.split('\n')[0], 'otel-twamp probe: unknown option --zzzzzzzz');
    const missing = run('probe', '127.0.0.1', '--count');
    assert.equal(missing.status, 2);
    assert.equal(missing.stderr.split('\n')[0], 'otel-twamp probe: --count needs a value');
  });

  it('the shared parser: typo distance, prefixes, short options, and types kept', () => {
    assert.equal(editDistance('cnt', 'count'), 2);
    assert.equal(editDistance('ocunt', 'count'), 1); // a swap of neighbours is one edit
    assert.equal(closestName('jsno', ['json', 'quiet']), 'json');
    assert.equal(closestName('refw', ['refwait', 'reflector', 'servwait']), 'refwait');
    assert.equal(closestName('qqqqqq', ['json', 'quiet']), undefined);
    const options = { count: { type: 'string', short: 'c' }, json: { type: 'boolean' } } as const;
    const ok = parseArgs({ args: ['-c', '5', '--json', 'host'], allowPositionals: true, options });
    assert.equal(ok.values.count, '5');
    assert.equal(ok.values.json, true);
    assert.deepEqual(ok.positionals, ['host']);
    assert.throws(() => parseArgs({ args: ['-x'], options }), (e: unknown) => e instanceof UsageError && e.message === 'unknown option -x');
    assert.throws(() => parseArgs({ args: ['--jsn=1'], options }),
      (e: unknown) => e instanceof UsageError && e.message === 'unknown option --jsn (did you mean --json?)');
    assert.throws(() => parseArgs({ args: ['stray'], options }),
      (e: unknown) => e instanceof UsageError && e.message === 'unexpected argument "stray" (this command takes no positional arguments)');
  });
});

describe('probe errors name the flags', { timeout: 60_000 }, () => {
  // Config keys and key: value phrases that a probe user never typed.
  const KEY_WORDS = /control: false|\bkey_id\b|\bsecret_file\b|\breflector_port\b|\bn_packets\b|(?<![\w-])(?:format "|mode includes|model \w)/;

  it('cross-key checks say what was typed: --format stamp needs --light, and the rest', () => {
    for (const [args, expected] of [
      [['--format', 'stamp'], ['--format stamp needs --light (STAMP has no TWAMP-Control)']],
      [['--mode', 'authenticated'], [
        '--key-id is required when --mode includes "authenticated"',
        '--secret-file is required when --mode includes "authenticated"',
      ]],
      [['--light', '--reflector-port', '5000'], ['--reflector-port: not used with --light (set PORT (HOST:PORT) to the reflector\'s UDP test port)']],
      [['--light', '--mode', 'encrypted', '--key-id', 'k', '--secret-file', '/nonexistent/secret'], [
        '--mode: --light (TWAMP Light / STAMP) is unauthenticated only; got --mode "encrypted"',
      ]],
      [['--light', '--format', 'stamp', '--mode', 'open,authenticated'], [
        '--mode: --light with --format stamp takes one mode, "open" or "authenticated"',
      ]],
      [['--model', 'cbr'], ['--bandwidth: required by --model cbr (bit/s)']],
      [['--size', '100'], ['--size: not used by --model g711']],
      [['--count', 'many'], ['--count: expected an integer']],
    ] as const) {
      const r = run('probe', '127.0.0.1:9', ...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      for (const e of expected) assert.ok(r.stderr.includes(`otel-twamp probe: ${e}`), `${args.join(' ')}: want ${e}\ngot ${r.stderr}`);
      assert.doesNotMatch(r.stderr, KEY_WORDS, `${args.join(' ')}: ${r.stderr}`);
    }
  });

  it('reflect: control: false is --light-only', () => {
    const r = run('reflect', '--light-only');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^otel-twamp reflect: --light-port: --light-only needs --light-port/);
    assert.doesNotMatch(r.stderr, /control: false|light_port/);
  });
});

describe('one resource for every entry point', { timeout: 60_000 }, () => {
  it('cliResource: otel-twamp, version, host; OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES win', () => {
    const plain = cliResource({ host: 'h1', env: {} }).attributes;
    assert.equal(plain['service.name'], 'otel-twamp');
    assert.equal(plain['service.version'], VERSION);
    assert.equal(plain['host.name'], 'h1');
    assert.equal(plain['service.instance.id'], 'h1');
    assert.equal(cliResource({ env: {} }).attributes['host.name'], os.hostname());
    const saved = { name: process.env.OTEL_SERVICE_NAME, attrs: process.env.OTEL_RESOURCE_ATTRIBUTES };
    try {
      process.env.OTEL_SERVICE_NAME = 'edge-reflector';
      process.env.OTEL_RESOURCE_ATTRIBUTES = 'deployment.environment=lab';
      const env = cliResource({ host: 'h1' }).attributes;
      assert.equal(env['service.name'], 'edge-reflector');
      assert.equal(env['deployment.environment'], 'lab');
      assert.equal(env['host.name'], 'h1');
    } finally {
      for (const [k, v] of [['OTEL_SERVICE_NAME', saved.name], ['OTEL_RESOURCE_ATTRIBUTES', saved.attrs]] as const) {
        if (v === undefined) delete process.env[k]; else process.env[k] = v;
      }
    }
  });

  it('reflect --metrics: target_info says service_name="otel-twamp" like the agent', async () => {
    const prom = await freePort('127.0.0.1', 'tcp');
    const env = { ...process.env };
    delete env.OTEL_SERVICE_NAME;
    delete env.OTEL_RESOURCE_ATTRIBUTES;
    const child = spawn(process.execPath, [MAIN, 'reflect', '--listen', '127.0.0.1', '--port', '0', '--metrics', `127.0.0.1:${prom}`],
      { stdio: ['ignore', 'ignore', 'pipe'], env });
    let log = '';
    child.stderr.on('data', (d: Buffer) => { log += d.toString(); });
    let text = '';
    try {
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline && !/^target_info\{/m.test(text)) {
        await new Promise((r) => setTimeout(r, 200));
        try {
          text = await (await fetch(`http://127.0.0.1:${prom}/metrics`)).text();
        } catch {
          // not listening yet
        }
      }
    } finally {
      child.kill('SIGTERM');
    }
    const code = await new Promise<number | null>((r) => {
      const t = setTimeout(() => { child.kill('SIGKILL'); r(null); }, 15_000);
      child.once('exit', (c) => { clearTimeout(t); r(c); });
    });
    assert.match(text, /^target_info\{[^}]*service_name="otel-twamp"/m, `${text}\n${log}`);
    assert.match(text, new RegExp(`^target_info\\{[^}]*service_version="${VERSION.replace(/\./g, '\\.')}"`, 'm'));
    assert.doesNotMatch(text, /unknown_service/);
    assert.equal(code, 0, log);
  });
});
