// A UDP relay on loopback that stands for a path re-marking DiffServ on the
// way out: datagrams from the sender go on to the target carrying the DS byte
// `forwardTos`, whatever they were sent with; the target's replies come back
// to the sender with the DS byte they arrived with from the target, and are
// kept (payload and DS byte) for the test to read. Needs the native datapath
// (it reads and sets the DS byte per packet): call needNative(t) first.
import { openTestSocket, type TestSocket } from '../../src/session/datapath.js';

export interface RelayedReply {
  /** The reply as the target sent it (a copy). */
  data: Buffer;
  /** Its DS byte as it arrived at the relay (DSCP << 2 | ECN). */
  tos: number;
}

export interface RemarkingRelay {
  /** Where the sender sends (127.0.0.1). */
  port: number;
  /** The target's replies, in arrival order. */
  replies: RelayedReply[];
  /** Requests forwarded to the target. */
  forwarded(): number;
  close(): void;
}

export async function remarkingRelay(target: { address: string; port: number }, forwardTos: number): Promise<RemarkingRelay> {
  let sender: { address: string; port: number } | undefined;
  let forwarded = 0;
  const replies: RelayedReply[] = [];
  let front: TestSocket | undefined;
  const back = await openTestSocket({
    family: 4, address: '127.0.0.1', port: 0, native: true, ttl: 255, tos: forwardTos, txTimestamps: false,
    onPackets: (batch) => {
      for (const d of batch) {
        if (d.port !== target.port) continue;
        replies.push({ data: Buffer.from(d.data), tos: d.tos });
        if (sender && front) front.send(d.data, sender.address, sender.port, d.tos >= 0 ? { tos: d.tos } : {});
      }
    },
    onError: () => {},
  });
  try {
    front = await openTestSocket({
      family: 4, address: '127.0.0.1', port: 0, native: true, ttl: 255, txTimestamps: false,
      onPackets: (batch) => {
        for (const d of batch) {
          sender = { address: d.address, port: d.port };
          back.send(d.data, target.address, target.port);
          forwarded++;
        }
      },
      onError: () => {},
    });
  } catch (e) {
    back.close();
    throw e;
  }
  const f = front;
  return {
    port: f.local.port,
    replies,
    forwarded: () => forwarded,
    close: () => { f.close(); back.close(); },
  };
}
