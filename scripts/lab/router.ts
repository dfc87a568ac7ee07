/**
 * Router scenarios of the accuracy lab (`sudo npm run lab`, or alone:
 * `sudo npm run lab -- --only router`): what the packets carried across a
 * real IP router.
 *
 * otl-r forwards between otl-a (sender) and otl-b (reflector) with
 * net.ipv4.ip_forward=1, so the kernel decrements the TTL of every forwarded
 * packet by one: one hop each way. In its forward hook an nftables table
 * re-marks the DSCP of the UDP test packets per direction (TWAMP-Control TCP
 * is not touched): towards the reflector to CS1 (8), towards the sender to
 * AF11 (10), with a named counter per direction.
 *
 * Expected, from both ends sending TTL 255 (RFC 5357 §4.2.1: the reflector
 * copies the received TTL into Sender TTL and sends its reply with TTL 255):
 *  - our sender (`otel-twamp probe --json --dscp ef`) → our reflector (TWAMP):
 *    outbound.hops = 1 (255 − Sender TTL 254) and inbound.hops = 1 (255 −
 *    received TTL 254); the outbound re-mark seen through RFC 7750 (DSCP and
 *    ECN Monitoring, which our reflector offers and our sender chooses):
 *    outbound.dscp.received = CS1 (8), remarkedPackets = every reply; the
 *    reply leaves with the session's DSCP (EF) and arrives re-marked:
 *    inbound.dscp.received = AF11 (10), remarkedPackets = every reply.
 *  - our STAMP sender (`probe --light --format stamp`) → our Light reflector:
 *    the same, the outbound re-mark seen through the RFC 8972 Class of
 *    Service TLV (DSCP2 = CS1); the reflector's default policy refuses DSCP1
 *    (EF) because the request arrived as CS1 (RP = 1 on every reply), so the
 *    reply leaves with CS1 and arrives as AF11.
 *  - twping (`-R` raw records) → our reflector: every record's STTL (the Sender
 *    TTL the reflector reflected) = 254 and RTTL (TTL of the reflection
 *    received) = 254 (twping does not choose RFC 7750).
 *  - our sender → perfSONAR twampd: hops and the inbound re-mark as above;
 *    twampd does not offer RFC 7750, so the outbound DSCP as received stays
 *    unknown (null) and the session works unchanged.
 * The twping/twampd scenarios need the peers (test/helpers/peers.ts).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADDR, NS, inNs, nftCounters, nftDeleteTable, nftLoad } from './netns.js';
import { LineChild, run } from './proc.js';
import { parseTwpingOutput, type Peers } from '../../test/helpers/peers.js';

const HERE = dirname(fileURLToPath(import.meta.url)); // dist/scripts/lab
const CLI = join(HERE, '..', '..', 'src', 'cli', 'main.js');

export const MARK_TABLE = 'otl_mark';
/** DSCP code points (RFC 2474 / RFC 4594 names). */
export const DSCP = { ef: 46, cs1: 8, af11: 10 } as const;
/** What the router sets: towards the reflector, towards the sender. */
export const REMARK = { fwd: 'cs1', ret: 'af11' } as const;
export const ROUTER_TRAFFIC = { n: 100, padding: 158 } as const; // g711: 50 pps, 200 octets at IP level
/** UDP port of our Light / STAMP reflector in otl-b (lightChild.js). */
const LIGHT_PORT = 8622;
/** TTL / hop limit both ends send (RFC 5357 §4.2.1) and what one router leaves of it. */
const TTL_SENT = 255;
const HOPS = 1;

export interface RouterCheck { what: string; ok: boolean; detail: string }
export interface RouterRow {
  name: string;
  checks: RouterCheck[];
  /** What was seen, for the report. */
  seen: Record<string, unknown>;
  remarked: { fwd: number; ret: number };
}

/** The re-marking rules for otl-r (forward hook: only forwarded packets, never the router's own). */
export function markRules(): string {
  return `table inet ${MARK_TABLE} {
  counter fwd_marked { }
  counter ret_marked { }
  chain forward {
    type filter hook forward priority mangle; policy accept;
    ip saddr ${ADDR.a} ip daddr ${ADDR.b} meta l4proto udp ip dscp set ${REMARK.fwd} counter name fwd_marked
    ip saddr ${ADDR.b} ip daddr ${ADDR.a} meta l4proto udp ip dscp set ${REMARK.ret} counter name ret_marked
  }
}
`;
}

function eq(what: string, got: unknown, want: unknown): RouterCheck {
  return { what, ok: got === want, detail: `${what}: measured ${got === undefined || got === null ? '—' : String(got)}, expected ${String(want)}` };
}

interface ProbeDscp {
  sent: number | null;
  received: number | null;
  remarkedPackets: number | null;
  reportedBy?: 'rfc7750' | 'cos-tlv' | null;
  replyDscpRefused?: number | null;
}
interface ProbeJson {
  exitCode?: number;
  error?: unknown;
  traffic?: { txPackets?: number } | null;
  roundTrip?: { samples: number } | null;
  outbound?: { hops: { min: number; max: number } | null; dscp: ProbeDscp } | null;
  inbound?: { hops: { min: number; max: number } | null; dscp: ProbeDscp } | null;
  timestamps?: { source: string } | null;
}

/** Our sender: one probe session from otl-a, as `otel-twamp probe --json` (`extra`: e.g. --light --format stamp). */
async function ourSender(target: string, rtPrefix: string[], extra: string[] = []): Promise<ProbeJson & { raw: string }> {
  const r = await run('ip', ['netns', 'exec', NS.a, ...rtPrefix, process.execPath, CLI, 'probe', target, '-m', 'g711',
    '-c', String(ROUTER_TRAFFIC.n), '--dscp', 'ef', '--reply-timeout', '1', '--json', '-q', ...extra], { timeoutMs: 30_000 });
  try {
    return { ...(JSON.parse(r.stdout) as ProbeJson), raw: r.stdout };
  } catch {
    throw new Error(`probe in ${NS.a} printed no JSON (exit ${r.code ?? r.signal}${r.timedOut ? ', timed out' : ''}): ${r.stderr.trim().slice(-600)}`);
  }
}

/**
 * How the outbound DSCP as received at the reflector is expected to show: through RFC 7750 or the
 * STAMP CoS TLV (re-marked to cs1 on every packet), or not at all (a reflector that reports neither).
 */
type OutboundReport = 'rfc7750' | 'cos-tlv' | null;

function senderChecks(row: RouterRow, j: ProbeJson, report: OutboundReport): void {
  const ch = row.checks;
  const hopsText = (h: { min: number; max: number } | null | undefined): string | undefined =>
    h ? (h.min === h.max ? String(h.min) : `${h.min}–${h.max}`) : undefined;
  const sent = j.traffic?.txPackets;
  const got = j.roundTrip?.samples;
  const out = j.outbound?.dscp;
  const inb = j.inbound?.dscp;
  row.seen = {
    sent, replies: got, outHops: hopsText(j.outbound?.hops), inHops: hopsText(j.inbound?.hops),
    dscpSent: out?.sent, dscpOutReceived: out?.received, outRemarked: out?.remarkedPackets, outReportedBy: out?.reportedBy,
    replyDscpRefused: out?.replyDscpRefused, dscpInSent: inb?.sent, dscpReceived: inb?.received, remarked: inb?.remarkedPackets,
    timestamps: j.timestamps?.source,
  };
  ch.push(eq('session', j.exitCode, 0));
  ch.push(eq('replies', got, ROUTER_TRAFFIC.n));
  // 255 − the Sender TTL the reflector reflected (RFC 5357 §4.2.1).
  ch.push(eq('outbound hops (255 − Sender TTL)', hopsText(j.outbound?.hops), String(HOPS)));
  ch.push(eq('inbound hops (255 − TTL received)', hopsText(j.inbound?.hops), String(HOPS)));
  ch.push(eq('DSCP sent', out?.sent, DSCP.ef));
  // Outbound as received at the reflector: the re-mark to cs1, reported by RFC 7750 / the CoS TLV, or unknown.
  ch.push(eq('outbound DSCP reported by', out?.reportedBy ?? null, report));
  ch.push(eq(`outbound DSCP received at the reflector${report ? ` (re-marked to ${REMARK.fwd})` : ' (not reported)'}`,
    out?.received, report ? DSCP[REMARK.fwd] : null));
  ch.push(eq('outbound re-marked packets', out?.remarkedPackets, report ? got : null));
  // The reply's marking: the session DSCP (Type-P / CoS DSCP1), or, CoS DSCP1 refused by our Light reflector's
  // default policy (it arrived as cs1), the DSCP it arrived with (RP = 1).
  const replyDscp = report === 'cos-tlv' ? DSCP[REMARK.fwd] : DSCP.ef;
  if (report === 'cos-tlv') ch.push(eq('replies whose reflector refused DSCP1 (RP 1)', out?.replyDscpRefused, got));
  ch.push(eq('inbound DSCP sent (the reply\'s marking)', inb?.sent, replyDscp));
  ch.push(eq(`inbound DSCP received (re-marked to ${REMARK.ret})`, inb?.received, DSCP[REMARK.ret]));
  ch.push(eq('inbound re-marked packets = replies', inb?.remarkedPackets, got));
}

async function twpingRun(peers: Peers, target: string, rtPrefix: string[]): Promise<RouterRow['seen'] & { checks: RouterCheck[] }> {
  const args = ['-c', String(ROUTER_TRAFFIC.n), '-i', '0.02f', '-s', String(ROUTER_TRAFFIC.padding), '-R', target];
  const r = await run('ip', ['netns', 'exec', NS.a, ...rtPrefix, peers.twping, ...args], { timeoutMs: 30_000 });
  const parsed = parseTwpingOutput(r.stdout, r.stderr);
  const raw = parsed.raw ?? [];
  const answered = raw.filter((x) => !x.lost);
  const values = (k: 'senderTtl' | 'reflectedTtl'): string => [...new Set(answered.map((x) => x[k]))].sort((a, b) => a - b).join(',');
  const checks: RouterCheck[] = [
    eq('twping exit', r.code, 0),
    eq('replies', answered.length, ROUTER_TRAFFIC.n),
    // STTL: the Sender TTL field the reflector filled in = the TTL the test packet arrived with.
    eq('STTL of every record (outbound: 1 hop)', values('senderTtl'), String(TTL_SENT - HOPS)),
    // RTTL: the TTL the reflection arrived with at twping.
    eq('RTTL of every record (inbound: 1 hop)', values('reflectedTtl'), String(TTL_SENT - HOPS)),
  ];
  if (r.code !== 0) checks.push({ what: 'twping stderr', ok: false, detail: r.stderr.trim().slice(-400) });
  return { checks, replies: answered.length, sttl: values('senderTtl'), rttl: values('reflectedTtl') };
}

/** perfSONAR twampd in otl-b, as test/helpers/peers.ts starts it (scripts/lab/twampdChild.ts). */
async function startTwampdIn(port: number): Promise<LineChild> {
  const c = new LineChild('twampd', 'ip', ['netns', 'exec', NS.b, process.execPath, join(HERE, 'twampdChild.js'), ADDR.b, String(port)]);
  await c.waitLine('READY', 15_000);
  return c;
}

/** Our Light / STAMP reflector in otl-b (lightChild.js), default DSCP1 policy. */
async function startLightIn(port: number): Promise<LineChild> {
  const c = new LineChild('light reflector', 'ip', ['netns', 'exec', NS.b, process.execPath, join(HERE, 'lightChild.js'), ADDR.b, String(port)]);
  await c.waitLine('READY', 10_000);
  return c;
}

export interface RouterContext {
  peers: Peers | undefined;
  peersMissing: string | undefined;
  /** Our reflector, listening on ADDR.b:controlPort in otl-b. */
  controlPort: number;
  twampdPort: number;
  rtPrefix: string[];
  log: (s: string) => void;
}

export async function routerScenarios(ctx: RouterContext): Promise<RouterRow[]> {
  const rows: RouterRow[] = [];
  // A real forward: the kernel of otl-r decrements the TTL (netns.ts set it; assert it, the hop counts depend on it).
  const fwd = (await inNs(NS.r, 'sysctl', ['-n', 'net.ipv4.ip_forward'])).trim();
  if (fwd !== '1') throw new Error(`net.ipv4.ip_forward is ${fwd} in ${NS.r}: the router does not forward`);
  await nftDeleteTable(NS.r, 'inet', MARK_TABLE);
  await nftLoad(NS.r, markRules());
  try {
    const list: Array<{ name: string; needsPeers: boolean; go: (row: RouterRow) => Promise<void> }> = [
      {
        name: 'our sender → our reflector', needsPeers: false,
        go: async (row) => senderChecks(row, await ourSender(`${ADDR.b}:${ctx.controlPort}`, ctx.rtPrefix), 'rfc7750'),
      },
      {
        name: 'our STAMP sender → our Light reflector', needsPeers: false,
        go: async (row) => {
          const l = await startLightIn(LIGHT_PORT);
          try {
            senderChecks(row, await ourSender(`${ADDR.b}:${LIGHT_PORT}`, ctx.rtPrefix, ['--light', '--format', 'stamp']), 'cos-tlv');
          } finally {
            await l.stop();
          }
        },
      },
      {
        name: 'twping → our reflector', needsPeers: true,
        go: async (row) => {
          const { checks, ...seen } = await twpingRun(ctx.peers!, `${ADDR.b}:${ctx.controlPort}`, ctx.rtPrefix);
          row.checks.push(...checks);
          row.seen = seen;
        },
      },
      {
        name: 'our sender → twampd', needsPeers: true,
        go: async (row) => {
          const d = await startTwampdIn(ctx.twampdPort);
          try {
            senderChecks(row, await ourSender(`${ADDR.b}:${ctx.twampdPort}`, ctx.rtPrefix), null);
          } catch (e) {
            await d.stop();
            throw new Error(`${e instanceof Error ? e.message : String(e)}; twampd log: ${d.stderr.trim().slice(-1500)}`);
          } finally {
            await d.stop();
          }
        },
      },
    ];
    for (const [i, sc] of list.entries()) {
      const row: RouterRow = { name: sc.name, checks: [], seen: {}, remarked: { fwd: 0, ret: 0 } };
      rows.push(row);
      ctx.log(`[router ${i + 1}/${list.length}] ${sc.name}: TTL −1 and DSCP → ${REMARK.fwd} / ${REMARK.ret} in ${NS.r} … `);
      if (sc.needsPeers && !ctx.peers) {
        row.checks.push({ what: 'peers', ok: false, detail: `perfSONAR twping/twampd not available: ${ctx.peersMissing ?? '?'}` });
        ctx.log('FAIL (no peers)\n');
        continue;
      }
      const before = await nftCounters(NS.r, 'inet', MARK_TABLE);
      try {
        await sc.go(row);
      } catch (e) {
        row.checks.push({ what: 'run', ok: false, detail: e instanceof Error ? e.message : String(e) });
      }
      const after = await nftCounters(NS.r, 'inet', MARK_TABLE);
      row.remarked = {
        fwd: (after['fwd_marked'] ?? 0) - (before['fwd_marked'] ?? 0),
        ret: (after['ret_marked'] ?? 0) - (before['ret_marked'] ?? 0),
      };
      // The router's rule fired on every test packet each way (else the scenario proves nothing).
      row.checks.push(eq('router re-marked forward (test packets)', row.remarked.fwd, ROUTER_TRAFFIC.n));
      row.checks.push(eq('router re-marked return (reflections)', row.remarked.ret, ROUTER_TRAFFIC.n));
      const failed = row.checks.filter((c) => !c.ok);
      ctx.log(failed.length ? `FAIL (${failed.map((c) => c.what).join('; ')})\n` : 'PASS\n');
    }
  } finally {
    await nftDeleteTable(NS.r, 'inet', MARK_TABLE);
  }
  return rows;
}

export function routerReport(rows: RouterRow[]): string[] {
  const out: string[] = [];
  out.push(`\nROUTER (${NS.r} forwards: TTL −1 each way; nft re-marks DSCP to ${REMARK.fwd} (${DSCP[REMARK.fwd]}) towards the reflector, ` +
    `${REMARK.ret} (${DSCP[REMARK.ret]}) towards the sender; ${ROUTER_TRAFFIC.n} g711 packets, sender DSCP ef)`);
  const v = (x: unknown): string => (x === undefined || x === null || x === '' ? '—' : String(x));
  for (const r of rows) {
    const s = r.seen;
    const what = 'sttl' in s
      ? `STTL ${v(s['sttl'])}, RTTL ${v(s['rttl'])}, replies ${v(s['replies'])}`
      : `hops out ${v(s['outHops'])} / in ${v(s['inHops'])}, DSCP out sent ${v(s['dscpSent'])} received ${v(s['dscpOutReceived'])}` +
        ` (${v(s['outReportedBy'])}), remarked ${v(s['outRemarked'])}; in sent ${v(s['dscpInSent'])} received ${v(s['dscpReceived'])}, ` +
        `remarked ${v(s['remarked'])}/${v(s['replies'])}, timestamps ${v(s['timestamps'])}`;
    out.push(`  ${r.checks.every((c) => c.ok) ? 'PASS' : 'FAIL'}  ${r.name.padEnd(38)} ${what}; router re-marked ${r.remarked.fwd} fwd / ${r.remarked.ret} ret`);
  }
  out.push(`  expected: hops 1 each way (STTL = RTTL = 254); outbound DSCP ${REMARK.fwd} (${DSCP[REMARK.fwd]}) as the reflector reports it`);
  out.push('  (RFC 7750 from our reflector, the CoS TLV from our Light reflector; twampd reports none: unknown);');
  out.push(`  inbound DSCP ${REMARK.ret} (${DSCP[REMARK.ret]}) on every reply (the Light reflector refuses DSCP1 ef: the request arrived as ${REMARK.fwd}).`);
  return out;
}
