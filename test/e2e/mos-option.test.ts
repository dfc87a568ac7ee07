// The sender's `mos` option: ITU-T G.107 by default, Gufo Agent's formula
// (and inputs) on request, so values match dashboards built on the reference.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { measurementValues } from '../../src/sender.js';
import { createTrafficModel } from '../../src/measure/models.js';
import { gufoMos, estimateVoiceQuality, G711 } from '../../src/measure/emodel.js';
import type { SenderSessionResult } from '../../src/session/senderResult.js';
import { sessionResult } from '../helpers/session.js';
import { parseSenderConfig } from '../../src/config/load.js';

function session(): SenderSessionResult {
  const dir = (avg: number, loss: number) => ({ samples: 100, minDelayNs: avg, maxDelayNs: avg, avgDelayNs: avg, jitterNs: 5e6, loss });
  return sessionResult({
    txPackets: 100, rxPackets: 98, txBytes: 20000, rxBytes: 19600, durationNs: 1.98e9, txPps: 50, rxPps: 50, txBitrate: 80000, rxBitrate: 80000,
    out: dir(50e6, 1), in: dir(-30e6, 1), rt: dir(40e6, 2), duplicates: 0, reordered: 0, unexpected: 0, residence: {},
  }, { clocksSynchronized: false, dscpMarked: true });
}

describe('sender mos option', () => {
  it('defaults to g107, from half the round trip when clocks are not synchronised', () => {
    assert.equal(parseSenderConfig({ id: 'x', reflector: 'a', n_packets: 1, model: 'g711' }).mos, 'g107');
    const v = measurementValues(session(), createTrafficModel({ model: 'g711' }));
    assert.equal(v.out_mos, estimateVoiceQuality(G711, { oneWayDelayMs: 20, jitterMs: 5, lossPercent: 1 }).mos);
  });

  it('gufo reproduces the reference agent: its formula, |one-way average| delay', () => {
    const v = measurementValues(session(), createTrafficModel({ model: 'g711' }), 'gufo');
    assert.equal(v.out_mos, gufoMos(G711, 1, 50, 5));
    assert.equal(v.in_mos, gufoMos(G711, 1, 30, 5));
    assert.equal(parseSenderConfig({ id: 'x', reflector: 'a', n_packets: 1, model: 'g729', mos: 'gufo' }).mos, 'gufo');
    assert.throws(() => parseSenderConfig({ id: 'x', reflector: 'a', n_packets: 1, model: 'g729', mos: 'pesq' }), /mos/);
  });
});
