// A complete SenderSessionResult for tests of what consumes one (the probe
// report, metric values): the given statistics, a session on the JS datapath
// (userspace timestamps, TTL and TOS unknown), and any field overridden.
import type { SessionResult } from '../../src/measure/stats.js';
import type { SenderSessionResult } from '../../src/session/senderResult.js';

export function sessionResult(stats: SessionResult, over: Partial<SenderSessionResult> = {}): SenderSessionResult {
  return {
    stats,
    rtSamplesNs: new Float64Array(0),
    ipVersion: 4, reflectorAddress: '192.0.2.1', reflectorTestPort: 40000, senderAddress: '192.0.2.2', senderTestPort: 50000,
    sid: Buffer.alloc(16, 0xab), paddingLength: 158, clocksSynchronized: true, invalidReplies: 0, dscpMarked: false,
    mode: 'open', badHmacReplies: 0, t1Mismatches: 0, sendErrors: 0,
    timestamps: {
      source: 'userspace', t1: 'userspace', t4: 'userspace', datapath: 'js', pacing: 'event-loop',
      nativeUnavailable: 'native helper missing', txTimestamped: 0,
    },
    path: {
      outbound: { hops: null, senderTtl: null, reportedBy: null, dscp: null, ecn: null, remarked: 0, tosSamples: 0, replyDscpRefused: 0 },
      inbound: { dscpSent: 0, hops: null, ttl: null, dscp: null, ecn: null, remarked: 0, tosSamples: 0 },
    },
    ...over,
  };
}
