/**
 * DSCP marking of UDP test sockets (RFC 5357 §3.5 / §4.2.1: test packets,
 * and the reflector's replies, carry the session's Type-P DSCP).
 *
 * Node 20's dgram cannot set IP_TOS / IPV6_TCLASS, so this uses the optional
 * native helper built by `npm run build:native` (build/Release/
 * twamp_sockopt.node; the package's install script tries to build it). Without
 * it, packets go out with DSCP 0 and callers say so through DscpSupport.
 *
 * Descriptor access (Unix only): dgram keeps its libuv handle in the socket's
 * internal state (`sock[Symbol('state symbol')].handle`, the same object the
 * deprecated `sock._handle` getter returns); `handle.fd` is the OS
 * descriptor, valid once the socket is bound. Windows has no such fd.
 */
import type { Socket } from 'node:dgram';
import { loadNative, NATIVE_ENABLE_HINT, type KernelClockStatus, type NativeAddon } from './native.js';
import { messageOf } from '../util/errors.js';

export type { KernelClockStatus } from './native.js';

export interface DscpSupport {
  available: boolean;
  /** Why marking is unavailable (absent when available). */
  reason?: string;
}

export type SetDscpResult = { ok: true } | { ok: false; reason: string };

/** The helper, with reasons phrased for DSCP marking (the loader is shared: native.ts). */
function load(): { addon: NativeAddon } | { reason: string } {
  if (process.platform === 'win32') return { reason: 'DSCP marking is not supported on Windows' };
  const l = loadNative();
  if ('addon' in l) return l;
  return { reason: `native DSCP helper unavailable: ${l.reason}; to enable DSCP marking, ${NATIVE_ENABLE_HINT}` };
}

/**
 * Whether the host clock is synchronised, from the kernel (adjtimex: STA_UNSYNC
 * clear), with its error estimate; undefined when it cannot be read (no native
 * helper, not Linux).
 */
export function kernelClockStatus(): KernelClockStatus | undefined {
  const l = load();
  if (!('addon' in l) || typeof l.addon.clockStatus !== 'function') return undefined;
  try {
    return l.addon.clockStatus() ?? undefined;
  } catch {
    return undefined;
  }
}

/** Whether setSocketDscp can work here; loads the native helper on first call. */
export function dscpSupport(): DscpSupport {
  const l = load();
  return 'addon' in l ? { available: true } : { available: false, reason: l.reason };
}

interface UdpHandle {
  fd?: unknown;
}

/** The OS descriptor of a bound dgram socket, or a reason why there is none. */
function socketFd(sock: Socket): { fd: number } | { reason: string } {
  const state = Object.getOwnPropertySymbols(sock).find((s) => s.description === 'state symbol');
  let handle: UdpHandle | null | undefined;
  if (state !== undefined) {
    handle = (sock as unknown as Record<symbol, { handle?: UdpHandle | null } | undefined>)[state]?.handle;
  } else {
    // Older/newer Node layouts: the deprecated getter (may print DEP0112 once).
    handle = (sock as unknown as { _handle?: UdpHandle | null })._handle;
  }
  if (handle === null || handle === undefined) return { reason: 'socket is closed' };
  const fd = handle.fd;
  if (typeof fd !== 'number') return { reason: 'this Node.js does not expose the socket descriptor' };
  if (fd < 0) return { reason: 'socket is not bound yet (no descriptor)' };
  return { fd };
}

function socketFamily(sock: Socket): { family: 4 | 6 } | { reason: string } {
  try {
    return { family: sock.address().family === 'IPv6' ? 6 : 4 };
  } catch (e) {
    return { reason: `socket is not bound (${messageOf(e)})` };
  }
}

/**
 * Marks every packet the bound socket sends with `dscp` (0–63): TOS byte /
 * Traffic Class = dscp << 2, ECN bits 0. For an IPv6 socket both
 * IPV6_TCLASS and IP_TOS are set, so v4-mapped peers are marked too.
 * Never throws; call it after bind() and before the first send().
 */
export function setSocketDscp(sock: Socket, dscp: number): SetDscpResult {
  try {
    if (!Number.isInteger(dscp) || dscp < 0 || dscp > 63) {
      return { ok: false, reason: `DSCP must be an integer in 0..63, got ${String(dscp)}` };
    }
    const l = load();
    if (!('addon' in l)) return { ok: false, reason: l.reason };
    const fd = socketFd(sock);
    if ('reason' in fd) return { ok: false, reason: fd.reason };
    const fam = socketFamily(sock);
    if ('reason' in fam) return { ok: false, reason: fam.reason };
    l.addon.setTos(fd.fd, fam.family, dscp << 2);
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: `cannot set DSCP ${String(dscp)}: ${messageOf(e)}` };
  }
}

/**
 * The TOS byte (IPv4) or Traffic Class (IPv6) the kernel holds for the bound
 * socket, as read back with getsockopt. For tests and diagnostics; throws
 * when the helper is missing or the socket has no descriptor.
 */
export function getSocketTos(sock: Socket): number {
  const l = load();
  if (!('addon' in l)) throw new Error(l.reason);
  const fd = socketFd(sock);
  if ('reason' in fd) throw new Error(`cannot read TOS: ${fd.reason}`);
  const fam = socketFamily(sock);
  if ('reason' in fam) throw new Error(`cannot read TOS: ${fam.reason}`);
  return l.addon.getTos(fd.fd, fam.family);
}
