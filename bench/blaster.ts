/**
 * Load generator of the reflector-capacity benchmark (child process, one per
 * target). The same code drives every target:
 *
 *  - mode 'self': the socket sends to itself, so the kernel is the "reflector"
 *    and the process does exactly the per-packet work of a real run (one send
 *    and one receive per packet). Its highest loss-free rate is the generator's
 *    own ceiling: a reflector measured at that rate is generator-limited.
 *  - mode 'twamp': a full TWAMP session is set up with ControlClient
 *    (Request-TW-Session with Padding Length = payload − 14, Start-Sessions),
 *    then TWAMP-Test packets (writeSenderPacket, open layout) are sent to the
 *    reflector's test port and replies are matched on Sender Sequence Number.
 *
 * Step search: each step sends at a fixed rate for stepMs, waits drainMs for
 * stragglers, and counts replies to that step's sequence range. A step passes
 * when loss < maxLoss and the generator really reached the rate (≥ 97 %).
 * After an uncounted 1 s warm-up, rates double until a step fails (a failed
 * step is repeated once, and fails only if the repeat fails too: the machines
 * are shared and noisy), then a few geometric bisection steps narrow the
 * bracket. Everything stays within budgetMs. Drops counted by the kernel on
 * the generator's and the reflector's sockets (/proc/net/udp) tell where a
 * loss happened.
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { ControlClient } from '../src/session/controlClient.js';
import { systemClock } from '../src/session/clock.js';
import { writeSenderPacket, ntpIntervalFromNs } from '../src/protocol/index.js';
import { toParent, failToParent } from './lib.js';

export interface BlastConfig {
  mode: 'self' | 'twamp';
  host: string;
  /** TWAMP-Control port (mode 'twamp'). */
  port: number;
  /** UDP payload of each test packet, ≥ 14 (41 = same size as the reflector's reply). */
  payload: number;
  rates: number[];
  stepMs: number;
  drainMs: number;
  /** Loss fraction a step must stay below, e.g. 0.001 for 0.1 %. */
  maxLoss: number;
  refineSteps: number;
  budgetMs: number;
}

export interface StepResult {
  targetPps: number;
  sent: number;
  /** Rate the generator actually achieved during the step. */
  achievedPps: number;
  received: number;
  lossPercent: number;
  pass: boolean;
  /** The generator could not send at the target rate, or its own socket dropped replies. */
  generatorLimited: boolean;
  /** A repeat of a failed step (a failure counts only when it repeats). */
  retry?: boolean;
  /** Replies dropped by the generator's own socket (receive buffer full), from /proc/net/udp. */
  generatorDrops: number | undefined;
  /** Datagrams dropped by the reflector's test socket during the step, from /proc/net/udp. */
  reflectorDrops: number | undefined;
}

/** The `drops` column of the IPv4 UDP socket bound to 127.0.0.1:port (Linux), else undefined. */
export function udpDrops(port: number): number | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/net/udp', 'utf8');
  } catch {
    return undefined;
  }
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols[1] === local) return Number(cols[cols.length - 1]);
  }
  return undefined;
}

export interface BlastResult {
  type: 'result';
  mode: 'self' | 'twamp';
  steps: StepResult[];
  /** Highest passing rate (pps), undefined if even the first step failed. */
  capacityPps: number | undefined;
  /** Lowest failing rate, undefined if every step passed (capacity is then a lower bound). */
  failedAtPps: number | undefined;
  /** The search stopped because the generator, not the target, could not keep up. */
  generatorLimited: boolean;
  /** The uncounted warm-up step. */
  warmup: StepResult;
  /** Stopped early because of the time bound. */
  budgetExhausted: boolean;
  elapsedMs: number;
}

// Packets sent per event-loop turn at most. libuv reads at most 32 datagrams per
// socket per turn, so a larger batch can starve our own receive path at high
// rates: that shows as drops on OUR socket, which are read from /proc/net/udp
// and turn the step into a generator-limited one instead of reflector loss.
const BATCH = 64;
const RING = 8192;

async function main(cfg: BlastConfig): Promise<BlastResult> {
  const started = Date.now();
  const clock = systemClock();
  const sock: Socket = createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
  await new Promise<void>((r) => sock.bind(0, cfg.host, () => r()));
  const myPort = sock.address().port;
  let client: ControlClient | undefined;
  let targetPort = myPort;
  let seqOffset = 0; // where the sender's sequence number sits in what comes back
  if (cfg.mode === 'twamp') {
    client = await ControlClient.connect({ host: cfg.host, port: cfg.port, timeoutMs: 5000 });
    const acc = await client.requestSession({
      ipvn: 4, senderPort: myPort, receiverPort: 0, senderAddress: cfg.host, receiverAddress: cfg.host,
      paddingLength: cfg.payload - 14, startTime: 0n, timeout: ntpIntervalFromNs(1_000_000_000n), typeP: 0,
    });
    await client.startSessions();
    targetPort = acc.port;
    seqOffset = 24;
  }
  await new Promise<void>((r) => sock.connect(targetPort, cfg.host, () => r()));

  // A ring of packet buffers: a send is normally synchronous (uv_udp_try_send), and a
  // queued one is long done before its buffer comes round again.
  const ring: Buffer[] = [];
  for (let i = 0; i < RING; i++) ring.push(Buffer.alloc(cfg.payload, 0xa5));

  let lo = 0;
  let hi = 0;
  let recv = 0;
  sock.on('message', (msg) => {
    if (msg.length < seqOffset + 4) return;
    const s = msg.readUInt32BE(seqOffset);
    if (s >= lo && s < hi) recv++;
  });
  sock.on('error', () => { /* ICMP errors etc.: counted as loss */ });

  let seq = 0;
  const errorEstimate = clock.errorEstimate;
  const runStep = (rate: number, stepMs = cfg.stepMs): Promise<StepResult> => new Promise((resolve) => {
    const n = Math.round((rate * stepMs) / 1000);
    lo = seq;
    hi = seq + n;
    recv = 0;
    let sent = 0;
    const myDrops0 = udpDrops(myPort);
    const theirDrops0 = targetPort !== myPort ? udpDrops(targetPort) : undefined;
    const stepNs = stepMs * 1e6;
    const t0 = process.hrtime.bigint();
    let elapsed = 0;
    const finish = (): void => {
      const achievedPps = sent / (Math.max(elapsed, 1) / 1e9);
      setTimeout(() => {
        const lossPercent = sent > 0 ? (100 * (sent - recv)) / sent : 100;
        const myDrops1 = udpDrops(myPort);
        const theirDrops1 = targetPort !== myPort ? udpDrops(targetPort) : undefined;
        const generatorDrops = myDrops0 !== undefined && myDrops1 !== undefined ? myDrops1 - myDrops0 : undefined;
        const reflectorDrops = theirDrops0 !== undefined && theirDrops1 !== undefined ? theirDrops1 - theirDrops0 : undefined;
        const lossFree = lossPercent < cfg.maxLoss * 100;
        // In self mode our socket IS the reflector: its drops are the measured loss.
        const ownDropsMatter = cfg.mode === 'twamp' && !lossFree && (generatorDrops ?? 0) > (sent * cfg.maxLoss) / 2;
        const generatorLimited = (sent < n && achievedPps < 0.97 * rate) || ownDropsMatter;
        resolve({
          targetPps: rate, sent, achievedPps, received: recv, lossPercent,
          pass: !generatorLimited && lossFree, generatorLimited, generatorDrops, reflectorDrops,
        });
      }, cfg.drainMs);
    };
    const tick = (): void => {
      elapsed = Number(process.hrtime.bigint() - t0);
      const due = Math.min(n, Math.floor((rate * elapsed) / 1e9) + 1);
      if (sent < due) {
        const t1 = clock.nowNtp();
        let k = 0;
        while (sent < due && k < BATCH) {
          const buf = ring[seq % RING]!;
          writeSenderPacket(buf, { seq, timestamp: t1, errorEstimate });
          sock.send(buf);
          seq = (seq + 1) >>> 0;
          sent++;
          k++;
        }
      }
      if (sent >= n) { elapsed = Number(process.hrtime.bigint() - t0); finish(); return; }
      // Behind schedule by more than 5 % of the step: the generator is the limit.
      if (elapsed > stepNs * 1.05) { finish(); return; }
      const nextDueNs = ((sent + 1) / rate) * 1e9 - elapsed;
      if (nextDueNs > 2e6) setTimeout(tick, 1);
      else setImmediate(tick);
    };
    tick();
  });

  const steps: StepResult[] = [];
  let best: number | undefined;
  let failed: number | undefined;
  let generatorLimited = false;
  let budgetExhausted = false;
  const stepCostMs = cfg.stepMs * 1.05 + cfg.drainMs + 100;
  const haveTime = (): boolean => Date.now() - started + stepCostMs < cfg.budgetMs;
  const run = async (rate: number): Promise<boolean> => {
    let r = await runStep(rate);
    steps.push(r);
    if (!r.pass && !r.generatorLimited && haveTime()) {
      // Shared, noisy machines: a failure counts only if it repeats.
      r = { ...(await runStep(rate)), retry: true };
      steps.push(r);
    }
    if (r.pass) best = Math.max(best ?? 0, rate);
    else {
      failed = Math.min(failed ?? Infinity, rate);
      if (r.generatorLimited) generatorLimited = true;
    }
    return r.pass;
  };
  // Warm-up, not counted: JIT, caches, the reflector's first packets of the session.
  const warmup = await runStep(Math.max(500, Math.round(cfg.rates[0]! / 5)), 1000);
  for (const rate of cfg.rates) {
    if (!haveTime()) { budgetExhausted = true; break; }
    if (!(await run(rate))) break;
  }
  // Narrow the bracket [best, failed) geometrically, to 1,000 pps.
  for (let i = 0; i < cfg.refineSteps && best !== undefined && failed !== undefined; i++) {
    const mid = Math.round(Math.sqrt(best * failed) / 1000) * 1000;
    if (mid <= best || mid >= failed || (failed - best) / best < 0.1) break;
    if (!haveTime()) { budgetExhausted = true; break; }
    // A generator-limited step says nothing about the target above it; keep probing below.
    const wasLimited = generatorLimited;
    await run(mid);
    if (!wasLimited && steps.at(-1)!.generatorLimited) generatorLimited = true;
  }
  if (client) {
    await client.stopSessions(1);
    client.close();
  }
  sock.close();
  return {
    type: 'result', mode: cfg.mode, warmup, steps, capacityPps: best, failedAtPps: failed,
    generatorLimited: generatorLimited && steps.find((s) => s.targetPps === failed)?.generatorLimited === true,
    budgetExhausted, elapsedMs: Date.now() - started,
  };
}

process.once('message', (m) => {
  const cfg = (m as { config: BlastConfig }).config;
  main(cfg).then((r) => {
    toParent(r as unknown as Record<string, unknown>);
    setTimeout(() => process.exit(0), 50);
  }, failToParent);
});
