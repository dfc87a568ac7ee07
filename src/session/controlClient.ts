/**
 * TWAMP-Control client (RFC 5357 §3, over the OWAMP-Control base of RFC 4656
 * §3): connection set-up, Request-TW-Session, Start-Sessions, Stop-Sessions.
 * Every reply is checked (Modes, Accept, Port) and every read is bounded by a
 * per-message timeout; failures are TwampSessionError with a reason.
 *
 * Security (RFC 4656 §3.1–3.2, RFC 5618): the client picks the first mode of
 * its preference list that the Server-Greeting offers (none → Set-Up-Response
 * Mode 0, "client gives up"); in authenticated, encrypted and mixed mode it
 * derives dk from the secret with the greeting's Salt and Count (Count
 * checked against a maximum, RFC 5357 §6), sends the Token, and from then on
 * encrypts every command and verifies the HMAC of every reply. The secret
 * never appears in a message.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import {
  ServerGreeting, SetupResponse, ServerStart, RequestTwSession, AcceptSession,
  StartSessions, StartAck, StopSessions, Mode, acceptDescription, DecodeError,
  ControlCipher, deriveKey, encryptToken, checkKdfCount, testSessionKeys,
  KDF_COUNT_MAX_DEFAULT, type SecurityMode, type TestSessionKeys,
} from '../protocol/index.js';
import { StreamReader, formatMs } from './streamReader.js';
import { TwampSessionError } from './errors.js';
import { formatHostPort, unmapAddress } from '../util/net.js';
import { resolveHost } from './address.js';
import { messageOf } from '../util/errors.js';

export interface ControlClientOptions {
  host: string;
  port: number;
  /** Bound on the TCP connect and on each expected control message. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Acceptable security modes in order of preference; default ['open']. */
  modes?: readonly SecurityMode[];
  /** KeyID for authenticated/encrypted/mixed mode. */
  keyId?: string;
  /**
   * Shared secret of keyId: a callback returning a fresh copy (it is wiped
   * after use), so the octets stay out of option dumps.
   */
  secret?: () => Buffer;
  /** Largest PBKDF2 Count accepted from a greeting (RFC 5357 §6); default 32768. */
  maxKdfCount?: number;
  /**
   * Choose RFC 7750 DSCP and ECN Monitoring (Modes bit 8) when the server
   * offers it, so each reflected packet reports the DS byte our packet
   * arrived with (S-DSCP-ECN). Default true; never requested from a server
   * that does not offer it (twampd does not).
   */
  dscpEcnMonitoring?: boolean;
}

export type RequestTwSessionInit = Parameters<typeof RequestTwSession.encode>[0];

export const MODE_BIT: Record<SecurityMode, number> = {
  open: Mode.UNAUTHENTICATED,
  authenticated: Mode.AUTHENTICATED,
  encrypted: Mode.ENCRYPTED,
  mixed: Mode.MIXED,
};

/**
 * The mode to use: the first of `preference` that `offered` (a greeting's
 * Modes) includes, or undefined when there is none.
 */
export function chooseMode(preference: readonly SecurityMode[], offered: number): SecurityMode | undefined {
  return preference.find((m) => (offered & MODE_BIT[m]) !== 0);
}

/** Keys and ciphers of an authenticated/encrypted/mixed control connection. */
interface ControlSecurity {
  mode: Exclude<SecurityMode, 'open'>;
  aesSessionKey: Buffer;
  hmacKey: Buffer;
  tx: ControlCipher;
  rx: ControlCipher;
}

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
    private readonly security: ControlSecurity | undefined,
    /** Feature bits chosen in Set-Up-Response besides the security mode (RFC 7750 bit 8). */
    readonly features: number,
  ) {
    this.peer = peer;
  }

  /** RFC 7750 DSCP and ECN Monitoring is in use: replies carry S-DSCP-ECN. */
  get dscpEcn(): boolean {
    return (this.features & Mode.DSCP_ECN_MONITORING) !== 0;
  }

  /** The security mode in use on this connection. */
  get mode(): SecurityMode {
    return this.security?.mode ?? 'open';
  }

  /** Test-session keys for a SID (authenticated/encrypted/mixed), RFC 4656 §4.1.2. */
  testKeys(sid: Buffer): TestSessionKeys | undefined {
    const s = this.security;
    return s ? testSessionKeys(s.aesSessionKey, s.hmacKey, sid) : undefined;
  }

  /** Connect, read Server-Greeting, choose a mode, authenticate if needed, read Server-Start. */
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
      const preference = opts.modes && opts.modes.length > 0 ? opts.modes : (['open'] as const);
      const mode = chooseMode(preference, greeting.modes);
      if (mode === undefined) {
        // RFC 4656 §3.1: Mode 0 tells the server we give up (it may count it).
        socket.write(SetupResponse.encode({ mode: 0 }));
        throw new TwampSessionError('refused', peer,
          `no common security mode: we allow ${preference.join(', ')}; ` +
          `the server offers ${describeModes(greeting.modes)} (Modes 0x${greeting.modes.toString(16)})`);
      }
      // Feature bits only among those offered (RFC 4656 §3.1: never a bit the server did not offer).
      const features = opts.dscpEcnMonitoring !== false ? greeting.modes & Mode.DSCP_ECN_MONITORING : 0;
      let security: ControlSecurity | undefined;
      let start: ServerStart.ServerStart;
      if (mode === 'open') {
        socket.write(SetupResponse.encode({
          mode: Mode.UNAUTHENTICATED | features, keyId: Buffer.alloc(80), token: Buffer.alloc(64), clientIv: Buffer.alloc(16),
        }));
        start = await readMessage(reader, peer, ServerStart, opts.timeoutMs, 'Server-Start');
        if (start.accept !== 0) {
          throw new TwampSessionError('refused', peer,
            `Server-Start refused the connection: Accept ${start.accept} (${acceptDescription(start.accept)})`);
        }
      } else {
        if (opts.keyId === undefined || opts.secret === undefined) {
          throw new TwampSessionError('refused', peer, `${mode} mode needs a key id and a secret`);
        }
        const maxCount = opts.maxKdfCount ?? KDF_COUNT_MAX_DEFAULT;
        const countProblem = checkKdfCount(greeting.count, maxCount);
        if (countProblem !== undefined) {
          // RFC 5357 §6: close rather than spend the CPU a huge Count asks for.
          throw new TwampSessionError('protocol', peer, `unacceptable Server-Greeting: ${countProblem}`);
        }
        let keyId: Buffer;
        try {
          keyId = SetupResponse.keyIdFromString(opts.keyId);
        } catch (e) {
          throw new TwampSessionError('protocol', peer, `key id: ${messageOf(e)}`);
        }
        const aesSessionKey = randomBytes(16);
        const hmacKey = randomBytes(32);
        const clientIv = randomBytes(16);
        const secret = opts.secret();
        const dk = deriveKey(secret, greeting.salt, greeting.count, maxCount);
        secret.fill(0); // our copy: the callback hands out a fresh one each time
        const token = encryptToken({ challenge: greeting.challenge, aesSessionKey, hmacKey }, dk);
        dk.fill(0);
        socket.write(SetupResponse.encode({ mode: MODE_BIT[mode] | features, keyId, token, clientIv }));
        const wire = await reader.read(ServerStart.SIZE, opts.timeoutMs, 'Server-Start').catch((e: unknown) => {
          if (e instanceof TwampSessionError && e.reason === 'closed') {
            throw new TwampSessionError('refused', peer,
              `the server closed the connection instead of answering Set-Up-Response in ${mode} mode ` +
              `(key id ${JSON.stringify(opts.keyId)}, its secret or the mode not accepted?)`, { cause: e });
          }
          throw e;
        });
        const accept = wire[15]!;
        if (accept !== 0) {
          // A refusal is sent in clear: no stream is started (RFC 4656 §3.1, twampd).
          socket.destroy();
          throw new TwampSessionError('refused', peer,
            `Server-Start refused the connection: Accept ${accept} (${acceptDescription(accept)}) ` +
            `in ${mode} mode; check that the server knows key id ${JSON.stringify(opts.keyId)} with this secret ` +
            'and allows this mode');
        }
        const rx = new ControlCipher(aesSessionKey, wire.subarray(16, 32), hmacKey, mode);
        start = decodeOrProtocol(peer, ServerStart, rx.decryptServerStart(wire), 'Server-Start');
        const tx = new ControlCipher(aesSessionKey, clientIv, hmacKey, mode);
        security = { mode, aesSessionKey, hmacKey, tx, rx };
      }
      const local = unmapAddress(socket.localAddress ?? '');
      const remote = unmapAddress(socket.remoteAddress ?? address);
      return new ControlClient(socket, reader, greeting, start, local, remote, family, opts.timeoutMs, peer, security, features);
    } catch (e) {
      socket.destroy();
      throw e;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Write a command: in clear (open mode) or HMAC'd and encrypted. */
  private send(msg: Buffer, cb?: () => void): void {
    const wire = this.security ? this.security.tx.encrypt(msg) : msg;
    if (cb) this.socket.write(wire, cb);
    else this.socket.write(wire);
  }

  /** Read one reply; decrypt and verify its HMAC when the connection is secured. */
  private async receive<T>(codec: { SIZE: number; decode(b: Uint8Array): T }, what: string): Promise<T> {
    const sec = this.security;
    if (!sec) return readMessage(this.reader, this.peer, codec, this.timeoutMs, what);
    const plain = sec.rx.decrypt(await this.reader.read(codec.SIZE, this.timeoutMs, what));
    if (!sec.rx.verifyHmac(plain)) {
      this.socket.destroy();
      throw new TwampSessionError('protocol', this.peer,
        `${what}: HMAC does not verify in ${sec.mode} mode (wrong secret for the key id, or a corrupted stream)`);
    }
    return decodeOrProtocol(this.peer, codec, plain, what);
  }

  /**
   * Send Request-TW-Session and return the checked Accept-Session.
   *
   * Receiver Port 0 asks the server to choose (RFC 5357 §3.5), but some
   * servers accept it and echo 0, which names no port to send to. Then the
   * request is made once more for a concrete port, as twping does (it asks for
   * a port from its range): `concretePort`, whose use `onZeroPort` reports.
   * The session accepted with port 0 is left unstarted on the server's side.
   */
  async requestSession(
    req: RequestTwSessionInit,
    retry?: { concretePort: number; onZeroPort: (port: number) => void },
  ): Promise<AcceptSession.AcceptSession> {
    const acc = await this.requestOnce(req);
    if (acc.port !== 0) return acc;
    if (req.receiverPort === 0 && retry && retry.concretePort !== 0) {
      retry.onZeroPort(retry.concretePort);
      const again = await this.requestOnce({ ...req, receiverPort: retry.concretePort });
      if (again.port !== 0) return again;
    }
    throw new TwampSessionError('protocol', this.peer, 'Accept-Session accepted the session but gave reflector port 0' +
      (req.receiverPort === 0 ? ' (to a request for port 0, and again to one for a concrete port)' : ` (requested ${req.receiverPort})`));
  }

  private async requestOnce(req: RequestTwSessionInit): Promise<AcceptSession.AcceptSession> {
    this.send(RequestTwSession.encode(req));
    const acc = await this.receive(AcceptSession, 'Accept-Session');
    if (acc.accept !== 0) {
      throw new TwampSessionError('refused', this.peer,
        `Request-TW-Session refused: Accept ${acc.accept} (${acceptDescription(acc.accept)})` +
        (req.receiverPort ? ` for reflector port ${req.receiverPort}` : ''));
    }
    return acc;
  }

  async startSessions(): Promise<void> {
    this.send(StartSessions.encode({}));
    const ack = await this.receive(StartAck, 'Start-Ack');
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
      this.send(StopSessions.encode({ accept, numberOfSessions }), () => { clearTimeout(t); resolve(); });
    });
  }

  /** Half-close, then destroy after a short bound so a silent peer cannot keep us; resolves once the socket is closed. */
  close(): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    const closed = new Promise<void>((resolve) => { this.socket.once('close', () => resolve()); });
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
    return closed;
  }
}

/** Read one fixed-size message and decode it; decode failures become protocol errors naming the peer. */
export async function readMessage<T>(
  reader: StreamReader, peer: string, codec: { SIZE: number; decode(b: Uint8Array): T }, timeoutMs: number, what: string,
): Promise<T> {
  return decodeOrProtocol(peer, codec, await reader.read(codec.SIZE, timeoutMs, what), what);
}

function decodeOrProtocol<T>(peer: string, codec: { decode(b: Uint8Array): T }, buf: Uint8Array, what: string): T {
  try {
    return codec.decode(buf);
  } catch (e) {
    if (e instanceof DecodeError) throw new TwampSessionError('protocol', peer, `malformed ${what}: ${e.message}`, { cause: e });
    throw e;
  }
}

/** The security modes of a Modes bitmap, named as in the config (`open` = unauthenticated). */
export function describeModes(modes: number): string {
  const names: string[] = [];
  if (modes & Mode.UNAUTHENTICATED) names.push('open');
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
