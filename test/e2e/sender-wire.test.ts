// What the sender's datapath saw of the wire, as metrics (README "Metrics",
// path and timestamps): hops per direction, DSCP sent and received, ECN, the
// timestamp source, the departure error and T1 mismatches — against our
// reflector on loopback, in both naming profiles. On the native datapath the
// values are the loopback truth (0 hops both ways, the DSCP as sent, kernel
// timestamps); with OTEL_TWAMP_NATIVE=0 what cannot be observed has no
// series at all, never a 0.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TwampReflector } from '../../src/reflector.js';
import { TwampSender } from '../../src/sender.js';
import { datapathSupport } from '../../src/session/datapath.js';
import { SENDER_PATH, metricName, type NamingProfile } from '../../src/otel/instruments.js';
import { attributeKey } from '../../src/otel/attributes.js';
import { testMeter, type Snapshot } from '../helpers/metrics.js';
import { freePort } from '../helpers/peers.js';
import { parseAgentConfig } from '../../src/config/load.js';
import { Agent } from '../../src/cli/agent.js';
import { silentLogger } from '../../src/util/log.js';
import { needNative } from '../helpers/native.js';
import { parseReflectorConfig, parseSenderConfig } from '../../src/config/index.js';

const N = 20;
const AF21 = 18;

/** Metric name of a SENDER_PATH key under a profile. */
function nameOf(key: string, profile: NamingProfile): string {
  const spec = SENDER_PATH.find((s) => s.key === key);
  assert.ok(spec, key);
  return metricName(spec, profile);
}

/** One run of a sender against `port`, observed through a fresh meter; the snapshot and the collector-id attribute. */
async function observeRun(profile: NamingProfile, cfg: Record<string, unknown>, before?: () => void, after?: () => void) {
  const meter = testMeter();
  const warnings: string[] = [];
  const logger = { debug() {}, info() {}, warn: (m: string) => { warnings.push(m); }, error: (m: string) => { warnings.push(m); } };
  const sender = new TwampSender(parseSenderConfig({ type: 'twamp_sender', reflector: '127.0.0.1', n_packets: N, model: 'g711', ...cfg }),
    { meterProvider: meter.provider, naming: profile, logger });
  before?.();
  let out;
  try {
    out = await sender.runOnce();
  } finally {
    after?.();
  }
  assert.ok(out.ok, out.ok ? '' : out.error.message);
  await sender.start(); // registers the callback; the run above is what is observed
  const snap = await meter.collect();
  await sender.stop();
  await meter.shutdown();
  const idKey = attributeKey(profile, 'collectorId')!;
  return { snap, id: { [idKey]: String(cfg.id) }, warnings, result: out.result };
}

for (const profile of ['legacy', 'otel'] as const) {
  describe(`sender path and timestamp metrics (${profile})`, { timeout: 60_000 }, () => {
    let reflector: TwampReflector;
    let port: number;
    let lightPort: number;
    let reflectorMeter: ReturnType<typeof testMeter>;

    before(async () => {
      reflectorMeter = testMeter();
      reflector = new TwampReflector(parseReflectorConfig({ id: 'refl', type: 'twamp_reflector', listen: '127.0.0.1', port: 0, light_port: 0 }),
        { meterProvider: reflectorMeter.provider, naming: profile });
      port = (await reflector.start()).port;
      lightPort = reflector.lightAddress!.port;
    });
    after(async () => {
      await reflector.stop();
      await reflectorMeter.shutdown();
    });

    it('native datapath: 0 hops both ways on loopback, inbound DSCP as sent, nothing remarked, kernel timestamps', async (t) => {
      if (!needNative(t)) return;
      const { snap, id, warnings } = await observeRun(profile, { id: `native-${profile}`, port, dscp: 'af21' });
      const v = (key: string, extra: Record<string, string> = {}) => snap.value(nameOf(key, profile), { ...id, ...extra });
      assert.equal(v('out_hops'), 0);
      assert.equal(v('in_hops'), 0);
      assert.equal(v('out_dscp_sent'), AF21);
      assert.equal(v('in_dscp_received'), AF21, 'our reflector answers with the DSCP of the session');
      assert.equal(v('in_dscp_remarked'), 0);
      assert.equal(v('in_ecn_received'), 0);
      assert.equal(v('t1_mismatches'), 0);
      assert.equal(v('send_errors'), 0);
      const p99 = v('departure_error_p99')!;
      assert.ok(p99 !== undefined && p99 >= 0, `departure error p99 ${p99}`);
      // Generous: a noisy 2-core machine may be late by milliseconds, not by a second.
      assert.ok(profile === 'legacy' ? p99 < 1e9 : p99 < 1, `unit: ${profile === 'legacy' ? 'ns' : 's'}, got ${p99}`);
      if (profile === 'otel') assert.ok(!Number.isInteger(p99) || p99 === 0, 'seconds as a double');
      const sourceKey = attributeKey(profile, 'timestampSource')!;
      const info = snap.points(nameOf('timestamp_source_info', profile), id);
      assert.equal(info.length, 1, 'one timestamp source series');
      assert.equal(info[0]!.value, 1);
      assert.equal(info[0]!.attributes[sourceKey], 'kernel');
      assert.equal(snap.metric(nameOf('in_hops', profile))!.descriptor.unit, '{hop}');
      assert.deepEqual(warnings.filter((w) => /native datapath unavailable/.test(w)), [], 'nothing to explain');
    });

    it('the reflector says where its T2/T3 come from', async (t) => {
      const snap = await reflectorMeter.collect();
      const name = profile === 'legacy' ? 'twamp_reflector_timestamp_source_info' : 'twamp.reflector.timestamp.source_info';
      const points = snap.points(name);
      assert.equal(points.length, 1, `${name}: one series`);
      assert.equal(points[0]!.value, 1);
      const source = points[0]!.attributes[attributeKey(profile, 'timestampSource')!];
      assert.equal(source, datapathSupport().native ? 'kernel' : 'userspace');
      if (!datapathSupport().native) t.diagnostic('native datapath unavailable: userspace expected');
    });

    it('OTEL_TWAMP_NATIVE=0 on the sender: userspace source, the reason in the log, no series for what it cannot see', async () => {
      // TWAMP Light: the reflector's socket is already open (native when built), only the sender's falls back.
      const saved = process.env.OTEL_TWAMP_NATIVE;
      const { snap, id, warnings, result } = await observeRun(profile,
        { id: `js-${profile}`, port: lightPort, control: false, dscp: 'af21' },
        () => { process.env.OTEL_TWAMP_NATIVE = '0'; },
        () => { if (saved === undefined) delete process.env.OTEL_TWAMP_NATIVE; else process.env.OTEL_TWAMP_NATIVE = saved; });
      assert.equal(result.session.timestamps?.datapath, 'js');
      for (const key of ['in_hops', 'in_dscp_received', 'in_dscp_remarked', 'in_ecn_received', 'departure_error_p99']) {
        assert.deepEqual(snap.points(nameOf(key, profile), id), [], `${key}: not observed, so no series (never a 0)`);
      }
      // Known without the native datapath: what we sent, and the reflector's own Sender TTL.
      assert.equal(snap.value(nameOf('out_dscp_sent', profile), id), result.session.dscpMarked ? AF21 : 0);
      assert.equal(snap.value(nameOf('t1_mismatches', profile), id), 0);
      if (datapathSupport().native) assert.equal(snap.value(nameOf('out_hops', profile), id), 0, 'the native reflector read the TTL');
      const info = snap.points(nameOf('timestamp_source_info', profile), id);
      assert.equal(info.length, 1);
      assert.equal(info[0]!.attributes[attributeKey(profile, 'timestampSource')!], 'userspace');
      assert.ok(warnings.some((w) => /native datapath unavailable, timestamps from userspace: .*OTEL_TWAMP_NATIVE=0/.test(w)), warnings.join('\n'));
      // The reason is in the log only: no series carries it.
      for (const m of snap.metrics()) {
        for (const p of m.dataPoints as { attributes: Record<string, unknown> }[]) {
          assert.ok(!Object.values(p.attributes).some((a) => String(a).includes('OTEL_TWAMP_NATIVE')), m.descriptor.name);
        }
      }
    });

    it('a failed run withdraws them with the other measurements', async () => {
      const meter = testMeter();
      const sender = new TwampSender(parseSenderConfig({ id: `fail-${profile}`, type: 'twamp_sender', reflector: '127.0.0.1', port: 1, n_packets: 2,
        model: 'g711', control_timeout: 1 }), { meterProvider: meter.provider, naming: profile, logger: silentLogger });
      const out = await sender.runOnce();
      assert.equal(out.ok, false);
      await sender.start();
      const snap: Snapshot = await meter.collect();
      await sender.stop();
      await meter.shutdown();
      for (const spec of SENDER_PATH) assert.deepEqual(snap.points(metricName(spec, profile)), [], spec.key);
    });
  });
}

describe('through the agent\'s Prometheus endpoint, both profiles', { timeout: 60_000 }, () => {
  for (const naming of ['legacy', 'otel'] as const) {
    it(`${naming}: the info gauge with its source label, hops and DSCP as scraped`, async (t) => {
      if (!needNative(t)) return;
      const prom = await freePort();
      const port = await freePort();
      const agent = new Agent(parseAgentConfig(`
$version: "1.0"
naming: ${naming}
sender: { listen: "127.0.0.1:${prom}" }
collectors:
  - { id: r1, type: twamp_reflector, listen: 127.0.0.1, port: ${port} }
  - { id: s1, type: twamp_sender, reflector: 127.0.0.1, port: ${port}, n_packets: 10, model: g711, interval: 60, dscp: af21 }
`), { logger: silentLogger, env: {} });
      await agent.start();
      try {
        const deadline = Date.now() + 10_000;
        while (agent.senders.some((s) => !s.lastOutcome) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        const text = await agent.prometheus!.render();
        const source = naming === 'legacy' ? 'source' : 'twamp_timestamp_source';
        assert.match(text, new RegExp(`^twamp_sender_timestamp_source_info\\{[^}]*${source}="kernel"[^}]*\\} 1$`, 'm'), text.slice(0, 3000));
        assert.match(text, new RegExp(`^twamp_reflector_timestamp_source_info\\{[^}]*${source}="kernel"[^}]*\\} 1$`, 'm'));
        const [outHops, inHops, inDscp] = naming === 'legacy'
          ? ['twamp_out_hops', 'twamp_in_hops', 'twamp_in_dscp_received']
          : ['twamp_sender_outbound_hops', 'twamp_sender_inbound_hops', 'twamp_sender_inbound_dscp_received'];
        assert.match(text, new RegExp(`^${outHops}\\{[^}]*\\} 0$`, 'm'));
        assert.match(text, new RegExp(`^${inHops}\\{[^}]*\\} 0$`, 'm'));
        assert.match(text, new RegExp(`^${inDscp}\\{[^}]*\\} ${AF21}$`, 'm'));
      } finally {
        await agent.stop();
      }
    });
  }
});
