/**
 * Userspace delay stage of the accuracy lab, for kernels without sch_netem.
 * Runs in the router namespace otl-r and holds every TWAMP-Test packet for
 * a configured delay ± uniform jitter, per direction, while the sender and
 * the reflector still see exactly the addresses and ports they negotiated.
 *
 * How packets reach it (nft rules installed by lab.ts in otl-r):
 *  - forward: `prerouting … udp dport P redirect to :OUTER` turns
 *    A:sp → B:P into A:sp → R:OUTER; the relay receives it on OUTER.
 *    After the hold it sends it from an "inner" socket bound to R_b:sp (the
 *    sender's own port number) to B:P; `postrouting … snat ip to A` rewrites
 *    the source to A:sp, so the reflector sees A:sp → B:P, as negotiated
 *    (it accepts test packets only from the sender's address and port).
 *  - return: the reflector answers B:P → A:sp; in otl-r that is the reply
 *    direction of the SNAT mapping, so conntrack rewrites it to B:P → R_b:sp
 *    and the inner socket receives it. After the hold the relay sends it from
 *    OUTER to A:sp; that is the reply direction of the redirect, so the source
 *    becomes B:P again. The sender sees B:P → A:sp, as negotiated.
 * TWAMP-Control (TCP) is not touched: the kernel forwards it.
 *
 * Timing: the arrival time is taken when the datagram reaches JavaScript;
 * the release waits on a timer until ~2 ms before the due time and then
 * polls the monotonic clock with setImmediate (still serving I/O), so a
 * hold overshoots by tens of µs, not by a timer tick.
 *
 * Protocol on stdio: prints `READY <json>` once bound; `stats` on stdin (or
 * SIGTERM, before exiting) prints `STATS <json>` with per-direction counts
 * and the mean intended and actual hold.
 */
import dgram from 'node:dgram';
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';

const { values: a } = parseArgs({
  options: {
    'outer-port': { type: 'string' },
    'inner-addr': { type: 'string' },
    'target-addr': { type: 'string' },
    'target-port': { type: 'string' },
    'fwd-delay-ms': { type: 'string', default: '0' },
    'fwd-jitter-ms': { type: 'string', default: '0' },
    'ret-delay-ms': { type: 'string', default: '0' },
    'ret-jitter-ms': { type: 'string', default: '0' },
  },
});

function num(name: keyof typeof a): number {
  const v = Number(a[name]);
  if (a[name] === undefined || !Number.isFinite(v) || v < 0) {
    process.stderr.write(`delayRelay: --${name} must be a number >= 0\n`);
    process.exit(2);
  }
  return v;
}

const outerPort = num('outer-port');
const innerAddr = a['inner-addr'] ?? '';
const targetAddr = a['target-addr'] ?? '';
const targetPort = num('target-port');
const fwd = { delayNs: num('fwd-delay-ms') * 1e6, jitterNs: num('fwd-jitter-ms') * 1e6 };
const ret = { delayNs: num('ret-delay-ms') * 1e6, jitterNs: num('ret-jitter-ms') * 1e6 };

interface DirStats { packets: number; intendedSumNs: number; actualSumNs: number; maxLateNs: number }
const stats: Record<'fwd' | 'ret', DirStats> = {
  fwd: { packets: 0, intendedSumNs: 0, actualSumNs: 0, maxLateNs: 0 },
  ret: { packets: 0, intendedSumNs: 0, actualSumNs: 0, maxLateNs: 0 },
};

const now = (): number => Number(process.hrtime.bigint());

interface Pending { due: number; arrived: number; holdNs: number; dir: 'fwd' | 'ret'; send: () => void }
/** Due packets sorted by due time (jitter may reorder, like a real queue with variable delay). */
const queue: Pending[] = [];
let timer: NodeJS.Timeout | undefined;
let polling = false;

function hold(dir: 'fwd' | 'ret', send: () => void): void {
  const arrived = now();
  const d = dir === 'fwd' ? fwd : ret;
  const holdNs = Math.max(0, d.delayNs + (d.jitterNs > 0 ? (Math.random() * 2 - 1) * d.jitterNs : 0));
  const p: Pending = { due: arrived + holdNs, arrived, holdNs, dir, send };
  let i = queue.length;
  while (i > 0 && queue[i - 1]!.due > p.due) i--;
  queue.splice(i, 0, p);
  pump();
}

function pump(): void {
  const t = now();
  while (queue.length > 0 && queue[0]!.due <= t) {
    const p = queue.shift()!;
    p.send();
    const s = stats[p.dir];
    s.packets++;
    s.intendedSumNs += p.holdNs;
    s.actualSumNs += t - p.arrived;
    s.maxLateNs = Math.max(s.maxLateNs, t - p.due);
  }
  if (timer) { clearTimeout(timer); timer = undefined; }
  if (queue.length === 0) return;
  const left = queue[0]!.due - t;
  if (left > 2e6) {
    timer = setTimeout(pump, (left - 2e6) / 1e6);
  } else if (!polling) {
    polling = true;
    setImmediate(() => { polling = false; pump(); });
  }
}

const outer = dgram.createSocket('udp4');
/** Inner sockets by sender port (one per test session). */
const inner = new Map<number, Promise<dgram.Socket>>();
let sender: { address: string; port: number } | undefined;

function innerFor(senderPort: number): Promise<dgram.Socket> {
  let s = inner.get(senderPort);
  if (!s) {
    s = new Promise((resolve, reject) => {
      const sock = dgram.createSocket('udp4');
      sock.once('error', reject);
      sock.on('message', (msg) => {
        if (!sender) return;
        const to = sender;
        hold('ret', () => outer.send(msg, to.port, to.address));
      });
      sock.bind(senderPort, innerAddr, () => resolve(sock));
    });
    inner.set(senderPort, s);
  }
  return s;
}

outer.on('message', (msg, rinfo) => {
  sender = { address: rinfo.address, port: rinfo.port };
  const sock = innerFor(rinfo.port);
  hold('fwd', () => {
    void sock.then((s) => s.send(msg, targetPort, targetAddr), (e: Error) => process.stderr.write(`delayRelay: inner bind: ${e.message}\n`));
  });
});

function report(): void {
  const out = (s: DirStats) => ({
    packets: s.packets,
    intendedMeanMs: s.packets ? s.intendedSumNs / s.packets / 1e6 : null,
    actualMeanMs: s.packets ? s.actualSumNs / s.packets / 1e6 : null,
    maxLateMs: s.maxLateNs / 1e6,
  });
  process.stdout.write(`STATS ${JSON.stringify({ fwd: out(stats.fwd), ret: out(stats.ret) })}\n`);
}

outer.bind(outerPort, '0.0.0.0', () => {
  process.stdout.write(`READY ${JSON.stringify({ outerPort, innerAddr, target: `${targetAddr}:${targetPort}`, fwd, ret })}\n`);
});
outer.on('error', (e) => { process.stderr.write(`delayRelay: ${e.message}\n`); process.exit(1); });

createInterface({ input: process.stdin }).on('line', (l) => { if (l.trim() === 'stats') report(); });
process.on('SIGTERM', () => { report(); process.exit(0); });
