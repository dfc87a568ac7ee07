// ReflectorSession (src/session/reflectorSession.ts) on its own, without
// TWAMP-Control: a session built on a loopback test socket, driven through its
// public API (start, stop, end, onBatch) with datagrams from a local client.
// What RFC 5357 §4.2 asks of a Session-Reflector: only the negotiated sender
// is answered, and only between Start-Sessions and the end of the Stop
// grace; the reflector's own sequence numbers; the sender's fields copied;
// the reply padded to the request (RFC 5357 §4.2.1, RFC 6038 symmetrical
// size); the received TTL as Sender TTL; authenticated mode's HMAC (RFC 4656
// §4.1.2); REFWAIT, the maximum duration and the packet-rate limiters.
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import {
  decodeReflectorPacket, ntpFromUnixNs, protectSenderPacket, testSessionKeys, unprotectReflectorPacket, writeSenderPacket,
  type TestSessionKeys,
} from '../../src/protocol/index.js';
import { systemClock } from '../../src/session/clock.js';
import type { PacketLimiter } from '../../src/session/limits.js';
import {
  END_MAX_DURATION, END_REFWAIT, ReflectorSession, type ReflectorCounters, type ReflectorSessionOptions,
} from '../../src/session/reflectorSession.js';
import { openReflectorSocket } from '../../src/session/udp.js';
import type { TestSocket } from '../../src/session/datapath.js';

const clock = systemClock();
const T1 = ntpFromUnixNs(1_700_000_000_123_456_789n);
const OPEN_HEADER = 14;
const OPEN_REPLY = 41;
const AUTH_HEADER = 48;
const AUTH_REPLY = 112;

async function waitFor(what: string, cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function udpClient(): Promise<Socket> {
  const s = createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return s;
}

const open: { close(): void }[] = [];
after(() => { for (const o of open) o.close(); });

/** A session for a client on 127.0.0.1, its socket, counters, replies and end reasons. */
async function rig(o: Partial<Omit<ReflectorSessionOptions, 'socket'>> = {}, native?: boolean) {
  const client = await udpClient();
  open.push(client);
  const counters: ReflectorCounters = { reflectedPackets: 0, reflectedOctets: 0, droppedPackets: 0 };
  const ended: string[] = [];
  const replies: Buffer[] = [];
  client.on('message', (m) => replies.push(m));
  let session: ReflectorSession | undefined;
  const sock: TestSocket = await openReflectorSocket({
    address: '127.0.0.1', port: 0, family: 4, peer: 'test', onPackets: (b) => session?.onBatch(b),
    ...(native !== undefined ? { native } : {}),
  });
  open.push(sock);
  session = new ReflectorSession({
    socket: sock, family: 4, senderAddress: '127.0.0.1', senderPort: client.address().port, sid: Buffer.alloc(16, 7),
    stopGraceMs: 200, refwaitMs: 60_000, clock, counters, onEnd: (_s, why) => ended.push(why), ...o,
  });
  const s = session;
  open.push({ close: () => s.end('test over') });
  const send = (msg: Buffer, from: Socket = client): void => { from.send(msg, sock.local.port, '127.0.0.1'); };
  /** Sends `msg`, then a marker packet (seq 0xfffffff0), and waits for the marker's reply: what came before it is all there is. */
  const settle = async (): Promise<void> => {
    const before = replies.length;
    send(request(0xfffffff0));
    await waitFor('the marker reply', () => replies.slice(before).some((r) => decodeReflectorPacket(r).senderSeq === 0xfffffff0));
  };
  return { session: s, sock, client, counters, ended, replies, send, settle };
}

/** An open-mode request of `size` octets whose padding counts up from 1. */
function request(seq: number, size = OPEN_HEADER): Buffer {
  const b = Buffer.alloc(size);
  for (let i = OPEN_HEADER; i < size; i++) b[i] = i & 0xff;
  writeSenderPacket(b, { seq, timestamp: T1, errorEstimate: 0x8001 });
  return b;
}

function authRequest(seq: number, keys: TestSessionKeys): Buffer {
  const b = Buffer.alloc(AUTH_HEADER);
  writeSenderPacket(b, { seq, timestamp: T1, errorEstimate: 0x8001 }, 'authenticated');
  protectSenderPacket(b, b.length, keys, 'authenticated');
  return b;
}

describe('ReflectorSession on loopback', { timeout: 60_000 }, () => {
  it('reflects only after start(): its own sequence numbers, the sender\'s fields copied, counters at IP level', async () => {
    const r = await rig();
    assert.equal(r.session.canStart, true);
    r.send(request(7));
    await waitFor('the early request dropped', () => r.counters.droppedPackets === 1);
    r.session.start();
    assert.equal(r.session.isStarted, true);
    assert.equal(r.session.canStart, false);
    for (const seq of [100, 101, 102]) r.send(request(seq));
    await waitFor('three replies', () => r.replies.length === 3);
    const decoded = r.replies.map((m) => decodeReflectorPacket(m));
    assert.deepEqual(decoded.map((p) => [p.seq, p.senderSeq]), [[0, 100], [1, 101], [2, 102]]);
    const now = clock.nowNtp();
    for (const p of decoded) {
      assert.equal(p.senderTimestamp, T1);
      assert.equal(p.senderErrorEstimate, 0x8001);
      assert.equal(p.errorEstimate, clock.errorEstimate);
      assert.equal(p.length, OPEN_REPLY);
      assert.ok(p.receiveTimestamp <= p.timestamp, 'T2 <= T3');
      assert.ok(now - p.receiveTimestamp < 10n << 32n, 'T2 is the clock of now, not T1');
    }
    assert.deepEqual(r.counters, { reflectedPackets: 3, reflectedOctets: 3 * (OPEN_REPLY + 28), droppedPackets: 1 });
    assert.equal(r.session.reflected, 3);
  });

  it('the reply is as long as the request (at least 41), padding copied from after the sender header', async () => {
    const r = await rig();
    r.session.start();
    const req = request(1, 100);
    r.send(req);
    await waitFor('a reply', () => r.replies.length === 1);
    const reply = r.replies[0]!;
    assert.equal(reply.length, 100);
    assert.deepEqual(reply.subarray(OPEN_REPLY), req.subarray(OPEN_HEADER, OPEN_HEADER + 100 - OPEN_REPLY));
  });

  it('symmetrical size (RFC 6038): the padding keeps its offsets', async () => {
    const r = await rig({ symmetricalSize: true });
    r.session.start();
    const req = request(1, 100);
    r.send(req);
    await waitFor('a reply', () => r.replies.length === 1);
    assert.equal(r.replies[0]!.length, 100);
    assert.deepEqual(r.replies[0]!.subarray(OPEN_REPLY), req.subarray(OPEN_REPLY));
  });

  it('another source port or a request shorter than the header is dropped, not answered', async () => {
    const r = await rig();
    r.session.start();
    const stranger = await udpClient();
    open.push(stranger);
    r.send(request(1), stranger);
    r.send(Buffer.alloc(OPEN_HEADER - 1));
    await waitFor('two drops', () => r.counters.droppedPackets === 2);
    await r.settle();
    assert.equal(r.replies.length, 1); // the marker only
  });

  it('a datagram the datapath cut (truncated) is dropped', async () => {
    const r = await rig();
    r.session.start();
    r.session.onBatch([{
      data: request(1, 200), address: '127.0.0.1', port: r.client.address().port, rxRealtimeNs: clock.nowUnixNs(),
      ttl: 64, tos: 0, tsSource: 'userspace', truncated: true,
    }]);
    assert.equal(r.counters.droppedPackets, 1);
    await r.settle();
    assert.equal(r.replies.length, 1);
  });

  it('Sender TTL is the TTL the request arrived with (native datapath), 255 where it cannot be read', async () => {
    for (const native of [undefined, false]) {
      const r = await rig({}, native);
      r.client.setTTL(77);
      r.session.start();
      r.send(request(1));
      await waitFor('a reply', () => r.replies.length === 1);
      const expected = r.sock.kind === 'native' ? 77 : 255;
      assert.equal(decodeReflectorPacket(r.replies[0]!).senderTtl, expected, `${r.sock.kind} datapath`);
    }
  });

  it('stop(): reflects through the grace period, then ends once with "stopped" and answers nothing more', async () => {
    const r = await rig({ stopGraceMs: 300 });
    r.session.start();
    r.session.stop();
    assert.equal(r.session.isStarted, false);
    r.send(request(1));
    await waitFor('a reply within the grace', () => r.replies.length === 1);
    await waitFor('the end', () => r.ended.length > 0);
    assert.deepEqual(r.ended, ['stopped']);
    r.session.end('again');
    r.session.start();
    assert.deepEqual(r.ended, ['stopped']);
    assert.equal(r.session.canStart, false);
  });

  it('REFWAIT: packets keep the session alive, silence ends it', async () => {
    const r = await rig({ refwaitMs: 400 });
    r.session.start();
    const until = Date.now() + 1_000;
    while (Date.now() < until) {
      r.send(request(1));
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.deepEqual(r.ended, [], 'ended while packets were arriving');
    await waitFor('REFWAIT', () => r.ended.length > 0);
    assert.deepEqual(r.ended, [END_REFWAIT]);
  });

  it('maxDurationMs ends the session whatever it does', async () => {
    const r = await rig({ maxDurationMs: 200 });
    r.session.start();
    await waitFor('the maximum duration', () => r.ended.length > 0);
    assert.deepEqual(r.ended, [END_MAX_DURATION]);
  });

  it('rate limiters are asked after the source check; a refusal drops the packet and is reported', async () => {
    let tokens = 2;
    let asked = 0;
    const limiter: PacketLimiter = { take: () => { asked++; return tokens-- > 0; } };
    const rateDrops: ReflectorSession[] = [];
    const r = await rig({ rateLimiters: [limiter], onRateDrop: (s) => rateDrops.push(s) });
    r.session.start();
    const stranger = await udpClient();
    open.push(stranger);
    r.send(request(9), stranger);
    await waitFor('the stranger dropped', () => r.counters.droppedPackets === 1);
    assert.equal(asked, 0, 'a packet from elsewhere spent the sender\'s budget');
    for (const seq of [1, 2, 3]) r.send(request(seq));
    await waitFor('two replies and a drop', () => r.replies.length === 2 && r.counters.droppedPackets === 2);
    assert.deepEqual(r.replies.map((m) => decodeReflectorPacket(m).senderSeq), [1, 2]);
    assert.deepEqual(rateDrops, [r.session]);
  });

  it('authenticated mode: a request under the session keys gets a 112-octet protected reply; a wrong key is dropped and reported', async () => {
    const sid = Buffer.alloc(16, 7);
    const keys = testSessionKeys(Buffer.alloc(16, 1), Buffer.alloc(32, 2), sid);
    const wrong = testSessionKeys(Buffer.alloc(16, 1), Buffer.alloc(32, 3), sid);
    const failures: ReflectorSession[] = [];
    const r = await rig({ mode: 'authenticated', keys, sid, onAuthFailure: (s) => failures.push(s) });
    r.session.start();
    r.send(authRequest(5, wrong));
    await waitFor('the bad HMAC dropped', () => r.counters.droppedPackets === 1);
    r.send(authRequest(6, keys));
    await waitFor('a reply', () => r.replies.length === 1);
    const reply = Buffer.from(r.replies[0]!);
    assert.equal(reply.length, AUTH_REPLY);
    assert.ok(unprotectReflectorPacket(reply, reply.length, keys, 'authenticated'), 'reply HMAC');
    const p = decodeReflectorPacket(reply, reply.length, 'authenticated');
    assert.deepEqual([p.seq, p.senderSeq, p.senderTimestamp], [0, 6, T1]);
    assert.equal(r.session.badHmac, 1);
    assert.deepEqual(failures, [r.session]);
  });
});
