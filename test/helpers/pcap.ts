/**
 * Minimal classic-pcap reader for the conformance captures: Ethernet (link
 * type 1), IPv4, TCP with per-direction payload reassembly, UDP with the IP
 * TTL and TOS of each datagram. Test-only; not a general dissector (no IPv6,
 * no IP fragments, no VLAN tags, no pcapng).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PcapRecord {
  /** 1-based frame number, as Wireshark/tcpdump count. */
  frame: number;
  tsSec: number;
  /** Microseconds or nanoseconds, depending on the file's magic. */
  tsFrac: number;
  data: Buffer;
  origLen: number;
}

export interface PcapFile {
  linkType: number;
  nanosecond: boolean;
  records: PcapRecord[];
}

export interface Endpoint {
  address: string;
  port: number;
}

export interface UdpDatagram {
  frame: number;
  src: Endpoint;
  dst: Endpoint;
  ttl: number;
  tos: number;
  payload: Buffer;
}

export interface TcpSegment {
  frame: number;
  src: Endpoint;
  dst: Endpoint;
  seq: number;
  flags: number;
  payload: Buffer;
}

export interface TcpStream {
  src: Endpoint;
  dst: Endpoint;
  /** Reassembled payload of this direction, in sequence-number order. */
  data: Buffer;
  /** Where each data-carrying segment landed in `data`. */
  segments: { frame: number; offset: number; length: number }[];
}

export interface Capture {
  udp: UdpDatagram[];
  tcp: TcpSegment[];
  streams: TcpStream[];
}

const TCP_SYN = 0x02;

export function readPcap(buf: Buffer): PcapFile {
  if (buf.length < 24) throw new Error(`pcap: file of ${buf.length} octets has no global header`);
  const magicLe = buf.readUInt32LE(0);
  let le: boolean;
  let nanosecond: boolean;
  if (magicLe === 0xa1b2c3d4 || magicLe === 0xa1b23c4d) {
    le = true;
    nanosecond = magicLe === 0xa1b23c4d;
  } else {
    const magicBe = buf.readUInt32BE(0);
    if (magicBe !== 0xa1b2c3d4 && magicBe !== 0xa1b23c4d) {
      throw new Error(`pcap: bad magic 0x${magicBe.toString(16)} (pcapng is not supported)`);
    }
    le = false;
    nanosecond = magicBe === 0xa1b23c4d;
  }
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const linkType = u32(20) & 0x0fffffff; // high bits may carry FCS info
  const records: PcapRecord[] = [];
  let o = 24;
  while (o + 16 <= buf.length) {
    const inclLen = u32(o + 8);
    if (o + 16 + inclLen > buf.length) throw new Error(`pcap: record ${records.length + 1} truncated`);
    records.push({
      frame: records.length + 1,
      tsSec: u32(o),
      tsFrac: u32(o + 4),
      origLen: u32(o + 12),
      data: buf.subarray(o + 16, o + 16 + inclLen),
    });
    o += 16 + inclLen;
  }
  return { linkType, nanosecond, records };
}

function ipv4(b: Buffer, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

function key(src: Endpoint, dst: Endpoint): string {
  return `${src.address}:${src.port}>${dst.address}:${dst.port}`;
}

/** Decodes every IPv4 TCP/UDP frame and reassembles each TCP direction. */
export function parseCapture(buf: Buffer): Capture {
  const file = readPcap(buf);
  if (file.linkType !== 1) throw new Error(`pcap: link type ${file.linkType} is not Ethernet (1)`);
  const udp: UdpDatagram[] = [];
  const tcp: TcpSegment[] = [];
  for (const rec of file.records) {
    const d = rec.data;
    if (d.length < 14 || d.readUInt16BE(12) !== 0x0800) continue; // IPv4 only
    const ip = 14;
    const ihl = (d[ip]! & 0x0f) * 4;
    // Total Length bounds the datagram: Ethernet may pad short frames.
    const ipEnd = Math.min(d.length, ip + d.readUInt16BE(ip + 2));
    const flagsFrag = d.readUInt16BE(ip + 6);
    if ((flagsFrag & 0x3fff) !== 0) continue; // fragments not supported
    const tos = d[ip + 1]!;
    const ttl = d[ip + 8]!;
    const proto = d[ip + 9]!;
    const srcAddr = ipv4(d, ip + 12);
    const dstAddr = ipv4(d, ip + 16);
    const l4 = ip + ihl;
    if (proto === 17) {
      udp.push({
        frame: rec.frame,
        src: { address: srcAddr, port: d.readUInt16BE(l4) },
        dst: { address: dstAddr, port: d.readUInt16BE(l4 + 2) },
        ttl,
        tos,
        payload: Buffer.from(d.subarray(l4 + 8, Math.min(ipEnd, l4 + d.readUInt16BE(l4 + 4)))),
      });
    } else if (proto === 6) {
      const dataOffset = (d[l4 + 12]! >> 4) * 4;
      tcp.push({
        frame: rec.frame,
        src: { address: srcAddr, port: d.readUInt16BE(l4) },
        dst: { address: dstAddr, port: d.readUInt16BE(l4 + 2) },
        seq: d.readUInt32BE(l4 + 4),
        flags: d[l4 + 13]!,
        payload: Buffer.from(d.subarray(l4 + dataOffset, ipEnd)),
      });
    }
  }
  return { udp, tcp, streams: reassemble(tcp) };
}

/**
 * Per-direction reassembly by sequence number relative to the SYN's ISN
 * (or the first segment seen), modulo 2^32; retransmitted octets overwrite
 * identical ones.
 */
function reassemble(segments: TcpSegment[]): TcpStream[] {
  interface Acc {
    src: Endpoint;
    dst: Endpoint;
    base: number;
    pieces: { frame: number; offset: number; payload: Buffer }[];
  }
  const byDir = new Map<string, Acc>();
  for (const s of segments) {
    const k = key(s.src, s.dst);
    let acc = byDir.get(k);
    if (acc === undefined) {
      // The SYN consumes one sequence number; data starts right after it.
      acc = { src: s.src, dst: s.dst, base: (s.flags & TCP_SYN) !== 0 ? (s.seq + 1) >>> 0 : s.seq, pieces: [] };
      byDir.set(k, acc);
    }
    if (s.payload.length === 0) continue;
    acc.pieces.push({ frame: s.frame, offset: (s.seq - acc.base) >>> 0, payload: s.payload });
  }
  const streams: TcpStream[] = [];
  for (const acc of byDir.values()) {
    const end = acc.pieces.reduce((m, p) => Math.max(m, p.offset + p.payload.length), 0);
    const data = Buffer.alloc(end);
    const sorted = [...acc.pieces].sort((a, b) => a.offset - b.offset);
    let covered = 0;
    for (const p of sorted) {
      if (p.offset > covered) throw new Error(`pcap: gap in TCP stream ${key(acc.src, acc.dst)} at ${covered}`);
      p.payload.copy(data, p.offset);
      covered = Math.max(covered, p.offset + p.payload.length);
    }
    streams.push({
      src: acc.src,
      dst: acc.dst,
      data,
      segments: sorted.map((p) => ({ frame: p.frame, offset: p.offset, length: p.payload.length })),
    });
  }
  return streams;
}

/** The reassembled stream from `src` to `dst` ("address:port" each). */
export function tcpStream(capture: Capture, src: string, dst: string): TcpStream {
  const s = capture.streams.find((st) => `${st.src.address}:${st.src.port}` === src && `${st.dst.address}:${st.dst.port}` === dst);
  if (s === undefined) throw new Error(`pcap: no TCP data from ${src} to ${dst}`);
  return s;
}

export function loadCapture(path: string): Capture {
  return parseCapture(readFileSync(path));
}

/**
 * Repository root: the first ancestor of this module holding package.json
 * (works from test/helpers and from dist/test/helpers after compilation).
 */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('package.json not found above test helpers');
    dir = parent;
  }
}

/** Path of a recorded fixture inside the repository (test/fixtures/; see test/fixtures/conformance/README.md). */
export function fixturePath(...parts: string[]): string {
  return resolve(repoRoot(), 'test', 'fixtures', ...parts);
}
