/**
 * Process helpers for the accuracy lab: run a command with a bounded wait,
 * and keep long-lived children (reflector, delay relay) that talk in lines.
 * Every wait here has a timeout; nothing blocks forever.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Children of run() still running, so an interrupted lab can kill them (by pid, only its own). */
const running = new Set<ChildProcess>();

/** SIGKILL every run() child still running (exit paths). */
export function killRunning(): void {
  for (const c of running) {
    try { c.kill('SIGKILL'); } catch { /* already gone */ }
  }
}

/** Run `cmd args` to completion (killed after timeoutMs), optionally feeding `input` on stdin. */
export function run(cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (e) {
      resolve({ code: 127, signal: null, stdout: '', stderr: String(e), timedOut: false });
      return;
    }
    running.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', (e) => {
      running.delete(child);
      clearTimeout(timer);
      resolve({ code: 127, signal: null, stdout, stderr: stderr + String(e), timedOut });
    });
    child.on('close', (code, signal) => {
      running.delete(child);
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(opts.input ?? '');
  });
}

/** Like run(), but throws with the command and its stderr when it fails. */
export async function must(cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    const why = r.timedOut ? 'timed out' : `exit ${r.code ?? r.signal}`;
    throw new Error(`${cmd} ${args.join(' ')}: ${why}: ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r.stdout;
}

/** A long-lived child whose stdout is read line by line. */
export class LineChild {
  readonly proc: ChildProcess;
  private readonly lines: string[] = [];
  private waiters: Array<() => void> = [];
  private stderrTail = '';
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exitPromise: Promise<void>;

  constructor(readonly name: string, cmd: string, args: readonly string[]) {
    this.proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.proc.stdout! }).on('line', (l) => { this.lines.push(l); this.wake(); });
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => { this.stderrTail = (this.stderrTail + d).slice(-4000); });
    this.proc.stdin!.on('error', () => undefined);
    this.exitPromise = new Promise((resolve) => {
      this.proc.on('error', (e) => { this.stderrTail += String(e); this.exited ??= { code: 127, signal: null }; this.wake(); resolve(); });
      this.proc.on('exit', (code, signal) => { this.exited = { code, signal }; this.wake(); resolve(); });
    });
  }

  get stderr(): string {
    return this.stderrTail;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The next stdout line starting with `prefix` (earlier other lines are dropped), within timeoutMs. */
  async waitLine(prefix: string, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.lines.length > 0) {
        const l = this.lines.shift()!;
        if (l.startsWith(prefix)) return l.slice(prefix.length).trim();
      }
      if (this.exited) {
        throw new Error(`${this.name} exited (${this.exited.code ?? this.exited.signal}) before printing "${prefix}"; stderr: ${this.stderrTail.trim()}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name}: no "${prefix}" line within ${timeoutMs} ms; stderr: ${this.stderrTail.trim()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  send(line: string): void {
    if (!this.exited) this.proc.stdin!.write(`${line}\n`);
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves once the process is gone (bounded). */
  async stop(graceMs = 3000): Promise<void> {
    if (this.exited || this.proc.pid === undefined) return;
    this.proc.kill('SIGTERM');
    const killed = await Promise.race([this.exitPromise.then(() => true), sleep(graceMs).then(() => false)]);
    if (!killed && !this.exited) {
      this.proc.kill('SIGKILL');
      await Promise.race([this.exitPromise, sleep(2000)]);
    }
  }

  /** Synchronous last-resort kill (process exit handlers). */
  killNow(): void {
    if (!this.exited && this.proc.pid !== undefined) {
      try { this.proc.kill('SIGKILL'); } catch { /* already gone */ }
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
