/**
 * Per-packet TOS / traffic class on the test-socket datapath (send, sendBatch
 * and schedule take `tos`), read back by a receiving native socket on
 * loopback: the byte of that packet only, the socket's own setting untouched.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openTestSocket, DatapathError, type RxDatagram, type TestSocket } from '../../src/session/datapath.js';
import { needNative } from '../helpers/native.js';

async function receiver(family: 4 | 6, address: string): Promise<{ sock: TestSocket; rx: RxDatagram[]; until: (n: number) => Promise<void> }> {
  const rx: RxDatagram[] = [];
  const sock = await openTestSocket({ family, address, native: true, onPackets: (b) => { rx.push(...b); } });
  const until = async (n: number): Promise<void> => {
    const end = Date.now() + 5000;
    while (rx.length < n) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${n} datagrams (got ${rx.length})`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return { sock, rx, until };
}

/** The TOS each datagram arrived with, by its first octet (the packet's tag). */
const tosByTag = (rx: RxDatagram[]): Map<number, number> => new Map(rx.map((d) => [d.data[0]!, d.tos]));

describe('per-packet TOS (native)', () => {
  for (const { family, host } of [{ family: 4 as const, host: '127.0.0.1' }, { family: 6 as const, host: '::1' }]) {
    it(`IPv${family}: send, sendBatch and schedule mark only their own packet`, async (t) => {
      if (!needNative(t)) return;
      const r = await receiver(family, host);
      // The socket's own TOS is 0x20 (CS1): packets without `tos` must keep it.
      const s = await openTestSocket({ family, address: host, native: true, tos: 0x20, onPackets: () => {}, onDeparture: () => {} });
      try {
        const pkt = (tag: number): Buffer => { const b = Buffer.alloc(40); b[0] = tag; return b; };
        s.send(pkt(1), host, r.sock.local.port, { tos: 0xb8 }); // EF
        s.send(pkt(2), host, r.sock.local.port); // the socket's
        s.send(pkt(3), host, r.sock.local.port, { tos: 0 }); // explicitly 0, not the socket's
        s.send(pkt(4), host, r.sock.local.port, { tos: 0x2a, stampOffset: 4 }); // AF11 + ECT(0)
        const b = s.sendBatch([
          { data: pkt(5), address: host, port: r.sock.local.port, tos: 0x88 },
          { data: pkt(6), address: host, port: r.sock.local.port },
          { data: pkt(7), address: host, port: r.sock.local.port, tos: 0x48, stampOffset: 8 },
        ]);
        assert.equal(b.sent, 3);
        const now = process.hrtime.bigint();
        s.schedule({ id: 8, deadlineMonoNs: now + 2_000_000n, data: pkt(8), address: host, port: r.sock.local.port, tos: 0x68 });
        s.schedule({ id: 9, deadlineMonoNs: now + 3_000_000n, data: pkt(9), address: host, port: r.sock.local.port });
        await r.until(9);
        assert.deepEqual([...tosByTag(r.rx)].sort((a, b) => a[0] - b[0]),
          [[1, 0xb8], [2, 0x20], [3, 0], [4, 0x2a], [5, 0x88], [6, 0x20], [7, 0x48], [8, 0x68], [9, 0x20]]);
      } finally {
        r.sock.close();
        s.close();
      }
    });
  }

  it('a dual-stack IPv6 socket marks its IPv4 (v4-mapped) packets too', async (t) => {
    if (!needNative(t)) return;
    const r = await receiver(4, '127.0.0.1');
    const s = await openTestSocket({ family: 6, address: '::', ipv6Only: false, native: true, onPackets: () => {} });
    try {
      s.send(Buffer.from([1, 0, 0, 0]), '127.0.0.1', r.sock.local.port, { tos: 0xb8 });
      s.sendBatch([{ data: Buffer.from([2, 0, 0, 0]), address: '::ffff:127.0.0.1', port: r.sock.local.port, tos: 0x88 }]);
      await r.until(2);
      assert.deepEqual([...tosByTag(r.rx)].sort((a, b) => a[0] - b[0]), [[1, 0xb8], [2, 0x88]]);
    } finally {
      r.sock.close();
      s.close();
    }
  });

  it('a tos outside 0..255 is a typed error before anything is sent', async (t) => {
    if (!needNative(t)) return;
    const r = await receiver(4, '127.0.0.1');
    const s = await openTestSocket({ family: 4, address: '127.0.0.1', native: true, onPackets: () => {} });
    try {
      for (const bad of [256, -1, 1.5]) {
        assert.throws(() => s.send(Buffer.alloc(8), '127.0.0.1', r.sock.local.port, { tos: bad }),
          (e: unknown) => e instanceof DatapathError && e.code === 'ERR_OUT_OF_RANGE');
        assert.throws(() => s.sendBatch([{ data: Buffer.alloc(8), address: '127.0.0.1', port: r.sock.local.port, tos: bad }]),
          (e: unknown) => e instanceof DatapathError && e.code === 'ERR_OUT_OF_RANGE');
        assert.throws(() => s.schedule({ id: 1, deadlineMonoNs: process.hrtime.bigint(), data: Buffer.alloc(8), address: '127.0.0.1', port: r.sock.local.port, tos: bad }),
          (e: unknown) => e instanceof DatapathError && e.code === 'ERR_OUT_OF_RANGE');
      }
      await new Promise((res) => setTimeout(res, 50));
      assert.equal(r.rx.length, 0);
    } finally {
      r.sock.close();
      s.close();
    }
  });
});

describe('per-packet TOS (node:dgram fallback)', () => {
  it('applies the DSCP before the send, read back by a native receiver', async (t) => {
    if (!needNative(t)) return; // the receiver reads TOS natively; the fallback marks through the helper
    const r = await receiver(4, '127.0.0.1');
    const s = await openTestSocket({ family: 4, address: '127.0.0.1', native: false, onPackets: () => {} });
    try {
      assert.equal(s.kind, 'js');
      s.send(Buffer.from([1]), '127.0.0.1', r.sock.local.port, { tos: 0xb8 });
      await r.until(1);
      assert.equal(s.tosStatus().ok, true, s.tosStatus().reason);
      assert.equal(r.rx[0]!.tos, 0xb8);
    } finally {
      r.sock.close();
      s.close();
    }
  });
});
