// TWAMP-Light / STAMP reflector against hostile and spoofed traffic, on
// loopback: a datagram from source port 0 (sent through a raw socket, root
// only) does not kill `reflect`; the global packet budget holds across many
// source addresses and the octet budget per source; light_symmetric_only
// answers no short request; authenticated STAMP drops replays and counts HMAC
// failures as refused{reason="hmac"}; the new keys and flags are checked.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TwampReflector } from '../../src/reflector.js';
import { parseReflectorConfig } from '../../src/config/load.js';
import {
  DEFAULT_LIGHT_MAX_PPS, DEFAULT_LIGHT_MAX_OCTETS, DEFAULT_LIGHT_MAX_OCTETS_PER_SOURCE,
} from '../../src/session/lightReflector.js';
import { writeStampSenderPacket, writeStampAuthSenderPacket, STAMP_AUTH_SIZE } from '../../src/protocol/index.js';
import { repoRoot, freePort } from '../helpers/peers.js';
import { testMeter } from '../helpers/metrics.js';
import { sleep, udp, exchange } from '../helpers/udp.js';

const MAIN = path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

function stamp(seq: number, size = 44): Buffer {
  const b = Buffer.alloc(size);
  writeStampSenderPacket(b, { seq, timestamp: 3_900_000_000n << 32n, errorEstimate: 1, ssid: 5 });
  return b;
}

/** Sends `payload` to 127.0.0.1:`port` from source port `srcPort` (0 included) through a raw IPv4 socket. */
const RAW_SEND = `
import socket, struct, sys
port, src, payload = int(sys.argv[1]), int(sys.argv[2]), bytes.fromhex(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
s.sendto(struct.pack('!HHHH', src, port, 8 + len(payload), 0) + payload, ('127.0.0.1', 0))
`;

function rawSendProblem(): string | undefined {
  if (process.getuid?.() !== 0) return 'raw sockets need root';
  const r = spawnSync('python3', ['-c', 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)'], { timeout: 10_000 });
  return r.status === 0 ? undefined : 'python3 with raw sockets unavailable';
}

async function reflector(extra: Record<string, unknown>) {
  const meter = testMeter();
  const r = new TwampReflector(parseReflectorConfig({ id: 'lh', listen: '127.0.0.1', port: 0, light_port: 0, control: false, ...extra }), { meterProvider: meter.provider });
  await r.start();
  return { r, meter, port: r.lightAddress!.port };
}

async function bindTo(address: string): Promise<UdpSocket> {
  const s = createSocket('udp4');
  await new Promise<void>((res, rej) => { s.once('error', rej); s.bind(0, address, () => res()); });
  return s;
}

describe('TWAMP Light hardening', { timeout: 120_000 }, () => {
  const rawProblem = rawSendProblem();

  it('a datagram from source port 0 (or 53) is dropped and counted; `reflect` stays up and keeps answering', { skip: rawProblem }, async () => {
    const light = await freePort('127.0.0.1', 'udp');
    const refl = spawn(process.execPath, [MAIN, 'reflect', '--light-only', '--light-port', String(light), '--listen', '127.0.0.1'],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    refl.stderr.on('data', (d: Buffer) => { log += d.toString(); });
    const exited = new Promise<number | null>((r) => refl.once('exit', (c) => r(c)));
    const s = await udp();
    try {
      const deadline = Date.now() + 10_000;
      while (!/TWAMP-Light\/STAMP reflector/.test(log) && Date.now() < deadline) await sleep(50);
      assert.match(log, /TWAMP-Light\/STAMP reflector/);
      for (const src of [0, 53]) {
        const r = spawnSync('python3', ['-c', RAW_SEND, String(light), String(src), stamp(1).toString('hex')], { encoding: 'utf8', timeout: 10_000 });
        assert.equal(r.status, 0, r.stderr);
      }
      await sleep(300);
      assert.equal(refl.exitCode, null, `reflect died: ${log}`);
      const got = await exchange(s, light, [stamp(2)], 500);
      assert.equal(got.length, 1, 'still answering');
      assert.equal(got[0]!.readUInt32BE(24), 2);
    } finally {
      s.close();
      refl.kill('SIGTERM');
    }
    assert.equal(await exited, 0, log);
    assert.match(log, /1 packet\(s\) reflected, 2 dropped/);
  });

  it('a sender on a port below 1024 is answered only when allow_reply_ports lists it', { skip: process.getuid?.() === 0 ? false : 'binding a port below 1024 needs root' }, async () => {
    const low = await (async () => {
      for (const p of [999, 998, 997, 996]) {
        const s = createSocket('udp4');
        const ok = await new Promise<boolean>((res) => { s.once('error', () => res(false)); s.bind(p, '127.0.0.1', () => res(true)); });
        if (ok) return s;
        s.close();
      }
      throw new Error('no free UDP port among 996–999 on 127.0.0.1');
    })();
    const lowPort = low.address().port;
    try {
      for (const allowed of [false, true]) {
        const { r, meter, port } = await reflector(allowed ? { allow_reply_ports: [lowPort] } : {});
        try {
          const got = await exchange(low, port, [stamp(1), stamp(2)], 300);
          assert.equal(got.length, allowed ? 2 : 0);
          const snap = await meter.collect();
          assert.equal(snap.value('twamp_reflector_dropped_pkt') ?? 0, allowed ? 0 : 2);
        } finally {
          await r.stop();
          await meter.shutdown();
        }
      }
    } finally {
      low.close();
    }
  });

  it('light_max_pps caps replies across many source addresses; light_max_octets_per_source per address', async () => {
    const { r, meter, port } = await reflector({ light_max_pps: 50, light_max_octets_per_source: 1000 });
    const socks: UdpSocket[] = [];
    try {
      for (let i = 2; i < 42; i++) socks.push(await bindTo(`127.0.0.${i}`));
      let replies = 0;
      for (const s of socks) s.on('message', () => { replies++; });
      const t0 = performance.now();
      for (let k = 0; k < 10; k++) {
        for (const s of socks) s.send(stamp(k), port, '127.0.0.1');
        await sleep(5); // let the reflector drain its socket: the test is about its budget, not the kernel's buffers
      }
      const elapsed = (performance.now() - t0) / 1000;
      await sleep(500);
      // 400 requests from 40 addresses, 10 each (each address well under its own budgets):
      // one second of burst (50) plus what refilled while sending, not 400.
      assert.ok(replies >= 40 && replies <= 50 + Math.ceil(50 * (elapsed + 0.6)), `${replies} replies in ${elapsed.toFixed(3)} s`);
      const snap = await meter.collect();
      const limited = snap.value('twamp_reflector_light_rate_limited_pkt')!;
      assert.equal(snap.value('twamp_reflector_reflected_pkt'), replies);
      assert.ok(limited >= 250 && limited <= 400 - replies, `${limited} rate limited`);
      assert.equal(snap.value('twamp_reflector_dropped_pkt'), limited);
    } finally {
      for (const s of socks) s.close();
      await r.stop();
      await meter.shutdown();
    }
    // One address: 1000 octets a second = 13 replies of 72 octets (44 + IPv4/UDP headers).
    const { r: r2, meter: m2, port: p2 } = await reflector({ light_max_octets_per_source: 1000 });
    const s = await udp();
    try {
      const got = await exchange(s, p2, Array.from({ length: 40 }, (_, i) => stamp(i)), 500);
      assert.ok(got.length >= 13 && got.length <= 14, `${got.length} replies`);
    } finally {
      s.close();
      await r2.stop();
      await m2.shutdown();
    }
  });

  it('light_symmetric_only: a 14-octet request gets no reply (it does by default), 44-octet ones do', async () => {
    for (const symmetric of [false, true]) {
      const { r, meter, port } = await reflector(symmetric ? { light_symmetric_only: true } : {});
      const s = await udp();
      try {
        const got = await exchange(s, port, [stamp(1).subarray(0, 14), stamp(2, 44), stamp(3, 100)], 400);
        assert.deepEqual(got.map((m) => m.length).sort((a, b) => a - b), symmetric ? [44, 100] : [44, 44, 100]);
        const snap = await meter.collect();
        assert.equal(snap.value('twamp_reflector_dropped_pkt') ?? 0, symmetric ? 1 : 0);
      } finally {
        s.close();
        await r.stop();
        await meter.shutdown();
      }
    }
  });

  describe('authenticated STAMP', () => {
    let dir: string;
    let keyFile: string;
    const SECRET = 'hardening-secret';
    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'otel-twamp-light-hardening-'));
      keyFile = path.join(dir, 'stamp.pfs');
      await writeFile(keyFile, `stamp ${Buffer.from(SECRET).toString('hex')}\n`, { mode: 0o600 });
    });
    after(async () => { await rm(dir, { recursive: true, force: true }); });

    it('a replayed packet is not answered again; HMAC failures count in refused{reason="hmac"}', async () => {
      const { r, meter, port } = await reflector({ key_file: keyFile, light_key_id: 'stamp' });
      const s = await udp();
      try {
        const pkt = (seq: number, key: string) => {
          const b = Buffer.alloc(STAMP_AUTH_SIZE);
          writeStampAuthSenderPacket(b, { seq, timestamp: (3_900_000_000n << 32n) + (BigInt(seq) << 22n), errorEstimate: 1, ssid: 77 }, Buffer.from(key));
          return b;
        };
        const p1 = pkt(1, SECRET);
        const got = await exchange(s, port, [p1, Buffer.from(p1), Buffer.from(p1), pkt(2, SECRET), pkt(3, 'wrong'), pkt(4, 'wrong')], 400);
        assert.deepEqual(got.map((m) => m.readUInt32BE(48)).sort(), [1, 2]);
        const snap = await meter.collect();
        assert.equal(snap.value('twamp_reflector_reflected_pkt'), 2);
        assert.equal(snap.value('twamp_reflector_dropped_pkt'), 4);
        const hmac = snap.points('twamp_reflector_refused').filter((p) => Object.values(p.attributes).includes('hmac'));
        assert.equal(hmac.length, 1);
        assert.equal(hmac[0]!.value, 2);
      } finally {
        s.close();
        await r.stop();
        await meter.shutdown();
      }
    });
  });

  it('config keys: defaults as the reflector\'s, bounds, only with light_port; reflect flags named in errors', () => {
    const c = parseReflectorConfig({ id: 'r', light_port: 8620 });
    assert.equal(c.lightMaxPps, DEFAULT_LIGHT_MAX_PPS);
    assert.equal(c.lightMaxOctetsPerSource, DEFAULT_LIGHT_MAX_OCTETS_PER_SOURCE);
    assert.equal(c.lightMaxOctets, DEFAULT_LIGHT_MAX_OCTETS);
    assert.equal(c.lightSymmetricOnly, false);
    const d = parseReflectorConfig({ id: 'r', light_port: 8620, light_max_pps: 5, light_max_octets_per_source: 700, light_max_octets: 9000, light_symmetric_only: true });
    assert.deepEqual([d.lightMaxPps, d.lightMaxOctetsPerSource, d.lightMaxOctets, d.lightSymmetricOnly], [5, 700, 9000, true]);
    for (const k of ['light_max_pps', 'light_max_octets_per_source', 'light_max_octets']) {
      assert.throws(() => parseReflectorConfig({ id: 'r', light_port: 8620, [k]: 0 }), new RegExp(`${k}.*integer between 1`));
      assert.throws(() => parseReflectorConfig({ id: 'r', [k]: 10 }), new RegExp(`${k}.*only used with light_port`));
    }
    assert.throws(() => parseReflectorConfig({ id: 'r', light_port: 8620, light_symmetric_only: 'yes' }), /light_symmetric_only.*true or false/);
    assert.throws(() => parseReflectorConfig({ id: 'r', light_symmetric_only: true }), /light_symmetric_only.*only used with light_port/);
    for (const [args, re] of [
      [['--light-port', '8620', '--light-max-pps', 'abc'], /--light-max-pps: expected an integer/],
      [['--light-port', '8620', '--light-max-octets-per-source', '0'], /--light-max-octets-per-source/],
      [['--light-port', '8620', '--light-max-octets', '-1'], /--light-max-octets/],
      [['--light-symmetric-only'], /--light-symmetric-only.*only used with (light_port|--light-port)/],
    ] as const) {
      const r = spawnSync(process.execPath, [MAIN, 'reflect', ...args], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
  });
});
