// perfSONAR twping (owamp 5.2.3) against our reflector and against twampd in
// the same run, on loopback: with T2 from the kernel's receive timestamp and
// T3 stamped right before sendmsg, twping's round trip through our reflector
// (which subtracts T3 − T2) is the wire and the kernel, not our event loop.
// Also: no negative intervals (T1 ≤ T2 ≤ T3 ≤ T4 on one host clock), Sender
// TTL = the received TTL (twping sends with 255 and loopback does not
// decrement), replies received with TTL 255, authenticated and encrypted
// sessions, and a link-local IPv6 session (twping to fe80::…%if) in a network
// namespace the test creates (root only).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { TwampReflector } from '../../src/reflector.js';
import { needNative } from '../helpers/native.js';
import {
  requirePeersOrSkip, startTwampd, runTwping, hostPort, parseTwpingOutput, repoRoot, TEST_USER, TEST_PASSPHRASE,
  type TwpingRecord, type TwpingResult, type Peers,
} from '../helpers/peers.js';
import { parseReflectorConfig } from '../../src/config/index.js';

const ms = (a: bigint, b: bigint): number => (Number(a - b) / 2 ** 32) * 1000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function explain(r: TwpingResult): string {
  return `twping exit ${r.code}\n--- stdout (head)\n${r.stdout.slice(0, 2000)}\n--- stderr\n${r.stderr.slice(0, 2000)}`;
}

interface Figures { n: number; rttMedianUs: number; rttMinUs: number; reflectMedianUs: number; reflectMaxUs: number }

function figures(recs: TwpingRecord[]): Figures {
  const got = recs.filter((r) => !r.lost);
  const rtt = got.map((r) => r.roundTripMs! * 1000);
  const refl = got.map((r) => ms(r.reflectorSendTime, r.reflectorRecvTime) * 1000);
  return {
    n: got.length, rttMedianUs: median(rtt), rttMinUs: Math.min(...rtt),
    reflectMedianUs: median(refl), reflectMaxUs: Math.max(...refl),
  };
}

const fmt = (f: Figures): string =>
  `RTT median ${f.rttMedianUs.toFixed(1)} µs, min ${f.rttMinUs.toFixed(1)} µs; T3−T2 median ${f.reflectMedianUs.toFixed(1)} µs, ` +
  `max ${f.reflectMaxUs.toFixed(1)} µs (${f.n} records)`;

/** Every record: not lost, T1 ≤ T2 ≤ T3 ≤ T4 (one host clock), Sender TTL and reply TTL 255. */
function checkRecords(recs: TwpingRecord[], what: string): void {
  assert.ok(recs.length > 0, `${what}: no records`);
  for (const r of recs) {
    assert.equal(r.lost, false, `${what}: seq ${r.senderSeq} lost`);
    assert.ok(r.reflectorRecvTime >= r.sendTime, `${what}: seq ${r.senderSeq}: T2 − T1 = ${ms(r.reflectorRecvTime, r.sendTime)} ms < 0`);
    assert.ok(r.reflectorSendTime >= r.reflectorRecvTime, `${what}: seq ${r.senderSeq}: T3 − T2 < 0`);
    assert.ok(r.recvTime >= r.reflectorSendTime, `${what}: seq ${r.senderSeq}: T4 − T3 = ${ms(r.recvTime, r.reflectorSendTime)} ms < 0`);
    assert.equal(r.senderTtl, 255, `${what}: seq ${r.senderSeq}: Sender TTL ${r.senderTtl} (twping sends with 255 on loopback)`);
    assert.equal(r.reflectedTtl, 255, `${what}: seq ${r.senderSeq}: reply TTL ${r.reflectedTtl}`);
  }
}

describe('twping wire truth: our reflector vs twampd (loopback)', { timeout: 300_000 }, () => {
  let dir: string;
  let pfs: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'otel-twamp-wire-'));
    pfs = path.join(dir, 'twamp.pfs');
    await writeFile(pfs, `${TEST_USER} ${Buffer.from(TEST_PASSPHRASE).toString('hex')}\n`, { mode: 0o600 });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('open mode, 100 pps: no negative intervals, Sender TTL 255, RTT median ≤ 1.5 × twampd\'s', async (t) => {
    const p = requirePeersOrSkip(t);
    if (!p || !needNative(t)) return;
    const ours = new TwampReflector(parseReflectorConfig({ id: 'wire', listen: '127.0.0.1', port: 0 }));
    const { port } = await ours.start();
    const d = await startTwampd(p, { authmode: 'O' });
    try {
      assert.equal(ours.timestampSource, 'kernel');
      const args = ['-c', '150', '-i', '0.01f', '-R'];
      const oursRecs: TwpingRecord[] = [];
      const theirs: TwpingRecord[] = [];
      // Interleaved, twice each: both see the same machine load.
      for (let round = 0; round < 2; round++) {
        const a = await runTwping(p, hostPort('127.0.0.1', port), args);
        assert.equal(a.code, 0, explain(a));
        oursRecs.push(...(a.raw ?? []));
        const b = await runTwping(p, d.target, args);
        assert.equal(b.code, 0, explain(b));
        theirs.push(...(b.raw ?? []));
      }
      checkRecords(oursRecs, 'ours');
      const fo = figures(oursRecs);
      const ft = figures(theirs);
      console.log(`twping → ours:   ${fmt(fo)}\ntwping → twampd: ${fmt(ft)}`);
      assert.ok(fo.reflectMedianUs < 2000, `our T3 − T2 median ${fo.reflectMedianUs} µs`);
      assert.ok(fo.rttMedianUs <= ft.rttMedianUs * 1.5,
        `RTT median through ours ${fo.rttMedianUs.toFixed(1)} µs > 1.5 × twampd's ${ft.rttMedianUs.toFixed(1)} µs`);
    } finally {
      await d.stop();
      await ours.stop();
    }
  });

  it('open mode, 2 pps (an idle reflector): no negative intervals; figures logged', async (t) => {
    const p = requirePeersOrSkip(t);
    if (!p || !needNative(t)) return;
    const ours = new TwampReflector(parseReflectorConfig({ id: 'wire-slow', listen: '127.0.0.1', port: 0 }));
    const { port } = await ours.start();
    const d = await startTwampd(p, { authmode: 'O' });
    try {
      const args = ['-c', '6', '-i', '0.5f', '-R'];
      const [a, b] = await Promise.all([runTwping(p, hostPort('127.0.0.1', port), args), runTwping(p, d.target, args)]);
      assert.equal(a.code, 0, explain(a));
      assert.equal(b.code, 0, explain(b));
      checkRecords(a.raw ?? [], 'ours (slow)');
      console.log(`2 pps: twping → ours:   ${fmt(figures(a.raw ?? []))}\n2 pps: twping → twampd: ${fmt(figures(b.raw ?? []))}`);
    } finally {
      await d.stop();
      await ours.stop();
    }
  });

  it('authenticated and encrypted sessions: T3 ≥ T2, Sender TTL 255, no negative intervals', async (t) => {
    const p = requirePeersOrSkip(t);
    if (!p || !needNative(t)) return;
    const ours = new TwampReflector(parseReflectorConfig({ id: 'wire-sec', listen: '127.0.0.1', port: 0, modes: ['authenticated', 'encrypted'], key_file: pfs }));
    const { port } = await ours.start();
    try {
      for (const letter of ['A', 'E']) {
        const r = await runTwping(p, hostPort('127.0.0.1', port), ['-A', letter, '-u', TEST_USER, '-k', pfs, '-c', '40', '-i', '0.01f', '-R']);
        assert.equal(r.code, 0, explain(r));
        assert.equal(r.raw?.length, 40, explain(r));
        checkRecords(r.raw!, `-A ${letter}`);
        console.log(`-A ${letter}: twping → ours: ${fmt(figures(r.raw!))}`);
      }
    } finally {
      await ours.stop();
    }
  });
});

/** Runs `cmd` inside netns `ns`; throws with its output on failure. */
function inNs(ns: string, cmd: string[]): void {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`ip netns exec ${ns} ${cmd.join(' ')}: ${r.stderr || r.error?.message}`);
}

function ip(args: string[]): { ok: boolean; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, err: `${r.stderr ?? ''}${r.error?.message ?? ''}` };
}

/** twping inside the namespace, with the helpers' parsing. */
async function twpingInNs(p: Peers, ns: string, args: string[], target: string): Promise<TwpingResult> {
  const cp = spawn('ip', ['netns', 'exec', ns, p.twping, ...args, target], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  cp.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
  cp.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  const timer = setTimeout(() => cp.kill('SIGKILL'), 30_000);
  const code = await new Promise<number>((res) => cp.once('close', (c) => res(c ?? -1)));
  clearTimeout(timer);
  return { code, stdout, stderr, ...parseTwpingOutput(stdout, stderr) };
}

describe('link-local IPv6 session (fe80::…%if) in a network namespace', { timeout: 120_000 }, () => {
  it('twping to [fe80::1%vb] is accepted and reflected (the session socket binds with the scope)', async (t) => {
    const p = requirePeersOrSkip(t);
    if (!p) return;
    if (process.getuid?.() !== 0) {
      t.skip('needs root to create a network namespace (ip netns add) and a veth pair');
      return;
    }
    const ns = `otwamp-ll-${process.pid}`;
    const made = ip(['netns', 'add', ns]);
    if (!made.ok) {
      t.skip(`cannot create network namespace ${ns}: ${made.err.trim()}`);
      return;
    }
    let child: ReturnType<typeof spawn> | undefined;
    try {
      const veth = ip(['-n', ns, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb']);
      if (!veth.ok) {
        t.skip(`cannot create a veth pair in ${ns}: ${veth.err.trim()}`);
        return;
      }
      for (const c of [['link', 'set', 'lo', 'up'], ['link', 'set', 'va', 'up'], ['link', 'set', 'vb', 'up'],
        ['addr', 'add', 'fe80::1/64', 'dev', 'va', 'nodad'], ['addr', 'add', 'fe80::2/64', 'dev', 'vb', 'nodad']]) {
        inNs(ns, ['ip', ...c]);
      }
      // Our reflector runs inside the namespace (a child process), listening on all addresses.
      const reflector = pathToFileURL(path.join(repoRoot(), 'dist', 'src', 'reflector.js')).href;
      const config = pathToFileURL(path.join(repoRoot(), 'dist', 'src', 'config', 'index.js')).href;
      const script = `const { TwampReflector } = await import(${JSON.stringify(reflector)});
const { parseReflectorConfig } = await import(${JSON.stringify(config)});
const r = new TwampReflector(parseReflectorConfig({ id: 'll', listen: '::', port: 0 }), { logger: { debug() {}, info() {},
  warn: (m) => console.log('WARN ' + m), error: (m) => console.log('ERROR ' + m) } });
const { port } = await r.start();
console.log('PORT ' + port);
process.stdin.resume();
process.stdin.on('end', async () => { await r.stop(); process.exit(0); });`;
      child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      child.stdout!.on('data', (b: Buffer) => (out += b.toString('utf8')));
      child.stderr!.on('data', (b: Buffer) => (out += b.toString('utf8')));
      const deadline = Date.now() + 15_000;
      while (!/PORT \d+/.test(out)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`reflector in ${ns} did not start:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const port = Number(/PORT (\d+)/.exec(out)![1]);
      const r = await twpingInNs(p, ns, ['-c', '20', '-i', '0.01f', '-R'], `[fe80::1%vb]:${port}`);
      assert.equal(r.code, 0, `${explain(r)}\n--- reflector\n${out}`);
      assert.equal(r.raw?.length, 20, `${explain(r)}\n--- reflector\n${out}`);
      assert.ok(r.raw!.every((x) => !x.lost), explain(r));
      assert.doesNotMatch(out, /refused/, out);
      console.log(`link-local: twping → ours: ${fmt(figures(r.raw!))}`);
    } finally {
      if (child) {
        child.stdin!.end();
        const c = child;
        const t2 = setTimeout(() => c.kill('SIGKILL'), 3000);
        if (c.exitCode === null) await new Promise((r) => c.once('close', r));
        clearTimeout(t2);
      }
      ip(['netns', 'del', ns]);
    }
  });
});
