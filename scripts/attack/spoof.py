#!/usr/bin/env python3
"""Spoofed UDP datagrams for `npm run attack` (root only; loopback only).

Node's dgram cannot choose a source address it does not own nor source port
0, so the attacks that need either send through a raw IPv4 socket with
IP_HDRINCL and a hand-built IP and UDP header (UDP checksum 0: optional over
IPv4, RFC 768).

usage: spoof.py DST_IP DST_PORT PAYLOAD_HEX COUNT SECONDS SRC
  SRC  "A.B.C.D:PORT" one source, or "random" for a random 127/8 source and
       port >= 1024 per datagram (127.0.0.0/8 only: the test never leaves lo)
Sends COUNT datagrams, or for SECONDS when COUNT is 0, as fast as it can;
prints the number sent.
"""
import random
import socket
import struct
import sys
import time


def checksum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def datagram(src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    total = 20 + len(udp)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, random.getrandbits(16), 0, 64, socket.IPPROTO_UDP, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + udp


def main() -> None:
    dst, dport, payload_hex, count, seconds, src = sys.argv[1:7]
    if not dst.startswith("127."):
        sys.exit("spoof.py: loopback destinations only")
    payload = bytes.fromhex(payload_hex)
    count, seconds, dport = int(count), float(seconds), int(dport)
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    fixed = None
    if src != "random":
        a, p = src.rsplit(":", 1)
        fixed = datagram(a, int(p), dst, dport, payload)
    sent = 0
    deadline = time.monotonic() + seconds
    while (count and sent < count) or (not count and time.monotonic() < deadline):
        if fixed is not None:
            pkt = fixed
        else:
            a = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
            pkt = datagram(a, random.randint(1024, 65535), dst, dport, payload)
        try:
            s.sendto(pkt, (dst, 0))
            sent += 1
        except OSError:
            time.sleep(0.001)
    print(sent)


if __name__ == "__main__":
    main()
