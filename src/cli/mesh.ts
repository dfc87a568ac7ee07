/**
 * The agent's side of a mesh (docs/configuration.md "Mesh"): reads the mesh
 * definition from a file or an http(s) URL, checks it for a new version every
 * `mesh.interval` (file: size, mtime and content hash; HTTP: ETag and
 * Last-Modified, so an unchanged definition costs a 304 and no parse), and
 * hands each new version's plan for this member to the agent, which starts
 * and stops only the collectors that changed. A definition that cannot be
 * read, does not validate, or does not name this agent keeps the running
 * one; the log says why. Member sets from DNS are resolved again every
 * `interval` of theirs; a change of their members is applied the same way,
 * and a failed resolution keeps the members of the last answer.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import os from 'node:os';
import { readBoundedFile, MAX_CONFIG_FILE_OCTETS } from '../config/load.js';
import { NotAMemberError, meshPairs, parseMesh, pickSelf, planCollectors, planFor, withDnsMembers, type DnsMember, type MeshDefinition, type MeshMemberSet, type MeshPlan } from '../config/mesh.js';
import type { AgentConfig, CollectorConfig, MeshSourceConfig, NamingProfile } from '../config/types.js';
import { formatHostPort } from '../util/net.js';
import type { Logger } from '../util/log.js';
import { MeshResolver, sameMembers } from './meshDns.js';
import { messageOf } from '../util/errors.js';

const isUrl = (s: string): boolean => /^https?:\/\//i.test(s);

/** Bound on one HTTP fetch of the definition. */
const FETCH_TIMEOUT_MS = 10_000;

/**
 * A mesh definition's text, read again only when it may have changed.
 * read() returns the text of a new version, or undefined when the source
 * says (or its content shows) nothing changed since the last read.
 */
class MeshSource {
  private fileStamp: string | undefined;
  private etag: string | undefined;
  private lastModified: string | undefined;
  private hash: string | undefined;

  constructor(readonly source: string, private readonly opts: { timeoutMs?: number; maxOctets?: number } = {}) {}

  /** Forget what was read: the next read() returns the text whatever it is. */
  reset(): void {
    this.fileStamp = this.etag = this.lastModified = this.hash = undefined;
  }

  async read(): Promise<string | undefined> {
    const text = isUrl(this.source) ? await this.readUrl() : await this.readFile();
    if (text === undefined) return undefined;
    const hash = createHash('sha256').update(text).digest('hex');
    if (hash === this.hash) return undefined;
    this.hash = hash;
    return text;
  }

  /** Commit the caller's decision that this version was not applied: read it again next time. */
  forgetContent(): void {
    this.hash = undefined;
    this.fileStamp = undefined;
    this.etag = undefined;
    this.lastModified = undefined;
  }

  private async readFile(): Promise<string | undefined> {
    let st;
    try {
      st = await stat(this.source);
    } catch (e) {
      throw new Error(`cannot read ${this.source}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : messageOf(e)}`);
    }
    const stamp = `${st.size}:${st.mtimeMs}:${st.ino}`;
    if (stamp === this.fileStamp) return undefined;
    let data: Buffer;
    try {
      data = readBoundedFile(this.source, this.opts.maxOctets ?? MAX_CONFIG_FILE_OCTETS);
    } catch (e) {
      throw new Error(`cannot read ${this.source}: ${messageOf(e)}`);
    }
    this.fileStamp = stamp;
    return data.toString('utf8');
  }

  private async readUrl(): Promise<string | undefined> {
    const headers: Record<string, string> = {};
    if (this.etag !== undefined) headers['if-none-match'] = this.etag;
    if (this.lastModified !== undefined) headers['if-modified-since'] = this.lastModified;
    let res: Response;
    try {
      res = await fetch(this.source, { headers, signal: AbortSignal.timeout(this.opts.timeoutMs ?? FETCH_TIMEOUT_MS), redirect: 'follow' });
    } catch (e) {
      const err = e as Error & { cause?: Error };
      throw new Error(`cannot fetch ${this.source}: ${err.name === 'TimeoutError' ? 'timed out' : err.cause?.message ?? err.message}`);
    }
    if (res.status === 304) { await res.body?.cancel(); return undefined; }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new Error(`cannot fetch ${this.source}: HTTP ${res.status} ${res.statusText}`.trimEnd());
    }
    const limit = this.opts.maxOctets ?? MAX_CONFIG_FILE_OCTETS;
    const chunks: Uint8Array[] = [];
    let n = 0;
    if (res.body) {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        n += chunk.length;
        if (n > limit) throw new Error(`cannot fetch ${this.source}: more than the ${limit} octets allowed`);
        chunks.push(chunk);
      }
    }
    this.etag = res.headers.get('etag') ?? undefined;
    this.lastModified = res.headers.get('last-modified') ?? undefined;
    return Buffer.concat(chunks).toString('utf8');
  }
}

/** Every address of this host's interfaces (for mesh.self by address). */
function localAddresses(): string[] {
  return Object.values(os.networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address));
}

export interface LoadedMesh {
  mesh: MeshDefinition;
  plan: MeshPlan;
  collectors: CollectorConfig[];
  /** Why this agent is not a member (then it runs nothing of the mesh; plan.self is ''). */
  notMember?: string;
}

export interface MeshContext {
  config: MeshSourceConfig;
  host: string;
  naming: NamingProfile;
  /** Interval of tests without their own, seconds. */
  defaultInterval: number;
  localAddresses?: () => string[];
}

/** Parse a definition's text and expand it for this agent (members from DNS: none). @throws ConfigError or Error naming the problem. */
export function expandMesh(text: string, ctx: MeshContext): LoadedMesh {
  return expandDefinition(withDnsMembers(parseMesh(text, ctx.config.source, { defaultInterval: ctx.defaultInterval }), {}), ctx);
}

/** Expand a definition (its DNS members applied) for this agent. @throws Error naming the problem. */
function expandDefinition(mesh: MeshDefinition, ctx: MeshContext, o: { allowNotMember?: boolean } = {}): LoadedMesh {
  let self: string;
  try {
    self = pickSelf(mesh, { self: ctx.config.self, host: ctx.host, localAddresses: (ctx.localAddresses ?? localAddresses)() });
  } catch (e) {
    if (!(o.allowNotMember && e instanceof NotAMemberError)) throw e;
    return { mesh, plan: { self: '', senders: [] }, collectors: [], notMember: e.message };
  }
  const plan = planFor(mesh, self, { naming: ctx.naming });
  return { mesh, plan, collectors: planCollectors(plan) };
}

/**
 * What the mesh's reflectors allow one client at once, by the HOST:PORT its
 * TWAMP-Control senders use: the lower of their `max_connections_per_client`
 * and `max_sessions_per_client` (one TWAMP session holds one control
 * connection and one test session). The agent's session gate caps its
 * sessions to each target at that, below `max_sessions_per_reflector` when
 * lower, so a mesh agent is never refused for holding too many.
 */
export function meshDestinationCaps(loaded: LoadedMesh): Map<string, number> {
  const caps = new Map<string, number>();
  const { mesh, plan } = loaded;
  if (!plan.self) return caps;
  const byName = new Map(mesh.members.map((m) => [m.name, m]));
  for (const p of meshPairs(mesh)) {
    if (p.src !== plan.self || mesh.tests[p.test]?.control === false) continue;
    const dst = byName.get(p.dst);
    const r = dst && mesh.reflectors[dst.name];
    if (!dst || !r) continue;
    const limits = [r.maxConnectionsPerClient, r.maxSessionsPerClient].filter((n): n is number => typeof n === 'number');
    if (limits.length > 0) caps.set(formatHostPort(dst.address, dst.port), Math.min(...limits));
  }
  return caps;
}

/** Mesh collector ids that an agent-file collector already uses. */
export function clashingIds(fileCollectors: readonly CollectorConfig[], mesh: readonly CollectorConfig[]): string[] {
  const ids = new Set(fileCollectors.map((c) => c.id));
  return mesh.filter((c) => ids.has(c.id)).map((c) => c.id);
}

/**
 * `agent --check` for a mesh: what this node would run, one line per collector.
 * @throws ConfigError or Error naming the problem.
 */
export async function describeMeshCheck(config: AgentConfig, o: { localAddresses?: () => string[] } = {}): Promise<string> {
  if (!config.mesh) return '';
  const text = await new MeshSource(config.mesh.source).read();
  const parsed = parseMesh(text ?? '', config.mesh.source, { defaultInterval: config.defaultInterval });
  // Member sets: what DNS answers now (a failed query: no members, and a line saying why).
  const resolver = new MeshResolver({ servers: config.mesh.dnsServers ?? [] });
  const found: Record<string, DnsMember[]> = {};
  const setLines: string[] = [];
  for (const set of parsed.memberSets) {
    try {
      found[set.name] = await resolver.resolve(set);
      setLines.push(`  member set ${set.name}: ${set.type} ${set.dns} → ${found[set.name]!.length} member(s)${found[set.name]!.length ? `: ${found[set.name]!.map((m) => m.name).join(', ')}` : ''} (every ${set.intervalMs / 1000} s)`);
    } catch (e) {
      setLines.push(`  member set ${set.name}: ${messageOf(e)}; counted as no members here`);
    }
  }
  const loaded = expandDefinition(withDnsMembers(parsed, found), {
    config: config.mesh, host: config.host, naming: config.naming, defaultInterval: config.defaultInterval,
    ...(o.localAddresses ? { localAddresses: o.localAddresses } : {}),
  });
  const clash = clashingIds(config.collectors, loaded.collectors);
  if (clash.length > 0) throw new Error(`${config.mesh.source}: collector id ${clash.join(', ')} is also used in the agent file`);
  const { mesh, plan } = loaded;
  const lines = [`mesh ${mesh.source}: OK — ${mesh.members.length} member(s), ${mesh.groups.length} group(s), ${Object.keys(mesh.tests).length} test(s); ` +
    `this agent is ${JSON.stringify(plan.self)}${config.mesh.self !== undefined ? '' : ' (found by host name or local address)'}: ` +
    `${plan.senders.length} sender(s), ${plan.reflector ? 'a reflector' : 'no reflector'}`, ...setLines];
  if (plan.reflector) lines.push(`  reflector ${plan.reflector.id} on ${formatHostPort(plan.reflector.listen, plan.reflector.port)}${plan.reflector.lightPort !== undefined ? ` (light UDP ${plan.reflector.lightPort})` : ''}`);
  for (const s of plan.senders) {
    const test = s.labels[config.naming === 'otel' ? 'twamp.mesh.test' : 'mesh_test'];
    lines.push(`  sender ${s.id} to ${formatHostPort(s.reflector, s.port)} test ${test} (every ${s.interval} s, offset ${((s.startOffsetMs ?? 0) / 1000).toFixed(3)} s)`);
  }
  return `${lines.join('\n')}\n`;
}

export interface MeshRunnerOptions extends MeshContext {
  logger: Logger;
  /** Start and stop collectors to match `collectors`; throws to refuse the version (the running one is kept). */
  apply: (collectors: CollectorConfig[], loaded: LoadedMesh) => Promise<{ started: string[]; stopped: string[]; restarted: string[] }>;
  /** Resolves member sets (default: node:dns with `config.dnsServers`). */
  resolver?: Pick<MeshResolver, 'resolve' | 'cancel'>;
}

/** The last answer for a member set's query. */
interface SetAnswer {
  members: DnsMember[];
  /** When to ask again (Date.now() ms). */
  nextAt: number;
  /** Whether the last query failed (the members are those of the answer before). */
  failing: boolean;
}

const setKey = (s: MeshMemberSet): string => `${s.type} ${s.dns}`;

/**
 * Polls the mesh source and the DNS of its member sets, and applies each
 * new combination of definition and members (docs/configuration.md "Mesh").
 */
export class MeshRunner {
  /** Versions applied; 0 until the first. */
  generation = 0;
  /** Versions not applied (unreadable, invalid, not a member, refused). */
  errors = 0;
  /** Member-set resolutions that failed (each kept the members of the last answer). */
  dnsErrors = 0;
  current: LoadedMesh | undefined;
  readonly source: MeshSource;
  private readonly resolver: Pick<MeshResolver, 'resolve' | 'cancel'>;
  /** The last definition that parsed, and a hash of its text. */
  private definition: { mesh: MeshDefinition; hash: string } | undefined;
  private readonly answers = new Map<string, SetAnswer>();
  private sourceNextAt = 0;
  /** Definition and members last tried (applied or refused): the same again is not retried. */
  private attempted: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private polling: Promise<boolean> | undefined;

  constructor(private readonly opts: MeshRunnerOptions) {
    this.source = new MeshSource(opts.config.source);
    this.resolver = opts.resolver ?? new MeshResolver({ servers: opts.config.dnsServers ?? [] });
  }

  /** Read the source (and resolve the member sets) when due, and apply a new version; whether one was applied. Never throws. */
  poll(): Promise<boolean> {
    this.polling ??= this.pollOnce().finally(() => { this.polling = undefined; });
    return this.polling;
  }

  private async pollOnce(): Promise<boolean> {
    const log = this.opts.logger;
    const now = Date.now();
    if (now >= this.sourceNextAt) {
      this.sourceNextAt = now + this.opts.config.intervalMs;
      try {
        const text = await this.source.read();
        if (this.stopped) return false;
        if (text !== undefined) {
          // A bad version is reported once: the source remembers its content and reads it again only when it changes.
          this.definition = { mesh: parseMesh(text, this.opts.config.source, { defaultInterval: this.opts.defaultInterval }), hash: createHash('sha256').update(text).digest('hex') };
        }
      } catch (e) {
        this.errors++;
        log.error(`mesh: ${this.generation > 0 ? 'new version not applied, keeping generation ' + String(this.generation) : 'not applied'}: ${messageOf(e)}`);
        // The running definition stays, and so does the DNS of its member sets.
      }
    }
    const def = this.definition;
    if (!def || this.stopped) return false;
    await this.resolveSets(def.mesh.memberSets);
    if (this.stopped) return false;

    const found: Record<string, DnsMember[]> = {};
    for (const set of def.mesh.memberSets) found[set.name] = this.answers.get(setKey(set))?.members ?? [];
    const attempt = JSON.stringify([def.hash, found]);
    if (attempt === this.attempted) return false;
    this.attempted = attempt;
    let loaded: LoadedMesh;
    try {
      // Not a member (not yet, or no longer): the version applies as running nothing of the mesh.
      loaded = expandDefinition(withDnsMembers(def.mesh, found), this.opts, { allowNotMember: true });
    } catch (e) {
      this.errors++;
      log.error(`mesh: ${this.generation > 0 ? 'new version not applied, keeping generation ' + String(this.generation) : 'not applied'}: ${messageOf(e)}`);
      return false;
    }
    try {
      const out = await this.opts.apply(loaded.collectors, loaded);
      this.generation++;
      this.current = loaded;
      const peer = new Map(loaded.plan.senders.map((s) => [s.id, formatHostPort(s.reflector, s.port)]));
      for (const id of out.started) log.info(`mesh: started ${id}${peer.has(id) ? ` (to ${peer.get(id)})` : ''}`);
      for (const id of out.restarted) log.info(`mesh: restarted ${id} (its settings changed)`);
      for (const id of out.stopped) log.info(`mesh: stopped ${id}`);
      if (loaded.notMember !== undefined) log.warn(`mesh: this agent is not a member of generation ${this.generation}, it runs none of its collectors: ${loaded.notMember}`);
      log.info(`mesh: generation ${this.generation} applied from ${this.opts.config.source}: ` +
        `${loaded.notMember !== undefined ? 'this agent is not a member' : `this agent is ${JSON.stringify(loaded.plan.self)}`}, ` +
        `${loaded.mesh.members.length} member(s), ${loaded.plan.senders.length} sender(s), ${loaded.plan.reflector ? 'a reflector' : 'no reflector'}`);
      return true;
    } catch (e) {
      this.errors++;
      // Try the same again at the next poll.
      this.attempted = undefined;
      log.error(`mesh: new version not applied${this.generation > 0 ? `, keeping generation ${this.generation}` : ''}: ${messageOf(e)}`);
      return false;
    }
  }

  /**
   * Ask DNS again for the sets that are due (new sets at once), in parallel.
   * A change logs one line per member that appeared or vanished; a failure
   * is counted and logged, and keeps the members of the last answer.
   */
  private async resolveSets(sets: readonly MeshMemberSet[]): Promise<void> {
    const log = this.opts.logger;
    const wanted = new Set(sets.map(setKey));
    for (const k of [...this.answers.keys()]) if (!wanted.has(k)) this.answers.delete(k);
    const now = Date.now();
    const due = new Map<string, MeshMemberSet>();
    for (const set of sets) {
      const a = this.answers.get(setKey(set));
      if (!due.has(setKey(set)) && (!a || now >= a.nextAt)) due.set(setKey(set), set);
    }
    await Promise.all([...due.entries()].map(async ([k, set]) => {
      const before = this.answers.get(k);
      const nextAt = Date.now() + Math.min(...sets.filter((x) => setKey(x) === k).map((x) => x.intervalMs));
      let members: DnsMember[];
      try {
        members = await this.resolver.resolve(set);
      } catch (e) {
        if (this.stopped) return;
        this.dnsErrors++;
        const kept = before?.members.length ?? 0;
        // Logged when a set starts failing, not at every retry; the counter counts each.
        if (!before?.failing) log.error(`mesh: ${messageOf(e)}; keeping the ${kept} member(s) of the last answer`);
        this.answers.set(k, { members: before?.members ?? [], nextAt, failing: true });
        return;
      }
      if (this.stopped) return;
      if (before?.failing) log.info(`mesh: ${set.type} ${set.dns} resolves again`);
      this.answers.set(k, { members, nextAt, failing: false });
      if (!before) {
        log.info(`mesh: member set ${set.name}: ${set.type} ${set.dns} has ${members.length} member(s)${members.length ? `: ${members.map(describeDnsMember).join(', ')}` : ''}`);
        return;
      }
      if (sameMembers(before.members, members)) return;
      const old = new Map(before.members.map((m) => [m.name, m]));
      const fresh = new Map(members.map((m) => [m.name, m]));
      for (const m of members) {
        const was = old.get(m.name);
        if (!was) log.info(`mesh: member set ${set.name}: ${m.name} appeared in ${set.type} ${set.dns}${describeWhere(m)}`);
        else if (was.address !== m.address || was.port !== m.port) log.info(`mesh: member set ${set.name}: ${m.name} changed in ${set.type} ${set.dns}${describeWhere(m)}`);
      }
      for (const m of before.members) if (!fresh.has(m.name)) log.info(`mesh: member set ${set.name}: ${m.name} vanished from ${set.type} ${set.dns}`);
    }));
  }

  /** First poll now, then whenever the source or a member set is due. */
  async start(): Promise<void> {
    await this.poll();
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    let next = this.sourceNextAt;
    for (const set of this.definition?.mesh.memberSets ?? []) {
      const a = this.answers.get(setKey(set));
      next = Math.min(next, a ? a.nextAt : 0);
    }
    const delay = Math.max(10, next - Date.now());
    this.timer = setTimeout(() => { void this.poll().finally(() => this.schedule()); }, delay);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.resolver.cancel();
    await this.polling;
  }
}

function describeDnsMember(m: DnsMember): string {
  return m.name === m.address && m.port === undefined ? m.name : `${m.name}${describeWhere(m)}`;
}

function describeWhere(m: DnsMember): string {
  if (m.port !== undefined) return ` (${formatHostPort(m.address, m.port)})`;
  return m.name === m.address ? '' : ` (${m.address})`;
}
