/**
 * UDP socket helpers of the reflector: bind with a bounded, typed failure,
 * on the test-socket datapath (datapath.ts: kernel receive timestamps, TTL
 * and TOS of each datagram, stamped and batched sends; node:dgram when the
 * native helper is unavailable), and the batched reply sender.
 */
import { TwampSessionError } from './errors.js';
import { formatHostPort } from '../util/net.js';
import { openTestSocket, DatapathError, type RxDatagram, type TestSocket } from './datapath.js';
import { messageOf } from '../util/errors.js';

export interface ReflectorSocketOptions {
  address: string;
  port: number;
  family: 4 | 6;
  /** Who the socket is for (error messages). */
  peer: string;
  /** What is bound, in error messages (default: "UDP test socket host:port"). */
  what?: string;
  /** One call per received batch (recvmmsg on the native datapath; one datagram with node:dgram). */
  onPackets: (batch: RxDatagram[]) => void;
  onError?: (e: Error) => void;
  /** SO_RCVBUF bytes. */
  rcvbuf?: number;
  /** IPV6_V6ONLY for family 6; default true. */
  ipv6Only?: boolean;
  /** OTEL_TWAMP_NATIVE-style override: false forces node:dgram (tests); default auto. */
  native?: boolean;
}

/**
 * A reflector's test socket (TWAMP test session or Light port) on the
 * datapath: replies leave with TTL / Hop Limit 255 (RFC 5357 §4.2.1; on a
 * dual-stack IPv6 socket both IP_TTL and IPV6_UNICAST_HOPS, so IPv4 peers get
 * 255 too), no TX timestamps (a reflector's T3 is the stamp written right
 * before sendmsg). Rejects with a TwampSessionError whose message ends with
 * the errno code (EADDRINUSE, EINVAL, …).
 */
export async function openReflectorSocket(o: ReflectorSocketOptions): Promise<TestSocket> {
  try {
    return await openTestSocket({
      family: o.family, address: o.address, port: o.port, ttl: 255, txTimestamps: false,
      ipv6Only: o.family === 6 ? o.ipv6Only ?? true : false,
      ...(o.rcvbuf !== undefined ? { rcvbuf: o.rcvbuf } : {}),
      ...(o.native !== undefined ? { native: o.native } : {}),
      onPackets: o.onPackets,
      onError: o.onError ?? (() => { /* ICMP errors on send must not stop the reflector */ }),
    });
  } catch (e) {
    const code = e instanceof DatapathError || typeof (e as { code?: unknown }).code === 'string'
      ? (e as { code: string }).code : messageOf(e);
    throw new TwampSessionError('socket', o.peer,
      `cannot bind ${o.what ?? `UDP test socket ${formatHostPort(o.address, o.port)}`}: ${code}` +
      (code === 'EACCES' && o.port > 0 && o.port < 1024 ? ' (ports below 1024 need root or CAP_NET_BIND_SERVICE)' : ''), { cause: e });
  }
}

export function closeTestSocket(sock: TestSocket): void {
  try {
    sock.close();
  } catch {
    // already closed
  }
}


/** One reply of a received batch. */
export interface ReplyItem {
  /** The reply, exactly its length. */
  data: Buffer;
  address: string;
  port: number;
  /** Where the datapath writes T3 right before sendmsg (RFC 5357 §4.2.1); absent when the reply is final (HMAC-covered T3). */
  stampOffset?: number;
  /** TOS / traffic class this reply leaves with (the datapath's per-packet TOS); absent = the socket's marking. */
  tos?: number;
}

const BATCH_MAX = 1024;

/**
 * Sends the replies of one received batch: sendmmsg in runs of at most
 * BATCH_MAX, `send` for a lone reply; each reply with its own TOS (a
 * per-packet IP_TOS / IPV6_TCLASS control message on the native datapath,
 * datapath.ts SendOptions.tos), so replies of different DSCP share one
 * sendmmsg and the socket's own marking is untouched. A reply the kernel
 * refuses (unreachable destination, …) is dropped and the rest still go; a
 * full socket buffer (EAGAIN / ENOBUFS) drops the rest of the batch. Never
 * throws.
 */
export class ReplySender {
  /** Replies the kernel refused or that found the socket buffer full. */
  sendFailures = 0;

  constructor(private readonly sock: TestSocket) {}

  /** Sends `items`; returns how many went out (the first ones may not be the ones that went: count only). */
  flush(items: readonly ReplyItem[]): number {
    const n = items.length;
    let sent = 0;
    for (let i = 0; i < n; i += BATCH_MAX) {
      const r = this.sendRun(items, i, Math.min(n, i + BATCH_MAX));
      sent += r.sent;
      if (r.full) break;
    }
    this.sendFailures += n - sent;
    return sent;
  }

  private sendRun(items: readonly ReplyItem[], from: number, to: number): { sent: number; full: boolean } {
    let sent = 0;
    let i = from;
    while (i < to) {
      try {
        if (to - i === 1) {
          const it = items[i]!;
          this.sock.send(it.data, it.address, it.port, it.stampOffset === undefined && it.tos === undefined ? undefined : {
            ...(it.stampOffset !== undefined ? { stampOffset: it.stampOffset } : {}),
            ...(it.tos !== undefined ? { tos: it.tos } : {}),
          });
          return { sent: sent + 1, full: false };
        }
        const r = this.sock.sendBatch(i === 0 && to === items.length ? items as ReplyItem[] : items.slice(i, to));
        sent += r.sent;
        i += r.sent > 0 ? r.sent : 1; // a short count: the next one failed; retried alone next round
      } catch (e) {
        const code = (e as { code?: unknown }).code;
        if (code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'ENOBUFS' || code === 'ERR_SOCKET_CLOSED') {
          return { sent, full: true };
        }
        i++; // this destination is refused; the others still go
      }
    }
    return { sent, full: false };
  }
}
