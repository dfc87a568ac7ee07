/**
 * Series identity per naming profile. `legacy` keeps the reference agent's
 * label style (plus labels that identify collector and reflector, so two
 * senders never collide); `otel` uses stable semantic-convention attributes
 * (server.address, server.port, network.type, error.type) and `twamp.*`
 * attributes. The README's semantic-conventions table is checked against
 * ATTRIBUTES by a test.
 */
import type { NamingProfile } from './instruments.js';
import type { Labels } from './relabel.js';

export interface AttributeSpec {
  legacy: string | undefined;
  otel: string | undefined;
  description: string;
  /** Semantic convention status of the otel key. */
  semconv: 'stable' | 'twamp';
}

/** Every attribute the producers set, keyed by role. */
export const ATTRIBUTES = {
  collectorType: { legacy: 'collector', otel: 'twamp.collector.type', description: 'Collector type: twamp_sender or twamp_reflector', semconv: 'twamp' },
  collectorId: { legacy: 'collector_id', otel: 'twamp.collector.id', description: "The collector's configured id", semconv: 'twamp' },
  reflector: { legacy: 'reflector', otel: undefined, description: 'Reflector as configured, host:port', semconv: 'twamp' },
  serverAddress: { legacy: undefined, otel: 'server.address', description: 'Reflector host name or address as configured (sender); listen address (reflector)', semconv: 'stable' },
  serverPort: { legacy: undefined, otel: 'server.port', description: 'Reflector TWAMP-Control port (sender); listen port (reflector)', semconv: 'stable' },
  listen: { legacy: 'listen', otel: undefined, description: 'Reflector listen address, host:port', semconv: 'twamp' },
  model: { legacy: 'model', otel: 'twamp.model', description: 'Traffic model: g711, g729, cbr, imix', semconv: 'twamp' },
  dscp: { legacy: undefined, otel: 'twamp.dscp', description: 'DSCP of the test session (name)', semconv: 'twamp' },
  networkType: { legacy: undefined, otel: 'network.type', description: 'ipv4 or ipv6, once a session has run', semconv: 'stable' },
  timestampSource: { legacy: 'source', otel: 'twamp.timestamp.source', description: 'Where the timestamps come from: hardware, kernel or userspace (the timestamp_source_info gauges only)', semconv: 'twamp' },
  reason: { legacy: 'reason', otel: 'error.type', description: 'Why a run failed or a request was refused', semconv: 'stable' },
  host: { legacy: 'host', otel: undefined, description: "Agent host (otel: the resource's host.name)", semconv: 'twamp' },
} as const satisfies Record<string, AttributeSpec>;

export type AttributeRole = keyof typeof ATTRIBUTES;

/** Builds a label set for a profile from role → value pairs; roles a profile does not use are skipped. */
function attributes(profile: NamingProfile, values: Partial<Record<AttributeRole, string | number | undefined>>): Labels {
  const out: Labels = {};
  for (const [role, v] of Object.entries(values) as [AttributeRole, string | number | undefined][]) {
    if (v === undefined) continue;
    const key = ATTRIBUTES[role][profile];
    if (key !== undefined) out[key] = String(v);
  }
  return out;
}

/** The attribute key of a role under a profile (e.g. reason → error.type). */
export function attributeKey(profile: NamingProfile, role: AttributeRole): string | undefined {
  return ATTRIBUTES[role][profile];
}

/** Attributes whose values are numbers in OTLP (semantic conventions); strings in our label maps. */
export const NUMERIC_ATTRIBUTES: ReadonlySet<string> = new Set(['server.port']);

/** Prometheus-visible form of an attribute key: what relabel rules and scrapes see. */
export function prometheusLabelName(key: string): string {
  const s = key.replace(/[^a-zA-Z0-9_]/g, '_');
  return /^[0-9]/.test(s) ? `_${s}` : s;
}

export interface SenderIdentity {
  /** Agent-level labels (and `host` in the legacy profile). */
  agentLabels: Labels;
  collectorLabels: Labels;
  id: string;
  reflector: string;
  port: number;
  model: string;
  dscp: string;
}

/** The attributes on every series of a sender, before per-run ones (error reason, network type). */
export function senderAttributes(profile: NamingProfile, s: SenderIdentity): Labels {
  const hostPort = s.reflector.includes(':') ? `[${s.reflector}]:${s.port}` : `${s.reflector}:${s.port}`;
  return {
    ...s.agentLabels,
    ...s.collectorLabels,
    ...attributes(profile, {
      collectorType: 'twamp_sender', collectorId: s.id, reflector: hostPort,
      serverAddress: s.reflector, serverPort: s.port, model: s.model, dscp: s.dscp,
    }),
  };
}

export interface ReflectorIdentity {
  agentLabels: Labels;
  collectorLabels: Labels;
  id: string;
  listen: string;
  port: number;
}

export function reflectorAttributes(profile: NamingProfile, r: ReflectorIdentity): Labels {
  const hostPort = r.listen.includes(':') ? `[${r.listen}]:${r.port}` : `${r.listen}:${r.port}`;
  return {
    ...r.agentLabels,
    ...r.collectorLabels,
    ...attributes(profile, {
      collectorType: 'twamp_reflector', collectorId: r.id, listen: hostPort, serverAddress: r.listen, serverPort: r.port,
    }),
  };
}
