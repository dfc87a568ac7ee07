/**
 * TWAMP-Control constants: Modes bits (RFC 4656 §3.1, RFC 5357 §3.1 and the
 * IANA TWAMP-Modes registry), Accept values (RFC 4656 §3.3) and command
 * numbers (RFC 5357 §3.5, RFC 5938, RFC 9533, IANA TWAMP-Control Command
 * Numbers).
 */

/**
 * Well-known TWAMP-Control TCP port (RFC 5357 §3.1), also the STAMP and
 * conventional TWAMP-Light UDP port (RFC 8762 §4.1): the default `port` of
 * both collectors.
 */
export const DEFAULT_CONTROL_PORT = 862;

/** Modes field bits (32-bit bitmap, Server-Greeting / Set-Up-Response). */
export const Mode = {
  UNAUTHENTICATED: 0x001, // RFC 4656
  AUTHENTICATED: 0x002, // RFC 4656
  ENCRYPTED: 0x004, // RFC 4656
  MIXED: 0x008, // RFC 5618: encrypted control, unauthenticated test
  INDIVIDUAL_SESSION_CONTROL: 0x010, // RFC 5938
  REFLECT_OCTETS: 0x020, // RFC 6038
  SYMMETRICAL_SIZE: 0x040, // RFC 6038
  IKEV2_DERIVED_KEY: 0x080, // RFC 7717
  DSCP_ECN_MONITORING: 0x100, // RFC 7750
  PTPV2_TIMESTAMP: 0x200, // RFC 8186
} as const;

/** The bits that select a security mode; exactly one is chosen (RFC 5618). */
export const SECURITY_MODE_MASK =
  Mode.UNAUTHENTICATED | Mode.AUTHENTICATED | Mode.ENCRYPTED | Mode.MIXED;

/** Accept field values (RFC 4656 §3.3; 6 from RFC 7717). */
export const Accept = {
  OK: 0,
  FAILURE: 1,
  INTERNAL_ERROR: 2,
  NOT_SUPPORTED: 3,
  PERMANENT_RESOURCE_LIMITATION: 4,
  TEMPORARY_RESOURCE_LIMITATION: 5,
  IKEV2_SA_NOT_FOUND: 6,
} as const;

const ACCEPT_TEXT: readonly string[] = [
  'OK',
  'failure, reason unspecified',
  'internal error',
  'some aspect of the request is not supported',
  'cannot perform request due to permanent resource limitations',
  'cannot perform request due to temporary resource limitations',
  'IKEv2 security association not found (RFC 7717)',
];

/**
 * Human-readable Accept value. Unknown values must be treated as 1 (RFC 4656
 * §3.3), and the text says so while keeping the raw value visible.
 */
export function acceptDescription(code: number): string {
  const known = Number.isInteger(code) ? ACCEPT_TEXT[code] : undefined;
  if (known !== undefined) return known;
  return `unknown Accept value ${String(code)}, treated as 1 (${ACCEPT_TEXT[1]!})`;
}

/** Command numbers, octet 0 of client commands (and of Start/Stop-N-Ack). */
export const Command = {
  RESERVED: 0,
  FORBIDDEN: 1, // OWAMP Request-Session, not valid in TWAMP
  START_SESSIONS: 2,
  STOP_SESSIONS: 3,
  RESERVED_FETCH_SESSION: 4, // OWAMP Fetch-Session, not in TWAMP
  REQUEST_TW_SESSION: 5,
  EXPERIMENTATION: 6,
  START_N_SESSIONS: 7, // RFC 5938
  START_N_ACK: 8, // RFC 5938, server → client
  STOP_N_SESSIONS: 9, // RFC 5938
  STOP_N_ACK: 10, // RFC 5938, server → client
  REQUEST_TW_MICRO_SESSIONS: 11, // RFC 9533
} as const;
