/**
 * Sender-side measurements, each in a fresh process (child of bench/run.ts):
 *
 *  - 'departure': PacedSender (src/session/pacer.ts) driven by the process
 *    clock, each departure a real 41-octet UDP send over loopback to a socket
 *    this process reads (standing in for the replies a sender receives).
 *    Records |actual − scheduled| departure time per packet, where scheduled
 *    = first departure + seq · gap (the pacer's own schedule: packet 0 leaves
 *    at its t0), and the mean-rate error over the run.
 *  - 'cpu': one real session, TwampSender.runOnce (cbr model) against a
 *    reflector in another process; process.cpuUsage() around runOnce only
 *    (so Node's own start-up is not counted).
 */
import { createSocket, type Socket } from 'node:dgram';
import { PacedSender } from '../src/session/pacer.js';
import { systemClock } from '../src/session/clock.js';
import { writeSenderPacket } from '../src/protocol/index.js';
import { quantile } from '../src/measure/percentiles.js';
import { TwampSender } from '../src/sender.js';
import { toParent, failToParent } from './lib.js';
import { parseSenderConfig } from '../src/config/index.js';

export interface DepartureResult {
  ratePps: number;
  packets: number;
  /** |actual − scheduled| departure, microseconds. */
  p50Us: number;
  p90Us: number;
  p99Us: number;
  maxUs: number;
  /** Share of departures more than 1 ms off schedule, percent. */
  over1msPercent: number;
  /** Mean rate between first and last departure, and its error against the nominal rate (percent). */
  achievedPps: number;
  meanRateErrorPercent: number;
  cpuMsPer1000: number;
  /** CPU time over wall time of the run, percent of one core. */
  cpuPercent: number;
}

export interface CpuResult {
  ok: boolean;
  error?: string;
  packets: number;
  ratePps: number;
  txPackets: number;
  rxPackets: number;
  wallMs: number;
  userMs: number;
  systemMs: number;
}

async function bindLoopback(): Promise<Socket> {
  const s = createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

async function departure(rate: number, packets: number): Promise<DepartureResult> {
  const clock = systemClock();
  const sink = await bindLoopback();
  let received = 0;
  sink.on('message', () => { received++; });
  const sock = await bindLoopback();
  await new Promise<void>((r) => sock.connect(sink.address().port, '127.0.0.1', () => r()));
  const gapNs = 1e9 / rate;
  const actual = new Float64Array(packets);
  const buf = Buffer.alloc(41);
  const errorEstimate = clock.errorEstimate;
  const cpu0 = process.cpuUsage();
  const w0 = performance.now();
  const base = clock.monoNs();
  await new PacedSender(clock).run(packets, (seq) => {
    actual[seq] = Number(clock.monoNs() - base);
    writeSenderPacket(buf, { seq, timestamp: clock.nowNtp(), errorEstimate });
    sock.send(buf);
    return gapNs;
  });
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - w0;
  await new Promise((r) => setTimeout(r, 100));
  sock.close();
  sink.close();
  const err = new Float64Array(packets);
  // Schedule origin: the first departure (the pacer sends packet 0 at once, at its own t0).
  for (let i = 0; i < packets; i++) err[i] = Math.abs(actual[i]! - actual[0]! - i * gapNs) / 1000;
  err.sort();
  let over = 0;
  for (const e of err) if (e > 1000) over++;
  const achievedPps = ((packets - 1) * 1e9) / (actual[packets - 1]! - actual[0]!);
  return {
    ratePps: rate, packets,
    p50Us: quantile(err, 0.5)!, p90Us: quantile(err, 0.9)!, p99Us: quantile(err, 0.99)!, maxUs: err[packets - 1]!,
    over1msPercent: (100 * over) / packets,
    achievedPps, meanRateErrorPercent: (100 * (achievedPps - rate)) / rate,
    cpuMsPer1000: ((cpu.user + cpu.system) / 1000) * (1000 / packets),
    cpuPercent: (100 * (cpu.user + cpu.system)) / 1000 / wallMs,
  };
}

async function cpuSession(port: number, rate: number, packets: number): Promise<CpuResult> {
  const sizeIp = 69; // 41-octet UDP payload over IPv4, as twping -s 27
  const sender = new TwampSender(parseSenderConfig({
    id: 'bench-cpu', reflector: '127.0.0.1', port, n_packets: packets, model: 'cbr',
    size: sizeIp, bandwidth: sizeIp * 8 * rate, reply_timeout: 1, control_timeout: 5,
  }));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const out = await sender.runOnce();
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - t0;
  const base = { packets, ratePps: rate, wallMs, userMs: cpu.user / 1000, systemMs: cpu.system / 1000 };
  if (!out.ok) return { ok: false, error: out.error.message, txPackets: 0, rxPackets: 0, ...base };
  const s = out.result.session.stats;
  return { ok: true, txPackets: s.txPackets, rxPackets: s.rxPackets, ...base };
}

process.once('message', (m) => {
  const msg = m as { type: string; rate: number; packets: number; port?: number };
  const job = msg.type === 'departure' ? departure(msg.rate, msg.packets) : cpuSession(msg.port!, msg.rate, msg.packets);
  job.then((r) => {
    toParent({ type: 'result', result: r });
    setTimeout(() => process.exit(0), 50);
  }, failToParent);
});
