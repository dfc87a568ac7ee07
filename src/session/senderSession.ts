/**
 * One TWAMP test session as Control-Client + Session-Sender (RFC 5357 §3–4.1):
 * connect, request a session from the port we bound, start, send the traffic
 * model's packets on schedule, collect reflections, and always Stop-Sessions
 * on the way out.
 */
import { randomBytes } from 'node:crypto';
import type { Socket as UdpSocket, RemoteInfo } from 'node:dgram';
import {
  typePFromDscp, writeSenderPacket, decodeReflectorPacket, SENDER_HEADER_SIZE, ntpIntervalFromNs,
  DecodeError, decodeErrorEstimate,
} from '../protocol/index.js';
import { SessionStats, type SessionResult } from '../measure/stats.js';
import { checkModelForIpVersion, createTrafficModel, ipOverhead, type ModelConfig } from '../measure/models.js';
import { ControlClient } from './controlClient.js';
import { TwampSessionError, formatHostPort } from './errors.js';
import { bindUdp, closeUdp } from './udp.js';
import { unmapAddress } from './address.js';
import type { Clock } from './clock.js';
import { PacedSender } from './pacer.js';
import { setSocketDscp } from './socketOptions.js';

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
  /** Called for every reflection (probe progress). */
  onReply?: (received: number, sent: number) => void;
}

export interface SenderSessionResult {
  stats: SessionResult;
  ipVersion: 4 | 6;
  reflectorAddress: string;
  reflectorTestPort: number;
  senderAddress: string;
  senderTestPort: number;
  sid: Buffer;
  paddingLength: number;
  /** Both ends claim UTC synchronisation (S bits): one-way delays are meaningful. */
  clocksSynchronized: boolean;
  /** Datagrams that were not a valid reflection from the reflector's test port. */
  invalidReplies: number;
  /** Whether the test packets carried the DSCP in their IP header. */
  dscpMarked: boolean;
}

export async function runSenderSession(o: SenderSessionOptions): Promise<SenderSessionResult> {
  const client = await ControlClient.connect({
    host: o.host, port: o.controlPort, timeoutMs: o.controlTimeoutMs, ...(o.signal ? { signal: o.signal } : {}),
  });
  const peer = client.peer;
  let udp: UdpSocket | undefined;
  let accepted = false;
  try {
    const family = client.family;
    let model;
    try {
      model = createTrafficModel(o.model, family);
      checkModelForIpVersion(model, family);
    } catch (e) {
      throw new TwampSessionError('protocol', peer, `traffic model does not fit IPv${family}: ${(e as Error).message}`);
    }
    const overhead = ipOverhead(family);
    udp = await bindUdp(client.localAddress, 0, family, peer);
    udp.setTTL(255); // RFC 4656 §4.1.2: send test packets with TTL/Hop Limit 255
    const marking = setSocketDscp(udp, o.dscp);
    if (!marking.ok && o.dscp !== 0) o.onDscpUnavailable?.(marking.reason);
    const senderPort = udp.address().port;
    // twampd reads exactly 14 + Padding Length octets per packet: declare the
    // padding of the smallest packet so larger ones (imix) are only truncated.
    const paddingLength = model.minSizeIp - overhead - SENDER_HEADER_SIZE.open;
    const acc = await client.requestSession({
      ipvn: family,
      senderPort,
      receiverPort: o.reflectorPort,
      senderAddress: client.localAddress,
      receiverAddress: client.remoteAddress,
      paddingLength,
      startTime: 0n, // "as soon as Start-Sessions is done" (protocol.md §7.13)
      timeout: ntpIntervalFromNs(BigInt(o.replyTimeoutMs) * 1_000_000n),
      typeP: typePFromDscp(o.dscp),
    });
    accepted = true;
    const reflectorAddress = client.remoteAddress;
    const reflectorPort = acc.port;
    await client.startSessions();

    const stats = new SessionStats();
    const sentT1 = new Map<number, bigint>();
    let received = 0;
    let sent = 0;
    let invalid = 0;
    let peerSynced = true;
    const onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
      const t4 = o.clock.nowNtp();
      if (rinfo.port !== reflectorPort || unmapAddress(rinfo.address) !== reflectorAddress) { invalid++; return; }
      let r;
      try {
        r = decodeReflectorPacket(msg, msg.length);
      } catch (e) {
        if (e instanceof DecodeError) { invalid++; return; }
        throw e;
      }
      if (!decodeErrorEstimate(r.errorEstimate).synchronized) peerSynced = false;
      stats.recordReply({
        senderSeq: r.senderSeq, reflectorSeq: r.seq, t1: r.senderTimestamp, t2: r.receiveTimestamp,
        t3: r.timestamp, t4, sizeIp: msg.length + overhead,
      });
      if (sentT1.has(r.senderSeq)) received++;
      o.onReply?.(received, sent);
    };
    udp.on('message', onMessage);
    udp.on('error', () => { invalid++; });

    const padding = randomBytes(Math.max(0, model.maxSizeIp - overhead - SENDER_HEADER_SIZE.open));
    const sock = udp;
    const sendOne = (seq: number): number => {
      const shape = model.packet(seq);
      const payload = shape.sizeIp - overhead;
      const buf = Buffer.allocUnsafe(payload);
      padding.copy(buf, SENDER_HEADER_SIZE.open, 0, payload - SENDER_HEADER_SIZE.open);
      const t1 = o.clock.nowNtp();
      writeSenderPacket(buf, { seq, timestamp: t1, errorEstimate: o.clock.errorEstimate });
      sock.send(buf, reflectorPort, reflectorAddress);
      sentT1.set(seq, t1);
      stats.recordSent({ seq, sizeIp: shape.sizeIp, t1 });
      sent++;
      return shape.gapNs;
    };

    const pacer = new PacedSender(o.clock);
    await pacer.run(o.nPackets, sendOne, o.signal);
    // Wait for stragglers: until every packet is answered or the reply timeout passes.
    await waitUntil(() => received >= o.nPackets, o.replyTimeoutMs, o.signal);
    if (o.signal?.aborted) throw new TwampSessionError('aborted', peer, 'session aborted');
    const result: SenderSessionResult = {
      stats: stats.result(),
      ipVersion: family,
      reflectorAddress,
      reflectorTestPort: reflectorPort,
      senderAddress: client.localAddress,
      senderTestPort: senderPort,
      sid: acc.sid,
      paddingLength,
      clocksSynchronized: o.clock.synchronized && peerSynced && received > 0,
      invalidReplies: invalid,
      dscpMarked: marking.ok,
    };
    return result;
  } finally {
    if (udp) closeUdp(udp);
    if (accepted) await client.stopSessions(1);
    client.close();
  }
}

/** Resolve when cond() holds (checked every 5 ms) or after timeoutMs. */
function waitUntil(cond: () => boolean, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const deadline = Date.now() + timeoutMs;
    const check = (): void => {
      if (cond() || Date.now() >= deadline || signal?.aborted) { resolve(); return; }
      setTimeout(check, 5);
    };
    check();
  });
}

export { formatHostPort };
