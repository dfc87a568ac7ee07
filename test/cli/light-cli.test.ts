// probe --light / --format and reflect's limit, access-list, security and
// Light flags, as a user runs them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot, freePort } from '../helpers/peers.js';

const MAIN = join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

describe('probe and reflect: TWAMP Light / STAMP and limit flags', { timeout: 60_000 }, () => {
  it('probe --light --format stamp against reflect --light-only: every packet back, JSON says so', async () => {
    const light = await freePort('127.0.0.1', 'udp');
    const refl = spawn(process.execPath, [MAIN, 'reflect', '--light-only', '--light-port', String(light), '--listen', '127.0.0.1',
      '--allow', '127.0.0.0/8', '--light-rate-limit', '5000', '--max-pps', '50000', '--light-cos-allow', 'ef,af41'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    refl.stderr.on('data', (d: Buffer) => { log += d.toString(); });
    try {
      const deadline = Date.now() + 10_000;
      while (!/TWAMP-Light\/STAMP reflector/.test(log) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.match(log, /TWAMP-Light\/STAMP reflector \(stateless\) on UDP 127\.0\.0\.1:\d+/);
      for (const format of ['twamp', 'stamp']) {
        const r = spawnSync(process.execPath, [MAIN, 'probe', `127.0.0.1:${light}`, '--light', '--format', format, '--count', '20', '--json'],
          { encoding: 'utf8', timeout: 20_000 });
        assert.equal(r.status, 0, r.stderr);
        const doc = JSON.parse(r.stdout) as { ok: boolean; traffic: { sentPackets: number; receivedPackets: number }; roundTrip: { lossPackets: number } };
        assert.equal(doc.ok, true);
        assert.equal(doc.traffic.sentPackets, 20);
        assert.equal(doc.traffic.receivedPackets, 20);
        assert.equal(doc.roundTrip.lossPackets, 0);
      }
    } finally {
      refl.kill('SIGTERM');
    }
    const code = await new Promise<number | null>((r) => refl.once('exit', (c) => r(c)));
    assert.equal(code, 0, log);
  });

  it('reflect flags are validated like the config keys and named in the error', () => {
    for (const [args, re] of [
      [['--max-pps', 'abc'], /--max-pps: expected an integer/],
      [['--allow', '300.1.2.3/8'], /--allow/],
      [['--modes', 'authenticated'], /key_file|--key-file/],
      [['--light-only'], /light_port|--light-port/],
      [['--light-port', '18999', '--light-cos-allow', 'ef,99'], /--light-cos-allow: .*got "99"/],
    ] as const) {
      const r = spawnSync(process.execPath, [MAIN, 'reflect', ...args], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
  });

  it('probe --format stamp without --light is a usage error naming the flag', () => {
    const r = spawnSync(process.execPath, [MAIN, 'probe', '127.0.0.1:9', '--format', 'stamp'], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--format stamp needs --light/);
  });
});
