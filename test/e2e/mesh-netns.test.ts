// A measurement mesh across network namespaces (docs/configuration.md "Mesh"):
// six namespaces on one bridge, each running its own agent process
// (`otel-twamp agent`) with `mesh: {source: http://…, self: mK}`, all polling
// one definition this test serves over HTTP with an ETag. Five are members at
// first, the sixth is not yet. Proves, end to end:
//  - every member exports exactly its N−1 sender series, src/dst naming both
//    ends, each session answered across the bridge (every member reaches
//    every other);
//  - removing a member stops every session to it within one poll (the
//    agent applies the version it fetched before it polls again), and its
//    reflector sees no new session afterwards;
//  - adding a member starts its sessions within one poll, on every member
//    and on the new one;
//  - the definition is fetched in full (200) once per version and agent,
//    every other poll is a 304 answer to If-None-Match.
// Needs root and `ip` (iproute2): skipped with one line otherwise (a failure
// under CI as root). Namespace and link names carry a tag with this process'
// id; everything is removed at the end, also when the test fails.
// Creates namespaces: do not run concurrently with other namespace tests.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { isCI, repoRoot } from '../helpers/peers.js';
import { parseExposition, type Series } from '../helpers/prometheus.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Seconds between two checks of the definition by each agent (mesh.interval). */
const POLL_S = 1;
/** The members' TWAMP-Control port and the agents' Prometheus port (unprivileged; each namespace has its own). */
const CONTROL_PORT = 8620;
const METRICS_PORT = 9464;
const MEMBERS = 6;

const TAG = `h${process.pid}`;
const NS_HUB = `${TAG}-hub`;
const nsOf = (i: number) => `${TAG}-m${i}`;
const BRIDGE = `${TAG}b`;
const ROOT_IF = `${TAG}R`;
/** 198.18.0.0/15 is the RFC 2544 benchmarking range; 198.19.x.0/24 keeps clear of the lab's 198.18.0.0/23 addresses. */
const SUBNET = `198.19.${100 + (process.pid % 150)}`;
const ROOT_ADDR = `${SUBNET}.254`;
const addrOf = (i: number) => `${SUBNET}.${i}`;
const nameOf = (i: number) => `m${i}`;

function sh(cmd: string, args: string[], timeoutMs = 10_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const cp = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    cp.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
    cp.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    const t = setTimeout(() => cp.kill('SIGKILL'), timeoutMs);
    cp.once('error', (e) => { clearTimeout(t); resolve({ code: 127, stdout, stderr: stderr + String(e) }); });
    cp.once('close', (code) => { clearTimeout(t); resolve({ code, stdout, stderr }); });
  });
}

async function ip(...args: string[]): Promise<void> {
  const r = await sh('ip', args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
}

/** The hub namespace holds the bridge; every member and the test (root namespace) hang off it by a veth. */
async function buildNetwork(): Promise<void> {
  await ip('netns', 'add', NS_HUB);
  await ip('-n', NS_HUB, 'link', 'set', 'lo', 'up');
  await ip('-n', NS_HUB, 'link', 'add', BRIDGE, 'type', 'bridge');
  await ip('-n', NS_HUB, 'link', 'set', BRIDGE, 'up');
  for (let i = 1; i <= MEMBERS; i++) {
    const ns = nsOf(i);
    await ip('netns', 'add', ns);
    // Created directly in their namespaces: no member link ever appears in the root namespace.
    await ip('link', 'add', `${TAG}v${i}`, 'netns', ns, 'type', 'veth', 'peer', 'name', `${TAG}p${i}`, 'netns', NS_HUB);
    await ip('-n', NS_HUB, 'link', 'set', `${TAG}p${i}`, 'master', BRIDGE, 'up');
    await ip('-n', ns, 'addr', 'add', `${addrOf(i)}/24`, 'dev', `${TAG}v${i}`);
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
    await ip('-n', ns, 'link', 'set', `${TAG}v${i}`, 'up');
  }
  // The test's own leg: it serves the definition and scrapes the agents over it.
  await ip('link', 'add', ROOT_IF, 'type', 'veth', 'peer', 'name', `${TAG}r`, 'netns', NS_HUB);
  await ip('-n', NS_HUB, 'link', 'set', `${TAG}r`, 'master', BRIDGE, 'up');
  await ip('addr', 'add', `${ROOT_ADDR}/24`, 'dev', ROOT_IF);
  await ip('link', 'set', ROOT_IF, 'up');
}

/** Delete what buildNetwork made (quiet when absent): the namespaces take their veth ends with them. */
function teardownNetworkSync(): void {
  spawnSync('ip', ['link', 'del', ROOT_IF], { stdio: 'ignore' });
  for (let i = 1; i <= MEMBERS; i++) spawnSync('ip', ['netns', 'del', nsOf(i)], { stdio: 'ignore' });
  spawnSync('ip', ['netns', 'del', NS_HUB], { stdio: 'ignore' });
}

function meshYaml(members: number[]): string {
  return `tests:
  t: {model: g711, n_packets: 5, interval: 1, reply_timeout: 0.5}
members:
${members.map((i) => `  - {name: ${nameOf(i)}, address: ${addrOf(i)}, port: ${CONTROL_PORT}, listen: ${addrOf(i)}, labels: {site: s${i}}}`).join('\n')}
groups:
  - {type: mesh, members: [${members.map(nameOf).join(', ')}], test: t}
`;
}

interface Hit { at: number; client: string; status: 200 | 304 }

/** Serves the current definition with an ETag of its content; answers a matching If-None-Match with 304; logs every answer. */
class MeshServer {
  body = '';
  readonly hits: Hit[] = [];
  private server: Server | undefined;

  etag(): string {
    return `"${createHash('sha256').update(this.body).digest('hex').slice(0, 16)}"`;
  }

  async start(host: string): Promise<string> {
    this.server = createServer((req, res) => {
      const client = req.socket.remoteAddress ?? '?';
      const etag = this.etag();
      if (req.headers['if-none-match'] === etag) {
        this.hits.push({ at: Date.now(), client, status: 304 });
        res.writeHead(304, { etag }).end();
        return;
      }
      this.hits.push({ at: Date.now(), client, status: 200 });
      res.writeHead(200, { etag, 'content-type': 'application/yaml' }).end(this.body);
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(0, host, () => resolve());
    });
    const { port } = this.server.address() as { port: number };
    return `http://${host}:${port}/mesh.yaml`;
  }

  count(client: string, status: 200 | 304, since = 0): number {
    return this.hits.filter((h) => h.client === client && h.status === status && h.at >= since).length;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server ? this.server.close(r) : r(undefined));
  }
}

/** One agent process inside its member's namespace; its log lines are kept with their arrival time. */
class AgentProc {
  readonly lines: Array<{ at: number; text: string }> = [];
  readonly proc: ChildProcess;
  private exited = false;
  private readonly gone: Promise<void>;

  constructor(readonly i: number, configFile: string) {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OTEL_')));
    const main = join(repoRoot(), 'dist', 'src', 'cli', 'main.js');
    // `ip netns exec` execs the command: the child's pid is the agent's.
    this.proc = spawn('ip', ['netns', 'exec', nsOf(i), process.execPath, main, 'agent', '--config', configFile, '--log-level', 'info'],
      { stdio: ['ignore', 'pipe', 'pipe'], env });
    for (const s of [this.proc.stdout!, this.proc.stderr!]) {
      createInterface({ input: s }).on('line', (text) => { this.lines.push({ at: Date.now(), text }); });
    }
    this.gone = new Promise((r) => this.proc.once('exit', () => { this.exited = true; r(); }));
  }

  get alive(): boolean { return !this.exited; }

  logTail(n = 15): string {
    return this.lines.slice(-n).map((l) => `    ${nameOf(this.i)}| ${l.text}`).join('\n');
  }

  firstLine(re: RegExp, since = 0): { at: number; text: string } | undefined {
    return this.lines.find((l) => l.at >= since && re.test(l.text));
  }

  async scrape(): Promise<Series[]> {
    const res = await fetch(`http://${addrOf(this.i)}:${METRICS_PORT}/metrics`, { signal: AbortSignal.timeout(3000) });
    assert.equal(res.status, 200, `${nameOf(this.i)} /metrics: HTTP ${res.status}`);
    return parseExposition(await res.text());
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await Promise.race([this.gone, sleep(8000)]);
    clearTimeout(t);
  }

  killNow(): void {
    if (!this.exited) { try { this.proc.kill('SIGKILL'); } catch { /* gone */ } }
  }
}

/** (src, dst) pairs of an agent's sender series, from twamp_tx_packets. */
const senderSeries = (series: Series[]) => series.filter((s) => s.name === 'twamp_tx_packets');
/** Series kept after their collector stops, for the stale grace period: counters and histogram parts. */
const RETAINED = /_(total|bucket|sum|count)$/;
const gauge = (series: Series[], name: string) => series.find((s) => s.name === name)?.value;

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>, tail: () => string): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      assert.fail(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}\n${tail()}`);
    }
    await sleep(200);
  }
}

test('mesh across network namespaces: N−1 series per agent, members removed and added within one poll, definition re-fetched only when changed',
  { timeout: 150_000 }, async (t) => {
    if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
      t.skip('mesh-netns: needs root (network namespaces); run as root, e.g. sudo npm test');
      return;
    }
    const probe = await sh('ip', ['-V'], 5000);
    if (probe.code !== 0) {
      const why = 'mesh-netns: `ip` not available (install iproute2)';
      if (isCI()) throw new Error(`${why}; CI is set and this runs as root: the test must not be skipped`);
      t.skip(why);
      return;
    }

    const dir = mkdtempSync(join(tmpdir(), 'otel-twamp-mesh-netns-'));
    const agents: AgentProc[] = [];
    const server = new MeshServer();
    // Last resort if the process is torn down mid-test: kill our agents by pid, remove our namespaces.
    const onExit = () => { for (const a of agents) a.killNow(); teardownNetworkSync(); rmSync(dir, { recursive: true, force: true }); };
    const onSignal = (sig: NodeJS.Signals) => { onExit(); process.exit(sig === 'SIGINT' ? 130 : 143); };
    process.once('exit', onExit);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      try {
        await buildNetwork();
      } catch (e) {
        const why = `mesh-netns: cannot build namespaces here: ${(e as Error).message.split('\n')[0]}`;
        if (isCI()) throw new Error(why);
        t.skip(why);
        return;
      }
      server.body = meshYaml([1, 2, 3, 4, 5]);
      const url = await server.start(ROOT_ADDR);
      for (let i = 1; i <= MEMBERS; i++) {
        const file = join(dir, `agent-${nameOf(i)}.yaml`);
        writeFileSync(file, `$version: "1.0"\nsender: { listen: "${addrOf(i)}:${METRICS_PORT}" }\n` +
          `mesh: { source: "${url}", self: ${nameOf(i)}, interval: ${POLL_S} }\n`);
        agents.push(new AgentProc(i, file));
      }
      const tails = () => agents.map((a) => a.logTail()).join('\n');
      const agent = (i: number) => agents[i - 1]!;

      /** Waits until agent i exports sender series to exactly `peers`, each with a session answered; returns them. */
      const expectSenders = async (i: number, peers: number[], ms: number): Promise<Series[]> => until(
        `${nameOf(i)} to run senders to ${peers.map(nameOf).join(', ')} with answered sessions`, ms, async () => {
          const all = await agent(i).scrape();
          const tx = senderSeries(all);
          const dsts = tx.map((s) => s.labels.dst).sort();
          if (dsts.join() !== peers.map(nameOf).sort().join()) return undefined;
          const rx = all.filter((s) => s.name === 'twamp_rx_packets');
          const answered = peers.every((p) => (rx.find((s) => s.labels.dst === nameOf(p))?.value ?? 0) > 0);
          return answered ? all : undefined;
        }, tails);

      await t.test('every member exports exactly its N−1 sender series with src/dst, each answered across the bridge', async () => {
        const members = [1, 2, 3, 4, 5];
        for (const i of members) {
          const peers = members.filter((p) => p !== i);
          const all = await expectSenders(i, peers, 30_000);
          const tx = senderSeries(all);
          assert.equal(tx.length, members.length - 1, `${nameOf(i)}: ${tx.length} sender series`);
          for (const s of tx) {
            const dst = s.labels.dst!;
            assert.equal(s.labels.src, nameOf(i));
            assert.equal(s.labels.collector_id, `mesh/t/${nameOf(i)}->${dst}`);
            assert.equal(s.labels.mesh_test, 't');
            assert.equal(s.labels.src_site, `s${i}`);
            assert.equal(s.labels.dst_site, `s${dst.slice(1)}`);
            assert.equal(s.value, 5, `${s.labels.collector_id}: tx_packets`);
          }
          assert.equal(gauge(all, 'twamp_mesh_generation'), 1, `${nameOf(i)}: generation`);
          assert.equal(gauge(all, 'twamp_mesh_members'), 5, `${nameOf(i)}: members`);
          assert.equal(gauge(all, 'twamp_mesh_senders'), 4, `${nameOf(i)}: senders`);
          // A member measured by others runs the mesh reflector, and it has served sessions.
          assert.ok((gauge(all, 'twamp_reflector_session_started_total') ?? 0) > 0, `${nameOf(i)}: its reflector served no session`);
        }
        // Not a member yet: polls and runs nothing (the log says why).
        const m6 = await agent(6).scrape();
        assert.equal(senderSeries(m6).length, 0);
        assert.ok((gauge(m6, 'twamp_mesh_senders') ?? 0) === 0, 'm6 runs mesh senders');
        assert.ok(agent(6).firstLine(/mesh: .*"m6" is not a member|mesh: generation 1 applied .* 0 sender\(s\), no reflector$/), agent(6).logTail());
      });

      await t.test('removing a member stops every session to it within one poll', async () => {
        const changed = Date.now();
        server.body = meshYaml([1, 2, 3, 4]);
        for (const i of [1, 2, 3, 4]) {
          const a = agent(i);
          const ip4 = addrOf(i);
          // The first poll after the change fetches the new version (200) ...
          const fetched = await until(`${nameOf(i)} to fetch the new version`, POLL_S * 1000 + 5000,
            async () => server.hits.find((h) => h.client === ip4 && h.at >= changed && h.status === 200), tails);
          // ... and the agent stops its sender to m5 before it polls again: applied within that one poll.
          const stopped = await until(`${nameOf(i)} to stop its sender to m5`, 10_000,
            async () => a.firstLine(new RegExp(`mesh: stopped mesh/t/${nameOf(i)}->m5$`), changed), tails);
          const nextPoll = server.hits.find((h) => h.client === ip4 && h.at > fetched.at);
          assert.ok(nextPoll === undefined || stopped.at <= nextPoll.at,
            `${nameOf(i)} applied the version of ${new Date(fetched.at).toISOString()} only after polling again`);
          assert.ok(a.firstLine(/mesh: generation 2 applied .* 4 member\(s\), 3 sender\(s\), a reflector$/, changed), a.logTail());
          const all = await expectSenders(i, [1, 2, 3, 4].filter((p) => p !== i), 10_000);
          // Measurements (gauges) go at once; counters and the histogram stay for the stale grace period
          // (docs/metrics.md) — frozen, which is checked below.
          const toM5 = all.filter((s) => s.labels.dst === 'm5' && !RETAINED.test(s.name));
          assert.equal(toM5.length, 0, `${nameOf(i)} still exports series to m5: ${[...new Set(toM5.map((s) => s.name))].join(', ')}`);
          assert.equal(gauge(all, 'twamp_mesh_generation'), 2);
        }
        // No run to m5 anywhere after that: its run counters are frozen.
        const runsToM5 = async () => Promise.all([1, 2, 3, 4].map(async (i) =>
          (await agent(i).scrape()).find((s) => s.name === 'twamp_sender_runs_total' && s.labels.dst === 'm5')?.value ?? 0));
        const runs0 = await runsToM5();
        // m5's reflector sees no new session once every in-flight one (≤ 0.1 s of packets + 0.5 s reply timeout) is over.
        await sleep(1500);
        // (Absent series: m5 no longer runs a reflector, which serves no session either.)
        const started = async () => gauge(await agent(5).scrape(), 'twamp_reflector_session_started_total');
        const before = await started();
        await sleep(3 * POLL_S * 1000);
        const after = await started();
        assert.ok(after === undefined || after === before, `m5's reflector started ${(after ?? 0) - (before ?? 0)} session(s) after its removal`);
        assert.deepEqual(await runsToM5(), runs0, 'runs to m5 (m1–m4) went on after its removal');
      });

      await t.test('the removed member stops its own senders within one poll', async () => {
        await until('m5 to stop its senders', POLL_S * 1000 + 5000, async () => {
          const tx = senderSeries(await agent(5).scrape());
          return tx.length === 0 ? true : undefined;
        }, () => agent(5).logTail());
      });

      await t.test('adding a member starts its sessions on every member and on the new one within one poll', async () => {
        const changed = Date.now();
        server.body = meshYaml([1, 2, 3, 4, 6]);
        const members = [1, 2, 3, 4, 6];
        for (const i of members) {
          const a = agent(i);
          const fetched = await until(`${nameOf(i)} to fetch the new version`, POLL_S * 1000 + 5000,
            async () => server.hits.find((h) => h.client === addrOf(i) && h.at >= changed && h.status === 200), tails);
          const re = i === 6 ? /mesh: generation \d+ applied .* 5 member\(s\), 4 sender\(s\), a reflector$/
            : /mesh: generation 3 applied .* 5 member\(s\), 4 sender\(s\), a reflector$/;
          const applied = await until(`${nameOf(i)} to apply the version with m6`, 10_000, async () => a.firstLine(re, changed), tails);
          const nextPoll = server.hits.find((h) => h.client === addrOf(i) && h.at > fetched.at);
          assert.ok(nextPoll === undefined || applied.at <= nextPoll.at,
            `${nameOf(i)} applied the version of ${new Date(fetched.at).toISOString()} only after polling again`);
          if (i !== 6) assert.ok(a.firstLine(new RegExp(`mesh: started mesh/t/${nameOf(i)}->m6 \\(to ${addrOf(6).replace(/\./g, '\\.')}:${CONTROL_PORT}\\)`), changed), a.logTail());
        }
        for (const i of members) {
          const all = await expectSenders(i, members.filter((p) => p !== i), 20_000);
          for (const s of senderSeries(all)) assert.equal(s.labels.src, nameOf(i));
        }
      });

      await t.test('the definition is fetched in full once per version; every other poll is a 304', async () => {
        // Three versions were served: m1–m4 and m5 fetched each (m5's own refusals do not re-fetch),
        // m6 too (it is named only by the third).
        for (let i = 1; i <= MEMBERS; i++) {
          const full = server.count(addrOf(i), 200);
          const notModified = server.count(addrOf(i), 304);
          assert.equal(full, 3, `${nameOf(i)}: ${full} full fetches for 3 versions (${notModified} × 304)`);
          assert.ok(notModified >= 3, `${nameOf(i)}: only ${notModified} conditional polls answered 304`);
        }
        assert.equal(server.hits.filter((h) => !agents.some((a) => h.client === addrOf(a.i))).length, 0, 'a request from outside the mesh');
        // Unchanged from here on: no full fetch in three more polls.
        const now = Date.now();
        await sleep(3 * POLL_S * 1000 + 500);
        for (let i = 1; i <= MEMBERS; i++) {
          assert.equal(server.count(addrOf(i), 200, now), 0, `${nameOf(i)} fetched an unchanged definition in full`);
          assert.ok(server.count(addrOf(i), 304, now) >= 2, `${nameOf(i)} stopped polling`);
        }
      });

      for (const a of agents) assert.ok(a.alive, `${nameOf(a.i)} exited:\n${a.logTail()}`);
    } finally {
      await Promise.all(agents.map((a) => a.stop()));
      await server.stop();
      teardownNetworkSync();
      process.removeListener('exit', onExit);
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
      rmSync(dir, { recursive: true, force: true });
    }
  });
