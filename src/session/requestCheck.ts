/**
 * The decision on a Request-TW-Session (RFC 5357 §3.5), apart from any
 * socket: given the decoded request, the control connection's addresses and
 * the reflector's policy and limit state as plain values, either the
 * parameters the session is set up with or a refusal — the Accept value
 * (RFC 4656 §3.3), the reason counted in `refused` (README "Security") and a
 * message naming the problem. No I/O, no clock: the control server does the
 * socket work and the wiring around it.
 */
import {
  Accept, Command, Mode, testFormat, type RequestTwSession, type ControlSecurityMode,
} from '../protocol/index.js';
import { formatHostPort, unmapAddress, isZeroAddress, ipFamily, withScopeOf } from '../util/net.js';
import { replyTargetProblem, LOWEST_REPLY_PORT } from './address.js';
import { clientKey } from './limits.js';
import { isIP } from 'node:net';

/** The reflector's policy and the limit state at the time of the request. */
export interface RequestPolicy {
  /** The control connection's security mode (absent: open). */
  securityMode?: ControlSecurityMode | undefined;
  /** RFC 6038 / RFC 7750 feature bits the client chose (Modes bits). */
  features: number;
  /** The control connection's local and peer addresses as the socket reports them ('' when unknown). */
  controlLocal: string;
  controlPeer: string;
  /** `max_padding`. */
  maxPadding: number;
  /** Sessions this connection holds, and `max_sessions_per_connection`. */
  connectionSessions: number;
  maxSessionsPerConnection: number;
  /** The client's key (source address, IPv6 by prefix), the sessions it holds, and `max_sessions_per_client`. */
  clientKey: string;
  clientSessions: number;
  maxSessionsPerClient: number;
  /** Sessions of the whole reflector, and `max_sessions`. */
  activeSessions: number;
  maxSessions: number;
  /** `allow_third_party_sender`. */
  allowThirdPartySender: boolean;
  /** allow/deny: the network refusing an address, or undefined when allowed. */
  aclCheck: (address: string) => string | undefined;
  /** `allow_reply_ports`. */
  allowReplyPorts: ReadonlySet<number>;
}

/** An accepted request: where the session's test socket binds and replies go. */
export interface RequestAccepted {
  ok: true;
  /** The Sender Address (zero: the control connection's peer), with the control connection's %scope if link-local. */
  senderAddress: string;
  /** The Receiver Address (zero: the control connection's local address), likewise scoped. */
  receiverAddress: string;
  family: 4 | 6;
  /** RFC 6038 Reflect Octets chosen: the Accept-Session echoes the Octets to be reflected. */
  reflectOctets: boolean;
}

/** A refused request: the Accept-Session value, the reason counted, and what was wrong. */
export interface RequestRefused {
  ok: false;
  accept: number;
  reason: 'request' | 'padding' | 'session_limit' | 'client_session_limit' | 'sender_address' | 'reply_port';
  message: string;
}

export type RequestVerdict = RequestAccepted | RequestRefused;

const refuse = (accept: number, message: string, reason: RequestRefused['reason'] = 'request'): RequestRefused =>
  ({ ok: false, accept, reason, message });

/**
 * Check a decoded Request-TW-Session against the policy. Never throws for
 * any request the decoder returns.
 */
export function checkRequest(req: RequestTwSession.RequestTwSession, p: RequestPolicy): RequestVerdict {
  if (req.command !== Command.REQUEST_TW_SESSION) return refuse(Accept.NOT_SUPPORTED, `command ${req.command} not supported`);
  if (req.confSender !== 0 || req.confReceiver !== 0) {
    return refuse(Accept.NOT_SUPPORTED, `Conf-Sender/Conf-Receiver must be 0 in TWAMP (got ${req.confSender}/${req.confReceiver})`);
  }
  if (req.numberOfScheduleSlots !== 0 || req.numberOfPackets !== 0) {
    return refuse(Accept.NOT_SUPPORTED, 'Number of Schedule Slots / Packets must be 0 in TWAMP');
  }
  if (req.paddingLength > p.maxPadding) {
    return refuse(Accept.NOT_SUPPORTED, `Padding Length ${req.paddingLength} exceeds max_padding ${p.maxPadding}`, 'padding');
  }
  const reflectOctets = (p.features & Mode.REFLECT_OCTETS) !== 0;
  if (reflectOctets && req.lengthOfPaddingToReflect > 0) {
    // RFC 6038 §4.2: the reflected padding must survive truncation to an equal-size reply
    // (header sizes of the session's format, RFC 7750's 44-octet open reflector header included).
    const fmt = testFormat('twamp', p.securityMode ?? 'open', { dscpEcn: (p.features & Mode.DSCP_ECN_MONITORING) !== 0 });
    const room = req.paddingLength - (fmt.reflector.size - fmt.sender.size);
    if (req.lengthOfPaddingToReflect > room) {
      return refuse(Accept.NOT_SUPPORTED, `Length of padding to reflect ${req.lengthOfPaddingToReflect} exceeds the ` +
        `${Math.max(room, 0)} octets of padding a reply can carry (Padding Length ${req.paddingLength})`, 'padding');
    }
  }
  if (p.connectionSessions >= p.maxSessionsPerConnection) {
    return refuse(Accept.PERMANENT_RESOURCE_LIMITATION,
      `${p.connectionSessions} sessions on this connection (max_sessions_per_connection ${p.maxSessionsPerConnection})`, 'session_limit');
  }
  if (p.clientSessions >= p.maxSessionsPerClient) {
    // Temporary (RFC 4656 §3.3, Accept 5): it frees as the client's other sessions end.
    return refuse(Accept.TEMPORARY_RESOURCE_LIMITATION, `client ${p.clientKey} holds ${p.clientSessions} sessions ` +
      `(max_sessions_per_client ${p.maxSessionsPerClient})`, 'client_session_limit');
  }
  if (p.activeSessions >= p.maxSessions) {
    return refuse(Accept.TEMPORARY_RESOURCE_LIMITATION, `session limit ${p.maxSessions} reached (max_sessions)`, 'session_limit');
  }
  // Zero addresses mean "the control connection's" (RFC 5357 §3.5).
  const controlLocal = unmapAddress(p.controlLocal);
  const controlPeer = unmapAddress(p.controlPeer);
  // Link-local addresses travel without their %scope (16 octets, RFC 5357 §3.5): they take the control
  // connection's interface, which Node reports with the address (fe80::1%eth0), or bind/sendto fail.
  const senderAddress = isZeroAddress(req.senderAddress) ? controlPeer : withScopeOf(unmapAddress(req.senderAddress), controlPeer);
  const receiverAddress = isZeroAddress(req.receiverAddress) ? controlLocal : withScopeOf(unmapAddress(req.receiverAddress), controlLocal);
  const family = ipFamily(receiverAddress);
  if (req.ipvn !== family || ipFamily(senderAddress) !== family || isIP(senderAddress) === 0) {
    return refuse(Accept.NOT_SUPPORTED, `address family mismatch (IPVN ${req.ipvn}, sender ${senderAddress}, receiver ${receiverAddress})`);
  }
  // Replies go to the Sender Address and Port: never a third party the client does not speak
  // for, nor a port a spoofed request could aim them at (README "Security").
  if (clientKey(senderAddress, 128) !== clientKey(controlPeer, 128)) {
    if (!p.allowThirdPartySender) {
      return refuse(Accept.NOT_SUPPORTED, `Sender Address ${senderAddress} is not the control connection's ${controlPeer}` +
        ' (allow_third_party_sender is off)', 'sender_address');
    }
    const denied = p.aclCheck(senderAddress);
    if (denied !== undefined) {
      return refuse(Accept.NOT_SUPPORTED, `Sender Address ${senderAddress}: network ${denied} (allow/deny)`, 'sender_address');
    }
  }
  const target = replyTargetProblem(senderAddress, req.senderPort, p.allowReplyPorts);
  if (target !== undefined) {
    const portProblem = replyTargetProblem(senderAddress, LOWEST_REPLY_PORT) === undefined;
    return refuse(Accept.NOT_SUPPORTED, `replies may not go to ${formatHostPort(senderAddress, req.senderPort)}: ${target}` +
      (portProblem && req.senderPort > 0 ? ' (allow_reply_ports)' : ''), portProblem ? 'reply_port' : 'sender_address');
  }
  return { ok: true, senderAddress, receiverAddress, family, reflectOctets };
}
