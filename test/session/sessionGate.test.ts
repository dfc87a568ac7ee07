// The agent's session gate: a total cap and a per-reflector cap on sessions at
// once, waiters served first come first served among those that fit.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SessionGate } from '../../src/session/sessionGate.js';
import { TwampSessionError } from '../../src/session/errors.js';

/** Lets pending promise callbacks run. */
const tick = () => new Promise<void>((r) => setImmediate(r));

/** acquire() whose grant order is recorded in `order`. */
function take(gate: SessionGate, dest: string, order: string[], label: string, signal?: AbortSignal) {
  const p = gate.acquire(dest, signal).then((release) => { order.push(label); return release; });
  p.catch(() => undefined);
  return p;
}

describe('SessionGate', () => {
  it('never runs more than maxConcurrent at once; the queue is served in arrival order', async () => {
    const gate = new SessionGate({ maxConcurrent: 2, maxPerDestination: 10 });
    const order: string[] = [];
    const ps = ['a', 'b', 'c', 'd', 'e'].map((d) => take(gate, `10.0.0.${d.charCodeAt(0)}`, order, d));
    await tick();
    assert.deepEqual(order, ['a', 'b']);
    assert.deepEqual({ active: gate.stats.active, queued: gate.stats.queued }, { active: 2, queued: 3 });
    (await ps[1]!)();
    await tick();
    assert.deepEqual(order, ['a', 'b', 'c']);
    (await ps[0]!)();
    await tick();
    assert.deepEqual(order, ['a', 'b', 'c', 'd']);
    assert.equal(gate.stats.active, 2);
    for (const p of ps.slice(2, 4)) (await p)();
    await tick();
    assert.deepEqual(order, ['a', 'b', 'c', 'd', 'e']);
    (await ps[4]!)();
    assert.deepEqual({ ...gate.stats, waitMs: 0 }, { active: 0, queued: 0, granted: 5, waited: 3, waitMs: 0 });
  });

  it('caps sessions to one reflector (the control connections its per-client limit counts) without blocking other reflectors', async () => {
    const gate = new SessionGate({ maxConcurrent: 100, maxPerDestination: 8 });
    const order: string[] = [];
    const toA = Array.from({ length: 10 }, (_, i) => take(gate, '192.0.2.1', order, `a${i}`));
    const toB = take(gate, '192.0.2.2', order, 'b0');
    await tick();
    // The 9th and 10th to A wait; B, asked later, is not held up behind them.
    assert.deepEqual(order, ['a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7', 'b0']);
    assert.equal(gate.activeTo('192.0.2.1'), 8);
    // The same reflector however its name is cased.
    const upper = take(gate, '192.0.2.1'.toUpperCase(), order, 'A');
    (await toA[3]!)();
    await tick();
    assert.deepEqual(order.slice(9), ['a8']);
    assert.equal(gate.activeTo('192.0.2.1'), 8);
    (await toB)();
    await tick();
    assert.equal(order.length, 10, 'a slot of B does not let a ninth session to A start');
    for (const i of [0, 1]) (await toA[i]!)();
    await tick();
    assert.deepEqual(order.slice(10), ['a9', 'A']);
    void upper;
  });

  it('gives a freed slot to the oldest waiter that fits, not to a newcomer', async () => {
    const gate = new SessionGate({ maxConcurrent: 1, maxPerDestination: 1 });
    const order: string[] = [];
    const first = take(gate, 'x', order, 'x1');
    const waiting = take(gate, 'y', order, 'y1');
    await tick();
    const release = await first;
    release();
    const late = take(gate, 'z', order, 'z1');
    await tick();
    assert.deepEqual(order, ['x1', 'y1']);
    (await waiting)();
    await tick();
    assert.deepEqual(order, ['x1', 'y1', 'z1']);
    (await late)();
  });

  it('a waiter whose signal aborts leaves the queue with reason "aborted"; release is idempotent', async () => {
    const gate = new SessionGate({ maxConcurrent: 1, maxPerDestination: 1 });
    const order: string[] = [];
    const held = await take(gate, 'r', order, 'r1');
    const ac = new AbortController();
    const gone = take(gate, 'r', order, 'r2', ac.signal);
    const next = take(gate, 's', order, 's1');
    await tick();
    assert.equal(gate.stats.queued, 2);
    ac.abort();
    await assert.rejects(gone, (e: unknown) => e instanceof TwampSessionError && e.reason === 'aborted');
    assert.equal(gate.stats.queued, 1);
    held();
    held();
    await tick();
    assert.deepEqual(order, ['r1', 's1']);
    assert.equal(gate.stats.active, 1);
    // Already aborted: rejected at once, never queued.
    await assert.rejects(gate.acquire('t', AbortSignal.abort()), (e: unknown) => e instanceof TwampSessionError && e.reason === 'aborted');
    assert.equal(gate.stats.queued, 0);
    (await next)();
    assert.equal(gate.stats.active, 0);
  });

  it('counts the time spent waiting', async () => {
    let now = 1000;
    const gate = new SessionGate({ maxConcurrent: 1, maxPerDestination: 1 }, () => now);
    const a = await gate.acquire('a');
    const b = gate.acquire('b');
    now += 250;
    a();
    (await b)();
    assert.equal(gate.stats.waitMs, 250);
    assert.equal(gate.stats.waited, 1);
  });

  it('new limits serve the waiters that now fit', async () => {
    const gate = new SessionGate({ maxConcurrent: 1, maxPerDestination: 1 });
    const order: string[] = [];
    const a = take(gate, 'a', order, 'a');
    const b = take(gate, 'b', order, 'b');
    await tick();
    assert.deepEqual(order, ['a']);
    gate.setLimits({ maxConcurrent: 2, maxPerDestination: 1 });
    await tick();
    assert.deepEqual(order, ['a', 'b']);
    (await a)();
    (await b)();
    assert.throws(() => gate.setLimits({ maxConcurrent: 0, maxPerDestination: 1 }), /maxConcurrent must be an integer ≥ 1/);
  });

  it('a destination cap lowers the per-reflector cap of that reflector only (never raises it)', async () => {
    const gate = new SessionGate({ maxConcurrent: 100, maxPerDestination: 3 });
    gate.setDestinationCaps(new Map([['192.0.2.1:862', 1], ['192.0.2.3:862', 50]]));
    assert.deepEqual([gate.capOf('192.0.2.1:862'), gate.capOf('192.0.2.2:862'), gate.capOf('192.0.2.3:862')], [1, 3, 3]);
    const order: string[] = [];
    const a = [0, 1].map((i) => take(gate, '192.0.2.1:862', order, `a${i}`));
    const b = [0, 1, 2, 3].map((i) => take(gate, '192.0.2.2:862', order, `b${i}`));
    await tick();
    assert.deepEqual(order, ['a0', 'b0', 'b1', 'b2']);
    // Lifting the cap serves the waiter at once.
    gate.setDestinationCaps(new Map());
    await tick();
    assert.deepEqual(order, ['a0', 'b0', 'b1', 'b2', 'a1']);
    for (const p of [...a, ...b.slice(0, 3)]) (await p)();
    await tick();
    (await b[3]!)();
    assert.equal(gate.stats.active, 0);
    assert.throws(() => gate.setDestinationCaps(new Map([['x', 0]])), /the cap of x must be an integer ≥ 1/);
  });
});
