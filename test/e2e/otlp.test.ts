// End to end through the real OTLP/HTTP exporters (protobuf and JSON) and the
// Agent: a reflector and senders on loopback, exported every second to an
// in-repo OTLP receiver (test/helpers/otlpReceiver.ts). Checks the resource,
// all 26 reference sender metrics, cumulative and delta counters, that stale
// gauge series are NOT exported again (the reason the agent selects DELTA
// for gauges), the OTEL_* environment path, and the last export on stop.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ValueType } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { gzipSync } from 'node:zlib';
import { Agent } from '../../src/cli/agent.js';
import { createOtlpReader } from '../../src/cli/exporters.js';
import { parseAgentConfig } from '../../src/config/load.js';
import { SENDER_HEALTH, SENDER_MEASUREMENTS } from '../../src/otel/instruments.js';
import { METER_NAME, VERSION } from '../../src/version.js';
import type { Logger } from '../../src/util/log.js';
import { freePort } from '../helpers/peers.js';
import {
  OtlpReceiver, metricOf, pointsOf, valueOf, type OtlpRequest,
} from '../helpers/otlpReceiver.js';

const N = 10;
const HOST = 'e2e-host';
/** Bound for "the next export that shows X": sender interval 1 s + export interval 1 s + slack. */
const WAIT = 10_000;

interface LogLine { level: string; msg: string }

function memoryLogger(): Logger & { lines: LogLine[]; dump(): string } {
  const lines: LogLine[] = [];
  const at = (level: string) => (msg: string) => { lines.push({ level, msg }); };
  return {
    lines,
    debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'),
    dump: () => lines.map((l) => `${l.level} ${l.msg}`).join('\n'),
  };
}

interface SenderSpec { id: string; model?: string }

/** An agent file (Gufo format) with one reflector on 127.0.0.1:port and senders to it. */
function agentYaml(o: { port: number; otlp?: string; senders: SenderSpec[] }): string {
  const senders = o.senders.map((s) => `
  - id: ${s.id}
    type: twamp_sender
    reflector: 127.0.0.1
    port: ${o.port}
    n_packets: ${N}
    model: ${s.model ?? 'g711'}
    interval: 1
    control_timeout: 1
    reply_timeout: 0.5`).join('');
  return `
$version: "1.0"
agent:
  host: ${HOST}
  labels:
    site: lab
${o.otlp ?? ''}
collectors:
  - id: refl
    type: twamp_reflector
    listen: 127.0.0.1
    port: ${o.port}${senders}
`;
}

function otlpSection(receiver: OtlpReceiver, protocol: string, extra = ''): string {
  return `otlp:
  endpoint: ${receiver.metricsUrl}
  protocol: ${protocol}
  interval: 1
  timeout: 1
  headers:
    x-e2e-token: secret-1
    authorization: Bearer e2e${extra}`;
}

/** Latest collection time (ms since epoch) of any point in the request. */
function collectedAtMs(r: OtlpRequest): number {
  let max = 0n;
  for (const e of r.exports) for (const m of e.metrics) for (const p of m.points) {
    const t = BigInt(p.timeUnixNano);
    if (t > max) max = t;
  }
  return Number(max / 1_000_000n);
}

/** A request whose data was collected after `ms` (not merely received after). */
const collectedAfter = (ms: number) => (r: OtlpRequest) => collectedAtMs(r) > ms;

async function withAgent(
  yaml: string,
  env: NodeJS.ProcessEnv,
  body: (agent: Agent, log: ReturnType<typeof memoryLogger>) => Promise<void>,
): Promise<void> {
  const log = memoryLogger();
  const agent = new Agent(parseAgentConfig(yaml, '<e2e>', env), { logger: log, env });
  try {
    await agent.start();
    await body(agent, log);
  } catch (e) {
    (e as Error).message += `\n--- agent log\n${log.dump()}`;
    throw e;
  } finally {
    await agent.stop();
  }
}

const SENDER_GAUGES = [...SENDER_MEASUREMENTS, ...SENDER_HEALTH.filter((s) => s.kind === 'gauge')];

for (const protocol of ['http/protobuf', 'http/json'] as const) {
  describe(`OTLP ${protocol} export of the agent`, { timeout: 60_000 }, () => {
    it('resource, the 26 sender gauges, cumulative reflector counters, stale series withdrawn', async () => {
      const receiver = await OtlpReceiver.start();
      try {
        const port = await freePort();
        const yaml = agentYaml({ port, otlp: otlpSection(receiver, protocol), senders: [{ id: 'snd-a' }, { id: 'snd-b', model: 'g729' }] });
        await withAgent(yaml, {}, async (agent) => {
          assert.equal(agent.otlp, true);
          assert.equal(agent.prometheus, undefined, 'no Prometheus endpoint without sender.listen');
          assert.equal(agent.reflectors.length, 1);
          assert.equal(agent.senders.length, 2);
          const a = { collector_id: 'snd-a' };
          const b = { collector_id: 'snd-b' };

          // --- a request carrying every measurement of both senders
          const first = await receiver.waitFor((r) => SENDER_MEASUREMENTS.every((s) =>
            pointsOf(r, s.legacy.name, a).length === 1 && pointsOf(r, s.legacy.name, b).length === 1), WAIT, 0,
          'request with all 26 metrics of snd-a and snd-b');

          // transport
          assert.equal(first.method, 'POST');
          assert.equal(first.path, '/v1/metrics');
          assert.equal(first.format, protocol === 'http/json' ? 'json' : 'protobuf');
          assert.equal(first.headers['x-e2e-token'], 'secret-1');
          assert.equal(first.headers.authorization, 'Bearer e2e');
          assert.match(String(first.headers['user-agent']), /OTel-OTLP-Exporter-JavaScript/);
          assert.equal(first.exports.length, 1, 'one ResourceMetrics per request');
          for (const r of receiver.requests) assert.equal(r.status, 200, `request #${r.seq}: ${r.error}`);

          // resource
          const res = first.exports[0]!.resource;
          assert.equal(res['service.name'], 'otel-twamp');
          assert.equal(res['service.version'], VERSION);
          assert.equal(res['host.name'], HOST);
          assert.equal(res['telemetry.sdk.language'], 'nodejs');

          // the 26 reference metrics: gauges, reference units, identifying attributes
          for (const spec of SENDER_MEASUREMENTS) {
            const m = metricOf(first, spec.legacy.name)!;
            assert.equal(m.kind, 'gauge', spec.legacy.name);
            assert.equal(m.temporality, undefined, `${spec.legacy.name}: gauges carry no temporality`);
            assert.equal(m.unit, spec.legacy.unit, spec.legacy.name);
            assert.equal(m.description, spec.description, spec.legacy.name);
            assert.equal(m.scope, METER_NAME);
            assert.equal(m.scopeVersion, VERSION);
            for (const [id, model] of [['snd-a', 'g711'], ['snd-b', 'g729']] as const) {
              const p = pointsOf(first, spec.legacy.name, { collector_id: id })[0]!;
              assert.deepEqual(
                { reflector: p.attributes.reflector, model: p.attributes.model, collector: p.attributes.collector,
                  site: p.attributes.site, host: p.attributes.host },
                { reflector: `127.0.0.1:${port}`, model, collector: 'twamp_sender', site: 'lab', host: HOST },
                `${spec.legacy.name} ${id} attributes`);
              assert.equal(p.valueField, spec.valueType === ValueType.INT ? 'asInt' : 'asDouble', `${spec.legacy.name} encoding`);
              assert.ok(Number.isFinite(p.value), `${spec.legacy.name} ${id} = ${p.value}`);
            }
          }

          // sane values
          for (const [l, size] of [[a, 200], [b, 60]] as const) {
            const v = (name: string) => valueOf(first, name, l);
            assert.equal(v('twamp_tx_packets'), N);
            assert.equal(v('twamp_rx_packets'), N);
            assert.equal(v('twamp_tx_bytes'), N * size);
            for (const dir of ['in', 'out', 'rt']) assert.equal(v(`twamp_${dir}_loss`), 0, `${dir} loss`);
            const [min, avg, max] = [v('twamp_rt_min_delay_ns')!, v('twamp_rt_avg_delay_ns')!, v('twamp_rt_max_delay_ns')!];
            assert.ok(min > 0 && min <= avg && avg <= max && max < 1e9, `rt delays ${min}/${avg}/${max}`);
            assert.ok(v('twamp_rt_jitter_ns')! >= 0);
            assert.ok(v('twamp_duration_ns')! > 0);
            assert.ok(v('twamp_tx_pps')! > 0 && v('twamp_tx_bitrate')! > 0);
            for (const dir of ['in', 'out']) {
              const mos = v(`twamp_${dir}_mos`)!;
              assert.ok(mos > 3.5 && mos <= 4.5, `${dir} MOS ${mos}`);
            }
            assert.equal(v('twamp_sender_success'), 1);
            assert.ok(v('twamp_sender_run_duration_seconds')! > 0);
          }
          const runs = metricOf(first, 'twamp_sender_runs')!;
          assert.deepEqual([runs.kind, runs.temporality, runs.monotonic], ['sum', 'cumulative', true]);

          // --- reflector counters: monotonic cumulative sums that grow across exports
          const refl = { collector_id: 'refl' };
          const pkt0 = pointsOf(first, 'twamp_reflector_reflected_pkt', refl)[0]!;
          for (const name of ['twamp_reflector_session_attempts', 'twamp_reflector_session_started',
            'twamp_reflector_reflected_pkt', 'twamp_reflector_reflected_octets']) {
            const m = metricOf(first, name)!;
            assert.deepEqual([m.kind, m.temporality, m.monotonic], ['sum', 'cumulative', true], name);
            assert.equal(pointsOf(first, name, refl).length, 1, name);
            assert.equal(pointsOf(first, name, refl)[0]!.attributes.listen, `127.0.0.1:${port}`);
          }
          const active = metricOf(first, 'twamp_reflector_active_sessions')!;
          assert.deepEqual([active.kind, active.temporality, active.monotonic], ['sum', 'cumulative', false]);
          assert.ok(pkt0.value >= 2 * N, `reflected ${pkt0.value} after both senders ran`);
          const later = await receiver.waitFor((r) => (valueOf(r, 'twamp_reflector_reflected_pkt', refl) ?? 0) > pkt0.value,
            WAIT, first.seq + 1, 'request with more reflected packets');
          const pkt1 = pointsOf(later, 'twamp_reflector_reflected_pkt', refl)[0]!;
          assert.equal((pkt1.value - pkt0.value) % N, 0, `grows by whole runs: ${pkt0.value} → ${pkt1.value}`);
          assert.equal(pkt1.startTimeUnixNano, pkt0.startTimeUnixNano, 'cumulative: same start time');
          assert.ok(BigInt(pkt1.timeUnixNano) > BigInt(pkt0.timeUnixNano));

          // --- stop sender B: its gauges stop arriving, A's keep coming
          await agent.senders[1]!.stop();
          const bStopped = Date.now();
          const afterB = await receiver.waitFor((r) => collectedAfter(bStopped)(r) && pointsOf(r, 'twamp_tx_packets', a).length === 1,
            WAIT, 0, 'request collected after snd-b stopped, with snd-a measurements');
          for (const spec of SENDER_GAUGES) {
            assert.deepEqual(pointsOf(afterB, spec.legacy.name, b), [], `${spec.legacy.name} of stopped snd-b still exported`);
          }
          assert.equal(valueOf(afterB, 'twamp_sender_success', a), 1);

          // --- stop the reflector: A's next run fails; success 0 and no measurements for A
          await agent.reflectors[0]!.stop();
          const reflStopped = Date.now();
          const failed = await receiver.waitFor((r) => collectedAfter(reflStopped)(r) && valueOf(r, 'twamp_sender_success', a) === 0,
            WAIT, 0, 'request with twamp_sender_success{snd-a} = 0');
          assert.deepEqual(pointsOf(failed, 'twamp_tx_packets', a), [], 'twamp_tx_packets of a failed run still exported');
          for (const spec of SENDER_MEASUREMENTS) assert.deepEqual(pointsOf(failed, spec.legacy.name, a), [], spec.legacy.name);
          assert.ok(valueOf(failed, 'twamp_sender_run_duration_seconds', a)! >= 0);
          const errors = pointsOf(failed, 'twamp_sender_errors', a).filter((p) => p.value > 0); // every reason is exported, at 0 until it happens
          assert.ok(errors.length >= 1 && errors.every((p) => typeof p.attributes.reason === 'string' && p.value >= 1),
            `errors by reason: ${JSON.stringify(errors)}`);
          // and it stays that way in the following export
          const next = await receiver.waitFor(() => true, WAIT, failed.seq + 1, 'the export after the failed one');
          assert.deepEqual(pointsOf(next, 'twamp_tx_packets', a), []);
        });
      } finally {
        await receiver.close();
      }
    });
  });
}

describe('OTLP temporality: delta', { timeout: 60_000 }, () => {
  it('reflector counters arrive as contiguous delta sums that add up to the counter; levels stay cumulative', async () => {
    const receiver = await OtlpReceiver.start();
    try {
      const port = await freePort();
      const yaml = agentYaml({ port, otlp: otlpSection(receiver, 'http/protobuf', '\n  temporality: delta'), senders: [{ id: 'snd' }] });
      await withAgent(yaml, {}, async (agent) => {
        const refl = { collector_id: 'refl' };
        // two exports with reflected packets
        const r1 = await receiver.waitFor((r) => (valueOf(r, 'twamp_reflector_reflected_pkt', refl) ?? 0) > 0, WAIT, 0,
          'request with reflected packets');
        const m = metricOf(r1, 'twamp_reflector_reflected_pkt')!;
        assert.deepEqual([m.kind, m.temporality, m.monotonic], ['sum', 'delta', true]);
        for (const name of ['twamp_reflector_session_attempts', 'twamp_reflector_reflected_octets', 'twamp_sender_runs']) {
          const mm = metricOf(r1, name)!;
          assert.deepEqual([mm.kind, mm.temporality, mm.monotonic], ['sum', 'delta', true], name);
        }
        // up-down counters report a level: cumulative under the delta preference too (OTLP exporter spec)
        for (const name of ['twamp_reflector_active_sessions', 'twamp_reflector_control_connections']) {
          const mm = metricOf(r1, name)!;
          assert.deepEqual([mm.kind, mm.temporality, mm.monotonic], ['sum', 'cumulative', false], name);
        }
        assert.equal(metricOf(r1, 'twamp_tx_packets')?.kind ?? 'gauge', 'gauge');
        await receiver.waitFor((r) => (valueOf(r, 'twamp_reflector_reflected_pkt', refl) ?? 0) > 0, WAIT, r1.seq + 1,
          'a second request with reflected packets');

        // no more traffic, then one export collected after that
        await agent.senders[0]!.stop();
        const stopped = Date.now();
        const last = await receiver.waitFor(collectedAfter(stopped), WAIT, 0, 'request collected after the sender stopped');
        const series = receiver.accepted.filter((r) => r.seq <= last.seq)
          .flatMap((r) => pointsOf(r, 'twamp_reflector_reflected_pkt', refl));
        const total = series.reduce((s, p) => s + p.value, 0);
        assert.equal(total, agent.reflectors[0]!.counters.reflectedPackets,
          `deltas ${series.map((p) => p.value).join('+')} add up to the reflector's counter`);
        assert.ok(series.some((p) => p.value > 0 && p.value < total), 'values are deltas, not running totals');
        for (let i = 1; i < series.length; i++) {
          assert.equal(series[i]!.startTimeUnixNano, series[i - 1]!.timeUnixNano, `delta window ${i} starts where ${i - 1} ended`);
        }
      });
    } finally {
      await receiver.close();
    }
  });
});

/** Set process.env keys for the duration of `fn`, then restore exactly (absent stays absent). */
async function withProcessEnv(vars: Record<string, string>, fn: () => Promise<void>): Promise<void> {
  const saved = new Map<string, string | undefined>();
  for (const [k, v] of Object.entries(vars)) {
    saved.set(k, process.env[k]);
    process.env[k] = v;
  }
  try {
    await fn();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe('OTLP configured from the environment', { timeout: 60_000 }, () => {
  it('OTEL_METRICS_EXPORTER=otlp + endpoint/protocol/interval/headers enable the export without an otlp section', async () => {
    const receiver = await OtlpReceiver.start();
    try {
      const port = await freePort();
      const env: NodeJS.ProcessEnv = {
        OTEL_METRICS_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.url}/`, // base URL: /v1/metrics is appended
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_METRIC_EXPORT_INTERVAL: '1000',
        OTEL_EXPORTER_OTLP_HEADERS: 'x-from-env=agent%20env,x-common=agent',
      };
      // The OTLP exporter also reads OTEL_EXPORTER_OTLP_* from process.env on its own:
      // conflicting values there must not override or add to the agent's.
      await withProcessEnv({
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://127.0.0.1:9/not-here',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9',
        OTEL_EXPORTER_OTLP_HEADERS: 'x-common=process,x-process-only=leaked',
        OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'x-process-metrics=leaked',
        OTEL_EXPORTER_OTLP_TIMEOUT: '1',
        OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'delta',
      }, async () => {
        const yaml = agentYaml({ port, senders: [{ id: 'snd' }] });
        await withAgent(yaml, env, async (agent) => {
          assert.equal(agent.otlp, true);
          assert.equal(agent.prometheus, undefined);
          const r = await receiver.waitFor((q) => pointsOf(q, 'twamp_tx_packets', { collector_id: 'snd' }).length === 1, WAIT, 0,
            'JSON request with sender measurements');
          assert.equal(r.path, '/v1/metrics');
          assert.equal(r.format, 'json');
          assert.match(r.contentType, /^application\/json/);
          assert.equal(r.headers['x-from-env'], 'agent env');
          assert.equal(r.headers['x-common'], 'agent');
          assert.equal(r.headers['x-process-only'], undefined, 'process.env headers leaked into the export');
          assert.equal(r.headers['x-process-metrics'], undefined, 'process.env headers leaked into the export');
          assert.equal(valueOf(r, 'twamp_tx_packets', { collector_id: 'snd' }), N);
          const pkt = metricOf(r, 'twamp_reflector_reflected_pkt')!;
          assert.equal(pkt.temporality, 'cumulative', 'temporality from the agent env (default), not process.env');
          // 1 s interval: a second export about a second later
          const r2 = await receiver.waitFor(() => true, 5_000, r.seq + 1, 'second export');
          const gap = r2.receivedAt - r.receivedAt;
          assert.ok(gap > 500 && gap < 2_500, `export interval ${gap} ms`);
        });
      });
      assert.ok(receiver.requests.every((q) => q.status === 200));
    } finally {
      await receiver.close();
    }
  });

  it('OTEL_METRICS_EXPORTER=none disables both exporters, whatever the file says', async () => {
    const receiver = await OtlpReceiver.start();
    try {
      const port = await freePort();
      const yaml = agentYaml({ port, otlp: `${otlpSection(receiver, 'http/json')}\nsender:\n  listen: "127.0.0.1:${await freePort()}"`, senders: [] });
      const log = memoryLogger();
      const agent = new Agent(parseAgentConfig(yaml, '<e2e>', {}), { logger: log, env: { OTEL_METRICS_EXPORTER: 'none' } });
      assert.equal(agent.otlp, false);
      assert.equal(agent.prometheus, undefined);
      // and without the variable the same file enables both
      const both = new Agent(parseAgentConfig(yaml, '<e2e>', {}), { logger: log, env: {} });
      assert.equal(both.otlp, true);
      assert.ok(both.prometheus);
      await both.meterProvider.shutdown(); // never started: nothing listens
      await agent.start();
      try {
        await new Promise((r) => setTimeout(r, 2_500));
      } finally {
        await agent.stop();
      }
      assert.equal(receiver.requests.length, 0, 'nothing exported with OTEL_METRICS_EXPORTER=none');
    } finally {
      await receiver.close();
    }
  });
});

describe('graceful stop', { timeout: 60_000 }, () => {
  it('agent.stop() flushes a last export', async () => {
    const receiver = await OtlpReceiver.start();
    try {
      const port = await freePort();
      const yaml = agentYaml({ port, otlp: otlpSection(receiver, 'http/protobuf'), senders: [{ id: 'snd' }] });
      const log = memoryLogger();
      const agent = new Agent(parseAgentConfig(yaml, '<e2e>', {}), { logger: log, env: {} });
      let stopping = 0;
      let mark = 0;
      try {
        await agent.start();
        await receiver.waitFor((r) => valueOf(r, 'twamp_tx_packets', { collector_id: 'snd' }) === N, WAIT, 0, 'a periodic export');
      } finally {
        mark = receiver.mark();
        stopping = Date.now();
        await agent.stop();
      }
      const after = receiver.requests.slice(mark);
      assert.ok(after.length >= 1, 'no export after stop() began');
      assert.ok(after.every((r) => r.status === 200 && r.receivedAt >= stopping));
      assert.ok(after.some((r) => (valueOf(r, 'twamp_reflector_reflected_pkt', { collector_id: 'refl' }) ?? 0) >= N));
    } finally {
      await receiver.close();
    }
  });

  // Agent.stop() flushes before it unregisters the producers, so the last export still
  // carries the senders' results (with a long interval it is the only export).
  it('agent.stop() flushes a last export carrying the last results', async () => {
    const receiver = await OtlpReceiver.start();
    try {
      const port = await freePort();
      // interval 60 s: the only export is the one stop() flushes
      const yaml = agentYaml({ port, otlp: otlpSection(receiver, 'http/protobuf').replace('interval: 1', 'interval: 60').replace('timeout: 1', 'timeout: 5'), senders: [{ id: 'snd' }] });
      const log = memoryLogger();
      const agent = new Agent(parseAgentConfig(yaml, '<e2e>', {}), { logger: log, env: {} });
      let stopping = 0;
      try {
        await agent.start();
        const deadline = Date.now() + WAIT;
        while (!agent.senders[0]?.lastOutcome && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        const out = agent.senders[0]?.lastOutcome;
        assert.ok(out?.ok, `first run: ${out && !out.ok ? out.error.message : 'none'}\n${log.dump()}`);
        assert.equal(receiver.requests.length, 0, 'no periodic export yet');
      } finally {
        stopping = Date.now();
        await agent.stop();
      }
      assert.ok(receiver.requests.length >= 1, 'no export on stop');
      const last = receiver.requests[0]!;
      assert.equal(last.status, 200);
      assert.ok(last.receivedAt >= stopping);
      assert.ok((valueOf(last, 'twamp_reflector_reflected_pkt', { collector_id: 'refl' }) ?? 0) >= N, 'reflector counter in the last export');
      assert.equal(valueOf(last, 'twamp_tx_packets', { collector_id: 'snd' }), N, 'sender results in the last export');
    } finally {
      await receiver.close();
    }
  });
});

describe('OTLP receiver fixture', { timeout: 30_000 }, () => {
  for (const protocol of ['http/protobuf', 'http/json'] as const) {
    it(`${protocol}: gzip bodies (the exporter takes OTEL_EXPORTER_OTLP_COMPRESSION from process.env)`, async () => {
      const receiver = await OtlpReceiver.start();
      let provider: MeterProvider | undefined;
      try {
        await withProcessEnv({ OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' }, async () => {
          const reader = createOtlpReader({
            endpoint: receiver.metricsUrl, protocol, headers: {}, intervalMs: 200, timeoutMs: 200, temporality: 'cumulative',
          });
          provider = new MeterProvider({ readers: [reader] });
        });
        const meter = provider!.getMeter('fixture-check', '9.9.9');
        const g = meter.createObservableGauge('fx_gauge', { unit: 'ns', valueType: ValueType.INT });
        g.addCallback((r) => { r.observe(-7, { k: 'v', n: 3, b: true }); r.observe(0, { k: 'zero' }); });
        meter.createCounter('fx_counter', { valueType: ValueType.DOUBLE }).add(2.5);
        const r = await receiver.waitFor((q) => metricOf(q, 'fx_gauge') !== undefined, 5_000);
        assert.equal(r.contentEncoding, 'gzip');
        assert.equal(r.format, protocol === 'http/json' ? 'json' : 'protobuf');
        const m = metricOf(r, 'fx_gauge')!;
        assert.deepEqual([m.scope, m.scopeVersion, m.kind, m.unit], ['fixture-check', '9.9.9', 'gauge', 'ns']);
        assert.deepEqual(pointsOf(r, 'fx_gauge', { k: 'v' }).map((p) => [p.value, p.valueField, p.attributes]),
          [[-7, 'asInt', { k: 'v', n: 3, b: true }]]);
        assert.deepEqual(pointsOf(r, 'fx_gauge', { k: 'zero' }).map((p) => [p.value, p.valueField]), [[0, 'asInt']]);
        const c = metricOf(r, 'fx_counter')!;
        assert.deepEqual([c.kind, c.temporality, c.monotonic, c.points[0]?.value, c.points[0]?.valueField],
          ['sum', 'cumulative', true, 2.5, 'asDouble']);
      } finally {
        await provider?.shutdown();
        await receiver.close();
      }
    });
  }

  it('answers 200 with an empty response; refuses other paths, methods and content types', async () => {
    const receiver = await OtlpReceiver.start();
    try {
      const body = JSON.stringify({ resourceMetrics: [] });
      const ok = await fetch(receiver.metricsUrl, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync(body) });
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), {});
      const pb = await fetch(receiver.metricsUrl, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: new Uint8Array(0) });
      assert.equal(pb.status, 200);
      assert.equal(pb.headers.get('content-type'), 'application/x-protobuf');
      assert.equal((await pb.arrayBuffer()).byteLength, 0);
      assert.equal((await fetch(`${receiver.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).status, 404);
      assert.equal((await fetch(receiver.metricsUrl)).status, 405);
      assert.equal((await fetch(receiver.metricsUrl, { method: 'POST', headers: { 'content-type': 'text/plain' }, body })).status, 415);
      assert.equal((await fetch(receiver.metricsUrl, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: new Uint8Array([0x0a, 0x05, 1]) })).status, 400);
      assert.deepEqual(receiver.requests.map((r) => r.status), [200, 200, 404, 405, 415, 400]);
      assert.equal(receiver.accepted.length, 2);
    } finally {
      await receiver.close();
    }
  });
});
