// Every model × {bandwidth, size} combination: valid ones parse, invalid ones
// name the offending key (validated through createTrafficModel).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SenderConfig } from '../../src/config/index.js';
import { agentWith, issueAt, parse, parseError } from './helpers.js';

function sender(modelKeys: string, reflector = '192.0.2.1'): string {
  return agentWith(`
- id: m
  type: twamp_sender
  reflector: "${reflector}"
  n_packets: 10
${modelKeys
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => `  ${l.trim()}`)
  .join('\n')}`);
}

const OK: [string, SenderConfig['model']][] = [
  ['model: g711', { model: 'g711' }],
  ['model: g729', { model: 'g729' }],
  ['model: cbr\nbandwidth: 10000000\nsize: 256', { model: 'cbr', bandwidth: 10_000_000, size: 256 }],
  ['model: cbr\nbandwidth: 8000000\nsize: 100', { model: 'cbr', bandwidth: 8_000_000, size: 100 }],
  ['model: imix\nbandwidth: 10000000', { model: 'imix', bandwidth: 10_000_000 }],
];

/** keys → [offending key, message pattern] */
const BAD: [string, string, RegExp][] = [
  ['model: g711\nbandwidth: 64000', 'bandwidth', /not used by model g711/],
  ['model: g711\nsize: 200', 'size', /not used by model g711/],
  ['model: g729\nbandwidth: 64000', 'bandwidth', /not used by model g729/],
  ['model: g729\nsize: 60', 'size', /not used by model g729/],
  ['model: cbr\nbandwidth: 10000000', 'size', /required/],
  ['model: cbr\nsize: 256', 'bandwidth', /required/],
  ['model: cbr', 'bandwidth', /required/],
  ['model: cbr\nbandwidth: 1000\nsize: 256', 'bandwidth', /below one packet per second/],
  ['model: cbr\nbandwidth: 10000000\nsize: 30', 'size', /below the smallest TWAMP test packet/],
  ['model: imix', 'bandwidth', /required/],
  ['model: imix\nbandwidth: 10000000\nsize: 256', 'size', /not used by model imix/],
  ['model: imix\nbandwidth: 1000', 'bandwidth', /below one packet per second/],
  ['model: g723', 'model', /one of "g711", "g729", "cbr", "imix"/],
  ['', 'model', /required key is missing/],
  ['model: cbr\nbandwidth: -5\nsize: 256', 'bandwidth', /expected an integer ≥ 1, got -5/],
  ['model: cbr\nbandwidth: 1e7\nsize: 25.5', 'size', /expected an integer ≥ 1, got 25.5/],
];

describe('traffic model keys', () => {
  for (const [keys, model] of OK) {
    it(`accepts ${keys.replace(/\n/g, ', ')}`, () => {
      assert.deepEqual((parse(sender(keys)).collectors[0] as SenderConfig).model, model);
    });
  }

  for (const [keys, key, pattern] of BAD) {
    it(`rejects ${keys.replace(/\n/g, ', ') || '(no model)'} naming ${key}`, () => {
      const err = parseError(sender(keys));
      const issue = issueAt(err, ['collectors', 0, key]);
      assert.match(issue.message, pattern);
      assert.equal(issue.collectorId, 'm');
      assert.ok(issue.line !== undefined && issue.column !== undefined);
      assert.match(err.message, new RegExp(`^agent\\.yaml:\\d+:\\d+: collectors\\[0\\] \\(id "m"\\): ${key}: `, 'm'));
    });
  }

  it('a key given points at its own line; a missing key at the collector', () => {
    const tooLow = parseError(sender('model: cbr\nbandwidth: 1000\nsize: 256'));
    assert.equal(issueAt(tooLow, ['collectors', 0, 'bandwidth']).line, 9);
    const noSize = parseError(sender('model: cbr\nbandwidth: 10000000'));
    assert.equal(issueAt(noSize, ['collectors', 0, 'size']).line, 4);
  });

  it('cbr too small for IPv6 with an IPv6 literal; voice models grow by the IPv6 header', () => {
    const err = parseError(sender('model: cbr\nbandwidth: 100000\nsize: 60', '2001:db8::1'));
    assert.match(issueAt(err, ['collectors', 0, 'size']).message, /IPv6/);
    // …fine over IPv4; g729/g711 carry the same RTP payload in a 20-octet larger IPv6 packet.
    parse(sender('model: cbr\nbandwidth: 100000\nsize: 60', '192.0.2.1'));
    parse(sender('model: g729', '2001:db8::1'));
    parse(sender('model: g711', '2001:db8::1'));
  });
});
