/**
 * TWAMP-Control client (RFC 5357 §3, over the OWAMP-Control base of RFC 4656
 * §3): connection set-up, Request-TW-Session, Start-Sessions, Stop-Sessions.
 * Every reply is checked (Modes, Accept, Port) and every read is bounded by a
 * per-message timeout; failures are TwampSessionError with a reason.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import {
  ServerGreeting, SetupResponse, ServerStart, RequestTwSession, AcceptSession,
  StartSessions, StartAck, StopSessions, Mode, acceptDescription, DecodeError,
} from '../protocol/index.js';
import { StreamReader, formatMs } from './streamReader.js';
import { TwampSessionError, formatHostPort } from './errors.js';
import { resolveHost, unmapAddress } from './address.js';

export interface ControlClientOptions {
  host: string;
  port: number;
  /** Bound on the TCP connect and on each expected control message. */
  timeoutMs: number;
  signal?: AbortSignal;
}

export type RequestTwSessionInit = Parameters<typeof RequestTwSession.encode>[0];

export class ControlClient {
  readonly peer: string;
  private constructor(
    private readonly socket: Socket,
    private readonly reader: StreamReader,
    readonly greeting: ServerGreeting.ServerGreeting,
    readonly serverStart: ServerStart.ServerStart,
    readonly localAddress: string,
    readonly remoteAddress: string,
    readonly family: 4 | 6,
    private readonly timeoutMs: number,
    peer: string,
  ) {
    this.peer = peer;
  }

  /** Connect, read Server-Greeting, choose unauthenticated mode, read Server-Start. */
  static async connect(opts: ControlClientOptions): Promise<ControlClient> {
    const label = `reflector ${formatHostPort(opts.host, opts.port)}`;
    const { address, family } = await resolveHost(opts.host, label);
    const peer = address === opts.host ? label : `${label} (${formatHostPort(address, opts.port)})`;
    const socket = await connectTcp(address, opts.port, opts.timeoutMs, peer, opts.signal);
    const reader = new StreamReader(socket, peer);
    const onAbort = (): void => { socket.destroy(); };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const greeting = await readMessage(reader, peer, ServerGreeting, opts.timeoutMs, 'Server-Greeting');
      if (greeting.modes === 0) {
        throw new TwampSessionError('refused', peer, 'server refused the connection (Server-Greeting Modes = 0)');
      }
      if ((greeting.modes & Mode.UNAUTHENTICATED) === 0) {
        throw new TwampSessionError('refused', peer,
          `server does not offer unauthenticated mode (offered Modes 0x${greeting.modes.toString(16)}: ${describeModes(greeting.modes)})`);
      }
      socket.write(SetupResponse.encode({
        mode: Mode.UNAUTHENTICATED, keyId: Buffer.alloc(80), token: Buffer.alloc(64), clientIv: Buffer.alloc(16),
      }));
      const start = await readMessage(reader, peer, ServerStart, opts.timeoutMs, 'Server-Start');
      if (start.accept !== 0) {
        throw new TwampSessionError('refused', peer,
          `Server-Start refused the connection: Accept ${start.accept} (${acceptDescription(start.accept)})`);
      }
      const local = unmapAddress(socket.localAddress ?? '');
      const remote = unmapAddress(socket.remoteAddress ?? address);
      return new ControlClient(socket, reader, greeting, start, local, remote, family, opts.timeoutMs, peer);
    } catch (e) {
      socket.destroy();
      throw e;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Send Request-TW-Session and return the checked Accept-Session. */
  async requestSession(req: RequestTwSessionInit): Promise<AcceptSession.AcceptSession> {
    this.socket.write(RequestTwSession.encode(req));
    const acc = await readMessage(this.reader, this.peer, AcceptSession, this.timeoutMs, 'Accept-Session');
    if (acc.accept !== 0) {
      throw new TwampSessionError('refused', this.peer,
        `Request-TW-Session refused: Accept ${acc.accept} (${acceptDescription(acc.accept)})` +
        (req.receiverPort ? ` for reflector port ${req.receiverPort}` : ''));
    }
    if (acc.port === 0) {
      throw new TwampSessionError('protocol', this.peer, 'Accept-Session accepted the session but gave reflector port 0');
    }
    return acc;
  }

  async startSessions(): Promise<void> {
    this.socket.write(StartSessions.encode({}));
    const ack = await readMessage(this.reader, this.peer, StartAck, this.timeoutMs, 'Start-Ack');
    if (ack.accept !== 0) {
      throw new TwampSessionError('refused', this.peer,
        `Start-Sessions refused: Accept ${ack.accept} (${acceptDescription(ack.accept)})`);
    }
  }

  /** Stop-Sessions has no reply (RFC 5357 §3.8); resolve once the bytes are handed to the kernel. */
  stopSessions(numberOfSessions: number, accept = 0): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed || !this.socket.writable) { resolve(); return; }
      const t = setTimeout(resolve, this.timeoutMs);
      this.socket.write(StopSessions.encode({ accept, numberOfSessions }), () => { clearTimeout(t); resolve(); });
    });
  }

  /** Half-close, then destroy after a short bound so a silent peer cannot keep us. */
  close(): void {
    if (this.socket.destroyed) return;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }
}

/** Read one fixed-size message and decode it; decode failures become protocol errors naming the peer. */
export async function readMessage<T>(
  reader: StreamReader, peer: string, codec: { SIZE: number; decode(b: Uint8Array): T }, timeoutMs: number, what: string,
): Promise<T> {
  const buf = await reader.read(codec.SIZE, timeoutMs, what);
  try {
    return codec.decode(buf);
  } catch (e) {
    if (e instanceof DecodeError) throw new TwampSessionError('protocol', peer, `malformed ${what}: ${e.message}`, { cause: e });
    throw e;
  }
}

export function describeModes(modes: number): string {
  const names: string[] = [];
  if (modes & Mode.UNAUTHENTICATED) names.push('unauthenticated');
  if (modes & Mode.AUTHENTICATED) names.push('authenticated');
  if (modes & Mode.ENCRYPTED) names.push('encrypted');
  if (modes & Mode.MIXED) names.push('mixed');
  return names.length ? names.join(', ') : 'none';
}

function connectTcp(host: string, port: number, timeoutMs: number, peer: string, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(new TwampSessionError('aborted', peer, 'aborted before connect')); return; }
    const s = tcpConnect({ host, port });
    s.setNoDelay(true);
    const done = (e?: Error): void => {
      clearTimeout(timer);
      s.removeListener('error', onErr);
      s.removeListener('connect', onOk);
      signal?.removeEventListener('abort', onAbort);
      if (e) { s.destroy(); reject(e); } else resolve(s);
    };
    const onOk = (): void => done();
    const onErr = (e: NodeJS.ErrnoException): void =>
      done(new TwampSessionError('connect', peer, `cannot connect to TWAMP-Control: ${e.code ?? e.message}`, { cause: e }));
    const onAbort = (): void => done(new TwampSessionError('aborted', peer, 'aborted while connecting'));
    const timer = setTimeout(() => done(new TwampSessionError('connect', peer,
      `TWAMP-Control connect timed out after ${formatMs(timeoutMs)}`)), timeoutMs);
    s.once('connect', onOk);
    s.once('error', onErr);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
