/**
 * TWAMP wire formats (RFC 4656, RFC 5357 and extensions): pure encode/decode,
 * no I/O. Control messages are namespaces: `ServerGreeting.decode(buf)`,
 * type `ServerGreeting.ServerGreeting`, encoder input `ServerGreeting.ServerGreetingInit`.
 */
export * from './errors.js';
export * from './timestamp.js';
export * from './errorEstimate.js';
export * from './constants.js';
export * from './dscp.js';
export * from './testFormat.js';
export * from './testPacket.js';
export * from './testCodec.js';
export * from './control/framing.js';
export * as ServerGreeting from './control/serverGreeting.js';
export * as SetupResponse from './control/setupResponse.js';
export * as ServerStart from './control/serverStart.js';
export * as RequestTwSession from './control/requestTwSession.js';
export * as AcceptSession from './control/acceptSession.js';
export * as StartSessions from './control/startSessions.js';
export * as StartAck from './control/startAck.js';
export * as StopSessions from './control/stopSessions.js';
export * from './crypto.js';
export * from './stamp.js';
