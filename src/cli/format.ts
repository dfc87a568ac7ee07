/**
 * Rendering of `otel-twamp probe` results: one {@link ProbeReport} document
 * (the `--json` output, schema below) built from a sender session, and a
 * human-readable text view of the same document.
 *
 * JSON schema, version 1 (`schemaVersion: 1`). Stability rules:
 * - every key below is always present; a value that cannot be computed is
 *   `null` (never omitted, never NaN);
 * - keys are only ever added within a schema version, never renamed or
 *   removed; a breaking change bumps `schemaVersion`;
 * - units are in the key name: `…Ns` integer nanoseconds, `…Ms` milliseconds
 *   (floating point), `…Octets`, `…Percent` (0–100), `…PerSecond`.
 */
import type { SenderSessionResult } from '../session/senderResult.js';
import type { FailureReason } from '../session/errors.js';
import { formatHostPort } from '../util/net.js';
import type { SenderConfig } from '../config/types.js';
import type { ModelName } from '../measure/models.js';
import { dscpName } from '../protocol/dscp.js';
import type { DirectionStats } from '../measure/stats.js';
import { histogram } from '../measure/percentiles.js';

export const PROBE_SCHEMA_VERSION = 1 as const;

/** Delay statistics of one direction, all in the same unit (see the containing key). */
export interface ProbeDelayStats {
  min: number | null;
  /** Nearest-rank percentiles of the session's statistics (measure/stats.ts); null without samples. */
  median: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
  /** Arithmetic mean over all answered packets. */
  avg: number | null;
}

export interface ProbeDirection {
  /** Delay samples: one per answered sender packet (the first reply). */
  samples: number;
  /** Lost packets in this direction (see README "Loss" for the attribution rules). */
  lossPackets: number;
  /** lossPackets in percent of the packets sent. */
  lossPercent: number;
  /**
   * Outbound T2 − T1, inbound T4 − T3, round trip (T4 − T1) − (T3 − T2).
   * One-way values are signed and include the clock offset between the hosts
   * unless `session.clocksSynchronized` is true.
   */
  delayNs: ProbeDelayStats;
  /** delayNs / 1e6. */
  delayMs: ProbeDelayStats;
  /** RFC 3550 jitter of the delay, ns. */
  jitterNs: number | null;
  jitterMs: number | null;
}

/**
 * What a one-way direction's packets carried, as far as the sender can see
 * (README "Metrics", path and timestamps). Hop counts assume the far end sent
 * TTL / hop limit 255 (RFC 5357 §4.2.1). null: not observed (the JS datapath
 * reads no TTL / TOS; a reply without a Sender TTL field).
 */
export interface ProbePath {
  /** Outbound: 255 − the Sender TTL the reflector reflected; inbound: 255 − the replies' received TTL / hop limit. */
  hops: { min: number; max: number } | null;
  dscp: {
    /**
     * Outbound: what the test packets carried (0 when marking was unavailable); inbound: what the reflector was
     * asked to mark its replies with (Type-P, or the CoS TLV's DSCP1; the received DSCP when it refused DSCP1), null when unmarked.
     */
    sent: number | null;
    /**
     * As received (the last one): inbound, the replies' DSCP; outbound, the DSCP our packets arrived with at the
     * reflector as it reported it (RFC 7750 S-DSCP-ECN or the RFC 8972 CoS TLV), null when it reported none.
     */
    received: number | null;
    /** Packets received with another DSCP than `sent`; null when unknown. */
    remarkedPackets: number | null;
    /** Outbound: how the reflector reported it ('rfc7750', 'cos-tlv'), null when it did not; inbound: always null. */
    reportedBy: 'rfc7750' | 'cos-tlv' | null;
    /** Outbound, STAMP CoS: replies whose reflector refused DSCP1 (RP = 1); null otherwise. */
    replyDscpRefused: number | null;
  };
  /** ECN field as received (0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE), the last packet; outbound as the reflector reported it. */
  ecn: number | null;
}

/** A one-way direction: delays and loss plus what its packets carried. */
export interface ProbeOneWay extends ProbeDirection, ProbePath {}

/** Where T1 and T4 came from (RFC 5357 §4.1.2 asks for both as close to the wire as possible). */
export interface ProbeTimestamps {
  /** The weaker of t1 and t4: what bounds the round trip's error. */
  source: 'hardware' | 'kernel' | 'userspace';
  t1: 'hardware' | 'kernel' | 'userspace';
  t4: 'hardware' | 'kernel' | 'userspace';
  datapath: 'native' | 'js';
  pacing: 'native-thread' | 'event-loop';
  /** Why the native datapath is not in use; null when it is. */
  nativeUnavailable: string | null;
  /** Departures whose record is the kernel's TX timestamp. */
  txTimestampedPackets: number;
  /** Actual send − scheduled departure, ns (native scheduler only, else null): the apparatus' own error. */
  departureErrorNs: { p50: number; p99: number; max: number; samples: number } | null;
}

export interface ProbeSession {
  ipVersion: 4 | 6;
  /** Our end of the test session. */
  senderAddress: string;
  senderTestPort: number;
  /** The reflector's end, as returned in Accept-Session. */
  reflectorAddress: string;
  reflectorTestPort: number;
  /** Session identifier (RFC 4656 §3.5), 32 hex digits. */
  sid: string;
  paddingLengthOctets: number;
  /** Negotiated TWAMP-Control security mode: open, authenticated, encrypted, mixed (null if unknown). */
  securityMode: string | null;
  /** Both ends claim UTC synchronisation: one-way delays are meaningful. */
  clocksSynchronized: boolean;
  /** The test packets carried the requested DSCP in their IP header. */
  dscpMarked: boolean;
  /** Why they were not marked (requested DSCP ≠ 0 only), else null. */
  dscpNote: string | null;
  /** Datagrams on the test socket that were not a valid reflection. */
  invalidReplies: number;
}

export interface ProbeTraffic {
  sentPackets: number;
  receivedPackets: number;
  duplicates: number;
  reordered: number;
  /** Replies to sequence numbers never sent. */
  unexpected: number;
  sentOctets: number;
  receivedOctets: number;
  /** First to last departure. */
  sendDurationNs: number;
  sentPacketsPerSecond: number;
  receivedPacketsPerSecond: number;
  sentBitsPerSecond: number;
  receivedBitsPerSecond: number;
  /** Reflector residence time T3 − T2 (reflector clock only, so always meaningful). */
  residenceNs: { min: number; avg: number; max: number } | null;
  /** Replies whose echoed T1 differs from the T1 sent (a reflector that garbles it; delays use our own record). */
  t1Mismatches: number;
  /** Test packets whose send failed (not counted as sent). */
  sendErrors: number;
}

export interface ProbeHistogramBucket {
  /** Inclusive. */
  loNs: number;
  /** Exclusive (the last bucket includes the maximum). */
  hiNs: number;
  count: number;
}

/** The `otel-twamp probe --json` document. */
export interface ProbeReport {
  schemaVersion: typeof PROBE_SCHEMA_VERSION;
  tool: { name: 'otel-twamp'; version: string };
  /** As given on the command line. */
  target: { host: string; controlPort: number; display: string };
  /** ISO 8601, when the control connection was opened. */
  startedAt: string;
  /** Wall time of the whole run, control exchange included. */
  runDurationMs: number;
  ok: boolean;
  error: { reason: FailureReason; message: string } | null;
  /** What was asked for (after validation and defaults). */
  request: {
    model: ModelName;
    packets: number;
    bandwidthBitsPerSecond: number | null;
    sizeOctets: number | null;
    dscp: number;
    dscpName: string;
    /** 0: the reflector chose. */
    reflectorPortRequested: number;
    controlTimeoutMs: number;
    replyTimeoutMs: number;
  };
  session: ProbeSession | null;
  traffic: ProbeTraffic | null;
  roundTrip: ProbeDirection | null;
  outbound: ProbeOneWay | null;
  inbound: ProbeOneWay | null;
  /** null when the session failed or the session layer did not say. */
  timestamps: ProbeTimestamps | null;
  /** Voice models (g711, g729) only; null otherwise or when nothing came back. */
  mos: {
    /** Quality heard at the reflector's end. */
    outbound: number | null;
    /** Quality heard at our end. */
    inbound: number | null;
    /** Which delay went into the E-model. */
    delayBasis: 'one-way' | 'half-round-trip';
  } | null;
  /** Round-trip delay distribution; null without per-packet samples. */
  rttHistogram: { bucketWidthNs: number; buckets: ProbeHistogramBucket[] } | null;
  /** --max-loss: round-trip loss threshold and whether it was exceeded; null when not given. */
  maxLoss: { thresholdPercent: number; exceeded: boolean } | null;
  /** The process exit code: 0 ok, 1 session failed, 3 loss above --max-loss. */
  exitCode: 0 | 1 | 3;
}

export type ProbeOutcome =
  | { ok: true; session: SenderSessionResult; values: Record<string, number | undefined>; dscpNote?: string }
  | { ok: false; reason: FailureReason; message: string };

export interface ProbeReportInput {
  version: string;
  target: { host: string; controlPort: number };
  config: SenderConfig;
  startedAt: Date;
  runDurationMs: number;
  outcome: ProbeOutcome;
  maxLossPercent?: number | undefined;
}

const HISTOGRAM_BUCKETS = 10;

export function buildProbeReport(input: ProbeReportInput): ProbeReport {
  const c = input.config;
  const report: ProbeReport = {
    schemaVersion: PROBE_SCHEMA_VERSION,
    tool: { name: 'otel-twamp', version: input.version },
    target: { host: input.target.host, controlPort: input.target.controlPort, display: formatHostPort(input.target.host, input.target.controlPort) },
    startedAt: input.startedAt.toISOString(),
    runDurationMs: round3(input.runDurationMs),
    ok: input.outcome.ok,
    error: input.outcome.ok ? null : { reason: input.outcome.reason, message: input.outcome.message },
    request: {
      model: c.model.model,
      packets: c.nPackets,
      bandwidthBitsPerSecond: c.model.bandwidth ?? null,
      sizeOctets: c.model.size ?? null,
      dscp: c.dscp,
      dscpName: dscpName(c.dscp),
      reflectorPortRequested: c.reflectorPort,
      controlTimeoutMs: c.controlTimeoutMs,
      replyTimeoutMs: c.replyTimeoutMs,
    },
    session: null,
    traffic: null,
    roundTrip: null,
    outbound: null,
    inbound: null,
    timestamps: null,
    mos: null,
    rttHistogram: null,
    maxLoss: null,
    exitCode: input.outcome.ok ? 0 : 1,
  };
  if (!input.outcome.ok) {
    if (input.maxLossPercent !== undefined) report.maxLoss = { thresholdPercent: input.maxLossPercent, exceeded: false };
    return report;
  }
  const s = input.outcome.session;
  const r = s.stats;
  report.session = {
    ipVersion: s.ipVersion,
    senderAddress: s.senderAddress,
    senderTestPort: s.senderTestPort,
    reflectorAddress: s.reflectorAddress,
    reflectorTestPort: s.reflectorTestPort,
    sid: s.sid.toString('hex'),
    paddingLengthOctets: s.paddingLength,
    securityMode: typeof (s as { mode?: unknown }).mode === 'string' ? (s as { mode: string }).mode : null,
    clocksSynchronized: s.clocksSynchronized,
    dscpMarked: s.dscpMarked,
    dscpNote: input.outcome.dscpNote ?? null,
    invalidReplies: s.invalidReplies,
  };
  report.traffic = {
    sentPackets: r.txPackets,
    receivedPackets: r.rxPackets,
    duplicates: r.duplicates,
    reordered: r.reordered,
    unexpected: r.unexpected,
    sentOctets: r.txBytes,
    receivedOctets: r.rxBytes,
    sendDurationNs: r.durationNs,
    sentPacketsPerSecond: round3(r.txPps),
    receivedPacketsPerSecond: round3(r.rxPps),
    sentBitsPerSecond: Math.round(r.txBitrate),
    receivedBitsPerSecond: Math.round(r.rxBitrate),
    residenceNs: r.residence.minNs !== undefined && r.residence.avgNs !== undefined && r.residence.maxNs !== undefined
      ? { min: r.residence.minNs, avg: r.residence.avgNs, max: r.residence.maxNs } : null,
    t1Mismatches: s.t1Mismatches,
    sendErrors: s.sendErrors,
  };
  report.roundTrip = direction(r.rt, r.txPackets);
  const p = s.path;
  const obs = (o: { min: number; max: number } | null) => (o ? { min: o.min, max: o.max } : null);
  report.outbound = {
    ...direction(r.out, r.txPackets),
    hops: obs(p.outbound.hops),
    dscp: {
      // Unmarked packets leave with DSCP 0, the socket's default TOS.
      sent: s.dscpMarked ? c.dscp : 0,
      // As the reflector reported it (RFC 7750 / RFC 8972 CoS TLV); null when it reported nothing.
      received: p.outbound.dscp,
      remarkedPackets: s.dscpMarked && p.outbound.tosSamples > 0 ? p.outbound.remarked : null,
      reportedBy: p.outbound.reportedBy,
      replyDscpRefused: p.outbound.reportedBy === 'cos-tlv' ? p.outbound.replyDscpRefused : null,
    },
    ecn: p.outbound.ecn,
  };
  report.inbound = {
    ...direction(r.in, r.txPackets),
    hops: obs(p.inbound.hops),
    dscp: {
      sent: s.dscpMarked ? p.inbound.dscpSent : null,
      received: p.inbound.dscp,
      // Counted against the DSCP the replies were asked to carry: only meaningful when the test packets carried ours.
      remarkedPackets: s.dscpMarked && p.inbound.tosSamples > 0 ? p.inbound.remarked : null,
      reportedBy: null,
      replyDscpRefused: null,
    },
    ecn: p.inbound.ecn,
  };
  const ts = s.timestamps;
  report.timestamps = {
    source: ts.source, t1: ts.t1, t4: ts.t4, datapath: ts.datapath, pacing: ts.pacing,
    nativeUnavailable: ts.nativeUnavailable ?? null,
    txTimestampedPackets: ts.txTimestamped,
    departureErrorNs: ts.departureErrorNs ? { ...ts.departureErrorNs } : null,
  };
  const v = input.outcome.values;
  if (v.in_mos !== undefined || v.out_mos !== undefined) {
    report.mos = {
      outbound: v.out_mos === undefined ? null : round3(v.out_mos),
      inbound: v.in_mos === undefined ? null : round3(v.in_mos),
      delayBasis: s.clocksSynchronized ? 'one-way' : 'half-round-trip',
    };
  }
  // The round trip's own samples (first reply per packet, as the statistics count them).
  if (s.rtSamplesNs.length > 0) {
    const buckets = histogram(s.rtSamplesNs.slice().sort(), HISTOGRAM_BUCKETS, 1000);
    report.rttHistogram = {
      bucketWidthNs: buckets.length ? buckets[0]!.hi - buckets[0]!.lo : 0,
      buckets: buckets.map((b) => ({ loNs: b.lo, hiNs: b.hi, count: b.count })),
    };
  }
  if (input.maxLossPercent !== undefined) {
    const exceeded = report.roundTrip.lossPercent > input.maxLossPercent;
    report.maxLoss = { thresholdPercent: input.maxLossPercent, exceeded };
    if (exceeded) report.exitCode = 3;
  }
  return report;
}

function direction(d: DirectionStats, sent: number): ProbeDirection {
  const ns: ProbeDelayStats = {
    min: d.minDelayNs ?? null,
    median: d.p50DelayNs ?? null,
    p90: d.p90DelayNs ?? null,
    p99: d.p99DelayNs ?? null,
    max: d.maxDelayNs ?? null,
    avg: d.avgDelayNs ?? null,
  };
  const toMs = (x: number | null): number | null => (x === null ? null : x / 1e6);
  return {
    samples: d.samples,
    lossPackets: d.loss,
    lossPercent: sent > 0 ? round3((d.loss / sent) * 100) : 0,
    delayNs: ns,
    delayMs: {
      min: toMs(ns.min), median: toMs(ns.median), p90: toMs(ns.p90), p99: toMs(ns.p99), max: toMs(ns.max), avg: toMs(ns.avg),
    },
    jitterNs: d.jitterNs ?? null,
    jitterMs: toMs(d.jitterNs ?? null),
  };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

// ---------------------------------------------------------------------------
// Text

export function renderProbeJson(r: ProbeReport): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}

/** Milliseconds with µs resolution: 0.123, 12.345. */
function fmtMs(ns: number | null): string {
  return ns === null ? '—' : (ns / 1e6).toFixed(3);
}

function fmtRate(bitsPerSecond: number): string {
  if (bitsPerSecond >= 1e9) return `${(bitsPerSecond / 1e9).toFixed(2)} Gbit/s`;
  if (bitsPerSecond >= 1e6) return `${(bitsPerSecond / 1e6).toFixed(2)} Mbit/s`;
  if (bitsPerSecond >= 1e3) return `${(bitsPerSecond / 1e3).toFixed(1)} kbit/s`;
  return `${Math.round(bitsPerSecond)} bit/s`;
}

function fmtPct(p: number): string {
  return `${p.toFixed(p !== 0 && p < 0.1 ? 3 : 1)} %`;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function lpad(s: string, n: number): string {
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}

/** Heading line: what is being measured. */
function title(r: ProbeReport): string {
  const q = r.request;
  const shape = q.model === 'cbr'
    ? `cbr ${fmtRate(q.bandwidthBitsPerSecond ?? 0)}, ${q.sizeOctets ?? 0}-octet packets`
    : q.model === 'imix' ? `imix ${fmtRate(q.bandwidthBitsPerSecond ?? 0)}` : q.model;
  return `TWAMP probe to ${r.target.display}: ${shape}, ${q.packets} packet${q.packets === 1 ? '' : 's'}, DSCP ${q.dscpName}`;
}

/**
 * The text view of a successful probe (a failed one is a single error line
 * printed by the caller). Lines whose values could not be computed are left
 * out rather than shown empty.
 */
export function renderProbeText(r: ProbeReport): string {
  const out: string[] = [title(r)];
  const s = r.session;
  const t = r.traffic;
  if (!s || !t || !r.roundTrip || !r.outbound || !r.inbound) {
    if (r.error) out.push(`  failed (${r.error.reason}): ${r.error.message}`);
    return `${out.join('\n')}\n`;
  }
  const L = 13;
  // TWAMP Light / STAMP sessions have no control connection and no SID.
  const light = s.sid === '' || /^0*$/.test(s.sid ?? '');
  out.push(`  ${pad('reflector', L)}${formatHostPort(s.reflectorAddress, s.reflectorTestPort)} (test port${r.request.reflectorPortRequested ? `, requested ${r.request.reflectorPortRequested}` : ''})` +
    `${light ? ', TWAMP Light / STAMP (no control connection)' : `, control port ${r.target.controlPort}`}, IPv${s.ipVersion}`);
  out.push(`  ${pad('sender', L)}${formatHostPort(s.senderAddress, s.senderTestPort)} (test port)`);
  out.push(`  ${pad(light ? 'padding' : 'SID', L)}${light ? '' : `${s.sid}, padding `}${s.paddingLengthOctets} octets` +
    `${s.securityMode ? `, ${s.securityMode} mode` : ''}`);
  const dscp = `${r.request.dscpName} (${r.request.dscp})`;
  out.push(`  ${pad('DSCP', L)}${s.dscpMarked
    ? `${dscp}, marked on the test packets`
    : r.request.dscp === 0 ? `${dscp}` : `${dscp} requested in Type-P, but the test packets were NOT marked${s.dscpNote ? `: ${s.dscpNote}` : ''}`}`);
  out.push(`  ${pad('clocks', L)}${s.clocksSynchronized
    ? 'synchronized at both ends: one-way delays are meaningful'
    : 'NOT synchronized: one-way delays include the clock offset between the hosts (may be negative); trust the round trip'}`);
  if (r.timestamps) out.push(`  ${pad('timestamps', L)}${timestampsText(r.timestamps)}`);
  out.push(`  ${pad('path', L)}${pathText(r.outbound, r.inbound)}`);
  out.push(`  ${pad('DSCP out', L)}${dscpText(r.outbound, true)}`);
  out.push(`  ${pad('DSCP in', L)}${dscpText(r.inbound, false)}`);
  out.push('');

  const dirs: [string, ProbeDirection][] = [['round trip', r.roundTrip], ['outbound', r.outbound], ['inbound', r.inbound]];
  if (r.roundTrip.samples === 0) {
    out.push('  no reflections came back: no delay measurements');
  } else {
    const havePct = r.roundTrip.delayNs.median !== null;
    const cols: [string, (d: ProbeDirection) => number | null][] = [
      ['min', (d) => d.delayNs.min],
      ...(havePct ? [
        ['median', (d: ProbeDirection) => d.delayNs.median],
        ['p90', (d: ProbeDirection) => d.delayNs.p90],
        ['p99', (d: ProbeDirection) => d.delayNs.p99],
      ] as [string, (d: ProbeDirection) => number | null][] : []),
      ['max', (d) => d.delayNs.max],
      ['avg', (d) => d.delayNs.avg],
      ['jitter', (d) => d.jitterNs],
    ];
    const W = 10;
    out.push(`  ${pad('delay, ms', L)}${cols.map(([h]) => lpad(h, W)).join('')}`);
    for (const [name, d] of dirs) {
      const label = name === 'round trip' || s.clocksSynchronized ? name : `${name} *`;
      out.push(`  ${pad(label, L)}${cols.map(([, f]) => lpad(fmtMs(f(d)), W)).join('')}`);
    }
    if (!s.clocksSynchronized) out.push('  * one-way: clocks not synchronized, includes the clock offset');
  }
  out.push('');
  out.push(`  ${pad('loss', L)}round trip ${r.roundTrip.lossPackets}/${t.sentPackets} (${fmtPct(r.roundTrip.lossPercent)}), ` +
    `outbound ${r.outbound.lossPackets} (${fmtPct(r.outbound.lossPercent)}), inbound ${r.inbound.lossPackets} (${fmtPct(r.inbound.lossPercent)})`);
  out.push(`  ${pad('', L)}duplicates ${t.duplicates}, reordered ${t.reordered}` +
    `${t.unexpected ? `, unexpected ${t.unexpected}` : ''}${s.invalidReplies ? `, invalid datagrams ${s.invalidReplies}` : ''}`);
  out.push(`  ${pad('sent', L)}${t.sentPackets} packets, ${t.sentOctets} octets in ${(t.sendDurationNs / 1e9).toFixed(3)} s` +
    `${t.sentPackets > 1 ? ` (${t.sentPacketsPerSecond.toFixed(1)} pps, ${fmtRate(t.sentBitsPerSecond)})` : ''}`);
  out.push(`  ${pad('received', L)}${t.receivedPackets} packets, ${t.receivedOctets} octets` +
    `${t.receivedPackets > 1 ? ` (${t.receivedPacketsPerSecond.toFixed(1)} pps, ${fmtRate(t.receivedBitsPerSecond)})` : ''}`);
  if (t.residenceNs) {
    out.push(`  ${pad('residence', L)}reflector turnaround min/avg/max ${fmtMs(t.residenceNs.min)}/${fmtMs(t.residenceNs.avg)}/${fmtMs(t.residenceNs.max)} ms`);
  }
  if (r.mos) {
    const m = (x: number | null): string => (x === null ? '—' : x.toFixed(2));
    out.push(`  ${pad(`MOS (${r.request.model})`, L)}outbound ${m(r.mos.outbound)} (heard at the reflector), inbound ${m(r.mos.inbound)} (heard here)` +
      `${r.mos.delayBasis === 'half-round-trip' ? '; E-model fed half the round trip' : ''}`);
  }
  if (r.rttHistogram && r.rttHistogram.buckets.length > 0) {
    out.push('');
    out.push(`  round-trip delay histogram, ms (${r.roundTrip.samples} samples)`);
    out.push(...textHistogram(r.rttHistogram.buckets));
  }
  if (r.maxLoss) {
    out.push('');
    out.push(`  max loss     ${fmtPct(r.maxLoss.thresholdPercent)}: ${r.maxLoss.exceeded ? 'EXCEEDED' : 'ok'}`);
  }
  return `${out.join('\n')}\n`;
}

const ECN_NAMES = ['Not-ECT', 'ECT(1)', 'ECT(0)', 'CE'] as const;

/** µs below a millisecond, else ms. */
function fmtUs(ns: number): string {
  return ns < 1e6 ? `${(ns / 1e3).toFixed(1)} µs` : `${(ns / 1e6).toFixed(3)} ms`;
}

/** `kernel (native datapath, …); departure error p50 … p99 …`, or why the native datapath is not in use. */
function timestampsText(t: ProbeTimestamps): string {
  const parts = t.t1 === t.t4 ? `T1 and T4 ${t.t1}` : `T1 ${t.t1}, T4 ${t.t4}`;
  let line = `${t.source} (${parts}, ${t.datapath === 'native' ? 'native datapath' : 'JS datapath'})`;
  if (t.nativeUnavailable !== null) line += `: ${t.nativeUnavailable}`;
  if (t.departureErrorNs) line += `; departure error p50 ${fmtUs(t.departureErrorNs.p50)}, p99 ${fmtUs(t.departureErrorNs.p99)}`;
  return line;
}

/** `hops out 0, in 0`. */
function pathText(o: ProbeOneWay, i: ProbeOneWay): string {
  const hops = (h: ProbePath['hops']): string => (h === null ? 'unknown' : h.min === h.max ? `${h.min}` : `${h.min}–${h.max}`);
  return `hops out ${hops(o.hops)}, in ${hops(i.hops)}`;
}

/**
 * One direction's marking: `sent ef (46), received cs1 (8) (RFC 7750), 100 remarked; ECN Not-ECT (0)`;
 * outbound "received" is what the reflector reported, `unknown (the reflector reports none)` without a report.
 */
function dscpText(d: ProbeOneWay, outbound: boolean): string {
  const name = (v: number | null): string => (v === null ? 'unknown' : `${dscpName(v)} (${v})`);
  let line = `sent ${name(d.dscp.sent)}, received `;
  if (d.dscp.received === null && outbound) line += 'unknown (the reflector reports none: needs RFC 7750 or the STAMP CoS TLV)';
  else line += name(d.dscp.received);
  if (d.dscp.reportedBy !== null) line += ` (${d.dscp.reportedBy === 'rfc7750' ? 'RFC 7750' : 'CoS TLV'})`;
  if (d.dscp.remarkedPackets !== null) line += `, ${d.dscp.remarkedPackets} remarked`;
  if (d.dscp.replyDscpRefused) line += `; the reflector refused DSCP1 for ${d.dscp.replyDscpRefused} replies (RP 1)`;
  if (d.ecn !== null) line += `; ECN ${ECN_NAMES[d.ecn & 3]} (${d.ecn})`;
  return line;
}

/** Bars scaled to the largest bucket, at most `width` cells. */
function textHistogram(buckets: ProbeHistogramBucket[], width = 40): string[] {
  const maxCount = Math.max(1, ...buckets.map((b) => b.count));
  const step = buckets.length ? buckets[0]!.hiNs - buckets[0]!.loNs : 1;
  // Enough decimals to tell the edges apart (µs resolution at most).
  const decimals = Math.min(3, Math.max(0, Math.ceil(-Math.log10(step / 1e6) + 1e-9)));
  const edge = (ns: number): string => (ns / 1e6).toFixed(decimals);
  const labels = buckets.map((b) => `${edge(b.loNs)}–${edge(b.hiNs)}`);
  const lw = Math.max(...labels.map((l) => l.length));
  const cw = Math.max(...buckets.map((b) => String(b.count).length));
  return buckets.map((b, k) => {
    const cells = b.count === 0 ? 0 : Math.max(1, Math.round((b.count / maxCount) * width));
    return `    ${lpad(labels[k]!, lw)}  ${lpad(String(b.count), cw)} ${'█'.repeat(cells)}`.trimEnd();
  });
}
