// runTestPhase (src/session/testPhase.ts) on a fake test socket: the test
// plays the reflector and, on the native path, the scheduler thread, through
// the socket interface the phase takes (TestPhaseSocket: send / schedule, and
// the onPackets / onDeparture callbacks it installs). Timestamps are the
// fake's, so every delay is known exactly. Checks the accounting (answered,
// lost per direction, duplicates, unexpected, invalid, late stragglers), that
// the phase stops waiting once every packet is answered, that nothing is
// counted after it ends, and the native path's ordering: a reply that arrives
// before its departure report waits for it, and the final drain counts a
// reply whose departure was never reported as unexpected.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildReply, decodeSenderHeader, errorEstimateFromSeconds, ntpFromUnixNs, writeTimestamp,
} from '../../src/protocol/index.js';
import type { Clock } from '../../src/session/clock.js';
import { DatapathError, type DepartureReport, type RxDatagram, type ScheduledPacket, type SendOptions } from '../../src/session/datapath.js';
import { modelForFamily, runTestPhase, sessionFormat, type TestPhaseSocket } from '../../src/session/testPhase.js';
import type { ReplySample } from '../../src/measure/stats.js';

const REFLECTOR = { address: '192.0.2.1', port: 9000 };
/** Our clock's Unix ns at the first departure; packet seq departs GAP_NS later each. */
const BASE_NS = 1_700_000_000_000_000_000n;
const GAP_NS = 20_000_000n;
const RESIDENCE_NS = 50_000n;
/** Native path: the kernel's TX timestamp is this much after the stamp read before sendmsg. */
const TX_LAG_NS = 5_000n;
const FMT = sessionFormat('twamp', 'open');
const EE_SYNC = errorEstimateFromSeconds(0.001, true);
const MS = 1_000_000n;

/** Real monotonic time (the pacers wait on it); the UTC readings are only used for pre-stamped formats, not here. */
const clock: Clock = {
  monoNs: () => process.hrtime.bigint(),
  nowUnixNs: () => BASE_NS + process.hrtime.bigint(),
  nowNtp: () => ntpFromUnixNs(BASE_NS + process.hrtime.bigint()),
  errorEstimate: EE_SYNC,
  synchronized: true,
};

interface ReplyOpts {
  fwdNs: bigint;
  backNs: bigint;
  reflectorSeq: number;
  /** Our departure time of the request, Unix ns (T1 as we recorded it). */
  t1Ns: bigint;
  port?: number;
  /** Overwrites the echoed Sender Sequence Number (a reply to a packet never sent). */
  senderSeq?: number;
  /** Overwrites the echoed T1 (a reflector that garbles it). */
  echoedT1?: bigint;
}

function rig(kind: 'js' | 'native') {
  const sent = new Map<number, Buffer>();
  const scheduled = new Map<number, ScheduledPacket>();
  let onSend: ((seq: number) => void) | undefined;
  let onSchedule: ((seq: number) => void) | undefined;
  const holder: TestPhaseSocket = {
    errors: 0,
    socket: {
      kind,
      timestampSource: () => (kind === 'native' ? 'kernel' : 'userspace'),
      schedulerStatus: () => ({ pacing: kind === 'native' ? 'native-thread' : 'setTimeout', realtime: false }),
      send(data: Buffer, address: string, port: number, opts?: SendOptions) {
        assert.deepEqual({ address, port }, REFLECTOR);
        const seq = decodeSenderHeader(data, data.length, FMT).seq;
        const t1 = BASE_NS + BigInt(seq) * GAP_NS;
        const copy = Buffer.from(data);
        if (opts?.stampOffset !== undefined) writeTimestamp(copy, opts.stampOffset, ntpFromUnixNs(t1));
        sent.set(seq, copy);
        setImmediate(() => onSend?.(seq));
        return { stampedRealtimeNs: t1, txId: -1 };
      },
      schedule(p: ScheduledPacket) {
        assert.equal(kind, 'native', 'the JS path never schedules');
        // The thread writes T1 at stampOffset right before sendmsg; it is known ahead here (BASE_NS + id · GAP_NS).
        const data = Buffer.from(p.data);
        if (p.stampOffset !== undefined) writeTimestamp(data, p.stampOffset, ntpFromUnixNs(BASE_NS + BigInt(p.id) * GAP_NS));
        scheduled.set(p.id, { ...p, data });
        setImmediate(() => onSchedule?.(p.id));
      },
    },
  };

  /** The reflector's reply to packet `seq` as it arrives here. */
  const reply = (seq: number, o: ReplyOpts): RxDatagram => {
    const req = Buffer.from(kind === 'native' ? scheduled.get(seq)!.data : sent.get(seq)!);
    if (o.echoedT1 !== undefined) writeTimestamp(req, FMT.sender.timestamp, o.echoedT1);
    if (o.senderSeq !== undefined) req.writeUInt32BE(o.senderSeq, FMT.sender.seq);
    const t2 = o.t1Ns + o.fwdNs;
    const t3 = t2 + RESIDENCE_NS;
    const out = Buffer.alloc(2048);
    const len = buildReply(FMT, req, req.length, out, {
      seq: o.reflectorSeq, receiveTimestamp: ntpFromUnixNs(t2), timestamp: ntpFromUnixNs(t3), errorEstimate: EE_SYNC, senderTtl: 254,
    });
    return {
      data: out.subarray(0, len), address: REFLECTOR.address, port: o.port ?? REFLECTOR.port,
      rxRealtimeNs: t3 + o.backNs, ttl: 253, tos: 0, tsSource: 'kernel', truncated: false,
    };
  };
  const deliver = (...batch: RxDatagram[]): void => holder.onPackets?.(batch);

  /** Native: the scheduler thread reports packet seq's departure (TX stamp TX_LAG_NS after the stamp), or its failure. */
  const depart = (seq: number, failed = false): bigint => {
    const p = scheduled.get(seq)!;
    const stamped = BASE_NS + BigInt(seq) * GAP_NS;
    const report: DepartureReport = failed
      ? { id: seq, deadlineMonoNs: p.deadlineMonoNs, sentMonoNs: p.deadlineMonoNs, stampedRealtimeNs: 0n,
        error: new DatapathError('sendmsg: no buffer space', 'ENOBUFS', { syscall: 'sendmsg' }) }
      : { id: seq, deadlineMonoNs: p.deadlineMonoNs, sentMonoNs: p.deadlineMonoNs + 3_000n, stampedRealtimeNs: stamped,
        txRealtimeNs: stamped + TX_LAG_NS, txSource: 'kernel' };
    holder.onDeparture?.([report]);
    return stamped + TX_LAG_NS;
  };

  return {
    holder, sent, scheduled, reply, deliver, depart,
    whenSent: (f: (seq: number) => void) => { onSend = f; },
    whenScheduled: (f: (seq: number) => void) => { onSchedule = f; },
  };
}

function options(holder: TestPhaseSocket, nPackets: number, replyTimeoutMs: number) {
  const samples: ReplySample[] = [];
  const progress: [number, number][] = [];
  return {
    samples, progress,
    opts: {
      socket: holder, reflectorAddress: REFLECTOR.address, reflectorPort: REFLECTOR.port,
      model: modelForFamily({ model: 'g711' }, 4, 'test'), nPackets, overhead: 28, clock, replyTimeoutMs,
      onSample: (s: ReplySample) => samples.push(s),
      onReply: (received: number, sentSoFar: number) => progress.push([received, sentSoFar]),
    },
  };
}

const t1Of = (seq: number): bigint => BASE_NS + BigInt(seq) * GAP_NS;

describe('runTestPhase on a fake socket: JS datapath', { timeout: 30_000 }, () => {
  it('answered, lost per direction, duplicate, unexpected, invalid and a late straggler; nothing counted after the end', async () => {
    const r = rig('js');
    const n = 8;
    const { opts, samples, progress } = options(r.holder, n, 1_500);
    const fwd = (seq: number): bigint => BigInt(1 + seq) * MS;
    const back = (seq: number): bigint => 2n * MS + BigInt(seq) * 100_000n;
    const answer = (seq: number, reflectorSeq: number, extra: Partial<ReplyOpts> = {}): RxDatagram =>
      r.reply(seq, { fwdNs: fwd(seq), backNs: back(seq), reflectorSeq, t1Ns: t1Of(seq), ...extra });
    // What the reflector saw: every packet but 2 (lost on the way there), numbered in order.
    const rseq: Record<number, number> = { 0: 0, 1: 1, 3: 2, 4: 3, 5: 4, 6: 5, 7: 6 };
    r.whenSent((seq) => {
      switch (seq) {
        case 1: r.deliver(answer(1, rseq[1]!), answer(1, rseq[1]!)); break; // + a backward duplicate
        case 2: break; // lost on the way there
        case 3: break; // answered late, after the last departure (below)
        case 4: r.deliver(answer(4, rseq[4]!, { port: 9001 })); break; // from another port: not the reflector's, so lost on the way back
        case 5: r.deliver(answer(5, rseq[5]!), answer(5, 99, { senderSeq: 99 })); break; // + a reply to a packet never sent
        case 6: r.deliver({ ...answer(6, rseq[6]!), data: Buffer.alloc(10) }, answer(6, rseq[6]!)); break; // + a runt
        case 7:
          r.deliver(answer(7, rseq[7]!));
          setTimeout(() => r.deliver(answer(3, rseq[3]!)), 100);
          break;
        default: r.deliver(answer(seq, rseq[seq]!));
      }
    });
    const res = await runTestPhase(opts);
    const s = res.stats;
    assert.deepEqual({ tx: s.txPackets, rx: s.rxPackets }, { tx: 8, rx: 6 });
    assert.deepEqual({ rt: s.rt.loss, out: s.out.loss, in: s.in.loss }, { rt: 2, out: 1, in: 1 }, 'seq 2 lost outbound, seq 4 inbound');
    assert.deepEqual({ duplicates: s.duplicates, unexpected: s.unexpected, reordered: s.reordered }, { duplicates: 1, unexpected: 1, reordered: 1 },
      'seq 3 arrived after 7: reordered');
    assert.equal(res.invalidReplies, 2, 'another port and a runt');
    // Delays with our own records: rt = fwd + back exactly (no TX stamps on the JS path: T1 is the stamp).
    const answered = [0, 1, 5, 6, 7, 3];
    assert.deepEqual([...res.rtSamplesNs], answered.map((q) => Number(fwd(q) + back(q))), 'arrival order, first replies only');
    assert.equal(s.rt.samples, 6);
    // Hooks: every reply to a packet we sent, duplicates included; progress from the statistics' own counts.
    assert.deepEqual(samples.map((x) => x.senderSeq), [0, 1, 1, 5, 6, 7, 3]);
    assert.deepEqual(progress.at(-1), [6, 8]);
    assert.deepEqual(progress.find(([, sentSoFar]) => sentSoFar === 2), [2, 2], 'the duplicate does not count as answered');
    assert.equal(res.peerSynced, true);
    assert.deepEqual(res.path.inbound.hops, { min: 2, max: 2 });
    assert.deepEqual(res.path.outbound.hops, { min: 1, max: 1 });
    assert.equal(res.timestamps.datapath, 'js');
    assert.equal(res.timestamps.pacing, 'event-loop');
    assert.equal(res.sendErrors, 0);
    assert.equal(res.t1Mismatches, 0);
    // After the phase: its callbacks are gone, a straggler changes nothing.
    assert.equal(r.holder.onPackets, undefined);
    assert.equal(r.holder.onDeparture, undefined);
    r.deliver(answer(2, 7));
    assert.equal(s.rxPackets, 6);
  });

  it('stops waiting for stragglers as soon as every packet is answered, not at the reply timeout', async () => {
    const r = rig('js');
    const { opts } = options(r.holder, 5, 20_000);
    r.whenSent((seq) => {
      const a = r.reply(seq, { fwdNs: MS, backNs: MS, reflectorSeq: seq, t1Ns: t1Of(seq) });
      // The last one arrives late, after its departure and the others.
      if (seq === 4) setTimeout(() => r.deliver(a), 200);
      else r.deliver(a);
    });
    const t0 = Date.now();
    const res = await runTestPhase(opts);
    const elapsed = Date.now() - t0;
    assert.equal(res.stats.rxPackets, 5);
    assert.equal(res.stats.rt.loss, 0);
    assert.ok(elapsed < 10_000, `took ${elapsed} ms: waited for the 20 s reply timeout`);
  });
});

describe('runTestPhase on a fake socket: native scheduler', { timeout: 30_000 }, () => {
  it('a reply before its departure report waits for it; a failed send is not sent; the final drain counts an unreported departure\'s reply as unexpected', async () => {
    const r = rig('native');
    const { opts, samples } = options(r.holder, 4, 200);
    const garbled = ntpFromUnixNs(t1Of(0) - 7n * MS);
    const txT1 = new Map<number, bigint>();
    r.whenScheduled((seq) => {
      switch (seq) {
        case 0:
          txT1.set(0, r.depart(0));
          // A reflector that garbles the echoed T1: counted, but the delay uses our own record.
          r.deliver(r.reply(0, { fwdNs: MS, backNs: 2n * MS, reflectorSeq: 0, t1Ns: t1Of(0), echoedT1: garbled }));
          break;
        case 1:
          r.deliver(r.reply(1, { fwdNs: MS, backNs: 2n * MS, reflectorSeq: 1, t1Ns: t1Of(1) }));
          assert.equal(samples.length, 1, 'seq 1 waits for its departure record');
          txT1.set(1, r.depart(1));
          assert.equal(samples.length, 2, 'measured once its departure is reported');
          break;
        case 2:
          r.depart(2, true);
          break;
        case 3:
          // Answered, but the departure report never comes (the phase waits out the report grace, then drains).
          r.deliver(r.reply(3, { fwdNs: MS, backNs: 2n * MS, reflectorSeq: 2, t1Ns: t1Of(3) }));
          break;
      }
    });
    const res = await runTestPhase(opts);
    const s = res.stats;
    assert.deepEqual({ tx: s.txPackets, rx: s.rxPackets, unexpected: s.unexpected }, { tx: 2, rx: 2, unexpected: 1 });
    assert.equal(res.sendErrors, 1);
    assert.equal(res.t1Mismatches, 1);
    // T1 is the kernel's TX stamp (TX_LAG_NS after the stamp the reflector echoed): rt = fwd + back − the lag.
    const rt = Number(3n * MS - TX_LAG_NS);
    assert.deepEqual([...res.rtSamplesNs], [rt, rt]);
    assert.deepEqual(samples.map((x) => x.senderSeq), [0, 1], 'the drained reply is not ours: no sample');
    assert.equal(samples[0]!.t1, ntpFromUnixNs(txT1.get(0)!), 'own record, not the garbled echo');
    assert.equal(res.timestamps.t1, 'kernel');
    assert.equal(res.timestamps.txTimestamped, 2);
    assert.equal(res.timestamps.pacing, 'native-thread');
    assert.equal(res.timestamps.departureErrorNs?.samples, 2);
    assert.equal(res.timestamps.departureErrorNs?.p50, 3_000);
  });
});
