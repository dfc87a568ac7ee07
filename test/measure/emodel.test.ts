import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  G711,
  G729,
  G107_DEFAULTS,
  estimateVoiceQuality,
  gufoMos,
  mosFromR,
  rFactorG107,
  simplifiedR,
} from '../../src/measure/emodel.js';

/** |actual − expected| ≤ tol (the worked examples are printed to 2 decimals). */
function near(actual: number, expected: number, tol = 0.005, what = ''): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what} ${actual} not within ${tol} of ${expected}`);
}

describe('mosFromR (G.107 Annex B)', () => {
  it('clamps to 1..4.5', () => {
    assert.equal(mosFromR(-10), 1);
    assert.equal(mosFromR(0), 1);
    // The cubic gives 0.98983… at R = 4.2; G.107 MOS never goes below 1.
    assert.equal(mosFromR(4.2), 1);
    assert.equal(mosFromR(100), 4.5);
    assert.equal(mosFromR(130), 4.5);
  });
  it('follows the cubic in range', () => {
    near(mosFromR(93.2), 4.41);
    near(mosFromR(50), 1 + 1.75 + 50 * -10 * 50 * 7e-6, 1e-12);
  });
});

describe('rFactorG107 (full model, G.107 §3)', () => {
  it('defaults give 93.21', () => {
    near(rFactorG107(), 93.21);
    near(rFactorG107(G107_DEFAULTS), 93.21);
  });
  it('echo path T = Ta, Tr = 2·Ta (§6.4 comparison with Cole–Rosenbluth)', () => {
    const cases: [number, number][] = [
      [50, 91.76],
      [150, 89.54],
      [250, 79.18],
      [300, 72.67],
      [400, 62.25],
      [500, 54.8],
    ];
    for (const [d, r] of cases) near(rFactorG107({ T: d, Ta: d, Tr: 2 * d }), r, 0.005, `${d} ms`);
    near(mosFromR(rFactorG107({ T: 150, Ta: 150, Tr: 300 })), 4.33);
  });
  it('pure delay: only Idd, threshold mT = 100 ms', () => {
    const base = rFactorG107();
    assert.equal(rFactorG107({ Ta: 100 }), base);
    near(rFactorG107({ Ta: 150 }), 93.04);
    near(mosFromR(rFactorG107({ Ta: 150 })), 4.41);
    const idd: [number, number][] = [
      [150, 0.16],
      [200, 3.04],
      [300, 14.76],
      [400, 24.07],
    ];
    for (const [ta, v] of idd) near(base - rFactorG107({ Ta: ta }), v, 0.006, `Idd(${ta})`);
  });
  it('applies Ie_eff with Ppl in percent', () => {
    near(rFactorG107() - rFactorG107({ Ppl: 1, Bpl: 25.1 }), 95 / 26.1, 1e-9);
    near(rFactorG107() - rFactorG107({ Ie: 11 }), 11, 1e-9);
  });
});

describe('simplifiedR and the §6.6 worked examples', () => {
  const g711 = { ie: 0, bpl: 25.1 };
  it('G.711 rows', () => {
    const r0 = simplifiedR({ mouthToEarDelayMs: 0, lossPercent: 0, ...g711 });
    near(r0, 93.2);
    near(mosFromR(r0), 4.41);

    const noPlc = simplifiedR({ mouthToEarDelayMs: 0, lossPercent: 1, ie: 0, bpl: 4.3 });
    near(93.2 - noPlc, 17.92);
    near(noPlc, 75.28);
    near(mosFromR(noPlc), 3.83);

    const plc = simplifiedR({ mouthToEarDelayMs: 0, lossPercent: 1, ...g711 });
    near(93.2 - plc, 3.64);
    near(plc, 89.56);
    near(mosFromR(plc), 4.33);

    const burst = simplifiedR({ mouthToEarDelayMs: 0, lossPercent: 1, burstR: 2, ...g711 });
    near(93.2 - burst, 3.71);
    near(burst, 89.49);
    near(mosFromR(burst), 4.33);

    const d150 = simplifiedR({ mouthToEarDelayMs: 150, lossPercent: 0, ...g711 });
    near(93.2 - d150, 3.6);
    near(d150, 89.6);
    near(mosFromR(d150), 4.33);
  });
  it('G.729 rows', () => {
    const a = simplifiedR({ mouthToEarDelayMs: 0, lossPercent: 0, ie: G729.ie, bpl: G729.bpl });
    near(a, 82.2);
    near(mosFromR(a), 4.1);
    const ie10 = simplifiedR({ mouthToEarDelayMs: 0, lossPercent: 0, ie: 10, bpl: 19 });
    near(ie10, 83.2);
    near(mosFromR(ie10), 4.14);
    const loss = simplifiedR({ mouthToEarDelayMs: 0, lossPercent: 1, ie: G729.ie, bpl: G729.bpl });
    near(93.2 - loss, 15.2);
    near(loss, 78.0);
    near(mosFromR(loss), 3.95);
  });
  it('delay curve (knee at 177.3 ms, no 100 ms threshold)', () => {
    const curve: [number, number, number][] = [
      [100, 90.8, 4.36],
      [177.3, 88.94, 4.31],
      [200, 85.9, 4.23],
      [250, 79.2, 3.99],
      [300, 72.5, 3.71],
      [400, 59.1, 3.05],
      [500, 45.7, 2.35],
    ];
    for (const [d, r, mos] of curve) {
      const got = simplifiedR({ mouthToEarDelayMs: d, lossPercent: 0, ...g711 });
      near(got, r, 0.005, `R(${d})`);
      near(mosFromR(got), mos, 0.005, `MOS(${d})`);
    }
  });
});

describe('codecs and estimateVoiceQuality', () => {
  it('codec table: G.711 with PLC, G.729A with look-ahead; Gufo Agent\'s own rows beside them', () => {
    assert.deepEqual({ ...G711 }, { name: 'G.711', ie: 0, bpl: 25.1, packetizationDelayMs: 20, gufo: { ie: 0, pktDelayMs: 0, bpl: 10 } });
    assert.deepEqual({ ...G729 }, { name: 'G.729A', ie: 11, bpl: 19, packetizationDelayMs: 25, gufo: { ie: 10, pktDelayMs: 25, bpl: 17 } });
  });
  it('mouth-to-ear = network + 2 × jitter + codec delay', () => {
    const v = estimateVoiceQuality(G711, { oneWayDelayMs: 40, jitterMs: 5, lossPercent: 0 });
    assert.equal(v.mouthToEarDelayMs, 70);
    near(v.r, 93.2 - 0.024 * 70, 1e-9);
    assert.equal(v.mos, mosFromR(v.r));

    const w = estimateVoiceQuality(G729, { oneWayDelayMs: 100, jitterMs: 10, lossPercent: 1 });
    assert.equal(w.mouthToEarDelayMs, 145);
    near(w.r, 93.2 - 0.024 * 145 - 15.2, 1e-9);

    const b = estimateVoiceQuality(G711, { oneWayDelayMs: 0, jitterMs: 0, lossPercent: 1, burstR: 2 });
    near(b.r, 93.2 - 0.024 * 20 - 95 / 25.6, 1e-9);
  });
  it('sanitises live inputs: negative delay/jitter count as 0, loss clamps to 100 %', () => {
    const zero = estimateVoiceQuality(G711, { oneWayDelayMs: 0, jitterMs: 0, lossPercent: 0 });
    const neg = estimateVoiceQuality(G711, { oneWayDelayMs: -12, jitterMs: -1, lossPercent: -3 });
    assert.deepEqual(neg, zero);
    const all = estimateVoiceQuality(G711, { oneWayDelayMs: 0, jitterMs: 0, lossPercent: 250 });
    assert.deepEqual(all, estimateVoiceQuality(G711, { oneWayDelayMs: 0, jitterMs: 0, lossPercent: 100 }));
    // Ie_eff saturates at 95·100/(100 + 25.1) = 75.94: R = 93.2 − 0.48 − 75.94.
    near(all.r, 93.2 - 0.48 - 9500 / 125.1, 1e-9);
  });
});

describe('gufoMos reproduces Gufo Agent', () => {
  // loss %, delay ms, jitter ms, G.711 MOS, G.729 MOS
  const table: [number, number, number, number, number][] = [
    [0, 0, 0, 4.4043946, 4.10877],
    [0, 20, 0, 4.3943005, 4.0910773],
    [0, 50, 5, 4.3728848, 4.0547996],
    [0, 100, 10, 4.337773, 3.998232],
    [0, 150, 0, 4.3189106, 3.893413],
    [0, 150, 5, 4.292446, 3.851662],
    [0, 200, 10, 4.104375, 3.5828986],
    [0, 300, 20, 3.606366, 2.9802046],
    [1, 20, 2, 4.069038, 3.8004448],
    [1, 50, 5, 4.0358, 3.7610998],
    [2, 50, 5, 3.6257865, 3.4473615],
    [5, 50, 5, 2.433032, 2.5229337],
    [10, 100, 10, 1.1816978, 1.3410983],
    [20, 150, 20, 1, 1],
    [100, 0, 0, 1, 1],
    [0, 1000, 0, 0.9898381, 1],
  ];
  for (const [loss, delay, jitter, g711, g729] of table) {
    it(`${loss} % ${delay} ms ${jitter} ms`, () => {
      for (const [model, want] of [
        [G711, g711],
        [G729, g729],
      ] as const) {
        const got = gufoMos(model, loss, delay, jitter);
        assert.ok(Math.abs(got - want) <= 1e-6 * want, `${model.name}: ${got} vs ${want}`);
        // f32 all the way: the result is an exact f32 value.
        assert.equal(got, Math.fround(got));
      }
    });
  }
});
