import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  MODEL_NAMES,
  ModelConfigError,
  checkModelForIpVersion,
  createTrafficModel,
  ipOverhead,
  type ModelConfig,
} from '../../src/measure/models.js';
import { G711, G729 } from '../../src/measure/emodel.js';

function rejects(cfg: ModelConfig, key: 'model' | 'bandwidth' | 'size', message?: RegExp | string): void {
  assert.throws(
    () => createTrafficModel(cfg),
    (e: unknown) => {
      assert.ok(e instanceof ModelConfigError, String(e));
      assert.ok(e instanceof Error);
      assert.equal(e.name, 'ModelConfigError');
      assert.equal(e.key, key);
      assert.ok(e.message.startsWith(`${key}:`), e.message);
      if (typeof message === 'string') assert.equal(e.message, message);
      else if (message) assert.match(e.message, message);
      return true;
    },
  );
}

describe('voice models', () => {
  it('g711: 200 octets every 20 ms (Gufo vector {200, 20e6})', () => {
    const m = createTrafficModel({ model: 'g711' });
    assert.deepEqual(m.packet(0), { sizeIp: 200, gapNs: 20_000_000 });
    assert.deepEqual(m.packet(1234), { sizeIp: 200, gapNs: 20_000_000 });
    assert.equal(m.name, 'g711');
    assert.equal(m.codec, G711);
    assert.equal(m.meanPps, 50);
    assert.equal(m.meanBitrate, 80_000);
    assert.equal(m.minSizeIp, 200);
    assert.equal(m.maxSizeIp, 200);
  });
  it('g729: 60 octets every 20 ms (Gufo vector {60, 20e6})', () => {
    const m = createTrafficModel({ model: 'g729' });
    assert.deepEqual(m.packet(0), { sizeIp: 60, gapNs: 20_000_000 });
    assert.equal(m.codec, G729);
    assert.equal(m.meanPps, 50);
    assert.equal(m.meanBitrate, 24_000);
  });
  it('rejects keys the model does not use', () => {
    rejects({ model: 'g711', bandwidth: 64000 }, 'bandwidth', 'bandwidth: not used by model g711');
    rejects({ model: 'g729', size: 100 }, 'size', 'size: not used by model g729');
    rejects({ model: 'imix', bandwidth: 1e6, size: 100 }, 'size', 'size: not used by model imix');
  });
});

describe('cbr', () => {
  it('exact gap, no integer-pps truncation', () => {
    const m = createTrafficModel({ model: 'cbr', bandwidth: 8_000_000, size: 100 });
    assert.deepEqual(m.packet(0), { sizeIp: 100, gapNs: 100_000 }); // Gufo vector
    assert.equal(m.codec, undefined);
    assert.equal(m.meanPps, 10_000);
    assert.equal(m.meanBitrate, 8_000_000);
    // Gufo: floor(1e7 / 2048) = 4882 pps → 204834 ns; exact is 204800 ns.
    const n = createTrafficModel({ model: 'cbr', bandwidth: 10_000_000, size: 256 });
    assert.equal(n.packet(7).gapNs, 204_800);
    assert.equal(n.meanPps, 4882.8125);
    // Fractional gaps are kept for the scheduler to accumulate.
    assert.equal(createTrafficModel({ model: 'cbr', bandwidth: 3_000_000, size: 100 }).packet(0).gapNs, 800_000 / 3);
  });
  it('validates size: integer 42..9216', () => {
    rejects(
      { model: 'cbr', bandwidth: 1e6, size: 30 },
      'size',
      'size: 30 is below the smallest TWAMP test packet (42 octets on IPv4: 20 IP + 8 UDP + 14 TWAMP)',
    );
    rejects({ model: 'cbr', bandwidth: 1e6, size: 41 }, 'size', /below the smallest/);
    assert.equal(createTrafficModel({ model: 'cbr', bandwidth: 1e6, size: 42 }).minSizeIp, 42);
    assert.equal(createTrafficModel({ model: 'cbr', bandwidth: 1e6, size: 9216 }).maxSizeIp, 9216);
    rejects({ model: 'cbr', bandwidth: 1e6, size: 9217 }, 'size', /jumbo/);
    rejects({ model: 'cbr', bandwidth: 1e6, size: 100.5 }, 'size', /integer/);
    rejects({ model: 'cbr', bandwidth: 1e6 }, 'size', /required/);
  });
  it('validates bandwidth: integer > 0, 1..1e6 pps', () => {
    rejects({ model: 'cbr', size: 100 }, 'bandwidth', /required by model cbr/);
    rejects({ model: 'cbr', bandwidth: 0, size: 100 }, 'bandwidth', /integer number of bit\/s > 0/);
    rejects({ model: 'cbr', bandwidth: -5, size: 100 }, 'bandwidth');
    rejects({ model: 'cbr', bandwidth: 1500.5, size: 100 }, 'bandwidth');
    rejects({ model: 'cbr', bandwidth: '8000' as unknown as number, size: 100 }, 'bandwidth');
    // 100 octets = 800 bit per packet.
    assert.equal(createTrafficModel({ model: 'cbr', bandwidth: 800, size: 100 }).packet(0).gapNs, 1e9);
    rejects({ model: 'cbr', bandwidth: 799, size: 100 }, 'bandwidth', /below one packet per second/);
    assert.equal(createTrafficModel({ model: 'cbr', bandwidth: 800_000_000, size: 100 }).packet(0).gapNs, 1000);
    rejects({ model: 'cbr', bandwidth: 800_000_001, size: 100 }, 'bandwidth', /above 1000000 packets per second/);
  });
});

describe('imix', () => {
  const cycle = [70, 576, 70, 576, 70, 576, 70, 576, 70, 70, 70, 1500];
  it('12-packet cycle, constant gap (Gufo vector 12,252,000 bit/s → 233,648 ns)', () => {
    const m = createTrafficModel({ model: 'imix', bandwidth: 12_252_000 });
    for (let seq = 0; seq < 36; seq++) {
      const p = m.packet(seq);
      assert.equal(p.sizeIp, cycle[seq % 12]);
      assert.ok(Math.abs(p.gapNs - 233_648) <= 1, String(p.gapNs));
    }
    assert.equal(m.codec, undefined);
    assert.equal(m.minSizeIp, 70);
    assert.equal(m.maxSizeIp, 1500);
    assert.equal(m.meanBitrate, 12_252_000);
    assert.equal(m.meanPps, (12_252_000 * 12) / 34_352);
    // One full cycle carries 34352 bits in 12 gaps: exactly the bandwidth.
    const bits = cycle.reduce((a, b) => a + b, 0) * 8;
    assert.equal(bits, 34_352);
    assert.ok(Math.abs((bits * 1e9) / (12 * m.packet(0).gapNs) - 12_252_000) < 1e-3);
    assert.ok(Math.abs(createTrafficModel({ model: 'imix', bandwidth: 10_000_000 }).packet(0).gapNs - 286_266) <= 1);
  });
  it('rate bounds: 1..1e6 pps of the mix', () => {
    // 1 pps = 34352/12 = 2862.67 bit/s.
    rejects({ model: 'imix', bandwidth: 2862 }, 'bandwidth', /below one packet per second/);
    assert.ok(createTrafficModel({ model: 'imix', bandwidth: 2863 }).meanPps >= 1);
    assert.ok(createTrafficModel({ model: 'imix', bandwidth: 2_862_666_666 }).meanPps <= 1e6);
    rejects({ model: 'imix', bandwidth: 2_862_666_667 }, 'bandwidth', /above 1000000/);
    rejects({ model: 'imix' }, 'bandwidth', /required by model imix/);
  });
});

describe('model name and packet index', () => {
  it('rejects unknown models', () => {
    rejects({ model: 'g722' as never }, 'model', /"g722" is not a traffic model/);
    rejects({} as ModelConfig, 'model');
  });
  it('rejects a negative or fractional seq', () => {
    const m = createTrafficModel({ model: 'imix', bandwidth: 1e6 });
    assert.throws(() => m.packet(-1), RangeError);
    assert.throws(() => m.packet(1.5), RangeError);
    assert.throws(() => createTrafficModel({ model: 'g711' }).packet(-1), RangeError);
  });
});

describe('IP versions', () => {
  it('overheads and payload sizes', () => {
    assert.equal(ipOverhead(4), 28);
    assert.equal(ipOverhead(6), 48);
    assert.equal(200 - ipOverhead(4), 172); // g711 UDP payload on IPv4
    assert.equal(200 - ipOverhead(6), 152);
    assert.equal(60 - ipOverhead(4), 32); // g729: below the 41-octet reply
  });
  it('every model fits IPv4', () => {
    for (const cfg of [
      { model: 'g711' },
      { model: 'g729' },
      { model: 'cbr', bandwidth: 1e6, size: 42 },
      { model: 'cbr', bandwidth: 1e8, size: 9216 },
      { model: 'imix', bandwidth: 1e6 },
    ] as ModelConfig[]) {
      checkModelForIpVersion(createTrafficModel(cfg), 4);
    }
  });
  it('voice models on IPv6 carry the same RTP payload in a 20-octet larger packet', () => {
    const v4 = createTrafficModel({ model: 'g729' });
    const v6 = createTrafficModel({ model: 'g729' }, 6);
    assert.equal(v4.packet(0).sizeIp, 60);
    assert.equal(v6.packet(0).sizeIp, 80);
    assert.equal(createTrafficModel({ model: 'g711' }, 6).packet(0).sizeIp, 220);
    assert.equal(v6.packet(0).gapNs, 20e6);
    checkModelForIpVersion(v6, 6);
    // The IPv4 sizes do not fit IPv6: 60 − 48 leaves 12 octets < 14.
    assert.throws(
      () => checkModelForIpVersion(v4, 6),
      (e: unknown) =>
        e instanceof ModelConfigError &&
        e.key === 'model' &&
        /12-octet UDP payload on IPv6/.test(e.message) &&
        /62 octets on IPv6: 40 IP \+ 8 UDP \+ 14 TWAMP/.test(e.message),
    );
    // cbr and imix sizes are taken as given on either version.
    assert.equal(createTrafficModel({ model: 'imix', bandwidth: 1e6 }, 6).packet(0).sizeIp, 70);
    checkModelForIpVersion(createTrafficModel({ model: 'imix', bandwidth: 1e6 }, 6), 6); // 70 − 48 = 22
  });
  it('cbr below 62 octets does not fit IPv6 and names `size`', () => {
    const small = createTrafficModel({ model: 'cbr', bandwidth: 1e6, size: 61 });
    assert.throws(
      () => checkModelForIpVersion(small, 6),
      (e: unknown) => e instanceof ModelConfigError && e.key === 'size' && e.message.startsWith('size: 61 '),
    );
    checkModelForIpVersion(createTrafficModel({ model: 'cbr', bandwidth: 1e6, size: 62 }), 6);
  });
});

describe('the model table', () => {
  it('names every model once, and each builds under its own name', () => {
    assert.deepEqual([...MODEL_NAMES], ['g711', 'g729', 'cbr', 'imix']);
    for (const name of MODEL_NAMES) {
      const cfg = name === 'cbr' ? { model: name, bandwidth: 64_000, size: 200 } : name === 'imix' ? { model: name, bandwidth: 1_000_000 } : { model: name };
      assert.equal(createTrafficModel(cfg).name, name);
    }
  });
  it('voice models carry their codec (MOS, both formulas); the others none', () => {
    assert.equal(createTrafficModel({ model: 'g711' }).codec, G711);
    assert.equal(createTrafficModel({ model: 'g729' }).codec, G729);
    assert.equal(createTrafficModel({ model: 'cbr', bandwidth: 64_000, size: 200 }).codec, undefined);
  });
  it('a name that is only an inherited property is not a model', () => {
    assert.throws(() => createTrafficModel({ model: 'toString' as never }), /model: "toString" is not a traffic model \(expected one of g711, g729, cbr, imix\)/);
  });
});
