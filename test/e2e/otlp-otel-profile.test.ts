// The otel naming profile through OTLP: dotted names, seconds, semantic-
// convention attributes with server.port as an integer, the host as a
// resource attribute, and OTEL_RESOURCE_ATTRIBUTES overriding our defaults.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseAgentConfig } from '../../src/config/load.js';
import { Agent } from '../../src/cli/agent.js';
import { silentLogger } from '../../src/util/log.js';
import { freePort } from '../helpers/peers.js';
import { OtlpReceiver, metricOf, pointsOf } from '../helpers/otlpReceiver.js';

describe('otel profile over OTLP', { timeout: 60_000 }, () => {
  it('names, units, attributes and resource', async () => {
    const receiver = await OtlpReceiver.start();
    const port = await freePort();
    const saved = process.env.OTEL_RESOURCE_ATTRIBUTES;
    process.env.OTEL_RESOURCE_ATTRIBUTES = 'deployment.environment.name=lab,service.instance.id=probe-7';
    const agent = new Agent(parseAgentConfig(`
$version: "1.0"
naming: otel
agent: { host: h1, labels: { site: lab } }
otlp: { endpoint: ${receiver.metricsUrl}, protocol: http/json, interval: 1, timeout: 1 }
collectors:
  - { id: refl, type: twamp_reflector, listen: 127.0.0.1, port: ${port} }
  - { id: snd, type: twamp_sender, reflector: 127.0.0.1, port: ${port}, n_packets: 10, model: g711, interval: 1, dscp: ef }
`), { logger: silentLogger, env: process.env });
    await agent.start();
    try {
      const req = await receiver.waitFor((r) => pointsOf(r, 'twamp.sender.round_trip.delay.avg').length > 0, 15_000);
      const m = metricOf(req, 'twamp.sender.round_trip.delay.avg')!;
      assert.equal(m.unit, 's');
      assert.equal(m.kind, 'gauge');
      const p = pointsOf(req, 'twamp.sender.round_trip.delay.avg')[0]!;
      assert.ok(p.value > 0 && p.value < 1, `seconds: ${p.value}`);
      assert.equal(p.attributes['server.address'], '127.0.0.1');
      assert.equal(p.attributes['server.port'], port, 'server.port is an integer attribute');
      assert.equal(p.attributes['network.type'], 'ipv4');
      assert.equal(p.attributes['twamp.collector.id'], 'snd');
      assert.equal(p.attributes['twamp.dscp'], 'ef');
      assert.equal(p.attributes.site, 'lab');
      assert.equal(p.attributes.host, undefined, 'the host is a resource attribute in this profile');
      const res = req.exports[0]!.resource;
      assert.equal(res['service.name'], 'otel-twamp');
      assert.equal(res['host.name'], 'h1');
      assert.equal(res['deployment.environment.name'], 'lab', 'OTEL_RESOURCE_ATTRIBUTES added');
      assert.equal(res['service.instance.id'], 'probe-7', 'OTEL_RESOURCE_ATTRIBUTES overrides our default');
      const refl = metricOf(req, 'twamp.reflector.reflected.packets');
      assert.equal(refl?.kind, 'sum');
      assert.equal(refl?.unit, '{packet}');
      const hist = metricOf(req, 'twamp.sender.round_trip.delay');
      assert.equal(hist?.kind, 'histogram');
      assert.equal(hist?.unit, 's');
    } finally {
      await agent.stop();
      await receiver.close();
      if (saved === undefined) delete process.env.OTEL_RESOURCE_ATTRIBUTES; else process.env.OTEL_RESOURCE_ATTRIBUTES = saved;
    }
  });
});
