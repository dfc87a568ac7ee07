/**
 * The agent's side of a mesh (docs/configuration.md "Mesh"): reads the mesh
 * definition from a file or an http(s) URL, checks it for a new version every
 * `mesh.interval` (file: size, mtime and content hash; HTTP: ETag and
 * Last-Modified, so an unchanged definition costs a 304 and no parse), and
 * hands each new version's plan for this member to the agent, which starts
 * and stops only the collectors that changed. A definition that cannot be
 * read, does not validate, or does not name this agent keeps the running
 * one; the log says why.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import os from 'node:os';
import { readBoundedFile, MAX_CONFIG_FILE_OCTETS } from '../config/load.js';
import { parseMesh, pickSelf, planCollectors, planFor, type MeshDefinition, type MeshPlan } from '../config/mesh.js';
import type { AgentConfig, CollectorConfig, MeshSourceConfig, NamingProfile } from '../config/types.js';
import { formatHostPort } from '../session/errors.js';
import type { Logger } from '../session/log.js';

const isUrl = (s: string): boolean => /^https?:\/\//i.test(s);

/** Bound on one HTTP fetch of the definition. */
const FETCH_TIMEOUT_MS = 10_000;

/**
 * A mesh definition's text, read again only when it may have changed.
 * read() returns the text of a new version, or undefined when the source
 * says (or its content shows) nothing changed since the last read.
 */
export class MeshSource {
  private fileStamp: string | undefined;
  private etag: string | undefined;
  private lastModified: string | undefined;
  private hash: string | undefined;

  constructor(readonly source: string, private readonly o: { timeoutMs?: number; maxOctets?: number } = {}) {}

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
      throw new Error(`cannot read ${this.source}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
    const stamp = `${st.size}:${st.mtimeMs}:${st.ino}`;
    if (stamp === this.fileStamp) return undefined;
    let data: Buffer;
    try {
      data = readBoundedFile(this.source, this.o.maxOctets ?? MAX_CONFIG_FILE_OCTETS);
    } catch (e) {
      throw new Error(`cannot read ${this.source}: ${(e as Error).message}`);
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
      res = await fetch(this.source, { headers, signal: AbortSignal.timeout(this.o.timeoutMs ?? FETCH_TIMEOUT_MS), redirect: 'follow' });
    } catch (e) {
      const err = e as Error & { cause?: Error };
      throw new Error(`cannot fetch ${this.source}: ${err.name === 'TimeoutError' ? 'timed out' : err.cause?.message ?? err.message}`);
    }
    if (res.status === 304) { await res.body?.cancel(); return undefined; }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new Error(`cannot fetch ${this.source}: HTTP ${res.status} ${res.statusText}`.trimEnd());
    }
    const limit = this.o.maxOctets ?? MAX_CONFIG_FILE_OCTETS;
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
export function localAddresses(): string[] {
  return Object.values(os.networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address));
}

export interface LoadedMesh {
  mesh: MeshDefinition;
  plan: MeshPlan;
  collectors: CollectorConfig[];
}

export interface MeshContext {
  config: MeshSourceConfig;
  host: string;
  naming: NamingProfile;
  /** Interval of tests without their own, seconds. */
  defaultInterval: number;
  localAddresses?: () => string[];
}

/** Parse a definition's text and expand it for this agent. @throws ConfigError or Error naming the problem. */
export function expandMesh(text: string, ctx: MeshContext): LoadedMesh {
  const mesh = parseMesh(text, ctx.config.source, { defaultInterval: ctx.defaultInterval });
  const self = pickSelf(mesh, { self: ctx.config.self, host: ctx.host, localAddresses: (ctx.localAddresses ?? localAddresses)() });
  const plan = planFor(mesh, self, { naming: ctx.naming });
  return { mesh, plan, collectors: planCollectors(plan) };
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
  const loaded = expandMesh(text ?? '', {
    config: config.mesh, host: config.host, naming: config.naming, defaultInterval: config.defaultInterval,
    ...(o.localAddresses ? { localAddresses: o.localAddresses } : {}),
  });
  const clash = clashingIds(config.collectors, loaded.collectors);
  if (clash.length > 0) throw new Error(`${config.mesh.source}: collector id ${clash.join(', ')} is also used in the agent file`);
  const { mesh, plan } = loaded;
  const lines = [`mesh ${mesh.source}: OK — ${mesh.members.length} member(s), ${mesh.groups.length} group(s), ${Object.keys(mesh.tests).length} test(s); ` +
    `this agent is ${JSON.stringify(plan.self)}${config.mesh.self !== undefined ? '' : ' (found by host name or local address)'}: ` +
    `${plan.senders.length} sender(s), ${plan.reflector ? 'a reflector' : 'no reflector'}`];
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
}

/** Polls the mesh source and applies each new version (docs/configuration.md "Mesh"). */
export class MeshRunner {
  /** Versions applied; 0 until the first. */
  generation = 0;
  /** Versions not applied (unreadable, invalid, not a member, refused). */
  errors = 0;
  current: LoadedMesh | undefined;
  readonly source: MeshSource;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private polling: Promise<boolean> | undefined;

  constructor(private readonly o: MeshRunnerOptions) {
    this.source = new MeshSource(o.config.source);
  }

  /** Read the source once and apply a new version; whether one was applied. Never throws. */
  poll(): Promise<boolean> {
    this.polling ??= this.pollOnce().finally(() => { this.polling = undefined; });
    return this.polling;
  }

  private async pollOnce(): Promise<boolean> {
    const log = this.o.logger;
    let loaded: LoadedMesh;
    try {
      const text = await this.source.read();
      if (text === undefined || this.stopped) return false;
      // A bad version is reported once: the source remembers its content and reads it again only when it changes.
      loaded = expandMesh(text, this.o);
    } catch (e) {
      this.errors++;
      log.error(`mesh: ${this.generation > 0 ? 'new version not applied, keeping generation ' + String(this.generation) : 'not applied'}: ${(e as Error).message}`);
      return false;
    }
    try {
      const out = await this.o.apply(loaded.collectors, loaded);
      this.generation++;
      this.current = loaded;
      const peer = new Map(loaded.plan.senders.map((s) => [s.id, formatHostPort(s.reflector, s.port)]));
      for (const id of out.started) log.info(`mesh: started ${id}${peer.has(id) ? ` (to ${peer.get(id)})` : ''}`);
      for (const id of out.restarted) log.info(`mesh: restarted ${id} (its settings changed)`);
      for (const id of out.stopped) log.info(`mesh: stopped ${id}`);
      log.info(`mesh: generation ${this.generation} applied from ${this.o.config.source}: this agent is ${JSON.stringify(loaded.plan.self)}, ` +
        `${loaded.mesh.members.length} member(s), ${loaded.plan.senders.length} sender(s), ${loaded.plan.reflector ? 'a reflector' : 'no reflector'}`);
      return true;
    } catch (e) {
      this.errors++;
      this.source.forgetContent();
      log.error(`mesh: new version not applied${this.generation > 0 ? `, keeping generation ${this.generation}` : ''}: ${(e as Error).message}`);
      return false;
    }
  }

  /** First poll now, then one every `interval`. */
  async start(): Promise<void> {
    await this.poll();
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => { void this.poll().finally(() => this.schedule()); }, this.o.config.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.polling;
  }
}
