/**
 * One TWAMP test session as Control-Client + Session-Sender (RFC 5357 §3–4.1):
 * connect, request a session from the port we bound, start, send the traffic
 * model's packets on schedule, collect reflections (the test phase itself is
 * runTestPhase, testPhase.ts, shared with TWAMP Light), and always
 * Stop-Sessions on the way out.
 *
 * RFC 7750 DSCP and ECN Monitoring is chosen whenever the server offers it
 * (`dscpEcnMonitoring`, default true): each reply then reports the DS byte our
 * packet arrived with, so re-marking on the way out is seen (result `path`).
 *
 * In authenticated and encrypted mode the packets use the 48-octet sender /
 * 112-octet reflector layouts (RFC 4656 §4.1.2, RFC 5357 §4.2.1): sender
 * packets are at least 48 octets, replies at least 112. Authenticated mode
 * protects only octets 0–15, so T1 is written after protection, as late as
 * possible; encrypted mode covers T1, so it is written first. Replies whose
 * HMAC does not verify, or that answer a sequence number we never sent, are
 * counted and never abort the session.
 */
import {
  typePFromDscp, ntpIntervalFromNs, type SecurityMode,
} from '../protocol/index.js';
import type { ReplySample } from '../measure/stats.js';
import { ipOverhead, type ModelConfig } from '../measure/models.js';
import { ControlClient } from './controlClient.js';
import { TwampSessionError } from './errors.js';
import type { Clock } from './clock.js';
import {
  modelForFamily, openSenderTestSocket, runTestPhase, sessionFormat,
  type SenderTestSocket,
} from './testPhase.js';
import { senderSessionResult, type SenderSessionResult } from './senderResult.js';

export interface SenderSessionOptions {
  host: string;
  controlPort: number;
  /** Receiver Port to request; 0 lets the server choose. */
  reflectorPort: number;
  dscp: number;
  nPackets: number;
  /** Built per session: voice models' sizes depend on the IP version. */
  model: ModelConfig;
  controlTimeoutMs: number;
  /** How long after the last departure a reflection may still arrive. */
  replyTimeoutMs: number;
  clock: Clock;
  signal?: AbortSignal;
  /** Called when the test packets cannot be marked with the DSCP (no native helper). */
  onDscpUnavailable?: (reason: string) => void;
  /** Something the operator should know that does not fail the session (e.g. a server quirk worked around). */
  onNotice?: (message: string) => void;
  /** Called for every reflection (probe progress). */
  onReply?: (received: number, sent: number) => void;
  /** Called with every decoded reflection, in arrival order (duplicates included). */
  onSample?: (sample: ReplySample) => void;
  /** Acceptable security modes in order of preference; default ['open']. */
  modes?: readonly SecurityMode[];
  keyId?: string;
  /** The shared secret of keyId, on demand (never stored in options dumps). */
  secret?: () => Buffer;
  /** Choose RFC 7750 DSCP and ECN Monitoring when the server offers it (controlClient.ts); default true. */
  dscpEcnMonitoring?: boolean;
}

export async function runSenderSession(options: SenderSessionOptions): Promise<SenderSessionResult> {
  const client = await ControlClient.connect({
    host: options.host, port: options.controlPort, timeoutMs: options.controlTimeoutMs, ...(options.signal ? { signal: options.signal } : {}),
    ...(options.modes ? { modes: options.modes } : {}),
    ...(options.keyId !== undefined ? { keyId: options.keyId } : {}),
    ...(options.secret ? { secret: options.secret } : {}),
    ...(options.dscpEcnMonitoring !== undefined ? { dscpEcnMonitoring: options.dscpEcnMonitoring } : {}),
  });
  const mode = client.mode;
  // The packet format of the negotiated mode (mixed uses the open layouts, RFC 5618), RFC 7750 included.
  const fmt = sessionFormat('twamp', mode, client.dscpEcn);
  const header = fmt.sender.size;
  const peer = client.peer;
  let udp: SenderTestSocket | undefined;
  let accepted = false;
  try {
    const family = client.family;
    const model = modelForFamily(options.model, family, peer);
    const overhead = ipOverhead(family);
    // TTL/Hop Limit 255 (RFC 4656 §4.1.2) and the DSCP are set at open.
    udp = await openSenderTestSocket({ family, address: client.localAddress, dscp: options.dscp, peer, clock: options.clock });
    if (!udp.dscpMarked && options.dscp !== 0) options.onDscpUnavailable?.(udp.dscpReason ?? 'unknown');
    const senderPort = udp.port;
    // twampd reads exactly header + Padding Length octets per packet: declare the
    // padding of the smallest packet so larger ones (imix) are only truncated.
    // A model packet smaller than the header is sent as the bare header.
    const payloadOf = (sizeIp: number): number => Math.max(sizeIp - overhead, header);
    const paddingLength = payloadOf(model.minSizeIp) - header;
    const acc = await client.requestSession({
      ipvn: family,
      senderPort,
      receiverPort: options.reflectorPort,
      senderAddress: client.localAddress,
      receiverAddress: client.remoteAddress,
      paddingLength,
      startTime: 0n, // "as soon as Start-Sessions is done" (RFC 4656 §3.5: a Start Time in the past)
      timeout: ntpIntervalFromNs(BigInt(options.replyTimeoutMs) * 1_000_000n),
      typeP: typePFromDscp(options.dscp),
    }, {
      // Our own test port number: free here, and as likely as any to be free there.
      concretePort: senderPort,
      onZeroPort: (port) => options.onNotice?.(`${peer}: the reflector accepted Receiver Port 0 but named no port (it echoed 0); ` +
        `asking again for port ${port}`),
    });
    accepted = true;
    const reflectorAddress = client.remoteAddress;
    const reflectorPort = acc.port;
    const keys = fmt.sender.protection.hmac !== undefined ? client.testKeys(acc.sid) : undefined;
    await client.startSessions();

    const phase = await runTestPhase({
      socket: udp, reflectorAddress, reflectorPort, model, nPackets: options.nPackets, overhead, clock: options.clock,
      replyTimeoutMs: options.replyTimeoutMs, format: 'twamp', mode, dscp: options.dscp, dscpEcn: fmt.dscpEcn,
      ...(keys ? { keys } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onReply ? { onReply: options.onReply } : {}),
      ...(options.onSample ? { onSample: options.onSample } : {}),
    });
    if (options.signal?.aborted) throw new TwampSessionError('aborted', peer, 'session aborted');
    return senderSessionResult(phase, {
      ipVersion: family, reflectorAddress, reflectorTestPort: reflectorPort, senderAddress: client.localAddress,
      senderTestPort: senderPort, sid: acc.sid, paddingLength, mode, dscpMarked: udp.dscpMarked,
      clockSynchronized: options.clock.synchronized, setup: { control: true, dscpEcnMonitoring: fmt.dscpEcn },
    });
  } finally {
    udp?.close();
    if (accepted) await client.stopSessions(1);
    // Closed before the run ends: a cap on connections to one reflector (the agent's, and the reflector's per client) counts it gone.
    await client.close();
  }
}
