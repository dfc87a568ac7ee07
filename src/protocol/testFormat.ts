/**
 * Every test-packet format in one table: TWAMP (RFC 4656 §4.1.2, RFC 5357
 * §4.1.2 / §4.2.1, RFC 7750 §3) and STAMP (RFC 8762 §4.2 / §4.3, RFC 8972 §3)
 * × open / authenticated / encrypted. For each direction: the header size,
 * where each field lives, what the protection covers and where a timestamp
 * may be written right before the send (outside every protection); and how a
 * reply is sized and built. The session layer and the native datapath work
 * from these rows only: no format × mode branches and no raw offsets there.
 *
 *                         sender                      reflector
 *  twamp open (mixed)     14: seq 0 T1 4 EE 12        41 (44 with RFC 7750): seq 0 T3 4 EE 12 T2 16 sseq 24
 *                                                     T1 28 sEE 36 STTL 40 [S-DSCP-ECN 41]
 *  twamp authenticated    48: seq 0 T1 16 EE 24       112: seq 0 T3 16 EE 24 T2 32 sseq 48 T1 64 sEE 72
 *        / encrypted          HMAC 32                 STTL 80 [S-DSCP-ECN 81] HMAC 96
 *  stamp open             44: + SSID 14, TLVs 44      44: twamp open + SSID 14, TLVs 44
 *  stamp authenticated    112: + SSID 26, HMAC 96     112: twamp authenticated + SSID 26, TLVs 112
 *
 * Protection (RFC 4656 §4.1.2, RFC 5357 §4.2.1, RFC 8762 §4.2.2):
 *  twamp authenticated  octets 0–15 AES-ECB; HMAC-SHA1/128 over plaintext 0–15 (T1/T3 not covered)
 *  twamp encrypted      sender 0–31 / reflector 0–95 AES-CBC; HMAC over the same range (T1/T3 covered)
 *  stamp authenticated  no encryption; HMAC-SHA-256/128 over 0–95 (T1/T3 covered)
 * The reflector size of authenticated TWAMP is 112, not RFC 5357's 104
 * (verified erratum 5045). RFC 7750 (DSCP and ECN Monitoring, Modes bit 8)
 * puts S-DSCP-ECN right after Sender TTL; in open mode the reflector header
 * grows to 44 (two MBZ octets follow), in authenticated mode it stays 112.
 */
import type { SecurityMode } from './crypto.js';

export type TestProtocol = 'twamp' | 'stamp';

/** Offsets of the fields both directions carry. */
export interface CommonFields {
  /** Header (base packet) size: the smallest packet of this direction. */
  readonly size: number;
  readonly seq: number;
  /** T1 (sender) or T3 (reflector). */
  readonly timestamp: number;
  readonly errorEstimate: number;
  /** RFC 8972 SSID (STAMP only); undefined: the format has none. */
  readonly ssid: number | undefined;
}

export interface Protection {
  /** Octets [0, encrypted) are encrypted: 0 none. */
  readonly encrypted: number;
  readonly cipher: 'aes-128-ecb' | 'aes-128-cbc' | undefined;
  /** The HMAC: over plaintext [0, covers), written at offset (16 octets); undefined: none. */
  readonly hmac: { readonly offset: number; readonly covers: number; readonly algorithm: 'sha1' | 'sha256' } | undefined;
  /** Everything from here on is outside the protection (a timestamp there can be written after it). */
  readonly coveredEnd: number;
}

export interface SenderFormat extends CommonFields {
  readonly protection: Protection;
  /** Where T1 can be written right before the send (outside the protection); undefined: covered, final before protecting. */
  readonly stampOffset: number | undefined;
}

export interface ReflectorFormat extends CommonFields {
  readonly receiveTimestamp: number;
  readonly senderSeq: number;
  readonly senderTimestamp: number;
  readonly senderErrorEstimate: number;
  readonly senderTtl: number;
  /** RFC 7750 S-DSCP-ECN (the DS byte the request arrived with); undefined unless DSCP and ECN monitoring was chosen. */
  readonly sDscpEcn: number | undefined;
  readonly protection: Protection;
  /** Where T3 can be written right before the send; undefined: covered by the protection. */
  readonly stampOffset: number | undefined;
}

/**
 * How a reply is sized and built:
 * - 'twamp': max(request, reflector header); the padding is the request's
 *   with its highest-numbered octets dropped (RFC 5357 §4.2.1; twampd does so).
 * - 'stamp': max(request, base); octets past the base copied back at the same
 *   offsets with RFC 8972 TLV processing (RFC 8762 §4.6).
 * - 'stamp-authenticated': the request's length (≥ 112); octets past the base are
 *   not covered by the request's HMAC, so none of them is echoed.
 */
export type ReplyRule = 'twamp' | 'stamp' | 'stamp-authenticated';

export interface TestFormat {
  /** e.g. 'twamp/authenticated', 'twamp/open+dscp-ecn', 'stamp/open'. */
  readonly id: string;
  readonly protocol: TestProtocol;
  /** Security mode (mixed: open test packets, RFC 5618). */
  readonly mode: SecurityMode;
  readonly layout: 'open' | 'authenticated';
  /** RFC 7750 DSCP and ECN Monitoring (TWAMP only). */
  readonly dscpEcn: boolean;
  readonly sender: SenderFormat;
  readonly reflector: ReflectorFormat;
  readonly reply: ReplyRule;
  /** Smallest reply a sender decodes: twampy's TWAMP-Light replies stop after Sender Error Estimate (38). */
  readonly minReply: number;
  /** Where STAMP TLVs begin (the base size); undefined for TWAMP (padding, not TLVs). */
  readonly tlvOffset: number | undefined;
}

/** twampy's TWAMP-Light responder stops after Sender Error Estimate: no MBZ, no Sender TTL. */
export const TRUNCATED_REFLECTOR_SIZE = 38;

const NONE: Protection = Object.freeze({ encrypted: 0, cipher: undefined, hmac: undefined, coveredEnd: 0 });

function protection(encrypted: number, cipher: Protection['cipher'], hmacAt: number, covers: number, algorithm: 'sha1' | 'sha256'): Protection {
  return Object.freeze({ encrypted, cipher, hmac: Object.freeze({ offset: hmacAt, covers, algorithm }), coveredEnd: Math.max(encrypted, covers) });
}

/** The timestamp's offset when all 8 octets lie past the protected range, else undefined. */
function stampable(timestamp: number, p: Protection): number | undefined {
  return timestamp >= p.coveredEnd ? timestamp : undefined;
}

function row(protocol: TestProtocol, mode: SecurityMode, dscpEcn: boolean): TestFormat {
  const layout = mode === 'authenticated' || mode === 'encrypted' ? 'authenticated' : 'open';
  const stamp = protocol === 'stamp';
  let sp = NONE;
  let rp = NONE;
  if (stamp && layout === 'authenticated') {
    sp = protection(0, undefined, 96, 96, 'sha256');
    rp = sp;
  } else if (mode === 'authenticated') {
    sp = protection(16, 'aes-128-ecb', 32, 16, 'sha1');
    rp = protection(16, 'aes-128-ecb', 96, 16, 'sha1');
  } else if (mode === 'encrypted') {
    sp = protection(32, 'aes-128-cbc', 32, 32, 'sha1');
    rp = protection(96, 'aes-128-cbc', 96, 96, 'sha1');
  }
  const open = layout === 'open';
  const senderCommon = open
    ? { size: stamp ? 44 : 14, seq: 0, timestamp: 4, errorEstimate: 12, ssid: stamp ? 14 : undefined }
    : { size: stamp ? 112 : 48, seq: 0, timestamp: 16, errorEstimate: 24, ssid: stamp ? 26 : undefined };
  const sDscpEcn = dscpEcn ? (open ? 41 : 81) : undefined;
  const reflectorCommon = open
    ? {
      size: stamp || dscpEcn ? 44 : 41, seq: 0, timestamp: 4, errorEstimate: 12, ssid: stamp ? 14 : undefined,
      receiveTimestamp: 16, senderSeq: 24, senderTimestamp: 28, senderErrorEstimate: 36, senderTtl: 40, sDscpEcn,
    }
    : {
      size: 112, seq: 0, timestamp: 16, errorEstimate: 24, ssid: stamp ? 26 : undefined,
      receiveTimestamp: 32, senderSeq: 48, senderTimestamp: 64, senderErrorEstimate: 72, senderTtl: 80, sDscpEcn,
    };
  return Object.freeze({
    id: `${protocol}/${mode}${dscpEcn ? '+dscp-ecn' : ''}`,
    protocol, mode, layout, dscpEcn,
    sender: Object.freeze({ ...senderCommon, protection: sp, stampOffset: stampable(senderCommon.timestamp, sp) }),
    reflector: Object.freeze({ ...reflectorCommon, protection: rp, stampOffset: stampable(reflectorCommon.timestamp, rp) }),
    reply: stamp ? (open ? 'stamp' : 'stamp-authenticated') : 'twamp',
    minReply: open ? TRUNCATED_REFLECTOR_SIZE : reflectorCommon.size,
    tlvOffset: stamp ? senderCommon.size : undefined,
  });
}

const TWAMP_MODES: readonly SecurityMode[] = ['open', 'mixed', 'authenticated', 'encrypted'];
const STAMP_MODES: readonly SecurityMode[] = ['open', 'authenticated'];

/** Every row: TWAMP in each security mode with and without RFC 7750, STAMP open and authenticated. */
export const TEST_FORMATS: readonly TestFormat[] = Object.freeze([
  ...TWAMP_MODES.flatMap((m) => [row('twamp', m, false), row('twamp', m, true)]),
  ...STAMP_MODES.map((m) => row('stamp', m, false)),
]);

const BY_ID = new Map(TEST_FORMATS.map((f) => [f.id, f]));

/**
 * The format of a test session. TypeError for combinations that do not
 * exist: STAMP has no encryption and no mixed mode (RFC 8762 §4.1), and
 * RFC 7750 is a TWAMP mode (STAMP reports DSCP and ECN in the Class of
 * Service TLV, RFC 8972 §4.4).
 */
export function testFormat(protocol: TestProtocol, mode: SecurityMode = 'open', opts: { dscpEcn?: boolean } = {}): TestFormat {
  const dscpEcn = opts.dscpEcn === true;
  const f = BY_ID.get(`${protocol}/${mode}${dscpEcn ? '+dscp-ecn' : ''}`);
  if (f === undefined) {
    throw new TypeError(`no ${protocol} test-packet format for mode ${mode}${dscpEcn ? ' with DSCP and ECN monitoring' : ''}` +
      (protocol === 'stamp' ? ' (STAMP test packets are open or authenticated; DSCP/ECN travel in the Class of Service TLV)' : ''));
  }
  return f;
}

/**
 * Length of the reply to a request of `requestLength` octets (see ReplyRule);
 * never more than max(request, reflector header), so a reflector amplifies
 * nothing beyond its header.
 */
export function replyLength(f: TestFormat, requestLength: number): number {
  return f.reply === 'stamp-authenticated' ? requestLength : Math.max(requestLength, f.reflector.size);
}
