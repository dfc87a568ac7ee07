import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dscpFromTypeP, dscpName, parseDscp, tosFromDscp, typePFromDscp } from '../../src/protocol/index.js';

describe('DSCP and Type-P Descriptor (RFC 4656 §3.5)', () => {
  it('parses the Gufo Agent DSCP map', () => {
    const gufo: Record<string, number> = {
      be: 0, cp1: 1, cp2: 2, cp3: 3, cp4: 4, cp5: 5, cp6: 6, cp7: 7,
      cs1: 8, af11: 10, af12: 12, af13: 14, cs2: 16, af21: 18, af22: 20, af23: 22,
      cs3: 24, af31: 26, af32: 28, af33: 30, cs4: 32, af41: 34, af42: 36, af43: 38,
      cs5: 40, ef: 46, nc1: 48, nc2: 56, cp9: 9, cp63: 63,
    };
    for (const [name, dscp] of Object.entries(gufo)) assert.equal(parseDscp(name), dscp, name);
    assert.equal(parseDscp('foobar'), undefined);
  });

  it('parses class selectors cs0..cs7, case-insensitive names, decimals and integers', () => {
    for (let n = 0; n <= 7; n++) assert.equal(parseDscp(`cs${n}`), n * 8);
    assert.equal(parseDscp('EF'), 46);
    assert.equal(parseDscp('Af41'), 34);
    assert.equal(parseDscp('CP5'), 5);
    assert.equal(parseDscp('46'), 46);
    assert.equal(parseDscp('0'), 0);
    assert.equal(parseDscp(46), 46);
    assert.equal(parseDscp(63), 63);
    for (const bad of ['cp64', '64', 'af14', 'af51', 'cs8', '', '4.5', '0x2e', 'ef1', '-1']) {
      assert.equal(parseDscp(bad), undefined, bad);
    }
    for (const bad of [64, -1, 1.5, Number.NaN]) assert.equal(parseDscp(bad), undefined, String(bad));
  });

  it('names code points canonically and round-trips all 64', () => {
    assert.equal(dscpName(46), 'ef');
    assert.equal(dscpName(5), 'cp5');
    assert.equal(dscpName(0), 'be');
    assert.equal(dscpName(34), 'af41');
    assert.equal(dscpName(48), 'cs6');
    assert.equal(dscpName(56), 'cs7');
    for (let d = 0; d <= 63; d++) assert.equal(parseDscp(dscpName(d)), d);
    assert.throws(() => dscpName(64), RangeError);
  });

  it('puts the DSCP (not the TOS byte) in the first octet of Type-P', () => {
    assert.equal(typePFromDscp(46), 0x2e000000);
    assert.equal(tosFromDscp(46), 0xb8);
    assert.equal(tosFromDscp(34), 0x88); // twampy's default AF41, TOS 136 in twampy-light.pcap
    assert.equal(typePFromDscp(63), 0x3f000000);
    assert.ok(typePFromDscp(63) > 0);
    assert.equal(dscpFromTypeP(0x2e000000), 46);
    assert.equal(dscpFromTypeP(0), 0);
    for (let d = 0; d <= 63; d++) assert.equal(dscpFromTypeP(typePFromDscp(d)), d);
    // PHB ID form (01) and reserved prefixes (10, 11) carry no DSCP.
    assert.equal(dscpFromTypeP(0x40000000), undefined);
    assert.equal(dscpFromTypeP(0x80000000), undefined);
    assert.equal(dscpFromTypeP(0xc0000000), undefined);
    // Gufo Agent writes the DSCP into the last octet (0x0000002E): that reads as DSCP 0.
    assert.equal(dscpFromTypeP(0x0000002e), 0);
  });
});
