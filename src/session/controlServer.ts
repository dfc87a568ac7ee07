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
 *
 * Fairness (README "Security"): connections, sessions, key derivations and
 * the packet budget are also bounded per client (source address, IPv6 by
 * `client_ipv6_prefix`); a full connection table first evicts the oldest
 * connection that has not completed set-up, of the client holding the most
 * such. Key derivation (PBKDF2) runs on libuv's thread pool, never on the
 * event loop that timestamps test packets. Test sessions answer only the
 * control connection's own address (unless `allow_third_party_sender`) and
 * never a port below 1024 not in `allow_reply_ports`.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { randomBytes, pbkdf2 } from 'node:crypto';
import { isIP } from 'node:net';
import {
  ServerGreeting, SetupResponse, ServerStart, RequestTwSession, AcceptSession, StartAck,
  StopSessions, Accept, Mode, clientCommandLength, DecodeError, nsFromNtpInterval, writeTimestamp,
  Command, dscpFromTypeP, ControlCipher, checkKdfCount, decryptToken, constantTimeEqual, testSessionKeys,
  securityModeOf, SECURITY_MODE_MASK, type SecurityMode, type ControlSecurityMode,
} from '../protocol/index.js';
import type { Clock } from './clock.js';
import { StreamReader, formatMs } from './streamReader.js';
import { TwampSessionError, FAILURE_REASONS, type FailureReason } from './errors.js';
import { formatHostPort, unmapAddress, ClientAcl } from '../util/net.js';
import { LOWEST_REPLY_PORT } from './address.js';
import { openReflectorSocket, closeTestSocket } from './udp.js';
import { datapathSupport, type RxDatagram, type TimestampSource } from './datapath.js';
import { ReflectorSession, END_MAX_DURATION, END_REFWAIT, type ReflectorCounters } from './reflectorSession.js';
import { RateLimiter, RateLimitedLog, LineBudget, FairShare, clientKey, REFLECTOR_LIMIT_DEFAULTS, type FairShareMember } from './limits.js';
import type { Logger } from '../util/log.js';
import { MODE_BIT } from './controlClient.js';
import { checkRequest } from './requestCheck.js';
import { messageOf } from '../util/errors.js';

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
   * malformed or unsupported Request-TW-Session; 'resources' — no test port;
   * the reflector limits (docs/security.md): 'acl' — client network not allowed (allow/deny),
   * 'connection_limit' — max_connections reached, 'session_limit' —
   * max_sessions or max_sessions_per_connection reached, 'padding' — Padding
   * Length over max_padding, 'rate' — a test packet over max_pps_per_session
   * or max_pps (one per dropped packet), 'duration' — a session ended by
   * max_session_duration, 'refwait' — a session ended by REFWAIT; and the
   * FailureReasons of broken connections such as 'timeout' (SERVWAIT or
   * control_timeout) or 'protocol'); per client: 'client_connection_limit',
   * 'client_session_limit', 'kdf_rate' (key derivations per second), 'evicted'
   * (a connection without completed set-up dropped for a new one when the
   * table is full); third parties: 'sender_address' (a Sender Address not the
   * client's own), 'reply_port' (a Sender Port replies may not go to); and
   * 'hmac' (a test packet whose HMAC does not verify). See REFUSAL_REASONS.
   */
  refused: Map<string, number>;
}

/** Every reason ControlServerCounters.refused can count (a closed set: it labels a metric). */
export const REFUSAL_REASONS = [
  'mode', 'key_id', 'auth', 'abandoned', 'request', 'resources', 'internal',
  'acl', 'connection_limit', 'session_limit', 'padding', 'rate', 'duration', 'refwait',
  'client_connection_limit', 'client_session_limit', 'kdf_rate', 'evicted', 'sender_address', 'reply_port', 'hmac',
  ...FAILURE_REASONS,
] as const satisfies readonly string[];

/** Refusal reasons counted in ControlServerCounters.refused. */
export type RefusalReason = (typeof REFUSAL_REASONS)[number] | FailureReason;

/** Defaults of the limits (also the config defaults); defined in limits.ts. */
export { REFLECTOR_LIMIT_DEFAULTS };

/** Session start/end log lines per second (the rest are summed up, README "Security"). */
export const SESSION_LOG_LINES_PER_S = 10;

export interface ControlServerOptions {
  host: string;
  port: number;
  clock: Clock;
  log: Logger;
  counters: ControlServerCounters;
  /**
   * Bound on each expected message as a whole (`control_timeout`): set-up
   * messages, the rest of a command, and any command once its first octet
   * arrived. Default 30 s.
   */
  messageTimeoutMs?: number;
  /** Concurrent control connections; more get a greeting with Modes 0 (RFC 4656 §3.1). Default 256. */
  maxConnections?: number;
  /** Sessions one control connection may hold; more get Accept 4. Default 16. */
  maxSessionsPerConnection?: number;
  /** A session older than this (from its acceptance) is ended. Default 1 h. */
  maxSessionDurationMs?: number;
  /** Test packets per second reflected per session; excess dropped and counted. Default 10000. */
  maxPpsPerSession?: number;
  /**
   * Test packets per second reflected in total, shared fairly among the
   * clients holding sessions (FairShare); excess dropped and counted. Default 100000.
   */
  maxPps?: number;
  /** Control connections one client may hold; more get Modes 0. Default 8. */
  maxConnectionsPerClient?: number;
  /** Sessions one client may hold over all its connections; more get Accept 5. Default 64. */
  maxSessionsPerClient?: number;
  /** IPv6 clients are grouped by this prefix length (IPv4: per address). Default 64. */
  clientIpv6Prefix?: number;
  /** Key derivations (authenticated set-ups) per second per client; more get Server-Start Accept 5. Default 10. */
  kdfRatePerClient?: number;
  /** Accept a Sender Address other than the control connection's peer (still subject to allow/deny). Default false. */
  allowThirdPartySender?: boolean;
  /** Ports below 1024 replies may go to (Sender Port); default none. */
  allowReplyPorts?: readonly number[];
  /** Largest Padding Length accepted; larger gets Accept 3. Default 9000. */
  maxPadding?: number;
  /** Client networks allowed and refused (allow/deny, parsed at load); absent = all. */
  acl?: ClientAcl;
  /** Refusal and fault logs: at most one line per reason per this interval. Default 60 s. */
  logIntervalMs?: number;
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
  /**
   * Offer RFC 7750 DSCP and ECN Monitoring (Modes bit 8): a client that
   * chooses it gets, in every reflected packet, the DS byte its packet
   * arrived with (S-DSCP-ECN). Offered only when the test sockets can read the
   * received TOS / traffic class (native datapath); default true.
   */
  dscpEcnMonitoring?: boolean;
}

export type SessionEvent =
  | { type: 'accepted'; peer: string; port: number; requestedPort: number; /** The sender's test address and port. */ sender?: { address: string; port: number } }
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
  client: Client;
  /** Server-Start with Accept 0 sent: no longer evictable. */
  setupDone: boolean;
  /** Dropped to make room (counted 'evicted', not also 'abandoned'). */
  evicted?: boolean;
  /** Set once serve() reads from the connection (to re-arm SERVWAIT). */
  reader?: StreamReader;
  sessions: ReflectorSession[];
  security?: ConnSecurity;
  /** RFC 6038 / RFC 7750 feature bits the client chose (among those we offered). */
  features: number;
}

/** Everything one client (source address, IPv6 by prefix) holds, for the per-client limits. */
interface Client {
  key: string;
  conns: Set<Conn>;
  /** Connections that have not completed set-up, oldest first (Set keeps insertion order). */
  preSetup: Set<Conn>;
  sessions: number;
  kdf: RateLimiter;
  packets: FairShareMember;
}

/** RFC 6038 Modes bits: Reflect Octets (bit 5) and Symmetrical Size (bit 6). */
const RFC6038_FEATURES = Mode.REFLECT_OCTETS | Mode.SYMMETRICAL_SIZE;
/** Feature bits a client may choose besides its security mode: RFC 6038 and RFC 7750 (bit 8). */
const FEATURES = RFC6038_FEATURES | Mode.DSCP_ECN_MONITORING;

export const DEFAULT_KDF_COUNT = 2048;

/** Test socket receive buffer: 4 MiB holds ~0.5 s of 200-octet packets at 40k pps. */
const RECV_BUFFER_OCTETS = 4 * 1024 * 1024;

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
  private readonly maxConnections: number;
  private readonly maxSessionsPerConnection: number;
  private readonly maxSessionDurationMs: number;
  private readonly maxPpsPerSession: number;
  private readonly maxPadding: number;
  private readonly packetBudget: FairShare;
  private readonly maxConnectionsPerClient: number;
  private readonly maxSessionsPerClient: number;
  private readonly clientIpv6Prefix: number;
  private readonly kdfRatePerClient: number;
  private readonly allowThirdPartySender: boolean;
  private readonly allowReplyPorts: ReadonlySet<number>;
  private readonly clients = new Map<string, Client>();
  private readonly acl: ClientAcl;
  /** Refusals and faults: one line per reason per interval, with a count of the others. */
  private readonly rlog: RateLimitedLog;
  /** Session start/end and other per-session lines: at most SESSION_LOG_LINES_PER_S. */
  private readonly sessionLog: LineBudget;

  constructor(private readonly o: ControlServerOptions) {
    this.startTime = o.clock.nowNtp();
    this.servwaitMs = o.servwaitMs ?? 900_000;
    this.refwaitMs = o.refwaitMs ?? 900_000;
    this.maxSessions = o.maxSessions ?? 1000;
    this.modes = o.modes && o.modes.length > 0 ? o.modes : ['open'];
    // RFC 6038: we reflect octets and answer symmetrical-size packets with equal-size replies.
    // RFC 7750: only where the received DS byte can be read (native datapath): S-DSCP-ECN is never invented.
    const dscpEcn = o.dscpEcnMonitoring !== false && datapathSupport().native ? Mode.DSCP_ECN_MONITORING : 0;
    this.offeredModes = this.modes.reduce((bits, m) => bits | MODE_BIT[m], 0) | RFC6038_FEATURES | dscpEcn;
    this.kdfCount = o.kdfCount ?? DEFAULT_KDF_COUNT;
    const d = REFLECTOR_LIMIT_DEFAULTS;
    this.messageTimeoutMs = o.messageTimeoutMs ?? d.controlTimeoutMs;
    this.maxConnections = o.maxConnections ?? d.maxConnections;
    this.maxSessionsPerConnection = o.maxSessionsPerConnection ?? d.maxSessionsPerConnection;
    this.maxSessionDurationMs = o.maxSessionDurationMs ?? d.maxSessionDurationMs;
    this.maxPpsPerSession = o.maxPpsPerSession ?? d.maxPpsPerSession;
    this.maxPadding = o.maxPadding ?? d.maxPadding;
    this.packetBudget = new FairShare(o.maxPps ?? d.maxPps);
    this.maxConnectionsPerClient = o.maxConnectionsPerClient ?? d.maxConnectionsPerClient;
    this.maxSessionsPerClient = o.maxSessionsPerClient ?? d.maxSessionsPerClient;
    this.clientIpv6Prefix = o.clientIpv6Prefix ?? d.clientIpv6Prefix;
    this.kdfRatePerClient = o.kdfRatePerClient ?? d.kdfRatePerClient;
    this.allowThirdPartySender = o.allowThirdPartySender ?? false;
    this.allowReplyPorts = new Set(o.allowReplyPorts ?? []);
    this.acl = o.acl ?? new ClientAcl();
    this.rlog = new RateLimitedLog(o.log, o.logIntervalMs ?? 60_000);
    this.sessionLog = new LineBudget(o.log, SESSION_LOG_LINES_PER_S, 'session events');
    const kdfProblem = checkKdfCount(this.kdfCount, Math.max(this.kdfCount, 1));
    if (kdfProblem !== undefined) throw new TypeError(`kdf_count: ${kdfProblem}`);
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

  /**
   * Where the test sessions' T2 comes from: 'kernel' (or 'hardware') on the
   * native datapath, 'userspace' with the node:dgram fallback — the latest
   * session socket's, or what the datapath offers before any session.
   */
  get timestampSource(): TimestampSource {
    return this.lastTimestampSource ?? datapathSupport().timestampSource;
  }

  private lastTimestampSource: TimestampSource | undefined;

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
    this.rlog.flush();
    this.sessionLog.flush();
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

  /** Count a refusal or fault and log it, at most one line per reason per interval. */
  private refuseAndLog(reason: RefusalReason, level: 'info' | 'warn', msg: string): void {
    this.refuse(reason);
    this.rlog.line(reason, level, msg);
  }

  private onConnection(socket: Socket): void {
    socket.on('error', () => { /* reported through the reader, or irrelevant for a refused connection */ });
    if (socket.remoteAddress === undefined) {
      // Reset before we got to it: nothing to answer.
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const address = unmapAddress(socket.remoteAddress);
    const peer = `client ${formatHostPort(address, socket.remotePort ?? 0)}`;
    // RFC 4656 §3.1: a Server-Greeting with Modes 0 says the server will not talk to this client.
    const denied = this.acl.check(address);
    if (denied !== undefined) {
      this.refuseAndLog('acl', 'warn', `${peer}: connection refused: client network ${denied} (allow/deny)`);
      this.greetAndClose(socket);
      return;
    }
    const key = clientKey(address, this.clientIpv6Prefix);
    const known = this.clients.get(key);
    if (known && known.conns.size >= this.maxConnectionsPerClient) {
      this.refuseAndLog('client_connection_limit', 'warn', `${peer}: connection refused: client ${key} holds ` +
        `${known.conns.size} control connections (max_connections_per_client)`);
      this.greetAndClose(socket);
      return;
    }
    if (this.conns.size >= this.maxConnections && !this.evictOne(peer)) {
      this.refuseAndLog('connection_limit', 'warn', `${peer}: connection refused: ${this.maxConnections} control connections open ` +
        '(max_connections), all past set-up');
      this.greetAndClose(socket);
      return;
    }
    const client = known ?? this.newClient(key);
    const conn: Conn = { socket, peer, client, setupDone: false, sessions: [], features: 0 };
    this.conns.add(conn);
    client.conns.add(conn);
    client.preSetup.add(conn);
    this.o.counters.controlConnections++;
    socket.on('close', () => {
      this.forget(conn);
      for (const s of [...conn.sessions]) s.end('control connection closed');
    });
    this.serve(conn).catch((e: unknown) => {
      const err = e as Error;
      if (err instanceof TwampSessionError && err.reason === 'closed') {
        // The client hung up: the normal end of a control connection.
        this.o.log.debug(err.message);
      } else {
        this.refuseAndLog(err instanceof TwampSessionError ? err.reason : 'internal', 'warn',
          err instanceof TwampSessionError ? err.message : `${peer}: ${err.message}`);
      }
      this.dropConnection(conn, err instanceof TwampSessionError && err.reason === 'closed' ? 'control connection closed' : err.message);
    });
  }

  private newClient(key: string): Client {
    const c: Client = {
      key, conns: new Set(), preSetup: new Set(), sessions: 0,
      kdf: new RateLimiter(this.kdfRatePerClient), packets: this.packetBudget.member(),
    };
    this.clients.set(key, c);
    return c;
  }

  /** Take a connection out of the tables (idempotent); the client goes when it holds nothing. */
  private forget(conn: Conn): void {
    this.conns.delete(conn);
    const cl = conn.client;
    cl.conns.delete(conn);
    cl.preSetup.delete(conn);
    if (cl.conns.size === 0 && cl.sessions === 0 && this.clients.get(cl.key) === cl) {
      cl.packets.deactivate();
      this.clients.delete(cl.key);
    }
  }

  /**
   * The connection table is full: drop the oldest connection that has not
   * completed set-up, of the client holding the most such (README
   * "Security"), so a flood of half-open connections cannot lock out a new
   * client. False when every connection is past set-up.
   */
  private evictOne(newcomer: string): boolean {
    let victimOf: Client | undefined;
    for (const cl of this.clients.values()) {
      if (cl.preSetup.size > 0 && (victimOf === undefined || cl.preSetup.size > victimOf.preSetup.size)) victimOf = cl;
    }
    if (victimOf === undefined) return false;
    const victim = victimOf.preSetup.values().next().value as Conn;
    this.refuseAndLog('evicted', 'warn', `${victim.peer}: connection dropped before set-up completed, for ${newcomer}: ` +
      `${this.maxConnections} control connections open (max_connections); client ${victimOf.key} held ` +
      `${victimOf.preSetup.size} not set up`);
    victim.evicted = true;
    this.forget(victim);
    this.dropConnection(victim, 'evicted: connection table full');
    return true;
  }

  /** A greeting with Modes 0 (no mode offered), then close; destroyed if the peer never closes. */
  private greetAndClose(socket: Socket): void {
    socket.end(ServerGreeting.encode({ modes: 0, challenge: Buffer.alloc(16), salt: Buffer.alloc(16), count: this.kdfCount }));
    closeSoon(socket);
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
    this.refuseAndLog(reason, 'warn', `${c.peer}: connection refused (Server-Start Accept ${accept}): ${why}`);
    c.socket.write(ServerStart.encode({ accept, serverIv: Buffer.alloc(16), startTime: 0n }));
    c.socket.end();
    closeSoon(c.socket);
  }

  private async serve(c: Conn): Promise<void> {
    const { socket, peer } = c;
    const reader = new StreamReader(socket, peer);
    c.reader = reader;
    const challenge = randomBytes(16);
    const salt = randomBytes(16);
    socket.write(ServerGreeting.encode({ modes: this.offeredModes, challenge, salt, count: this.kdfCount }));
    const setupWire = await reader.read(SetupResponse.SIZE, this.messageTimeoutMs, 'Set-Up-Response').catch((e: unknown) => {
      if (e instanceof TwampSessionError && e.reason === 'closed' && this.server !== undefined && !c.evicted) {
        // Hanging up after the greeting is how twping says "no common mode"
        // (it never sends Mode 0); a bare TCP probe looks the same.
        this.refuseAndLog('abandoned', 'info', `${peer}: client closed the connection after the greeting without choosing a mode` +
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
      this.refuseAndLog('mode', 'info', `${peer}: client found no acceptable mode among those offered (${this.modes.join(', ')}) and gave up`);
      socket.end();
      closeSoon(socket);
      return;
    }
    // Feature bits among those we offered (a client must not choose others, RFC 4656 §3.1; ignored if it does).
    c.features = setup.mode & FEATURES & this.offeredModes;
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
      if (!c.client.kdf.take()) {
        // PBKDF2 at a large kdf_count is the costliest thing a peer can make us do: bounded per client.
        this.refuseSetup(c, 'kdf_rate', Accept.TEMPORARY_RESOURCE_LIMITATION,
          `more than ${this.kdfRatePerClient} authenticated set-ups per second from client ${c.client.key} (kdf_rate_per_client)`);
        return;
      }
      const secret = this.o.lookupKey!(keyId);
      // Derive even for an unknown KeyID so the answer takes as long either way (no KeyID oracle),
      // on the thread pool so no test session's timestamps wait for it.
      const dk = await deriveKeyAsync(secret ?? randomBytes(16), salt, this.kdfCount);
      if (socket.destroyed) { dk.fill(0); return; } // evicted or hung up meanwhile
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
      this.sessionLog.line('debug', `${peer}: ${mode} mode, key id ${JSON.stringify(keyId)}`);
    }
    // Set-up complete: no longer among the evictable connections.
    c.setupDone = true;
    c.client.preSetup.delete(c);

    const sec = c.security;
    for (;;) {
      // SERVWAIT applies only while no session is running (RFC 5357 §3.1); when the last one
      // ends while this read waits, rearmServwait() gives the read its bound back.
      const running = c.sessions.some((s) => s.isStarted);
      // Once a command has begun, it must complete within control_timeout (no slowloris).
      const wireFirst = await reader.read(16, running ? 0 : this.servwaitMs, 'a TWAMP-Control command',
        { completeMs: this.messageTimeoutMs });
      const first = sec ? sec.rx.decrypt(wireFirst) : wireFirst;
      const cmd = first[0]!;
      const len = clientCommandLength(first);
      if (len === undefined || (cmd !== Command.REQUEST_TW_SESSION && cmd !== Command.START_SESSIONS && cmd !== Command.STOP_SESSIONS)) {
        // RFC 4656 §3.4/RFC 5357: unexpected command → Accept-Session with Accept 3; its length
        // is unknowable, so the connection cannot continue.
        this.sendControl(c, AcceptSession.encode({ accept: Accept.NOT_SUPPORTED, port: 0, sid: Buffer.alloc(16) }));
        socket.end();
        closeSoon(socket);
        throw new TwampSessionError('protocol', peer, `unsupported command ${cmd}`);
      }
      // The whole command, not each part, within control_timeout of its first octet.
      const wireRest = len > 16
        ? await reader.read(len - 16, 0, 'the rest of the command', { completeMs: this.messageTimeoutMs, since: reader.lastMessageStart })
        : Buffer.alloc(0);
      const msg = Buffer.concat([first, sec ? sec.rx.decrypt(wireRest) : wireRest]);
      if (sec && !sec.rx.verifyHmac(msg)) {
        this.refuseAndLog('auth', 'warn', `${peer}: command ${cmd} fails its HMAC (${sec.mode} mode): closing the connection`);
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
    const reject = (accept: number, why: string, reason?: RefusalReason): void => {
      const r = reason ?? (accept === Accept.TEMPORARY_RESOURCE_LIMITATION ? 'resources' : 'request');
      this.refuseAndLog(r, 'warn', `${c.peer}: Request-TW-Session refused (Accept ${accept}): ${why}`);
      this.sendControl(c, AcceptSession.encode({ accept, port: 0, sid: Buffer.alloc(16) }));
    };
    let req: RequestTwSession.RequestTwSession;
    try {
      req = RequestTwSession.decode(msg);
    } catch (e) {
      if (e instanceof DecodeError) { reject(Accept.NOT_SUPPORTED, e.message); return; }
      throw e;
    }
    const verdict = checkRequest(req, {
      securityMode: c.security?.mode, features: c.features,
      controlLocal: c.socket.localAddress ?? '', controlPeer: c.socket.remoteAddress ?? '',
      maxPadding: this.maxPadding,
      connectionSessions: c.sessions.length, maxSessionsPerConnection: this.maxSessionsPerConnection,
      clientKey: c.client.key, clientSessions: c.client.sessions, maxSessionsPerClient: this.maxSessionsPerClient,
      activeSessions: this.activeSessions, maxSessions: this.maxSessions,
      allowThirdPartySender: this.allowThirdPartySender, aclCheck: (a) => this.acl.check(a),
      allowReplyPorts: this.allowReplyPorts,
    });
    if (!verdict.ok) { reject(verdict.accept, verdict.message, verdict.reason); return; }
    const { senderAddress, receiverAddress, family, reflectOctets } = verdict;
    // Datagrams reach the session once it exists; until then (the Accept is not sent yet) they are dropped.
    let session: ReflectorSession | undefined;
    const onPackets = (batch: RxDatagram[]): void => {
      if (session) session.onBatch(batch);
      else this.o.counters.droppedPackets += batch.length;
    };
    // Replies leave with TTL/Hop Limit 255 (RFC 5357 §4.2, udp.ts openReflectorSocket).
    const sock = await this.bindTestSocket(receiverAddress, req.receiverPort, family, c.peer, onPackets).catch((e: Error) => e);
    if (sock instanceof Error) {
      reject(Accept.TEMPORARY_RESOURCE_LIMITATION, sock.message);
      return;
    }
    this.lastTimestampSource = sock.timestampSource();
    // Replies carry the session's DSCP from the Type-P Descriptor (RFC 5357 §3.5).
    const dscp = dscpFromTypeP(req.typeP) ?? 0;
    if (dscp !== 0) {
      let why: string | undefined;
      try {
        sock.setTos(dscp << 2);
        const st = sock.tosStatus();
        if (!st.ok) why = st.reason ?? 'refused';
      } catch (e) {
        why = messageOf(e);
      }
      if (why !== undefined) this.warnOnce('dscp', `test replies not marked with DSCP ${dscp}: ${why}`);
    }
    if (c.socket.destroyed) { closeTestSocket(sock); return; } // the connection went while we bound
    const sid = this.makeSid(receiverAddress);
    const graceMs = Math.min(Number(nsFromNtpInterval(req.timeout) / 1_000_000n), 60_000);
    const sec = c.security;
    const client = c.client;
    session = new ReflectorSession({
      socket: sock, family, senderAddress, senderPort: req.senderPort, sid,
      mode: sec?.mode ?? 'open',
      symmetricalSize: (c.features & Mode.SYMMETRICAL_SIZE) !== 0,
      dscpEcn: (c.features & Mode.DSCP_ECN_MONITORING) !== 0,
      ...(sec && sec.mode !== 'mixed' ? { keys: testSessionKeys(sec.aesSessionKey, sec.hmacKey, sid) } : {}),
      stopGraceMs: graceMs, refwaitMs: this.refwaitMs, clock: this.o.clock, counters,
      maxDurationMs: this.maxSessionDurationMs,
      rateLimiters: [new RateLimiter(this.maxPpsPerSession), client.packets],
      onRateDrop: (s) => this.refuseAndLog('rate', 'warn',
        `${c.peer}: session on port ${s.port}: test packets over max_pps_per_session ${this.maxPpsPerSession} or ` +
        `client ${client.key}'s share of max_pps dropped`),
      onAuthFailure: (s) => this.refuseAndLog('hmac', 'warn',
        `${c.peer}: session on port ${s.port}: test packet fails its HMAC (${s.badHmac} so far), dropped`),
      onEnd: (s, why) => {
        const i = c.sessions.indexOf(s);
        if (i >= 0) c.sessions.splice(i, 1);
        client.sessions--;
        if (client.sessions === 0) client.packets.deactivate();
        if (client.conns.size === 0 && client.sessions === 0 && this.clients.get(client.key) === client) this.clients.delete(client.key);
        this.rearmServwait(c);
        if (why === END_MAX_DURATION) {
          this.refuseAndLog('duration', 'warn', `${c.peer}: session on port ${s.port} ended after max_session_duration ${formatMs(this.maxSessionDurationMs)}`);
        } else if (why === END_REFWAIT) {
          this.refuseAndLog('refwait', 'info', `${c.peer}: session on port ${s.port} ended: no test packet for REFWAIT ${formatMs(this.refwaitMs)}`);
        }
        this.sessionLog.line('debug', `${c.peer}: session on port ${s.port} ended (${why}), ${s.reflected} packets reflected`);
        this.o.onSessionEvent?.({ type: 'ended', peer: c.peer, port: s.port, why, reflected: s.reflected });
      },
    });
    c.sessions.push(session);
    client.sessions++;
    client.packets.activate();
    this.sendControl(c, AcceptSession.encode({
      accept: Accept.OK, port: session.port, sid,
      // RFC 6038 §4.1: echo the Octets to be reflected; no Server octets.
      ...(reflectOctets ? { reflectedOctets: req.octetsToBeReflected } : {}),
    }));
    this.sessionLog.line('debug', `${c.peer}: session accepted, reflector port ${session.port}` +
      (req.receiverPort && req.receiverPort !== session.port ? ` (requested ${req.receiverPort} was unusable)` : ''));
    this.o.onSessionEvent?.({
      type: 'accepted', peer: c.peer, port: session.port, requestedPort: req.receiverPort,
      sender: { address: senderAddress, port: req.senderPort },
    });
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
    let numberOfSessions: number | undefined;
    try {
      numberOfSessions = StopSessions.decode(msg).numberOfSessions;
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      // Framed by its command octet, so the connection can go on; stop them all as for a miscount.
    }
    const running = c.sessions.filter((s) => s.isStarted);
    if (numberOfSessions !== running.length) {
      // RFC 5357 §3.8 says such a message is invalid; twampy sends 0. Stop them all anyway.
      this.sessionLog.line('debug', `${c.peer}: Stop-Sessions counts ${numberOfSessions ?? '?'} sessions, ${running.length} running`);
    }
    for (const s of running) s.stop();
  }

  /** No session of this connection runs any more: its pending command read gets SERVWAIT back (RFC 5357 §3.1). */
  private rearmServwait(c: Conn): void {
    if (c.sessions.some((s) => s.isStarted)) return;
    c.reader?.armIdle(this.servwaitMs);
  }

  /**
   * The requested port when usable, else one from the configured range, else
   * an ephemeral one (RFC 5357 §3.5 lets the server offer another port).
   * Usable: not below 1024 (never a privileged service's port), inside
   * `test_port_range` when one is set, and free (exclusive bind).
   */
  private async bindTestSocket(address: string, requested: number, family: 4 | 6, peer: string,
    onPackets: (batch: RxDatagram[]) => void) {
    // A larger receive buffer rides out short scheduling gaps at high packet rates
    // (the kernel caps it at net.core.rmem_max).
    const bindUdp = (a: string, port: number, f: 4 | 6, p: string) =>
      openReflectorSocket({ address: a, port, family: f, peer: p, onPackets, rcvbuf: RECV_BUFFER_OCTETS });
    const range = this.o.testPortRange;
    const inRange = range === undefined || (requested >= range[0] && requested <= range[1]);
    if (requested >= LOWEST_REPLY_PORT && inRange) {
      try {
        return await bindUdp(address, requested, family, peer);
      } catch {
        // fall through: RFC 5357 §3.5 lets the server offer another port
      }
    }
    if (range) {
      const size = range[1] - range[0] + 1;
      for (let i = 0; i < size; i++) {
        const port = range[0] + ((this.nextRangePort + i) % size);
        if (port < LOWEST_REPLY_PORT) continue;
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

/**
 * The RFC 4656 §3.1 key derivation (PBKDF2-HMAC-SHA1, 16 octets), as
 * protocol deriveKey computes it, but on libuv's thread pool: at a large
 * kdf_count it takes long enough to stall every session's timestamps if run
 * on the event loop. No cache: the Salt is fresh per connection (RFC 4656
 * §3.1), so a (secret, salt, count) key never repeats.
 */
export function deriveKeyAsync(secret: Buffer | string, salt: Uint8Array, count: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    pbkdf2(typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret, salt, count, 16, 'sha1',
      (e, key) => (e ? reject(e) : resolve(key)));
  });
}

/** End a socket; destroy it if the peer has not closed its side within 2 s (no half-closed leftovers). */
function closeSoon(socket: Socket): void {
  if (socket.destroyed) return;
  const t = setTimeout(() => socket.destroy(), 2000);
  t.unref();
  socket.once('close', () => clearTimeout(t));
}
