/**
 * The lab's scenarios and the nftables rules that impair them.
 *
 * Loss (exact assertions). The sender's loss split (src/measure/stats.ts):
 *   rt  = sent − distinct answered
 *   out = (highest answered sender seq + 1) − reflections sent,
 *         reflections sent = highest reflector seq received + 1
 *   in  = reflections sent − reflections received
 * so a loss AFTER the last answered packet (the tail) cannot be attributed
 * to a direction and is counted in rt only. The random drops therefore only
 * hit packets whose sender sequence number is below N − 1 (N − k − 1 in the
 * tail scenario): the last packet always makes the round trip, the highest
 * answered seq is N − 1 and the highest reflector seq is the last reflection,
 * and then out, in and rt are exactly the counters of the drop rules. The
 * sequence number is read from the UDP payload with nft raw payload
 * expressions: octets 0–3 of a sender packet (`@th,64,32`: 64 bits past the
 * start of the UDP header), octets 24–27 of a reflected one (`@th,256,32`,
 * RFC 5357 §4.2.1 unauthenticated layout).
 * The tail scenario drops the last k reflections on purpose and asserts the
 * definition: those k appear in rt only, not in `in`.
 */
import { ADDR, LOSS_TABLE } from './netns.js';

export interface Impair { delayMs: number; jitterMs: number }

export interface LossScenario {
  kind: 'loss';
  name: string;
  /** Random drop percentage of sender packets arriving at the reflector (namespace otl-b). */
  fwdPct: number;
  /** Random drop percentage of reflected packets arriving at the sender (namespace otl-a). */
  retPct: number;
  /** Drop the reflections of the last `tailK` sender packets on the return path (tail loss). */
  tailK: number;
}

export interface DelayScenario {
  kind: 'delay';
  name: string;
  fwd: Impair;
  ret: Impair;
  /** The reference the delay rises are measured against. */
  baseline?: 'kernel' | 'stage';
  /** Whether the delay stage is in the path (userspace relay or netem qdiscs). */
  stage: boolean;
}

export type Scenario = LossScenario | DelayScenario;

/** Loss runs: cbr 200-octet packets at 500 pps; delay runs: g711 (50 pps, 20 ms apart). */
export const LOSS_TRAFFIC = { n: 1000, model: 'cbr', size: 200, bandwidth: 800_000 } as const;
export const DELAY_TRAFFIC = { n: 150, model: 'g711' } as const;

export function scenarios(netem: boolean): Scenario[] {
  const none: Impair = { delayMs: 0, jitterMs: 0 };
  const list: Scenario[] = [
    { kind: 'loss', name: 'no impairment', fwdPct: 0, retPct: 0, tailK: 0 },
    { kind: 'loss', name: 'forward loss only', fwdPct: 10, retPct: 0, tailK: 0 },
    { kind: 'loss', name: 'return loss only', fwdPct: 0, retPct: 10, tailK: 0 },
    { kind: 'loss', name: 'loss both ways', fwdPct: 5, retPct: 15, tailK: 0 },
    { kind: 'loss', name: 'tail loss (rt only)', fwdPct: 10, retPct: 0, tailK: 5 },
    { kind: 'delay', name: 'delay baseline (kernel)', fwd: none, ret: none, stage: false, ...(netem ? { baseline: 'kernel' as const } : {}) },
  ];
  // Through the userspace relay even "0 ms" costs two socket hops; its own baseline cancels that.
  if (!netem) list.push({ kind: 'delay', name: 'delay baseline (relay 0 ms)', fwd: none, ret: none, stage: true, baseline: 'stage' });
  list.push(
    { kind: 'delay', name: 'forward delay', fwd: { delayMs: 20, jitterMs: 0 }, ret: none, stage: true },
    { kind: 'delay', name: 'return delay', fwd: none, ret: { delayMs: 20, jitterMs: 0 }, stage: true },
    { kind: 'delay', name: 'both, return jitter', fwd: { delayMs: 10, jitterMs: 0 }, ret: { delayMs: 15, jitterMs: 5 }, stage: true },
  );
  return list;
}

export function describeImpairment(s: Scenario): string {
  if (s.kind === 'loss') {
    const parts: string[] = [];
    if (s.fwdPct) parts.push(`fwd ${s.fwdPct}% random`);
    if (s.retPct) parts.push(`ret ${s.retPct}% random`);
    if (s.tailK) parts.push(`ret last ${s.tailK}`);
    return parts.length ? parts.join(', ') : 'none';
  }
  const d = (i: Impair) => (i.delayMs || i.jitterMs ? `+${i.delayMs}${i.jitterMs ? `±${i.jitterMs}` : ''} ms` : '0');
  if (!s.stage) return 'none (kernel fwd)';
  return `fwd ${d(s.fwd)}, ret ${d(s.ret)}`;
}

/** Forward rules, loaded in otl-b: count every test packet, the eligible ones, and drop some. */
export function forwardRules(testPort: number, limitSeq: number, pct: number): string {
  const match = `ip saddr ${ADDR.a} udp dport ${testPort}`;
  return `table inet ${LOSS_TABLE} {
  counter fwd_seen { }
  counter fwd_eligible { }
  counter fwd_drop { }
  chain input {
    type filter hook input priority filter; policy accept;
    ${match} counter name fwd_seen
    ${match} @th,64,32 < ${limitSeq} counter name fwd_eligible
${pct > 0 ? `    ${match} @th,64,32 < ${limitSeq} numgen random mod 100 < ${pct} counter name fwd_drop drop\n` : ''}  }
}
`;
}

/** Return rules, loaded in otl-a (reflected packets: sender seq at payload octet 24). */
export function returnRules(testPort: number, limitSeq: number, pct: number, tailFrom: number | undefined): string {
  const match = `ip saddr ${ADDR.b} udp sport ${testPort}`;
  return `table inet ${LOSS_TABLE} {
  counter ret_seen { }
  counter ret_eligible { }
  counter ret_drop { }
  counter tail_drop { }
  chain input {
    type filter hook input priority filter; policy accept;
    ${match} counter name ret_seen
    ${match} @th,256,32 < ${limitSeq} counter name ret_eligible
${pct > 0 ? `    ${match} @th,256,32 < ${limitSeq} numgen random mod 100 < ${pct} counter name ret_drop drop\n` : ''}${tailFrom !== undefined ? `    ${match} @th,256,32 >= ${tailFrom} counter name tail_drop drop\n` : ''}  }
}
`;
}

/** NAT rules in otl-r that steer one test session's UDP through the userspace relay (see delayRelay.ts). */
export function relayRules(table: string, ifFromA: string, ifToB: string, testPort: number, outerPort: number): string {
  return `table ip ${table} {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "${ifFromA}" ip saddr ${ADDR.a} ip daddr ${ADDR.b} udp dport ${testPort} redirect to :${outerPort}
  }
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "${ifToB}" ip saddr ${ADDR.rb} ip daddr ${ADDR.b} udp dport ${testPort} snat ip to ${ADDR.a}
  }
}
`;
}
