// Oracle harness: a real Prometheus scrapes a fixed exposition from a loopback server
// and applies `metric_relabel_configs`; we read the stored series back over the HTTP API.
// One Prometheus process runs every rule set at once, one scrape job per rule set.

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Labels, RelabelRule } from '../../src/otel/relabel.js';

export interface Series {
  name: string;
  labels: Labels;
  value: number;
}

/** TWAMP-like series; one has an empty label value, names and values vary in case. */
export const ORACLE_EXPOSITION = `# TYPE twamp_rt_avg_delay_ns gauge
twamp_rt_avg_delay_ns{reflector="10.0.0.1",collector="twamp_sender",host="a",zone="eu-1"} 1500000
twamp_rt_avg_delay_ns{reflector="10.0.0.2",collector="twamp_sender",host="b",zone="US-East"} 2500000
# TYPE twamp_rt_min_delay_ns gauge
twamp_rt_min_delay_ns{reflector="10.0.0.1",collector="twamp_sender",host="a",zone="eu-1"} 900000
# TYPE twamp_rt_max_delay_ns gauge
twamp_rt_max_delay_ns{reflector="10.0.0.1",collector="twamp_sender",host="a",zone="eu-1"} 3100000
# TYPE twamp_rt_jitter_avg_ns gauge
twamp_rt_jitter_avg_ns{reflector="10.0.0.2",collector="twamp_sender",host="b",zone="US-East"} 120000
# TYPE twamp_tx_packets counter
twamp_tx_packets{reflector="10.0.0.1",collector="twamp_sender",host="a",zone="eu-1",service="voip"} 200
twamp_tx_packets{reflector="10.0.0.2",collector="twamp_sender",host="b",zone="US-East",service="Video"} 400
# TYPE twamp_rx_packets counter
twamp_rx_packets{reflector="10.0.0.1",collector="twamp_sender",host="a",zone="eu-1",service="voip"} 198
# TYPE twamp_loss_ratio gauge
twamp_loss_ratio{reflector="10.0.0.1",collector="twamp_sender",host="a",zone="eu-1",service=""} 0.01
# TYPE twamp_mos gauge
twamp_mos{reflector="10.0.0.1",collector="twamp_sender",host="a",zone="eu-1",model="g711"} 4.39
# TYPE twamp_reflector_reflected_packets counter
twamp_reflector_reflected_packets{collector="twamp_reflector",host="a",peer="10.0.0.9",zone="eu-1"} 1234
# TYPE twamp_session_state gauge
twamp_session_state{reflector="10.0.0.2",collector="twamp_sender",host="b",zone="b",state="Active"} 1
`;

/** Parses the simple text exposition above (no escapes inside label values). */
export function parseExposition(text: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Labels = {};
    for (const lm of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) {
      labels[lm[1]!] = lm[2]!;
    }
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Path of the prometheus binary (PROMETHEUS_BIN alone if set, else PATH, then /usr/bin), or undefined. */
/** SIGTERM a child still running and wait for its exit; SIGKILL after 3 s. */
export async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 3000);
  await gone;
  clearTimeout(t);
}

export function findPrometheus(): string | undefined {
  const explicit = process.env.PROMETHEUS_BIN;
  const candidates = explicit
    ? [explicit]
    : [...(process.env.PATH ?? '').split(delimiter).map((d) => d && join(d, 'prometheus')), '/usr/bin/prometheus'];
  for (const c of candidates) {
    if (!c) continue;
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

export const PROMETHEUS_INSTALL_HINT =
  'prometheus not installed: apt-get install -y prometheus (Debian/Ubuntu), or set PROMETHEUS_BIN';

export interface OracleJob {
  /** Must be a valid label value and unique; becomes the job name `oracle_<name>`. */
  name: string;
  rules: RelabelRule[];
}

export interface JobResult {
  /** Value of Prometheus' `up` for the job (0 = the scrape failed as a whole). */
  up: number;
  /** `scrape_samples_post_metric_relabeling` of the last scrape. */
  samplesPostRelabel: number;
  /** Stored series, with the harness marker label removed. */
  series: Series[];
}

export interface OracleRun {
  results: Map<string, JobResult>;
  /** Prometheus' stderr (for failure messages). */
  log: string;
}

/** Label the harness appends last to tell the jobs apart after job/instance are dropped. */
export const MARKER = 'oracle_rule_set';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface PromVectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(base: string, q: string): Promise<PromVectorSample[]> {
  const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(q)}`, {
    signal: AbortSignal.timeout(2000),
  });
  const body = (await res.json()) as { status: string; data?: { result: PromVectorSample[] }; error?: string };
  if (body.status !== 'success' || !body.data) throw new Error(`query ${q}: ${body.error ?? res.status}`);
  return body.data.result;
}

/**
 * Runs every job's rules through Prometheus' metric_relabel_configs against
 * ORACLE_EXPOSITION and returns what Prometheus stored.
 *
 * Prometheus attaches the target labels (job, instance) *before* metric_relabel_configs
 * (scrape.go mutateSampleLabels), so honor_labels cannot remove them; instead each job's
 * rules are wrapped: a leading `labeldrop: job|instance` makes the rules see exactly the
 * exposed labels, and a trailing `replace` adds MARKER=<job name> so the jobs' series can
 * be told apart in one query. The marker is removed from the returned series.
 */
export async function runPrometheusOracle(
  bin: string,
  jobs: readonly OracleJob[],
  opts: { timeoutMs?: number; exposition?: string } = {},
): Promise<OracleRun> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const exposition = opts.exposition ?? ORACLE_EXPOSITION;
  const dir = mkdtempSync(join(tmpdir(), 'otel-twamp-prom-'));
  let server: Server | undefined;
  let child: ChildProcess | undefined;
  let log = '';
  try {
    server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(exposition);
    });
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(0, '127.0.0.1', () => resolve());
    });
    const target = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const webPort = await freePort();
    const config = {
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1m' },
      scrape_configs: jobs.map((j) => ({
        job_name: `oracle_${j.name}`,
        static_configs: [{ targets: [target] }],
        metric_relabel_configs: [
          { action: 'labeldrop', regex: 'job|instance' },
          ...j.rules,
          { target_label: MARKER, replacement: j.name },
        ],
      })),
    };
    // JSON is YAML: no YAML writer needed.
    const configFile = join(dir, 'prometheus.yml');
    writeFileSync(configFile, JSON.stringify(config, null, 1));
    child = spawn(
      bin,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${webPort}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let exited: string | undefined;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      if (log.length < 64 * 1024) log += d;
    });
    child.once('exit', (code, signal) => {
      exited = `prometheus exited (code ${code}, signal ${signal})`;
    });
    child.once('error', (e) => {
      exited = `prometheus failed to start: ${e.message}`;
    });

    const base = `http://127.0.0.1:${webPort}`;
    const deadline = Date.now() + timeoutMs;
    const want = new Set(jobs.map((j) => `oracle_${j.name}`));
    for (;;) {
      if (exited) throw new Error(`${exited}\n${log}`);
      if (Date.now() > deadline) {
        throw new Error(`no scrape of every job within ${timeoutMs} ms\n${log}`);
      }
      await sleep(250);
      let report: PromVectorSample[];
      try {
        report = await query(base, '{__name__=~"up|scrape_samples_post_metric_relabeling"}');
      } catch {
        continue; // not listening yet
      }
      const seen = new Set(report.filter((s) => s.metric.__name__ === 'up').map((s) => s.metric.job));
      if (![...want].every((j) => seen.has(j))) continue;
      // A scrape's samples and its report are committed together, so everything is in.
      const all = await query(base, `{${MARKER}!=""}`);
      const results = new Map<string, JobResult>();
      for (const j of jobs) results.set(j.name, { up: NaN, samplesPostRelabel: NaN, series: [] });
      for (const s of report) {
        const r = results.get(s.metric.job!.slice('oracle_'.length));
        if (!r) continue;
        if (s.metric.__name__ === 'up') r.up = Number(s.value[1]);
        else r.samplesPostRelabel = Number(s.value[1]);
      }
      for (const s of all) {
        const { __name__: name, [MARKER]: set, ...labels } = s.metric;
        const r = results.get(set!);
        if (!r) throw new Error(`series from unknown rule set: ${JSON.stringify(s.metric)}`);
        r.series.push({ name: name ?? '', labels, value: Number(s.value[1]) });
      }
      return { results, log };
    }
  } finally {
    await stopChild(child);
    if (server) await new Promise<void>((r) => server!.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Canonical text of a series set (sorted), for deep-equal comparisons and readable diffs. */
export function canonical(series: readonly Series[], withValues = true): string[] {
  const lines = new Set<string>();
  for (const s of series) {
    const ls = Object.keys(s.labels)
      .sort()
      .map((k) => `${k}=${JSON.stringify(s.labels[k])}`)
      .join(',');
    lines.add(`${s.name}{${ls}}${withValues ? ` ${s.value}` : ''}`);
  }
  return [...lines].sort();
}

/**
 * Prometheus keeps the first sample when relabeling maps two series of one scrape onto
 * the same label set (the second is a duplicate for the timestamp); do the same.
 */
export function dedupeFirst(series: readonly Series[]): Series[] {
  const seen = new Set<string>();
  const out: Series[] = [];
  for (const s of series) {
    const key = canonical([s], false)[0]!;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(s);
  }
  return out;
}

/** Drops `__`-prefixed labels: Prometheus stores them after metric relabeling, the engine strips them. */
export function withoutReservedLabels(series: readonly Series[]): Series[] {
  return series.map((s) => ({
    ...s,
    labels: Object.fromEntries(Object.entries(s.labels).filter(([k]) => !k.startsWith('__'))),
  }));
}
