/**
 * TWAMP security: key derivation, Token, control-stream encryption and HMAC,
 * per-session test keys and test-packet protection (RFC 4656 §3.1–3.2 and
 * §4.1.2, RFC 5357 §3–4, RFC 5618 mixed mode). Pure: no I/O, no clocks, no
 * randomness — callers pass in random keys, IVs and challenges.
 * Every rule here was checked byte for byte against perfSONAR twping/twampd
 * captures (test/fixtures/conformance).
 *
 * Control connection (both roles), after Server-Greeting:
 *
 * ```ts
 * // client
 * const dk = deriveKey(secret, greeting.salt, greeting.count);       // throws on a bad/huge Count
 * const token = encryptToken({ challenge: greeting.challenge, aesSessionKey, hmacKey }, dk);
 * send(SetupResponse.encode({ mode, keyId, token, clientIv }));       // clear text
 * const tx = new ControlCipher(aesSessionKey, clientIv, hmacKey, 'authenticated');
 * const ssWire = await read(48);                                      // Server-Start
 * const rx = new ControlCipher(aesSessionKey, ssWire.subarray(16, 32), hmacKey, 'authenticated');
 * const ss = ServerStart.decode(rx.decryptServerStart(ssWire));      // octets 32–47 decrypted (Accept = 0)
 * send(tx.encrypt(RequestTwSession.encode(req)));                     // HMAC written, then encrypted
 * const as = rx.decrypt(await read(48));                              // server messages: length known from state
 * if (!rx.verifyHmac(as)) close();                                    // this HMAC also covers Server-Start 32–47
 *
 * // server
 * const t = decryptToken(setup.token, deriveKey(secretOf(keyId), salt, count, count));
 * const ok = constantTimeEqual(t.challenge, challenge);               // wrong secret -> Accept = 1, clear Server-Start
 * const rx = new ControlCipher(t.aesSessionKey, setup.clientIv, t.hmacKey, mode);
 * const tx = new ControlCipher(t.aesSessionKey, serverIv, t.hmacKey, mode);
 * send(tx.encryptServerStart(ServerStart.encode({ accept: 0, serverIv, startTime })));
 * const first = rx.decrypt(await read(16));                           // framing: one block, then the rest
 * const len = clientCommandLength(first);                             // undefined -> Accept 3, close
 * const msg = Buffer.concat([first, rx.decrypt(await read(len - 16))]);
 * if (!rx.verifyHmac(msg)) close();
 * ```
 *
 * Test packets: `const keys = testSessionKeys(aesSessionKey, hmacKey, sid)`
 * once per session, then `protectSenderPacket(buf, len, keys, mode)` etc. per
 * packet, in place.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  pbkdf2Sync,
  timingSafeEqual,
  type Cipher,
  type Decipher,
  type Hmac,
  type KeyObject,
} from 'node:crypto';
import { DecodeError } from './errors.js';
import { Mode } from './constants.js';

/** AES block size; TWAMP-Control messages are whole blocks (RFC 4656 §3). */
const AES_BLOCK_SIZE = 16;
/** HMAC-SHA1 truncated to 128 bits (RFC 4656 §3.2). */
const HMAC_SIZE = 16;
/** Token: Challenge (16) ‖ AES-Session-Key (16) ‖ HMAC-Key (32), encrypted (RFC 4656 §3.1). */
const TOKEN_SIZE = 64;
const AES_SESSION_KEY_SIZE = 16;
const HMAC_KEY_SIZE = 32;
/** RFC 4656 §3.1: Count MUST be a power of two, at least 1024. */
const KDF_COUNT_MIN = 1024;
/** RFC 5357 §6: a client SHOULD refuse larger counts (DoS); configurable, default 32768. */
export const KDF_COUNT_MAX_DEFAULT = 32768;

/** Security mode chosen in Set-Up-Response ('mixed' = RFC 5618). */
export type SecurityMode = 'open' | 'authenticated' | 'encrypted' | 'mixed';
/** The modes with an encrypted, HMAC-protected control connection. */
export type ControlSecurityMode = Exclude<SecurityMode, 'open'>;

/** Security mode of a Set-Up-Response Mode field, or undefined unless exactly one security bit is set. */
export function securityModeOf(modeField: number): SecurityMode | undefined {
  const bits = modeField & (Mode.UNAUTHENTICATED | Mode.AUTHENTICATED | Mode.ENCRYPTED | Mode.MIXED);
  switch (bits) {
    case Mode.UNAUTHENTICATED:
      return 'open';
    case Mode.AUTHENTICATED:
      return 'authenticated';
    case Mode.ENCRYPTED:
      return 'encrypted';
    case Mode.MIXED:
      return 'mixed';
    default:
      return undefined;
  }
}

const ZERO_IV = Buffer.alloc(AES_BLOCK_SIZE);

function checkSize(name: string, b: Uint8Array, size: number): void {
  if (!(b instanceof Uint8Array) || b.length !== size) {
    throw new RangeError(`${name} must be ${size} octets, got ${b instanceof Uint8Array ? b.length : typeof b}`);
  }
}

/** Constant-time comparison; false (not an exception) when the lengths differ. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** HMAC-SHA1 over the concatenation of `parts`, truncated to 16 octets (RFC 4656 §3.2). */
export function hmac16(key: Uint8Array | KeyObject, ...parts: Uint8Array[]): Buffer {
  const h = createHmac('sha1', key);
  for (const p of parts) h.update(p);
  return h.digest().subarray(0, HMAC_SIZE);
}

// ---------------------------------------------------------------------------
// Key derivation and Token (RFC 4656 §3.1)

/**
 * Why Count is unacceptable, or undefined when it is fine: a power of two,
 * ≥ 1024 (RFC 4656 §3.1) and ≤ `max` (RFC 5357 §6, client-side DoS guard).
 */
export function checkKdfCount(count: number, max: number = KDF_COUNT_MAX_DEFAULT): string | undefined {
  if (!Number.isInteger(count) || count <= 0 || count > 0xffffffff) {
    return `PBKDF2 Count ${String(count)} is not a positive 32-bit integer`;
  }
  // Bitwise ops work modulo 2^32, which is exact for a uint32.
  if ((count & (count - 1)) !== 0) {
    return `PBKDF2 Count ${count} is not a power of two`;
  }
  if (count < KDF_COUNT_MIN) return `PBKDF2 Count ${count} is below the minimum ${KDF_COUNT_MIN}`;
  if (count > max) return `PBKDF2 Count ${count} exceeds the configured maximum ${max}`;
  return undefined;
}

/**
 * dk = PBKDF2-HMAC-SHA1(secret, Salt, Count, 16) (RFC 4656 §3.1). A string
 * secret is taken as UTF-8 (RFC 5357 §3.1 asks for ASCII passphrases).
 * RangeError when Count fails checkKdfCount(count, maxCount) or Salt is not
 * 16 octets. Synchronous and CPU-bound (≈1 ms at 2048): a server under load
 * may prefer to run it off the event loop with the same parameters.
 */
export function deriveKey(
  secret: Buffer | string,
  salt: Uint8Array,
  count: number,
  maxCount: number = KDF_COUNT_MAX_DEFAULT,
): Buffer {
  const problem = checkKdfCount(count, maxCount);
  if (problem !== undefined) throw new RangeError(problem);
  checkSize('Salt', salt, 16);
  return pbkdf2Sync(typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret, salt, count, 16, 'sha1');
}

export interface TokenContents {
  /** Server-Greeting Challenge, echoed to prove knowledge of the secret. */
  challenge: Buffer;
  /** 16 octets; keys the control stream and, via the SID, the test packets. */
  aesSessionKey: Buffer;
  /** 32 octets. */
  hmacKey: Buffer;
}

/** Token = AES-128-CBC(dk, IV 0, no padding)(Challenge ‖ AES-Session-Key ‖ HMAC-Key), 64 octets. */
export function encryptToken(t: TokenContents, dk: Uint8Array): Buffer {
  checkSize('Challenge', t.challenge, 16);
  checkSize('AES-Session-Key', t.aesSessionKey, AES_SESSION_KEY_SIZE);
  checkSize('HMAC-Key', t.hmacKey, HMAC_KEY_SIZE);
  checkSize('dk', dk, 16);
  const c = createCipheriv('aes-128-cbc', dk, ZERO_IV).setAutoPadding(false);
  return Buffer.concat([c.update(t.challenge), c.update(t.aesSessionKey), c.update(t.hmacKey), c.final()]);
}

/**
 * Inverse of encryptToken. Any 64 octets decrypt: a wrong secret shows up
 * only as a Challenge that differs from the greeting's (compare with
 * constantTimeEqual), and must be answered with Accept ≠ 0.
 */
export function decryptToken(token: Uint8Array, dk: Uint8Array): TokenContents {
  checkSize('Token', token, TOKEN_SIZE);
  checkSize('dk', dk, 16);
  const d = createDecipheriv('aes-128-cbc', dk, ZERO_IV).setAutoPadding(false);
  const plain = Buffer.concat([d.update(token), d.final()]);
  return {
    challenge: plain.subarray(0, 16),
    aesSessionKey: plain.subarray(16, 32),
    hmacKey: plain.subarray(32, 64),
  };
}

// ---------------------------------------------------------------------------
// Control stream (RFC 4656 §3.2, RFC 5357 §3)

const SERVER_START_SIZE = 48;
const SERVER_START_CLEAR = 32;

/**
 * One direction of an authenticated/encrypted/mixed control connection: a
 * single AES-128-CBC chain keyed with the AES-Session-Key that runs across
 * messages (the last ciphertext block of one message is the IV of the next),
 * plus the running HMAC coverage of that direction. The three modes are
 * identical on the control connection: every octet after the IV is encrypted
 * (verified on twping/twampd captures of all three).
 *
 * Create one for what you send (IV = your own Client-IV / Server-IV) and one
 * for what you receive (IV = the peer's); an instance serves one role only
 * (`encrypt*` or `decrypt*`/`verifyHmac`) and throws on the other.
 *
 * HMAC rule: HMAC-SHA1(HMAC-Key) / 128 over every plaintext octet of the
 * direction since the previous HMAC, up to the HMAC field (the last block of
 * every message). The only encrypted octets outside a message with an HMAC
 * are Server-Start 32–47, so the server's first HMAC (in Accept-Session)
 * covers them too; encryptServerStart/decryptServerStart account for that.
 */
export class ControlCipher {
  readonly mode: ControlSecurityMode;
  readonly #aesKey: Buffer;
  readonly #iv: Buffer;
  readonly #hmacKey: KeyObject;
  #cipher: Cipher | undefined;
  #decipher: Decipher | undefined;
  /** Coverage since the previous HMAC; undefined = nothing covered yet. */
  #pending: Hmac | undefined;
  #role: 'send' | 'receive' | undefined;

  constructor(aesSessionKey: Uint8Array, iv: Uint8Array, hmacKey: Uint8Array, mode: ControlSecurityMode) {
    checkSize('AES-Session-Key', aesSessionKey, AES_SESSION_KEY_SIZE);
    checkSize('IV', iv, AES_BLOCK_SIZE);
    checkSize('HMAC-Key', hmacKey, HMAC_KEY_SIZE);
    if (mode !== 'authenticated' && mode !== 'encrypted' && mode !== 'mixed') {
      throw new RangeError(`control stream mode must be authenticated, encrypted or mixed, got ${String(mode)}`);
    }
    this.mode = mode;
    this.#aesKey = Buffer.from(aesSessionKey);
    this.#iv = Buffer.from(iv);
    this.#hmacKey = createSecretKey(Buffer.from(hmacKey));
  }

  /**
   * Sending side: computes the HMAC over the pending coverage and
   * `plainMessage` minus its last 16 octets, writes it into those 16 octets
   * (mutating `plainMessage`), and returns the whole message CBC-encrypted.
   * `plainMessage` must be a whole number of blocks, at least one.
   */
  encrypt(plainMessage: Buffer): Buffer {
    checkBlocks('message', plainMessage);
    const end = plainMessage.length - HMAC_SIZE;
    const mac = this.#takeHmac(plainMessage.subarray(0, end));
    mac.copy(plainMessage, end);
    return this.#encipher().update(plainMessage);
  }

  /**
   * Sending side, server only: Server-Start with octets 32–47 (Start-Time,
   * MBZ) encrypted as the first block of the server stream and added to the
   * HMAC coverage. With Accept ≠ 0 the message goes out in clear and the
   * stream is not started (no valid key may exist; twampd does the same).
   * The Server-IV at 16–31 must be this cipher's IV.
   */
  encryptServerStart(serverStart: Buffer): Buffer {
    this.#checkServerStart(serverStart);
    const out = Buffer.from(serverStart);
    if (serverStart[15] !== 0) return out;
    const tail = serverStart.subarray(SERVER_START_CLEAR, SERVER_START_SIZE);
    this.#cover(tail);
    this.#encipher().update(tail).copy(out, SERVER_START_CLEAR);
    return out;
  }

  /**
   * Receiving side: decrypts whole 16-octet blocks, continuing the chain.
   * Call it per block or per message as framing requires; it does not touch
   * the HMAC coverage (verifyHmac does, on the reassembled message).
   */
  decrypt(blocks: Uint8Array): Buffer {
    checkBlocks('ciphertext', blocks, 0);
    return this.#decipherer().update(blocks);
  }

  /**
   * Receiving side, client only: Server-Start as received (48 octets) →
   * plaintext. With Accept = 0 octets 32–47 are decrypted and added to the
   * coverage of the server's first HMAC; otherwise returned as received.
   */
  decryptServerStart(wire: Uint8Array): Buffer {
    this.#checkServerStart(wire);
    const out = Buffer.from(wire);
    if (wire[15] !== 0) return out;
    const tail = this.#decipherer().update(wire.subarray(SERVER_START_CLEAR, SERVER_START_SIZE));
    this.#cover(tail);
    tail.copy(out, SERVER_START_CLEAR);
    return out;
  }

  /**
   * Receiving side: true when the last 16 octets of the decrypted message
   * equal the HMAC over the pending coverage plus the rest of the message
   * (constant-time). The coverage restarts after this call either way; a
   * false result means the connection must be closed.
   */
  verifyHmac(plainMessage: Uint8Array): boolean {
    checkBlocks('message', plainMessage);
    this.#claim('receive');
    const end = plainMessage.length - HMAC_SIZE;
    const mac = this.#takeHmac(plainMessage.subarray(0, end));
    return timingSafeEqual(mac, plainMessage.subarray(end));
  }

  #claim(role: 'send' | 'receive'): void {
    if (this.#role === undefined) this.#role = role;
    else if (this.#role !== role) {
      throw new Error(`ControlCipher: this instance ${this.#role}s; use a separate one per direction`);
    }
  }

  #encipher(): Cipher {
    this.#claim('send');
    // Never final(): the chain lives as long as the connection.
    this.#cipher ??= createCipheriv('aes-128-cbc', this.#aesKey, this.#iv).setAutoPadding(false);
    return this.#cipher;
  }

  #decipherer(): Decipher {
    this.#claim('receive');
    // Without padding OpenSSL holds no block back: update() returns every block.
    this.#decipher ??= createDecipheriv('aes-128-cbc', this.#aesKey, this.#iv).setAutoPadding(false);
    return this.#decipher;
  }

  #cover(plain: Uint8Array): void {
    this.#pending ??= createHmac('sha1', this.#hmacKey);
    this.#pending.update(plain);
  }

  #takeHmac(rest: Uint8Array): Buffer {
    this.#cover(rest);
    const mac = this.#pending!.digest().subarray(0, HMAC_SIZE);
    this.#pending = undefined;
    return mac;
  }

  #checkServerStart(b: Uint8Array): void {
    checkSize('Server-Start', b, SERVER_START_SIZE);
    if (!this.#iv.equals(b.subarray(16, SERVER_START_CLEAR))) {
      throw new RangeError('Server-Start: Server-IV differs from the IV this ControlCipher was created with');
    }
  }
}

function checkBlocks(name: string, b: Uint8Array, min: number = AES_BLOCK_SIZE): void {
  if (b.length < min || b.length % AES_BLOCK_SIZE !== 0) {
    throw new RangeError(`control ${name} must be a whole number of 16-octet blocks (at least ${min}), got ${b.length}`);
  }
}

// ---------------------------------------------------------------------------
// Test-session keys (RFC 4656 §4.1.2, RFC 5357 §4.1.2)

export interface TestSessionKeys {
  /** AES-ECB(key = SID)(AES-Session-Key), 16 octets. */
  readonly aesKey: Buffer;
  /** AES-CBC(key = SID, IV 0)(HMAC-Key), 32 octets. */
  readonly hmacKey: Buffer;
}

/**
 * Per-session test keys, the same for both directions. Derive once per
 * session and pass the same object to every protect/unprotect call: the AES
 * and HMAC key schedules are cached on it. Do not modify its buffers.
 */
export function testSessionKeys(aesSessionKey: Uint8Array, hmacKey: Uint8Array, sid: Uint8Array): TestSessionKeys {
  checkSize('AES-Session-Key', aesSessionKey, AES_SESSION_KEY_SIZE);
  checkSize('HMAC-Key', hmacKey, HMAC_KEY_SIZE);
  checkSize('SID', sid, 16);
  const ecb = createCipheriv('aes-128-ecb', sid, null).setAutoPadding(false);
  const cbc = createCipheriv('aes-128-cbc', sid, ZERO_IV).setAutoPadding(false);
  return Object.freeze({
    aesKey: Buffer.concat([ecb.update(aesSessionKey), ecb.final()]),
    hmacKey: Buffer.concat([cbc.update(hmacKey), cbc.final()]),
  });
}

interface PreparedKeys {
  /** ECB carries no state between blocks, so one object per direction is reused forever. */
  ecbEncrypt: Cipher;
  ecbDecrypt: Decipher;
  aesKey: Buffer;
  hmacKey: KeyObject;
}

const prepared = new WeakMap<TestSessionKeys, PreparedKeys>();

function prepare(keys: TestSessionKeys): PreparedKeys {
  let p = prepared.get(keys);
  if (p === undefined) {
    checkSize('TestAESKey', keys.aesKey, 16);
    checkSize('TestHMACKey', keys.hmacKey, HMAC_KEY_SIZE);
    p = {
      ecbEncrypt: createCipheriv('aes-128-ecb', keys.aesKey, null).setAutoPadding(false),
      ecbDecrypt: createDecipheriv('aes-128-ecb', keys.aesKey, null).setAutoPadding(false),
      aesKey: Buffer.from(keys.aesKey),
      hmacKey: createSecretKey(Buffer.from(keys.hmacKey)),
    };
    prepared.set(keys, p);
  }
  return p;
}

// ---------------------------------------------------------------------------
// Test packet protection (RFC 4656 §4.1.2, RFC 5357 §4.1.2 / §4.2.1)
//
//                 protected octets          HMAC over plaintext of    HMAC at
// authenticated   0–15, AES-ECB             0–15                      sender 32 / reflector 96
// encrypted       sender 0–31 / refl. 0–95, the protected octets      sender 32 / reflector 96
//                 AES-CBC, IV 0 per packet
// open, mixed     none
// The HMAC is never encrypted; padding is neither encrypted nor covered.

/** Where the HMAC sits; in encrypted mode also the length of the CBC range. */
const SENDER_HMAC_AT = 32;
const REFLECTOR_HMAC_AT = 96;

const SENDER_NAME = 'TWAMP-Test sender packet';
const REFLECTOR_NAME = 'TWAMP-Test reflector packet';

function protectedLength(mode: 'authenticated' | 'encrypted', hmacAt: number): number {
  return mode === 'authenticated' ? AES_BLOCK_SIZE : hmacAt;
}

function protect(buf: Buffer, length: number, keys: TestSessionKeys, mode: SecurityMode, hmacAt: number, name: string): void {
  if (mode === 'open' || mode === 'mixed') return;
  if (!Number.isInteger(length) || length < hmacAt + HMAC_SIZE || length > buf.length) {
    throw new RangeError(`${name}: ${mode} packet needs ${hmacAt + HMAC_SIZE} octets, length ${String(length)} in a buffer of ${buf.length}`);
  }
  const k = prepare(keys);
  const n = protectedLength(mode, hmacAt);
  const plain = buf.subarray(0, n);
  // HMAC first, over plaintext; then encrypt; the HMAC field stays clear.
  const mac = createHmac('sha1', k.hmacKey).update(plain).digest();
  if (mode === 'authenticated') {
    k.ecbEncrypt.update(plain).copy(buf, 0);
  } else {
    // A fresh CBC object per packet (IV 0) is cheaper than chaining ECB calls for 6 blocks.
    createCipheriv('aes-128-cbc', k.aesKey, ZERO_IV).setAutoPadding(false).update(plain).copy(buf, 0);
  }
  mac.copy(buf, hmacAt, 0, HMAC_SIZE);
}

function unprotect(buf: Buffer, length: number, keys: TestSessionKeys, mode: SecurityMode, hmacAt: number, name: string): boolean {
  if (mode === 'open' || mode === 'mixed') return true;
  if (!Number.isInteger(length) || length < 0 || length > buf.length) {
    throw new DecodeError(name, `length ${String(length)} outside buffer of ${buf.length} octets`);
  }
  if (length < hmacAt + HMAC_SIZE) {
    throw new DecodeError(name, `truncated: ${mode} mode needs at least ${hmacAt + HMAC_SIZE} octets, got ${length}`);
  }
  const k = prepare(keys);
  const n = protectedLength(mode, hmacAt);
  // One ECB pass over all blocks, then undo the chaining back to front (each
  // step needs the previous block's ciphertext, still intact): CBC with IV 0.
  const d = k.ecbDecrypt.update(buf.subarray(0, n));
  for (let i = n - 1; i >= AES_BLOCK_SIZE; i--) buf[i] = d[i]! ^ buf[i - AES_BLOCK_SIZE]!;
  d.copy(buf, 0, 0, AES_BLOCK_SIZE);
  const mac = createHmac('sha1', k.hmacKey).update(buf.subarray(0, n)).digest();
  return timingSafeEqual(mac.subarray(0, HMAC_SIZE), buf.subarray(hmacAt, hmacAt + HMAC_SIZE));
}

/**
 * Protects a plaintext sender packet of `length` octets in place. In
 * authenticated mode only octets 0–15 (sequence number) are touched besides
 * the HMAC, so T1 at 16–23 may be written afterwards, as late as possible;
 * in encrypted mode T1 must be written first. No-op in open/mixed mode.
 * RangeError when `length` is shorter than the 48-octet header.
 */
export function protectSenderPacket(buf: Buffer, length: number, keys: TestSessionKeys, mode: SecurityMode): void {
  protect(buf, length, keys, mode, SENDER_HMAC_AT, SENDER_NAME);
}

/**
 * Decrypts a received sender packet in place and returns whether its HMAC
 * verifies (discard the packet if not: its content is garbage). Always true
 * in open/mixed mode. DecodeError when shorter than the 48-octet header.
 */
export function unprotectSenderPacket(buf: Buffer, length: number, keys: TestSessionKeys, mode: SecurityMode): boolean {
  return unprotect(buf, length, keys, mode, SENDER_HMAC_AT, SENDER_NAME);
}

/**
 * Protects a plaintext reflector packet in place. Authenticated mode leaves
 * T3 (16–23) outside the protection, so patchReflectorTimestamp may run
 * after this; encrypted mode covers octets 0–95, so T3 must be final first.
 */
export function protectReflectorPacket(buf: Buffer, length: number, keys: TestSessionKeys, mode: SecurityMode): void {
  protect(buf, length, keys, mode, REFLECTOR_HMAC_AT, REFLECTOR_NAME);
}

/** Decrypts a received reflector packet in place; true when its HMAC verifies. */
export function unprotectReflectorPacket(buf: Buffer, length: number, keys: TestSessionKeys, mode: SecurityMode): boolean {
  return unprotect(buf, length, keys, mode, REFLECTOR_HMAC_AT, REFLECTOR_NAME);
}
