// A raw TWAMP-Control connection for tests that speak the control protocol
// by hand to a server: read(n) waits (up to 2 s) for exactly n octets of the
// stream and keeps whatever followed for the next read.
import { connect, type Socket } from 'node:net';
import { sleep } from './wait.js';

export interface RawControl {
  sock: Socket;
  /** The next `n` octets (fewer if the server sent less within 2 s). */
  read(n: number): Promise<Buffer>;
}

export function rawControl(port: number, host = '127.0.0.1'): RawControl {
  const sock = connect(port, host);
  const chunks: Buffer[] = [];
  sock.on('data', (d: Buffer) => chunks.push(d));
  const read = async (n: number): Promise<Buffer> => {
    const deadline = Date.now() + 2000;
    while (Buffer.concat(chunks).length < n && Date.now() < deadline) await sleep(10);
    const all = Buffer.concat(chunks);
    chunks.length = 0;
    if (all.length > n) chunks.push(all.subarray(n));
    return all.subarray(0, n);
  };
  return { sock, read };
}
