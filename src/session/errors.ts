/**
 * Why a TWAMP-Control exchange or a test session failed. `reason` is a small
 * closed set so it can label an error counter without unbounded cardinality;
 * the message carries the detail (peer, message, field).
 */
export const FAILURE_REASONS = [
  'dns', // the reflector name did not resolve
  'connect', // TCP connect refused, unreachable or timed out
  'timeout', // an expected control message did not arrive in time
  'closed', // the peer closed the control connection
  'protocol', // malformed or unexpected message
  'refused', // the peer answered with a non-zero Accept / no usable mode
  'socket', // local UDP/TCP socket error (bind, send)
  'aborted', // stopped by us (shutdown)
] as const;

export type FailureReason = (typeof FAILURE_REASONS)[number];

export class TwampSessionError extends Error {
  readonly reason: FailureReason;
  readonly peer: string;
  constructor(reason: FailureReason, peer: string, message: string, options?: { cause?: unknown }) {
    super(`${peer}: ${message}`, options);
    this.name = 'TwampSessionError';
    this.reason = reason;
    this.peer = peer;
  }
}
