/**
 * TWAMP-Control server (RFC 5357 §3) with its Session-Reflectors: greeting,
 * set-up, Server-Start, then any number of Request-TW-Session / Start-Sessions
 * / Stop-Sessions per connection, any number of connections at once. Every
 * expected message has a bounded wait; a connection's sessions end with it.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import {
  ServerGreeting, SetupResponse, ServerStart, RequestTwSession, AcceptSession, StartAck,
  StopSessions, Mode, Accept, clientCommandLength, DecodeError, nsFromNtpInterval, writeTimestamp,
  Command, dscpFromTypeP,
} from '../protocol/index.js';
import type { Clock } from './clock.js';
import { StreamReader } from './streamReader.js';
import { TwampSessionError, formatHostPort } from './errors.js';
import { unmapAddress, isZeroAddress, ipFamily } from './address.js';
import { bindUdp } from './udp.js';
import { setSocketDscp } from './socketOptions.js';
import { ReflectorSession, type ReflectorCounters } from './reflectorSession.js';
import type { Logger } from './log.js';

export interface ControlServerCounters extends ReflectorCounters {
  /** Request-TW-Session messages received. */
  sessionAttempts: number;
  /** Sessions started by Start-Sessions. */
  sessionsStarted: number;
  /** Control connections accepted. */
  controlConnections: number;
  /** Requests or connections refused, by reason. */
  refused: Map<string, number>;
}

export interface ControlServerOptions {
  host: string;
  port: number;
  clock: Clock;
  log: Logger;
  counters: ControlServerCounters;
  /** Bound on waiting for each message during set-up and inside a command. */
  messageTimeoutMs?: number;
  /** SERVWAIT: idle control connection limit while no session runs (RFC 5357 §3.1). */
  servwaitMs?: number;
  /** REFWAIT: a started session with no packet this long ends (RFC 5357 §4.2). */
  refwaitMs?: number;
  maxSessions?: number;
  /** UDP ports for test sessions when the requested one is unusable; default ephemeral. */
  testPortRange?: [number, number];
}

interface Conn {
  socket: Socket;
  peer: string;
  sessions: ReflectorSession[];
}

export function newControlServerCounters(): ControlServerCounters {
  return {
    sessionAttempts: 0, sessionsStarted: 0, controlConnections: 0,
    reflectedPackets: 0, reflectedOctets: 0, droppedPackets: 0, refused: new Map(),
  };
}

export class ControlServer {
  private server: Server | undefined;
  private readonly conns = new Set<Conn>();
  private readonly startTime: bigint;
  private readonly messageTimeoutMs: number;
  private readonly servwaitMs: number;
  private readonly refwaitMs: number;
  private readonly maxSessions: number;
  private nextRangePort = 0;

  constructor(private readonly o: ControlServerOptions) {
    this.startTime = o.clock.nowNtp();
    this.messageTimeoutMs = o.messageTimeoutMs ?? 30_000;
    this.servwaitMs = o.servwaitMs ?? 900_000;
    this.refwaitMs = o.refwaitMs ?? 900_000;
    this.maxSessions = o.maxSessions ?? 1000;
  }

  get activeSessions(): number {
    let n = 0;
    for (const c of this.conns) n += c.sessions.length;
    return n;
  }

  get activeConnections(): number {
    return this.conns.size;
  }

  async listen(): Promise<{ address: string; port: number }> {
    const server = createServer((s) => this.onConnection(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(new TwampSessionError('socket',
        `reflector ${formatHostPort(this.o.host, this.o.port)}`,
        `cannot listen for TWAMP-Control: ${e.code ?? e.message}` +
        (e.code === 'EACCES' && this.o.port < 1024 ? ' (ports below 1024 need root or CAP_NET_BIND_SERVICE)' : ''), { cause: e })));
      server.listen({ host: this.o.host, port: this.o.port, exclusive: true }, () => resolve());
    });
    server.on('error', (e) => this.o.log.error(`TWAMP-Control listener error: ${e.message}`));
    const a = server.address();
    if (a === null || typeof a === 'string') throw new Error('unexpected server address');
    return { address: a.address, port: a.port };
  }

  /** Stop accepting, close every control connection and end every session. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const c of this.conns) this.dropConnection(c, 'reflector shutting down');
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  private readonly warned = new Set<string>();
  private warnOnce(key: string, msg: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.o.log.warn(msg);
  }

  private refuse(reason: string): void {
    const m = this.o.counters.refused;
    m.set(reason, (m.get(reason) ?? 0) + 1);
  }

  private onConnection(socket: Socket): void {
    socket.setNoDelay(true);
    const peer = `client ${formatHostPort(unmapAddress(socket.remoteAddress ?? '?'), socket.remotePort ?? 0)}`;
    const conn: Conn = { socket, peer, sessions: [] };
    this.conns.add(conn);
    this.o.counters.controlConnections++;
    socket.on('close', () => {
      this.conns.delete(conn);
      for (const s of [...conn.sessions]) s.end('control connection closed');
    });
    socket.on('error', () => { /* reported through the reader */ });
    this.serve(conn).catch((e: unknown) => {
      const err = e as Error;
      if (err instanceof TwampSessionError && err.reason === 'closed') {
        // The client hung up: the normal end of a control connection.
        this.o.log.debug(err.message);
      } else {
        this.o.log.warn(err instanceof TwampSessionError ? err.message : `${peer}: ${err.message}`);
        this.refuse(err instanceof TwampSessionError ? err.reason : 'internal');
      }
      this.dropConnection(conn, err.message);
    });
  }

  private dropConnection(c: Conn, why: string): void {
    for (const s of [...c.sessions]) s.end(why);
    c.socket.destroy();
  }

  private async serve(c: Conn): Promise<void> {
    const { socket, peer } = c;
    const reader = new StreamReader(socket, peer);
    socket.write(ServerGreeting.encode({
      modes: Mode.UNAUTHENTICATED, challenge: randomBytes(16), salt: randomBytes(16), count: 1024,
    }));
    const setup = SetupResponse.decode(await reader.read(SetupResponse.SIZE, this.messageTimeoutMs, 'Set-Up-Response'));
    const security = setup.mode & (Mode.UNAUTHENTICATED | Mode.AUTHENTICATED | Mode.ENCRYPTED | Mode.MIXED);
    if (security === 0) {
      // RFC 4656 §3.1: a Mode with no security bit means the client gives up.
      this.o.log.debug(`${peer}: client declined all offered modes`);
      socket.end();
      return;
    }
    if (security !== Mode.UNAUTHENTICATED) {
      socket.write(ServerStart.encode({ accept: Accept.NOT_SUPPORTED, serverIv: Buffer.alloc(16), startTime: 0n }));
      socket.end();
      throw new TwampSessionError('refused', peer, `requested Mode 0x${setup.mode.toString(16)} was not offered (only unauthenticated)`);
    }
    socket.write(ServerStart.encode({ accept: Accept.OK, serverIv: randomBytes(16), startTime: this.startTime }));

    for (;;) {
      // SERVWAIT applies only while no session is running (RFC 5357 §3.1).
      const running = c.sessions.some((s) => s.isStarted);
      const first = await reader.read(16, running ? 0 : this.servwaitMs, 'a TWAMP-Control command');
      const cmd = first[0]!;
      const len = clientCommandLength(first);
      if (len === undefined || (cmd !== Command.REQUEST_TW_SESSION && cmd !== Command.START_SESSIONS && cmd !== Command.STOP_SESSIONS)) {
        // RFC 4656 §3.4/RFC 5357: unexpected command → Accept-Session with Accept 3; its length
        // is unknowable, so the connection cannot continue.
        socket.write(AcceptSession.encode({ accept: Accept.NOT_SUPPORTED, port: 0, sid: Buffer.alloc(16) }));
        socket.end();
        throw new TwampSessionError('protocol', peer, `unsupported command ${cmd}`);
      }
      const rest = len > 16 ? await reader.read(len - 16, this.messageTimeoutMs, 'the rest of the command') : Buffer.alloc(0);
      const msg = Buffer.concat([first, rest]);
      if (cmd === Command.REQUEST_TW_SESSION) await this.onRequest(c, msg);
      else if (cmd === Command.START_SESSIONS) this.onStart(c);
      else this.onStop(c, msg);
    }
  }

  private async onRequest(c: Conn, msg: Buffer): Promise<void> {
    const counters = this.o.counters;
    counters.sessionAttempts++;
    const reject = (accept: number, why: string): void => {
      this.refuse(why);
      this.o.log.warn(`${c.peer}: Request-TW-Session refused (Accept ${accept}): ${why}`);
      c.socket.write(AcceptSession.encode({ accept, port: 0, sid: Buffer.alloc(16) }));
    };
    let req: RequestTwSession.RequestTwSession;
    try {
      req = RequestTwSession.decode(msg);
    } catch (e) {
      if (e instanceof DecodeError) { reject(Accept.NOT_SUPPORTED, e.message); return; }
      throw e;
    }
    if (req.command !== Command.REQUEST_TW_SESSION) { reject(Accept.NOT_SUPPORTED, `command ${req.command} not supported`); return; }
    if (req.confSender !== 0 || req.confReceiver !== 0) {
      reject(Accept.NOT_SUPPORTED, `Conf-Sender/Conf-Receiver must be 0 in TWAMP (got ${req.confSender}/${req.confReceiver})`);
      return;
    }
    if (req.numberOfScheduleSlots !== 0 || req.numberOfPackets !== 0) {
      reject(Accept.NOT_SUPPORTED, 'Number of Schedule Slots / Packets must be 0 in TWAMP');
      return;
    }
    if (this.activeSessions >= this.maxSessions) {
      reject(Accept.TEMPORARY_RESOURCE_LIMITATION, `session limit ${this.maxSessions} reached`);
      return;
    }
    // Zero addresses mean "the control connection's" (RFC 5357 §3.5).
    const controlLocal = unmapAddress(c.socket.localAddress ?? '');
    const controlPeer = unmapAddress(c.socket.remoteAddress ?? '');
    const senderAddress = isZeroAddress(req.senderAddress) ? controlPeer : unmapAddress(req.senderAddress);
    const receiverAddress = isZeroAddress(req.receiverAddress) ? controlLocal : unmapAddress(req.receiverAddress);
    const family = ipFamily(receiverAddress);
    if (req.ipvn !== family || ipFamily(senderAddress) !== family || isIP(senderAddress) === 0) {
      reject(Accept.NOT_SUPPORTED, `address family mismatch (IPVN ${req.ipvn}, sender ${senderAddress}, receiver ${receiverAddress})`);
      return;
    }
    if (req.senderPort === 0) { reject(Accept.NOT_SUPPORTED, 'Sender Port 0'); return; }
    const sock = await this.bindTestSocket(receiverAddress, req.receiverPort, family, c.peer).catch((e: Error) => e);
    if (sock instanceof Error) {
      reject(Accept.TEMPORARY_RESOURCE_LIMITATION, sock.message);
      return;
    }
    sock.setTTL(255); // RFC 5357 §4.2: reflected packets leave with TTL/Hop Limit 255
    // Replies carry the session's DSCP from the Type-P Descriptor (RFC 5357 §3.5).
    const dscp = dscpFromTypeP(req.typeP) ?? 0;
    const marking = setSocketDscp(sock, dscp);
    if (!marking.ok && dscp !== 0) this.warnOnce('dscp', `test replies not marked with DSCP ${dscp}: ${marking.reason}`);
    const sid = this.makeSid(receiverAddress);
    const graceMs = Math.min(Number(nsFromNtpInterval(req.timeout) / 1_000_000n), 60_000);
    const session = new ReflectorSession({
      socket: sock, family, senderAddress, senderPort: req.senderPort, sid,
      stopGraceMs: graceMs, refwaitMs: this.refwaitMs, clock: this.o.clock, counters,
      onEnd: (s, why) => {
        const i = c.sessions.indexOf(s);
        if (i >= 0) c.sessions.splice(i, 1);
        this.o.log.debug(`${c.peer}: session on port ${s.port} ended (${why}), ${s.reflected} packets reflected`);
      },
    });
    c.sessions.push(session);
    c.socket.write(AcceptSession.encode({ accept: Accept.OK, port: session.port, sid }));
    this.o.log.debug(`${c.peer}: session accepted, reflector port ${session.port}` +
      (req.receiverPort && req.receiverPort !== session.port ? ` (requested ${req.receiverPort} was unusable)` : ''));
  }

  private onStart(c: Conn): void {
    let n = 0;
    for (const s of c.sessions) {
      if (!s.isStarted) { s.start(); n++; }
    }
    this.o.counters.sessionsStarted += n;
    c.socket.write(StartAck.encode({ accept: Accept.OK }));
  }

  private onStop(c: Conn, msg: Buffer): void {
    const stop = StopSessions.decode(msg);
    const running = c.sessions.filter((s) => s.isStarted);
    if (stop.numberOfSessions !== running.length) {
      // RFC 5357 §3.8 says such a message is invalid; twampy sends 0. Stop them all anyway.
      this.o.log.debug(`${c.peer}: Stop-Sessions counts ${stop.numberOfSessions} sessions, ${running.length} running`);
    }
    for (const s of c.sessions) s.stop();
  }

  /** The requested port when usable, else one from the configured range, else an ephemeral one. */
  private async bindTestSocket(address: string, requested: number, family: 4 | 6, peer: string) {
    if (requested !== 0) {
      try {
        return await bindUdp(address, requested, family, peer);
      } catch {
        // fall through: RFC 5357 §3.5 lets the server offer another port
      }
    }
    const range = this.o.testPortRange;
    if (range) {
      const size = range[1] - range[0] + 1;
      for (let i = 0; i < size; i++) {
        const port = range[0] + ((this.nextRangePort + i) % size);
        try {
          const s = await bindUdp(address, port, family, peer);
          this.nextRangePort = (port - range[0] + 1) % size;
          return s;
        } catch {
          // busy, try the next
        }
      }
      throw new TwampSessionError('socket', peer, `no free UDP port in test port range ${range[0]}-${range[1]}`);
    }
    return bindUdp(address, 0, family, peer);
  }

  /** RFC 4656 §3.5: IPv4 address of the generating host ‖ NTP timestamp ‖ 4 random octets. */
  private makeSid(localAddress: string): Buffer {
    const sid = Buffer.alloc(16);
    if (isIP(localAddress) === 4) {
      localAddress.split('.').forEach((o, i) => { sid[i] = Number(o); });
    } else {
      randomBytes(4).copy(sid, 0);
    }
    writeTimestamp(sid, 4, this.o.clock.nowNtp());
    randomBytes(4).copy(sid, 12);
    return sid;
  }
}
