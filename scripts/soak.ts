/**
 * Soak test: `npm run soak -- --minutes N [--senders 20]`.
 *
 * Runs an agent in-process, as `otel-twamp agent` would (src/cli/agent.ts):
 * one reflector, N healthy senders at short intervals with mixed traffic
 * models, two deliberately broken senders (connection refused, DNS failure)
 * and a Prometheus collection (PrometheusEndpoint.render()) every 5 s. Every
 * minute a handful of garbage and half-open control connections hit the
 * reflector too, so the refusal paths run as well.
 *
 * Every 10 s it samples memory after a forced GC; every minute it prints
 * RSS, heap used, active handles (process.getActiveResourcesInfo()), timers,
 * sessions run and failures. At the end: the slope of heap and RSS over the
 * second half (MB/min, least squares) and PASS when memory is flat:
 *   heap slope < 0.5 MB/min  and  final RSS ≤ 1.10 × RSS at the 5-minute mark
 * (for runs shorter than 10 min the reference is the half-way mark).
 * Failures of the healthy senders also fail the run. Exit 0 on PASS, 1 on FAIL.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { connect, createServer } from 'node:net';
import { Agent } from '../src/cli/agent.js';
import { parseAgentConfig } from '../src/config/load.js';
import { silentLogger, type Logger } from '../src/util/log.js';

interface Args { minutes: number; senders: number }

function parseArgs(argv: string[]): Args {
  const a: Args = { minutes: 32, senders: 20 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = Number(argv[i + 1]);
    if (k === '--minutes' && v > 0) { a.minutes = v; i++; } else if (k === '--senders' && Number.isInteger(v) && v > 0) { a.senders = v; i++; } else {
      process.stderr.write(`usage: npm run soak -- [--minutes N] [--senders N]  (bad argument ${JSON.stringify(k)})\n`);
      process.exit(2);
    }
  }
  return a;
}

/** A forced GC makes heap samples comparable (the npm script cannot pass --expose-gc). */
function gcFunction(): () => void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (() => void) | undefined;
  return typeof gc === 'function' ? gc : () => undefined;
}

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const a = s.address();
  const port = a && typeof a === 'object' ? a.port : 0;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const MODELS = [
  'model: g711',
  'model: g729',
  'model: cbr\n    bandwidth: 200000\n    size: 200',
  'model: imix\n    bandwidth: 500000',
];

function agentYaml(senders: number, refusedPort: number, promPort: number): string {
  const lines = [
    '$version: "1.0"',
    'agent:',
    '  host: soak',
    '  defaults:',
    '    interval: 5',
    'sender:',
    '  type: openmetrics',
    '  mode: pull',
    `  listen: "127.0.0.1:${promPort}"`,
    '  path: /metrics',
    'collectors:',
    '  - id: soak-reflector',
    '    type: twamp_reflector',
    '    listen: 127.0.0.1',
    '    port: 0',
    '    refwait: 10',
    '    servwait: 30',
  ];
  for (let i = 0; i < senders; i++) {
    lines.push(
      `  - id: soak-${String(i).padStart(2, '0')}`,
      '    type: twamp_sender',
      '    reflector: 127.0.0.1',
      '    port: REFLECTOR_PORT',
      `    interval: ${2 + (i % 4)}`,
      `    n_packets: ${20 + 10 * (i % 3)}`,
      `    ${MODELS[i % MODELS.length]}`,
      '    reply_timeout: 1',
      '    control_timeout: 2',
    );
  }
  lines.push(
    '  - id: broken-refused',
    '    type: twamp_sender',
    '    reflector: 127.0.0.1',
    `    port: ${refusedPort}`,
    '    interval: 3',
    '    n_packets: 10',
    '    model: g711',
    '    control_timeout: 2',
    '  - id: broken-dns',
    '    type: twamp_sender',
    '    reflector: no-such-host.invalid',
    '    interval: 7',
    '    n_packets: 10',
    '    model: g711',
    '    control_timeout: 2',
  );
  return lines.join('\n') + '\n';
}

interface Sample {
  tMin: number;
  rssMb: number;
  heapMb: number;
  handles: number;
  timers: number;
  runs: number;
  failures: number;
  unexpected: number;
  scrapes: number;
}

/** Sums of twamp_sender_runs / twamp_sender_errors from an exposition, healthy vs broken senders. */
function tally(text: string): { runs: number; failures: number; unexpected: number; reasons: Map<string, number> } {
  let runs = 0;
  let failures = 0;
  let unexpected = 0;
  const reasons = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(twamp_sender_runs|twamp_sender_errors)(?:_total)?\{(.*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const v = Number(m[3]);
    if (m[1] === 'twamp_sender_runs') { runs += v; continue; }
    failures += v;
    const id = /collector_id="([^"]*)"|id="([^"]*)"/.exec(m[2]!);
    const who = id?.[1] ?? id?.[2] ?? '';
    const reason = /reason="([^"]*)"/.exec(m[2]!)?.[1] ?? '?';
    const key = `${who.startsWith('broken-') ? who : 'healthy'}:${reason}`;
    reasons.set(key, (reasons.get(key) ?? 0) + v);
    if (!who.startsWith('broken-')) unexpected += v;
  }
  return { runs, failures, unexpected, reasons };
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) { num += (xs[i]! - mx) * (ys[i]! - my); den += (xs[i]! - mx) ** 2; }
  return den === 0 ? 0 : num / den;
}

/** A few misbehaving control clients: connect-and-close, garbage, half-open (closed after 2 s). */
function annoyReflector(port: number): void {
  for (let i = 0; i < 5; i++) {
    const s = connect({ host: '127.0.0.1', port });
    s.on('error', () => undefined);
    if (i === 0) s.on('connect', () => s.destroy());
    else if (i < 3) s.on('connect', () => { s.write(Buffer.alloc(200, 0xee)); setTimeout(() => s.destroy(), 500).unref(); });
    else setTimeout(() => s.destroy(), 2000).unref();
  }
}

const mb = (n: number): number => n / 1024 / 1024;
const f1 = (n: number): string => n.toFixed(1);

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const gc = gcFunction();
  const refusedPort = await closedPort();
  const yaml0 = agentYaml(args.senders, refusedPort, await closedPort());
  const warnings = new Map<string, number>();
  const logger: Logger = {
    ...silentLogger,
    warn: (m) => { const k = m.replace(/\d+/g, '#').slice(0, 120); warnings.set(k, (warnings.get(k) ?? 0) + 1); },
    error: (m) => process.stderr.write(`ERROR ${m}\n`),
  };
  const reflectorPort = await closedPort();
  const config = parseAgentConfig(yaml0.replace('port: 0\n    refwait', `port: ${reflectorPort}\n    refwait`)
    .replaceAll('REFLECTOR_PORT', String(reflectorPort)), 'soak.yaml');
  const agent = new Agent(config, { logger, staleGraceMs: 60_000 });
  await agent.start();
  const endpoint = agent.prometheus!;

  process.stdout.write(`soak: ${args.minutes} min, ${args.senders} healthy senders + 2 broken, reflector 127.0.0.1:${reflectorPort}, ` +
    `node ${process.version}, pid ${process.pid}\n`);
  process.stdout.write('  min   RSS MB  heap MB  handles  timers    runs  failures  unexpected  scrapes\n');

  const t0 = Date.now();
  const samples: Sample[] = [];
  let scrapes = 0;
  let lastText = '';
  let stopping = false;
  const scrapeTimer = setInterval(() => {
    void endpoint.render().then((t) => { lastText = t; scrapes++; }).catch((e: Error) => logger.error(`scrape: ${e.message}`));
  }, 5000);
  const annoyTimer = setInterval(() => annoyReflector(reflectorPort), 60_000);

  const sample = (): Sample => {
    gc();
    const mu = process.memoryUsage();
    const res = process.getActiveResourcesInfo();
    const t = tally(lastText);
    return {
      tMin: (Date.now() - t0) / 60_000, rssMb: mb(mu.rss), heapMb: mb(mu.heapUsed),
      handles: res.filter((r) => r !== 'Timeout' && r !== 'Immediate').length,
      timers: res.filter((r) => r === 'Timeout').length,
      runs: t.runs, failures: t.failures, unexpected: t.unexpected, scrapes,
    };
  };
  const print = (s: Sample): void => {
    process.stdout.write(`${s.tMin.toFixed(1).padStart(5)} ${f1(s.rssMb).padStart(8)} ${f1(s.heapMb).padStart(8)} ` +
      `${String(s.handles).padStart(8)} ${String(s.timers).padStart(7)} ${String(s.runs).padStart(7)} ` +
      `${String(s.failures).padStart(9)} ${String(s.unexpected).padStart(11)} ${String(s.scrapes).padStart(8)}\n`);
  };

  await new Promise<void>((resolve) => {
    let tick = 0;
    const timer = setInterval(() => {
      tick++;
      const s = sample();
      samples.push(s);
      if (tick % 6 === 0) print(s);
      if (Date.now() - t0 >= args.minutes * 60_000) { clearInterval(timer); resolve(); }
    }, 10_000);
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      process.stdout.write(`${sig}: finishing early\n`);
      clearInterval(timer);
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });

  clearInterval(scrapeTimer);
  clearInterval(annoyTimer);
  lastText = await endpoint.render();
  const final = tally(lastText);
  const reflected = /^twamp_reflector_reflected_pkt(?:_total)?\{[^}]*\} (\S+)$/m.exec(lastText)?.[1] ?? '?';
  const refused = [...lastText.matchAll(/^twamp_reflector_refused(?:_total)?\{[^}]*reason="([^"]*)"[^}]*\} (\S+)$/gm)]
    .map((m) => `${m[1]}=${m[2]}`).join(', ');
  await agent.stop();

  const totalMin = samples.length ? samples[samples.length - 1]!.tMin : 0;
  const half = samples.filter((s) => s.tMin >= totalMin / 2);
  const heapSlope = slope(half.map((s) => s.tMin), half.map((s) => s.heapMb));
  const rssSlope = slope(half.map((s) => s.tMin), half.map((s) => s.rssMb));
  const refAt = totalMin >= 10 ? 5 : totalMin / 2;
  const ref = samples.find((s) => s.tMin >= refAt) ?? samples[0];
  const last = samples[samples.length - 1];
  const rssRatio = ref && last ? last.rssMb / ref.rssMb : 1;
  const heapOk = heapSlope < 0.5;
  const rssOk = rssRatio <= 1.10;
  const runsOk = final.unexpected === 0 && final.runs > 0;
  const pass = heapOk && rssOk && runsOk && !stopping;

  const out = [
    '',
    `soak summary (${f1(totalMin)} min, ${samples.length} samples, second half from ${f1(totalMin / 2)} min)`,
    `  sessions run ${final.runs}, failures ${final.failures} (healthy senders: ${final.unexpected}), scrapes ${scrapes}, reflected packets ${reflected}`,
    `  failures by sender:reason: ${[...final.reasons].map(([k, v]) => `${k}=${v}`).join(', ') || 'none'}`,
    `  reflector refused by reason: ${refused || 'none'}`,
    `  warnings logged (distinct shapes): ${warnings.size}, lines ${[...warnings.values()].reduce((a, b) => a + b, 0)}`,
    `  heap slope ${heapSlope.toFixed(3)} MB/min (limit < 0.5)          ${heapOk ? 'ok' : 'FAIL'}`,
    `  RSS slope  ${rssSlope.toFixed(3)} MB/min`,
    `  RSS at ${f1(ref?.tMin ?? 0)} min ${f1(ref?.rssMb ?? 0)} MB, final ${f1(last?.rssMb ?? 0)} MB: ` +
      `${((rssRatio - 1) * 100).toFixed(1)} % (limit +10 %)   ${rssOk ? 'ok' : 'FAIL'}`,
    `  healthy senders without failures                    ${runsOk ? 'ok' : 'FAIL'}`,
    pass ? 'PASS: memory flat' : `FAIL${stopping ? ' (stopped early)' : ''}`,
    '',
  ];
  process.stdout.write(out.join('\n'));
  await new Promise((r) => setTimeout(r, 2000)); // let the sockets' closes complete
  const leftover = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap' && r !== 'Timeout');
  if (leftover.length > 0) process.stdout.write(`note: resources still active after stop: ${leftover.join(', ')}\n`);
  process.exit(pass ? 0 : 1);
}

main().catch((e: unknown) => {
  process.stderr.write(`soak: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
