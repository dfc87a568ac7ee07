// Our reflector driven by our control client and raw UDP sockets: session
// ports, SIDs, reflection format, who gets answered, and how sessions end.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket as UdpSocket } from 'node:dgram';
import { connect } from 'node:net';
import { TwampReflector } from '../../src/reflector.js';
import { ControlClient } from '../../src/session/controlClient.js';
import {
  writeSenderPacket, decodeReflectorPacket, RequestTwSession, AcceptSession, ntpIntervalFromNs, SetupResponse,
  ServerGreeting, StartSessions,
} from '../../src/protocol/index.js';
import { freePort } from '../helpers/peers.js';
import { exchange, sleep, udp } from '../helpers/udp.js';
import { rawControl } from '../helpers/tcp.js';
import { parseReflectorConfig } from '../../src/config/index.js';



function packet(seq: number, length: number): Buffer {
  const b = Buffer.alloc(length, 0xab);
  writeSenderPacket(b, { seq, timestamp: BigInt(seq + 1) << 32n, errorEstimate: 0x0001 });
  return b;
}


async function session(r: { port: number }, sender: UdpSocket, o: { receiverPort?: number; timeoutMs?: number } = {}) {
  // RFC 5357 base format (no RFC 7750 S-DSCP-ECN, which would make the reply header 44 octets).
  const c = await ControlClient.connect({ host: '127.0.0.1', port: r.port, timeoutMs: 2000, dscpEcnMonitoring: false });
  const acc = await c.requestSession({
    ipvn: 4, senderPort: sender.address().port, receiverPort: o.receiverPort ?? 0,
    senderAddress: '127.0.0.1', receiverAddress: '127.0.0.1', paddingLength: 27,
    startTime: 0n, timeout: ntpIntervalFromNs(BigInt(o.timeoutMs ?? 200) * 1_000_000n), typeP: 0,
  });
  return { c, acc };
}

describe('reflector behaviour', { timeout: 60_000 }, () => {
  let r: TwampReflector;
  let port: number;
  before(async () => {
    r = new TwampReflector(parseReflectorConfig({ id: 'r', listen: '127.0.0.1', port: 0, refwait: 1 }));
    port = (await r.start()).port;
  });
  after(() => r.stop());

  it('reflects per RFC 5357 §4.2: own seq from 0, sender fields copied, length max(request, 41)', async () => {
    const s = await udp();
    const { c, acc } = await session({ port }, s);
    await c.startSessions();
    const replies = await exchange(s, acc.port, [packet(7, 14), packet(8, 100), packet(9, 41)]);
    await c.stopSessions(1);
    c.close();
    s.close();
    assert.equal(replies.length, 3);
    const byLen = replies.map((b) => b.length).sort((a, b) => a - b);
    assert.deepEqual(byLen, [41, 41, 100]);
    const decoded = replies.map((b) => decodeReflectorPacket(b));
    assert.deepEqual(decoded.map((d) => d.seq).sort(), [0, 1, 2]);
    assert.deepEqual(decoded.map((d) => d.senderSeq).sort(), [7, 8, 9]);
    for (const d of decoded) {
      assert.equal(d.senderTimestamp, BigInt(d.senderSeq + 1) << 32n);
      assert.equal(d.senderErrorEstimate, 0x0001);
      // The received TTL (the test socket's default 64) on the native datapath; 255 when unknown (RFC 5357 §4.2.1).
      assert.ok(d.senderTtl === 64 || d.senderTtl === 255, `Sender TTL ${d.senderTtl}`);
      assert.ok(d.timestamp >= d.receiveTimestamp, 'T3 ≥ T2');
      assert.notEqual(d.errorEstimate & 0xff, 0, 'Error Estimate multiplier never 0');
    }
    // SID: the reflector's IPv4 address, a timestamp, random octets (RFC 4656 §3.5).
    assert.equal(acc.sid.subarray(0, 4).toString('hex'), '7f000001');
    assert.notEqual(acc.sid.subarray(4, 12).readBigUInt64BE(), 0n);
  });

  it('answers only the negotiated sender address and port; counts the rest as dropped', async () => {
    const s = await udp();
    const stranger = await udp();
    const { c, acc } = await session({ port }, s);
    await c.startSessions();
    const dropped0 = r.counters.droppedPackets;
    const fromStranger = await exchange(stranger, acc.port, [packet(0, 14), packet(1, 14)]);
    const fromSender = await exchange(s, acc.port, [packet(0, 14)]);
    assert.equal(fromStranger.length, 0, 'never reflect to an address that did not set up the session');
    assert.equal(fromSender.length, 1);
    assert.equal(r.counters.droppedPackets - dropped0, 2);
    await c.stopSessions(1);
    c.close();
    s.close();
    stranger.close();
  });

  it('honours a free requested port, offers another when it is busy', async () => {
    const s = await udp();
    const want = await freePort('127.0.0.1', 'udp');
    const a = await session({ port }, s, { receiverPort: want });
    assert.equal(a.acc.port, want);
    const b = await session({ port }, s, { receiverPort: want });
    assert.notEqual(b.acc.port, want);
    assert.notEqual(b.acc.port, 0);
    assert.notDeepEqual(a.acc.sid, b.acc.sid, 'SIDs are unique');
    a.c.close();
    b.c.close();
    s.close();
  });

  it('after Stop-Sessions it reflects for the Timeout, then the session ends', async () => {
    const s = await udp();
    const { c, acc } = await session({ port }, s, { timeoutMs: 300 });
    await c.startSessions();
    await c.stopSessions(1);
    const during = await exchange(s, acc.port, [packet(0, 14)], 100);
    await sleep(400);
    const afterTimeout = await exchange(s, acc.port, [packet(1, 14)], 150);
    assert.equal(during.length, 1, 'still reflecting within Timeout');
    assert.equal(afterTimeout.length, 0, 'not after Timeout');
    c.close();
    s.close();
  });

  it('losing the control connection ends its sessions', async () => {
    const s = await udp();
    const { c, acc } = await session({ port }, s);
    await c.startSessions();
    const before = r.activeSessions;
    c.close();
    await sleep(200);
    assert.equal(r.activeSessions, before - 1);
    const replies = await exchange(s, acc.port, [packet(0, 14)], 100);
    assert.equal(replies.length, 0);
    s.close();
  });

  it('REFWAIT: a started session without packets ends', async () => {
    const s = await udp();
    const { c, acc } = await session({ port }, s);
    await c.startSessions();
    assert.equal((await exchange(s, acc.port, [packet(0, 14)], 100)).length, 1);
    await sleep(1300); // refwait: 1 s
    assert.equal((await exchange(s, acc.port, [packet(1, 14)], 100)).length, 0);
    c.close();
    s.close();
  });

  it('a malformed request gets Accept 3, a garbage command Accept 3 and a close; others unaffected', async () => {
    const s = await udp();
    const ok = await session({ port }, s);
    await ok.c.startSessions();
    // Conf-Sender ≠ 0 is not TWAMP.
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.on('data', (d: Buffer) => chunks.push(d));
    await new Promise((res) => sock.once('connect', res));
    await sleep(50);
    sock.write(SetupResponse.encode({ mode: 1 }));
    await sleep(50);
    const bad = RequestTwSession.encode({
      ipvn: 4, senderPort: 1, receiverPort: 0, senderAddress: '127.0.0.1', receiverAddress: '127.0.0.1',
      paddingLength: 0, startTime: 0n, timeout: 0n, typeP: 0, confSender: 1,
    });
    sock.write(bad);
    await sleep(100);
    const afterBad = Buffer.concat(chunks);
    const acc = AcceptSession.decode(afterBad.subarray(64 + 48));
    assert.equal(acc.accept, 3);
    assert.equal(acc.port, 0);
    sock.write(Buffer.alloc(16, 0xee)); // unknown command 0xee
    const closed = await new Promise<boolean>((res) => { sock.once('close', () => res(true)); setTimeout(() => res(false), 2000); });
    assert.ok(closed, 'connection closed after an unknown command');
    const tail = Buffer.concat(chunks).subarray(64 + 48 + 48);
    assert.equal(AcceptSession.decode(tail).accept, 3);
    // The good session still reflects.
    assert.equal((await exchange(s, ok.acc.port, [packet(0, 14)], 100)).length, 1);
    ok.c.close();
    s.close();
  });
});

describe('RFC 6038 (Reflect Octets, Symmetrical Size)', { timeout: 30_000 }, () => {
  it('offered in the greeting; Octets to be reflected echoed; reflected padding kept; too little padding refused', async () => {
    const r = new TwampReflector(parseReflectorConfig({ id: 'r6038', listen: '127.0.0.1', port: 0 }));
    const { port } = await r.start();
    const { sock, read } = rawControl(port);
    const s = await udp();
    try {
      const greeting = ServerGreeting.decode(await read(64));
      assert.equal(greeting.modes & 0x60, 0x60, 'Reflect Octets and Symmetrical Size offered');
      sock.write(SetupResponse.encode({ mode: 1 | 0x20 | 0x40 }));
      await read(48);
      const base = {
        ipvn: 4 as const, senderPort: s.address().port, receiverPort: 0, senderAddress: '127.0.0.1', receiverAddress: '127.0.0.1',
        startTime: 0n, timeout: ntpIntervalFromNs(200_000_000n), typeP: 0,
      };
      sock.write(RequestTwSession.encode({ ...base, paddingLength: 27 + 2, octetsToBeReflected: 0xabcd, lengthOfPaddingToReflect: 4 }));
      const refused = AcceptSession.decode(await read(48));
      assert.equal(refused.accept, 3, '4 octets to reflect need 27 + 4 octets of padding');
      sock.write(RequestTwSession.encode({ ...base, paddingLength: 27 + 4, octetsToBeReflected: 0xabcd, lengthOfPaddingToReflect: 4 }));
      const acc = AcceptSession.decode(await read(48));
      assert.equal(acc.accept, 0);
      assert.equal(acc.reflectedOctets, 0xabcd);
      sock.write(StartSessions.encode({}));
      await read(32);
      // Symmetrical size: 14 + 27 MBZ + 4 octets of padding to reflect = 45 octets each way.
      const req = Buffer.alloc(45);
      writeSenderPacket(req, { seq: 0, timestamp: 1n << 32n, errorEstimate: 1 });
      Buffer.from([1, 2, 3, 4]).copy(req, 41);
      const replies = await exchange(s, acc.port, [req]);
      assert.equal(replies.length, 1);
      assert.equal(replies[0]!.length, 45, 'reply as long as the request');
      assert.deepEqual([...replies[0]!.subarray(41, 45)], [1, 2, 3, 4], 'padding to reflect kept');
    } finally {
      sock.destroy();
      s.close();
      await r.stop();
    }
  });
});
