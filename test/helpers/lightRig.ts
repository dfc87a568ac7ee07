// A LightReflector (src/session/lightReflector.ts) driven through its
// attach()/receive() seam: a fake reply socket that records what would be
// sent and a fake millisecond clock, for the Light reflector's unit tests.
import type { RemoteInfo } from 'node:dgram';
import { decodeReflectorPacket } from '../../src/protocol/index.js';
import { systemClock } from '../../src/session/clock.js';
import { LightReflector, type LightReflectorOptions } from '../../src/session/lightReflector.js';
import type { ReflectorCounters } from '../../src/session/reflectorSession.js';

export interface Sent { msg: Buffer; port: number; address: string }

/** A reflector answering into `sent`, at `clock.ms` (settable); `family` 6 counts IPv6 header overhead. */
export function lightRig(extra: Partial<LightReflectorOptions> = {}, family: 4 | 6 = 4) {
  const counters: ReflectorCounters = { reflectedPackets: 0, reflectedOctets: 0, droppedPackets: 0 };
  const sent: Sent[] = [];
  const clock = { ms: 1_000_000 };
  const lr = new LightReflector({ host: '127.0.0.1', port: 0, clock: systemClock(), counters, nowMs: () => clock.ms, ...extra });
  lr.attach({
    send(msg, offset, length, port, address) { sent.push({ msg: Buffer.from(msg.subarray(offset, offset + length)), port, address }); },
  }, family);
  /** One request from `address`:`port`, as the socket's message handler would pass it. */
  const rx = (msg: Buffer, address = '127.0.0.1', port = 40000): void =>
    lr.receive(msg, { address, port, family: address.includes(':') ? 'IPv6' : 'IPv4', size: msg.length } as RemoteInfo);
  /** Reflector sequence number of the last reply. */
  const lastSeq = (): number => decodeReflectorPacket(sent.at(-1)!.msg).seq;
  return { lr, counters, sent, clock, rx, lastSeq };
}
