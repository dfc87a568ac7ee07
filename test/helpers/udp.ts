// Small UDP helpers for tests that drive a reflector by hand.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';

import { sleep } from './wait.js';

export { sleep };

/** A udp4 socket bound to an ephemeral loopback port. */
export async function udp(): Promise<UdpSocket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

/** Send `pkts` to 127.0.0.1:port and collect the replies arriving within `ms`. */
export async function exchange(s: UdpSocket, port: number, pkts: Buffer[], ms = 200): Promise<Buffer[]> {
  const got: Buffer[] = [];
  const on = (m: Buffer): void => { got.push(m); };
  s.on('message', on);
  for (const p of pkts) s.send(p, port, '127.0.0.1');
  await sleep(ms);
  s.off('message', on);
  return got;
}
