/**
 * Fidelity section of `npm run bench` (`npm run bench -- --only fidelity` runs it alone):
 * how close to the wire our figures are, next to perfSONAR in the same run,
 * on IPv4 loopback.
 *
 *  a. Round trip seen by the sender: our probe (`otel-twamp probe --json`) and
 *     twping, both against twampd, 300 g711-sized packets (200 octets at IP
 *     level) at 50 pps; several rounds, the two interleaved, min/median/p99
 *     per round and the range over the rounds. twping runs with -R and its
 *     round trips are computed from the raw NTP timestamps (its own summary
 *     median is bucketed at 0.1 ms), with the same quantile definition as
 *     ours (src/measure/percentiles.ts: nearest rank).
 *  b. Round trip added by the reflector: twping through our reflector
 *     (own process) vs twping through twampd, same parameters.
 *  c. Departure error p50/p99 of the sender's scheduler at 50 / 1,000 /
 *     10,000 pps (bench/departure.ts, the configuration the sender uses),
 *     next to the host's own timer wake-up latency at the same rates
 *     measured in the same run by cyclictest (bench/hostProfile.ts), when
 *     installed.
 *  d. CPU of an agent process with 40 g711 twamp_sender collectors against one
 *     reflector (ours, own process), % of one core from /proc/<pid>/stat over
 *     a fixed window; baseline: 40 twping processes against the same
 *     reflector over the same window. Packets are counted by the reflector.
 *     The agent's CPU per thread (/proc/<pid>/task), and, as root with perf
 *     installed, a perf profile of each side right after its window that
 *     separates the loopback peer's receive path (run inside our sends on
 *     loopback) from our own work (bench/hostProfile.ts).
 *  e. The host's floor for (d), same run: a minimal C program (bench/floor.c,
 *     built here with cc) with the same 40 × 50 pps senders doing only the
 *     timed wake-up, clock read, send and receive per packet, on one thread;
 *     and the same with departures coalesced onto a 2 ms grid (several
 *     senders' packets on one wake-up). What (d) costs above the first row is
 *     ours; the first row is what any per-packet-paced sender costs here.
 *
 * Reports only, no pass/fail. Ratios are ours ÷ theirs (> 1: ours larger).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, runTwping, startTwampd, repoRoot, type Peers, type Twampd } from '../test/helpers/peers.js';
import { quantile, sortedSamples } from '../src/measure/percentiles.js';
import { runDepartureBench, type DepartureFigures } from './departure.js';
import { forkChild, sleep, fmt, fmtInt, table, cpuMsOfTree, descendantPids, threadCpuMs, type BenchChild } from './lib.js';
import { perfProfile, timerLatencyBaseline, PERF_CATEGORIES, CYCLICTEST_RUNS, type PerfProfile, type TimerLatency } from './hostProfile.js';

export const FIDELITY = {
  rounds: 3,
  packets: 300,
  ratePps: 50,
  /** g711: 200 octets at IP level = 172 octets of UDP payload = 14-octet TWAMP header + 158 padding. */
  twpingPadding: 158,
  agentSenders: 40,
  /** CPU window and the warm-up before it, seconds. */
  cpuWindowS: 30,
  cpuWarmupS: 5,
  /** Grids of the C floor (bench/floor.c), µs: 0 = a wake-up per departure, as the agent. */
  floorGridsUs: [0, 2000],
  /** perf profile of each side right after its CPU window (root and perf only), seconds. */
  perfS: 10,
  /**
   * Departure variants (bench/departure.ts NATIVE_VARIANTS): the timer alone (no spin: what cyclictest
   * measures), the sender's (src/session/testPhase.ts: early wake-up adapted to the measured wake-up latency,
   * at most 500 µs, spun within the default 1 % budget), the same with SCHED_FIFO (we run as root here), with a
   * 200 µs cap and no budget cap (the precision this host allows), and the old pacer for reference.
   */
  departureVariants: ['native, no spin (timer wake-up alone)', 'native, sender default (spin ≤500µs, 1 % budget)',
    'native, SCHED_FIFO 10, spin ≤500µs, 1 % budget', 'native, SCHED_FIFO 10, spin ≤200µs, no budget cap', 'PacedSender (busy-poll)'],
};

export interface RttFigures { minUs: number; medianUs: number; p99Us: number; samples: number; lost: number }
interface Failed { error: string }
const isErr = (x: unknown): x is Failed => typeof x === 'object' && x !== null && 'error' in x;

export interface FidelityRound {
  ours: RttFigures | Failed;
  twpingTwampd: RttFigures | Failed;
  twpingOurs: RttFigures | Failed;
  /** Timestamp source of our probe in this round (probe --json `timestamps`). */
  timestamps?: { source: string; t1: string; t4: string; datapath: string; pacing: string } | null | undefined;
}

export interface AgentCpu {
  what: string;
  cpuPercent: number;
  packetsReflected: number;
  msPer1000: number;
  windowS: number;
  /** Single-process senders: user / system CPU % of one core per thread group over the window. */
  threads?: Array<{ group: string; userPercent: number; sysPercent: number }>;
  /** Where the CPU goes (perf, after the window), or why not. */
  perf?: PerfProfile | { skipped: string };
}

/** The C floor's run (bench/floor.c): packetsReflected counts the replies it read. */
export interface FloorCpu extends AgentCpu {
  gridUs: number;
  wakesPerS: number;
}

export interface FidelityPart {
  rounds: FidelityRound[];
  departure: DepartureFigures[] | Failed;
  departureNative: boolean;
  /** cyclictest in the same run, or why not. */
  timerBaseline: TimerLatency[] | Failed | { skipped: string };
  agent: AgentCpu | Failed;
  twpingCpu: AgentCpu | Failed | { skipped: string };
  floor: FloorCpu[] | Failed | { skipped: string };
}

function rttOf(rtsUs: number[], lost: number): RttFigures | Failed {
  if (rtsUs.length === 0) return { error: 'no reply' };
  const s = sortedSamples(rtsUs);
  return { minUs: s[0]!, medianUs: quantile(s, 0.5)!, p99Us: quantile(s, 0.99)!, samples: s.length, lost };
}

/** Run a command to completion, collecting stdout (bounded). */
function capture(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const cp = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    cp.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    cp.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    const t = setTimeout(() => cp.kill('SIGKILL'), timeoutMs);
    cp.once('error', (e) => { clearTimeout(t); resolve({ code: 127, out, err: err + String(e) }); });
    cp.once('close', (code) => { clearTimeout(t); resolve({ code, out, err }); });
  });
}

const CLI = (): string => join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

async function ourProbe(port: number): Promise<{ rtt: RttFigures | Failed; timestamps: FidelityRound['timestamps'] }> {
  const r = await capture(process.execPath, [CLI(), 'probe', `127.0.0.1:${port}`, '-m', 'g711', '-c', String(FIDELITY.packets),
    '--reply-timeout', '1', '--json', '-q'], (FIDELITY.packets / FIDELITY.ratePps) * 1000 + 20_000);
  let j: {
    roundTrip?: { lossPackets: number; delayNs: { min: number | null; median: number | null; p99: number | null }; samples: number } | null;
    timestamps?: FidelityRound['timestamps'];
  };
  try {
    j = JSON.parse(r.out) as typeof j;
  } catch {
    return { rtt: { error: `probe exit ${r.code}, no JSON: ${r.err.trim().slice(-300)}` }, timestamps: null };
  }
  const rt = j.roundTrip;
  if (!rt || rt.delayNs.min === null) return { rtt: { error: `probe exit ${r.code}: no round trip` }, timestamps: j.timestamps ?? null };
  return {
    rtt: { minUs: rt.delayNs.min / 1000, medianUs: rt.delayNs.median! / 1000, p99Us: rt.delayNs.p99! / 1000, samples: rt.samples, lost: rt.lossPackets },
    timestamps: j.timestamps ? { source: j.timestamps.source, t1: j.timestamps.t1, t4: j.timestamps.t4, datapath: j.timestamps.datapath, pacing: j.timestamps.pacing } : null,
  };
}

async function twpingRtt(peers: Peers, target: string): Promise<RttFigures | Failed> {
  const r = await runTwping(peers, target, ['-c', String(FIDELITY.packets), '-i', `${1 / FIDELITY.ratePps}f`,
    '-s', String(FIDELITY.twpingPadding), '-R'], (FIDELITY.packets / FIDELITY.ratePps) * 1000 + 20_000).catch((e: Error) => ({ error: e.message }));
  if (isErr(r)) return r;
  if (!r.raw || r.raw.length === 0) return { error: `twping exit ${r.code}, no raw records: ${r.stderr.trim().slice(-300)}` };
  const rts = r.raw.flatMap((x) => (x.roundTripMs === undefined ? [] : [x.roundTripMs * 1000]));
  return rttOf(rts, r.raw.filter((x) => x.lost).length);
}

async function reflectorStats(child: BenchChild): Promise<{ reflectedPackets: number }> {
  return child.request<{ reflectedPackets: number }>({ type: 'stats' }, 'stats', 5000);
}

/** CPU of the process tree of `pid` over the window, with the packets `reflector` reflected meanwhile. */
async function cpuWindow(what: string, pid: number, reflector: BenchChild, alive: () => boolean, perThread = false): Promise<AgentCpu | Failed> {
  await sleep(FIDELITY.cpuWarmupS * 1000);
  if (!alive()) return { error: `${what} exited during the warm-up` };
  const k0 = perThread ? threadCpuMs(pid) : undefined;
  const c0 = cpuMsOfTree(pid);
  const p0 = (await reflectorStats(reflector)).reflectedPackets;
  const t0 = Date.now();
  if (c0 === undefined) return { error: 'no /proc: CPU unavailable' };
  await sleep(FIDELITY.cpuWindowS * 1000);
  const c1 = cpuMsOfTree(pid);
  const k1 = perThread ? threadCpuMs(pid) : undefined;
  const p1 = (await reflectorStats(reflector)).reflectedPackets;
  const wall = Date.now() - t0;
  if (c1 === undefined || !alive()) return { error: `${what} exited during the window` };
  const packets = p1 - p0;
  const r: AgentCpu = { what, cpuPercent: (100 * (c1 - c0)) / wall, packetsReflected: packets, msPer1000: ((c1 - c0) / Math.max(packets, 1)) * 1000, windowS: wall / 1000 };
  if (k0 && k1) {
    // Thread groups: the native scheduler thread (named by native/datapath.cc), the main thread (event loop), the rest.
    const groups = new Map<string, { u: number; s: number }>();
    for (const [tid, v] of k1) {
      const a = k0.get(tid) ?? { userMs: 0, sysMs: 0 };
      const g = v.name === 'twamp-sched' ? 'twamp-sched thread' : tid === pid ? 'main thread (event loop)' : 'other threads (V8, libuv)';
      const x = groups.get(g) ?? { u: 0, s: 0 };
      x.u += v.userMs - a.userMs;
      x.s += v.sysMs - a.sysMs;
      groups.set(g, x);
    }
    r.threads = [...groups].map(([group, x]) => ({ group, userPercent: (100 * x.u) / wall, sysPercent: (100 * x.s) / wall }));
  }
  return r;
}

/**
 * The host's floor (bench/floor.c) for the agent's configuration: built with
 * cc into a temp dir, run once per grid for the same warm-up and window.
 */
async function floorCpu(cleanup: Array<() => Promise<void>>): Promise<FloorCpu[] | Failed | { skipped: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'otel-twamp-bench-floor-'));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  const exe = join(dir, 'floor');
  const cc = await capture('cc', ['-O2', '-o', exe, join(repoRoot(), 'bench', 'floor.c')], 60_000);
  if (cc.code !== 0) return { skipped: `cannot build bench/floor.c with cc (exit ${cc.code}): ${cc.err.trim().slice(-200)}` };
  const out: FloorCpu[] = [];
  for (const gridUs of FIDELITY.floorGridsUs) {
    const r = await capture(exe, [String(FIDELITY.agentSenders), String(FIDELITY.ratePps), String(FIDELITY.cpuWarmupS),
      String(FIDELITY.cpuWindowS), String(gridUs)], (FIDELITY.cpuWarmupS + FIDELITY.cpuWindowS + 20) * 1000);
    let j: { sent: number; received: number; wakes: number; userMs: number; sysMs: number; wallMs: number };
    try {
      j = JSON.parse(r.out) as typeof j;
    } catch {
      return { error: `floor (grid ${gridUs} µs) exit ${r.code}: ${r.err.trim().slice(-200)}` };
    }
    const ms = j.userMs + j.sysMs;
    out.push({
      what: gridUs === 0 ? 'C floor, a wake-up per departure' : `C floor, departures on a ${gridUs / 1000} ms grid`,
      gridUs, cpuPercent: (100 * ms) / j.wallMs, packetsReflected: j.received, msPer1000: (ms / Math.max(j.received, 1)) * 1000,
      windowS: j.wallMs / 1000, wakesPerS: j.wakes / (j.wallMs / 1000),
      threads: [{ group: 'the one thread', userPercent: (100 * j.userMs) / j.wallMs, sysPercent: (100 * j.sysMs) / j.wallMs }],
    });
  }
  return out;
}

/** Process groups started here (the agent, the twping shell): killed by id if the bench ends or is interrupted. */
const groups = new Set<ChildProcess>();
let hooked = false;
function trackGroup(cp: ChildProcess): void {
  groups.add(cp);
  cp.once('exit', () => groups.delete(cp));
  if (hooked) return;
  hooked = true;
  process.once('exit', () => { for (const g of groups) { try { process.kill(-g.pid!, 'SIGKILL'); } catch { /* gone */ } } });
  // Detached groups do not get the terminal's SIGINT: exit through the hooks above (and bench/lib.ts's).
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
}

/** Stop a process group we started (by its pid, which is its group id). */
function killGroup(cp: ChildProcess): void {
  if (cp.pid === undefined || cp.exitCode !== null || cp.signalCode !== null) return;
  try { process.kill(-cp.pid, 'SIGTERM'); } catch { /* gone */ }
  setTimeout(() => { try { process.kill(-cp.pid!, 'SIGKILL'); } catch { /* gone */ } }, 2000).unref();
}

async function agentCpu(reflectorPort: number, reflector: BenchChild, cleanup: Array<() => Promise<void>>): Promise<AgentCpu | Failed> {
  const dir = mkdtempSync(join(tmpdir(), 'otel-twamp-bench-agent-'));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  const metricsPort = await freePort();
  // Each collector sends 450 packets (9 s) every 10 s: the 40 sessions are running ~90 % of the time.
  const collectors = Array.from({ length: FIDELITY.agentSenders }, (_, i) => [
    `  - id: g711-${i}`, '    type: twamp_sender', '    reflector: 127.0.0.1', `    port: ${reflectorPort}`,
    '    model: g711', '    n_packets: 450', '    reply_timeout: 1', '    interval: 10',
  ].join('\n'));
  // max_sessions_per_reflector raised: all 40 run at once against the one reflector (the default, 8, would queue 32).
  const config = ['$version: "1.0"', '$type: "zeroconf"', 'agent:', `  max_sessions_per_reflector: ${FIDELITY.agentSenders}`, '  defaults:', '    interval: 10', 'sender:',
    '  type: openmetrics', '  mode: pull', `  listen: "127.0.0.1:${metricsPort}"`, '  path: /metrics', 'collectors:', ...collectors, ''].join('\n');
  const file = join(dir, 'agent.yaml');
  writeFileSync(file, config);
  const agent = spawn(process.execPath, [CLI(), 'agent', '--config', file, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  trackGroup(agent);
  let err = '';
  agent.stderr!.on('data', (b: Buffer) => { err = (err + b.toString()).slice(-2000); });
  const gone = new Promise<void>((r) => agent.once('exit', () => r()));
  cleanup.push(async () => { killGroup(agent); await Promise.race([gone, sleep(4000)]); });
  const r = await cpuWindow(`agent with ${FIDELITY.agentSenders} g711 senders`, agent.pid!, reflector, () => agent.exitCode === null, true);
  if (!isErr(r)) r.perf = await perfProfile([agent.pid!], FIDELITY.perfS).catch((e: Error) => ({ skipped: `perf failed: ${e.message}` }));
  killGroup(agent);
  await Promise.race([gone, sleep(4000)]);
  return isErr(r) ? { error: `${r.error}; agent stderr: ${err.trim().slice(-400)}` } : r;
}

async function twpingCpu(peers: Peers, reflectorPort: number, reflector: BenchChild, cleanup: Array<() => Promise<void>>): Promise<AgentCpu | Failed> {
  const count = FIDELITY.ratePps * (FIDELITY.cpuWarmupS + FIDELITY.cpuWindowS + 10);
  const script = `for i in $(seq ${FIDELITY.agentSenders}); do "$0" -c ${count} -i ${1 / FIDELITY.ratePps}f -s ${FIDELITY.twpingPadding} 127.0.0.1:${reflectorPort} >/dev/null 2>&1 & done; wait`;
  const sh = spawn('bash', ['-c', script, peers.twping], { stdio: 'ignore', detached: true });
  trackGroup(sh);
  const gone = new Promise<void>((r) => sh.once('exit', () => r()));
  cleanup.push(async () => { killGroup(sh); await Promise.race([gone, sleep(4000)]); });
  const r = await cpuWindow(`${FIDELITY.agentSenders} twping processes`, sh.pid!, reflector, () => sh.exitCode === null);
  if (!isErr(r)) {
    const pids = descendantPids(sh.pid!);
    r.perf = await perfProfile(pids, FIDELITY.perfS).catch((e: Error) => ({ skipped: `perf failed: ${e.message}` }));
  }
  killGroup(sh);
  await Promise.race([gone, sleep(4000)]);
  return r;
}

export async function fidelity(peers: Peers | undefined, twampdMissing: string | undefined, log: (s: string) => void,
  c: Array<() => Promise<void>>, out: FidelityPart): Promise<FidelityPart> {
  const refl = forkChild('reflectorChild.js', ['100']);
  c.push(() => refl.stop());
  const { port: oursPort } = await refl.next<{ port: number }>('ready', 10_000);

  if (peers) {
    let d: Twampd | undefined;
    try {
      d = await startTwampd(peers, { authmode: 'O' });
      const twampd = d;
      for (let i = 0; i < FIDELITY.rounds; i++) {
        const round: FidelityRound = { ours: { error: 'not run' }, twpingTwampd: { error: 'not run' }, twpingOurs: { error: 'not run' } };
        const steps: Array<[string, () => Promise<void>]> = [
          ['our probe → twampd', async () => { const r = await ourProbe(twampd.port); round.ours = r.rtt; round.timestamps = r.timestamps; }],
          ['twping → twampd', async () => { round.twpingTwampd = await twpingRtt(peers, twampd.target); }],
          ['twping → our reflector', async () => { round.twpingOurs = await twpingRtt(peers, `127.0.0.1:${oursPort}`); }],
        ];
        // Interleaved: each round starts with another of the three, so a slow phase of the machine is shared.
        for (let k = 0; k < steps.length; k++) {
          const [name, fn] = steps[(i + k) % steps.length]!;
          log(`fidelity: round ${i + 1}/${FIDELITY.rounds}: ${name} (${FIDELITY.packets} × g711 at ${FIDELITY.ratePps} pps)`);
          await fn();
        }
        out.rounds.push(round);
      }
    } finally {
      await d?.stop();
    }
  } else {
    log(`fidelity: round-trip comparison skipped: ${twampdMissing ?? 'peers not built'}`);
  }

  log(`fidelity: departure error of the sender's scheduler (${FIDELITY.departureVariants.join('; ')})`);
  try {
    const dep = await runDepartureBench({ log: () => undefined, variants: FIDELITY.departureVariants, cpu: false });
    out.departure = dep.departures;
    out.departureNative = dep.native;
  } catch (e) {
    out.departure = { error: (e as Error).message };
  }
  log('fidelity: the host\'s timer wake-up latency at the same rates (cyclictest, normal and SCHED_FIFO 10)');
  out.timerBaseline = await timerLatencyBaseline().catch((e: Error) => ({ error: e.message }));

  log(`fidelity: CPU of an agent with ${FIDELITY.agentSenders} g711 senders against our reflector (${FIDELITY.cpuWarmupS} s warm-up, ${FIDELITY.cpuWindowS} s window)`);
  out.agent = await agentCpu(oursPort, refl, c).catch((e: Error) => ({ error: e.message }));
  if (peers) {
    log(`fidelity: CPU of ${FIDELITY.agentSenders} twping processes against our reflector (same window)`);
    out.twpingCpu = await twpingCpu(peers, oursPort, refl, c).catch((e: Error) => ({ error: e.message }));
  } else {
    out.twpingCpu = { skipped: twampdMissing ?? 'twping not built' };
  }
  log(`fidelity: the host's floor: a C program with the same ${FIDELITY.agentSenders} senders doing only wake-up, send and receive (grids ${FIDELITY.floorGridsUs.join(', ')} µs)`);
  out.floor = await floorCpu(c).catch((e: Error) => ({ error: e.message }));
  return out;
}

export function emptyFidelity(): FidelityPart {
  return { rounds: [], departure: [], departureNative: false, timerBaseline: { error: 'not run' }, agent: { error: 'not run' }, twpingCpu: { error: 'not run' }, floor: { error: 'not run' } };
}

// ------------------------------------------------------------- report
const us = (v: number | undefined): string => fmt(v, 1);
function range(xs: number[], digits = 1): string {
  if (xs.length === 0) return 'n/a';
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return lo === hi || xs.length === 1 ? fmt(lo, digits) : `${fmt(lo, digits)}–${fmt(hi, digits)}`;
}
const ok = <T>(x: T | Failed): x is T => !isErr(x);

export function fidelityReport(f: FidelityPart, stopped?: string): string {
  const out: string[] = [];
  out.push(`4. Fidelity — IPv4 loopback; ${FIDELITY.rounds} interleaved rounds of ${FIDELITY.packets} g711-sized packets ` +
    `(200 octets at IP level) at ${FIDELITY.ratePps} pps; µs; ranges over the rounds`);
  if (stopped) out.push(`   STOPPED EARLY: ${stopped}; rows below are those that finished`);
  const ts = f.rounds.map((r) => r.timestamps).find((t) => t);
  out.push(`   timestamp source of our probe: ${ts ? `${ts.source} (T1 ${ts.t1}, T4 ${ts.t4}; datapath ${ts.datapath}, pacing ${ts.pacing})` : 'unknown'}`);
  if (f.rounds.length === 0) {
    out.push('   round-trip comparison: n/a (perfSONAR twampd/twping not built or the part failed)');
  } else {
    const rows = [['round trip', 'min (µs)', 'median (µs)', 'p99 (µs)', 'lost', 'per round: median']];
    const line = (name: string, pick: (r: FidelityRound) => RttFigures | Failed): void => {
      const v = f.rounds.map(pick);
      const good = v.filter(ok);
      const fails = v.filter(isErr);
      rows.push([name, range(good.map((x) => x.minUs)), range(good.map((x) => x.medianUs)), range(good.map((x) => x.p99Us)),
        range(good.map((x) => x.lost), 0),
        v.map((x) => (ok(x) ? us(x.medianUs) : 'FAILED')).join(' / ') + (fails.length ? ` (${fails[0]!.error.slice(0, 80)})` : '')]);
    };
    line('our probe → twampd', (r) => r.ours);
    line('twping → twampd (baseline)', (r) => r.twpingTwampd);
    line('twping → our reflector', (r) => r.twpingOurs);
    out.push(table(rows));
    const ratios = (a: (r: FidelityRound) => RttFigures | Failed, b: (r: FidelityRound) => RttFigures | Failed, k: keyof RttFigures): number[] =>
      f.rounds.flatMap((r) => { const x = a(r); const y = b(r); return ok(x) && ok(y) && y[k] > 0 ? [x[k] / y[k]] : []; });
    const rr = (a: (r: FidelityRound) => RttFigures | Failed, b: (r: FidelityRound) => RttFigures | Failed): string =>
      (['minUs', 'medianUs', 'p99Us'] as const).map((k) => range(ratios(a, b, k), 2)).join(' / ');
    out.push(`   ratio ours ÷ theirs, min / median / p99 (per-round ratios, range):`);
    out.push(`     sender    (our probe ÷ twping, both → twampd):           ${rr((r) => r.ours, (r) => r.twpingTwampd)}`);
    out.push(`     reflector (twping → ours ÷ twping → twampd):            ${rr((r) => r.twpingOurs, (r) => r.twpingTwampd)}`);
    out.push('   twping round trips from its -R raw NTP timestamps ((T4−T1) − (T3−T2)), same nearest-rank quantiles as ours');
  }

  out.push('');
  out.push(`   departure error of the sender's scheduler (sent − deadline; TX = kernel TX timestamp − deadline), µs` +
    `${f.departureNative ? '' : ' — NATIVE DATAPATH UNAVAILABLE: JS fallbacks only'}`);
  if (isErr(f.departure)) {
    out.push(`   FAILED: ${f.departure.error}`);
  } else {
    const rows = [['variant', 'rate (pps)', 'packets', 'p50', 'p99', 'max', 'TX p50', 'TX p99', 'spin % of wall']];
    for (const d of f.departure) {
      rows.push([d.variant, fmtInt(d.ratePps), fmtInt(d.packets), us(d.p50Us), us(d.p99Us), us(d.maxUs),
        d.txP50Us === undefined ? '-' : us(d.txP50Us), d.txP99Us === undefined ? '-' : us(d.txP99Us),
        d.spinPercent === undefined ? '-' : fmt(d.spinPercent, 2)]);
    }
    out.push(table(rows));
  }
  out.push('');
  out.push('   host timer wake-up latency, same run (cyclictest --laptop -t1, absolute clock_nanosleep: how late a thread runs ' +
    'after its deadline), µs, next to our departure p99 (÷ cyclictest p99 at the same priority)');
  const tb = f.timerBaseline;
  if ('skipped' in tb) {
    out.push(`   cyclictest MISSING — no baseline: ${tb.skipped}`);
  } else if (isErr(tb)) {
    out.push(`   cyclictest FAILED: ${tb.error}`);
  } else {
    const deps = isErr(f.departure) ? [] : f.departure;
    const natives = [...new Set(deps.filter((d) => d.variant.startsWith('native')).map((d) => d.variant))];
    const rows = [['rate', 'cyclictest p50 / p99 / max', 'SCHED_FIFO 10: p50 / p99 / max', ...natives.map((v) => `${v}: p99 (ratio)`)]];
    for (const { intervalUs } of CYCLICTEST_RUNS) {
      const rate = Math.round(1e6 / intervalUs);
      const c = (prio: number): TimerLatency | undefined => tb.find((x) => x.intervalUs === intervalUs && x.priority === prio);
      const cs = (x: TimerLatency | undefined): string => (x ? `${fmtInt(x.p50Us)} / ${fmtInt(x.p99Us)} / ${fmtInt(x.maxUs)} (n ${x.samples})` : 'n/a');
      rows.push([`${fmtInt(rate)} pps`, cs(c(0)), cs(c(10)), ...natives.map((v) => {
        const d = deps.find((x) => x.variant === v && x.ratePps === rate);
        const base = c(v.includes('SCHED_FIFO') ? 10 : 0);
        return d ? `${us(d.p99Us)} (${base && base.p99Us > 0 ? fmt(d.p99Us / base.p99Us, 2) : 'n/a'})` : '-';
      })]);
    }
    out.push(table(rows));
    out.push('   (cyclictest runs at µs resolution; a ratio < 1 means the early wake-up and spin beat the bare timer)');
  }

  out.push('');
  out.push(`   CPU, ${FIDELITY.agentSenders} g711 senders against our reflector (own process), ${FIDELITY.cpuWindowS} s window after ` +
    `${FIDELITY.cpuWarmupS} s warm-up, whole process tree, /proc/<pid>/stat`);
  const cpuRow = (x: AgentCpu | Failed | { skipped: string }, name: string): string[] =>
    'skipped' in x ? [name, `n/a: ${x.skipped.slice(0, 60)}`] : isErr(x) ? [name, `FAILED: ${x.error.slice(0, 160)}`]
      : [name, fmt(x.cpuPercent, 1), fmtInt(x.packetsReflected), fmt(x.msPer1000, 2)];
  out.push(table([['sender', 'CPU % of one core', 'packets reflected in window', 'CPU ms / 1,000 packets'],
    cpuRow(f.agent, `otel-twamp agent, ${FIDELITY.agentSenders} twamp_sender collectors`),
    cpuRow(f.twpingCpu, `${FIDELITY.agentSenders} perfSONAR twping processes (baseline)`),
    ...(Array.isArray(f.floor) ? f.floor.map((x) => cpuRow(x, `${x.what} (${fmtInt(x.wakesPerS)} wake-ups/s)`))
      : [cpuRow(f.floor, 'C floor (bench/floor.c)')])]));
  const floor = Array.isArray(f.floor) ? f.floor.find((x) => x.gridUs === 0) : undefined;
  if (ok(f.agent) && floor && floor.cpuPercent > 0) {
    out.push(`   agent ÷ C floor: CPU % ${fmt(f.agent.cpuPercent / floor.cpuPercent, 2)}; the floor does per packet only what ` +
      'no paced sender can skip (timed wake-up, clock read, send, receive): below it needs fewer wake-ups, not less code');
  }
  if (ok(f.agent) && !('skipped' in f.twpingCpu) && ok(f.twpingCpu) && f.twpingCpu.cpuPercent > 0) {
    out.push(`   ratio ours ÷ twping: CPU % ${fmt(f.agent.cpuPercent / f.twpingCpu.cpuPercent, 2)}, ` +
      `CPU per packet ${f.twpingCpu.msPer1000 > 0 ? fmt(f.agent.msPer1000 / f.twpingCpu.msPer1000, 2) : 'n/a'} (> 1: we use more)`);
  }
  if (ok(f.agent) && f.agent.threads) {
    out.push(`   agent per thread (user + system % of one core): ${f.agent.threads.map((t) =>
      `${t.group} ${fmt(t.userPercent, 1)} + ${fmt(t.sysPercent, 1)}`).join('; ')}`);
  }
  out.push(...perfReport(f));
  out.push('   agent collectors send 450 packets every 10 s (busy ~90 % of the window); twping runs continuously');
  return out.join('\n');
}

/** The perf attribution of both sides, scaled to each side's /proc CPU of its window. */
function perfReport(f: FidelityPart): string[] {
  const out: string[] = [];
  const prof = (x: AgentCpu | Failed | { skipped: string }): { cpu: number; p: PerfProfile } | string => {
    if ('skipped' in x) return `not run: ${x.skipped}`;
    if (isErr(x)) return 'n/a (the CPU window failed)';
    if (!x.perf) return 'not run';
    if ('skipped' in x.perf) return `SKIPPED: ${x.perf.skipped}`;
    return { cpu: x.cpuPercent, p: x.perf };
  };
  const a = prof(f.agent);
  const t = prof(f.twpingCpu);
  out.push('');
  out.push(`   where the CPU goes: perf record -g, ${FIDELITY.perfS} s right after each CPU window; each sample by its call chain, ` +
    'shares applied to the window\'s /proc CPU, % of one core');
  if (typeof a === 'string' && typeof t === 'string') {
    out.push(`   perf attribution ${a.startsWith('SKIPPED') ? a : `agent ${a}; twping ${t}`}`);
    return out;
  }
  const col = (x: typeof a, k: keyof PerfProfile['shares']): string => (typeof x === 'string' ? '-' : fmt(x.cpu * x.p.shares[k], 2));
  const rows = [['category', 'agent', 'twping ×40']];
  for (const [k, label] of PERF_CATEGORIES) rows.push([label, col(a, k), col(t, k)]);
  const tstamp = (x: typeof a): string => (typeof x === 'string' ? '-' : fmt(x.cpu * x.p.txTimestampShare, 2));
  rows.push(['  of our send path: TX timestamp (__skb_tstamp_tx in the chain)', tstamp(a), tstamp(t)]);
  const excl = (x: typeof a): number | undefined => (typeof x === 'string' ? undefined : x.cpu * (1 - x.p.shares.peerRx - x.p.shares.sendPreempt));
  rows.push(['CPU excluding the loopback peer (its receive softirq and the preemption on send return)', fmt(excl(a), 2), fmt(excl(t), 2)]);
  const samples = (x: typeof a): string => (typeof x === 'string' ? x.slice(0, 40) : `${fmtInt(x.p.samples)} samples`);
  rows.push(['(perf samples; sampled CPU %)', `${samples(a)}${typeof a === 'string' ? '' : `; ${fmt(a.p.sampledCpuPercent, 1)}`}`,
    `${samples(t)}${typeof t === 'string' ? '' : `; ${fmt(t.p.sampledCpuPercent, 1)}`}`]);
  out.push(table(rows));
  const ea = excl(a);
  const et = excl(t);
  if (ea !== undefined && et !== undefined && et > 0) out.push(`   ratio ours ÷ twping excluding the loopback peer: ${fmt(ea / et, 2)}`);
  return out;
}
