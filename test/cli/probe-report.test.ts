// The probe's report (`otel-twamp probe` text and `--json`, src/cli/format.ts)
// of deterministic sessions, compared with a golden copy
// (test/fixtures/probe/report-golden.json). The golden was rendered when the
// probe still re-derived every delay from the reflections itself and
// recomputed the percentiles; the report now reads the percentiles and the
// round-trip samples of the session's own statistics (SessionStats). Equal
// documents mean the two agree to the nanosecond, histogram included.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/peers.js';
import { SessionStats, type ReplySample } from '../../src/measure/stats.js';
import { buildProbeReport, renderProbeJson, renderProbeText } from '../../src/cli/format.js';
import { parseSenderConfig } from '../../src/config/load.js';
import { measurementValues } from '../../src/sender.js';
import { createTrafficModel } from '../../src/measure/models.js';
import type { SenderSessionResult } from '../../src/session/senderResult.js';

const T0 = 3_900_000_000n << 32n;
/** Milliseconds in NTP units. */
const ms = (x: number): bigint => BigInt(Math.round(x * 4294967.296));

function render(n: number, replies: ReplySample[], sync: boolean): { json: string; text: string } {
  const st = new SessionStats();
  for (let s = 0; s < n; s++) st.recordSent({ seq: s, sizeIp: 200, t1: T0 + ms(20 * s) });
  for (const r of replies) st.recordReply(r);
  const stats = st.result();
  const session = {
    stats, rtSamplesNs: st.delaySamples('rt'), ipVersion: 4, reflectorAddress: '192.0.2.1', reflectorTestPort: 40000,
    senderAddress: '192.0.2.2', senderTestPort: 50000, sid: Buffer.alloc(16, 0xab), paddingLength: 158,
    clocksSynchronized: sync, invalidReplies: 2, dscpMarked: true, mode: 'open', dscpEcnMonitoring: false, badHmacReplies: 0,
    replyPayload: { min: 172, max: 172 }, t1Mismatches: 1, sendErrors: 0,
    timestamps: {
      source: 'kernel', t1: 'kernel', t4: 'kernel', datapath: 'native', pacing: 'native-thread', txTimestamped: n,
      departureErrorNs: { p50: 12000, p99: 40000, max: 90000, samples: n },
    },
    path: {
      outbound: {
        hops: { min: 0, max: 0 }, senderTtl: { min: 255, max: 255 }, reportedBy: null, dscp: null, ecn: null,
        remarked: 0, tosSamples: 0, replyDscpRefused: 0,
      },
      inbound: { dscpSent: 46, hops: { min: 0, max: 0 }, ttl: { min: 255, max: 255 }, dscp: 46, ecn: 0, remarked: 0, tosSamples: stats.rxPackets },
    },
  } satisfies SenderSessionResult;
  const config = parseSenderConfig({ id: 'probe', reflector: '192.0.2.1', n_packets: n, model: 'g711', dscp: 'ef' });
  const values = measurementValues(session, createTrafficModel(config.model));
  const report = buildProbeReport({
    version: '0.0.0', target: { host: '192.0.2.1', controlPort: 862 }, config,
    startedAt: new Date(0), runDurationMs: 2345.678, outcome: { ok: true, session, values }, maxLossPercent: 5,
  });
  return { json: renderProbeJson(report), text: renderProbeText(report) };
}

/** 200 packets with pseudo-random delays: 7 lost, backward duplicates, reordering, one reply to a packet never sent. */
function lossySession(): ReplySample[] {
  let x = 12345;
  const rnd = (): number => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
  const replies: ReplySample[] = [];
  let rseq = 0;
  for (let s = 0; s < 200; s++) {
    if (s % 29 === 7) continue; // lost
    const out = 3 + rnd() * 4 + (s % 50 === 0 ? 20 : 0);
    const res = 0.02 + rnd() * 0.01;
    const back = 2.5 + rnd() * 3;
    const t1 = T0 + ms(20 * s);
    const t2 = t1 + ms(out);
    const t3 = t2 + ms(res);
    const t4 = t3 + ms(back);
    replies.push({ senderSeq: s, reflectorSeq: rseq++, t1, t2, t3, t4, sizeIp: 200 });
    if (s % 61 === 3) replies.push({ ...replies.at(-1)!, t4: t4 + ms(1) }); // backward duplicate
  }
  for (let k = 10; k < 190; k += 37) {
    const a = replies[k]!;
    replies[k] = replies[k + 1]!;
    replies[k + 1] = a;
  }
  replies.push({ senderSeq: 5000, reflectorSeq: 9999, t1: T0, t2: T0, t3: T0, t4: T0, sizeIp: 200 });
  return replies;
}

describe('probe report from the session statistics (golden)', () => {
  const golden = JSON.parse(readFileSync(join(repoRoot(), 'test', 'fixtures', 'probe', 'report-golden.json'), 'utf8')) as
    Record<'A' | 'B', { json: string; text: string }>;

  it('a lossy session with duplicates and reordering: same JSON and text as the golden, percentiles and histogram included', () => {
    const got = render(200, lossySession(), false);
    assert.deepEqual(JSON.parse(got.json), JSON.parse(golden.A.json));
    assert.equal(got.text, golden.A.text);
    assert.match(got.text, /round-trip delay histogram, ms \(193 samples\)/, 'the golden has a histogram to compare');
  });

  it('nothing came back: same JSON and text as the golden (no percentiles, no histogram)', () => {
    const got = render(10, [], true);
    assert.deepEqual(JSON.parse(got.json), JSON.parse(golden.B.json));
    assert.equal(got.text, golden.B.text);
  });
});
