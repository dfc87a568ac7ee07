/**
 * TWAMP-Control server (RFC 5357 §3) with its Session-Reflectors: greeting,
 * set-up, Server-Start, then any number of Request-TW-Session / Start-Sessions
 * / Stop-Sessions per connection, any number of connections at once. Every
 * expected message has a bounded wait; a connection's sessions end with it.
 *
 * Security (RFC 4656 §3.1–3.2, RFC 5618): the greeting offers exactly the
 * configured modes with a fresh Challenge and Salt and Count = kdf_count. A
 * mode not allowed, an unknown KeyID or a Token whose Challenge does not
 * match (wrong secret) is answered with a clear Server-Start Accept ≠ 0 and
 * counted in `refused` ('mode', 'key_id', 'auth'); a command whose HMAC does
 * not verify closes the connection ('auth'). Other connections and their
 * sessions are untouched.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import {
  ServerGreeting, SetupResponse, ServerStart, RequestTwSession, AcceptSession, StartAck,
  StopSessions, Accept, clientCommandLength, DecodeError, nsFromNtpInterval, writeTimestamp,
  Command, dscpFromTypeP, ControlCipher, deriveKey, decryptToken, constantTimeEqual, testSessionKeys,
  securityModeOf, SECURITY_MODE_MASK, type SecurityMode, type ControlSecurityMode,
} from '../protocol/index.js';
import type { Clock } from './clock.js';
import { StreamReader } from './streamReader.js';
import { TwampSessionError, formatHostPort, type FailureReason } from './errors.js';
import { unmapAddress, isZeroAddress, ipFamily } from './address.js';
import { bindUdp } from './udp.js';
import { setSocketDscp } from './socketOptions.js';
import { ReflectorSession, type ReflectorCounters } from './reflectorSession.js';
import type { Logger } from './log.js';
import { MODE_BIT } from './controlClient.js';

export interface ControlServerCounters extends ReflectorCounters {
  /** Request-TW-Session messages received. */
  sessionAttempts: number;
  /** Sessions started by Start-Sessions. */
  sessionsStarted: number;
  /** Control connections accepted. */
  controlConnections: number;
  /**
   * Requests or connections refused, by reason (a closed set: 'mode' — no
   * acceptable or an unallowed security mode; 'key_id' — unknown KeyID;
   * 'auth' — wrong secret or a failed HMAC; 'abandoned' — the client hung up
   * after the greeting, as twping does when no mode is common; 'request' —
   * malformed or unsupported Request-TW-Session; 'resources' — session limit
   * or no test port; and the FailureReasons of broken connections such as
   * 'timeout' or 'protocol').
   */
  refused: Map<string, number>;
}

/** Refusal reasons counted in ControlServerCounters.refused. */
export type RefusalReason = 'mode' | 'key_id' | 'auth' | 'abandoned' | 'request' | 'resources' | 'internal' | FailureReason;

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
  /** Security modes clients may choose; default ['open']. */
  modes?: readonly SecurityMode[];
  /** The shared secret of a KeyID, or undefined when unknown. Needed for any mode but open. */
  lookupKey?: (keyId: string) => Buffer | undefined;
  /** PBKDF2 Count announced in Server-Greeting (power of two ≥ 1024); default 2048 as twampd. */
  kdfCount?: number;
  /** Test sessions as they are accepted and end (e.g. for an interactive reflector's log). */
  onSessionEvent?: (e: SessionEvent) => void;
}

export type SessionEvent =
  | { type: 'accepted'; peer: string; port: number; requestedPort: number }
  | { type: 'ended'; peer: string; port: number; why: string; reflected: number };

/** Keys and ciphers of an authenticated/encrypted/mixed control connection. */
interface ConnSecurity {
  mode: ControlSecurityMode;
  aesSessionKey: Buffer;
  hmacKey: Buffer;
  rx: ControlCipher;
  tx: ControlCipher;
}

interface Conn {
  socket: Socket;
  peer: string;
  sessions: ReflectorSession[];
  security?: ConnSecurity;
}

export const DEFAULT_KDF_COUNT = 2048;

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
  private readonly modes: readonly SecurityMode[];
  private readonly offeredModes: number;
  private readonly kdfCount: number;
  private nextRangePort = 0;

  constructor(private readonly o: ControlServerOptions) {
    this.startTime = o.clock.nowNtp();
    this.messageTimeoutMs = o.messageTimeoutMs ?? 30_000;
    this.servwaitMs = o.servwaitMs ?? 900_000;
    this.refwaitMs = o.refwaitMs ?? 900_000;
    this.maxSessions = o.maxSessions ?? 1000;
    this.modes = o.modes && o.modes.length > 0 ? o.modes : ['open'];
    this.offeredModes = this.modes.reduce((bits, m) => bits | MODE_BIT[m], 0);
    this.kdfCount = o.kdfCount ?? DEFAULT_KDF_COUNT;
    if (this.modes.some((m) => m !== 'open') && !o.lookupKey) {
      throw new TypeError(`modes ${this.modes.join(', ')} need a key lookup (key_file)`);
    }
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

  private refuse(reason: RefusalReason): void {
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
      this.dropConnection(conn, err instanceof TwampSessionError && err.reason === 'closed' ? 'control connection closed' : err.message);
    });
  }

  private dropConnection(c: Conn, why: string): void {
    for (const s of [...c.sessions]) s.end(why);
    c.socket.destroy();
  }

  /** Send a server message: in clear (open mode) or HMAC'd and encrypted. */
  private sendControl(c: Conn, msg: Buffer): void {
    c.socket.write(c.security ? c.security.tx.encrypt(msg) : msg);
  }

  /** Refuse the connection with a clear Server-Start, count and log it, close. */
  private refuseSetup(c: Conn, reason: RefusalReason, accept: number, why: string): void {
    this.refuse(reason);
    this.o.log.warn(`${c.peer}: connection refused (Server-Start Accept ${accept}): ${why}`);
    c.socket.write(ServerStart.encode({ accept, serverIv: Buffer.alloc(16), startTime: 0n }));
    c.socket.end();
  }

  private async serve(c: Conn): Promise<void> {
    const { socket, peer } = c;
    const reader = new StreamReader(socket, peer);
    const challenge = randomBytes(16);
    const salt = randomBytes(16);
    socket.write(ServerGreeting.encode({ modes: this.offeredModes, challenge, salt, count: this.kdfCount }));
    const setupWire = await reader.read(SetupResponse.SIZE, this.messageTimeoutMs, 'Set-Up-Response').catch((e: unknown) => {
      if (e instanceof TwampSessionError && e.reason === 'closed' && this.server !== undefined) {
        // Hanging up after the greeting is how twping says "no common mode"
        // (it never sends Mode 0); a bare TCP probe looks the same.
        this.refuse('abandoned');
        this.o.log.info(`${peer}: client closed the connection after the greeting without choosing a mode` +
          ` (offered: ${this.modes.join(', ')})`);
        return undefined;
      }
      throw e;
    });
    if (setupWire === undefined) return;
    const setup = SetupResponse.decode(setupWire);
    const security = setup.mode & SECURITY_MODE_MASK;
    if (security === 0) {
      // RFC 4656 §3.1: a Mode with no security bit means the client gives up
      // (it found none of its modes in our greeting).
      this.refuse('mode');
      this.o.log.info(`${peer}: client found no acceptable mode among those offered (${this.modes.join(', ')}) and gave up`);
      socket.end();
      return;
    }
    const mode = securityModeOf(setup.mode);
    if (mode === undefined || !this.modes.includes(mode)) {
      this.refuseSetup(c, 'mode', Accept.NOT_SUPPORTED, `requested Mode 0x${setup.mode.toString(16)}` +
        ` (${mode ?? 'several security bits'}) is not allowed; allowed: ${this.modes.join(', ')}`);
      return;
    }
    if (mode === 'open') {
      socket.write(ServerStart.encode({ accept: Accept.OK, serverIv: randomBytes(16), startTime: this.startTime }));
    } else {
      // UTF-8 up to the first NUL; logged JSON-quoted (it comes from the network).
      const keyId = SetupResponse.keyIdToString(setup.keyId);
      const secret = this.o.lookupKey!(keyId);
      // Derive even for an unknown KeyID so the answer takes as long either way.
      const dk = deriveKey(secret ?? randomBytes(16), salt, this.kdfCount, this.kdfCount);
      const token = decryptToken(setup.token, dk);
      dk.fill(0);
      if (secret === undefined) {
        this.refuseSetup(c, 'key_id', Accept.FAILURE, `unknown key id ${JSON.stringify(keyId)} (${mode} mode)`);
        return;
      }
      if (!constantTimeEqual(token.challenge, challenge)) {
        this.refuseSetup(c, 'auth', Accept.FAILURE,
          `authentication failed for key id ${JSON.stringify(keyId)} (${mode} mode): the Token does not carry our ` +
          'Challenge, so the client uses another secret');
        return;
      }
      const serverIv = randomBytes(16);
      const aesSessionKey = Buffer.from(token.aesSessionKey);
      const hmacKey = Buffer.from(token.hmacKey);
      const tx = new ControlCipher(aesSessionKey, serverIv, hmacKey, mode);
      const rx = new ControlCipher(aesSessionKey, setup.clientIv, hmacKey, mode);
      c.security = { mode, aesSessionKey, hmacKey, rx, tx };
      socket.write(tx.encryptServerStart(ServerStart.encode({ accept: Accept.OK, serverIv, startTime: this.startTime })));
      this.o.log.debug(`${peer}: ${mode} mode, key id ${JSON.stringify(keyId)}`);
    }

    const sec = c.security;
    for (;;) {
      // SERVWAIT applies only while no session is running (RFC 5357 §3.1).
      const running = c.sessions.some((s) => s.isStarted);
      const wireFirst = await reader.read(16, running ? 0 : this.servwaitMs, 'a TWAMP-Control command');
      const first = sec ? sec.rx.decrypt(wireFirst) : wireFirst;
      const cmd = first[0]!;
      const len = clientCommandLength(first);
      if (len === undefined || (cmd !== Command.REQUEST_TW_SESSION && cmd !== Command.START_SESSIONS && cmd !== Command.STOP_SESSIONS)) {
        // RFC 4656 §3.4/RFC 5357: unexpected command → Accept-Session with Accept 3; its length
        // is unknowable, so the connection cannot continue.
        this.sendControl(c, AcceptSession.encode({ accept: Accept.NOT_SUPPORTED, port: 0, sid: Buffer.alloc(16) }));
        socket.end();
        throw new TwampSessionError('protocol', peer, `unsupported command ${cmd}`);
      }
      const wireRest = len > 16 ? await reader.read(len - 16, this.messageTimeoutMs, 'the rest of the command') : Buffer.alloc(0);
      const msg = Buffer.concat([first, sec ? sec.rx.decrypt(wireRest) : wireRest]);
      if (sec && !sec.rx.verifyHmac(msg)) {
        this.refuse('auth');
        this.o.log.warn(`${peer}: command ${cmd} fails its HMAC (${sec.mode} mode): closing the connection`);
        this.dropConnection(c, 'HMAC verification failed');
        return;
      }
      if (cmd === Command.REQUEST_TW_SESSION) await this.onRequest(c, msg);
      else if (cmd === Command.START_SESSIONS) this.onStart(c);
      else this.onStop(c, msg);
    }
  }

  private async onRequest(c: Conn, msg: Buffer): Promise<void> {
    const counters = this.o.counters;
    counters.sessionAttempts++;
    const reject = (accept: number, why: string): void => {
      this.refuse(accept === Accept.TEMPORARY_RESOURCE_LIMITATION ? 'resources' : 'request');
      this.o.log.warn(`${c.peer}: Request-TW-Session refused (Accept ${accept}): ${why}`);
      this.sendControl(c, AcceptSession.encode({ accept, port: 0, sid: Buffer.alloc(16) }));
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
    const sec = c.security;
    const session = new ReflectorSession({
      socket: sock, family, senderAddress, senderPort: req.senderPort, sid,
      mode: sec?.mode ?? 'open',
      ...(sec && sec.mode !== 'mixed' ? { keys: testSessionKeys(sec.aesSessionKey, sec.hmacKey, sid) } : {}),
      stopGraceMs: graceMs, refwaitMs: this.refwaitMs, clock: this.o.clock, counters,
      onEnd: (s, why) => {
        const i = c.sessions.indexOf(s);
        if (i >= 0) c.sessions.splice(i, 1);
        this.o.log.debug(`${c.peer}: session on port ${s.port} ended (${why}), ${s.reflected} packets reflected`);
        this.o.onSessionEvent?.({ type: 'ended', peer: c.peer, port: s.port, why, reflected: s.reflected });
      },
    });
    c.sessions.push(session);
    this.sendControl(c, AcceptSession.encode({ accept: Accept.OK, port: session.port, sid }));
    this.o.log.debug(`${c.peer}: session accepted, reflector port ${session.port}` +
      (req.receiverPort && req.receiverPort !== session.port ? ` (requested ${req.receiverPort} was unusable)` : ''));
    this.o.onSessionEvent?.({ type: 'accepted', peer: c.peer, port: session.port, requestedPort: req.receiverPort });
  }

  private onStart(c: Conn): void {
    // Only sessions accepted since the last Start-Sessions: earlier ones run or were stopped.
    let n = 0;
    for (const s of c.sessions) {
      if (s.canStart) { s.start(); n++; }
    }
    this.o.counters.sessionsStarted += n;
    this.sendControl(c, StartAck.encode({ accept: Accept.OK }));
  }

  private onStop(c: Conn, msg: Buffer): void {
    const stop = StopSessions.decode(msg);
    const running = c.sessions.filter((s) => s.isStarted);
    if (stop.numberOfSessions !== running.length) {
      // RFC 5357 §3.8 says such a message is invalid; twampy sends 0. Stop them all anyway.
      this.o.log.debug(`${c.peer}: Stop-Sessions counts ${stop.numberOfSessions} sessions, ${running.length} running`);
    }
    for (const s of running) s.stop();
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
