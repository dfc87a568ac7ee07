/**
 * Shared helpers of the benchmark: child processes talking JSON over
 * the IPC channel, deadlines, and number formatting. Nothing here measures.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { readdirSync, readFileSync } from 'node:fs';

/** Directory of the compiled bench scripts (dist/bench). */
export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class DeadlineError extends Error {}

/** Resolve with p, or reject with DeadlineError after ms (and call onTimeout). */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string, onTimeout?: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => {
      onTimeout?.();
      reject(new DeadlineError(`${what}: time bound of ${(ms / 1000).toFixed(0)} s exceeded`));
    }, ms);
    p.then((v) => { clearTimeout(t); resolve(v); }, (e: unknown) => { clearTimeout(t); reject(e); });
  });
}

/** Every child we started, killed by pid on exit so none outlives the bench. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) {
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
});

export interface BenchChild {
  proc: ChildProcess;
  /** Send a request and wait for the next message whose `type` is `replyType`. */
  request<T>(msg: Record<string, unknown>, replyType: string, timeoutMs: number): Promise<T>;
  /** Wait for the next message of `type`. */
  next<T>(type: string, timeoutMs: number): Promise<T>;
  stop(): Promise<void>;
}

/**
 * Fork dist/bench/<script>.js with an IPC channel. Messages are objects with a
 * `type`; a child that fails sends { type: 'error', message }.
 */
export function forkChild(script: string, args: string[] = [], execArgv: string[] = []): BenchChild {
  const proc = fork(join(BENCH_DIR, script), args, {
    execArgv: ['--expose-gc', ...execArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  live.add(proc);
  const queue: Array<Record<string, unknown>> = [];
  const waiters: Array<(m: Record<string, unknown>) => boolean> = [];
  let exited: string | undefined;
  proc.on('message', (m) => {
    const msg = m as Record<string, unknown>;
    for (let i = 0; i < waiters.length; i++) {
      if (waiters[i]!(msg)) { waiters.splice(i, 1); return; }
    }
    queue.push(msg);
  });
  const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
    live.delete(proc);
    exited = `bench child ${script} exited (code ${code}, signal ${signal})`;
    for (const w of [...waiters]) w({ type: 'error', message: exited });
  };
  proc.once('exit', onExit);

  const next = <T>(type: string, timeoutMs: number): Promise<T> => {
    const i = queue.findIndex((m) => m.type === type || m.type === 'error');
    if (i >= 0) {
      const m = queue.splice(i, 1)[0]!;
      return m.type === 'error' ? Promise.reject(new Error(String(m.message))) : Promise.resolve(m as T);
    }
    if (exited) return Promise.reject(new Error(exited));
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => {
        const k = waiters.indexOf(w);
        if (k >= 0) waiters.splice(k, 1);
        reject(new DeadlineError(`bench child ${script}: no '${type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      const w = (m: Record<string, unknown>): boolean => {
        if (m.type !== type && m.type !== 'error') return false;
        clearTimeout(t);
        if (m.type === 'error') reject(new Error(String(m.message)));
        else resolve(m as T);
        return true;
      };
      waiters.push(w);
    });
  };

  return {
    proc,
    next,
    request<T>(msg: Record<string, unknown>, replyType: string, timeoutMs: number): Promise<T> {
      proc.send(msg);
      return next<T>(replyType, timeoutMs);
    },
    async stop(): Promise<void> {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const gone = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 2000);
      await gone;
      clearTimeout(t);
    },
  };
}

/** In a child: send a message to the parent (no-op without a channel). */
export function toParent(msg: Record<string, unknown>): void {
  process.send?.(msg);
}

/** In a child: report an error to the parent and exit non-zero. */
export function failToParent(e: unknown): never {
  const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
  toParent({ type: 'error', message });
  process.exitCode = 1;
  setTimeout(() => process.exit(1), 100);
  throw e;
}

export const MB = 1024 * 1024;

export function fmt(v: number | undefined | null, digits = 1): string {
  if (v === undefined || v === null || !Number.isFinite(v)) return 'n/a';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function fmtInt(v: number | undefined | null): string {
  return fmt(v, 0);
}

/** A plain-text table: first row is the header. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, c.length); });
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out = [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of rows.slice(1)) out.push(line(r));
  return out.join('\n');
}

/**
 * User+system CPU milliseconds of a process and all its descendants, live or
 * reaped (Linux /proc; twampd serves each control connection in a forked child), or
 * undefined where /proc is not available. Resolution: one clock tick (10 ms).
 */
export function cpuMsOfTree(root: number): number | undefined {
  const ticksPerSecond = 100; // USER_HZ, fixed at 100 on Linux
  const info = new Map<number, { ppid: number; ms: number }>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return undefined;
  }
  for (const d of entries) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      // utime + stime + cutime + cstime: a reaped child's CPU moves into its parent's c*time
      // (twampd's per-session child exits at Stop-Sessions, before the second reading).
      const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
      info.set(Number(d), { ppid: Number(f[1]), ms: (ticks * 1000) / ticksPerSecond });
    } catch {
      // gone meanwhile
    }
  }
  if (!info.has(root)) return undefined;
  let total = 0;
  for (const [pid, v] of info) {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = info.get(p)?.ppid ?? 0, hops++) {
      if (p === root) { total += v.ms; break; }
    }
  }
  return total;
}

/** Pids of the live descendants of `root` (Linux /proc), or [] where /proc is not available. */
export function descendantPids(root: number): number[] {
  const parent = new Map<number, number>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const d of entries) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  for (const pid of parent.keys()) {
    for (let p = parent.get(pid) ?? 0, hops = 0; p > 1 && hops < 64; p = parent.get(p) ?? 0, hops++) {
      if (p === root) { out.push(pid); break; }
    }
  }
  return out;
}

/** User and system CPU ms per thread of `pid` (/proc/<pid>/task), with each thread's name; undefined when gone. */
export function threadCpuMs(pid: number): Map<number, { name: string; userMs: number; sysMs: number }> | undefined {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  const out = new Map<number, { name: string; userMs: number; sysMs: number }>();
  for (const t of tids) {
    try {
      const st = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      out.set(Number(t), { name: st.slice(st.indexOf('(') + 1, st.lastIndexOf(')')), userMs: Number(f[11]) * 10, sysMs: Number(f[12]) * 10 });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}
