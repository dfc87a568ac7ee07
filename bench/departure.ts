/**
 * Departure precision and CPU of scheduled sends (src/session/datapath.ts):
 * the native scheduler thread (absolute monotonic wait, timer slack 1 ns; with
 * and without SCHED_FIFO and a final spin) against, in the same run, the JS fallback (setTimeout)
 * and the busy-polling PacedSender (src/session/pacer.ts).
 *
 *  1. Departure error at 50 / 1,000 / 10,000 pps: sent − deadline, where
 *     "sent" is the CLOCK_MONOTONIC reading right before sendmsg (native) or
 *     send() (JS); for the native thread also the kernel TX timestamp against
 *     the deadline's realtime. The PacedSender has no absolute deadlines: its
 *     error is |actual − (first departure + seq · gap)|, as bench/run.ts does.
 *  2. CPU per second of wall time for 40 concurrent g711-rate schedules
 *     (50 pps each), process-wide (the shared native scheduler thread
 *     included; the sink is a child process, so its receive work is not
 *     counted).
 *
 * Reports only (no pass/fail). Run: `npx tsc -p tsconfig.json && node dist/bench/departure.js`;
 * `runDepartureBench()` returns the figures for bench/run.ts.
 */
import { openTestSocket, datapathSupport, schedulerStats, type DepartureReport, type TestSocket } from '../src/session/datapath.js';
import { PacedSender } from '../src/session/pacer.js';
import { systemClock } from '../src/session/clock.js';
import { createSocket } from 'node:dgram';
import { spawn } from 'node:child_process';

/**
 * A UDP sink in a child process, so the CPU figures count the sending side
 * only (its loopback receive work is the child's, not ours).
 */
async function childSink(): Promise<{ local: { port: number }; close: () => void }> {
  const child = spawn(process.execPath, ['-e',
    "const s=require('dgram').createSocket('udp4');s.on('message',()=>{});s.bind(0,'127.0.0.1',()=>console.log(s.address().port))"],
  { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((r) => child.stdout!.once('data', (b: Buffer) => r(Number(String(b).trim()))));
  return { local: { port }, close: () => { child.kill(); } };
}

export interface DepartureFigures {
  variant: string;
  ratePps: number;
  packets: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  /** Kernel TX timestamp − deadline (native only). */
  txP50Us?: number;
  txP99Us?: number;
  /** Native: time the scheduler thread spun, % of the run's wall time (schedulerStats). */
  spinPercent?: number;
}

/**
 * Native variants the fidelity section selects by name: SCHED_FIFO priority, schedulerSpinUs cap and
 * schedulerSpinBudgetUs (undefined: the default, 1 % of a core). The scheduler thread is process-wide and
 * SCHED_FIFO, once applied, stays for the process: runDepartureBench runs the normal-priority ones first.
 */
export const NATIVE_VARIANTS: Record<string, { prio: number; spinUs: number; budgetUs?: number }> = {
  'native, no spin (timer wake-up alone)': { prio: 0, spinUs: 0 },
  'native, sender default (spin ≤500µs, 1 % budget)': { prio: 0, spinUs: 500 },
  'native, SCHED_FIFO 10, spin ≤500µs, 1 % budget': { prio: 10, spinUs: 500 },
  'native, SCHED_FIFO 10, spin ≤200µs, no budget cap': { prio: 10, spinUs: 200, budgetUs: 1_000_000 },
};

export interface CpuFigures {
  variant: string;
  schedules: number;
  seconds: number;
  /** CPU time per second of wall time, percent of one core. */
  cpuPercent: number;
}

const LEAD_NS = 20_000_000n;

function q(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * (s.length - 1)))] ?? NaN;
}

async function sink(): Promise<TestSocket> {
  return openTestSocket({ family: 4, address: '127.0.0.1', onPackets: () => {}, txTimestamps: false });
}

/** Scheduled departures on one TestSocket at `rate` pps. */
async function scheduled(variant: string, native: boolean, prio: number, rate: number, packets: number, spinUs = 0, budgetUs?: number): Promise<DepartureFigures> {
  const dst = await sink();
  const reports: DepartureReport[] = [];
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => { done = r; });
  const s = await openTestSocket({
    family: 4, address: '127.0.0.1', native, schedulerPriority: prio, schedulerSpinUs: spinUs,
    ...(budgetUs !== undefined ? { schedulerSpinBudgetUs: budgetUs } : {}),
    onPackets: () => {},
    onDeparture: (d) => { reports.push(...d); if (reports.length >= packets) done(); },
  });
  // realtime − monotonic, to place deadlines on the TX timestamps' clock.
  const clock = systemClock();
  const offset = clock.nowUnixNs() - process.hrtime.bigint();
  const gap = 1e9 / rate;
  const start = process.hrtime.bigint() + LEAD_NS;
  const buf = Buffer.alloc(41);
  const st0 = native ? schedulerStats() : undefined;
  const w0 = process.hrtime.bigint();
  for (let i = 0; i < packets; i++) {
    s.schedule({ id: i, deadlineMonoNs: start + BigInt(Math.round(i * gap)), data: buf, address: '127.0.0.1', port: dst.local.port, stampOffset: 4 });
  }
  const timeout = setTimeout(done, Number(LEAD_NS / 1_000_000n) + (packets / rate) * 1000 + 5000);
  await finished;
  clearTimeout(timeout);
  const st1 = native ? schedulerStats() : undefined;
  const spinPercent = st0 && st1 ? (100 * (st1.spunNs - st0.spunNs)) / Number(process.hrtime.bigint() - w0) : undefined;
  await new Promise((r) => setTimeout(r, 30)); // late TX timestamps
  s.close();
  dst.close();
  const err = reports.map((r) => Number(r.sentMonoNs - r.deadlineMonoNs) / 1000);
  const tx = reports.filter((r) => r.txRealtimeNs !== undefined).map((r) => Number(r.txRealtimeNs! - (r.deadlineMonoNs + offset)) / 1000);
  return {
    variant, ratePps: rate, packets: reports.length, p50Us: q(err, 0.5), p99Us: q(err, 0.99), maxUs: q(err, 1),
    ...(tx.length > 0 ? { txP50Us: q(tx, 0.5), txP99Us: q(tx, 0.99) } : {}),
    ...(spinPercent !== undefined ? { spinPercent } : {}),
  };
}

/** The current busy-polling pacer, as bench/senderChild.ts drives it. */
async function paced(rate: number, packets: number): Promise<DepartureFigures> {
  const clock = systemClock();
  const dst = await sink();
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const actual = new Float64Array(packets);
  const gap = 1e9 / rate;
  const buf = Buffer.alloc(41);
  const base = clock.monoNs();
  await new PacedSender(clock).run(packets, (seq) => {
    actual[seq] = Number(clock.monoNs() - base);
    sock.send(buf, dst.local.port, '127.0.0.1');
    return gap;
  });
  sock.close();
  dst.close();
  const err: number[] = [];
  for (let i = 0; i < packets; i++) err.push(Math.abs(actual[i]! - actual[0]! - i * gap) / 1000);
  return { variant: 'PacedSender (busy-poll)', ratePps: rate, packets, p50Us: q(err, 0.5), p99Us: q(err, 0.99), maxUs: q(err, 1) };
}

async function cpu(variant: string, run: (n: number, seconds: number) => Promise<void>, n: number, seconds: number): Promise<CpuFigures> {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await run(n, seconds);
  const c = process.cpuUsage(c0);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  return { variant, schedules: n, seconds: wall, cpuPercent: ((c.user + c.system) / 1e6 / wall) * 100 };
}

/** n schedules of 50 pps for `seconds`, on TestSockets (native: one shared scheduler thread; or JS). */
async function manyScheduled(native: boolean, n: number, seconds: number, spinUs = 0, txTimestamps = true, budgetUs?: number): Promise<void> {
  const dst = await childSink();
  const per = 50 * seconds;
  const socks: TestSocket[] = [];
  let left = n * per;
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => { done = r; });
  for (let k = 0; k < n; k++) {
    socks.push(await openTestSocket({
      family: 4, address: '127.0.0.1', native, schedulerSpinUs: spinUs, txTimestamps, departureReportMs: 100, onPackets: () => {},
      ...(budgetUs !== undefined ? { schedulerSpinBudgetUs: budgetUs } : {}),
      onDeparture: (d) => { left -= d.length; if (left <= 0) done(); },
    }));
  }
  const start = process.hrtime.bigint() + LEAD_NS;
  const buf = Buffer.alloc(41);
  socks.forEach((s, k) => {
    const phase = BigInt(Math.round((k * 20_000_000) / n)); // spread the 20 ms g711 gaps
    for (let i = 0; i < per; i++) {
      s.schedule({ id: i, deadlineMonoNs: start + phase + BigInt(i) * 20_000_000n, data: buf, address: '127.0.0.1', port: dst.local.port, stampOffset: 4 });
    }
  });
  const t = setTimeout(done, seconds * 1000 + 5000);
  await finished;
  clearTimeout(t);
  for (const s of socks) s.close();
  dst.close();
}

async function manyPaced(n: number, seconds: number): Promise<void> {
  const clock = systemClock();
  const dst = await childSink();
  const buf = Buffer.alloc(41);
  const socks = await Promise.all(Array.from({ length: n }, () => new Promise<ReturnType<typeof createSocket>>((r) => {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1', () => r(s));
  })));
  await Promise.all(socks.map(async (s, k) => {
    await new Promise((r) => setTimeout(r, (k * 20) / n));
    await new PacedSender(clock).run(50 * seconds, () => {
      s.send(buf, dst.local.port, '127.0.0.1');
      return 20_000_000;
    });
  }));
  for (const s of socks) s.close();
  dst.close();
}

export async function runDepartureBench(opts: {
  log?: (s: string) => void;
  /** Only these variants (by name); all when absent. */
  variants?: string[];
  /** The 40-schedule CPU part; default true. */
  cpu?: boolean;
} = {}): Promise<{
  native: boolean; reason?: string; departures: DepartureFigures[]; cpu: CpuFigures[];
}> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const sup = datapathSupport();
  const departures: DepartureFigures[] = [];
  const cpuFigures: CpuFigures[] = [];
  const rates: [number, number][] = [[50, 150], [1000, 2000], [10_000, 10_000]];
  const keep = async (f: DepartureFigures | undefined): Promise<void> => { if (f) departures.push(f); };
  // Each variant at every rate; normal priority before SCHED_FIFO (which stays with the process-wide
  // thread once applied). The fidelity section of bench/run.ts selects some.
  const all = [...Object.keys(NATIVE_VARIANTS), 'JS setTimeout', 'PacedSender (busy-poll)'];
  const sel = [...(opts.variants ?? all)].sort((a, b) => (NATIVE_VARIANTS[a]?.prio ?? 0) - (NATIVE_VARIANTS[b]?.prio ?? 0));
  for (const v of sel) {
    for (const [rate, n] of rates) {
      const nv = NATIVE_VARIANTS[v];
      if (nv && sup.native) await keep(await scheduled(v, true, nv.prio, rate, n, nv.spinUs, nv.budgetUs));
      if (v === 'JS setTimeout') await keep(await scheduled('JS setTimeout', false, 0, rate, n));
      if (v === 'PacedSender (busy-poll)') await keep(await paced(rate, n));
    }
  }
  log('departure error, µs (sent − deadline; TX = kernel TX timestamp − deadline)');
  log(['variant'.padEnd(52), 'pps'.padStart(6), 'n'.padStart(6), 'p50'.padStart(9), 'p99'.padStart(9), 'max'.padStart(9), 'TX p50'.padStart(9), 'TX p99'.padStart(9), 'spin %'.padStart(7)].join(' '));
  for (const d of departures) {
    const f = (v: number | undefined, w = 9): string => (v === undefined ? '-' : v.toFixed(1)).padStart(w);
    log([d.variant.padEnd(52), String(d.ratePps).padStart(6), String(d.packets).padStart(6), f(d.p50Us), f(d.p99Us), f(d.maxUs), f(d.txP50Us), f(d.txP99Us), f(d.spinPercent, 7)].join(' '));
  }
  const seconds = 3;
  if (opts.cpu !== false && sup.native) {
    cpuFigures.push(await cpu('native thread', (n, s) => manyScheduled(true, n, s), 40, seconds));
    cpuFigures.push(await cpu('native thread, no TX timestamps', (n, s) => manyScheduled(true, n, s, 0, false), 40, seconds));
    cpuFigures.push(await cpu('native thread, spin ≤500µs, 1 % budget', (n, s) => manyScheduled(true, n, s, 500), 40, seconds));
    cpuFigures.push(await cpu('native thread, spin ≤500µs, no budget cap', (n, s) => manyScheduled(true, n, s, 500, true, 1_000_000), 40, seconds));
  }
  if (opts.cpu !== false) {
    cpuFigures.push(await cpu('JS setTimeout', (n, s) => manyScheduled(false, n, s), 40, seconds));
    cpuFigures.push(await cpu('PacedSender (busy-poll)', (n, s) => manyPaced(n, s), 40, seconds));
  }
  log(`CPU for 40 concurrent schedules at 50 pps (${seconds} s), % of one core`);
  for (const c of cpuFigures) log(`${c.variant.padEnd(44)} ${c.cpuPercent.toFixed(1).padStart(6)} %`);
  if (!sup.native) log(`native datapath unavailable: ${sup.reason}`);
  return { native: sup.native, ...(sup.native ? {} : { reason: sup.reason }), departures, cpu: cpuFigures };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runDepartureBench().then(() => process.exit(0), (e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
