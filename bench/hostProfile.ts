/**
 * What the host itself contributes to the fidelity figures (bench/fidelity.ts):
 *
 *  - Timer wake-up latency baseline: `cyclictest` (rt-tests) in the same run,
 *    one thread, absolute clock_nanosleep, at the departure bench's rates
 *    (50 Hz, 1 kHz, 10 kHz), normal priority and SCHED_FIFO 10, `--laptop`
 *    (it leaves /dev/cpu_dma_latency alone, as our scheduler thread does).
 *    Its latency is how late a thread runs after an absolute deadline: the
 *    departure error a scheduler without spinning cannot beat on this host.
 *  - Where a process tree's CPU goes, from `perf record -g` (root only):
 *    each sample's kernel call chain tells the loopback peer's receive path
 *    (the softirq that Linux runs inside our sendmsg on loopback:
 *    net_rx_action → process_backlog → __netif_receive_skb → ip_rcv → udp_rcv
 *    → the peer's socket and its wake-up) and the preemption on return from
 *    a send (the woken peer running on our CPU) from our own send path
 *    (udp_sendmsg … loopback_xmit, incl. the TX timestamp) and the rest. On a
 *    real network neither of the first two runs in the sender.
 *
 * Both say plainly when the tool is missing or we are not root. No pass/fail.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Run a command to completion, collecting stdout/stderr (bounded). */
function run(cmd: string, args: string[], timeoutMs: number, maxOut = 64 * 1024 * 1024): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const cp = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const outParts: Buffer[] = [];
    let outLen = 0;
    let err = '';
    cp.stdout.on('data', (b: Buffer) => { if (outLen < maxOut) { outParts.push(b); outLen += b.length; } });
    cp.stderr.on('data', (b: Buffer) => { err = (err + b.toString()).slice(-4000); });
    const t = setTimeout(() => cp.kill('SIGKILL'), timeoutMs);
    cp.once('error', (e) => { clearTimeout(t); resolve({ code: 127, out: '', err: err + String(e) }); });
    cp.once('close', (code) => { clearTimeout(t); resolve({ code, out: Buffer.concat(outParts).toString(), err }); });
  });
}

const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

function toolMissing(cmd: string, versionArgs: string[], install: string): string | undefined {
  if (process.platform !== 'linux') return `${cmd}: Linux only (${process.platform})`;
  const r = spawnSync(cmd, versionArgs, { stdio: 'ignore', timeout: 5000 });
  return r.error ? `${cmd} not installed (${install})` : undefined;
}

// ------------------------------------------------------------ cyclictest
export interface TimerLatency {
  /** Interval between wake-ups, µs (20,000 = 50 Hz). */
  intervalUs: number;
  /** 0: normal (SCHED_OTHER); else the SCHED_FIFO priority. */
  priority: number;
  samples: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

/** The rates of the departure bench (bench/departure.ts): interval µs and seconds to run. */
export const CYCLICTEST_RUNS: Array<{ intervalUs: number; seconds: number }> = [
  { intervalUs: 20_000, seconds: 6 }, { intervalUs: 1000, seconds: 2 }, { intervalUs: 100, seconds: 1 },
];

/** Quantiles from cyclictest's histogram (one line per µs: "latency count"); overflows count as the bound. */
export function parseCyclictest(out: string, boundUs: number): { samples: number; p50Us: number; p99Us: number; maxUs: number } | undefined {
  const hist: Array<[number, number]> = [];
  let overflow = 0;
  let max: number | undefined;
  for (const line of out.split('\n')) {
    const m = /^(\d+)\s+(\d+)\s*$/.exec(line);
    if (m) { const c = Number(m[2]); if (c > 0) hist.push([Number(m[1]), c]); continue; }
    const o = /^# Histogram Overflows:\s+(\d+)/.exec(line);
    if (o) overflow = Number(o[1]);
    const x = /^# Max Latencies:\s+(\d+)/.exec(line);
    if (x) max = Number(x[1]);
  }
  if (overflow > 0) hist.push([boundUs, overflow]);
  const n = hist.reduce((a, [, c]) => a + c, 0);
  if (n === 0) return undefined;
  hist.sort((a, b) => a[0] - b[0]);
  // Nearest rank, as src/measure/percentiles.ts.
  const q = (p: number): number => {
    const rank = Math.max(1, Math.ceil(p * n));
    let seen = 0;
    for (const [v, c] of hist) { seen += c; if (seen >= rank) return v; }
    return hist[hist.length - 1]![0];
  };
  return { samples: n, p50Us: q(0.5), p99Us: q(0.99), maxUs: max ?? hist[hist.length - 1]![0] };
}

/** cyclictest at the departure bench's rates, normal priority and SCHED_FIFO 10; or why not. */
export async function timerLatencyBaseline(priorities: number[] = [0, 10]): Promise<TimerLatency[] | { skipped: string }> {
  const missing = toolMissing('cyclictest', ['--help'], 'apt-get install rt-tests');
  if (missing) return { skipped: missing };
  if (priorities.some((p) => p > 0) && !isRoot()) priorities = priorities.filter((p) => p === 0);
  const bound = 10_000;
  const out: TimerLatency[] = [];
  for (const priority of priorities) {
    for (const { intervalUs, seconds } of CYCLICTEST_RUNS) {
      const args = ['-q', '--laptop', '-m', '-t1', '-D', String(seconds), '-i', String(intervalUs), '-h', String(bound), ...(priority > 0 ? ['-p', String(priority)] : [])];
      const r = await run('cyclictest', args, (seconds + 10) * 1000);
      const h = parseCyclictest(r.out, bound);
      if (!h) return { skipped: `cyclictest ${args.join(' ')}: exit ${r.code}, no histogram: ${r.err.trim().slice(-200)}` };
      out.push({ intervalUs, priority, ...h });
    }
  }
  return out;
}

// ------------------------------------------------------------ perf
/** CPU attribution categories, in the order they are tested on each sample. */
export const PERF_CATEGORIES = [
  ['peerRx', 'loopback peer receive path (softirq in our send: net_rx_action … udp_rcv, peer wake-up)'],
  ['sendPreempt', 'preempted on return from a send (the woken peer ran on our CPU)'],
  ['send', 'our send path (send syscall … loopback_xmit)'],
  ['recv', 'receive and poll syscalls (recvmsg/recvmmsg/error queue/epoll)'],
  ['sleep', 'sleeping and waking (futex, nanosleep, scheduler)'],
  ['kernelOther', 'other kernel'],
  ['userSched', 'user space: twamp-sched thread (spin, stamping, bookkeeping)'],
  ['userMain', 'user space: main thread (event loop, JS)'],
  ['userOther', 'user space: other threads'],
] as const;
export type PerfCategory = (typeof PERF_CATEGORIES)[number][0];

export interface PerfProfile {
  /** Wall time of the recording, s, and the CPU the samples add up to, % of one core. */
  seconds: number;
  sampledCpuPercent: number;
  samples: number;
  /** Share of the samples per category, 0..1. */
  shares: Record<PerfCategory, number>;
  /** Share of the samples with __skb_tstamp_tx in the chain (part of `send`). */
  txTimestampShare: number;
}

const RX = /^(net_rx_action|process_backlog|__netif_receive_skb\w*|netif_receive_skb\w*|ip_rcv\w*|udp_rcv|__udp4_lib_rcv|udpv6_rcv)$/;
const SEND_K = /^(__sys_sendmsg|__sys_sendmmsg|__sys_sendto|___sys_sendmsg|udp_sendmsg|udpv6_sendmsg|tcp_sendmsg\w*|ip_output|__dev_queue_xmit|loopback_xmit)$/;
const SEND_U = /^(__libc_sendmsg|sendmsg|sendmmsg|__sendmmsg|__libc_sendto|sendto|__libc_send|send)$/;
const SWITCH = /^(exit_to_user_mode_loop|schedule|__schedule)$/;
const RECV_U = /^(__libc_recvmsg|recvmsg|__recvmmsg|recvmmsg|__libc_recvfrom|recvfrom|epoll_wait|epoll_pwait|__poll|poll|ppoll|select|__select|read)$/;
const SLEEP_U = /^(__futex_abstimed_wait_common\w*|__GI___lll_lock_wait\w*|__lll_lock_wait\w*|__GI___lll_lock_wake\w*|__lll_lock_wake\w*|clock_nanosleep\w*|__clock_nanosleep\w*|nanosleep|__nanosleep|pthread_cond_\w+|futex\w*|syscall)$/;

/** Attribute `perf script -F comm,tid,period,ip,sym,dso` output; `mainTids`: the main threads of the processes. */
export function attributePerfScript(text: string, mainTids: Set<number>): { samples: number; periodNs: number; byCat: Record<PerfCategory, number>; tstamp: number } {
  const byCat = Object.fromEntries(PERF_CATEGORIES.map(([k]) => [k, 0])) as Record<PerfCategory, number>;
  let samples = 0;
  let periodNs = 0;
  let tstamp = 0;
  for (const block of text.split(/\n\s*\n/)) {
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    if (lines.length === 0) continue;
    const head = lines[0]!.trim().split(/\s+/);
    if (head.length < 3) continue;
    const period = Number(head[head.length - 1]);
    const tid = Number(head[head.length - 2]);
    const comm = head.slice(0, -2).join(' ');
    if (!Number.isFinite(period) || !Number.isFinite(tid)) continue;
    const frames = lines.slice(1).map((l) => {
      const m = /^\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$/.exec(l);
      return m ? { sym: m[1]!.replace(/\+0x[0-9a-f]+$/, ''), kernel: m[2]!.includes('kernel') } : { sym: '', kernel: false };
    });
    samples++;
    periodNs += period;
    const kernel = frames[0]?.kernel ?? false;
    const ksyms = frames.filter((f) => f.kernel).map((f) => f.sym);
    const firstUser = frames.find((f) => !f.kernel)?.sym ?? '';
    let cat: PerfCategory;
    if (kernel && ksyms.some((s) => RX.test(s))) cat = 'peerRx';
    else if (kernel && (ksyms.some((s) => SEND_K.test(s)) || SEND_U.test(firstUser))) {
      cat = ksyms.some((s) => SWITCH.test(s)) ? 'sendPreempt' : 'send';
      if (ksyms.some((s) => /skb_tstamp_tx/.test(s))) tstamp++;
    } else if (kernel && RECV_U.test(firstUser)) cat = 'recv';
    else if (kernel && (SLEEP_U.test(firstUser) || ksyms.some((s) => /^(futex_wait|do_futex|hrtimer_nanosleep|do_nanosleep)$/.test(s)))) cat = 'sleep';
    else if (kernel) cat = 'kernelOther';
    else if (comm === 'twamp-sched') cat = 'userSched';
    else if (mainTids.has(tid)) cat = 'userMain';
    else cat = 'userOther';
    byCat[cat] += period;
  }
  return { samples, periodNs, byCat, tstamp };
}

/** Why perf profiling is not possible here, or undefined. */
export function perfUnavailable(): string | undefined {
  if (!isRoot()) return 'not root (perf record of another process needs it here)';
  return toolMissing('perf', ['--version'], 'install linux-perf / linux-tools');
}

/**
 * `perf record -g` of the given processes (all their threads) for `seconds`, attributed. `mainTids` are
 * the processes' main threads (their pids) for the user-space split.
 */
export async function perfProfile(pids: number[], seconds: number): Promise<PerfProfile | { skipped: string }> {
  const why = perfUnavailable();
  if (why) return { skipped: why };
  if (pids.length === 0) return { skipped: 'no process to profile' };
  const dir = mkdtempSync(join(tmpdir(), 'otel-twamp-bench-perf-'));
  try {
    const file = join(dir, 'perf.data');
    const t0 = Date.now();
    const rec = await run('perf', ['record', '-q', '-F', '997', '-g', '-o', file, '-p', pids.join(','), '--', 'sleep', String(seconds)], (seconds + 30) * 1000);
    const wall = (Date.now() - t0) / 1000;
    if (rec.code !== 0) return { skipped: `perf record exit ${rec.code}: ${rec.err.trim().slice(-200)}` };
    const sc = await run('perf', ['script', '-i', file, '-F', 'comm,tid,period,ip,sym,dso'], 120_000);
    if (sc.code !== 0) return { skipped: `perf script exit ${sc.code}: ${sc.err.trim().slice(-200)}` };
    const a = attributePerfScript(sc.out, new Set(pids));
    if (a.samples === 0) return { skipped: 'perf recorded no samples' };
    const shares = Object.fromEntries(PERF_CATEGORIES.map(([k]) => [k, a.byCat[k] / a.periodNs])) as Record<PerfCategory, number>;
    return { seconds: wall, sampledCpuPercent: (100 * a.periodNs) / 1e9 / seconds, samples: a.samples, shares, txTimestampShare: a.tstamp / a.samples };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
