/**
 * Mesh section of `npm run bench` (`npm run bench -- --only mesh` runs it
 * alone): one agent process (`otel-twamp agent`) given a mesh of 201 members
 * — itself and 200 reflector members — runs 200 senders (docs/configuration.md
 * "Mesh"). The 200 members are 200 reflectors, one per loopback address
 * 127.0.1.1–127.0.1.200, in one process of their own (bench/meshReflectorsChild.ts)
 * with their default limits: each sees one client holding one connection.
 *
 * The test is the issue's voice template: g711, 50 packets every 10 s per
 * sender, each started at its own offset in the interval (hash of its id), so
 * ~20 sessions start per second and ~1,000 packets per second leave the agent.
 * After the mesh is applied and a warm-up, over a fixed window:
 *  - CPU of the agent process (% of one core, user+system from /proc/<pid>/stat),
 *  - its RSS (/proc/<pid>/status VmRSS, sampled every second: mean and max),
 *  - the departure error p99 each session exports
 *    (twamp_sender_departure_error_p99_ns, native scheduler only), over all
 *    sessions of the window: median, p90 and max of the per-session p99s,
 *  - sessions run and failed (twamp_sender_runs_total, _errors_total), sessions
 *    and packets the reflectors saw, refusals (must be 0).
 * Two windows: one where nothing scrapes the agent (its figures are read at
 * the end), one where it is scraped every 10 s as Prometheus would (the
 * scrapes are part of its CPU). Baseline in the same run: the same agent with
 * a mesh of 21 (20 senders), one window, so what grows with the number of
 * senders shows apart from what the machine does. Reports only, no pass/fail.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort, repoRoot } from '../test/helpers/peers.js';
import { quantile, sortedSamples } from '../src/measure/percentiles.js';
import { forkChild, sleep, fmt, fmtInt, table, cpuMsOfTree, MB, type BenchChild } from './lib.js';

export const MESH_SCALE = {
  reflectors: 200,
  /** Senders of the same-run baseline (a mesh of 21). */
  baseline: 20,
  prefix: '127.0.1.',
  test: { model: 'g711', n_packets: 50, interval: 10, reply_timeout: 1 },
  /** Seconds after the mesh is applied before the window: every sender has run at least once (offsets < interval). */
  warmupS: 15,
  windowS: 30,
  scrapeEveryS: 10,
};

interface Failed { error: string }
const isErr = (x: unknown): x is Failed => typeof x === 'object' && x !== null && 'error' in x;

export interface MeshWindow {
  /** Seconds between scrapes of the agent during the window; null: scraped only at its end. */
  scrapeEveryS: number | null;
  windowS: number;
  cpuPercent: number;
  rssMeanMb: number;
  rssMaxMb: number;
  /** Per-session departure error p99 over the window's sessions (as scraped), µs. */
  departureP99Us: { sessions: number; median: number; p90: number; max: number } | null;
  /** Median over the senders of their last round-trip average, µs. */
  rttAvgMedianUs: number | undefined;
  runs: number;
  runErrors: number;
  /** Seconds sessions waited for a slot under agent.max_concurrent_sessions / max_sessions_per_reflector (undefined: not exported). */
  queueWaitS: number | undefined;
  reflector: { sessionsStarted: number; reflectedPackets: number; droppedPackets: number; refused: number; refusedBy: Record<string, number>; rssMb: number; cpuPercent: number };
  /** Packets the reflectors reflected per second. */
  ppsReflected: number;
}

export interface MeshScalePart {
  /** The same agent with MESH_SCALE.baseline senders, same run: what changes with the number of senders. */
  baseline: MeshAgentRun | Failed;
  scale: MeshAgentRun;
}

export interface MeshAgentRun {
  members: number;
  senders: number | undefined;
  /** Agent start to "mesh: generation 1 applied" (expanding 201 × 200 pairs, starting 200 senders and a reflector), s. */
  applyS: number | undefined;
  windows: MeshWindow[];
  scrapes: number;
  scrapeMsMax: number;
  /** Largest /metrics answer, octets. */
  expositionOctets: number;
  /** Largest number of series in one /metrics answer. */
  expositionSeries: number;
}

export type MeshResult = MeshScalePart | Failed;

interface Sample { name: string; labels: Record<string, string>; value: number }

function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const lm of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) labels[lm[1]!] = lm[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

function rssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

const QUEUE_WAIT = 'twamp_agent_session_queue_wait_seconds_total';
const sum = (xs: Sample[], name: string): number => xs.filter((s) => s.name === name).reduce((a, s) => a + s.value, 0);

export async function meshScale(log: (s: string) => void, cleanup: Array<() => Promise<void>>): Promise<MeshScalePart> {
  const n = MESH_SCALE.reflectors;
  const refl = forkChild('meshReflectorsChild.js', [String(n), MESH_SCALE.prefix]);
  cleanup.push(() => refl.stop());
  const { port } = await refl.next<{ port: number }>('ready', 30_000);
  const stats = () => refl.request<Stats>({ type: 'stats' }, 'stats', 5000);

  const dir = mkdtempSync(join(tmpdir(), 'otel-twamp-bench-mesh-'));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  const ctx = { log, cleanup, port, stats, dir, refl };
  log(`mesh: baseline: mesh of ${MESH_SCALE.baseline + 1} (${MESH_SCALE.baseline} senders), one window not scraped`);
  const baseline = await runAgent(MESH_SCALE.baseline, [undefined], ctx).catch((e: Error) => ({ error: e.message }));
  log(`mesh: mesh of ${n + 1} (${n} senders), a window not scraped, then one scraped every ${MESH_SCALE.scrapeEveryS} s`);
  const scale = await runAgent(n, [undefined, MESH_SCALE.scrapeEveryS], ctx);
  return { baseline, scale };
}

type Stats = { sessionsStarted: number; reflectedPackets: number; droppedPackets: number; refused: number; refusedBy: Record<string, number>; rss: number };
interface RunContext {
  log: (s: string) => void;
  cleanup: Array<() => Promise<void>>;
  /** The reflector members' TCP port. */
  port: number;
  stats: () => Promise<Stats>;
  dir: string;
  refl: BenchChild;
}

/** One agent with a mesh of n + 1 (itself and the first n reflector members), measured over `windows`; stopped at the end. */
async function runAgent(n: number, windows: Array<number | undefined>, ctx: RunContext): Promise<MeshAgentRun> {
  const { cleanup, port, dir } = ctx;
  const selfPort = await freePort();
  const metricsPort = await freePort();
  const t = MESH_SCALE.test;
  const members = [`  - {name: a0, address: 127.0.0.1, port: ${selfPort}, listen: 127.0.0.1}`,
    ...Array.from({ length: n }, (_, i) => `  - {name: r${i + 1}, address: ${MESH_SCALE.prefix}${i + 1}, port: ${port}}`)];
  writeFileSync(join(dir, `mesh-${n}.yaml`), [
    'tests:', `  voice: {model: ${t.model}, n_packets: ${t.n_packets}, interval: ${t.interval}, reply_timeout: ${t.reply_timeout}}`,
    'members:', ...members,
    'groups:', `  - {type: mesh, members: [a0, ${Array.from({ length: n }, (_, i) => `r${i + 1}`).join(', ')}], test: voice}`, ''].join('\n'));
  const file = join(dir, `agent-${n}.yaml`);
  writeFileSync(file, ['$version: "1.0"', `sender: { listen: "127.0.0.1:${metricsPort}" }`,
    `mesh: { source: mesh-${n}.yaml, self: a0, interval: 60 }`, ''].join('\n'));

  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OTEL_')));
  const t0 = Date.now();
  const agent: ChildProcess = spawn(process.execPath, [join(repoRoot(), 'dist', 'src', 'cli', 'main.js'), 'agent', '--config', file, '--log-level', 'info'],
    { stdio: ['ignore', 'ignore', 'pipe'], env });
  const killNow = (): void => { try { agent.kill('SIGKILL'); } catch { /* gone */ } };
  process.once('exit', killNow);
  const gone = new Promise<void>((r) => agent.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    process.removeListener('exit', killNow);
    if (agent.exitCode !== null || agent.signalCode !== null) return;
    agent.kill('SIGTERM');
    const k = setTimeout(killNow, 4000);
    await Promise.race([gone, sleep(6000)]);
    clearTimeout(k);
  };
  cleanup.push(stop);
  try {
    return await measureAgent(n, windows, ctx, agent, metricsPort, t0);
  } finally {
    await stop();
  }
}

async function measureAgent(n: number, windows: Array<number | undefined>, ctx: RunContext, agent: ChildProcess,
  metricsPort: number, t0: number): Promise<MeshAgentRun> {
  const { log, stats, refl } = ctx;
  let applied: number | undefined;
  let tail = '';
  createInterface({ input: agent.stderr! }).on('line', (l) => {
    tail = `${tail}\n${l}`.slice(-2000);
    if (applied === undefined && l.includes('mesh: generation 1 applied')) applied = Date.now();
  });
  const alive = () => agent.exitCode === null && agent.signalCode === null;
  const deadline = Date.now() + 30_000;
  while (applied === undefined) {
    if (!alive()) throw new Error(`the agent exited before applying the mesh: ${tail.trim().slice(-600)}`);
    if (Date.now() > deadline) throw new Error(`the agent did not apply the mesh within 30 s: ${tail.trim().slice(-600)}`);
    await sleep(100);
  }
  const applyS = (applied - t0) / 1000;
  log(`mesh: ${n + 1} members applied ${applyS.toFixed(1)} s after start; warm-up ${MESH_SCALE.warmupS} s, window ${MESH_SCALE.windowS} s`);

  let scrapes = 0;
  let scrapeMsMax = 0;
  let expositionOctets = 0;
  let expositionSeries = 0;
  const scrape = async (): Promise<Sample[]> => {
    const s0 = Date.now();
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    scrapes++;
    scrapeMsMax = Math.max(scrapeMsMax, Date.now() - s0);
    expositionOctets = Math.max(expositionOctets, Buffer.byteLength(text));
    if (res.status !== 200) throw new Error(`agent /metrics: HTTP ${res.status}`);
    const series = parse(text);
    expositionSeries = Math.max(expositionSeries, series.length);
    return series;
  };

  await sleep(MESH_SCALE.warmupS * 1000);
  if (!alive()) throw new Error(`the agent exited during the warm-up: ${tail.trim().slice(-600)}`);
  let last = await scrape();
  const senders = last.find((s) => s.name === 'twamp_mesh_senders')?.value;

  /** One window: scraped every `scrapeEveryS` (undefined: only at its end), the agent's CPU, RSS and the sessions' departure errors. */
  const window = async (scrapeEveryS: number | undefined): Promise<MeshWindow> => {
    const first = last;
    const c0 = cpuMsOfTree(agent.pid!);
    const r0 = await stats();
    const rc0 = cpuMsOfTree(refl.proc.pid!);
    if (c0 === undefined || rc0 === undefined) throw new Error('no /proc: CPU unavailable');
    const w0 = Date.now();
    const rss: number[] = [];
    // One departure p99 per session: a session is a sender id and its runs_total.
    const departure = new Map<string, number>();
    const collect = (xs: Sample[]): void => {
      const runs = new Map(xs.filter((s) => s.name === 'twamp_sender_runs_total').map((s) => [s.labels.collector_id, s.value]));
      for (const s of xs) {
        if (s.name !== 'twamp_sender_departure_error_p99_ns') continue;
        departure.set(`${s.labels.collector_id} ${runs.get(s.labels.collector_id) ?? '?'}`, s.value / 1000);
      }
    };
    let nextScrape = scrapeEveryS === undefined ? Infinity : w0 + scrapeEveryS * 1000;
    while (Date.now() - w0 < MESH_SCALE.windowS * 1000 - 500) {
      const v = rssBytes(agent.pid!);
      if (v !== undefined) rss.push(v);
      if (Date.now() >= nextScrape) {
        last = await scrape();
        collect(last);
        nextScrape += scrapeEveryS! * 1000;
      }
      await sleep(1000);
    }
    // A scraped window ends with its last scrape (one every scrapeEveryS, all inside the CPU reading);
    // the other is read first and scraped after.
    if (scrapeEveryS !== undefined) { last = await scrape(); collect(last); }
    const c1 = cpuMsOfTree(agent.pid!);
    const rc1 = cpuMsOfTree(refl.proc.pid!);
    const r1 = await stats();
    const wall = Date.now() - w0;
    if (scrapeEveryS === undefined) { last = await scrape(); collect(last); }
    if (c1 === undefined || rc1 === undefined || !alive()) throw new Error(`the agent exited during the window: ${tail.trim().slice(-600)}`);
    const dep = sortedSamples([...departure.values()]);
    const rtt = sortedSamples(last.filter((s) => s.name === 'twamp_rt_avg_delay_ns').map((s) => s.value / 1000));
    const refusedBy: Record<string, number> = {};
    for (const [k, v] of Object.entries(r1.refusedBy)) if (v - (r0.refusedBy[k] ?? 0) > 0) refusedBy[k] = v - (r0.refusedBy[k] ?? 0);
    return {
      scrapeEveryS: scrapeEveryS ?? null, windowS: wall / 1000,
      cpuPercent: (100 * (c1 - c0)) / wall,
      rssMeanMb: rss.reduce((a, b) => a + b, 0) / Math.max(rss.length, 1) / MB,
      rssMaxMb: Math.max(...rss) / MB,
      departureP99Us: dep.length === 0 ? null : { sessions: dep.length, median: quantile(dep, 0.5)!, p90: quantile(dep, 0.9)!, max: dep[dep.length - 1]! },
      rttAvgMedianUs: rtt.length === 0 ? undefined : quantile(rtt, 0.5),
      runs: sum(last, 'twamp_sender_runs_total') - sum(first, 'twamp_sender_runs_total'),
      runErrors: sum(last, 'twamp_sender_errors_total') - sum(first, 'twamp_sender_errors_total'),
      queueWaitS: last.some((s) => s.name === QUEUE_WAIT) ? sum(last, QUEUE_WAIT) - sum(first, QUEUE_WAIT) : undefined,
      reflector: {
        sessionsStarted: r1.sessionsStarted - r0.sessionsStarted, reflectedPackets: r1.reflectedPackets - r0.reflectedPackets,
        droppedPackets: r1.droppedPackets - r0.droppedPackets, refused: r1.refused - r0.refused, refusedBy,
        rssMb: r1.rss / MB, cpuPercent: (100 * (rc1 - rc0)) / wall,
      },
      ppsReflected: ((r1.reflectedPackets - r0.reflectedPackets) * 1000) / wall,
    };
  };
  const results: MeshWindow[] = [];
  for (const [k, every] of windows.entries()) {
    log(`mesh: ${n} senders: window ${k + 1}/${windows.length}: ${every === undefined ? 'not scraped' : `scraped every ${every} s`} (${MESH_SCALE.windowS} s)`);
    results.push(await window(every));
  }
  return { members: n + 1, senders, applyS, windows: results, scrapes, scrapeMsMax, expositionOctets, expositionSeries };
}

export function meshReport(m: MeshResult): string {
  const t = MESH_SCALE.test;
  const out = [`5. Mesh scale — one agent process, mesh of ${MESH_SCALE.reflectors + 1} (itself + ${MESH_SCALE.reflectors} reflector members ` +
    `on ${MESH_SCALE.prefix}1–${MESH_SCALE.reflectors}, one reflector each with default limits, all in one process), ` +
    `test ${t.model} × ${t.n_packets} every ${t.interval} s; ${MESH_SCALE.windowS} s windows after ${MESH_SCALE.warmupS} s warm-up; ` +
    `baseline: the same with ${MESH_SCALE.baseline} senders`];
  if (isErr(m)) {
    out.push(`   FAILED: ${m.error}`);
    return out.join('\n');
  }
  const runs: Array<[MeshAgentRun, MeshWindow]> = [];
  if (isErr(m.baseline)) out.push(`   baseline (${MESH_SCALE.baseline} senders) FAILED: ${m.baseline.error}`);
  else for (const w of m.baseline.windows) runs.push([m.baseline, w]);
  for (const w of m.scale.windows) runs.push([m.scale, w]);
  for (const r of [...new Set(runs.map(([r]) => r))]) {
    out.push(`   ${fmtInt(r.senders)} senders (twamp_mesh_senders) of a mesh of ${r.members}: applied ${fmt(r.applyS, 1)} s after the agent started; ` +
      `/metrics ${fmtInt(r.expositionSeries)} series in ${fmt(r.expositionOctets / MB, 2)} MB, slowest scrape ${fmtInt(r.scrapeMsMax)} ms`);
  }
  const col = ([r, w]: [MeshAgentRun, MeshWindow]) => `${r.senders ?? '?'} senders, ${w.scrapeEveryS === null ? 'not scraped' : `scraped every ${w.scrapeEveryS} s`}`;
  const rows: string[][] = [['', ...runs.map(col)]];
  const row = (name: string, f: (w: MeshWindow) => string) => rows.push([name, ...runs.map(([, w]) => f(w))]);
  row('agent CPU (% of one core, user+sys)', (w) => fmt(w.cpuPercent, 1));
  row('agent RSS mean / max (MB)', (w) => `${fmt(w.rssMeanMb)} / ${fmt(w.rssMaxMb)}`);
  row('departure error p99 per session: median / p90 / max (µs)', (w) => (w.departureP99Us
    ? `${fmt(w.departureP99Us.median)} / ${fmt(w.departureP99Us.p90)} / ${fmt(w.departureP99Us.max)}` : 'n/a (no native scheduler)'));
  row('sessions with a departure figure', (w) => fmtInt(w.departureP99Us?.sessions ?? 0));
  row('round trip (avg per sender), median (µs)', (w) => fmt(w.rttAvgMedianUs));
  row('runs / failed runs', (w) => `${fmtInt(w.runs)} / ${fmtInt(w.runErrors)}`);
  row('time sessions waited for a slot (s, agent session caps)', (w) => (w.queueWaitS === undefined ? 'n/a (not exported)' : fmt(w.queueWaitS, 2)));
  row('reflectors: sessions / packets / dropped', (w) => `${fmtInt(w.reflector.sessionsStarted)} / ${fmtInt(w.reflector.reflectedPackets)} / ${fmtInt(w.reflector.droppedPackets)}`);
  row('reflectors: refusals', (w) => (w.reflector.refused === 0 ? '0'
    : `${fmtInt(w.reflector.refused)} (${Object.entries(w.reflector.refusedBy).map(([k, v]) => `${k} ${v}`).join(', ')})`));
  row('packets reflected per second', (w) => fmt(w.ppsReflected, 0));
  row('reflector process: CPU % / RSS MB', (w) => `${fmt(w.reflector.cpuPercent, 1)} / ${fmt(w.reflector.rssMb)}`);
  out.push(table(rows));
  out.push(`   expected per window and sender: ${fmt(MESH_SCALE.windowS / t.interval, 0)} runs, ${fmtInt((MESH_SCALE.windowS * t.n_packets) / t.interval)} packets; ` +
    'a not-scraped window\'s departure figures are the last session of each sender (one scrape at its end)');
  return out.join('\n');
}
