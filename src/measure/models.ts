// Traffic models: the size and pacing of the test packets a sender emits.
//
// Gufo Agent config-compatible (twamp_sender.md "Traffic Models"): sizes are
// IP packet sizes including the IP and UDP headers; the sender pads the UDP
// payload to size − ipOverhead(ipVersion). Pure math: the scheduler owns the
// clock and accumulates the (possibly fractional) gaps.

import { G711, G729, type VoiceCodec } from './emodel.js';

export type ModelName = 'g711' | 'g729' | 'cbr' | 'imix';

/** The model keys of a twamp_sender collector config, as written by the user. */
export interface ModelConfig {
  model: ModelName;
  /** bit/s at IP level (cbr, imix). */
  bandwidth?: number;
  /** IP packet size in octets, IP + UDP headers included (cbr). */
  size?: number;
}

/** IP size of packet `seq` and the gap from its departure to the next one's. */
export interface PacketShape {
  readonly sizeIp: number;
  /** May be fractional; the scheduler accumulates gaps so rounding never drifts. */
  readonly gapNs: number;
}

export interface TrafficModel {
  readonly name: ModelName;
  /** Codec for MOS estimation; undefined for models that are not voice. */
  readonly codec: VoiceCodec | undefined;
  packet(seq: number): PacketShape;
  /** Mean packets per second. */
  readonly meanPps: number;
  /** Mean bit/s at IP level. */
  readonly meanBitrate: number;
  readonly minSizeIp: number;
  readonly maxSizeIp: number;
}

/** A model key is missing, unused by the model, or out of range. */
export class ModelConfigError extends Error {
  override readonly name = 'ModelConfigError';
  constructor(
    readonly key: 'model' | 'bandwidth' | 'size',
    message: string,
  ) {
    super(message);
  }
}

const IPV4_UDP_OVERHEAD = 20 + 8;
const IPV6_UDP_OVERHEAD = 40 + 8;
/** RTP fixed header (RFC 3550 §5.1), in a voice model's packets. */
const RTP_HEADER = 12;
/** Unauthenticated TWAMP-Test sender packet (RFC 5357 §4.1.2). */
const TWAMP_SENDER_MIN_PAYLOAD = 14;
/** Largest UDP payload: 65535 − 20 − 8 on IPv4; 65535 − 8 on IPv6 (no jumbograms). */
const MAX_UDP_PAYLOAD = { 4: 65507, 6: 65527 } as const;
/** A jumbo frame: the largest `size` we accept for cbr. */
const MAX_SIZE_IP = 9216;
const MIN_PPS = 1;
const MAX_PPS = 1_000_000;

/** IPv4/IPv6 + UDP header octets between an IP packet size and its UDP payload. */
export function ipOverhead(ipVersion: 4 | 6): number {
  return ipVersion === 4 ? IPV4_UDP_OVERHEAD : IPV6_UDP_OVERHEAD;
}

/**
 * IMIX cycle by seq mod 12 (Gufo's distribution: 7×70, 4×576, 1×1500 octets).
 * 70 rather than the classic 64 leaves room for a 69-octet TWAMP reply.
 */
const IMIX_CYCLE: readonly number[] = [70, 576, 70, 576, 70, 576, 70, 576, 70, 70, 70, 1500];
/** Bits per IMIX cycle: (7·70 + 4·576 + 1500)·8 = 34352. */
const IMIX_CYCLE_BITS = IMIX_CYCLE.reduce((a, b) => a + b, 0) * 8;

/**
 * Builds a validated model; errors name the offending key and the rule.
 * Voice models describe an RTP stream, so on IPv6 their packets are 20 octets
 * larger (40-octet IPv6 header, same UDP payload); cbr and imix sizes are
 * taken as given, IP header included, on either version.
 */
export function createTrafficModel(cfg: ModelConfig, ipVersion: 4 | 6 = 4): TrafficModel {
  const model: unknown = cfg.model;
  if (typeof model !== 'string' || !Object.hasOwn(MODELS, model)) {
    throw new ModelConfigError(
      'model',
      `model: ${JSON.stringify(model)} is not a traffic model (expected one of ${MODEL_NAMES.join(', ')})`,
    );
  }
  return MODELS[model as ModelName](cfg, ipVersion);
}

/**
 * A voice model: an RTP stream of `codec`, one 20 ms packet every 20 ms (50
 * pps), `payloadOctets` of codec payload per packet. Over IPv4 the packet is
 * 20 IP + 8 UDP + 12 RTP + payload octets.
 */
function voiceModel(name: ModelName, codec: VoiceCodec, payloadOctets: number): ModelBuilder {
  return (cfg, ipVersion) => {
    rejectUnused(cfg, name, 'bandwidth');
    rejectUnused(cfg, name, 'size');
    const sizeIp = IPV4_UDP_OVERHEAD + RTP_HEADER + payloadOctets + (ipVersion === 6 ? IPV6_UDP_OVERHEAD - IPV4_UDP_OVERHEAD : 0);
    return constantModel(name, sizeIp, 20e6, 50, sizeIp * 8 * 50, codec);
  };
}

type ModelBuilder = (cfg: ModelConfig, ipVersion: 4 | 6) => TrafficModel;

/**
 * Every traffic model, by the name a config gives (the one place a model is
 * added: the `ModelName` union and a row here; the config schema, the help
 * texts and MOS follow from it).
 */
const MODELS: { readonly [K in ModelName]: ModelBuilder } = {
  // 160 octets of G.711 per 20 ms: 200-octet IPv4 packets.
  g711: voiceModel('g711', G711, 160),
  // 20 octets of G.729 per 20 ms: 60-octet IPv4 packets. Its 32-octet UDP
  // payload is shorter than the 41-octet reflector header (RFC 5357 §4.2.1),
  // so its replies are 69 octets: rx ≠ tx bytes.
  g729: voiceModel('g729', G729, 20),
  cbr: (cfg) => {
    const bandwidth = requireBandwidth(cfg, 'cbr');
    const size = requireSize(cfg);
    const pps = bandwidth / (size * 8);
    checkRate(bandwidth, pps, `${size}-octet packets`);
    // Exact gap 1e9·size·8/bandwidth ns. The reference truncates to integer
    // pps first (10 Mbit/s, 256 B → 4882 pps, 204834 ns: 0.02 % slow, and
    // up to 50 % slow near 1 pps); the scheduler accumulates fractional gaps.
    return constantModel('cbr', size, (1e9 * size * 8) / bandwidth, pps, bandwidth, undefined);
  },
  imix: (cfg) => {
    rejectUnused(cfg, 'imix', 'size');
    const bandwidth = requireBandwidth(cfg, 'imix');
    const meanPps = (bandwidth * IMIX_CYCLE.length) / IMIX_CYCLE_BITS;
    checkRate(bandwidth, meanPps, 'IMIX packets');
    // One constant gap for the whole cycle, as the reference does, so the
    // IP bitrate over a full cycle equals `bandwidth`.
    const gapNs = (1e9 * IMIX_CYCLE_BITS) / (bandwidth * IMIX_CYCLE.length);
    const shapes = IMIX_CYCLE.map((sizeIp) => Object.freeze({ sizeIp, gapNs }));
    return Object.freeze({
      name: 'imix' as const,
      codec: undefined,
      packet: (seq: number): PacketShape => shapes[checkSeq(seq) % shapes.length]!,
      meanPps,
      meanBitrate: bandwidth,
      minSizeIp: Math.min(...IMIX_CYCLE),
      maxSizeIp: Math.max(...IMIX_CYCLE),
    });
  },
};

/** The traffic models' names, in the table's order (config schema, help texts). */
export const MODEL_NAMES = Object.keys(MODELS) as readonly ModelName[] as readonly [ModelName, ...ModelName[]];

/**
 * Throws if some packet of `m` cannot carry a TWAMP-Test sender packet
 * (14 octets, open mode) or exceeds the largest UDP payload on that IP
 * version. E.g. g729 (60 octets) leaves only 12 octets of UDP payload on IPv6.
 */
export function checkModelForIpVersion(m: TrafficModel, ipVersion: 4 | 6): void {
  // cbr is fixed by changing `size`; the fixed-size models only by another model.
  const key = m.name === 'cbr' ? 'size' : 'model';
  const subject = (sizeIp: number): string =>
    m.name === 'cbr' ? `size: ${sizeIp}` : `model: ${m.name} (${sizeIp}-octet packets)`;
  const overhead = ipOverhead(ipVersion);
  const minPayload = m.minSizeIp - overhead;
  if (minPayload < TWAMP_SENDER_MIN_PAYLOAD) {
    throw new ModelConfigError(
      key,
      `${subject(m.minSizeIp)} leaves a ${minPayload}-octet UDP payload on IPv${ipVersion}, below the ` +
        `smallest TWAMP test packet (${overhead + TWAMP_SENDER_MIN_PAYLOAD} octets on IPv${ipVersion}: ` +
        `${overhead - 8} IP + 8 UDP + ${TWAMP_SENDER_MIN_PAYLOAD} TWAMP)`,
    );
  }
  const maxPayload = m.maxSizeIp - overhead;
  if (maxPayload > MAX_UDP_PAYLOAD[ipVersion]) {
    throw new ModelConfigError(
      key,
      `${subject(m.maxSizeIp)} needs a ${maxPayload}-octet UDP payload, above the ` +
        `IPv${ipVersion} maximum of ${MAX_UDP_PAYLOAD[ipVersion]}`,
    );
  }
}

function constantModel(
  name: ModelName,
  sizeIp: number,
  gapNs: number,
  meanPps: number,
  meanBitrate: number,
  codec: VoiceCodec | undefined,
): TrafficModel {
  const shape: PacketShape = Object.freeze({ sizeIp, gapNs });
  return Object.freeze({
    name,
    codec,
    packet(seq: number): PacketShape {
      checkSeq(seq);
      return shape;
    },
    meanPps,
    meanBitrate,
    minSizeIp: sizeIp,
    maxSizeIp: sizeIp,
  });
}

function checkSeq(seq: number): number {
  if (!Number.isInteger(seq) || seq < 0) throw new RangeError(`packet seq must be an integer >= 0, got ${seq}`);
  return seq;
}

function rejectUnused(cfg: ModelConfig, model: ModelName, key: 'bandwidth' | 'size'): void {
  if (cfg[key] !== undefined) throw new ModelConfigError(key, `${key}: not used by model ${model}`);
}

function requireBandwidth(cfg: ModelConfig, model: ModelName): number {
  const b: unknown = cfg.bandwidth;
  if (b === undefined) throw new ModelConfigError('bandwidth', `bandwidth: required by model ${model} (bit/s)`);
  if (typeof b !== 'number' || !Number.isSafeInteger(b) || b <= 0) {
    throw new ModelConfigError('bandwidth', `bandwidth: must be an integer number of bit/s > 0, got ${String(b)}`);
  }
  return b;
}

function requireSize(cfg: ModelConfig): number {
  const s: unknown = cfg.size;
  if (s === undefined) throw new ModelConfigError('size', 'size: required by model cbr (IP packet size in octets)');
  if (typeof s !== 'number' || !Number.isInteger(s)) {
    throw new ModelConfigError('size', `size: must be an integer number of octets, got ${String(s)}`);
  }
  const min = IPV4_UDP_OVERHEAD + TWAMP_SENDER_MIN_PAYLOAD;
  if (s < min) {
    throw new ModelConfigError(
      'size',
      `size: ${s} is below the smallest TWAMP test packet (${min} octets on IPv4: 20 IP + 8 UDP + ${TWAMP_SENDER_MIN_PAYLOAD} TWAMP)`,
    );
  }
  if (s > MAX_SIZE_IP) {
    throw new ModelConfigError('size', `size: ${s} is above a ${MAX_SIZE_IP}-octet jumbo frame`);
  }
  return s;
}

function checkRate(bandwidth: number, pps: number, what: string): void {
  if (pps < MIN_PPS) {
    throw new ModelConfigError(
      'bandwidth',
      `bandwidth: ${bandwidth} bit/s is below one packet per second of ${what}`,
    );
  }
  if (pps > MAX_PPS) {
    throw new ModelConfigError(
      'bandwidth',
      `bandwidth: ${bandwidth} bit/s is above ${MAX_PPS} packets per second of ${what}`,
    );
  }
}
