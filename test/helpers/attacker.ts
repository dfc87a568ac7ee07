// Worker for test/e2e/adversarial.test.ts: misbehaving TWAMP-Control clients
// and a UDP flood, on their own event loop so the reflector under test gets
// the main one. Started with workerData; does nothing when run as a file.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { connect, type Socket } from 'node:net';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';

export interface AttackPlan {
  host: string;
  controlPort: number;
  /** Control connections to make in all. */
  connections: number;
  /** At most this many attacker connections open at once. */
  concurrency: number;
  /** Stop making new connections after this long. */
  maxMs: number;
  /** UDP datagrams per 10 ms tick. */
  udpPerTick: number;
  /**
   * Range for the random-port part of the flood: ports no other socket
   * uses; the legitimate sender's test port is skipped anyway once known.
   */
  randomPorts: [number, number];
}

export interface AttackReport {
  made: Record<'half_open' | 'garbage' | 'bad_setup' | 'hangup' | 'bad_command', number>;
  connectErrors: number;
  udpSent: number;
  udpToSession: number;
  peakOpen: number;
  ms: number;
}

type Kind = keyof AttackReport['made'];
const KINDS: Kind[] = ['half_open', 'garbage', 'bad_setup', 'hangup', 'bad_command'];

function openSetup(): Buffer {
  // Set-Up-Response choosing open mode (Mode 1), all else zero: 164 octets.
  const b = Buffer.alloc(164);
  b.writeUInt32BE(1, 0);
  return b;
}

async function run(plan: AttackPlan): Promise<AttackReport> {
  const t0 = Date.now();
  const report: AttackReport = {
    made: { half_open: 0, garbage: 0, bad_setup: 0, hangup: 0, bad_command: 0 },
    connectErrors: 0, udpSent: 0, udpToSession: 0, peakOpen: 0, ms: 0,
  };
  const open = new Set<Socket>();
  let sessionPorts: number[] = [];
  /** The legitimate sender's own test ports: a real attacker could hit them, but that tests the client, not us. */
  const avoid = new Set<number>();
  let stop = false;
  parentPort!.on('message', (m: { sessionPort?: number; senderPort?: number; stop?: boolean }) => {
    if (m.sessionPort) sessionPorts = [...sessionPorts, m.sessionPort];
    if (m.senderPort) avoid.add(m.senderPort);
    if (m.stop) stop = true;
  });

  // UDP flood: random datagrams to the session ports (spoofing nothing: wrong source port),
  // to random unused ports, and to the control port.
  const udps: UdpSocket[] = [];
  for (let i = 0; i < 4; i++) {
    const u = createSocket('udp4');
    u.on('error', () => undefined);
    await new Promise<void>((r) => u.bind(0, plan.host, () => r()));
    udps.push(u);
  }
  const junk = randomBytes(1500);
  const flood = setInterval(() => {
    for (let i = 0; i < plan.udpPerTick; i++) {
      const u = udps[i % udps.length]!;
      const len = 1 + ((i * 131) % 1400);
      const pick = i % 4;
      let port: number;
      if (pick <= 1 && sessionPorts.length) { port = sessionPorts[i % sessionPorts.length]!; report.udpToSession++; }
      else if (pick === 2) port = plan.controlPort;
      else {
        port = plan.randomPorts[0] + Math.floor(Math.random() * (plan.randomPorts[1] - plan.randomPorts[0]));
        if (avoid.has(port)) continue;
      }
      u.send(junk, 0, len, port, plan.host);
      report.udpSent++;
    }
  }, 10);

  const one = (kind: Kind): Promise<void> => new Promise<void>((resolve) => {
    const s = connect({ host: plan.host, port: plan.controlPort });
    open.add(s);
    report.peakOpen = Math.max(report.peakOpen, open.size);
    const hold = 200 + Math.floor(Math.random() * 2500);
    let timer: NodeJS.Timeout | undefined;
    const done = (): void => { if (timer) clearTimeout(timer); open.delete(s); resolve(); };
    s.on('error', () => { report.connectErrors++; });
    s.on('close', done);
    s.on('connect', () => {
      report.made[kind]++;
      switch (kind) {
        case 'half_open': break; // say nothing
        case 'hangup': s.destroy(); return;
        case 'garbage': s.write(randomBytes(1 + Math.floor(Math.random() * 300))); break;
        case 'bad_setup': { const b = randomBytes(164); s.write(b); break; } // random Mode / key
        case 'bad_command': s.write(Buffer.concat([openSetup(), randomBytes(16)])); break;
      }
      timer = setTimeout(() => s.destroy(), hold);
    });
  });

  const pending = new Set<Promise<void>>();
  for (let i = 0; i < plan.connections && Date.now() - t0 < plan.maxMs; i++) {
    while (pending.size >= plan.concurrency) await Promise.race(pending);
    const p = one(KINDS[i % KINDS.length]!);
    pending.add(p);
    void p.then(() => pending.delete(p));
    if (i % 50 === 49) await new Promise((r) => setImmediate(r));
  }
  await Promise.all(pending);
  while (!stop && Date.now() - t0 < plan.maxMs) await new Promise((r) => setTimeout(r, 50));
  clearInterval(flood);
  for (const s of open) s.destroy();
  for (const u of udps) u.close();
  report.ms = Date.now() - t0;
  return report;
}

if (!isMainThread && parentPort && workerData) {
  void run(workerData as AttackPlan).then((r) => parentPort!.postMessage({ report: r }));
}
