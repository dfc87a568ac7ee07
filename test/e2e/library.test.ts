// The README's library examples, run: a plain MeterProvider with the stock
// Prometheus exporter, and NodeSDK with our generated Views and OTLP.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { metrics } from '@opentelemetry/api';
import { TwampSender, TwampReflector, createTwampViews } from '../../src/index.js';
import { freePort } from '../helpers/peers.js';
import { OtlpReceiver, valueOf } from '../helpers/otlpReceiver.js';
import { parseReflectorConfig, parseSenderConfig } from '../../src/config/index.js';

describe('library use', { timeout: 60_000 }, () => {
  it('plain MeterProvider + the stock PrometheusExporter', async () => {
    const port = await freePort();
    const exporter = new PrometheusExporter({ port, host: '127.0.0.1' });
    const meterProvider = new MeterProvider({ readers: [exporter] });
    const reflector = new TwampReflector(parseReflectorConfig({ id: 'refl', listen: '127.0.0.1', port: 0 }), { meterProvider });
    const { port: twamp } = await reflector.start();
    const sender = new TwampSender(parseSenderConfig({ id: 'voice', reflector: '127.0.0.1', port: twamp, n_packets: 10, model: 'g711', interval: 60 }),
      { meterProvider, labels: { site: 'ams' } });
    try {
      await sender.start();
      while (!sender.lastOutcome) await new Promise((r) => setTimeout(r, 50));
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.match(text, /^twamp_rx_packets\{[^}]*site="ams"[^}]*collector_id="voice"[^}]*\} 10/m);
      assert.match(text, /^twamp_reflector_reflected_pkt_total\{[^}]*\} 10/m);
    } finally {
      await sender.stop();
      await reflector.stop();
      await meterProvider.shutdown();
    }
  });

  it('NodeSDK with createTwampViews and OTLP: renamed and dropped metrics arrive as configured', async () => {
    const receiver = await OtlpReceiver.start();
    const saved = { ...process.env };
    Object.assign(process.env, { OTEL_TRACES_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'none' });
    const reflector = new TwampReflector(parseReflectorConfig({ id: 'refl', listen: '127.0.0.1', port: 0 }));
    const { port: twamp } = await reflector.start();
    const config = parseSenderConfig({
      id: 'voice', reflector: '127.0.0.1', port: twamp, n_packets: 10, model: 'g711', interval: 60,
      relabel: [
        { source_labels: ['__name__'], regex: 'twamp_rt_avg_delay_ns', target_label: '__name__', replacement: 'rtt_avg_ns' },
        { source_labels: ['__name__'], regex: 'twamp_(in|out)_mos', action: 'drop' },
      ],
    });
    const sdk = new NodeSDK({
      serviceName: 'my-probe',
      views: createTwampViews([config]),
      metricReaders: [new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: receiver.metricsUrl }), exportIntervalMillis: 500, exportTimeoutMillis: 500,
      })],
    });
    sdk.start();
    const sender = new TwampSender(config); // the global MeterProvider NodeSDK registered
    try {
      await sender.start();
      const req = await receiver.waitFor((r) => valueOf(r, 'rtt_avg_ns') !== undefined, 10_000);
      assert.ok(valueOf(req, 'rtt_avg_ns')! > 0);
      assert.equal(valueOf(req, 'twamp_rt_avg_delay_ns'), undefined, 'renamed');
      assert.equal(valueOf(req, 'twamp_in_mos'), undefined, 'dropped');
      assert.equal(valueOf(req, 'twamp_rx_packets', { collector_id: 'voice' }), 10);
      assert.equal(req.exports[0]?.resource['service.name'], 'my-probe');
    } finally {
      await sender.stop();
      await reflector.stop();
      await sdk.shutdown();
      metrics.disable();
      process.env = saved;
      await receiver.close();
    }
  });
});
