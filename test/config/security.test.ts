// Security keys: sender mode / key_id / secret / secret_file,
// reflector modes / key_file / kdf_count. Secrets are read at load time,
// never echoed in messages or dumps; file problems name the file (and line).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { describe, it, before, after } from 'node:test';
import { loadAgentConfig, parseReflectorConfig, parseSenderConfig } from '../../src/config/index.js';
import type { ReflectorConfig, SenderConfig } from '../../src/config/index.js';
import { parseKeyFile } from '../../src/config/load.js';
import { agentWith, configError, issueAt, parse, parseError, SENDER } from './helpers.js';


const REFLECTOR = `
- id: r
  type: twamp_reflector`;

const SECRET = 'testsecret123';

describe('sender security keys', () => {
  it('mode defaults to open; a single mode or a preference list', () => {
    assert.deepEqual((parse(agentWith(SENDER)).collectors[0] as SenderConfig).modes, ['open']);
    const one = parse(agentWith(`${SENDER}\n  mode: authenticated\n  key_id: testuser\n  secret: ${SECRET}`))
      .collectors[0] as SenderConfig;
    assert.deepEqual(one.modes, ['authenticated']);
    assert.equal(one.keyId, 'testuser');
    assert.equal(one.secret?.reveal().toString(), SECRET);
    const list = parse(agentWith(`${SENDER}\n  mode: [encrypted, authenticated, mixed, open]\n  key_id: k\n  secret: x`))
      .collectors[0] as SenderConfig;
    assert.deepEqual(list.modes, ['encrypted', 'authenticated', 'mixed', 'open']);
  });

  it('the secret never shows in JSON, inspect or string form', () => {
    const s = parseSenderConfig({ id: 'x', reflector: '::1', n_packets: 5, model: 'g711', mode: 'encrypted', key_id: 'k', secret: SECRET });
    for (const text of [JSON.stringify(s), inspect(s, { depth: 5 }), String(s.secret), `${s.secret}`]) {
      assert.ok(!text.includes(SECRET), text);
    }
    assert.equal(s.secret?.reveal().toString(), SECRET);
  });

  it('bad mode values name the key (and the list index)', () => {
    let err = parseError(agentWith(`${SENDER}\n  mode: secure`));
    assert.match(issueAt(err, ['collectors', 0, 'mode']).message, /expected one of "open", "authenticated", "encrypted", "mixed", got "secure"/);
    err = parseError(agentWith(`${SENDER}\n  mode: [open, bogus]`));
    assert.match(issueAt(err, ['collectors', 0, 'mode', 1]).message, /got "bogus"/);
    err = parseError(agentWith(`${SENDER}\n  mode: [open, open]`));
    assert.match(issueAt(err, ['collectors', 0, 'mode', 1]).message, /listed twice/);
    err = parseError(agentWith(`${SENDER}\n  mode: []`));
    assert.match(issueAt(err, ['collectors', 0, 'mode']).message, /empty list/);
  });

  it('a secured mode needs key_id and a secret; not both secret and secret_file', () => {
    let err = parseError(agentWith(`${SENDER}\n  mode: [authenticated, open]`));
    assert.match(issueAt(err, ['collectors', 0, 'key_id']).message, /key_id is required when mode includes "authenticated"/);
    assert.match(issueAt(err, ['collectors', 0, 'secret']).message, /secret or secret_file is required/);
    err = parseError(agentWith(`${SENDER}\n  mode: mixed\n  key_id: k\n  secret: a\n  secret_file: /x`));
    assert.match(issueAt(err, ['collectors', 0, 'secret_file']).message, /either secret or secret_file, not both/);
    err = parseError(agentWith(`${SENDER}\n  mode: mixed\n  key_id: "${'k'.repeat(81)}"\n  secret: a`));
    assert.match(issueAt(err, ['collectors', 0, 'key_id']).message, /at most 80 octets/);
    // open only: key and secret are not needed
    assert.deepEqual((parse(agentWith(`${SENDER}\n  mode: open`)).collectors[0] as SenderConfig).modes, ['open']);
  });

  it('a bad secret is reported without its value', () => {
    const err = parseError(agentWith(`${SENDER}\n  mode: encrypted\n  key_id: k\n  secret: "abc\\ndef"`));
    const msg = issueAt(err, ['collectors', 0, 'secret']).message;
    assert.match(msg, /line breaks/);
    assert.ok(!msg.includes('abc'), msg);
  });
});

describe('files named by the config', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'otel-twamp-sec-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('secret_file: read at load, relative to the config file, final newline dropped', async () => {
    await writeFile(path.join(dir, 'secret.txt'), `${SECRET}\n`);
    const file = path.join(dir, 'agent.yaml');
    await writeFile(file, agentWith(`${SENDER}\n  mode: authenticated\n  key_id: testuser\n  secret_file: secret.txt`));
    const s = (await loadAgentConfig(file)).collectors[0] as SenderConfig;
    assert.equal(s.secret?.reveal().toString(), SECRET);
  });

  it('secret_file unreadable or empty: error naming the file and the key', async () => {
    const file = path.join(dir, 'agent2.yaml');
    await writeFile(file, agentWith(`${SENDER}\n  mode: authenticated\n  key_id: testuser\n  secret_file: missing.txt`));
    const err = await loadAgentConfig(file).then(() => assert.fail('expected ConfigError'), (e: unknown) => e as Error);
    assert.match(err.message, /agent2\.yaml:\d+:\d+: collectors\[0\] \(id "s"\): secret_file: cannot read ".*missing\.txt": no such file/);
    await writeFile(path.join(dir, 'empty.txt'), '\n');
    const e2 = configError(() =>
      parseSenderConfig({ id: 'x', reflector: '::1', n_packets: 5, model: 'g711', mode: 'mixed', key_id: 'k', secret_file: path.join(dir, 'empty.txt') }));
    assert.match(e2.message, /secret_file: ".*empty\.txt" is empty/);
  });

  it('key_file: pfstore format, comments and blank lines; keys by id', async () => {
    const kf = path.join(dir, 'twamp.pfs');
    await writeFile(kf, `# keys\n\ntestuser\t${Buffer.from(SECRET).toString('hex')}\n  other  6f74686572  \n`);
    await chmod(kf, 0o600);
    const r = parseReflectorConfig({ id: 'r', modes: ['authenticated', 'encrypted', 'mixed'], key_file: kf, kdf_count: 1024 });
    assert.deepEqual(r.modes, ['authenticated', 'encrypted', 'mixed']);
    assert.equal(r.kdfCount, 1024);
    assert.equal(r.keyFile, kf);
    assert.deepEqual([...r.keys!.keys()], ['testuser', 'other']);
    assert.equal(r.keys!.get('testuser')!.reveal().toString(), SECRET);
    assert.equal(r.keys!.get('other')!.reveal().toString(), 'other');
    assert.ok(!inspect(r, { depth: 5 }).includes(SECRET));
  });

  it('key_file errors name the file and the line', () => {
    const cases: [string, RegExp][] = [
      ['testuser\n', /line 1: expected "<key id> <hex pass-phrase>"/],
      ['# c\nu1 6162\nu2 abc\n', /line 3: the pass-phrase of "u2" must be an even number of hex digits/],
      ['u1 6162 extra\n', /line 1: expected/],
      ['u1 6162\nu1 6364\n', /line 2: key id "u1" already defined on line 1/],
      ['u1 zz\n', /line 1: .*hex/],
    ];
    for (const [text, re] of cases) {
      const r = parseKeyFile(text, '/etc/twamp.pfs');
      assert.ok('error' in r, text);
      assert.match(r.error, re, text);
      assert.match(r.error, /^"\/etc\/twamp\.pfs" line \d+/);
    }
  });

  it('key_file missing or empty, in an agent file', async () => {
    const file = path.join(dir, 'agent3.yaml');
    await writeFile(path.join(dir, 'empty.pfs'), '# nothing\n');
    await writeFile(file, agentWith(`${REFLECTOR}\n  modes: [authenticated]\n  key_file: nope.pfs\n- id: r2\n  type: twamp_reflector\n  modes: [mixed]\n  key_file: empty.pfs`));
    const err = await loadAgentConfig(file).then(() => assert.fail('expected ConfigError'), (e: unknown) => e as Error);
    assert.match(err.message, /collectors\[0\] \(id "r"\): key_file: cannot read ".*nope\.pfs": no such file/);
    assert.match(err.message, /collectors\[1\] \(id "r2"\): key_file: ".*empty\.pfs" holds no keys/);
  });
});

describe('reflector security keys', () => {
  it('defaults: modes [open], kdf_count 2048, no keys', () => {
    const r = parse(agentWith(REFLECTOR)).collectors[0] as ReflectorConfig;
    assert.deepEqual(r.modes, ['open']);
    assert.equal(r.kdfCount, 2048);
    assert.ok(!('keys' in r) && !('keyFile' in r));
  });

  it('secured modes need key_file; kdf_count must be a power of two ≥ 1024', () => {
    let err = parseError(agentWith(`${REFLECTOR}\n  modes: [open, encrypted]`));
    assert.match(issueAt(err, ['collectors', 0, 'key_file']).message, /key_file is required when modes include "encrypted"/);
    err = parseError(agentWith(`${REFLECTOR}\n  kdf_count: 1000`));
    assert.match(issueAt(err, ['collectors', 0, 'kdf_count']).message, /not a power of two/);
    err = parseError(agentWith(`${REFLECTOR}\n  kdf_count: 512`));
    assert.match(issueAt(err, ['collectors', 0, 'kdf_count']).message, /below the minimum 1024/);
    err = parseError(agentWith(`${REFLECTOR}\n  modes: [open, secret]`));
    assert.match(issueAt(err, ['collectors', 0, 'modes', 1]).message, /got "secret"/);
  });
});
