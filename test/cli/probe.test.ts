// `otel-twamp probe` as a user runs it: a child process against our
// reflector (in-process), perfSONAR twampd, a fake server whose test port
// nobody reflects, and nothing at all; text and JSON output, exit codes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { repoRoot, freePort, requirePeersOrSkip, startTwampd } from '../helpers/peers.js';
import { startFakeServer } from '../helpers/fakeServer.js';
import { TwampReflector } from '../../src/reflector.js';
import { parseTarget } from '../../src/cli/probe.js';
import { buildProbeReport, renderProbeText, PROBE_SCHEMA_VERSION, type ProbeReport } from '../../src/cli/format.js';
import { parseSenderConfig } from '../../src/config/load.js';
import { sessionResult } from '../helpers/session.js';
import type { SenderSessionResult } from '../../src/session/senderResult.js';
import { needNative } from '../helpers/native.js';
import { parseReflectorConfig } from '../../src/config/index.js';

/** The native datapath is built here (CI must have it); otherwise the test is skipped, loudly. */
const MAIN = join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

interface Run { code: number | null; stdout: string; stderr: string }

/** Asynchronously, so an in-process reflector keeps serving while the probe runs. */
export function runCli(args: string[], timeoutMs = 30_000, env?: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const cp = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env: { ...process.env, ...env } } : {}) });
    let stdout = '';
    let stderr = '';
    cp.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    cp.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => { cp.kill('SIGKILL'); reject(new Error(`otel-twamp ${args.join(' ')} timed out\n${stderr}`)); }, timeoutMs);
    cp.on('error', reject);
    cp.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

const TOP_KEYS = [
  'error', 'exitCode', 'inbound', 'maxLoss', 'mos', 'ok', 'outbound', 'request', 'roundTrip', 'rttHistogram',
  'runDurationMs', 'schemaVersion', 'session', 'startedAt', 'target', 'timestamps', 'tool', 'traffic',
];
const DIRECTION_KEYS = ['delayMs', 'delayNs', 'jitterMs', 'jitterNs', 'lossPackets', 'lossPercent', 'samples'];
const ONE_WAY_KEYS = [...DIRECTION_KEYS, 'dscp', 'ecn', 'hops'].sort();
const TIMESTAMPS_KEYS = ['datapath', 'departureErrorNs', 'nativeUnavailable', 'pacing', 'source', 't1', 't4', 'txTimestampedPackets'];
const DELAY_KEYS = ['avg', 'max', 'median', 'min', 'p90', 'p99'];
const SESSION_KEYS = [
  'clocksSynchronized', 'dscpMarked', 'dscpNote', 'invalidReplies', 'ipVersion', 'paddingLengthOctets',
  'reflectorAddress', 'reflectorTestPort', 'securityMode', 'senderAddress', 'senderTestPort', 'sid',
];
const TRAFFIC_KEYS = [
  'duplicates', 'receivedBitsPerSecond', 'receivedOctets', 'receivedPackets', 'receivedPacketsPerSecond', 'reordered',
  'residenceNs', 'sendDurationNs', 'sendErrors', 'sentBitsPerSecond', 'sentOctets', 'sentPackets', 'sentPacketsPerSecond',
  't1Mismatches', 'unexpected',
];
const REQUEST_KEYS = [
  'bandwidthBitsPerSecond', 'controlTimeoutMs', 'dscp', 'dscpName', 'model', 'packets', 'reflectorPortRequested',
  'replyTimeoutMs', 'sizeOctets',
];

function assertSchema(r: ProbeReport): void {
  assert.equal(r.schemaVersion, 1);
  assert.deepEqual(Object.keys(r).sort(), TOP_KEYS);
  assert.deepEqual(Object.keys(r.request).sort(), REQUEST_KEYS);
  assert.deepEqual(Object.keys(r.target).sort(), ['controlPort', 'display', 'host']);
  assert.deepEqual(Object.keys(r.tool).sort(), ['name', 'version']);
  if (r.session) assert.deepEqual(Object.keys(r.session).sort(), SESSION_KEYS);
  if (r.traffic) assert.deepEqual(Object.keys(r.traffic).sort(), TRAFFIC_KEYS);
  for (const d of [r.roundTrip, r.outbound, r.inbound]) {
    if (!d) continue;
    assert.deepEqual(Object.keys(d).sort(), d === r.roundTrip ? DIRECTION_KEYS : ONE_WAY_KEYS);
    assert.deepEqual(Object.keys(d.delayNs).sort(), DELAY_KEYS);
    assert.deepEqual(Object.keys(d.delayMs).sort(), DELAY_KEYS);
  }
  for (const d of [r.outbound, r.inbound]) {
    if (!d) continue;
    assert.deepEqual(Object.keys(d.dscp).sort(), ['received', 'remarkedPackets', 'replyDscpRefused', 'reportedBy', 'sent']);
    if (d.hops) assert.deepEqual(Object.keys(d.hops).sort(), ['max', 'min']);
  }
  if (r.timestamps) {
    assert.deepEqual(Object.keys(r.timestamps).sort(), TIMESTAMPS_KEYS);
    if (r.timestamps.departureErrorNs) assert.deepEqual(Object.keys(r.timestamps.departureErrorNs).sort(), ['max', 'p50', 'p99', 'samples']);
  }
  if (r.mos) assert.deepEqual(Object.keys(r.mos).sort(), ['delayBasis', 'inbound', 'outbound']);
  if (r.maxLoss) assert.deepEqual(Object.keys(r.maxLoss).sort(), ['exceeded', 'thresholdPercent']);
  if (r.rttHistogram) assert.deepEqual(Object.keys(r.rttHistogram).sort(), ['bucketWidthNs', 'buckets']);
  // No NaN or undefined anywhere: JSON.stringify would have turned them into null or dropped them.
  assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
}

describe('otel-twamp probe against our reflector', { timeout: 120_000 }, () => {
  let reflector: TwampReflector;
  let target: string;

  before(async () => {
    reflector = new TwampReflector(parseReflectorConfig({ id: 'probe-test', listen: '127.0.0.1', port: 0 }));
    const a = await reflector.start();
    target = `127.0.0.1:${a.port}`;
  });
  after(async () => { await reflector.stop(); });

  it('text: addresses, ports, SID, DSCP, clock state, per-direction delays, loss, rates, MOS', async () => {
    const r = await runCli(['probe', target, '--count', '20', '--reply-timeout', '1', '--dscp', 'ef']);
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout;
    assert.match(out, new RegExp(`^TWAMP probe to ${target.replace('.', '\\.')}: g711, 20 packets, DSCP ef`));
    assert.match(out, /reflector +127\.0\.0\.1:\d+ \(test port\), control port \d+, IPv4/);
    assert.match(out, /sender +127\.0\.0\.1:\d+ \(test port\)/);
    assert.match(out, /SID +[0-9a-f]{32}, padding \d+ octets(, open mode)?/);
    assert.match(out, /DSCP +ef \(46\), (marked on the test packets|.*NOT marked)/);
    assert.match(out, /clocks +(synchronized|NOT synchronized: one-way delays include the clock offset)/);
    assert.match(out, /delay, ms +min/);
    assert.match(out, /round trip +\d+\.\d{3} /);
    assert.match(out, /outbound( \*)? +-?\d+\.\d{3} /);
    assert.match(out, /inbound( \*)? +-?\d+\.\d{3} /);
    assert.match(out, /loss +round trip 0\/20 \(0\.0 %\), outbound 0 \(0\.0 %\), inbound 0 \(0\.0 %\)/);
    assert.match(out, /duplicates 0, reordered 0/);
    assert.match(out, /sent +20 packets, 4000 octets in 0\.3\d\d s \(\d+\.\d pps, \d+\.\d kbit\/s\)/);
    assert.match(out, /received +20 packets/);
    assert.match(out, /MOS \(g711\) +outbound 4\.\d\d \(heard at the reflector\), inbound 4\.\d\d \(heard here\)/);
    assert.equal(r.stderr, '', 'no progress line when stderr is not a terminal');
    // Percentiles and the histogram appear only with per-packet samples from the session layer.
    const hasPct = /median +p90 +p99/.test(out);
    assert.equal(hasPct, /round-trip delay histogram, ms \(20 samples\)/.test(out));
  });

  it('--json: one document with the schema-1 keys, ns and ms, and exit code 0', async () => {
    const r = await runCli(['probe', target, '--count', '10', '--reply-timeout', '1', '--json', '--max-loss', '50']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as ProbeReport;
    assertSchema(doc);
    assert.equal(doc.schemaVersion, PROBE_SCHEMA_VERSION);
    assert.equal(doc.ok, true);
    assert.equal(doc.error, null);
    assert.equal(doc.exitCode, 0);
    assert.deepEqual(doc.maxLoss, { thresholdPercent: 50, exceeded: false });
    assert.equal(doc.target.display, target);
    assert.equal(doc.request.model, 'g711');
    assert.equal(doc.request.packets, 10);
    assert.equal(doc.session!.ipVersion, 4);
    assert.match(doc.session!.sid, /^[0-9a-f]{32}$/);
    assert.equal(doc.traffic!.sentPackets, 10);
    assert.equal(doc.traffic!.receivedPackets, 10);
    assert.equal(doc.roundTrip!.lossPackets, 0);
    assert.equal(doc.roundTrip!.samples, 10);
    const rt = doc.roundTrip!;
    assert.ok(Number.isInteger(rt.delayNs.min) && rt.delayNs.min! > 0);
    assert.ok(rt.delayNs.min! <= rt.delayNs.avg! && rt.delayNs.avg! <= rt.delayNs.max!);
    assert.equal(rt.delayMs.min, rt.delayNs.min! / 1e6);
    assert.equal(doc.mos!.delayBasis, doc.session!.clocksSynchronized ? 'one-way' : 'half-round-trip');
    assert.ok(doc.mos!.inbound! > 4 && doc.mos!.outbound! > 4);
    if (rt.delayNs.median !== null) {
      assert.ok(rt.delayNs.min! <= rt.delayNs.median && rt.delayNs.median <= rt.delayNs.p90!);
      assert.ok(rt.delayNs.p90! <= rt.delayNs.p99! && rt.delayNs.p99! <= rt.delayNs.max!);
      assert.equal(doc.rttHistogram!.buckets.reduce((n, b) => n + b.count, 0), 10);
    } else {
      assert.equal(doc.rttHistogram, null);
    }
  });

  it('native datapath: timestamps, path and DSCP lines (kernel, hops 0 both ways on loopback, DSCP as sent, outbound via RFC 7750), JSON alike', async (t) => {
    if (!needNative(t)) return;
    const r = await runCli(['probe', target, '--count', '20', '--reply-timeout', '1', '--dscp', 'af21']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ {2}timestamps +kernel \(T1 and T4 kernel, native datapath\); departure error p50 \d+\.\d+ (µs|ms), p99 \d+\.\d+ (µs|ms)$/m);
    assert.match(r.stdout, /^ {2}path +hops out 0, in 0$/m);
    assert.match(r.stdout, /^ {2}DSCP out +sent af21 \(18\), received af21 \(18\) \(RFC 7750\), 0 remarked; ECN Not-ECT \(0\)$/m);
    assert.match(r.stdout, /^ {2}DSCP in +sent af21 \(18\), received af21 \(18\), 0 remarked; ECN Not-ECT \(0\)$/m);

    const j = await runCli(['probe', target, '--count', '10', '--reply-timeout', '1', '--dscp', 'af21', '--json']);
    assert.equal(j.code, 0, j.stderr);
    const doc = JSON.parse(j.stdout) as ProbeReport;
    assertSchema(doc);
    assert.equal(doc.schemaVersion, 1, 'fields were added, nothing renamed: still schema 1');
    assert.deepEqual(doc.outbound!.hops, { min: 0, max: 0 });
    assert.deepEqual(doc.inbound!.hops, { min: 0, max: 0 });
    // Outbound as received at our reflector, which reports it (RFC 7750 DSCP and ECN Monitoring).
    assert.deepEqual(doc.outbound!.dscp, { sent: 18, received: 18, remarkedPackets: 0, reportedBy: 'rfc7750', replyDscpRefused: null });
    assert.deepEqual(doc.inbound!.dscp, { sent: 18, received: 18, remarkedPackets: 0, reportedBy: null, replyDscpRefused: null });
    assert.equal(doc.inbound!.ecn, 0);
    assert.equal(doc.outbound!.ecn, 0);
    const ts = doc.timestamps!;
    assert.equal(ts.source, 'kernel');
    assert.equal(ts.datapath, 'native');
    assert.equal(ts.nativeUnavailable, null);
    assert.equal(ts.txTimestampedPackets, 10);
    assert.equal(ts.departureErrorNs!.samples, 10);
    assert.ok(ts.departureErrorNs!.p50 <= ts.departureErrorNs!.p99 && ts.departureErrorNs!.p99 <= ts.departureErrorNs!.max);
    assert.equal(doc.traffic!.t1Mismatches, 0);
    assert.equal(doc.traffic!.sendErrors, 0);
  });

  it('OTEL_TWAMP_NATIVE=0: userspace timestamps and why; inbound hops, DSCP and ECN unknown, not 0', async () => {
    const env = { OTEL_TWAMP_NATIVE: '0' };
    const r = await runCli(['probe', target, '--count', '10', '--reply-timeout', '1', '--dscp', 'af21'], 30_000, env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ {2}timestamps +userspace \(T1 and T4 userspace, JS datapath\): native datapath disabled by OTEL_TWAMP_NATIVE=0$/m);
    assert.match(r.stdout, /^ {2}path +hops out \S+, in unknown$/m);
    // The outbound DSCP as received comes from the reflector (RFC 7750), whatever our datapath.
    assert.match(r.stdout, /^ {2}DSCP out +sent \S+ \(\d+\), received \S+ \(\d+\) \(RFC 7750\), \d+ remarked; ECN \S+ \(\d\)$/m);
    assert.match(r.stdout, /^ {2}DSCP in +sent \S+ \(\d+\), received unknown$/m);

    const j = await runCli(['probe', target, '--count', '10', '--reply-timeout', '1', '--json'], 30_000, env);
    assert.equal(j.code, 0, j.stderr);
    const doc = JSON.parse(j.stdout) as ProbeReport;
    assertSchema(doc);
    assert.equal(doc.inbound!.hops, null);
    assert.deepEqual(doc.inbound!.dscp, { sent: 0, received: null, remarkedPackets: null, reportedBy: null, replyDscpRefused: null });
    assert.equal(doc.inbound!.ecn, null);
    assert.equal(doc.timestamps!.source, 'userspace');
    assert.equal(doc.timestamps!.datapath, 'js');
    assert.match(doc.timestamps!.nativeUnavailable!, /OTEL_TWAMP_NATIVE=0/);
    assert.equal(doc.timestamps!.departureErrorNs, null);
  });

  it('cbr with --bandwidth and --size, non-voice: no MOS', async () => {
    const r = await runCli(['probe', target, '--model', 'cbr', '--bandwidth', '200000', '--size', '250', '--count', '10',
      '--reply-timeout', '1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as ProbeReport;
    assertSchema(doc);
    assert.equal(doc.request.bandwidthBitsPerSecond, 200000);
    assert.equal(doc.request.sizeOctets, 250);
    assert.equal(doc.mos, null);
    assert.equal(doc.traffic!.sentOctets, 2500);
  });
});

describe('otel-twamp probe exit codes', { timeout: 60_000 }, () => {
  it('1: nothing listens — the message names the peer and the reason', async () => {
    const port = await freePort();
    const r = await runCli(['probe', `127.0.0.1:${port}`, '--count', '3', '--timeout', '2']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(`test session with 127\\.0\\.0\\.1:${port} failed \\(connect\\): reflector 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
  });

  it('1 with --json: the document says ok false, with the reason, and the same keys', async () => {
    const port = await freePort();
    const r = await runCli(['probe', `127.0.0.1:${port}`, '--count', '3', '--json', '--max-loss', '1']);
    assert.equal(r.code, 1);
    const doc = JSON.parse(r.stdout) as ProbeReport;
    assertSchema(doc);
    assert.equal(doc.ok, false);
    assert.equal(doc.exitCode, 1);
    assert.equal(doc.error!.reason, 'connect');
    assert.match(doc.error!.message, /ECONNREFUSED/);
    for (const k of ['session', 'traffic', 'roundTrip', 'outbound', 'inbound', 'mos', 'rttHistogram'] as const) {
      assert.equal(doc[k], null, k);
    }
  });

  it('2: usage errors name the flag', async () => {
    const cases: [string[], RegExp][] = [
      [['probe', '127.0.0.1', '--count', 'abc'], /otel-twamp probe: --count: expected an integer between 1 and 10000000, got "abc"/],
      [['probe', '127.0.0.1', '--frobnicate'], /unknown option --frobnicate/],
      [['probe', '127.0.0.1', '--model', 'g712'], /--model: expected one of "g711", "g729", "cbr", "imix", got "g712"/],
      [['probe', '127.0.0.1', '--model', 'cbr'], /--bandwidth: /],
      [['probe', '127.0.0.1', '--dscp', 'ef2'], /--dscp: expected a DSCP name/],
      [['probe', '127.0.0.1', '--reply-timeout', '0'], /--reply-timeout: /],
      [['probe', '127.0.0.1', '--timeout', 'soon'], /--timeout: /],
      [['probe', '127.0.0.1', '--reflector-port', '70000'], /--reflector-port: /],
      [['probe', '127.0.0.1', '--max-loss', '200'], /--max-loss: expected a percentage between 0 and 100/],
      [['probe', '127.0.0.1:http'], /PORT \(HOST:PORT\): expected an integer between 1 and 65535, got "http"/],
      [['probe', 'bad_host!'], /HOST: expected an IPv4\/IPv6 address or a host name/],
      [['probe'], /HOST is required/],
      [['probe', 'a', 'b'], /one HOST expected, got 2/],
    ];
    await Promise.all(cases.map(async ([args, re]) => {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
      assert.match(r.stderr, /Try 'otel-twamp probe --help'/);
    }));
  });

  it('3: loss above --max-loss (a test port nobody reflects)', async () => {
    // A control server that accepts the session on a UDP port where nothing answers.
    const silent = createSocket('udp4');
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
    const fake = await startFakeServer({ acceptSession: { accept: 0, port: silent.address().port } });
    try {
      const r = await runCli(['probe', `127.0.0.1:${fake.port}`, '--count', '5', '--reply-timeout', '0.3', '--max-loss', '5']);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stdout, /no reflections came back/);
      assert.match(r.stdout, /loss +round trip 5\/5 \(100\.0 %\)/);
      assert.match(r.stdout, /max loss +5\.0 %: EXCEEDED/);
      assert.match(r.stderr, /round-trip loss 100 % \(5 of 5\) exceeds --max-loss 5 %/);
      const j = await runCli(['probe', `127.0.0.1:${fake.port}`, '--count', '5', '--reply-timeout', '0.3', '--max-loss', '5', '--json']);
      assert.equal(j.code, 3);
      const doc = JSON.parse(j.stdout) as ProbeReport;
      assertSchema(doc);
      assert.deepEqual(doc.maxLoss, { thresholdPercent: 5, exceeded: true });
      assert.equal(doc.exitCode, 3);
      assert.equal(doc.roundTrip!.delayNs.min, null);
      // Without --max-loss the same run is a success (exit 0): loss is a measurement, not an error.
      const ok = await runCli(['probe', `127.0.0.1:${fake.port}`, '--count', '2', '--reply-timeout', '0.2']);
      assert.equal(ok.code, 0, ok.stderr);
    } finally {
      await fake.close();
      silent.close();
    }
  });

  it('--help prints the usage with every flag', async () => {
    const r = await runCli(['probe', '--help']);
    assert.equal(r.code, 0);
    for (const flag of ['--model', '--count', '--bandwidth', '--size', '--dscp', '--reflector-port', '--timeout',
      '--reply-timeout', '--max-loss', '--json', 'Exit codes']) {
      assert.ok(r.stdout.includes(flag), flag);
    }
    const top = await runCli(['--help']);
    assert.match(top.stdout, /otel-twamp probe HOST\[:PORT\]/);
    assert.match(top.stdout, /otel-twamp reflect /);
  });
});

describe('otel-twamp probe over IPv6', { timeout: 60_000 }, () => {
  it('[::1]:PORT', async (t) => {
    const reflector = new TwampReflector(parseReflectorConfig({ id: 'probe-v6', listen: '::1', port: 0 }));
    let port: number;
    try {
      port = (await reflector.start()).port;
    } catch (e) {
      t.skip(`no IPv6 loopback: ${(e as Error).message}`);
      return;
    }
    try {
      const r = await runCli(['probe', `[::1]:${port}`, '--count', '5', '--reply-timeout', '1', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout) as ProbeReport;
      assert.equal(doc.target.display, `[::1]:${port}`);
      assert.equal(doc.session!.ipVersion, 6);
      assert.equal(doc.roundTrip!.lossPackets, 0);
    } finally {
      await reflector.stop();
    }
  });
});

describe('otel-twamp probe against perfSONAR twampd', { timeout: 120_000 }, () => {
  it('every packet reflected; text and JSON', async (t) => {
    const p = requirePeersOrSkip(t);
    if (!p) return;
    const d = await startTwampd(p, { authmode: 'O' });
    try {
      const r = await runCli(['probe', d.target, '--count', '20', '--reply-timeout', '1', '--json']);
      assert.equal(r.code, 0, `${r.stderr}\n${d.log()}`);
      const doc = JSON.parse(r.stdout) as ProbeReport;
      assertSchema(doc);
      assert.equal(doc.traffic!.receivedPackets, 20);
      assert.equal(doc.roundTrip!.lossPackets, 0);
      assert.equal(doc.outbound!.lossPackets, 0);
      assert.equal(doc.inbound!.lossPackets, 0);
      const txt = await runCli(['probe', d.target, '--model', 'imix', '--bandwidth', '500000', '--count', '12', '--reply-timeout', '1']);
      assert.equal(txt.code, 0, txt.stderr);
      assert.match(txt.stdout, /TWAMP probe to .*: imix 500\.0 kbit\/s, 12 packets/);
      assert.match(txt.stdout, /loss +round trip 0\/12/);
    } finally {
      await d.stop();
    }
  });
});

describe('probe target syntax', () => {
  it('HOST, HOST:PORT, [v6], [v6]:PORT and a bare IPv6 literal', () => {
    assert.deepEqual(parseTarget('192.0.2.1'), { host: '192.0.2.1', port: undefined });
    assert.deepEqual(parseTarget('r1.example.net:8620'), { host: 'r1.example.net', port: '8620' });
    assert.deepEqual(parseTarget('[2001:db8::1]'), { host: '2001:db8::1', port: undefined });
    assert.deepEqual(parseTarget('[2001:db8::1]:862'), { host: '2001:db8::1', port: '862' });
    assert.deepEqual(parseTarget('2001:db8::1'), { host: '2001:db8::1', port: undefined });
  });
});

describe('probe report and text rendering (synthetic session)', () => {
  const config = parseSenderConfig({ id: 'probe', reflector: '192.0.2.1', n_packets: 10, model: 'g711', dscp: 'ef' });
  const dir = (min: number, max: number, avg: number, loss: number) =>
    ({ samples: 10 - loss, minDelayNs: min, maxDelayNs: max, avgDelayNs: avg, jitterNs: 100_000, loss });
  const session = sessionResult({
    txPackets: 10, rxPackets: 9, txBytes: 2000, rxBytes: 1800, durationNs: 180_000_000, txPps: 50, rxPps: 50,
    txBitrate: 80_000, rxBitrate: 80_000,
    out: dir(5_000_000, 9_000_000, 6_000_000, 1), in: dir(4_000_000, 8_000_000, 5_000_000, 0),
    rt: dir(10_000_000, 16_000_000, 11_000_000, 1),
    duplicates: 0, reordered: 1, unexpected: 0, residence: { minNs: 10_000, maxNs: 50_000, avgNs: 20_000 },
  });
  const base = {
    version: '0.0.0', target: { host: '192.0.2.1', controlPort: 862 }, config, startedAt: new Date(0), runDurationMs: 1234.5,
    outcome: { ok: true as const, session, values: { in_mos: 4.3, out_mos: 4.2 }, dscpNote: 'native helper missing' },
  };
  const rtNs = [10, 10.5, 11, 11, 11.2, 11.5, 12, 13, 16].map((ms) => ms * 1e6);

  it('with samples: the statistics\' percentiles and a histogram of the round-trip samples that counts every one', () => {
    const stats = session.stats;
    const withSamples = {
      ...session, rtSamplesNs: Float64Array.from(rtNs),
      stats: { ...stats, rt: { ...stats.rt, p50DelayNs: 11_200_000, p90DelayNs: 16_000_000, p99DelayNs: 16_000_000 } },
    } satisfies SenderSessionResult;
    const r = buildProbeReport({ ...base, outcome: { ...base.outcome, session: withSamples }, maxLossPercent: 5 });
    assertSchema(r);
    assert.equal(r.roundTrip!.delayNs.median, 11_200_000);
    assert.equal(r.roundTrip!.delayNs.p90, 16_000_000);
    assert.equal(r.roundTrip!.delayNs.p99, 16_000_000);
    assert.equal(r.roundTrip!.lossPercent, 10);
    assert.deepEqual(r.maxLoss, { thresholdPercent: 5, exceeded: true });
    assert.equal(r.exitCode, 3);
    assert.equal(r.rttHistogram!.buckets.reduce((n, b) => n + b.count, 0), 9);
    assert.ok(r.rttHistogram!.buckets.length <= 10);
    const text = renderProbeText(r);
    assert.match(text, /delay, ms +min +median +p90 +p99 +max +avg +jitter/);
    assert.match(text, /round trip +10\.000 +11\.200 +16\.000 +16\.000 +16\.000 +11\.000 +0\.100/);
    assert.match(text, /^ {2}outbound +5\.000 /m, 'synchronized clocks: no asterisk');
    assert.match(text, /round-trip delay histogram, ms \(9 samples\)/);
    assert.match(text, /10\.0–11\.0 +2 █+/);
    assert.match(text, /ef \(46\) requested in Type-P, but the test packets were NOT marked: native helper missing/);
    assert.match(text, /synchronized at both ends: one-way delays are meaningful/);
    assert.match(text, /reordered 1/);
    assert.match(text, /MOS \(g711\) +outbound 4\.20 \(heard at the reflector\), inbound 4\.30 \(heard here\)$/m);
  });

  it('without percentiles or samples: no percentile columns and no histogram, nothing shown empty', () => {
    const r = buildProbeReport(base);
    assertSchema(r);
    assert.equal(r.roundTrip!.delayNs.median, null);
    assert.equal(r.rttHistogram, null);
    assert.equal(r.maxLoss, null);
    assert.equal(r.exitCode, 0);
    const text = renderProbeText(r);
    assert.match(text, /delay, ms +min +max +avg +jitter$/m);
    assert.doesNotMatch(text, /median|histogram|—/);
  });

  it('the JS datapath: userspace timestamps and why, path all unknown', () => {
    const r = buildProbeReport(base);
    assert.equal(r.timestamps!.source, 'userspace');
    assert.equal(r.outbound!.hops, null);
    assert.deepEqual(r.outbound!.dscp, { sent: 0, received: null, remarkedPackets: null, reportedBy: null, replyDscpRefused: null },
      'not marked: sent with DSCP 0');
    assert.equal(r.traffic!.t1Mismatches, 0);
    const text = renderProbeText(r);
    assert.match(text, /^ {2}timestamps +userspace \(T1 and T4 userspace, JS datapath\): native helper missing$/m);
    assert.match(text, /^ {2}path +hops out unknown, in unknown$/m);
    assert.match(text, /^ {2}DSCP out +sent be \(0\), received unknown \(the reflector reports none: needs RFC 7750 or the STAMP CoS TLV\)$/m);
    assert.match(text, /^ {2}DSCP in +sent unknown, received unknown$/m);
  });

  it('path and timestamps: hop ranges, remarking, CE, T1/T4 sources and departure error', () => {
    const withPath = {
      ...session, dscpMarked: true, t1Mismatches: 2, sendErrors: 1,
      path: {
        outbound: {
          hops: { min: 3, max: 4 }, senderTtl: { min: 251, max: 252 },
          reportedBy: 'cos-tlv', dscp: 8, ecn: 1, remarked: 10, tosSamples: 10, replyDscpRefused: 10,
        },
        inbound: { dscpSent: 8, hops: { min: 5, max: 5 }, ttl: { min: 250, max: 250 }, dscp: 0, ecn: 3, remarked: 9, tosSamples: 9 },
      },
      timestamps: {
        source: 'kernel', t1: 'kernel', t4: 'hardware', datapath: 'native', pacing: 'native-thread', txTimestamped: 10,
        departureErrorNs: { p50: 12_345, p99: 1_500_000, max: 2_000_000, samples: 10 },
      },
    } satisfies SenderSessionResult;
    const r = buildProbeReport({ ...base, outcome: { ...base.outcome, session: withPath } });
    assertSchema(r);
    assert.deepEqual(r.outbound!.dscp, { sent: 46, received: 8, remarkedPackets: 10, reportedBy: 'cos-tlv', replyDscpRefused: 10 });
    assert.equal(r.outbound!.ecn, 1);
    assert.deepEqual(r.inbound!.dscp, { sent: 8, received: 0, remarkedPackets: 9, reportedBy: null, replyDscpRefused: null });
    assert.equal(r.inbound!.ecn, 3);
    assert.deepEqual(r.outbound!.hops, { min: 3, max: 4 });
    assert.equal(r.timestamps!.nativeUnavailable, null);
    assert.equal(r.traffic!.t1Mismatches, 2);
    assert.equal(r.traffic!.sendErrors, 1);
    const text = renderProbeText(r);
    assert.match(text, /^ {2}timestamps +kernel \(T1 kernel, T4 hardware, native datapath\); departure error p50 12\.3 µs, p99 1\.500 ms$/m);
    assert.match(text, /^ {2}path +hops out 3–4, in 5$/m);
    assert.match(text, /^ {2}DSCP out +sent ef \(46\), received cs1 \(8\) \(CoS TLV\), 10 remarked; the reflector refused DSCP1 for 10 replies \(RP 1\); ECN ECT\(1\) \(1\)$/m);
    assert.match(text, /^ {2}DSCP in +sent cs1 \(8\), received be \(0\), 9 remarked; ECN CE \(3\)$/m);
  });

  it('unsynchronized clocks mark the one-way rows', () => {
    const r = buildProbeReport({ ...base, outcome: { ...base.outcome, session: { ...session, clocksSynchronized: false } } });
    const text = renderProbeText(r);
    assert.match(text, /^ {2}outbound \* +/m);
    assert.match(text, /^ {2}inbound \* +/m);
    assert.match(text, /\* one-way: clocks not synchronized/);
    assert.match(text, /NOT synchronized/);
    assert.equal(r.mos!.delayBasis, 'half-round-trip');
  });
});
