/**
 * TwampReflector: the `twamp_reflector` collector as an OpenTelemetry
 * producer: a TWAMP server (control + session-reflector) serving any
 * compliant client, with cumulative counters of session attempts, started
 * sessions, reflected packets and octets, and gauges of its current load.
 */
import { metrics } from '@opentelemetry/api';
import { ControlServer, REFUSAL_REASONS, newControlServerCounters, type ControlServerCounters, type SessionEvent } from './session/controlServer.js';
import { systemClock } from './session/clock.js';
import { LightReflector } from './session/lightReflector.js';
import type { TimestampSource } from './session/datapath.js';
import { ClientAcl, formatHostPort } from './util/net.js';
import { warnLogger, childLogger, type Logger } from './util/log.js';
import { REFLECTOR_METRICS, type NamingProfile, type ReflectorMetricKey } from './otel/instruments.js';
import { reflectorAttributes, attributeKey } from './otel/attributes.js';
import { InstrumentSet, type Emit } from './otel/instrumentSet.js';
import type { Labels } from './otel/relabel.js';
import type { ReflectorConfig } from './options.js';
import type { ProducerOptions } from './sender.js';
import { METER_NAME, VERSION } from './version.js';

export interface ReflectorOptions extends ProducerOptions {
  /** Test sessions as they are accepted and end. */
  onSessionEvent?: (e: SessionEvent) => void;
}

export class TwampReflector {
  readonly config: ReflectorConfig;
  readonly counters: ControlServerCounters = newControlServerCounters();
  private readonly log: Logger;
  private readonly instruments: InstrumentSet<ReflectorMetricKey>;
  private readonly server: ControlServer;
  private baseLabels: Labels;
  private readonly profile: NamingProfile;
  private readonly agentLabels: Labels;
  private readonly reasonKey: string;
  private bound: { address: string; port: number } | undefined;
  /** TWAMP-Light / STAMP reflector (`light_port`), if configured. */
  private readonly light: LightReflector | undefined;
  private lightBound: { address: string; port: number } | undefined;

  /**
   * @param config the reflector's settings, as `parseReflectorConfig` (from
   *   `otel-twamp/config`) makes them from a Gufo-style `twamp_reflector`
   *   collector object, or as the agent loads them.
   */
  constructor(config: ReflectorConfig, opts: ReflectorOptions = {}) {
    this.config = config;
    this.log = childLogger(opts.logger ?? warnLogger, `[${this.config.id}] `);
    const relabel = this.config.relabeler;
    const meter = (opts.meterProvider ?? metrics.getMeterProvider()).getMeter(METER_NAME, VERSION);
    this.instruments = new InstrumentSet(meter, REFLECTOR_METRICS, { profile: opts.naming ?? 'legacy', relabel });
    this.profile = opts.naming ?? 'legacy';
    this.agentLabels = opts.labels ?? {};
    this.baseLabels = this.identity(this.config.port);
    this.reasonKey = attributeKey(this.profile, 'reason')!;
    // One access list (allow/deny, parsed at load) for the control listener and the Light reflector.
    const acl = new ClientAcl(this.config.allow, this.config.deny);
    this.server = new ControlServer({
      host: this.config.listen, port: this.config.port, clock: opts.clock ?? systemClock(), log: this.log,
      counters: this.counters, refwaitMs: this.config.refwaitMs, servwaitMs: this.config.servwaitMs,
      maxSessions: this.config.maxSessions,
      messageTimeoutMs: this.config.controlTimeoutMs, maxConnections: this.config.maxConnections,
      maxSessionsPerConnection: this.config.maxSessionsPerConnection, maxSessionDurationMs: this.config.maxSessionDurationMs,
      maxPpsPerSession: this.config.maxPpsPerSession, maxPps: this.config.maxPps, maxPadding: this.config.maxPadding,
      // Per-client fairness and third-party protection (docs/security.md).
      maxConnectionsPerClient: this.config.maxConnectionsPerClient, maxSessionsPerClient: this.config.maxSessionsPerClient,
      clientIpv6Prefix: this.config.clientIpv6Prefix, kdfRatePerClient: this.config.kdfRatePerClient,
      allowThirdPartySender: this.config.allowThirdPartySender, allowReplyPorts: this.config.allowReplyPorts,
      acl, modes: this.config.modes, kdfCount: this.config.kdfCount,
      ...(this.config.keys ? { lookupKey: (id: string) => this.config.keys!.get(id)?.reveal() } : {}),
      ...(this.config.testPortRange ? { testPortRange: this.config.testPortRange } : {}),
      ...(opts.onSessionEvent ? { onSessionEvent: opts.onSessionEvent } : {}),
    });
    if (this.config.lightPort !== undefined) {
      // Authenticated STAMP: the secret of `light_key_id` (config load checked it is in key_file).
      const lightKeyId = this.config.lightKeyId;
      const lightKey = lightKeyId !== undefined ? this.config.keys?.get(lightKeyId)?.reveal() : undefined;
      if (lightKeyId !== undefined && !lightKey) throw new TypeError(`light_key_id ${JSON.stringify(lightKeyId)} is not in key_file`);
      this.light = new LightReflector({
        host: this.config.listen, port: this.config.lightPort, clock: opts.clock ?? systemClock(), counters: this.counters,
        stateful: this.config.lightStateful, ratePps: this.config.lightRateLimit,
        idleMs: this.config.refwaitMs, ...(acl.active ? { acl } : {}),
        ...(lightKey ? { authKey: lightKey } : {}),
        lightFormat: this.config.lightFormat,
        // RFC 8972 §4.4 Class of Service TLV: DSCP1 granted when received so, or listed (`light_cos_allow`).
        cosAllowDscp: this.config.lightCosAllow,
        // Amplification and flood bounds (README "Security"); HMAC failures count in refused{reason="hmac"}.
        maxPps: this.config.lightMaxPps, maxOctetsPerSource: this.config.lightMaxOctetsPerSource,
        maxOctets: this.config.lightMaxOctets, symmetricOnly: this.config.lightSymmetricOnly, log: this.log,
        onRefused: (reason) => this.counters.refused.set(reason, (this.counters.refused.get(reason) ?? 0) + 1),
        allowReplyPorts: new Set(this.config.allowReplyPorts),
      });
    }
  }

  /** Where the TWAMP-Light / STAMP UDP socket is bound (after start()), if `light_port` is set. */
  get lightAddress(): { address: string; port: number } | undefined {
    return this.lightBound;
  }

  /** Where the control listener is bound (after start()). */
  get address(): { address: string; port: number } | undefined {
    return this.bound;
  }

  get activeSessions(): number {
    return this.server.activeSessions;
  }

  /** TWAMP-Control connections open now (the `control_connections` metric). */
  get controlConnections(): number {
    return this.server.activeConnections;
  }

  /** Where the reflector's T2 (and T3) come from: 'kernel' / 'hardware' on the native datapath, 'userspace' with node:dgram. */
  get timestampSource(): TimestampSource {
    return this.light?.timestampSource ?? this.server.timestampSource;
  }

  /** Listen for TWAMP-Control and register the instruments. Rejects if the port cannot be bound. */
  async start(): Promise<{ address: string; port: number }> {
    if (this.bound) return this.bound;
    const control = this.config.control;
    // With `control: false` only the Light socket listens: the address returned (and labelled) is its.
    if (this.light) {
      this.lightBound = await this.light.listen();
      this.log.info(`TWAMP-Light/STAMP reflector (${this.light.stateful ? 'stateful' : 'stateless'}) on UDP ${formatHostPort(this.lightBound.address, this.lightBound.port)}`);
    }
    try {
      this.bound = control ? await this.server.listen() : this.lightBound!;
    } catch (e) {
      await this.light?.close();
      this.lightBound = undefined;
      throw e;
    }
    if (this.config.port === 0 || !control) this.baseLabels = this.identity(this.bound.port); // ephemeral (tests): the real port
    this.instruments.start((emit) => this.snapshot(emit));
    if (control) this.log.info(`TWAMP reflector listening on ${formatHostPort(this.bound.address, this.bound.port)}`);
    return this.bound;
  }

  /** Close the listener, every control connection and every session; unregister. */
  async stop(): Promise<void> {
    await this.server.close();
    await this.light?.close();
    this.lightBound = undefined;
    this.instruments.stop();
    this.bound = undefined;
  }

  private identity(port: number): Labels {
    return reflectorAttributes(this.profile, {
      agentLabels: this.agentLabels, collectorLabels: this.config.labels, id: this.config.id, listen: this.config.listen, port,
    });
  }

  private snapshot(emit: Emit<ReflectorMetricKey>): void {
    const c = this.counters;
    const l = this.baseLabels;
    emit('session_attempts', c.sessionAttempts, l);
    emit('session_started', c.sessionsStarted, l);
    emit('reflected_pkt', c.reflectedPackets, l);
    emit('reflected_octets', c.reflectedOctets, l);
    emit('dropped_pkt', c.droppedPackets, l);
    if (this.light) {
      emit('light_rate_limited', this.light.rateLimited, l);
      emit('light_cos_answered', this.light.cosAnswered, l);
      emit('light_cos_refused', this.light.cosRefused, l);
    }
    // Every reason of the closed set at 0 before its first refusal, so increase() sees it (README "Metrics").
    for (const reason of REFUSAL_REASONS) if (!c.refused.has(reason)) emit('refused', 0, { ...l, [this.reasonKey]: reason });
    for (const [reason, n] of c.refused) emit('refused', n, { ...l, [this.reasonKey]: reason });
    emit('active_sessions', this.server.activeSessions, l);
    emit('control_connections', this.server.activeConnections, l);
    emit('timestamp_source_info', 1, { ...l, [attributeKey(this.profile, 'timestampSource')!]: this.timestampSource });
  }
}

