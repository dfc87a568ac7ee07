// Files a config names (key_file, secret_file) and the config file itself are
// read only when they are regular files under a size limit: /dev/zero once
// used 2.9 GB in 8 s and a FIFO froze the event loop. Errors name the key
// and the path; `agent --check` prints them as one line each, no stack trace.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, before, after } from 'node:test';
import { loadAgentConfig } from '../../src/config/index.js';
import { MAX_KEY_FILE_OCTETS, MAX_SECRET_FILE_OCTETS, readBoundedFile } from '../../src/config/load.js';
import { repoRoot } from '../helpers/peers.js';
import { agentWith, parse, parseError } from './helpers.js';

const SENDER = `
- id: s
  type: twamp_sender
  reflector: 192.0.2.1
  n_packets: 10
  model: g711
  mode: authenticated
  key_id: k`;

const REFLECTOR = `
- id: r
  type: twamp_reflector
  modes: [authenticated]`;

const CLI = path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

describe('files named by the config', { timeout: 60_000 }, () => {
  let dir: string;
  let fifo: string | undefined;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'otel-twamp-files-'));
    mkdirSync(path.join(dir, 'adir'));
    writeFileSync(path.join(dir, 'big-secret'), 'x'.repeat(MAX_SECRET_FILE_OCTETS + 1));
    writeFileSync(path.join(dir, 'big-keys'), `# padding\n${'#'.repeat(MAX_KEY_FILE_OCTETS)}\nk 0102\n`);
    writeFileSync(path.join(dir, 'ok-keys'), 'k 0102\n');
    try {
      execFileSync('mkfifo', [path.join(dir, 'fifo')]);
      fifo = path.join(dir, 'fifo');
    } catch { /* no mkfifo: the FIFO cases are skipped below */ }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const source = () => path.join(dir, 'agent.yaml');
  const secretError = (file: string) => parseError(agentWith(`${SENDER}\n  secret_file: ${file}`), source());
  const keyError = (file: string) => parseError(agentWith(`${REFLECTOR}\n  key_file: ${file}`), source());

  it('/dev/zero is refused at once (not read) for secret_file, key_file and the config itself', async () => {
    for (const err of [secretError('/dev/zero'), keyError('/dev/zero')]) {
      assert.equal(err.issues.length, 1, err.message);
      assert.match(err.message, /\((id "[sr]")\): (secret_file|key_file): cannot read "\/dev\/zero": is a character device, expected a regular file$/);
    }
    await assert.rejects(loadAgentConfig('/dev/zero'), /^ConfigError: \/dev\/zero: cannot read config file: is a character device/);
  });

  it('a FIFO is refused without blocking (nobody ever writes to it)', async (t) => {
    if (!fifo) return t.skip('mkfifo not available');
    assert.match(secretError(fifo).message, /secret_file: cannot read ".*fifo": is a FIFO \(named pipe\), expected a regular file/);
    assert.match(keyError(fifo).message, /key_file: cannot read ".*fifo": is a FIFO \(named pipe\), expected a regular file/);
    await assert.rejects(loadAgentConfig(fifo), /cannot read config file: is a FIFO/);
  });

  it('a directory is refused, naming key and path', () => {
    assert.match(secretError('adir').message, /secret_file: cannot read ".*adir": is a directory, expected a regular file/);
    assert.match(keyError('adir').message, /key_file: cannot read ".*adir": is a directory, expected a regular file/);
  });

  it('files over the limit are refused: 64 KiB for secret_file, 1 MiB for key_file', () => {
    assert.match(secretError('big-secret').message,
      new RegExp(`secret_file: cannot read ".*big-secret": is ${MAX_SECRET_FILE_OCTETS + 1} octets, more than the ${MAX_SECRET_FILE_OCTETS} allowed`));
    assert.match(keyError('big-keys').message, /key_file: cannot read ".*big-keys": is \d+ octets, more than the 1048576 allowed/);
    assert.equal(MAX_SECRET_FILE_OCTETS, 64 * 1024);
    assert.equal(MAX_KEY_FILE_OCTETS, 1024 * 1024);
  });

  it('regular files within the limit are still read', () => {
    const r = parse(agentWith(`${REFLECTOR}\n  key_file: ok-keys`), source()).collectors[0]!;
    assert.equal(r.type === 'twamp_reflector' && r.keys?.size, 1);
    assert.equal(readBoundedFile(path.join(dir, 'ok-keys'), 7).toString(), 'k 0102\n');
    assert.throws(() => readBoundedFile(path.join(dir, 'ok-keys'), 6), /is 7 octets, more than the 6 allowed/);
  });

  it('agent --check prints one line per problem and exits 1, no stack trace', (t) => {
    const cases: [string, RegExp][] = [
      [agentWith(`${REFLECTOR}\n  key_file: /dev/zero`), /key_file: cannot read "\/dev\/zero": is a character device/],
      [agentWith(`${SENDER}\n  secret_file: adir`), /secret_file: cannot read ".*adir": is a directory/],
    ];
    if (fifo) cases.push([agentWith(`${REFLECTOR}\n  key_file: ${fifo}`), /key_file: cannot read ".*fifo": is a FIFO/]);
    else t.diagnostic('mkfifo not available: FIFO case skipped');
    for (const [text, re] of cases) {
      writeFileSync(source(), text);
      const r = spawnSync(process.execPath, [CLI, 'agent', '--check', '--config', source()], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 1, r.stderr);
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, re);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
    const r = spawnSync(process.execPath, [CLI, 'agent', '--check', '--config', '/dev/zero'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 1);
    assert.equal(r.stderr, '/dev/zero: cannot read config file: is a character device, expected a regular file\n');
  });
});
