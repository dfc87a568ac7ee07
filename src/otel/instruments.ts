/**
 * Every instrument the plugin exports, in one table: the `legacy` names are
 * the reference agent's documented names and units (Gufo Agent's
 * twamp_sender / twamp_reflector docs), the `otel` names follow the
 * OpenTelemetry metric naming guidelines. The README's metric table is
 * checked against this table by a test.
 */
import { ValueType } from '@opentelemetry/api';

export type NamingProfile = 'legacy' | 'otel';

export type InstrumentKind = 'gauge' | 'counter' | 'updowncounter' | 'histogram';

export interface MetricSpec<K extends string = string> {
  /** Key of the value in the producer's snapshot. */
  readonly key: K;
  readonly kind: InstrumentKind;
  readonly legacy: { readonly name: string; readonly unit: string };
  readonly otel: { readonly name: string; readonly unit: string; /** multiply the legacy value by this */ readonly scale: number };
  readonly description: string;
  readonly valueType: ValueType;
  /** Not in the reference docs: our addition. */
  readonly extra?: boolean;
  /** Histograms: bucket boundaries in the legacy unit (scaled for otel). */
  readonly buckets?: readonly number[];
}

const NS_TO_S = 1e-9;

/** Sender directions as metric keys spell them: inbound, outbound, round trip. */
type Direction = 'in' | 'out' | 'rt';

function delay<D extends Direction, S extends 'min' | 'max' | 'avg'>(dir: D, stat: S, words: string): MetricSpec<`${D}_${S}_delay`> {
  const otelDir = dir === 'rt' ? 'round_trip' : dir === 'in' ? 'inbound' : 'outbound';
  const statWord = stat === 'min' ? 'Minimum' : stat === 'max' ? 'Maximum' : 'Average';
  return {
    key: `${dir}_${stat}_delay`, kind: 'gauge',
    legacy: { name: `twamp_${dir}_${stat}_delay_ns`, unit: 'ns' },
    otel: { name: `twamp.sender.${otelDir}.delay.${stat}`, unit: 's', scale: NS_TO_S },
    description: `${statWord} ${words} delay in nanoseconds`, valueType: ValueType.INT,
  };
}

function jitter<D extends Direction>(dir: D, words: string): MetricSpec<`${D}_jitter`> {
  const otelDir = dir === 'rt' ? 'round_trip' : dir === 'in' ? 'inbound' : 'outbound';
  return {
    key: `${dir}_jitter`, kind: 'gauge',
    legacy: { name: `twamp_${dir}_jitter_ns`, unit: 'ns' },
    otel: { name: `twamp.sender.${otelDir}.jitter`, unit: 's', scale: NS_TO_S },
    description: `Jitter of the ${words} delay in nanoseconds`, valueType: ValueType.INT,
  };
}

function loss<D extends Direction>(dir: D, words: string): MetricSpec<`${D}_loss`> {
  const otelDir = dir === 'rt' ? 'round_trip' : dir === 'in' ? 'inbound' : 'outbound';
  return {
    key: `${dir}_loss`, kind: 'gauge',
    legacy: { name: `twamp_${dir}_loss`, unit: '{packet}' },
    otel: { name: `twamp.sender.${otelDir}.loss`, unit: '{packet}', scale: 1 },
    description: `Packet loss in ${words}`, valueType: ValueType.INT,
  };
}

function plain<K extends string>(key: K, legacy: string, otel: string, unit: string, description: string,
  valueType: ValueType = ValueType.INT, otelUnit = unit, scale = 1): MetricSpec<K> {
  return { key, kind: 'gauge', legacy: { name: legacy, unit }, otel: { name: otel, unit: otelUnit, scale }, description, valueType };
}

/** The 26 metrics of the reference twamp_sender table, in its order. */
export const SENDER_MEASUREMENTS = [
  plain('tx_packets', 'twamp_tx_packets', 'twamp.sender.sent.packets', '{packet}', 'Transmitted packets'),
  plain('rx_packets', 'twamp_rx_packets', 'twamp.sender.received.packets', '{packet}', 'Received packets'),
  plain('tx_bytes', 'twamp_tx_bytes', 'twamp.sender.sent.size', 'By', 'Transmitted octets'),
  plain('rx_bytes', 'twamp_rx_bytes', 'twamp.sender.received.size', 'By', 'Received octets'),
  plain('duration', 'twamp_duration_ns', 'twamp.sender.session.duration', 'ns', 'Session duration in nanoseconds',
    ValueType.INT, 's', NS_TO_S),
  plain('tx_pps', 'twamp_tx_pps', 'twamp.sender.sent.rate', '{packet}/s', 'Transmitted packets-per-second rate', ValueType.DOUBLE),
  plain('rx_pps', 'twamp_rx_pps', 'twamp.sender.received.rate', '{packet}/s', 'Received packet-per-second rate', ValueType.DOUBLE),
  plain('tx_bitrate', 'twamp_tx_bitrate', 'twamp.sender.sent.bitrate', 'bit/s', 'Transmitted bitrate', ValueType.DOUBLE),
  plain('rx_bitrate', 'twamp_rx_bitrate', 'twamp.sender.received.bitrate', 'bit/s', 'Received bitrate', ValueType.DOUBLE),
  delay('in', 'min', 'inbound'), delay('in', 'max', 'inbound'), delay('in', 'avg', 'inbound'),
  jitter('in', 'inbound'), loss('in', 'inbound direction'),
  plain('in_mos', 'twamp_in_mos', 'twamp.sender.inbound.mos', '1', 'eMOS for local end', ValueType.DOUBLE),
  delay('out', 'min', 'outbound'), delay('out', 'max', 'outbound'), delay('out', 'avg', 'outbound'),
  jitter('out', 'outbound'), loss('out', 'outbound direction'),
  plain('out_mos', 'twamp_out_mos', 'twamp.sender.outbound.mos', '1', 'eMOS for remote end', ValueType.DOUBLE),
  delay('rt', 'min', 'round-trip'), delay('rt', 'max', 'round-trip'), delay('rt', 'avg', 'round-trip'),
  jitter('rt', 'round-trip'), loss('rt', 'both directions'),
] as const satisfies readonly MetricSpec[];

function percentile<D extends Direction, P extends 50 | 90 | 99>(dir: D, p: P, words: string): MetricSpec<`${D}_p${P}_delay`> {
  const otelDir = dir === 'rt' ? 'round_trip' : dir === 'in' ? 'inbound' : 'outbound';
  return {
    key: `${dir}_p${p}_delay`, kind: 'gauge',
    legacy: { name: `twamp_${dir}_p${p}_delay_ns`, unit: 'ns' },
    otel: { name: `twamp.sender.${otelDir}.delay.p${p}`, unit: 's', scale: NS_TO_S },
    description: `${p}th percentile of the ${words} delay in nanoseconds`, valueType: ValueType.INT, extra: true,
  };
}

/**
 * What the sender's datapath saw of the path and of its own timestamps (README
 * "Metrics", "Path and timestamps"). Hop counts assume the far end sent TTL /
 * hop limit 255 (RFC 5357 §4.2.1, RFC 8762 §4.2). Each is exported only when
 * observed: the node:dgram fallback cannot read TTL, TOS or kernel
 * timestamps, and a reply without the Sender TTL field (38-octet twampy
 * replies) leaves the outbound hops unknown — no series, never a fake 0.
 * DSCP per direction: sent and received. Outbound "received" is what the
 * reflector reports of the DS byte our packets arrived with — RFC 7750
 * S-DSCP-ECN (TWAMP, when the server offers DSCP and ECN Monitoring) or the
 * RFC 8972 §4.4 Class of Service TLV (STAMP) — so it has no series against a
 * reflector that reports neither (perfSONAR twampd, TWAMP-Light responders).
 */
export const SENDER_PATH = [
  { ...plain('out_hops', 'twamp_out_hops', 'twamp.sender.outbound.hops', '{hop}',
    'Outbound hops (255 - the Sender TTL the reflector reflected, RFC 5357 §4.2.1), largest in the session'), extra: true },
  { ...plain('in_hops', 'twamp_in_hops', 'twamp.sender.inbound.hops', '{hop}',
    'Inbound hops (255 - TTL / hop limit of the replies as received), largest in the session'), extra: true },
  { ...plain('out_dscp_sent', 'twamp_out_dscp_sent', 'twamp.sender.outbound.dscp.sent', '1',
    'DSCP the test packets were sent with (0 when marking was unavailable)'), extra: true },
  { ...plain('out_dscp_received', 'twamp_out_dscp_received', 'twamp.sender.outbound.dscp.received', '1',
    'DSCP the test packets arrived with at the reflector, as it reported it (RFC 7750 S-DSCP-ECN or the RFC 8972 Class of Service TLV; the last report)'), extra: true },
  { ...plain('out_dscp_remarked', 'twamp_out_dscp_remarked', 'twamp.sender.outbound.dscp.remarked', '{packet}',
    'Test packets the reflector reported arriving with a DSCP other than the one they were sent with (re-marked on the way out)'), extra: true },
  { ...plain('out_ecn_received', 'twamp_out_ecn_received', 'twamp.sender.outbound.ecn.received', '1',
    'ECN field the test packets arrived with at the reflector, as it reported it (the last report): 0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE'), extra: true },
  { ...plain('in_dscp_sent', 'twamp_in_dscp_sent', 'twamp.sender.inbound.dscp.sent', '1',
    'DSCP the reflector was asked to send its replies with (Type-P, or the Class of Service TLV\'s DSCP1; its DSCP2 when the reflector refused DSCP1)'), extra: true },
  { ...plain('in_dscp_received', 'twamp_in_dscp_received', 'twamp.sender.inbound.dscp.received', '1',
    'DSCP of the replies as received (the last reply of the session)'), extra: true },
  { ...plain('in_dscp_remarked', 'twamp_in_dscp_remarked', 'twamp.sender.inbound.dscp.remarked', '{packet}',
    'Replies received with a DSCP other than the one the reflector was asked to send them with (re-marked on the way back, or by the reflector)'), extra: true },
  { ...plain('in_ecn_received', 'twamp_in_ecn_received', 'twamp.sender.inbound.ecn.received', '1',
    'ECN field of the replies as received (the last reply): 0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE'), extra: true },
  { ...plain('timestamp_source_info', 'twamp_sender_timestamp_source_info', 'twamp.sender.timestamp.source_info', '1',
    'Always 1; the source label says where T1 and T4 came from (hardware, kernel or userspace; the weaker of the two)'), extra: true },
  { ...plain('departure_error_p99', 'twamp_sender_departure_error_p99_ns', 'twamp.sender.departure.error.p99', 'ns',
    '99th percentile of the test packets\' departure error (actual send - scheduled time, native scheduler only) in nanoseconds',
    ValueType.INT, 's', NS_TO_S), extra: true },
  { ...plain('t1_mismatches', 'twamp_t1_mismatches', 'twamp.sender.t1_mismatches', '{packet}',
    'Replies whose echoed T1 differs from the one sent (the sender measures with its own record)'), extra: true },
  { ...plain('send_errors', 'twamp_send_errors', 'twamp.sender.send_errors', '{packet}',
    'Test packets whose send failed (not counted as transmitted)'), extra: true },
] as const satisfies readonly MetricSpec[];

/** Beyond the reference: percentiles, duplicates, reordering, reflector residence, a delay histogram, path and timestamps. */
export const SENDER_EXTRA = [
  ...(['rt', 'out', 'in'] as const).flatMap((dir) => ([50, 90, 99] as const).map((p) =>
    percentile(dir, p, dir === 'rt' ? 'round-trip' : dir === 'in' ? 'inbound' : 'outbound'))),
  { ...plain('duplicates', 'twamp_duplicates', 'twamp.sender.duplicates', '{packet}',
    'Duplicate reflections received (either path)'), extra: true },
  { ...plain('reordered', 'twamp_reordered', 'twamp.sender.reordered', '{packet}',
    'Reflections received out of order (RFC 4737)'), extra: true },
  { ...plain('residence_avg', 'twamp_residence_avg_ns', 'twamp.sender.reflector_residence.avg', 'ns',
    'Average reflector residence time (T3 - T2) in nanoseconds', ValueType.INT, 's', NS_TO_S), extra: true },
  { ...plain('residence_max', 'twamp_residence_max_ns', 'twamp.sender.reflector_residence.max', 'ns',
    'Maximum reflector residence time (T3 - T2) in nanoseconds', ValueType.INT, 's', NS_TO_S), extra: true },
  { key: 'rt_delay', kind: 'histogram', legacy: { name: 'twamp_rt_delay_ns', unit: 'ns' },
    otel: { name: 'twamp.sender.round_trip.delay', unit: 's', scale: NS_TO_S },
    description: 'Round-trip delay of every answered packet, in nanoseconds', valueType: ValueType.DOUBLE, extra: true,
    buckets: [50e3, 100e3, 250e3, 500e3, 1e6, 2.5e6, 5e6, 10e6, 25e6, 50e6, 100e6, 250e6, 500e6, 1e9] },
  ...SENDER_PATH,
] as const satisfies readonly MetricSpec[];

/** Health of the sender's runs (blackbox_exporter's probe_success idea): a failed run is data, not silence. */
export const SENDER_HEALTH = [
  { ...plain('success', 'twamp_sender_success', 'twamp.sender.success', '1',
    '1 if the last test session succeeded, 0 if it failed'), extra: true },
  { ...plain('run_duration', 'twamp_sender_run_duration_seconds', 'twamp.sender.run.duration', 's',
    'Wall time of the last test session run, control exchange included', ValueType.DOUBLE), extra: true },
  { key: 'runs', kind: 'counter', legacy: { name: 'twamp_sender_runs', unit: '{run}' },
    otel: { name: 'twamp.sender.runs', unit: '{run}', scale: 1 },
    description: 'Test session runs attempted', valueType: ValueType.INT, extra: true },
  { key: 'errors', kind: 'counter', legacy: { name: 'twamp_sender_errors', unit: '{error}' },
    otel: { name: 'twamp.sender.errors', unit: '{error}', scale: 1 },
    description: 'Failed test session runs, by reason', valueType: ValueType.INT, extra: true },
] as const satisfies readonly MetricSpec[];

/** The reference twamp_reflector counters plus state gauges. */
export const REFLECTOR_METRICS = [
  { key: 'session_attempts', kind: 'counter', legacy: { name: 'twamp_reflector_session_attempts', unit: '{session}' },
    otel: { name: 'twamp.reflector.session.attempts', unit: '{session}', scale: 1 },
    description: 'Total amount of the attempted sessions', valueType: ValueType.INT },
  { key: 'session_started', kind: 'counter', legacy: { name: 'twamp_reflector_session_started', unit: '{session}' },
    otel: { name: 'twamp.reflector.session.started', unit: '{session}', scale: 1 },
    description: 'Total amount of the started sessions', valueType: ValueType.INT },
  { key: 'reflected_pkt', kind: 'counter', legacy: { name: 'twamp_reflector_reflected_pkt', unit: '{packet}' },
    otel: { name: 'twamp.reflector.reflected.packets', unit: '{packet}', scale: 1 },
    description: 'Total amount of the reflected packets', valueType: ValueType.INT },
  { key: 'reflected_octets', kind: 'counter', legacy: { name: 'twamp_reflector_reflected_octets', unit: 'By' },
    otel: { name: 'twamp.reflector.reflected.size', unit: 'By', scale: 1 },
    description: 'Total amount of the reflected octets', valueType: ValueType.INT },
  { key: 'dropped_pkt', kind: 'counter', legacy: { name: 'twamp_reflector_dropped_pkt', unit: '{packet}' },
    otel: { name: 'twamp.reflector.dropped.packets', unit: '{packet}', scale: 1 },
    description: 'Test packets not reflected (unknown source, malformed, outside the session)', valueType: ValueType.INT, extra: true },
  { key: 'light_rate_limited', kind: 'counter', legacy: { name: 'twamp_reflector_light_rate_limited_pkt', unit: '{packet}' },
    otel: { name: 'twamp.reflector.light.rate_limited.packets', unit: '{packet}', scale: 1 },
    description: 'TWAMP-Light/STAMP packets dropped by the per-source rate limit (light_rate_limit)', valueType: ValueType.INT, extra: true },
  // RFC 8972 §4.4 Class of Service TLV (STAMP), answered by the Light reflector; light_cos_allow is the policy on DSCP1.
  { key: 'light_cos_answered', kind: 'counter', legacy: { name: 'twamp_reflector_light_cos_answered_pkt', unit: '{packet}' },
    otel: { name: 'twamp.reflector.light.cos.answered.packets', unit: '{packet}', scale: 1 },
    description: 'STAMP replies that answered a Class of Service TLV (RFC 8972 §4.4): DSCP2 and ECN as received, the reply marked with DSCP1, or with the received DSCP when DSCP1 was refused', valueType: ValueType.INT, extra: true },
  { key: 'light_cos_refused', kind: 'counter', legacy: { name: 'twamp_reflector_light_cos_refused_pkt', unit: '{packet}' },
    otel: { name: 'twamp.reflector.light.cos.refused.packets', unit: '{packet}', scale: 1 },
    description: 'Class of Service TLVs whose DSCP1 the policy refused (RP = 1, light_cos_allow): the reply kept the DSCP its request arrived with (also counted in light_cos_answered)', valueType: ValueType.INT, extra: true },
  { key: 'refused', kind: 'counter', legacy: { name: 'twamp_reflector_refused', unit: '{event}' },
    otel: { name: 'twamp.reflector.refused', unit: '{event}', scale: 1 },
    description: 'Refused requests and failed control connections, by reason', valueType: ValueType.INT, extra: true },
  { key: 'active_sessions', kind: 'updowncounter', legacy: { name: 'twamp_reflector_active_sessions', unit: '{session}' },
    otel: { name: 'twamp.reflector.session.active', unit: '{session}', scale: 1 },
    description: 'Test sessions currently set up', valueType: ValueType.INT, extra: true },
  { key: 'control_connections', kind: 'updowncounter', legacy: { name: 'twamp_reflector_control_connections', unit: '{connection}' },
    otel: { name: 'twamp.reflector.control.connections', unit: '{connection}', scale: 1 },
    description: 'TWAMP-Control connections currently open', valueType: ValueType.INT, extra: true },
  { key: 'timestamp_source_info', kind: 'gauge', legacy: { name: 'twamp_reflector_timestamp_source_info', unit: '1' },
    otel: { name: 'twamp.reflector.timestamp.source_info', unit: '1', scale: 1 },
    description: 'Always 1; the source label says where the reflector\'s T2 and T3 come from (hardware, kernel or userspace)',
    valueType: ValueType.INT, extra: true },
] as const satisfies readonly MetricSpec[];

/** The agent's own identity (like Prometheus' *_build_info). */
export const AGENT_METRICS = [
  { key: 'build_info', kind: 'gauge', legacy: { name: 'twamp_agent_build_info', unit: '1' },
    otel: { name: 'twamp.agent.build_info', unit: '1', scale: 1 },
    description: 'Always 1; labels carry the otel-twamp and Node.js versions', valueType: ValueType.INT, extra: true },
  // Agents with `mesh:` only (docs/configuration.md "Mesh").
  { key: 'mesh_generation', kind: 'gauge', legacy: { name: 'twamp_mesh_generation', unit: '1' },
    otel: { name: 'twamp.mesh.generation', unit: '1', scale: 1 },
    description: 'Mesh definition versions applied since the agent started (1 = the first); agents with mesh: only', valueType: ValueType.INT, extra: true },
  { key: 'mesh_members', kind: 'gauge', legacy: { name: 'twamp_mesh_members', unit: '{member}' },
    otel: { name: 'twamp.mesh.members', unit: '{member}', scale: 1 },
    description: 'Members of the applied mesh definition', valueType: ValueType.INT, extra: true },
  { key: 'mesh_senders', kind: 'gauge', legacy: { name: 'twamp_mesh_senders', unit: '{sender}' },
    otel: { name: 'twamp.mesh.senders', unit: '{sender}', scale: 1 },
    description: 'Senders this agent runs for the applied mesh definition', valueType: ValueType.INT, extra: true },
  { key: 'mesh_errors', kind: 'counter', legacy: { name: 'twamp_mesh_errors', unit: '1' },
    otel: { name: 'twamp.mesh.errors', unit: '1', scale: 1 },
    description: 'Mesh definitions not applied (unreadable, invalid, or refused by the agent); the running one is kept', valueType: ValueType.INT, extra: true },
  { key: 'mesh_dns_errors', kind: 'counter', legacy: { name: 'twamp_mesh_dns_errors', unit: '1' },
    otel: { name: 'twamp.mesh.dns.errors', unit: '1', scale: 1 },
    description: 'Resolutions of a mesh member set from DNS that failed; the members of the last answer are kept', valueType: ValueType.INT, extra: true },
  // The session cap (docs/configuration.md "Mesh", "Spreading the load": agent.max_concurrent_sessions, max_sessions_per_reflector).
  { key: 'sessions_active', kind: 'gauge', legacy: { name: 'twamp_agent_sessions_active', unit: '{session}' },
    otel: { name: 'twamp.agent.session.active', unit: '{session}', scale: 1 },
    description: 'Sender test sessions running now (at most max_concurrent_sessions)', valueType: ValueType.INT, extra: true },
  { key: 'sessions_queued', kind: 'gauge', legacy: { name: 'twamp_agent_sessions_queued', unit: '{session}' },
    otel: { name: 'twamp.agent.session.queued', unit: '{session}', scale: 1 },
    description: 'Sender test sessions waiting for a slot (the agent or their reflector at its cap)', valueType: ValueType.INT, extra: true },
  { key: 'session_queue_wait', kind: 'counter', legacy: { name: 'twamp_agent_session_queue_wait_seconds', unit: 's' },
    otel: { name: 'twamp.agent.session.queue.wait', unit: 's', scale: 1 },
    description: 'Time sender test sessions spent waiting for a slot, in total', valueType: ValueType.DOUBLE, extra: true },
] as const satisfies readonly MetricSpec[];

/** The keys of a metric table: what a producer may emit into an InstrumentSet built from it. */
export type MetricKey<T extends readonly MetricSpec[]> = T[number]['key'];

/**
 * One value per key, every key present: a producer's values typed this way
 * fail to compile when a key of the table is missing or misspelt. Undefined:
 * not observed (no series is exported).
 */
export type MetricValues<K extends string> = { readonly [P in K]: number | undefined };

export type SenderMeasurementKey = MetricKey<typeof SENDER_MEASUREMENTS>;
export type SenderPathKey = MetricKey<typeof SENDER_PATH>;
export type SenderExtraKey = MetricKey<typeof SENDER_EXTRA>;
export type SenderHealthKey = MetricKey<typeof SENDER_HEALTH>;
/** Every key of the sender's instruments (SENDER_MEASUREMENTS, SENDER_EXTRA, SENDER_HEALTH). */
export type SenderMetricKey = SenderMeasurementKey | SenderExtraKey | SenderHealthKey;
export type ReflectorMetricKey = MetricKey<typeof REFLECTOR_METRICS>;
export type AgentMetricKey = MetricKey<typeof AGENT_METRICS>;

export function metricName(spec: MetricSpec, profile: NamingProfile): string {
  return profile === 'legacy' ? spec.legacy.name : spec.otel.name;
}

/**
 * The name a Prometheus scrape shows (what relabel rules match): dots become
 * underscores and monotonic counters get `_total`, as the OTel Prometheus
 * exporter writes them (it adds no unit suffix).
 */
export function prometheusName(spec: MetricSpec, profile: NamingProfile): string {
  const base = metricName(spec, profile).replace(/[^a-zA-Z0-9_:]/g, '_');
  return spec.kind === 'counter' ? `${base}_total` : base;
}

/** Inverse of the `_total` rule: the instrument/stream name that is scraped as `visible`. */
export function streamNameForPrometheus(spec: MetricSpec, visible: string): string {
  return spec.kind === 'counter' && visible.endsWith('_total') ? visible.slice(0, -'_total'.length) : visible;
}

/** The value as exported under a profile (otel: seconds instead of ns). */
export function exportedValue(spec: MetricSpec, profile: NamingProfile, v: number): number {
  return profile === 'legacy' ? v : v * spec.otel.scale;
}
