/**
 * A measurement mesh from one definition (docs/configuration.md "Mesh"):
 * `members` (name, address, labels), `groups` saying who measures whom
 * (`mesh`: every member to every other; `star`: probes to reflectors;
 * `disjoint`: every `a` to every `b`) with a named test template from
 * `tests` (the `twamp_sender` keys). {@link parseMesh} validates a definition
 * with messages naming file:line:col and key, like the agent file;
 * {@link planFor} is the pure expansion into what one member runs: a
 * reflector when it is the target of any pair, and one sender per peer.
 */
import { createHash } from 'node:crypto';
import * as z from 'zod';
import { ConfigError } from './errors.js';
import { fallbackMessage, finish, fromZod, parseConfigText, toReflector, toSender } from './load.js';
import type { FileContext, RawIssue } from './load.js';
import {
  expecting, hostOrIp, int, labels, listenIp, meshReflectorSchema, meshTestSchema, nonEmptyString, oneOf, opt, strictMap, suggestKey,
} from './schema.js';
import type { ParsedReflector, ParsedSender } from './schema.js';
import type { CollectorConfig, NamingProfile, ReflectorConfig, SenderConfig } from './types.js';
import { DEFAULT_CONTROL_PORT } from '../protocol/constants.js';

// ---------------------------------------------------------------------------
// Schema

/** Member and test names: they become part of collector ids (`mesh/TEST/SRC->DST`). */
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:@-]*$/;
const NAME_FORM = 'a name of letters, digits and _ . : @ - (not starting with a punctuation mark)';
const name = () => z.string({ error: expecting(NAME_FORM) }).regex(NAME, { error: expecting(NAME_FORM) });
const nameList = (what: string) => z.array(name(), { error: expecting(`a list of ${what}`) }).min(1, { error: `expected a non-empty list of ${what}` });

const memberSchema = strictMap(
  {
    name: name(),
    address: hostOrIp(),
    port: opt(int(1, 65535).default(DEFAULT_CONTROL_PORT)),
    light_port: opt(int(1, 65535).optional()),
    listen: opt(listenIp().default('0.0.0.0')),
    labels: labels(),
  },
  'a member (map with "name" and "address")',
);

/**
 * A DNS name to resolve: host-name labels, and the leading-underscore labels
 * of SRV owner names (`_twamp-control._tcp.twamp.monitoring.svc`, RFC 2782).
 */
const DNS_LABEL = /^(?:_?[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?|_[A-Za-z0-9])$/;
const DNS_FORM = 'a DNS name (labels of letters, digits, - and _; e.g. twamp.monitoring.svc.cluster.local)';
const dnsName = () => z.string({ error: expecting(DNS_FORM) })
  .refine((v) => { const n = v.replace(/\.$/, ''); return n.length > 0 && n.length <= 253 && n.split('.').every((l) => DNS_LABEL.test(l)); }, { error: expecting(DNS_FORM) })
  .transform((v) => v.replace(/\.$/, '').toLowerCase());
const MAX_DNS_INTERVAL_S = 86_400;
const dnsInterval = () => z.number({ error: expecting(`a number of seconds > 0 and ≤ ${MAX_DNS_INTERVAL_S}`) }).gt(0).max(MAX_DNS_INTERVAL_S);

/**
 * A member set from DNS (docs/configuration.md "Mesh", "Members from DNS"):
 * the A, AAAA or SRV records of `dns`, re-resolved every `interval`; groups
 * name the set by `name` and mean every member it resolves to.
 */
const dnsMemberSchema = strictMap(
  {
    name: name(),
    dns: dnsName(),
    type: opt(oneOf(['A', 'AAAA', 'SRV']).default('A')),
    port: opt(int(1, 65535).optional()),
    light_port: opt(int(1, 65535).optional()),
    listen: opt(listenIp().default('0.0.0.0')),
    labels: labels(),
    interval: opt(dnsInterval().default(30)),
  },
  'a member set from DNS (map with "name" and "dns")',
  { address: 'a member set from DNS has no address: its members are what DNS answers (leave dns out for one member at one address)' },
).check(z.superRefine((v, ctx) => {
  if (v.type === 'SRV' && v.port !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['port'], input: v.port, message: 'an SRV member set takes each member\'s port from its record; leave port out' });
  }
}));

const testName = () => nonEmptyString('a test name (a key of tests)');

const groupSchema = z.discriminatedUnion('type', [
  strictMap({ type: z.literal('mesh'), members: nameList('member names'), test: testName() }, 'a group (map)'),
  strictMap({ type: z.literal('star'), probes: nameList('member names'), reflectors: nameList('member names'), test: testName() }, 'a group (map)'),
  strictMap({ type: z.literal('disjoint'), a: nameList('member names'), b: nameList('member names'), test: testName() }, 'a group (map)'),
], {
  error: (iss) => {
    const input = iss.input;
    if (input === null || typeof input !== 'object' || Array.isArray(input)) return `expected a group (map with "type"), got ${JSON.stringify(input) ?? 'nothing'}`;
    const type = (input as Record<string, unknown>).type;
    return type === undefined
      ? 'required key is missing (expected type: mesh, star or disjoint)'
      : `unsupported group type ${JSON.stringify(type)}; supported types: "mesh", "star", "disjoint"`;
  },
});

const meshFileSchema = strictMap(
  {
    $version: opt(z.literal('1.0', { error: expecting('"1.0"') }).optional()),
    tests: z.record(name(), z.unknown(), { error: expecting('a map of test names to twamp_sender settings') }),
    members: z.array(z.unknown(), { error: expecting('a list of members') }),
    groups: z.array(z.unknown(), { error: expecting('a list of groups') }),
    reflector: opt(z.unknown().optional()),
  },
  'a map with "tests", "members" and "groups"',
);

type ParsedMember = z.output<typeof memberSchema>;
type ParsedDnsMembers = z.output<typeof dnsMemberSchema>;
type ParsedGroup = z.output<typeof groupSchema>;

// ---------------------------------------------------------------------------
// The definition

export interface MeshMember {
  name: string;
  /** IP literal or host name the others send to. */
  address: string;
  /** TWAMP-Control port of its reflector. */
  port: number;
  /** UDP port of its TWAMP Light / STAMP reflector; needed by tests with `control: false`. */
  lightPort?: number;
  /** Address its reflector listens on. */
  listen: string;
  labels: Record<string, string>;
  /** The member set it came from, for members from DNS. */
  dynamic?: string;
}

/** Members that come from DNS records (`members: - {name, dns, type}`). */
export interface MeshMemberSet {
  /** What groups call the set. */
  name: string;
  /** The name resolved (lower case, no trailing dot). */
  dns: string;
  type: 'A' | 'AAAA' | 'SRV';
  /** TWAMP-Control port of every member (A/AAAA; SRV members have the port of their record). */
  port: number;
  lightPort?: number;
  listen: string;
  labels: Record<string, string>;
  /** How often the records are resolved again. */
  intervalMs: number;
}

/** One member a set resolved to: its name (the address, or the SRV target), address and, from SRV, port. */
export interface DnsMember {
  name: string;
  address: string;
  port?: number;
}

export type MeshGroup =
  | { type: 'mesh'; members: string[]; test: string }
  | { type: 'star'; probes: string[]; reflectors: string[]; test: string }
  | { type: 'disjoint'; a: string[]; b: string[]; test: string };

export interface MeshDefinition {
  /** Where it came from (file path or URL), for messages. */
  source: string;
  /** Test templates by name: normalized sender settings with an empty reflector. */
  tests: Record<string, SenderConfig>;
  /** The members: those written out, then those DNS gave (see withDnsMembers). */
  members: MeshMember[];
  /** Groups as written: a name in them is a member or a member set. */
  groups: MeshGroup[];
  /** Member sets from DNS; empty when every member is written out. */
  memberSets: MeshMemberSet[];
  /** The members each set resolved to, by set name (empty lists until withDnsMembers). */
  setMembers: Record<string, string[]>;
  /** Reflector of each member (the mesh's `reflector:` settings on the member's listen address and ports). */
  reflectors: Record<string, ReflectorConfig>;
  /** The `reflector:` settings before a member's listen address and ports are applied (for members from DNS). */
  reflectorTemplate?: ReflectorConfig;
}

export interface ParseMeshOptions {
  /** Interval of tests without their own, seconds (the agent's `defaults.interval`). */
  defaultInterval?: number;
  /** Where relative `secret_file`/`key_file` names resolve from (default: the mesh file's directory, or the working directory). */
  baseDir?: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Id of the mesh reflector collector. */
const MESH_REFLECTOR_ID = 'mesh/reflector';

/**
 * Parses and validates a mesh definition (YAML or JSON).
 * @throws ConfigError listing every problem, each with file:line:col and key.
 */
export function parseMesh(text: string, source = '<inline>', opts: ParseMeshOptions = {}): MeshDefinition {
  const { raw, map } = parseConfigText(text, source);
  const defaultInterval = opts.defaultInterval ?? 60;
  const files = (): FileContext => {
    if (opts.baseDir !== undefined) return { baseDir: opts.baseDir, issues: [] };
    return { baseDir: /^https?:/i.test(source) || source.startsWith('<') ? process.cwd() : dirnameOf(source), issues: [] };
  };
  const issues: RawIssue[] = [];
  const top = meshFileSchema.safeParse(raw, { error: fallbackMessage });
  if (!top.success) issues.push(...fromZod(top.error.issues));
  const rec = isRecord(raw) ? raw : {};

  // Tests, one by one.
  const tests: Record<string, SenderConfig> = {};
  const testSchema = meshTestSchema();
  for (const [tname, body] of Object.entries(isRecord(rec.tests) ? rec.tests : {})) {
    const parsed = testSchema.safeParse(body ?? {}, { error: fallbackMessage });
    if (!parsed.success) { issues.push(...fromZod(parsed.error.issues, ['tests', tname])); continue; }
    const ctx = files();
    tests[tname] = toSender({ ...parsed.data, id: tname, reflector: '', port: DEFAULT_CONTROL_PORT, disabled: false } as ParsedSender, defaultInterval, ctx);
    for (const f of ctx.issues) issues.push({ path: ['tests', tname, ...f.path], message: f.message });
  }

  // Members and member sets from DNS: valid and uniquely named.
  const members: MeshMember[] = [];
  const memberSets: MeshMemberSet[] = [];
  const memberAt = new Map<string, number>();
  (Array.isArray(rec.members) ? rec.members : []).forEach((item, i) => {
    const fromDns = isRecord(item) && 'dns' in item;
    const parsed = (fromDns ? dnsMemberSchema : memberSchema).safeParse(item, { error: fallbackMessage });
    if (!parsed.success) { issues.push(...fromZod(parsed.error.issues, ['members', i])); return; }
    const m = parsed.data as ParsedMember | ParsedDnsMembers;
    const first = memberAt.get(m.name);
    if (first !== undefined) {
      const line = map.locate(['members', first, 'name'])?.line;
      issues.push({ path: ['members', i, 'name'], message: `duplicate member name ${JSON.stringify(m.name)}: already members[${first}]${line !== undefined ? ` (line ${line})` : ''}` });
      return;
    }
    memberAt.set(m.name, i);
    if ('dns' in m) {
      memberSets.push({
        name: m.name, dns: m.dns, type: m.type, port: m.port ?? DEFAULT_CONTROL_PORT, listen: m.listen, labels: m.labels, intervalMs: Math.round(m.interval * 1000),
        ...(m.light_port !== undefined ? { lightPort: m.light_port } : {}),
      });
      return;
    }
    members.push({
      name: m.name, address: m.address, port: m.port, listen: m.listen, labels: m.labels,
      ...(m.light_port !== undefined ? { lightPort: m.light_port } : {}),
    });
  });
  const byName = new Map(members.map((m) => [m.name, m]));
  const setByName = new Map(memberSets.map((m) => [m.name, m]));
  const names = [...memberAt.keys()];

  // Groups: members and tests that exist; light tests only to members with light_port.
  const groups: MeshGroup[] = [];
  const rawGroups = Array.isArray(rec.groups) ? rec.groups : [];
  rawGroups.forEach((item, i) => {
    const parsed = groupSchema.safeParse(item, { error: fallbackMessage });
    if (!parsed.success) { issues.push(...fromZod(parsed.error.issues, ['groups', i])); return; }
    const g: ParsedGroup = parsed.data;
    let ok = true;
    const lists: [string, string[]][] = g.type === 'mesh' ? [['members', g.members]]
      : g.type === 'star' ? [['probes', g.probes], ['reflectors', g.reflectors]] : [['a', g.a], ['b', g.b]];
    for (const [key, list] of lists) {
      list.forEach((n, k) => {
        if (byName.has(n) || setByName.has(n)) {
          if (list.indexOf(n) !== k) { issues.push({ path: ['groups', i, key, k], message: `member ${JSON.stringify(n)} is listed twice` }); ok = false; }
          return;
        }
        ok = false;
        // A member that failed its own checks is already reported; do not call it unknown.
        if (hasRawMember(rec.members, n)) return;
        const hint = suggestKey(n, names);
        issues.push({
          path: ['groups', i, key, k],
          message: `unknown member ${JSON.stringify(n)}${hint !== undefined ? ` (did you mean ${JSON.stringify(hint)}?)` : ''}; members: ${names.join(', ') || 'none'}`,
        });
      });
    }
    const testNames = Object.keys(isRecord(rec.tests) ? rec.tests : {});
    if (!testNames.includes(g.test)) {
      const hint = suggestKey(g.test, testNames);
      issues.push({ path: ['groups', i, 'test'], message: `unknown test ${JSON.stringify(g.test)}${hint !== undefined ? ` (did you mean ${JSON.stringify(hint)}?)` : ''}; tests: ${testNames.join(', ') || 'none'}` });
      ok = false;
    }
    const t = tests[g.test];
    if (ok && t !== undefined && t.control === false) {
      const targets = g.type === 'mesh' ? g.members : g.type === 'star' ? g.reflectors : g.b;
      const missing = targets.filter((n) => (byName.get(n) ?? setByName.get(n))?.lightPort === undefined);
      if (missing.length > 0) {
        issues.push({ path: ['groups', i, 'test'], message: `test ${JSON.stringify(g.test)} has control: false, but target member${missing.length > 1 ? 's' : ''} ${missing.map((n) => JSON.stringify(n)).join(', ')} ${missing.length > 1 ? 'have' : 'has'} no light_port` });
        ok = false;
      }
    }
    if (ok) groups.push(g);
  });

  // The reflector settings, then one reflector per member.
  const reflectors: Record<string, ReflectorConfig> = {};
  let reflectorTemplate: ReflectorConfig | undefined;
  {
    const parsed = meshReflectorSchema().safeParse(rec.reflector ?? {}, { error: fallbackMessage });
    if (!parsed.success) issues.push(...fromZod(parsed.error.issues, ['reflector']));
    else {
      const ctx = files();
      reflectorTemplate = toReflector({
        ...parsed.data, id: MESH_REFLECTOR_ID, listen: '0.0.0.0', port: DEFAULT_CONTROL_PORT, light_port: undefined, disabled: false, interval: undefined,
      } as ParsedReflector, defaultInterval, ctx);
      // key_file problems are the same for every member: report them once.
      for (const f of ctx.issues) issues.push({ path: ['reflector', ...f.path], message: f.message });
      for (const m of members) reflectors[m.name] = memberReflector(reflectorTemplate, m);
    }
  }

  if (issues.length > 0) throw new ConfigError(finish(issues, source, map, () => undefined));
  const setMembers = Object.fromEntries(memberSets.map((m) => [m.name, [] as string[]]));
  return { source, tests, members, groups, memberSets, setMembers, reflectors, ...(reflectorTemplate ? { reflectorTemplate } : {}) };
}

/** The mesh reflector of one member: the `reflector:` settings on its listen address and ports. */
function memberReflector(template: ReflectorConfig, m: MeshMember): ReflectorConfig {
  const { lightPort: _lp, ...rest } = template;
  return { ...rest, listen: m.listen, port: m.port, ...(m.lightPort !== undefined ? { lightPort: m.lightPort } : {}) };
}

/**
 * The definition with the members its DNS sets resolved to (pure: the same
 * records give the same definition). `found` maps a set's name to its
 * members; a set not in it has none. A member is named by its address (A,
 * AAAA) or its SRV target (`target:port` when a target has several ports),
 * takes the set's port (SRV: the record's), listen address and labels, and
 * joins the groups that name the set. A name or address already a member's
 * (written out, or from an earlier set) stays that member and joins this set
 * too, so nobody measures itself under two names.
 */
export function withDnsMembers(mesh: MeshDefinition, found: Readonly<Record<string, readonly DnsMember[]>>): MeshDefinition {
  const members = mesh.members.filter((m) => m.dynamic === undefined);
  const known = new Set(members.map((m) => m.name));
  const reflectors: Record<string, ReflectorConfig> = {};
  for (const m of members) if (mesh.reflectors[m.name]) reflectors[m.name] = mesh.reflectors[m.name]!;
  const setMembers: Record<string, string[]> = {};
  for (const set of mesh.memberSets) {
    const list = [...(found[set.name] ?? [])].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const names: string[] = [];
    for (const d of list) {
      // The address (and SRV port) of a member already there is that member, whatever DNS calls it.
      const same = members.find((m) => m.address === d.address && (d.port === undefined || m.port === d.port));
      const memberName = same?.name ?? d.name;
      if (names.includes(memberName)) continue;
      names.push(memberName);
      if (same || known.has(d.name)) continue;
      known.add(d.name);
      const m: MeshMember = {
        name: d.name, address: d.address, port: set.type === 'SRV' && d.port !== undefined ? d.port : set.port, listen: set.listen,
        labels: { ...set.labels }, dynamic: set.name, ...(set.lightPort !== undefined ? { lightPort: set.lightPort } : {}),
      };
      members.push(m);
      if (mesh.reflectorTemplate) reflectors[m.name] = memberReflector(mesh.reflectorTemplate, m);
    }
    setMembers[set.name] = names;
  }
  return { ...mesh, members, setMembers, reflectors };
}

function hasRawMember(rawMembers: unknown, n: string): boolean {
  return Array.isArray(rawMembers) && rawMembers.some((m) => isRecord(m) && m.name === n);
}

function dirnameOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? (i === 0 ? '/' : process.cwd()) : path.slice(0, i);
}

// ---------------------------------------------------------------------------
// Expansion

/** Who measures whom: every ordered (src, dst, test) of the definition, without repeats, src ≠ dst. */
export function meshPairs(mesh: MeshDefinition): { src: string; dst: string; test: string }[] {
  const seen = new Set<string>();
  const out: { src: string; dst: string; test: string }[] = [];
  const add = (srcs: readonly string[], dsts: readonly string[], test: string) => {
    for (const src of srcs) {
      for (const dst of dsts) {
        if (src === dst) continue;
        const key = JSON.stringify([test, src, dst]);
        if (seen.has(key)) continue;
        seen.add(key);
        out.push({ src, dst, test });
      }
    }
  };
  // A set's name stands for the members it resolved to.
  const expand = (list: readonly string[]): string[] => [...new Set(list.flatMap((n) => mesh.setMembers[n] ?? [n]))];
  for (const g of mesh.groups) {
    if (g.type === 'mesh') add(expand(g.members), expand(g.members), g.test);
    else if (g.type === 'star') add(expand(g.probes), expand(g.reflectors), g.test);
    else add(expand(g.a), expand(g.b), g.test);
  }
  return out;
}

/** Collector id of a mesh sender. */
function meshSenderId(test: string, src: string, dst: string): string {
  return `mesh/${test}/${src}->${dst}`;
}

/**
 * Where in its interval a sender starts, deterministic per key: the first
 * 32 bits of SHA-256(key) scaled to [0, intervalMs). Every agent computes the
 * same offset for a pair, and the pairs of a mesh spread over the interval
 * instead of all agents sending in the same second.
 */
export function staggerOffsetMs(key: string, intervalMs: number): number {
  const h = createHash('sha256').update(key).digest().readUInt32BE(0);
  return Math.floor((h / 2 ** 32) * intervalMs);
}

/** Label keys naming both ends, per naming profile (otel: `twamp.mesh.*` attributes, as the `twamp.*` ones of docs/metrics.md). */
export function meshLabelKeys(profile: NamingProfile): { src: string; dst: string; test: string; srcLabel: (k: string) => string; dstLabel: (k: string) => string } {
  return profile === 'otel'
    ? { src: 'twamp.mesh.src', dst: 'twamp.mesh.dst', test: 'twamp.mesh.test', srcLabel: (k) => `twamp.mesh.src.${k}`, dstLabel: (k) => `twamp.mesh.dst.${k}` }
    : { src: 'src', dst: 'dst', test: 'mesh_test', srcLabel: (k) => `src_${k}`, dstLabel: (k) => `dst_${k}` };
}

export interface MeshPlan {
  /** The member this plan is for. */
  self: string;
  /** Present when `self` is the target of any pair. */
  reflector?: ReflectorConfig;
  /** One per (test, peer) `self` measures, sorted by id. */
  senders: SenderConfig[];
}

/** What member `self` runs (pure: the same definition and self give the same plan). */
export function planFor(mesh: MeshDefinition, self: string, opts: { naming?: NamingProfile } = {}): MeshPlan {
  const me = mesh.members.find((m) => m.name === self);
  if (!me) throw new Error(`${mesh.source}: ${JSON.stringify(self)} is not a member; members: ${mesh.members.map((m) => m.name).join(', ') || 'none'}`);
  const keys = meshLabelKeys(opts.naming ?? 'legacy');
  const byName = new Map(mesh.members.map((m) => [m.name, m]));
  const pairs = meshPairs(mesh);
  const senders: SenderConfig[] = [];
  for (const p of pairs) {
    if (p.src !== self) continue;
    const t = mesh.tests[p.test]!;
    const dst = byName.get(p.dst)!;
    const id = meshSenderId(p.test, p.src, p.dst);
    const labels: Record<string, string> = { ...t.labels };
    for (const [k, v] of Object.entries(me.labels)) labels[keys.srcLabel(k)] = v;
    for (const [k, v] of Object.entries(dst.labels)) labels[keys.dstLabel(k)] = v;
    labels[keys.src] = p.src;
    labels[keys.dst] = p.dst;
    labels[keys.test] = p.test;
    senders.push({
      ...t,
      id,
      reflector: dst.address,
      port: t.control === false ? dst.lightPort! : dst.port,
      labels,
      startOffsetMs: staggerOffsetMs(id, t.interval * 1000),
    });
  }
  senders.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const target = pairs.some((p) => p.dst === self);
  const reflector = mesh.reflectors[self];
  return { self, senders, ...(target && reflector ? { reflector } : {}) };
}

/** The plan as agent collectors: the reflector first, then the senders. */
export function planCollectors(plan: MeshPlan): CollectorConfig[] {
  return [...(plan.reflector ? [plan.reflector] : []), ...plan.senders];
}

/**
 * A valid definition that does not have this agent among its members (not
 * yet, or no longer): the agent runs nothing of it (docs/configuration.md "Mesh").
 */
export class NotAMemberError extends Error {
  override name = 'NotAMemberError';
}

/**
 * Which member this agent is: `self` when given (a member's name, or the
 * address of exactly one member), else
 * the member named like the host, else the one member whose address is one
 * of `localAddresses`.
 * @throws NotAMemberError when no member is this agent; Error when several could be.
 */
export function pickSelf(mesh: MeshDefinition, o: { self?: string | undefined; host: string; localAddresses: readonly string[] }): string {
  const names = mesh.members.map((m) => m.name);
  if (o.self !== undefined) {
    if (names.includes(o.self)) return o.self;
    // An address names the member that has it (a pod's own IP among a set's A records).
    const at = mesh.members.filter((m) => m.address === o.self);
    if (at.length === 1) return at[0]!.name;
    if (mesh.memberSets.some((s) => s.name === o.self)) {
      throw new Error(`mesh.self: ${JSON.stringify(o.self)} is a member set from DNS in ${mesh.source}, not a member: name one of its members, or leave self out to find it by local address`);
    }
    const hint = suggestKey(o.self, names);
    throw new NotAMemberError(`mesh.self: ${JSON.stringify(o.self)} is not a member of ${mesh.source}${hint !== undefined ? ` (did you mean ${JSON.stringify(hint)}?)` : ''}; members: ${names.join(', ') || 'none'}`);
  }
  if (names.includes(o.host)) return o.host;
  const local = mesh.members.filter((m) => o.localAddresses.includes(m.address));
  if (local.length === 1) return local[0]!.name;
  if (local.length > 1) {
    throw new Error(`mesh.self is not set and several members of ${mesh.source} have a local address (${local.map((m) => `${m.name} ${m.address}`).join(', ')}): set mesh.self`);
  }
  throw new NotAMemberError(`mesh.self is not set, no member of ${mesh.source} is named ${JSON.stringify(o.host)} (the host name) and none has a local address: set mesh.self`);
}
