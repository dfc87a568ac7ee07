// ITU-T G.107 E-model: transmission rating R and its MOS estimate.
//
// Pure math. Two entry points on purpose:
// - rFactorG107(): the full formula chain (ITU-T G.107 §3), for
//   planning questions and to anchor the simplified model to the standard.
// - estimateVoiceQuality(): the simplified monitoring model (§6.4) that the
//   sender feeds with TWAMP one-way delay, jitter and loss.
// gufoMos() reproduces Gufo Agent's own hybrid formula bit for bit (f32), for
// users who compare dashboards with the reference agent; it is not G.107.

/** Codec figures the E-model needs (G.113 Appendix I). */
export interface VoiceCodec {
  readonly name: string;
  /** Equipment impairment factor Ie. */
  readonly ie: number;
  /** Packet-loss robustness factor Bpl. */
  readonly bpl: number;
  /** Delay the codec adds to mouth-to-ear delay: packetisation + look-ahead, ms. */
  readonly packetizationDelayMs: number;
  /**
   * Gufo Agent's own row for this codec (its proto/emodel table, not
   * G.113's), used by gufoMos only (the `mos: gufo` option).
   */
  readonly gufo: { readonly ie: number; readonly pktDelayMs: number; readonly bpl: number };
}

/**
 * G.711 as deployed in VoIP: Ie 0, Bpl 25.1, the G.113 Appendix I row for
 * G.711 *with* packet-loss concealment (G.711 Appendix I). Virtually every
 * VoIP endpoint conceals lost frames; the 4.3 "no PLC" row would predict
 * MOS 3.83 at 1 % random loss, far below what listeners of real phones
 * report (4.33 with PLC). Delay: one 20 ms frame per packet (50 pps model).
 */
export const G711: VoiceCodec = Object.freeze({
  name: 'G.711',
  ie: 0,
  bpl: 25.1,
  packetizationDelayMs: 20,
  gufo: { ie: 0, pktDelayMs: 0, bpl: 10 },
});

/**
 * G.729A (8 kbit/s): Ie 11, Bpl 19.0 (G.113 Appendix I; the only G.729 row
 * with a Bpl). Delay: two 10 ms frames per 20 ms packet plus the codec's
 * 5 ms look-ahead = 25 ms.
 */
export const G729: VoiceCodec = Object.freeze({
  name: 'G.729A',
  ie: 11,
  bpl: 19.0,
  packetizationDelayMs: 25,
  gufo: { ie: 10, pktDelayMs: 25, bpl: 17 },
});

/**
 * G.107 Annex B: R → MOS (conversational quality estimate), clamped to
 * 1..4.5. The cubic dips slightly below 1 for 0 ≤ R < ~6.5, hence the clamp.
 * NaN propagates (callers must not export it).
 */
export function mosFromR(r: number): number {
  if (r < 0) return 1;
  if (r > 100) return 4.5;
  const mos = 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6;
  return Math.min(4.5, Math.max(1, mos));
}

/** Every input of the G.107 formula chain; symbols as in G.107. */
export interface G107Params {
  /** Send Loudness Rating, dB. */
  SLR: number;
  /** Receive Loudness Rating, dB. */
  RLR: number;
  /** Sidetone Masking Rating, dB. */
  STMR: number;
  /** Listener Sidetone Rating, dB. */
  LSTR: number;
  /** D-value of the telephone, send side. */
  Ds: number;
  /** D-value of the telephone, receive side (in the table; unused by the formulas of §6.1). */
  Dr: number;
  /** Talker Echo Loudness Rating, dB. */
  TELR: number;
  /** Weighted Echo Path Loss, dB. */
  WEPL: number;
  /** Mean one-way delay of the echo path, ms. */
  T: number;
  /** Round-trip delay in a 4-wire loop, ms. */
  Tr: number;
  /** Absolute delay in echo-free connections, ms. */
  Ta: number;
  /** Number of quantizing distortion units. */
  qdu: number;
  /** Equipment impairment factor. */
  Ie: number;
  /** Packet-loss robustness factor. */
  Bpl: number;
  /** Random packet-loss probability, PERCENT (1 = 1 %). */
  Ppl: number;
  /** Burst ratio (1 = random loss). */
  BurstR: number;
  /** Circuit noise referred to the 0 dBr point, dBm0p. */
  Nc: number;
  /** Noise floor at the receive side, dBmp. */
  Nfor: number;
  /** Room noise at the send side, dB(A). */
  Ps: number;
  /** Room noise at the receive side, dB(A). */
  Pr: number;
  /** Advantage factor. */
  A: number;
  /** Delay sensitivity (06/2015 edition). */
  sT: number;
  /** Minimum perceivable delay, ms (06/2015 edition). */
  mT: number;
}

/**
 * G.107 default values (G.107 Table 3). Bpl 4.3 is the value of recent
 * implementations; it has no effect while Ppl = 0.
 */
export const G107_DEFAULTS: Readonly<G107Params> = Object.freeze({
  SLR: 8,
  RLR: 2,
  STMR: 15,
  LSTR: 18,
  Ds: 3,
  Dr: 3,
  TELR: 65,
  WEPL: 110,
  T: 0,
  Tr: 0,
  Ta: 0,
  qdu: 1,
  Ie: 0,
  Bpl: 4.3,
  Ppl: 0,
  BurstR: 1,
  Nc: -70,
  Nfor: -64,
  Ps: 35,
  Pr: 35,
  A: 0,
  sT: 1,
  mT: 100,
});

const log10 = Math.log10;

/** Effective equipment impairment (G.107 §7.7; Ppl in percent). */
function ieEff(ie: number, bpl: number, pplPercent: number, burstR: number): number {
  if (pplPercent === 0) return ie; // avoids 0/0 for a (useless) Bpl of 0
  return ie + ((95 - ie) * pplPercent) / (pplPercent / burstR + bpl);
}

/**
 * Full G.107 rating R = Ro − Is − Id − Ie_eff + A (G.107 06/2015
 * structure). Defaults give 93.21 (G.107 quotes 93.2).
 */
export function rFactorG107(p: Partial<G107Params> = {}): number {
  const q: G107Params = { ...G107_DEFAULTS, ...p };
  const { SLR, RLR, STMR, LSTR, Ds, TELR, WEPL, T, Tr, Ta, qdu, Nc, Nfor, Ps, Pr, sT, mT } = q;

  // Basic signal-to-noise ratio Ro (G.107 §7.2).
  const OLR = SLR + RLR;
  const Nos = Ps - SLR - Ds - 100 + 0.004 * (Ps - OLR - Ds - 14) ** 2;
  const Pre = Pr + 10 * log10(1 + 10 ** ((10 - LSTR) / 10));
  const Nor = RLR - 121 + Pre + 0.008 * (Pre - 35) ** 2;
  const Nfo = Nfor + RLR;
  const No = 10 * log10(10 ** (Nc / 10) + 10 ** (Nos / 10) + 10 ** (Nor / 10) + 10 ** (Nfo / 10));
  const Ro = 15 - 1.5 * (SLR + No);

  // Simultaneous impairments Is (G.107 §7.3).
  const Xolr = OLR + 0.2 * (64 + No - RLR);
  const Iolr = 20 * ((1 + (Xolr / 8) ** 8) ** (1 / 8) - Xolr / 8);
  const STMRo = -10 * log10(10 ** (-STMR / 10) + Math.exp(-T / 4) * 10 ** (-TELR / 10));
  const Ist =
    12 * (1 + ((STMRo - 13) / 6) ** 8) ** (1 / 8) -
    28 * (1 + ((STMRo + 1) / 19.4) ** 35) ** (1 / 35) -
    13 * (1 + ((STMRo - 3) / 33) ** 13) ** (1 / 13) +
    29;
  const Q = 37 - 15 * log10(qdu);
  const G = 1.07 + 0.258 * Q + 0.0602 * Q ** 2;
  const Y = (Ro - 100) / 15 + 46 / 8.4 - G / 9;
  const Z = 46 / 30 - G / 40;
  const Iq = 15 * log10(1 + 10 ** Y + 10 ** Z);
  const Is = Iolr + Ist + Iq;

  // Delay impairments Id = Idte + Idle + Idd (G.107 §7.4).
  const Roe = -1.5 * (No - RLR);
  let TERV = TELR - 40 * log10((1 + T / 10) / (1 + T / 150)) + 6 * Math.exp(-0.3 * T ** 2);
  if (STMR < 9) TERV += Ist / 2;
  const Re = 80 + 2.5 * (TERV - 14);
  let Idte = ((Roe - Re) / 2 + Math.sqrt((Roe - Re) ** 2 / 4 + 100) - 1) * (1 - Math.exp(-T));
  if (STMR > 20) Idte = Math.sqrt(Idte ** 2 + Ist ** 2);
  const Rle = 10.5 * (WEPL + 7) * (Tr + 1) ** (-1 / 4);
  const Idle = (Ro - Rle) / 2 + Math.sqrt((Ro - Rle) ** 2 / 4 + 169);
  let Idd = 0;
  if (Ta > mT) {
    // Exponent 6·sT (a product): amplet2's "6 − sT" is a known bug (§6.1).
    const X = log10(Ta / mT) / log10(2);
    const e = 6 * sT;
    Idd = 25 * ((1 + X ** e) ** (1 / e) - 3 * (1 + (X / 3) ** e) ** (1 / e) + 2);
  }
  const Id = Idte + Idle + Idd;

  return Ro - Is - Id - ieEff(q.Ie, q.Bpl, q.Ppl, q.BurstR) + q.A;
}

/**
 * Simplified monitoring model (G.107 applied with default values): R = 93.2 − Id − Ie_eff with
 * Cole–Rosenbluth's delay term Id = 0.024·d + 0.11·(d − 177.3)·H(d − 177.3),
 * d = mouth-to-ear delay in ms (no 100 ms threshold: that belongs to Idd).
 * Matches the full model with default terminals and T = Ta, Tr = 2·Ta within
 * 0.2 R up to 300 ms. lossPercent in percent; burstR defaults to 1 (random).
 */
export function simplifiedR(i: {
  mouthToEarDelayMs: number;
  lossPercent: number;
  burstR?: number;
  ie: number;
  bpl: number;
}): number {
  const d = i.mouthToEarDelayMs;
  const id = 0.024 * d + (d >= 177.3 ? 0.11 * (d - 177.3) : 0);
  return 93.2 - id - ieEff(i.ie, i.bpl, i.lossPercent, i.burstR ?? 1);
}

export interface VoiceQualityInput {
  /** Network one-way delay, ms (T2−T1 or T4−T3 with synced clocks, else RTT/2). */
  oneWayDelayMs: number;
  /** Delay variation of that direction, ms. */
  jitterMs: number;
  /** Loss of that direction, percent (1 = 1 %). */
  lossPercent: number;
  /** Burst ratio; 1 (random loss) when omitted. */
  burstR?: number;
}

/**
 * MOS estimate for one direction with the simplified model (§6.4).
 * mouth-to-ear = network delay + jitter buffer + codec delay, where the
 * jitter buffer is sized 2 × jitter (a widespread heuristic, not a standard).
 * Inputs are sanitised rather than rejected, because they come from live
 * measurements: a negative one-way delay (unsynchronised clocks) or jitter
 * counts as 0 so that clock offset can never *improve* the score, and loss is
 * clamped to 0..100 %.
 */
export function estimateVoiceQuality(
  codec: VoiceCodec,
  i: VoiceQualityInput,
): { r: number; mos: number; mouthToEarDelayMs: number } {
  const networkMs = Math.max(0, i.oneWayDelayMs);
  const jitterBufferMs = 2 * Math.max(0, i.jitterMs);
  const mouthToEarDelayMs = networkMs + jitterBufferMs + codec.packetizationDelayMs;
  const lossPercent = Math.min(100, Math.max(0, i.lossPercent));
  const r = simplifiedR({
    mouthToEarDelayMs,
    lossPercent,
    ...(i.burstR === undefined ? {} : { burstR: i.burstR }),
    ie: codec.ie,
    bpl: codec.bpl,
  });
  return { r, mos: mosFromR(r), mouthToEarDelayMs };
}

/**
 * Gufo Agent's MOS, reproduced in f32 (Math.fround after every operation, in
 * Rust's evaluation order) so values match the reference to the last bit:
 *   Ie_eff = Ie + (95 − Ie)·Ppl/(Ppl/1 + Bpl)
 *   EL = d + pkt_delay + 2·J + 10;  Id = EL/40 if EL < 160 else (EL − 120)/10
 *   R = 93.2 − Ie_eff − Id − 2.5·Ppl
 * then the G.107 Annex B cubic WITHOUT a clamp below 1 (e.g. 0.9898381 at
 * 1000 ms), exactly as the reference. Not G.107: loss is penalised twice and
 * the codec table differs (`codec.gufo`). Use only for compatibility with
 * Gufo dashboards. lossPercent in percent, delayMs the average one-way
 * delay, jitterMs in ms.
 */
export function gufoMos(
  codec: VoiceCodec,
  lossPercent: number,
  delayMs: number,
  jitterMs: number,
): number {
  const f = Math.fround;
  const c = codec.gufo;
  const ppl = f(lossPercent);
  const d = f(delayMs);
  const j = f(jitterMs);
  const ie = f(c.ie);
  const bpl = f(c.bpl);
  const ie_eff = f(ie + f(f(f(f(95) - ie) * ppl) / f(f(ppl / f(1)) + bpl)));
  let r = f(f(93.2) - ie_eff);
  const el = f(f(f(d + f(c.pktDelayMs)) + f(j * f(2))) + f(10));
  r = f(r - (el < 160 ? f(el / f(40)) : f(f(el - f(120)) / f(10))));
  r = f(r - f(ppl * f(2.5)));
  if (r < 0) return 1;
  if (r < 100) {
    const cubic = f(f(f(r * f(r - f(60))) * f(f(100) - r)) * f(7e-6));
    return f(f(f(1) + f(f(0.035) * r)) + cubic);
  }
  return 4.5;
}
