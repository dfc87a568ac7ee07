/**
 * Request-TW-Session, client → server, command 5, 112 octets
 * (RFC 5357 §3.5 over RFC 4656 §3.5; RFC 6038 for octets 88–91;
 * command 11 Request-TW-Micro-Sessions, RFC 9533, has the same layout):
 *   0 Command · 1 MBZ(4b)|IPVN(4b) · 2 Conf-Sender · 3 Conf-Receiver ·
 *   4 Number of Schedule Slots · 8 Number of Packets · 12 Sender Port ·
 *   14 Receiver Port · 16 Sender Address (16) · 32 Receiver Address (16) ·
 *   48 SID (16) · 64 Padding Length · 68 Start Time · 76 Timeout ·
 *   84 Type-P Descriptor · 88 Octets to be reflected · 90 Length of padding
 *   to reflect · 92 MBZ (4) · 96 HMAC (16)
 */
import { checkU64, checkUint, copyOctets, encodeTarget, readU16, readU32, requireOctets, writeFixed, writeU16, writeU32 } from '../bytes.js';
import { Command } from '../constants.js';
import { DecodeError } from '../errors.js';
import { readIpAddress, writeIpAddress } from '../ipAddress.js';
import { readTimestamp, writeTimestamp } from '../timestamp.js';

export const SIZE = 112;
export const NAME = 'Request-TW-Session';

export interface RequestTwSession {
  /** 5 (Request-TW-Session) or, on decode, 11 (Request-TW-Micro-Sessions). */
  command: number;
  ipvn: 4 | 6;
  /** TWAMP requires 0 (RFC 5357 §3.5); returned as read, the server decides. */
  confSender: number;
  confReceiver: number;
  numberOfScheduleSlots: number;
  numberOfPackets: number;
  senderPort: number;
  receiverPort: number;
  /** Textual IP; all-zero on the wire is '0.0.0.0' / '::' (use the control connection's address). */
  senderAddress: string;
  receiverAddress: string;
  sid: Buffer;
  paddingLength: number;
  /** NTP timestamp; 0 or past = start right after Start-Sessions. */
  startTime: bigint;
  /** NTP interval format (RFC 4656 §3.5): reflect this long after Stop-Sessions. */
  timeout: bigint;
  /** Type-P Descriptor; DSCP form is typePFromDscp(dscp). */
  typeP: number;
  /** RFC 6038 Reflect Octets fields; 0 unless that mode was chosen. */
  octetsToBeReflected: number;
  lengthOfPaddingToReflect: number;
  hmac: Buffer;
}

/** Fields the encoder defaults: command 5; Conf-Sender, Conf-Receiver, slots and packets 0; zero SID, RFC 6038 octets and HMAC. */
type Defaulted =
  | 'command'
  | 'confSender'
  | 'confReceiver'
  | 'numberOfScheduleSlots'
  | 'numberOfPackets'
  | 'sid'
  | 'octetsToBeReflected'
  | 'lengthOfPaddingToReflect'
  | 'hmac';

/** Encoder input: the defaulted fields may be omitted. */
export type RequestTwSessionInit = Omit<RequestTwSession, Defaulted> & Partial<Pick<RequestTwSession, Defaulted>>;


export function encode(msg: RequestTwSessionInit, buf?: Buffer, offset = 0): Buffer {
  const command = msg.command ?? Command.REQUEST_TW_SESSION;
  checkUint(`${NAME} Command`, command, 8);
  if (msg.ipvn !== 4 && msg.ipvn !== 6) {
    throw new RangeError(`${NAME} IPVN must be 4 or 6, got ${String(msg.ipvn)}`);
  }
  const confSender = msg.confSender ?? 0;
  const confReceiver = msg.confReceiver ?? 0;
  const slots = msg.numberOfScheduleSlots ?? 0;
  const packets = msg.numberOfPackets ?? 0;
  const octets = msg.octetsToBeReflected ?? 0;
  const reflectLength = msg.lengthOfPaddingToReflect ?? 0;
  checkUint(`${NAME} Conf-Sender`, confSender, 8);
  checkUint(`${NAME} Conf-Receiver`, confReceiver, 8);
  checkUint(`${NAME} Number of Schedule Slots`, slots, 32);
  checkUint(`${NAME} Number of Packets`, packets, 32);
  checkUint(`${NAME} Sender Port`, msg.senderPort, 16);
  checkUint(`${NAME} Receiver Port`, msg.receiverPort, 16);
  checkUint(`${NAME} Padding Length`, msg.paddingLength, 32);
  checkUint(`${NAME} Type-P Descriptor`, msg.typeP, 32);
  checkU64(`${NAME} Start Time`, msg.startTime);
  checkU64(`${NAME} Timeout`, msg.timeout);
  checkUint(`${NAME} Octets to be reflected`, octets, 16);
  checkUint(`${NAME} Length of padding to reflect`, reflectLength, 16);

  const [out, o] = encodeTarget(NAME, SIZE, buf, offset);
  out[o] = command;
  out[o + 1] = msg.ipvn; // high nibble MBZ
  out[o + 2] = confSender;
  out[o + 3] = confReceiver;
  writeU32(out, o + 4, slots);
  writeU32(out, o + 8, packets);
  writeU16(out, o + 12, msg.senderPort);
  writeU16(out, o + 14, msg.receiverPort);
  writeIpAddress(msg.senderAddress, msg.ipvn, out, o + 16, `${NAME} Sender Address`);
  writeIpAddress(msg.receiverAddress, msg.ipvn, out, o + 32, `${NAME} Receiver Address`);
  writeFixed(`${NAME} SID`, out, o + 48, msg.sid, 16);
  writeU32(out, o + 64, msg.paddingLength);
  writeTimestamp(out, o + 68, msg.startTime);
  writeTimestamp(out, o + 76, msg.timeout);
  writeU32(out, o + 84, msg.typeP);
  writeU16(out, o + 88, octets);
  writeU16(out, o + 90, reflectLength);
  writeFixed(`${NAME} HMAC`, out, o + 96, msg.hmac, 16);
  return out;
}

export function decode(buf: Uint8Array, offset = 0): RequestTwSession {
  requireOctets(NAME, buf, offset, SIZE);
  const command = buf[offset]!;
  if (command !== Command.REQUEST_TW_SESSION && command !== Command.REQUEST_TW_MICRO_SESSIONS) {
    throw new DecodeError(NAME, `expected 5 or 11, got ${command}`, { field: 'Command', offset: 0 });
  }
  const ipvn = buf[offset + 1]! & 0x0f; // high nibble is MBZ, ignored (RFC 4656 §3.5)
  if (ipvn !== 4 && ipvn !== 6) {
    throw new DecodeError(NAME, `expected 4 or 6, got ${ipvn}`, { field: 'IPVN', offset: 1 });
  }
  return {
    command,
    ipvn,
    confSender: buf[offset + 2]!,
    confReceiver: buf[offset + 3]!,
    numberOfScheduleSlots: readU32(buf, offset + 4),
    numberOfPackets: readU32(buf, offset + 8),
    senderPort: readU16(buf, offset + 12),
    receiverPort: readU16(buf, offset + 14),
    senderAddress: readIpAddress(buf, offset + 16, ipvn),
    receiverAddress: readIpAddress(buf, offset + 32, ipvn),
    sid: copyOctets(buf, offset + 48, 16),
    paddingLength: readU32(buf, offset + 64),
    startTime: readTimestamp(buf, offset + 68),
    timeout: readTimestamp(buf, offset + 76),
    typeP: readU32(buf, offset + 84),
    octetsToBeReflected: readU16(buf, offset + 88),
    lengthOfPaddingToReflect: readU16(buf, offset + 90),
    hmac: copyOctets(buf, offset + 96, 16),
  };
}
