// senderSessionResult (src/session/senderResult.ts): the one place a sender's
// result is built, for full TWAMP and for TWAMP Light / STAMP. Both setups
// carry the same measurements; only the setup's own keys differ.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SessionStats } from '../../src/measure/stats.js';
import { senderSessionResult, type SenderSessionFacts } from '../../src/session/senderResult.js';
import type { TestPhaseResult } from '../../src/session/testPhase.js';

const T0 = 3_900_000_000n << 32n;

function phase(answered: number, extra: Partial<TestPhaseResult> = {}): TestPhaseResult {
  const stats = new SessionStats();
  for (let s = 0; s < 3; s++) stats.recordSent({ seq: s, sizeIp: 100, t1: T0 + BigInt(s) * 1000n });
  for (let s = 0; s < answered; s++) {
    const t1 = T0 + BigInt(s) * 1000n;
    stats.recordReply({ senderSeq: s, reflectorSeq: s, t1, t2: t1 + 10n, t3: t1 + 20n, t4: t1 + 30n, sizeIp: 100 });
  }
  return {
    stats: stats.result(), rtSamplesNs: stats.delaySamples('rt'), invalidReplies: 1, badHmacReplies: 2, peerSynced: true,
    reflectorStateless: true, sendErrors: 3, t1Mismatches: 4, replyPayload: { min: 41, max: 41 }, requestPayload: { min: 14, max: 14 },
    timestamps: { source: 'kernel', t1: 'kernel', t4: 'kernel', datapath: 'native', pacing: 'native-thread', txTimestamped: 3 },
    path: {
      outbound: { hops: null, senderTtl: null, reportedBy: null, dscp: null, ecn: null, remarked: 0, tosSamples: 0, replyDscpRefused: 0 },
      inbound: { dscpSent: 0, hops: null, ttl: null, dscp: null, ecn: null, remarked: 0, tosSamples: 0 },
    },
    ...extra,
  };
}

const FACTS: Omit<SenderSessionFacts, 'setup'> = {
  ipVersion: 4, reflectorAddress: '192.0.2.1', reflectorTestPort: 9000, senderAddress: '192.0.2.2', senderTestPort: 9001,
  sid: Buffer.alloc(16, 1), paddingLength: 27, mode: 'open', dscpMarked: true, clockSynchronized: true,
};
const TWAMP: SenderSessionFacts = { ...FACTS, setup: { control: true, dscpEcnMonitoring: true } };
const STAMP: SenderSessionFacts = { ...FACTS, sid: Buffer.alloc(0), setup: { control: false, format: 'stamp', ssid: 77 } };

describe('senderSessionResult', () => {
  it('TWAMP and Light/STAMP results carry the same measurement keys; only the setup\'s keys differ', () => {
    const twamp = senderSessionResult(phase(2), TWAMP);
    const light = senderSessionResult(phase(2), STAMP);
    const setupKeys = new Set(['dscpEcnMonitoring', 'control', 'format', 'ssid', 'reflectorStateless']);
    const common = (r: object): string[] => Object.keys(r).filter((k) => !setupKeys.has(k)).sort();
    assert.deepEqual(common(twamp), common(light));
    assert.deepEqual(Object.keys(twamp).filter((k) => setupKeys.has(k)), ['dscpEcnMonitoring']);
    assert.deepEqual(Object.keys(light).filter((k) => setupKeys.has(k)).sort(), ['control', 'format', 'reflectorStateless', 'ssid']);
    assert.equal(twamp.dscpEcnMonitoring, true);
    assert.deepEqual({ control: light.control, format: light.format, ssid: light.ssid, reflectorStateless: light.reflectorStateless },
      { control: false, format: 'stamp', ssid: 77, reflectorStateless: true });
  });

  it('passes the phase\'s measurements and the session\'s facts through unchanged', () => {
    const p = phase(2);
    const r = senderSessionResult(p, TWAMP);
    assert.equal(r.stats, p.stats);
    assert.equal(r.rtSamplesNs, p.rtSamplesNs);
    assert.equal(r.timestamps, p.timestamps);
    assert.equal(r.path, p.path);
    assert.deepEqual(
      [r.invalidReplies, r.badHmacReplies, r.sendErrors, r.t1Mismatches, r.replyPayload],
      [1, 2, 3, 4, { min: 41, max: 41 }]);
    assert.deepEqual(
      [r.ipVersion, r.reflectorAddress, r.reflectorTestPort, r.senderAddress, r.senderTestPort, r.sid, r.paddingLength, r.mode, r.dscpMarked],
      [4, '192.0.2.1', 9000, '192.0.2.2', 9001, Buffer.alloc(16, 1), 27, 'open', true]);
  });

  it('optional keys are absent, not undefined: no replyPayload without replies, no ssid without one', () => {
    const { replyPayload: _omit, ...noPayload } = phase(0);
    const r = senderSessionResult(noPayload, { ...STAMP, setup: { control: false, format: 'twamp' } });
    assert.equal('replyPayload' in r, false);
    assert.equal('ssid' in r, false);
  });

  it('clocks count as synchronized only when our clock, every reply\'s S bit and at least one answer say so', () => {
    assert.equal(senderSessionResult(phase(1), TWAMP).clocksSynchronized, true);
    assert.equal(senderSessionResult(phase(1), { ...TWAMP, clockSynchronized: false }).clocksSynchronized, false, 'our clock');
    assert.equal(senderSessionResult(phase(1, { peerSynced: false }), TWAMP).clocksSynchronized, false, 'the reflector\'s');
    assert.equal(senderSessionResult(phase(0), TWAMP).clocksSynchronized, false, 'nothing came back');
  });
});
