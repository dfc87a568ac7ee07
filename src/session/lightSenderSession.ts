/**
 * One TWAMP Light (RFC 5357 Appendix I) / STAMP (RFC 8762) test session as
 * Session-Sender: no TWAMP-Control, the test packets go straight to the
 * reflector's UDP port (862 by default). Same measurements as a full TWAMP
 * session (runTestPhase); what the control exchange would have told us is
 * either configured (port, format) or learnt from the replies:
 *
 * - Stateless reflectors copy our Sequence Number (RFC 5357 Appendix I, RFC
 *   8762 §4.3); when every reply does, the session reports round-trip loss
 *   only (out/in loss 0). A stateful reflector that lost nothing on the way
 *   there looks the same: its backward loss then shows as round-trip loss.
 * - Reply sizes are taken as received (twampy answers with 38 octets).
 * - STAMP packets carry a random non-zero SSID per session (RFC 8972 §3);
 *   replies with another non-zero SSID are not ours and are not counted.
 * - Open STAMP packets carry a Class of Service TLV first (RFC 8972 §4.4,
 *   DSCP1 = our DSCP): a reflector that answers it reports the DSCP and ECN
 *   our packets arrived with (outbound re-marking) and whether it honoured
 *   DSCP1 for the reply (RP); one that does not returns it with U = 1 and the
 *   outbound DSCP stays unknown.
 *
 * - Authenticated STAMP (`format: 'stamp'`, `mode: 'authenticated'`, RFC
 *   8762 §4.2.2): 112-octet packets with HMAC-SHA-256/128 over octets 0–95,
 *   keyed with the shared secret's octets (RFC 8762 leaves key distribution
 *   out of scope; nothing identifies the key on the wire). Replies whose HMAC
 *   does not verify are counted as invalid (and bad HMAC), not measured.
 *
 * The `sid` of the result is empty (Light has no SID); `mode` is 'open' or
 * 'authenticated'.
 */
import { randomInt } from 'node:crypto';
import { ipOverhead, type ModelConfig } from '../measure/models.js';
import type { ReplySample } from '../measure/stats.js';
import { resolveHost } from './address.js';
import type { Clock } from './clock.js';
import { TwampSessionError } from './errors.js';
import { formatHostPort } from '../util/net.js';
import { senderSessionResult, type SenderSessionResult } from './senderResult.js';
import {
  modelForFamily, openSenderTestSocket, runTestPhase, senderHeaderSize, type SenderTestSocket, type TestPacketFormat,
} from './testPhase.js';

export interface LightSenderSessionOptions {
  host: string;
  /** The reflector's UDP test port. */
  port: number;
  format: TestPacketFormat;
  dscp: number;
  nPackets: number;
  model: ModelConfig;
  replyTimeoutMs: number;
  clock: Clock;
  signal?: AbortSignal;
  /** 'authenticated' needs format 'stamp' and `secret`; default 'open'. */
  mode?: 'open' | 'authenticated';
  /** Authenticated STAMP: the shared secret, used as the HMAC-SHA-256 key. */
  secret?: Uint8Array;
  /** STAMP SSID to use (1–65535); default random per session. */
  ssid?: number;
  /**
   * Open STAMP: carry an RFC 8972 Class of Service TLV (DSCP1 = `dscp`), so a
   * supporting reflector reports the DSCP and ECN our packets arrived with
   * and marks its reply with DSCP1 if its policy allows. Default true.
   */
  cos?: boolean;
  onDscpUnavailable?: (reason: string) => void;
  onReply?: (received: number, sent: number) => void;
  onSample?: (sample: ReplySample) => void;
}

export async function runLightSenderSession(options: LightSenderSessionOptions): Promise<SenderSessionResult> {
  const peer = `reflector ${formatHostPort(options.host, options.port)}`;
  const { address: reflectorAddress, family } = await resolveHost(options.host, peer);
  const model = modelForFamily(options.model, family, peer);
  const overhead = ipOverhead(family);
  const mode = options.mode ?? 'open';
  if (mode === 'authenticated' && (options.format !== 'stamp' || !options.secret || options.secret.length === 0)) {
    throw new TwampSessionError('protocol', peer, 'authenticated Light needs format stamp and a secret');
  }
  const ssid = options.format === 'stamp' ? (options.ssid ?? randomInt(1, 0x10000)) : undefined;
  let udp: SenderTestSocket | undefined;
  try {
    const bindAddress = family === 6 ? '::' : '0.0.0.0';
    // TTL/Hop Limit 255 (RFC 8762 §4.2) and the DSCP are set at open.
    udp = await openSenderTestSocket({ family, address: bindAddress, dscp: options.dscp, peer, clock: options.clock });
    if (!udp.dscpMarked && options.dscp !== 0) options.onDscpUnavailable?.(udp.dscpReason ?? 'unknown');
    const senderPort = udp.port;
    const phase = await runTestPhase({
      socket: udp, reflectorAddress, reflectorPort: options.port, model, nPackets: options.nPackets, overhead, clock: options.clock,
      replyTimeoutMs: options.replyTimeoutMs, format: options.format, mode, detectStatelessReflector: true, dscp: options.dscp,
      ...(mode === 'authenticated' ? { stampKey: options.secret! } : {}),
      ...(ssid !== undefined ? { ssid } : {}),
      ...(options.cos !== undefined ? { cos: options.cos } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onReply ? { onReply: options.onReply } : {}),
      ...(options.onSample ? { onSample: options.onSample } : {}),
    });
    if (options.signal?.aborted) throw new TwampSessionError('aborted', peer, 'session aborted');
    const header = senderHeaderSize(options.format, mode);
    return senderSessionResult(phase, {
      ipVersion: family, reflectorAddress, reflectorTestPort: options.port, senderAddress: bindAddress, senderTestPort: senderPort,
      // No SID without TWAMP-Control; the padding is what the smallest packet carried beyond the header.
      sid: Buffer.alloc(0), paddingLength: Math.max(0, (phase.requestPayload?.min ?? header) - header),
      mode, dscpMarked: udp.dscpMarked, clockSynchronized: options.clock.synchronized,
      setup: { control: false, format: options.format, ...(ssid !== undefined ? { ssid } : {}) },
    });
  } finally {
    udp?.close();
  }
}
