/**
 * The result of one Session-Sender test session, built in one place for
 * both ways a session is set up: full TWAMP (senderSession.ts, after
 * TWAMP-Control, RFC 5357 §3) and TWAMP Light / STAMP (lightSenderSession.ts,
 * RFC 5357 Appendix I, RFC 8762). The measurements come from the test phase
 * (runTestPhase, testPhase.ts) and its statistics (measure/stats.ts); the
 * session adds only what its setup decided (addresses, ports, SID, padding,
 * mode). A new measurement is a field of TestPhaseResult and one line here;
 * its metric is a key of src/sender.ts's SenderValues (docs/metrics.md).
 */
import type { SecurityMode } from '../protocol/index.js';
import type { SessionResult } from '../measure/stats.js';
import type { PathObservations, TestPacketFormat, TestPhaseResult, TimestampInfo } from './testPhase.js';

/** What the session's setup decided about its test packets: addresses, ports, SID, padding, mode, marking. */
export interface SessionEndpoints {
  ipVersion: 4 | 6;
  reflectorAddress: string;
  reflectorTestPort: number;
  senderAddress: string;
  senderTestPort: number;
  /** Empty for TWAMP Light / STAMP (no SID without TWAMP-Control). */
  sid: Buffer;
  paddingLength: number;
  /** The security mode negotiated with the server. */
  mode: SecurityMode;
  /** Whether the test packets carried the DSCP in their IP header (the test socket marks them). */
  dscpMarked: boolean;
}

export interface SenderSessionResult extends SessionEndpoints {
  stats: SessionResult;
  /** Round-trip delay of each answered packet, ns, arrival order. */
  rtSamplesNs: Float64Array;
  /** Both ends claim UTC synchronisation (S bits): one-way delays are meaningful. */
  clocksSynchronized: boolean;
  /** Datagrams that were not a valid reflection from the reflector's test port. */
  invalidReplies: number;
  /** RFC 7750 DSCP and ECN Monitoring was in use (replies reported the DS byte our packets arrived with); absent = false. */
  dscpEcnMonitoring?: boolean;
  /** Replies dropped because their HMAC did not verify (authenticated/encrypted mode). */
  badHmacReplies: number;
  /** UDP payload sizes of the valid replies, as received. */
  replyPayload?: { min: number; max: number };
  /** TWAMP-Control was used (false: TWAMP Light / STAMP, see lightSenderSession.ts); absent = true. */
  control?: boolean;
  /** Test packet format; absent = 'twamp'. */
  format?: TestPacketFormat;
  /** STAMP Session-Sender Identifier used (format 'stamp'). */
  ssid?: number;
  /** Light/STAMP: the reflector copied our Sequence Numbers, so only round-trip loss is reported. */
  reflectorStateless?: boolean;
  /**
   * Where T1 (own departure record) and T4 (reply receipt) came from:
   * `source` 'hardware' | 'kernel' | 'userspace', the datapath, the pacing,
   * and why the native datapath is unavailable when it is not in use.
   */
  timestamps: TimestampInfo;
  /** Hops and DSCP / ECN as received, per direction (null where the datapath cannot read them). */
  path: PathObservations;
  /** Replies whose echoed T1 differed from what we sent (the sender measures with its own record). */
  t1Mismatches: number;
  /** Test packets whose send failed. */
  sendErrors: number;
}

/** What the session's setup decided, besides the test phase's measurements. */
export interface SenderSessionFacts extends SessionEndpoints {
  /** The local clock claims UTC synchronisation (Clock.synchronized). */
  clockSynchronized: boolean;
  /** Full TWAMP and whether RFC 7750 was chosen, or TWAMP Light / STAMP with its format and SSID. */
  setup:
    | { control: true; dscpEcnMonitoring: boolean }
    | { control: false; format: TestPacketFormat; ssid?: number };
}

/** The session's result: the test phase's measurements and statistics plus the session's facts. */
export function senderSessionResult(phase: TestPhaseResult, facts: SenderSessionFacts): SenderSessionResult {
  const { setup, clockSynchronized, ...endpoints } = facts;
  return {
    ...endpoints,
    stats: phase.stats,
    rtSamplesNs: phase.rtSamplesNs,
    // Both ends synchronised, as far as the replies that came back say (RFC 4656 §4.1.2 S bit).
    clocksSynchronized: clockSynchronized && phase.peerSynced && phase.stats.rxPackets > 0,
    invalidReplies: phase.invalidReplies,
    ...(setup.control ? { dscpEcnMonitoring: setup.dscpEcnMonitoring } : {}),
    badHmacReplies: phase.badHmacReplies,
    ...(setup.control ? {} : {
      control: false,
      format: setup.format,
      reflectorStateless: phase.reflectorStateless,
      ...(setup.ssid !== undefined ? { ssid: setup.ssid } : {}),
    }),
    ...(phase.replyPayload ? { replyPayload: phase.replyPayload } : {}),
    timestamps: phase.timestamps,
    path: phase.path,
    t1Mismatches: phase.t1Mismatches,
    sendErrors: phase.sendErrors,
  };
}
