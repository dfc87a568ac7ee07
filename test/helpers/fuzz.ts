// Budget and replay settings common to the property-based fuzz suites
// (test/fuzz/*.test.ts, fast-check).
//
//   FUZZ_SCALE  multiplies every property's run count (default 1: the bounded
//               budget of `npm test`; `npm run fuzz` uses 50).
//   FUZZ_SEED   replays a failure: fast-check prints `{ seed: …, path: … }` in
//               the failure message; set FUZZ_SEED (and FUZZ_PATH for the
//               exact shrunk case) and run the same test file again.
//
// Each property gets its own seed by default (fast-check's Date.now()), so
// repeated `npm test` runs explore different inputs.
import fc from 'fast-check';

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return n;
}

/** FUZZ_SCALE (default 1). */
export const FUZZ_SCALE = envNumber('FUZZ_SCALE', 1);

/** Number of runs for a property whose bounded (npm test) budget is `base`. */
export function numRuns(base: number): number {
  return Math.max(1, Math.round(base * FUZZ_SCALE));
}

/** A node:test timeout for a test whose budget at scale 1 is `baseMs` (never below `baseMs`). */
export function testTimeout(baseMs: number): number {
  return Math.round(baseMs * Math.max(1, FUZZ_SCALE));
}

/** fast-check parameters: run count from numRuns, seed/path from FUZZ_SEED/FUZZ_PATH. */
export function fuzzParams<T>(base: number, extra: fc.Parameters<T> = {}): fc.Parameters<T> {
  // includeErrorInReport: the failure message shows what the property threw, not only the counterexample.
  const p: fc.Parameters<T> = { numRuns: numRuns(base), includeErrorInReport: true, ...extra };
  const seed = process.env.FUZZ_SEED;
  if (seed !== undefined && seed.trim() !== '') {
    const n = Number(seed);
    if (!Number.isInteger(n)) throw new Error(`FUZZ_SEED must be an integer, got ${JSON.stringify(seed)}`);
    p.seed = n;
    const path = process.env.FUZZ_PATH;
    if (path !== undefined && path.trim() !== '') p.path = path;
  }
  return p;
}

/** fc.assert with the budget: `base` runs at scale 1. */
export function check<Ts extends [unknown, ...unknown[]]>(
  base: number, prop: fc.IProperty<Ts>, extra: fc.Parameters<Ts> = {},
): void {
  fc.assert(prop, fuzzParams(base, extra));
}

/** Async fc.assert with the budget. */
export function checkAsync<Ts extends [unknown, ...unknown[]]>(
  base: number, prop: fc.IAsyncProperty<Ts>, extra: fc.Parameters<Ts> = {},
): Promise<void> {
  return fc.assert(prop, fuzzParams(base, extra));
}

/** Asserts `fn` returns, or throws an instance of one of `allowed`; rethrows anything else with context. */
export function onlyThrows(allowed: readonly (abstract new (...a: never[]) => Error)[], fn: () => unknown, what = ''): unknown {
  try {
    return fn();
  } catch (e) {
    if (allowed.some((cls) => e instanceof cls)) return e;
    const name = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    const expected = allowed.map((c) => c.name).join(' | ');
    throw new Error(`${what ? `${what}: ` : ''}expected a return or ${expected}, got ${name}`, { cause: e });
  }
}

/**
 * Arbitrary byte arrays around an exact message size: any length in
 * 0..2·size, and lengths size−2..size+2 (where off-by-one bugs live).
 */
export function bytesAround(size: number): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.uint8Array({ minLength: 0, maxLength: 2 * size }),
    fc.integer({ min: Math.max(0, size - 2), max: size + 2 }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
  );
}

/** Mutations of a valid encoding: truncation, bit flips, octet overwrites, extension. */
export type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'flip'; bits: number[] }
  | { kind: 'set'; at: number[]; value: number }
  | { kind: 'extend'; extra: Uint8Array };

export function mutation(): fc.Arbitrary<Mutation> {
  return fc.oneof(
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('flip' as const), bits: fc.array(fc.nat(), { minLength: 1, maxLength: 8 }) }),
    fc.record({ kind: fc.constant('set' as const), at: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 32 }) }),
  );
}

/** Applies a mutation to a copy of `valid`. */
export function mutate(valid: Uint8Array, m: Mutation): Buffer {
  const b = Buffer.from(valid);
  switch (m.kind) {
    case 'truncate':
      return b.subarray(0, b.length === 0 ? 0 : m.at % b.length);
    case 'flip':
      if (b.length > 0) for (const bit of m.bits) b[(bit >>> 3) % b.length]! ^= 1 << (bit & 7);
      return b;
    case 'set':
      if (b.length > 0) for (const at of m.at) b[at % b.length] = m.value;
      return b;
    case 'extend':
      return Buffer.concat([b, m.extra]);
  }
}

/**
 * Records every unhandled rejection and uncaught exception while installed
 * (a crash in a socket callback shows up here, not in the test's promise).
 */
export class CrashTrap {
  readonly errors: unknown[] = [];
  private readonly onRejection = (e: unknown): void => { this.errors.push(e); };
  private readonly onException = (e: unknown): void => { this.errors.push(e); };

  install(): this {
    process.on('unhandledRejection', this.onRejection);
    process.on('uncaughtException', this.onException);
    return this;
  }

  uninstall(): void {
    process.off('unhandledRejection', this.onRejection);
    process.off('uncaughtException', this.onException);
  }

  /** Throws (with the first error as cause) if anything was trapped. */
  assertClean(what = ''): void {
    if (this.errors.length === 0) return;
    const first = this.errors[0];
    const text = first instanceof Error ? first.stack ?? first.message : String(first);
    throw new Error(`${what ? `${what}: ` : ''}${this.errors.length} unhandled error(s); first: ${text}`, { cause: first });
  }
}
