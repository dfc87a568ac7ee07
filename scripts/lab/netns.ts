/**
 * The lab's network: three namespaces in a line, joined by two veth pairs.
 *
 *   otl-a (sender)            otl-r (router, delay stage)           otl-b (reflector)
 *   otl-a0 198.18.1.1/30 ─── otl-ra 198.18.1.2/30 | otl-rb 198.18.1.5/30 ─── otl-b0 198.18.1.6/30
 *
 * 198.18.0.0/15 is the RFC 2544 benchmarking range; these addresses exist
 * only inside the namespaces, so no lab packet can leave them. The names and
 * the 198.18.1.0/29 block differ from the peers' netns-lab.sh (twa/twb on
 * 198.18.0.0/30), so the two labs never collide.
 *
 * Loss is injected at the endpoints (input hooks of otl-b for the forward
 * path, of otl-a for the return path) so each nft counter sees exactly one
 * direction; delay is added in otl-r, in the middle, by netem on the egress
 * of otl-rb (forward) / otl-ra (return) when the kernel has it, else by the
 * userspace delay relay (delayRelay.ts) with the NAT rules below.
 */
import { must, run } from './proc.js';

/** OTL_LAB_NS_SUFFIX is appended to the namespace names, so concurrent labs do not collide. */
const NS_SUFFIX = (process.env['OTL_LAB_NS_SUFFIX'] ?? '').replace(/[^A-Za-z0-9_-]/g, '').slice(0, 16);
export const NS = { a: `otl-a${NS_SUFFIX}`, r: `otl-r${NS_SUFFIX}`, b: `otl-b${NS_SUFFIX}` } as const;
export const ADDR = { a: '198.18.1.1', ra: '198.18.1.2', rb: '198.18.1.5', b: '198.18.1.6' } as const;
export const IF = { a: 'otl-a0', ra: 'otl-ra', rb: 'otl-rb', b: 'otl-b0' } as const;
/** nft table of the loss rules (in otl-a and otl-b) and of the relay NAT (in otl-r). */
export const LOSS_TABLE = 'otl_lab';
export const RELAY_TABLE = 'otl_relay';

const ALL_NS = [NS.a, NS.r, NS.b];

export function ip(args: string[]): Promise<string> {
  return must('ip', args);
}

export function inNs(ns: string, cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  return must('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

export async function listNs(): Promise<string[]> {
  const r = await run('ip', ['netns', 'list']);
  return r.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter(Boolean);
}

/** Delete the lab's namespaces (and with them their veth ends, rules and qdiscs); quiet if absent. */
export async function teardown(): Promise<string[]> {
  const present = new Set(await listNs());
  const removed: string[] = [];
  for (const ns of ALL_NS) {
    if (!present.has(ns)) continue;
    const r = await run('ip', ['netns', 'del', ns]);
    if (r.code === 0) removed.push(ns);
  }
  return removed;
}

/** Synchronous teardown for exit paths where the event loop may not run again. */
export function teardownSync(spawnSync: (cmd: string, args: string[]) => unknown): void {
  for (const ns of ALL_NS) spawnSync('ip', ['netns', 'del', ns]);
}

export async function setup(): Promise<void> {
  for (const ns of ALL_NS) await ip(['netns', 'add', ns]);
  // Create each veth pair directly inside its namespaces: no name is ever used in the root namespace.
  await ip(['link', 'add', IF.a, 'netns', NS.a, 'type', 'veth', 'peer', 'name', IF.ra, 'netns', NS.r]);
  await ip(['link', 'add', IF.rb, 'netns', NS.r, 'type', 'veth', 'peer', 'name', IF.b, 'netns', NS.b]);
  await ip(['-n', NS.a, 'addr', 'add', `${ADDR.a}/30`, 'dev', IF.a]);
  await ip(['-n', NS.r, 'addr', 'add', `${ADDR.ra}/30`, 'dev', IF.ra]);
  await ip(['-n', NS.r, 'addr', 'add', `${ADDR.rb}/30`, 'dev', IF.rb]);
  await ip(['-n', NS.b, 'addr', 'add', `${ADDR.b}/30`, 'dev', IF.b]);
  for (const [ns, ifs] of [[NS.a, [IF.a]], [NS.r, [IF.ra, IF.rb]], [NS.b, [IF.b]]] as const) {
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    for (const i of ifs) await ip(['-n', ns, 'link', 'set', i, 'up']);
  }
  await ip(['-n', NS.a, 'route', 'add', 'default', 'via', ADDR.ra]);
  await ip(['-n', NS.b, 'route', 'add', 'default', 'via', ADDR.rb]);
  await inNs(NS.r, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
  // Reachability across the router before anything else is trusted (bounded).
  await inNs(NS.a, 'ping', ['-c', '1', '-W', '2', ADDR.b], { timeoutMs: 5000 }).catch(async () => {
    // ping may be absent; a failing TWAMP session would show the same thing later.
    const r = await run('ip', ['netns', 'exec', NS.a, 'ping', '-V']);
    if (r.code === 0) throw new Error(`${NS.a} cannot reach ${ADDR.b} through ${NS.r}`);
  });
}

export async function nftLoad(ns: string, ruleset: string): Promise<void> {
  await inNs(ns, 'nft', ['-f', '-'], { input: ruleset });
}

export async function nftDeleteTable(ns: string, family: string, table: string): Promise<void> {
  await run('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', family, table]);
}

/** Packet counts of the named counters of one table. */
export async function nftCounters(ns: string, family: string, table: string): Promise<Record<string, number>> {
  const out = await inNs(ns, 'nft', ['-j', 'list', 'counters']);
  const doc = JSON.parse(out) as { nftables: Array<Record<string, { family?: string; table?: string; name?: string; packets?: number }>> };
  const counts: Record<string, number> = {};
  for (const item of doc.nftables) {
    const c = item['counter'];
    if (c && c.family === family && c.table === table && c.name !== undefined) counts[c.name] = c.packets ?? 0;
  }
  return counts;
}

/** Whether `tc qdisc … netem` works here (the module may be missing: sch_netem is optional). */
export async function netemAvailable(): Promise<{ ok: boolean; why: string }> {
  await run('modprobe', ['sch_netem']); // best effort; the real test is the qdisc below
  const r = await run('ip', ['netns', 'exec', NS.r, 'tc', 'qdisc', 'add', 'dev', IF.rb, 'root', 'netem', 'delay', '1ms']);
  if (r.code !== 0) return { ok: false, why: (r.stderr.trim() || `tc exit ${r.code}`).split('\n')[0]! };
  await run('ip', ['netns', 'exec', NS.r, 'tc', 'qdisc', 'del', 'dev', IF.rb, 'root']);
  return { ok: true, why: 'tc netem qdisc accepted' };
}

export async function netemSet(dev: string, delayMs: number, jitterMs: number): Promise<void> {
  if (delayMs <= 0 && jitterMs <= 0) return;
  const args = ['qdisc', 'replace', 'dev', dev, 'root', 'netem', 'delay', `${delayMs}ms`];
  // Without a "distribution" netem draws the jitter uniformly in ±jitter, like the userspace relay.
  if (jitterMs > 0) args.push(`${jitterMs}ms`);
  await inNs(NS.r, 'tc', args);
}

export async function netemClear(): Promise<void> {
  for (const dev of [IF.ra, IF.rb]) await run('ip', ['netns', 'exec', NS.r, 'tc', 'qdisc', 'del', 'dev', dev, 'root']);
}
