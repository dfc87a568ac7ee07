/** UDP socket helpers: bind with a bounded, typed failure. */
import { createSocket, type Socket } from 'node:dgram';
import { TwampSessionError, formatHostPort } from './errors.js';

export async function bindUdp(address: string, port: number, family: 4 | 6, peer: string): Promise<Socket> {
  const sock = createSocket({ type: family === 6 ? 'udp6' : 'udp4', ipv6Only: family === 6 });
  await new Promise<void>((resolve, reject) => {
    const onErr = (e: NodeJS.ErrnoException): void => {
      sock.close();
      reject(new TwampSessionError('socket', peer,
        `cannot bind UDP test socket ${formatHostPort(address, port)}: ${e.code ?? e.message}`, { cause: e }));
    };
    sock.once('error', onErr);
    sock.bind({ address, port, exclusive: true }, () => {
      sock.removeListener('error', onErr);
      resolve();
    });
  });
  return sock;
}

export function closeUdp(sock: Socket): void {
  try {
    sock.close();
  } catch {
    // already closed
  }
}
