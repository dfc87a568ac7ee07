/**
 * TwampSender: the `twamp_sender` collector as an OpenTelemetry producer.
 * Runs one TWAMP test session every `interval` seconds against a reflector
 * and exposes the last run's results as observable gauges (the 26 metrics of
 * the reference), plus run health. A failed run withdraws the measurement
 * series (they are not left looking fresh) and shows up as success = 0 and
 * an error count by reason.
 */
import { metrics, type MeterProvider } from '@opentelemetry/api';
import { createTrafficModel, type TrafficModel } from './measure/models.js';
import { estimateVoiceQuality, gufoMos } from './measure/emodel.js';
import type { DirectionStats, SessionResult, ReplySample } from './measure/stats.js';
import { runSenderSession } from './session/senderSession.js';
import type { SenderSessionResult } from './session/senderResult.js';
import { runLightSenderSession } from './session/lightSenderSession.js';
import { systemClock, type Clock } from './session/clock.js';
import { TwampSessionError, FAILURE_REASONS, type FailureReason } from './session/errors.js';
import { formatHostPort } from './util/net.js';
import { warnLogger, childLogger, type Logger } from './util/log.js';
import type { SessionSlots } from './session/sessionGate.js';
import {
  SENDER_MEASUREMENTS, SENDER_EXTRA, SENDER_HEALTH,
  type MetricValues, type NamingProfile, type SenderExtraKey, type SenderMeasurementKey, type SenderMetricKey, type SenderPathKey,
} from './otel/instruments.js';
import { senderAttributes, attributeKey } from './otel/attributes.js';
import { dscpName } from './protocol/index.js';
import { InstrumentSet, type Emit } from './otel/instrumentSet.js';
import type { Labels } from './otel/relabel.js';
import type { SenderConfig } from './options.js';
import { METER_NAME, VERSION } from './version.js';

export interface ProducerOptions {
  /** Defaults to the global MeterProvider (metrics.getMeterProvider()). */
  meterProvider?: MeterProvider;
  /** Labels added to every series (agent labels, host). Collector labels win. */
  labels?: Record<string, string>;
  logger?: Logger;
  /** Naming profile: 'legacy' (reference names, default) or 'otel'. */
  naming?: NamingProfile;
  clock?: Clock;
}

/** Per-session hooks of a sender (e.g. the probe's progress line and percentiles). */
export interface SenderOptions extends ProducerOptions {
  /** Each reflection: packets answered so far and sent so far. */
  onReply?: (received: number, sent: number) => void;
  /** Each decoded reflection, in arrival order. */
  onSample?: (sample: ReplySample) => void;
  /** A cap on sessions at once (the agent's, docs/configuration.md "Agent"): each run waits for a slot to its reflector first. */
  gate?: SessionSlots;
}

/**
 * Keys of the per-run values: the reference measurements and our extra
 * gauges; not the delay histogram (rt_delay, recorded per sample) nor the
 * timestamp source (a label of an info series).
 */
type StatValueKey = SenderMeasurementKey | Exclude<SenderExtraKey, SenderPathKey | 'rt_delay'>;
type PathValueKey = Exclude<SenderPathKey, 'timestamp_source_info'>;
/** The values of one run, every key present (a missing or misspelt key does not compile). */
export type SenderValues = MetricValues<StatValueKey | PathValueKey>;

/** The measurements of one successful run, keyed like SENDER_MEASUREMENTS. */
export interface SenderRunResult {
  session: SenderSessionResult;
  /** Value per metric key; undefined where there is no sample (e.g. no reply). */
  values: SenderValues;
  finishedAt: Date;
}

export type SenderRunOutcome =
  | { ok: true; result: SenderRunResult; durationMs: number }
  | { ok: false; reason: FailureReason; error: Error; durationMs: number };

export class TwampSender {
  readonly config: SenderConfig;
  readonly model: TrafficModel;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly instruments: InstrumentSet<SenderMetricKey>;
  private readonly baseLabels: Labels;
  private readonly profile: NamingProfile;
  private readonly reasonKey: string;
  private readonly networkTypeKey: string | undefined;
  private readonly sourceKey: string;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<SenderRunOutcome> | undefined;
  private abort: AbortController | undefined;
  private started = false;
  private last: SenderRunOutcome | undefined;
  private runs = 0;
  private readonly errors = new Map<FailureReason, number>();
  private readonly warned = new Set<string>();

  /**
   * @param config the sender's settings, as `parseSenderConfig` (from
   *   `otel-twamp/config`) makes them from a Gufo-style `twamp_sender`
   *   collector object, or as the agent loads them.
   */
  constructor(config: SenderConfig, private readonly opts: SenderOptions = {}) {
    this.config = config;
    this.model = createTrafficModel(this.config.model);
    this.log = childLogger(opts.logger ?? warnLogger, `[${this.config.id}] `);
    this.clock = opts.clock ?? systemClock();
    const relabel = this.config.relabeler;
    const meter = (opts.meterProvider ?? metrics.getMeterProvider()).getMeter(METER_NAME, VERSION);
    this.instruments = new InstrumentSet(meter, [...SENDER_MEASUREMENTS, ...SENDER_EXTRA, ...SENDER_HEALTH], {
      profile: opts.naming ?? 'legacy', relabel,
    });
    // Identify the collector and the reflector on every series so two senders never collide.
    this.profile = opts.naming ?? 'legacy';
    this.baseLabels = senderAttributes(this.profile, {
      agentLabels: opts.labels ?? {}, collectorLabels: this.config.labels, id: this.config.id,
      reflector: this.config.reflector, port: this.config.port, model: this.config.model.model,
      dscp: dscpName(this.config.dscp),
    });
    this.reasonKey = attributeKey(this.profile, 'reason')!;
    this.networkTypeKey = attributeKey(this.profile, 'networkType');
    this.sourceKey = attributeKey(this.profile, 'timestampSource')!;
  }

  /** The outcome of the last finished run, if any. */
  get lastOutcome(): SenderRunOutcome | undefined {
    return this.last;
  }

  /** Register the instruments and run a session now and then every `interval` seconds. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.instruments.start((emit) => this.snapshot(emit));
    const intervalMs = this.config.interval * 1000;
    // startOffsetMs (mesh stagger, docs/configuration.md "Mesh"): the grid starts that much later.
    const offsetMs = this.config.startOffsetMs;
    const t0 = Date.now() + offsetMs;
    const loop = (): void => {
      if (!this.started) return;
      void this.runOnce().finally(() => {
        if (!this.started) return;
        // Next slot on the fixed grid; a run longer than the interval skips slots.
        const elapsed = Date.now() - t0;
        const next = (Math.floor(elapsed / intervalMs) + 1) * intervalMs;
        this.timer = setTimeout(loop, next - elapsed);
      });
    };
    if (offsetMs > 0) this.timer = setTimeout(loop, offsetMs);
    else loop();
  }

  /** Stop scheduling, abort a running session (it still sends Stop-Sessions), unregister. */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.abort?.abort();
    if (this.running) await this.running.catch(() => undefined);
    this.instruments.stop();
  }

  /** Run one test session now (runs never overlap: a second call waits for the first). */
  runOnce(): Promise<SenderRunOutcome> {
    if (this.running) return this.running;
    const p = this.execute().finally(() => { this.running = undefined; });
    this.running = p;
    return p;
  }

  private async execute(): Promise<SenderRunOutcome> {
    let t0 = performance.now();
    this.abort = new AbortController();
    let release: (() => void) | undefined;
    this.runs++;
    let outcome: SenderRunOutcome;
    try {
      if (this.opts.gate) {
        release = await this.opts.gate.acquire(formatHostPort(this.config.reflector, this.config.port), this.abort.signal);
        t0 = performance.now(); // the run's duration leaves out the wait for a slot
      }
      const session = !this.config.control ? await runLightSenderSession({
        host: this.config.reflector, port: this.config.port, format: this.config.format,
        // Config allows only 'open' or 'authenticated' (with format stamp) when control is false.
        ...(this.config.modes[0] === 'authenticated' ? { mode: 'authenticated' as const } : {}),
        ...(this.config.modes[0] === 'authenticated' && this.config.secret ? { secret: this.config.secret.reveal() } : {}),
        dscp: this.config.dscp, nPackets: this.config.nPackets, model: this.config.model,
        replyTimeoutMs: this.config.replyTimeoutMs, clock: this.clock, signal: this.abort.signal,
        onDscpUnavailable: (reason) => this.warnOnce('dscp', `test packets not marked with DSCP ${this.config.dscp}: ${reason}`),
        ...(this.opts.onReply ? { onReply: this.opts.onReply } : {}),
        ...(this.opts.onSample ? { onSample: this.opts.onSample } : {}),
      }) : await runSenderSession({
        host: this.config.reflector, controlPort: this.config.port, reflectorPort: this.config.reflectorPort,
        dscp: this.config.dscp, nPackets: this.config.nPackets, model: this.config.model,
        controlTimeoutMs: this.config.controlTimeoutMs, replyTimeoutMs: this.config.replyTimeoutMs,
        clock: this.clock, signal: this.abort.signal,
        modes: this.config.modes,
        ...(this.config.keyId !== undefined ? { keyId: this.config.keyId } : {}),
        ...(this.config.secret ? { secret: () => this.config.secret!.reveal() } : {}),
        onDscpUnavailable: (reason) => this.warnOnce('dscp', `test packets not marked with DSCP ${this.config.dscp}: ${reason}`),
        onNotice: (message) => this.log.warn(message),
        ...(this.opts.onReply ? { onReply: this.opts.onReply } : {}),
        ...(this.opts.onSample ? { onSample: this.opts.onSample } : {}),
      });
      const result: SenderRunResult = {
        session, values: { ...measurementValues(session, this.model, this.config.mos), ...pathValues(session, this.config.dscp) },
        finishedAt: new Date(),
      };
      // The timestamp source is a metric label; why the native datapath is not in use goes to the log only.
      const why = session.timestamps.nativeUnavailable;
      if (why !== undefined) this.warnOnce('native', `native datapath unavailable, timestamps from ${session.timestamps.source}: ${why}`);
      this.instruments.record('rt_delay', session.rtSamplesNs, this.measuredLabels(session));
      outcome = { ok: true, result, durationMs: performance.now() - t0 };
      const s = session.stats;
      this.log.debug(`session done: ${s.txPackets} sent, ${s.rxPackets} received, rt loss ${s.rt.loss}`);
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      const reason: FailureReason = e instanceof TwampSessionError ? e.reason : 'protocol';
      this.errors.set(reason, (this.errors.get(reason) ?? 0) + 1);
      outcome = { ok: false, reason, error, durationMs: performance.now() - t0 };
      if (reason !== 'aborted') this.log.warn(`test session failed (${reason}): ${error.message}`);
    } finally {
      release?.();
      this.abort = undefined;
    }
    this.last = outcome;
    return outcome;
  }

  private warnOnce(key: string, msg: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.log.warn(msg);
  }

  /** Labels of measurement series: the base ones plus, in the otel profile, network.type. */
  private measuredLabels(session: SenderSessionResult): Labels {
    return this.networkTypeKey
      ? { ...this.baseLabels, [this.networkTypeKey]: session.ipVersion === 6 ? 'ipv6' : 'ipv4' } : this.baseLabels;
  }

  private snapshot(emit: Emit<SenderMetricKey>): void {
    const labels = this.baseLabels;
    emit('runs', this.runs, labels);
    // Every reason of the closed set from the start, at 0 until it happens: a
    // series born at its first failure hides that failure from increase()/rate()
    // (README "Metrics"); the Prometheus convention for known label values.
    for (const reason of FAILURE_REASONS) emit('errors', this.errors.get(reason) ?? 0, { ...labels, [this.reasonKey]: reason });
    const last = this.last;
    if (!last) return;
    emit('success', last.ok ? 1 : 0, labels);
    emit('run_duration', last.durationMs / 1000, labels);
    if (!last.ok) return; // a failed run withdraws the measurements
    const measured = this.measuredLabels(last.result.session);
    for (const spec of SENDER_MEASUREMENTS) emit(spec.key, last.result.values[spec.key], measured);
    // Path and timestamp values undefined in `values` were not observed: no series (SENDER_PATH).
    for (const spec of SENDER_EXTRA) {
      if (spec.key === 'rt_delay' || spec.key === 'timestamp_source_info') continue; // recorded, and emitted below
      emit(spec.key, last.result.values[spec.key], measured);
    }
    emit('timestamp_source_info', 1, { ...measured, [this.sourceKey]: last.result.session.timestamps.source });
  }
}

/** Map a session's statistics onto the reference metric keys. */
export function measurementValues(
  s: SenderSessionResult, model: TrafficModel, mos: 'g107' | 'gufo' = 'g107',
): MetricValues<StatValueKey> {
  const r: SessionResult = s.stats;
  const { in: i, out: o, rt } = r;
  let inMos: number | undefined;
  let outMos: number | undefined;
  const codec = model.codec;
  const rtAvgNs = rt.avgDelayNs;
  if (codec && r.txPackets > 0 && rtAvgNs !== undefined) {
    const mosOf = (d: DirectionStats): number => {
      // One-way delay only means something with synchronised clocks; otherwise RTT/2.
      const oneWayNs = s.clocksSynchronized && d.avgDelayNs !== undefined ? d.avgDelayNs : rtAvgNs / 2;
      const lossPercent = (d.loss / r.txPackets) * 100;
      const jitterNs = d.jitterNs ?? 0;
      // gufo: the reference agent's inputs too — |one-way average| whatever the clocks.
      return mos === 'gufo'
        ? gufoMos(codec, lossPercent, Math.abs(d.avgDelayNs ?? oneWayNs) / 1e6, jitterNs / 1e6)
        : estimateVoiceQuality(codec, { oneWayDelayMs: oneWayNs / 1e6, jitterMs: jitterNs / 1e6, lossPercent }).mos;
    };
    inMos = mosOf(i);
    outMos = mosOf(o);
  }
  return {
    tx_packets: r.txPackets, rx_packets: r.rxPackets, tx_bytes: r.txBytes, rx_bytes: r.rxBytes,
    duration: r.durationNs, tx_pps: r.txPps, rx_pps: r.rxPps, tx_bitrate: r.txBitrate, rx_bitrate: r.rxBitrate,
    in_min_delay: i.minDelayNs, in_max_delay: i.maxDelayNs, in_avg_delay: i.avgDelayNs, in_jitter: i.jitterNs, in_loss: i.loss,
    in_p50_delay: i.p50DelayNs, in_p90_delay: i.p90DelayNs, in_p99_delay: i.p99DelayNs, in_mos: inMos,
    out_min_delay: o.minDelayNs, out_max_delay: o.maxDelayNs, out_avg_delay: o.avgDelayNs, out_jitter: o.jitterNs, out_loss: o.loss,
    out_p50_delay: o.p50DelayNs, out_p90_delay: o.p90DelayNs, out_p99_delay: o.p99DelayNs, out_mos: outMos,
    rt_min_delay: rt.minDelayNs, rt_max_delay: rt.maxDelayNs, rt_avg_delay: rt.avgDelayNs, rt_jitter: rt.jitterNs, rt_loss: rt.loss,
    rt_p50_delay: rt.p50DelayNs, rt_p90_delay: rt.p90DelayNs, rt_p99_delay: rt.p99DelayNs,
    duplicates: r.duplicates, reordered: r.reordered, residence_avg: r.residence.avgNs, residence_max: r.residence.maxNs,
  };
}

/**
 * Path and timestamp values of a session (SENDER_PATH keys): undefined where
 * the datapath did not observe them, so no series is exported for them.
 */
export function pathValues(s: SenderSessionResult, dscp: number): MetricValues<PathValueKey> {
  const p = s.path;
  const ts = s.timestamps;
  // Unmarked packets leave with DSCP 0 (the socket's default TOS); remarking is
  // counted against the DSCP asked for, so it is only meaningful when they carried it.
  const marked = s.dscpMarked;
  return {
    out_hops: p?.outbound.hops?.max,
    in_hops: p?.inbound.hops?.max,
    out_dscp_sent: marked ? dscp : 0,
    // As the reflector reported them (RFC 7750 / RFC 8972 CoS TLV); no series when it did not.
    out_dscp_received: p?.outbound.dscp ?? undefined,
    out_dscp_remarked: p && marked && p.outbound.tosSamples > 0 ? p.outbound.remarked : undefined,
    out_ecn_received: p?.outbound.ecn ?? undefined,
    in_dscp_sent: p && marked ? p.inbound.dscpSent : undefined,
    in_dscp_received: p?.inbound.dscp ?? undefined,
    in_dscp_remarked: p && marked && p.inbound.tosSamples > 0 ? p.inbound.remarked : undefined,
    in_ecn_received: p?.inbound.ecn ?? undefined,
    departure_error_p99: ts?.departureErrorNs?.p99,
    t1_mismatches: s.t1Mismatches,
    send_errors: s.sendErrors,
  };
}
