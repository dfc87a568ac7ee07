/**
 * Coalesced receive (receiveReportMs > 0): a native receive thread reads
 * datagrams and TX timestamps as they arrive and hands them to JS in batches,
 * so the event loop is not woken per reply; the kernel's receive timestamps
 * still say when each datagram arrived.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openTestSocket, type RxDatagram, type TxTimestamp } from '../../src/session/datapath.js';
import { needNative } from '../helpers/native.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('native receive thread (receiveReportMs)', () => {
  for (const { family, host } of [{ family: 4 as const, host: '127.0.0.1' }, { family: 6 as const, host: '::1' }]) {
    it(`IPv${family}: 30 datagrams over ~300 ms arrive in a few batches, each with its own kernel arrival time`, async (t) => {
      if (!needNative(t)) return;
      const batches: RxDatagram[][] = [];
      const tx: TxTimestamp[] = [];
      const r = await openTestSocket({ family, address: host, native: true, receiveReportMs: 100, onPackets: (b) => { batches.push(b); } });
      const s = await openTestSocket({ family, address: host, native: true, receiveReportMs: 100, onPackets: () => {}, onTxTimestamp: (x) => { tx.push(...x); } });
      try {
        // Linux turns receive timestamping on for the whole host lazily (a deferred static key) when the
        // first timestamping socket appears, so a datagram right after that can arrive unstamped; wait
        // until one is stamped by the kernel before the measured run.
        const warm = Date.now() + 5000;
        for (;;) {
          s.send(Buffer.from([0xff]), host, r.local.port);
          await sleep(120);
          if (batches.flat().some((d) => d.data[0] === 0xff && d.tsSource === 'kernel')) break;
          if (Date.now() > warm) assert.fail('no kernel-stamped datagram within 5 s');
        }
        await sleep(150);
        batches.length = 0;
        tx.length = 0;
        const sent: bigint[] = [];
        const ids: number[] = [];
        for (let i = 0; i < 30; i++) {
          const res = s.send(Buffer.from([i, 0, 0, 0]), host, r.local.port);
          sent.push(res.stampedRealtimeNs);
          ids.push(res.txId);
          await sleep(10);
        }
        const end = Date.now() + 5000;
        const measuredTx = (): TxTimestamp[] => tx.filter((x) => ids.includes(x.txId));
        while (batches.flat().filter((d) => d.data[0] !== 0xff).length < 30 || measuredTx().length < 30) {
          if (Date.now() > end) assert.fail(`timed out: ${batches.flat().length} datagrams, ${tx.length} TX stamps`);
          await sleep(20);
        }
        const all = batches.flat().filter((d) => d.data[0] !== 0xff);
        // Immediate delivery would take ~30 calls; a 100 ms grid over ~300 ms gives about 4 (generous bound for a busy host).
        assert.ok(batches.length <= 10, `${batches.length} deliveries for 30 datagrams`);
        for (let i = 0; i < 30; i++) {
          const d = all[i]!;
          assert.equal(d.data[0], i, 'in order');
          assert.equal(d.tsSource, 'kernel');
          assert.equal(d.ttl, 255);
          assert.ok(d.rxRealtimeNs >= sent[i]!, 'received after it was stamped');
          // The arrival time, not the delivery time: within 50 ms of the send although delivery waits up to 100 ms.
          assert.ok(d.rxRealtimeNs - sent[i]! < 50_000_000n, `datagram ${i}: rx ${(Number(d.rxRealtimeNs - sent[i]!) / 1e6).toFixed(1)} ms after the send`);
        }
        // Datagrams of one batch arrived ~10 ms apart: their timestamps differ although they were delivered together.
        const big = batches.find((b) => b.length >= 3);
        assert.ok(big, 'some batch holds several datagrams');
        assert.ok(big[big.length - 1]!.rxRealtimeNs - big[0]!.rxRealtimeNs >= 10_000_000n);
        // TX timestamps of send() come through the thread too, with the ids send() returned, after each stamp.
        const mine = measuredTx().sort((a, b) => a.txId - b.txId);
        assert.deepEqual(mine.map((x) => x.txId), ids);
        for (let i = 0; i < 30; i++) assert.ok(mine[i]!.realtimeNs >= sent[i]!);
      } finally {
        r.close();
        s.close();
      }
    });
  }

  it('close() with datagrams waiting drops them: no callback after close', async (t) => {
    if (!needNative(t)) return;
    let after = 0;
    let closed = false;
    const r = await openTestSocket({ family: 4, address: '127.0.0.1', native: true, receiveReportMs: 200, onPackets: () => { if (closed) after++; } });
    const s = await openTestSocket({ family: 4, address: '127.0.0.1', native: true, onPackets: () => {} });
    for (let i = 0; i < 5; i++) s.send(Buffer.alloc(8), '127.0.0.1', r.local.port);
    await sleep(20);
    r.close();
    closed = true;
    s.close();
    await sleep(400);
    assert.equal(after, 0);
  });

  it('a ref()d socket keeps the process alive; unref() lets it exit', async (t) => {
    if (!needNative(t)) return;
    const mod = fileURLToPath(new URL('../../src/session/datapath.js', import.meta.url));
    const run = (unref: boolean): Promise<number | null> => new Promise((resolve) => {
      const code = `import(${JSON.stringify(mod)}).then(async (m) => {
        const s = await m.openTestSocket({ family: 4, address: '127.0.0.1', native: true, receiveReportMs: 50, onPackets: () => {} });
        ${unref ? 's.unref();' : ''}
      });`;
      const cp = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: 'ignore' });
      const timer = setTimeout(() => { cp.kill('SIGKILL'); resolve(null); }, 1500);
      cp.once('exit', (c) => { clearTimeout(timer); resolve(c); });
    });
    assert.equal(await run(true), 0, 'unref()d: exits by itself');
    assert.equal(await run(false), null, 'ref()d: still running after 1.5 s');
  });
});
