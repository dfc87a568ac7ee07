// Units behind the reflector's per-client fairness (README "Security"):
// client keys, the fair packet budget, the session-line budget, the async
// key derivation and StreamReader's whole-message bound.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { clientKey, FairShare, LineBudget } from '../../src/session/limits.js';
import { deriveKeyAsync } from '../../src/session/controlServer.js';
import { StreamReader } from '../../src/session/streamReader.js';
import { TwampSessionError } from '../../src/session/errors.js';
import { deriveKey } from '../../src/protocol/index.js';
import type { Logger } from '../../src/util/log.js';

describe('clientKey', () => {
  it('IPv4 per address, IPv4-mapped IPv6 as IPv4, IPv6 by prefix', () => {
    assert.equal(clientKey('192.0.2.7', 64), '192.0.2.7');
    assert.equal(clientKey('::ffff:192.0.2.7', 64), '192.0.2.7');
    assert.equal(clientKey('2001:db8:1:2:aaaa::1', 64), clientKey('2001:db8:1:2:bbbb:cccc:dddd:eeee', 64));
    assert.notEqual(clientKey('2001:db8:1:2::1', 64), clientKey('2001:db8:1:3::1', 64));
    assert.equal(clientKey('2001:db8:1:2::1', 64), '2001:db8:1:2:0:0:0:0/64');
    assert.equal(clientKey('2001:db8:1:2::1', 48), clientKey('2001:db8:1:ffff::1', 48));
    assert.equal(clientKey('2001:db8:1:2::1', 56), '2001:db8:1:0:0:0:0:0/56');
    assert.equal(clientKey('2001:db8:1:2ff::1', 56), '2001:db8:1:200:0:0:0:0/56');
    assert.equal(clientKey('::1', 128), '0:0:0:0:0:0:0:1/128');
    assert.equal(clientKey('0:0:0:0:0:0:0:1', 128), clientKey('::1', 128), 'one form per address');
  });
});

describe('FairShare', () => {
  it('a client within its share loses nothing while another takes all it can; unused share is borrowed', () => {
    let now = 0;
    const pool = new FairShare(400, () => now);
    const a = pool.member();
    const b = pool.member();
    a.activate(); b.activate();
    let aPassed = 0; let bPassed = 0; let bSent = 0;
    for (let ms = 0; ms < 10_000; ms++) {
      now = ms;
      for (let k = 0; k < 20; k++) if (a.take()) aPassed++; // 20,000 pps
      if (ms % 10 === 0) { bSent++; if (b.take()) bPassed++; } // 100 pps, half its share
    }
    assert.equal(bPassed, bSent);
    // A gets its 200 plus B's unused 100, about 300 pps (plus the initial bursts).
    assert.ok(aPassed > 2_800 && aPassed < 3_800, `A passed ${aPassed} in 10 s`);
  });

  it('alone, a client may use the whole budget; the total stays at the rate', () => {
    let now = 0;
    const pool = new FairShare(1000, () => now);
    const a = pool.member();
    a.activate();
    let n = 0;
    for (let ms = 0; ms < 5000; ms++) { now = ms; for (let k = 0; k < 5; k++) if (a.take()) n++; }
    assert.ok(n > 5000 && n <= 6100, `${n} in 5 s at 1000 pps`);
    a.deactivate(); a.deactivate();
    assert.equal(pool.active, 0, 'idempotent');
  });
});

describe('LineBudget', () => {
  it('at most N lines per second, then one line with the count', () => {
    let now = 0;
    const lines: string[] = [];
    const log: Logger = { debug: (m) => lines.push(m), info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) };
    const b = new LineBudget(log, 5, 'session events', () => now);
    for (let i = 0; i < 100; i++) b.line('info', `event ${i}`);
    assert.equal(lines.length, 5);
    b.flush();
    assert.equal(lines.at(-1), '95 more session events not logged (at most 5 lines per second)');
    now = 1000;
    b.line('info', 'later');
    assert.equal(lines.at(-1), 'later');
  });
});

describe('deriveKeyAsync', () => {
  it('equals the synchronous RFC 4656 §3.1 derivation', async () => {
    const salt = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    for (const secret of ['secret', Buffer.from([1, 2, 3])]) {
      assert.deepEqual(await deriveKeyAsync(secret, salt, 2048), deriveKey(secret, salt, 2048));
    }
  });
});

describe('StreamReader whole-message bound', () => {
  function fakeSocket(): Socket & EventEmitter {
    const e = new EventEmitter() as Socket & EventEmitter;
    (e as unknown as { destroy: () => void }).destroy = () => undefined;
    return e;
  }

  it('a message read in two parts completes within completeMs of its first octet (since)', async () => {
    const sock = fakeSocket();
    const r = new StreamReader(sock, 'peer');
    const first = r.read(4, 0, 'head', { completeMs: 300 });
    sock.emit('data', Buffer.from([1, 2, 3]));
    await new Promise((res) => setTimeout(res, 200));
    sock.emit('data', Buffer.from([4]));
    await first;
    const t0 = performance.now();
    const rest = r.read(4, 0, 'rest', { completeMs: 300, since: r.lastMessageStart });
    const e = await rest.then(() => undefined, (x: unknown) => x);
    assert.ok(e instanceof TwampSessionError && e.reason === 'timeout', String(e));
    const waited = performance.now() - t0;
    assert.ok(waited < 250, `the rest had only what was left of 300 ms (waited ${waited.toFixed(0)} ms)`);
  });

  it('armIdle gives an unbounded pending read an idle bound', async () => {
    const sock = fakeSocket();
    const r = new StreamReader(sock, 'peer');
    const p = r.read(4, 0, 'command');
    assert.equal(r.waitingUnbounded, true);
    r.armIdle(50);
    const e = await p.then(() => undefined, (x: unknown) => x);
    assert.ok(e instanceof TwampSessionError && e.reason === 'timeout');
  });
});
