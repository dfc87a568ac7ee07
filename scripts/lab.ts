/**
 * Accuracy lab: `npm run lab`, as root.
 *
 * Builds three network namespaces in a line (scripts/lab/netns.ts):
 * otl-a (our sender) — otl-r (a router) — otl-b (our reflector), runs one
 * TWAMP session per scenario and injects known impairments:
 *  - loss on the forward path only, on the return path only, both, and a
 *    tail loss: nftables `numgen random` drop rules with named counters in
 *    the input hook of otl-b (forward) / otl-a (return), on the UDP test
 *    packets only (TWAMP-Control TCP is never touched);
 *  - delay and jitter in otl-r: tc netem when the kernel has it, else a
 *    userspace delay relay (scripts/lab/delayRelay.ts).
 * Asserts: per-direction loss equals the drop counters exactly (and no loss
 * appears in the other direction); the added delay appears in the round
 * trip and in the impaired one-way direction only, within a stated
 * tolerance. All namespaces share the host clock (network namespaces do not
 * virtualise time), so the one-way delays T2−T1 and T4−T3 are meaningful.
 *
 * Router scenarios (scripts/lab/router.ts): otl-r is a real IP router
 * (TTL −1 each way) that re-marks DSCP per direction with nftables; our
 * sender and twping against our reflector, our sender against twampd; hops
 * and DSCP as each end reports them. `--only router` runs just those.
 *
 * Without root, ip or nft it prints a loud SKIP and exits 0. Exit 1 on any
 * failed assertion. Namespaces are removed at start (leftovers of an aborted
 * run) and at the end, also on failure and on SIGINT/SIGTERM.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineChild, killRunning, run } from './lab/proc.js';
import {
  ADDR, IF, LOSS_TABLE, NS, RELAY_TABLE, netemAvailable, netemClear, netemSet, nftCounters, nftDeleteTable,
  nftLoad, setup, teardown, teardownSync,
} from './lab/netns.js';
import {
  DELAY_TRAFFIC, LOSS_TRAFFIC, describeImpairment, forwardRules, relayRules, returnRules, scenarios,
  type DelayScenario, type LossScenario, type Scenario,
} from './lab/scenarios.js';
import type { SessionResult } from '../src/measure/stats.js';
import { routerReport, routerScenarios, type RouterRow } from './lab/router.js';
import { findPeers } from '../test/helpers/peers.js';

const HERE = dirname(fileURLToPath(import.meta.url)); // dist/scripts
const LAB_DIR = join(HERE, 'lab');
const NODE = process.execPath;
const CONTROL_PORT = 8620;
const TWAMPD_PORT = 8621; // perfSONAR twampd in otl-b (router scenarios)
const FIRST_TEST_PORT = 20001; // one test port per scenario: fresh conntrack tuples every time
const RELAY_OUTER_PORT = 30000;
const REPLY_TIMEOUT_S = 1;

// ---------------------------------------------------------------- tolerances
/**
 * Delay assertions compare MEDIANS (p50) of the scenario with the baseline:
 * the lab checks the measurement, and the median is what a constant added
 * delay moves one for one, while a few packets held up by the host's CPU
 * scheduler (sender, reflector and relay are userspace processes sharing
 * the CPUs with whatever else runs) would drag a mean. Means are printed.
 * Tolerance per compared median (ms): TOL_BASE_MS + 4 standard errors of the
 * median of the configured jitter. TOL_BASE_MS covers what is not the
 * impairment: T1..T4 are taken in JavaScript after the event loop wakes up
 * (tens to hundreds of µs), the delay stage overshoots its hold by tens of µs
 * (relay: timer, then a monotonic-clock poll; netem: the qdisc watchdog), and
 * each sender process anchors the wall clock once at start, so its offset to
 * the reflector's anchor differs by µs from run to run. 1 ms is well above
 * those and still a 5 % bound on a 20 ms delay. The median of n samples of a
 * uniform ±J has standard error J/√n (±5 ms, 150 packets: 0.41 ms); 4 of
 * those are allowed on top (for a sum of two uniform jitters: the larger J).
 */
const TOL_BASE_MS = 1;
function toleranceMs(jitterMs: number, n: number): number {
  return TOL_BASE_MS + (jitterMs > 0 ? (4 * jitterMs) / Math.sqrt(Math.max(1, n)) : 0);
}
/**
 * RFC 3550 jitter of a direction with uniform ±J added: E|D_i − D_{i−1}| =
 * 2J/3 (difference of two uniforms is triangular on ±2J). The estimator is a
 * 1/16 moving average, so it wanders: accept 0.5×–1.5× of 2J/3. A direction
 * without added jitter must stay below JITTER_FLAT_MS.
 */
const JITTER_FLAT_MS = 1;

// ---------------------------------------------------------------- small utils
const ms = (ns: number | undefined): number | undefined => (ns === undefined ? undefined : ns / 1e6);
const f2 = (v: number | undefined): string => (v === undefined ? '—' : v.toFixed(2));
const sign = (v: number): string => (v >= 0 ? '+' : '') + v.toFixed(2);

function loud(lines: string[]): void {
  const bar = '!'.repeat(78);
  process.stdout.write(`\n${bar}\n${lines.map((l) => `!!! ${l}`).join('\n')}\n${bar}\n\n`);
}

function skip(reason: string): never {
  loud([`LAB SKIPPED: ${reason}`, 'The accuracy lab (npm run lab) needs root, iproute2 (ip) and nftables (nft);',
    'nothing was measured and nothing was asserted.']);
  process.exit(0);
}

/** Errors that mean "this machine cannot run the lab", not "the lab found a bug". */
function isEnvironmentError(e: unknown): boolean {
  const m = String(e instanceof Error ? e.message : e);
  return /Operation not permitted|Permission denied|Operation not supported|not supported|No such file or directory.*netns|Protocol not supported|Could not process rule: No such file or directory|ENOENT/i.test(m);
}

// ---------------------------------------------------------------- children
const children = new Set<LineChild>();
/**
 * Real-time priority for the measuring processes (sender, reflector, relay):
 * `chrt -f 20`, so that other work on the host does not show up as delay.
 * They sleep between packets, so this takes little CPU; RT throttling bounds
 * it anyway. Off with OTL_LAB_RT=0 or when chrt is refused.
 */
let rtPrefix: string[] = [];
function startChild(name: string, ns: string, script: string, args: string[]): LineChild {
  const c = new LineChild(name, 'ip', ['netns', 'exec', ns, ...rtPrefix, NODE, join(LAB_DIR, script), ...args]);
  children.add(c);
  return c;
}
async function stopChild(c: LineChild | undefined): Promise<void> {
  if (!c) return;
  await c.stop();
  children.delete(c);
}

interface SenderRun {
  ok: boolean;
  stats?: SessionResult;
  senderTestPort?: number;
  reflectorTestPort?: number;
  reason?: string;
  message?: string;
}

async function runSender(config: Record<string, unknown>, expectedS: number): Promise<SenderRun> {
  const timeoutMs = Math.round((expectedS + REPLY_TIMEOUT_S + 5 /* control timeout */ + 10) * 1000);
  const r = await run('ip', ['netns', 'exec', NS.a, ...rtPrefix, NODE, join(LAB_DIR, 'senderChild.js'), JSON.stringify(config)], { timeoutMs });
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) {
    return { ok: false, reason: r.timedOut ? 'timeout' : 'crash', message: `sender printed no result (exit ${r.code ?? r.signal}${r.timedOut ? `, killed after ${timeoutMs} ms` : ''}): ${r.stderr.trim().slice(-800)}` };
  }
  return JSON.parse(line.slice('RESULT '.length)) as SenderRun;
}

// ---------------------------------------------------------------- checks
interface Check { what: string; ok: boolean; detail: string }
interface Row {
  n: number;
  scenario: Scenario;
  checks: Check[];
  stats?: SessionResult;
  counters: { fwdSeen: number; fwdEligible: number; fwdDrop: number; retSeen: number; retEligible: number; retDrop: number; tailDrop: number };
  relay?: unknown;
  error?: string;
  reflectedDelta?: number;
}

function eq(what: string, got: number | undefined, want: number): Check {
  return { what, ok: got === want, detail: `${what}: measured ${got ?? '—'}, expected exactly ${want}` };
}

function near(what: string, got: number | undefined, want: number, tol: number): Check {
  const ok = got !== undefined && Math.abs(got - want) <= tol;
  return { what, ok, detail: `${what}: ${got === undefined ? '—' : sign(got)} ms, expected ${sign(want)} ± ${tol.toFixed(2)} ms` };
}

// ---------------------------------------------------------------- main
/** `--only router`: the router scenarios alone (test/e2e/lab-router.test.ts runs it so). */
function onlyArg(argv: string[]): 'router' | undefined {
  const i = argv.findIndex((a) => a === '--only' || a.startsWith('--only='));
  if (i < 0) return undefined;
  const v = argv[i]!.startsWith('--only=') ? argv[i]!.slice('--only='.length) : argv[i + 1];
  if (v !== 'router') throw new Error(`lab: --only ${v ?? ''}: the only selectable part is "router"`);
  return 'router';
}

async function main(): Promise<number> {
  const only = onlyArg(process.argv.slice(2));
  if (typeof process.getuid === 'function' && process.getuid() !== 0) skip(`not running as root (uid ${process.getuid()}); run: sudo npm run lab`);
  for (const [tool, args] of [['ip', ['-V']], ['nft', ['--version']]] as const) {
    const r = await run(tool, [...args]);
    if (r.code !== 0) skip(`\`${tool}\` is not available (${(r.stderr.trim() || `exit ${r.code}`).split('\n')[0]}); install ${tool === 'ip' ? 'iproute2' : 'nftables'}`);
  }
  for (const f of ['senderChild.js', 'reflectorChild.js', 'delayRelay.js', 'twampdChild.js', 'router.js']) {
    if (!existsSync(join(LAB_DIR, f))) throw new Error(`${join(LAB_DIR, f)} is missing: build first (npm run lab does)`);
  }

  const leftovers = await teardown();
  if (leftovers.length) process.stdout.write(`removed namespaces left by an earlier run: ${leftovers.join(', ')}\n`);

  try {
    await setup();
    // nftables must work inside a namespace (the loss rules and the relay NAT need it).
    await nftLoad(NS.b, forwardRules(1, 1, 0));
    await nftDeleteTable(NS.b, 'inet', LOSS_TABLE);
  } catch (e) {
    await teardown();
    if (isEnvironmentError(e)) skip(`cannot build the lab network here: ${e instanceof Error ? e.message : String(e)}`);
    throw e;
  }

  if (process.env['OTL_LAB_RT'] !== '0' && (await run('chrt', ['-f', '20', 'true'])).code === 0) rtPrefix = ['chrt', '-f', '20'];

  const forced = process.env['OTL_LAB_DELAY_STAGE']; // 'netem' | 'userspace' | unset (auto)
  const probe = only === 'router' ? { ok: false, why: 'not used (--only router)' }
    : forced === 'userspace' ? { ok: false, why: 'OTL_LAB_DELAY_STAGE=userspace' } : await netemAvailable();
  if (forced === 'netem' && !probe.ok) throw new Error(`OTL_LAB_DELAY_STAGE=netem but netem does not work: ${probe.why}`);
  const netem = probe.ok;
  const stageName = netem ? 'tc netem in otl-r' : 'userspace delay relay in otl-r';

  process.stdout.write(`otel-twamp accuracy lab
  topology : ${NS.a} ${ADDR.a} (sender) — ${NS.r} ${ADDR.ra}|${ADDR.rb} (router) — ${NS.b} ${ADDR.b}:${CONTROL_PORT} (reflector)
  loss     : nft numgen random drop + named counters, input hook of ${NS.b} (forward) / ${NS.a} (return), UDP test packets only
  delay    : ${stageName}${netem ? '' : ` (netem unavailable: ${probe.why})`}
  priority : ${rtPrefix.length ? 'sender, reflector, relay under chrt -f 20 (SCHED_FIFO)' : 'normal (chrt unavailable or OTL_LAB_RT=0)'}
  clocks   : one host clock for all namespaces, so one-way delays are real one-way delays
  traffic  : loss ${LOSS_TRAFFIC.n} × cbr ${LOSS_TRAFFIC.size} B @ ${LOSS_TRAFFIC.bandwidth / (LOSS_TRAFFIC.size * 8)} pps; delay ${DELAY_TRAFFIC.n} × ${DELAY_TRAFFIC.model} (50 pps)

`);

  const reflector = startChild('reflector', NS.b, 'reflectorChild.js', [ADDR.b, String(CONTROL_PORT)]);
  await reflector.waitLine('READY', 10_000);
  const reflectorStats = async (): Promise<{ reflected: number }> => {
    reflector.send('stats');
    return JSON.parse(await reflector.waitLine('STATS', 5000)) as { reflected: number };
  };

  const rows: Row[] = [];
  const list = only === 'router' ? [] : scenarios(netem);
  const baselines: Partial<Record<'kernel' | 'stage', SessionResult>> = {};
  for (const [i, sc] of list.entries()) {
    const testPort = FIRST_TEST_PORT + i;
    const row: Row = {
      n: i + 1, scenario: sc, checks: [],
      counters: { fwdSeen: 0, fwdEligible: 0, fwdDrop: 0, retSeen: 0, retEligible: 0, retDrop: 0, tailDrop: 0 },
    };
    rows.push(row);
    process.stdout.write(`[${row.n}/${list.length}] ${sc.name}: ${describeImpairment(sc)} … `);
    let relay: LineChild | undefined;
    try {
      const N = sc.kind === 'loss' ? LOSS_TRAFFIC.n : DELAY_TRAFFIC.n;
      const tailK = sc.kind === 'loss' ? sc.tailK : 0;
      // Random drops never touch the last answered packet (N − 1; with a tail of k dropped
      // reflections, N − k − 1), so the assertions are exact: a forward drop of that packet
      // would move it into the unattributable tail.
      const limit = tailK > 0 ? N - tailK - 1 : N - 1;
      await nftDeleteTable(NS.a, 'inet', LOSS_TABLE);
      await nftDeleteTable(NS.b, 'inet', LOSS_TABLE);
      await nftLoad(NS.b, forwardRules(testPort, limit, sc.kind === 'loss' ? sc.fwdPct : 0));
      await nftLoad(NS.a, returnRules(testPort, limit, sc.kind === 'loss' ? sc.retPct : 0, tailK > 0 ? N - tailK : undefined));

      if (sc.kind === 'delay' && sc.stage) {
        if (netem) {
          await netemSet(IF.rb, sc.fwd.delayMs, sc.fwd.jitterMs); // egress towards the reflector
          await netemSet(IF.ra, sc.ret.delayMs, sc.ret.jitterMs); // egress towards the sender
        } else {
          await nftLoad(NS.r, relayRules(RELAY_TABLE, IF.ra, IF.rb, testPort, RELAY_OUTER_PORT));
          relay = startChild('delay relay', NS.r, 'delayRelay.js', [
            '--outer-port', String(RELAY_OUTER_PORT), '--inner-addr', ADDR.rb,
            '--target-addr', ADDR.b, '--target-port', String(testPort),
            '--fwd-delay-ms', String(sc.fwd.delayMs), '--fwd-jitter-ms', String(sc.fwd.jitterMs),
            '--ret-delay-ms', String(sc.ret.delayMs), '--ret-jitter-ms', String(sc.ret.jitterMs),
          ]);
          await relay.waitLine('READY', 10_000);
        }
      }

      const before = await reflectorStats();
      const traffic = sc.kind === 'loss'
        ? { model: LOSS_TRAFFIC.model, size: LOSS_TRAFFIC.size, bandwidth: LOSS_TRAFFIC.bandwidth }
        : { model: DELAY_TRAFFIC.model };
      const expectedS = sc.kind === 'loss' ? N / (LOSS_TRAFFIC.bandwidth / (LOSS_TRAFFIC.size * 8)) : N / 50;
      const res = await runSender({
        id: `lab-${row.n}`, reflector: ADDR.b, port: CONTROL_PORT, reflector_port: testPort, n_packets: N,
        ...traffic, reply_timeout: REPLY_TIMEOUT_S, control_timeout: 5,
      }, expectedS + (sc.kind === 'delay' ? 1 : 0));
      const after = await reflectorStats();
      row.reflectedDelta = after.reflected - before.reflected;

      if (relay) {
        relay.send('stats');
        row.relay = JSON.parse(await relay.waitLine('STATS', 5000));
      }
      const cb = await nftCounters(NS.b, 'inet', LOSS_TABLE);
      const ca = await nftCounters(NS.a, 'inet', LOSS_TABLE);
      row.counters = {
        fwdSeen: cb['fwd_seen'] ?? NaN, fwdEligible: cb['fwd_eligible'] ?? NaN, fwdDrop: cb['fwd_drop'] ?? NaN,
        retSeen: ca['ret_seen'] ?? NaN, retEligible: ca['ret_eligible'] ?? NaN, retDrop: ca['ret_drop'] ?? NaN,
        tailDrop: ca['tail_drop'] ?? NaN,
      };

      if (!res.ok || !res.stats) {
        row.checks.push({ what: 'session', ok: false, detail: `session failed (${res.reason}): ${res.message}` });
      } else {
        row.stats = res.stats;
        if (res.reflectorTestPort !== testPort) {
          row.checks.push({ what: 'test port', ok: false, detail: `reflector test port ${res.reflectorTestPort}, requested ${testPort}: the impairment rules missed the session` });
        }
        if (sc.kind === 'loss') lossChecks(row, sc, N, limit);
        else delayChecks(row, sc, N, baselines);
      }
    } catch (e) {
      row.error = e instanceof Error ? e.message : String(e);
      row.checks.push({ what: 'run', ok: false, detail: row.error });
    } finally {
      await stopChild(relay);
      await nftDeleteTable(NS.r, 'ip', RELAY_TABLE);
      if (netem) await netemClear();
    }
    const failed = row.checks.filter((c) => !c.ok);
    process.stdout.write(failed.length ? `FAIL (${failed.map((c) => c.what).join('; ')})\n` : 'PASS\n');
  }

  const found = findPeers();
  const routerRows: RouterRow[] = await routerScenarios({
    peers: 'missing' in found ? undefined : found, peersMissing: 'missing' in found ? found.missing : undefined,
    // Normal priority: these scenarios time nothing, and with the sender and our reflector under
    // SCHED_FIFO next to a normal-priority twampd the probe → twampd session hung now and then.
    controlPort: CONTROL_PORT, twampdPort: TWAMPD_PORT, rtPrefix: [], log: (s) => process.stdout.write(s),
  });
  await stopChild(reflector);
  const code = list.length > 0 ? report(rows, netem, stageName) : 0;
  const failedRouter = routerRows.filter((r) => !r.checks.every((c) => c.ok));
  const out = routerReport(routerRows);
  if (failedRouter.length) {
    out.push('\nFAILED ROUTER CHECKS');
    for (const r of failedRouter) for (const c of r.checks.filter((x) => !x.ok)) out.push(`  ${r.name}: ${c.detail}`);
  }
  out.push(`\nROUTER ${failedRouter.length ? 'FAIL' : 'PASS'}: ${routerRows.length - failedRouter.length}/${routerRows.length} scenarios passed` +
    ` (${routerRows.reduce((a, r) => a + r.checks.length, 0)} checks)`);
  // One machine-readable line for test/e2e/lab-router.test.ts.
  out.push(`ROUTER-RESULT ${JSON.stringify(routerRows)}\n`);
  process.stdout.write(out.join('\n') + '\n');
  return code || (failedRouter.length ? 1 : 0);
}

function lossChecks(row: Row, sc: LossScenario, N: number, limit: number): void {
  const s = row.stats!;
  const c = row.counters;
  const ch = row.checks;
  // The rules themselves: every test packet seen, the payload sequence match selects exactly the eligible ones.
  ch.push(eq('sent', s.txPackets, N));
  ch.push(eq('packets reaching the reflector namespace', c.fwdSeen, N));
  ch.push(eq('seq match (forward): packets with seq < limit', c.fwdEligible, limit));
  ch.push(eq('reflections reaching the sender namespace', c.retSeen, N - c.fwdDrop));
  ch.push(eq('seq match (return): reflections with seq < limit', c.retEligible, limit - c.fwdDrop));
  ch.push(eq('reflector reflected', row.reflectedDelta, N - c.fwdDrop));
  if (sc.fwdPct === 0) ch.push(eq('forward drops without a forward rule', c.fwdDrop, 0));
  if (sc.retPct === 0) ch.push(eq('return drops without a return rule', c.retDrop, 0));
  if (sc.tailK > 0) ch.push(eq('tail drops', c.tailDrop, sc.tailK));
  // The measurement.
  ch.push(eq('out loss = forward drops', s.out.loss, c.fwdDrop));
  ch.push(eq('in loss = return drops (tail excluded)', s.in.loss, c.retDrop));
  ch.push(eq('rt loss = all drops', s.rt.loss, c.fwdDrop + c.retDrop + (sc.tailK > 0 ? c.tailDrop : 0)));
  ch.push(eq('received', s.rxPackets, N - c.fwdDrop - c.retDrop - (sc.tailK > 0 ? c.tailDrop : 0)));
  ch.push(eq('duplicates', s.duplicates, 0));
  // A rule that never fired would make the scenario vacuous (10 % of ~1000: P(0 drops) ≈ 1e-46).
  if (sc.fwdPct > 0) ch.push({ what: 'forward rule fired', ok: c.fwdDrop > 0, detail: `forward drops ${c.fwdDrop} > 0` });
  if (sc.retPct > 0) ch.push({ what: 'return rule fired', ok: c.retDrop > 0, detail: `return drops ${c.retDrop} > 0` });
}

function delayChecks(row: Row, sc: DelayScenario, N: number, baselines: Partial<Record<'kernel' | 'stage', SessionResult>>): void {
  const s = row.stats!;
  const ch = row.checks;
  ch.push(eq('sent', s.txPackets, N));
  ch.push(eq('rt loss', s.rt.loss, 0));
  ch.push(eq('out loss', s.out.loss, 0));
  ch.push(eq('in loss', s.in.loss, 0));
  ch.push(eq('no drops counted', row.counters.fwdDrop + row.counters.retDrop, 0));
  if (sc.baseline) {
    baselines[sc.baseline] = s;
    return;
  }
  if (!sc.stage) return; // the kernel baseline of a userspace run: reference for the relay's own cost only
  const base = baselines.stage ?? baselines.kernel;
  if (!base) { ch.push({ what: 'baseline', ok: false, detail: 'no baseline measurement to compare with' }); return; }
  const n = s.rt.samples;
  const d = (x: SessionResult['rt'], y: SessionResult['rt']) =>
    (x.p50DelayNs === undefined || y.p50DelayNs === undefined ? undefined : (x.p50DelayNs - y.p50DelayNs) / 1e6);
  const jr = Math.max(sc.fwd.jitterMs, sc.ret.jitterMs);
  ch.push(near('round-trip median rise', d(s.rt, base.rt), sc.fwd.delayMs + sc.ret.delayMs, toleranceMs(jr, n)));
  ch.push(near('forward (T2−T1) median rise', d(s.out, base.out), sc.fwd.delayMs, toleranceMs(sc.fwd.jitterMs, n)));
  ch.push(near('return (T4−T3) median rise', d(s.in, base.in), sc.ret.delayMs, toleranceMs(sc.ret.jitterMs, n)));
  for (const [dir, imp, st] of [['forward', sc.fwd, s.out], ['return', sc.ret, s.in]] as const) {
    const j = ms(st.jitterNs);
    if (imp.jitterMs > 0) {
      const want = (2 * imp.jitterMs) / 3;
      ch.push({ what: `${dir} jitter`, ok: j !== undefined && j >= 0.5 * want && j <= 1.5 * want,
        detail: `${dir} jitter ${f2(j)} ms, expected ${want.toFixed(2)} ms (2J/3) within ×0.5–×1.5` });
    } else {
      ch.push({ what: `${dir} jitter`, ok: j !== undefined && j < JITTER_FLAT_MS,
        detail: `${dir} jitter ${f2(j)} ms, expected < ${JITTER_FLAT_MS} ms (no jitter added)` });
    }
  }
}

// ---------------------------------------------------------------- report
function table(head: string[], body: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |`;
  return [line(head), `|${w.map((x) => '-'.repeat(x + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

function report(rows: Row[], netem: boolean, stageName: string): number {
  const verdict = (r: Row) => (r.checks.every((c) => c.ok) ? 'PASS' : 'FAIL');
  const lossRows = rows.filter((r) => r.scenario.kind === 'loss');
  const delayRows = rows.filter((r) => r.scenario.kind === 'delay');
  const out: string[] = [];
  out.push('\nLOSS (exact: measured loss must equal the nft drop counters)');
  out.push(table(
    ['#', 'scenario', 'configured impairment', 'dropped fwd(B)/ret(A)/tail(A)', 'measured out/in/rt', 'expected out/in/rt', 'result'],
    lossRows.map((r) => {
      const c = r.counters;
      const s = r.stats;
      const sc = r.scenario as LossScenario;
      const tail = sc.tailK > 0 ? c.tailDrop : 0;
      return [String(r.n), sc.name, describeImpairment(sc), `${c.fwdDrop}/${c.retDrop}/${c.tailDrop}`,
        s ? `${s.out.loss}/${s.in.loss}/${s.rt.loss}` : '—',
        `${c.fwdDrop}/${c.retDrop}/${c.fwdDrop + c.retDrop + tail}`, verdict(r)];
    })));
  out.push(`  sent ${LOSS_TRAFFIC.n} per scenario; random drops only hit sender seq < ${LOSS_TRAFFIC.n - 1} (tail scenario: < ${LOSS_TRAFFIC.n - 5}),`);
  out.push('  so the last packet is always answered and the loss split of src/measure/stats.ts is exact; the tail');
  out.push('  scenario drops the last 5 reflections, which by definition count in rt only.');

  out.push(`\nDELAY (${stageName}; ms; "p50 (avg)" = median (mean) of the samples; rise = scenario − baseline)`);
  const base = rows.find((x) => x.scenario.kind === 'delay' && (x.scenario as DelayScenario).baseline)?.stats;
  const rises = (s: SessionResult, key: 'p50DelayNs' | 'avgDelayNs') => (['rt', 'out', 'in'] as const)
    .map((dir) => sign(((s[dir][key] ?? 0) - (base![dir][key] ?? 0)) / 1e6)).join('/');
  out.push(table(
    ['#', 'scenario', 'configured', 'rt p50 (avg)', 'out p50 (avg)', 'in p50 (avg)', 'p50 rise rt/out/in', 'avg rise rt/out/in', 'jitter out/in', 'tolerance rt/out/in', 'result'],
    delayRows.map((r) => {
      const sc = r.scenario as DelayScenario;
      const s = r.stats;
      const measured = s && base && !sc.baseline && sc.stage;
      const both = (d: SessionResult['rt'] | undefined) => `${f2(ms(d?.p50DelayNs))} (${f2(ms(d?.avgDelayNs))})`;
      const tol = !measured ? '—' : [Math.max(sc.fwd.jitterMs, sc.ret.jitterMs), sc.fwd.jitterMs, sc.ret.jitterMs]
        .map((j) => `±${toleranceMs(j, s.rt.samples).toFixed(2)}`).join('/');
      return [String(r.n), sc.name, describeImpairment(sc), both(s?.rt), both(s?.out), both(s?.in),
        measured ? rises(s, 'p50DelayNs') : sc.baseline ? '(baseline)' : '(reference)',
        measured ? rises(s, 'avgDelayNs') : '',
        `${f2(ms(s?.out.jitterNs))}/${f2(ms(s?.in.jitterNs))}`, tol, verdict(r)];
    })));
  out.push(`  asserted: median rise = configured delay ± (${TOL_BASE_MS} ms + 4·J/√n) per direction and round trip (J = added`);
  out.push(`  uniform jitter, n = samples); RFC 3550 jitter 2J/3 ×0.5–×1.5 where J is added, < ${JITTER_FLAT_MS} ms elsewhere; no loss.`);
  out.push(`  means are shown, not asserted. Processes ${rtPrefix.length ? `ran at ${rtPrefix.join(' ')} (SCHED_FIFO)` : 'ran at normal priority'}.`);
  if (!netem) {
    const relayRows = delayRows.filter((r) => r.relay);
    if (relayRows.length) {
      out.push('  relay self-check (intended vs. actual mean hold, worst lateness):');
      for (const r of relayRows) {
        const st = r.relay as Record<'fwd' | 'ret', { packets: number; intendedMeanMs: number | null; actualMeanMs: number | null; maxLateMs: number }>;
        const fmt = (d: typeof st.fwd) => `${d.packets} pkts, ${f2(d.intendedMeanMs ?? undefined)}→${f2(d.actualMeanMs ?? undefined)} ms, late ≤ ${d.maxLateMs.toFixed(3)} ms`;
        out.push(`    #${r.n} fwd: ${fmt(st.fwd)}; ret: ${fmt(st.ret)}`);
      }
    }
  }

  const failed = rows.filter((r) => verdict(r) === 'FAIL');
  if (failed.length) {
    out.push('\nFAILED CHECKS');
    for (const r of failed) for (const c of r.checks.filter((x) => !x.ok)) out.push(`  #${r.n} ${r.scenario.name}: ${c.detail}`);
  }
  out.push(`\nLAB ${failed.length ? 'FAIL' : 'PASS'}: ${rows.length - failed.length}/${rows.length} scenarios passed` +
    ` (${rows.reduce((a, r) => a + r.checks.length, 0)} checks)\n`);
  process.stdout.write(out.join('\n') + '\n');
  return failed.length ? 1 : 0;
}

// ---------------------------------------------------------------- entry
let cleaning = false;
function emergencyCleanup(sig: string): void {
  if (cleaning) return;
  cleaning = true;
  process.stderr.write(`\nlab: ${sig}: stopping children and removing namespaces\n`);
  for (const c of children) c.killNow();
  killRunning();
  teardownSync((cmd, args) => spawnSync(cmd, args, { stdio: 'ignore', timeout: 5000 }));
  process.exit(130);
}
process.on('SIGINT', () => emergencyCleanup('SIGINT'));
process.on('SIGTERM', () => emergencyCleanup('SIGTERM'));
process.on('exit', () => { for (const c of children) c.killNow(); killRunning(); });

// Invoked as dist/scripts/lab.js: anything else is an import (there are none, but keep it inert).
if (resolve(process.argv[1] ?? '') === fileURLToPath(import.meta.url)) {
  let code = 1;
  try {
    code = await main();
  } catch (e) {
    process.stdout.write(`\nLAB ERROR: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    code = 1;
  } finally {
    for (const c of [...children]) await stopChild(c);
    if (!cleaning) await teardown();
  }
  process.exit(code);
}
