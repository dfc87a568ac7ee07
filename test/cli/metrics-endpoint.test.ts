// The Prometheus endpoint shares the process with the reflector, so a scraper
// must not be able to take its file descriptors, memory or event loop: held
// connections are capped (the longest idle makes room), pipelining is
// bounded, a rendered exposition is reused for a second and concurrent
// scrapes share one collection, scrapes per second are bounded, and only
// GET/HEAD of the metrics path are answered.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { request } from 'node:http';
import { PrometheusEndpoint, PROMETHEUS_LIMIT_DEFAULTS, type PrometheusLimits } from '../../src/cli/exporters.js';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

const HOST = '127.0.0.1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function withEndpoint(limits: Partial<PrometheusLimits>, fn: (e: PrometheusEndpoint, port: number) => Promise<void>): Promise<void> {
  const e = new PrometheusEndpoint({ host: HOST, port: 0, path: '/metrics' }, 'legacy', limits);
  const mp = new MeterProvider({ readers: [e.reader] });
  mp.getMeter('t').createObservableGauge('probe_value').addCallback((r) => r.observe(1, { a: 'b' }));
  const { port } = await e.start();
  try {
    await fn(e, port);
  } finally {
    await mp.shutdown();
    await e.stop();
  }
}

/** One request on a fresh connection: status and body, or the error. */
function get(port: number, path = '/metrics', method = 'GET', timeoutMs = 5_000): Promise<{ status: number; body: string; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: HOST, port, path, method, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode!, body, connection: res.headers.connection }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function openIdle(port: number, n: number): Promise<Socket[]> {
  return Promise.all(Array.from({ length: n }, () => new Promise<Socket>((resolve) => {
    const s = connect({ host: HOST, port });
    s.on('error', () => undefined);
    s.once('connect', () => resolve(s));
    s.once('close', () => resolve(s));
  })));
}

async function until(cond: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await sleep(20);
}

describe('Prometheus endpoint limits', { timeout: 60_000 }, () => {
  it('defaults', () => {
    assert.deepEqual({ ...PROMETHEUS_LIMIT_DEFAULTS }, {
      maxConnections: 64, maxRequestsPerSocket: 100, maxPipelined: 4, keepAliveTimeoutMs: 5_000,
      requestTimeoutMs: 10_000, cacheMs: 1_000, maxScrapesPerSecond: 20,
    });
  });

  it('500 idle connections: the server holds at most maxConnections, and a scrape still works', async () => {
    await withEndpoint({}, async (e, port) => {
      const socks: Socket[] = [];
      for (let i = 0; i < 5; i++) socks.push(...await openIdle(port, 100));
      await until(() => e.stats.evicted + e.stats.refused >= 500 - 64);
      assert.ok(e.connectionCount <= 64, `server holds ${e.connectionCount}`);
      await until(() => socks.filter((s) => !s.destroyed && !s.readableEnded).length <= 64);
      const open = socks.filter((s) => !s.destroyed && !s.readableEnded).length;
      assert.ok(open <= 64, `${open} of 500 client sockets still open`);
      assert.ok(e.stats.evicted >= 500 - 64, JSON.stringify(e.stats));
      const r = await get(port);
      assert.equal(r.status, 200);
      assert.match(r.body, /^probe_value\{a="b"\} 1$/m);
      assert.ok(e.connectionCount <= 64);
      for (const s of socks) s.destroy();
    });
  });

  it('a connection that sends nothing is closed after requestTimeoutMs', async () => {
    await withEndpoint({ requestTimeoutMs: 300, keepAliveTimeoutMs: 200 }, async (e, port) => {
      const [s] = await openIdle(port, 1);
      const closed = new Promise<void>((r) => s!.once('close', () => r()));
      s!.write('GET /metr'); // and never the rest (slowloris)
      await Promise.race([closed, sleep(5_000).then(() => assert.fail('still open after 5 s'))]);
      await until(() => e.connectionCount === 0);
      assert.equal(e.connectionCount, 0);
    });
  });

  it('2,000 pipelined scrapes on each of 20 connections: at most one collection per cache interval, pipelining closed', async () => {
    await withEndpoint({ maxScrapesPerSecond: 1_000_000 }, async (e, port) => {
      const flood = Buffer.from(`GET /metrics HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`.repeat(2000));
      const t0 = performance.now();
      let responses = 0;
      const socks = await Promise.all(Array.from({ length: 20 }, () => new Promise<Socket>((resolve) => {
        const s = connect({ host: HOST, port });
        s.on('error', () => undefined);
        s.on('data', (d: Buffer) => { responses += d.toString('latin1').split('HTTP/1.1 200').length - 1; });
        s.once('connect', () => { s.write(flood); resolve(s); });
      })));
      await until(() => socks.every((s) => s.destroyed || s.readableEnded), 10_000);
      const elapsed = performance.now() - t0;
      assert.ok(socks.every((s) => s.destroyed || s.readableEnded), 'every flooding connection was closed');
      assert.equal(e.stats.pipelineClosed, 20, JSON.stringify(e.stats));
      assert.ok(responses <= 20 * PROMETHEUS_LIMIT_DEFAULTS.maxPipelined, `${responses} responses`);
      // 40,000 requests sent: collections bounded by the elapsed time, not by the requests.
      assert.ok(e.stats.collections <= 1 + Math.ceil(elapsed / PROMETHEUS_LIMIT_DEFAULTS.cacheMs), `${e.stats.collections} collections in ${Math.round(elapsed)} ms`);
      assert.equal((await get(port)).status, 200, 'still serving');
    });
  });

  it('concurrent scrapes share one collection; a fresh one after the cache interval', async () => {
    await withEndpoint({ cacheMs: 300, maxScrapesPerSecond: 1_000 }, async (e, port) => {
      const rs = await Promise.all(Array.from({ length: 30 }, () => get(port)));
      assert.ok(rs.every((r) => r.status === 200 && /probe_value/.test(r.body)));
      assert.equal(e.stats.collections, 1);
      await sleep(350);
      assert.equal((await get(port)).status, 200);
      assert.equal(e.stats.collections, 2);
    });
  });

  it('scrapes per second are bounded: beyond the budget 429 and the connection closes', async () => {
    await withEndpoint({ maxScrapesPerSecond: 5 }, async (e, port) => {
      const rs = [];
      for (let i = 0; i < 12; i++) rs.push(await get(port));
      const ok = rs.filter((r) => r.status === 200).length;
      const limited = rs.filter((r) => r.status === 429);
      assert.ok(ok >= 5 && ok <= 7, `${ok} answered`); // burst of 5, plus what refilled meanwhile
      assert.equal(limited.length, 12 - ok);
      assert.ok(limited.every((r) => r.connection === 'close'));
      assert.equal(e.stats.rateLimited, 12 - ok);
    });
  });

  it('a keep-alive connection is closed after maxRequestsPerSocket requests', async () => {
    await withEndpoint({ maxRequestsPerSocket: 3, maxScrapesPerSecond: 1_000 }, async (_e, port) => {
      const s = connect({ host: HOST, port });
      let text = '';
      s.on('data', (d: Buffer) => { text += d.toString('latin1'); });
      const closed = new Promise<void>((r) => s.once('close', () => r()));
      for (let i = 0; i < 3; i++) {
        s.write(`GET /metrics HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
        await until(() => text.split('HTTP/1.1 200').length - 1 === i + 1);
      }
      await Promise.race([closed, sleep(5_000).then(() => assert.fail('not closed'))]);
      assert.equal(text.split('HTTP/1.1 200').length - 1, 3);
      assert.match(text, /connection: close/i);
    });
  });

  it('only GET and HEAD of the metrics path', async () => {
    await withEndpoint({}, async (e, port) => {
      assert.equal((await get(port, '/other')).status, 404);
      assert.equal((await get(port, '/metrics', 'POST')).status, 405);
      assert.equal((await get(port, '/metrics', 'DELETE')).status, 405);
      const head = await get(port, '/metrics', 'HEAD');
      assert.equal(head.status, 200);
      assert.equal(head.body, '');
      assert.equal(e.stats.collections, 0, 'HEAD does not collect');
      assert.equal((await get(port, '/metrics?x=1')).status, 200);
    });
  });

  it('a request body is not read: the answer closes the connection', async () => {
    await withEndpoint({}, async (_e, port) => {
      const s = connect({ host: HOST, port });
      let text = '';
      s.on('data', (d: Buffer) => { text += d.toString('latin1'); });
      s.on('error', () => undefined);
      const closed = new Promise<void>((r) => s.once('close', () => r()));
      s.write(`GET /metrics HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 100000000\r\n\r\n${'x'.repeat(1000)}`);
      await Promise.race([closed, sleep(5_000).then(() => assert.fail('not closed'))]);
      assert.match(text, /^HTTP\/1\.1 200/);
      assert.match(text, /connection: close/i);
    });
  });
});
