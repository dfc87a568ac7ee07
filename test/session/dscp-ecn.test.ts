/**
 * DSCP and ECN as received, per direction, on loopback: RFC 7750 (TWAMP DSCP
 * and ECN Monitoring, Modes bit 8) between our sender and our reflector, the
 * RFC 8972 Class of Service TLV between our STAMP sender and our Light
 * reflector, the Light reflector's policy on DSCP1 (README "Security"), and
 * what happens where the DS byte cannot be read (node:dgram) or the peer does
 * not offer the mode (perfSONAR twampd).
 *
 * Native tests skip (loudly) when the helper is not built, except under CI;
 * twampd tests skip without the peers (OTEL_TWAMP_PEERS), except under CI.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../../src/session/clock.js';
import { silentLogger } from '../../src/util/log.js';
import { ControlServer, newControlServerCounters } from '../../src/session/controlServer.js';
import { ControlClient } from '../../src/session/controlClient.js';
import { runSenderSession } from '../../src/session/senderSession.js';
import { runLightSenderSession } from '../../src/session/lightSenderSession.js';
import { LightReflector } from '../../src/session/lightReflector.js';
import { openTestSocket, type RxDatagram } from '../../src/session/datapath.js';
import { rawControl } from '../helpers/tcp.js';
import { withEnv } from '../helpers/wait.js';
import {
  Mode, testFormat, writeSenderHeader, writeCosTlv, readCosValue, STAMP_BASE_SIZE, COS_TLV_SIZE,
  ServerGreeting, SetupResponse, RequestTwSession, AcceptSession, StartSessions, ntpIntervalFromNs,
} from '../../src/protocol/index.js';
import { exchange, udp } from '../helpers/udp.js';
import { needNative } from '../helpers/native.js';
import { pathValues } from '../../src/sender.js';
import { requirePeersOrSkip, startTwampd } from '../helpers/peers.js';

const clock = systemClock();
const EF = 46;
const CS1 = 8;
const N = 30;

async function ourServer(opts: { dscpEcnMonitoring?: boolean } = {}): Promise<{ server: ControlServer; port: number }> {
  const server = new ControlServer({ host: '127.0.0.1', port: 0, clock, log: silentLogger, counters: newControlServerCounters(), ...opts });
  const { port } = await server.listen();
  return { server, port };
}

const SESSION = {
  host: '127.0.0.1', reflectorPort: 0, nPackets: N, model: { model: 'cbr' as const, bandwidth: 100 * 200 * 8, size: 200 },
  controlTimeoutMs: 3000, replyTimeoutMs: 500, clock, dscp: EF,
};


describe('RFC 7750 DSCP and ECN Monitoring (TWAMP)', { timeout: 60_000 }, () => {
  it('our sender chooses it when our reflector offers it; every reply reports the DS byte its request arrived with', async (t) => {
    if (!needNative(t)) return;
    const { server, port } = await ourServer();
    try {
      const r = await runSenderSession({ ...SESSION, controlPort: port });
      assert.equal(r.dscpEcnMonitoring, true);
      assert.equal(r.stats.rxPackets, N);
      const out = r.path!.outbound;
      assert.equal(out.reportedBy, 'rfc7750');
      assert.equal(out.dscp, EF, 'S-DSCP-ECN: EF as sent (no re-marking on loopback)');
      assert.equal(out.ecn, 0);
      assert.equal(out.tosSamples, N);
      assert.equal(out.remarked, 0);
      // The 44-octet open reflector header: replies of 200-octet packets stay 172 octets (symmetric).
      assert.deepEqual(r.replyPayload, { min: 172, max: 172 });
      // The metrics per direction (SENDER_PATH): DSCP sent and received, re-marked counts.
      const v = pathValues(r, EF);
      assert.deepEqual([v.out_dscp_sent, v.out_dscp_received, v.out_dscp_remarked, v.out_ecn_received], [EF, EF, 0, 0]);
      assert.deepEqual([v.in_dscp_sent, v.in_dscp_received, v.in_dscp_remarked], [EF, EF, 0]);
    } finally {
      await server.close();
    }
  });

  it('encrypted mode: S-DSCP-ECN at octet 81, inside the encrypted range, survives the protection', async (t) => {
    if (!needNative(t)) return;
    const secret = Buffer.from('dscp-ecn-secret');
    const server = new ControlServer({
      host: '127.0.0.1', port: 0, clock, log: silentLogger, counters: newControlServerCounters(),
      modes: ['encrypted'], lookupKey: (id) => (id === 'k' ? Buffer.from(secret) : undefined), kdfCount: 1024,
    });
    const { port } = await server.listen();
    try {
      const r = await runSenderSession({ ...SESSION, controlPort: port, modes: ['encrypted'], keyId: 'k', secret: () => Buffer.from(secret) });
      assert.equal(r.mode, 'encrypted');
      assert.equal(r.dscpEcnMonitoring, true);
      assert.equal(r.badHmacReplies, 0);
      assert.equal(r.path!.outbound.dscp, EF);
      assert.equal(r.path!.outbound.tosSamples, N);
    } finally {
      await server.close();
    }
  });

  it('not chosen when either side does not want it: the outbound DSCP as received stays unknown (null)', async (t) => {
    if (!needNative(t)) return;
    const a = await ourServer({ dscpEcnMonitoring: false });
    try {
      const c = await ControlClient.connect({ host: '127.0.0.1', port: a.port, timeoutMs: 3000 });
      assert.equal(c.greeting.modes & Mode.DSCP_ECN_MONITORING, 0, 'not offered');
      assert.equal(c.dscpEcn, false);
      c.close();
      const r = await runSenderSession({ ...SESSION, controlPort: a.port });
      assert.equal(r.dscpEcnMonitoring, false);
      assert.equal(r.path!.outbound.reportedBy, null);
      assert.equal(r.path!.outbound.dscp, null);
      assert.deepEqual(r.replyPayload, { min: 172, max: 172 });
      // No report, no outbound-received series (never a fake 0).
      const v = pathValues(r, EF);
      assert.deepEqual([v.out_dscp_received, v.out_dscp_remarked, v.out_ecn_received], [undefined, undefined, undefined]);
    } finally {
      await a.server.close();
    }
    const b = await ourServer();
    try {
      const r = await runSenderSession({ ...SESSION, controlPort: b.port, dscpEcnMonitoring: false });
      assert.equal(r.dscpEcnMonitoring, false);
      assert.equal(r.path!.outbound.dscp, null);
    } finally {
      await b.server.close();
    }
  });

  it('never offered where the DS byte cannot be read (node:dgram datapath): no invented S-DSCP-ECN', async () => {
    await withEnv('OTEL_TWAMP_NATIVE', '0', async () => {
      const { server, port } = await ourServer();
      try {
        const c = await ControlClient.connect({ host: '127.0.0.1', port, timeoutMs: 3000 });
        assert.equal(c.greeting.modes & Mode.DSCP_ECN_MONITORING, 0);
        assert.equal(c.dscpEcn, false);
        c.close();
      } finally {
        await server.close();
      }
    });
  });

  it('with RFC 6038 Reflect Octets and Symmetrical Size: padding sized from the 44-octet header (30 octets of MBZ, not 27)', async (t) => {
    if (!needNative(t)) return;
    const { server, port } = await ourServer();
    const { sock, read } = rawControl(port);
    const s = await udp();
    try {
      assert.equal(ServerGreeting.decode(await read(64)).modes & 0x160, 0x160);
      sock.write(SetupResponse.encode({ mode: Mode.UNAUTHENTICATED | Mode.REFLECT_OCTETS | Mode.SYMMETRICAL_SIZE | Mode.DSCP_ECN_MONITORING }));
      await read(48);
      const base = {
        ipvn: 4 as const, senderPort: s.address().port, receiverPort: 0, senderAddress: '127.0.0.1', receiverAddress: '127.0.0.1',
        startTime: 0n, timeout: ntpIntervalFromNs(200_000_000n), typeP: 0, octetsToBeReflected: 0x1234, lengthOfPaddingToReflect: 4,
      };
      // Enough without RFC 7750 (27 + 4), too little with its 44-octet reply header.
      sock.write(RequestTwSession.encode({ ...base, paddingLength: 27 + 4 }));
      assert.equal(AcceptSession.decode(await read(48)).accept, 3);
      sock.write(RequestTwSession.encode({ ...base, paddingLength: 30 + 4 }));
      const acc = AcceptSession.decode(await read(48));
      assert.equal(acc.accept, 0);
      sock.write(StartSessions.encode({}));
      await read(32);
      // 14-octet header + 30 MBZ, then the 4 octets to reflect: 48 octets each way.
      const req = Buffer.alloc(48);
      writeSenderHeader(req, testFormat('twamp'), { seq: 0, timestamp: 1n << 32n, errorEstimate: 1 });
      Buffer.from([1, 2, 3, 4]).copy(req, 44);
      const [reply] = await exchange(s, acc.port, [req]);
      assert.equal(reply!.length, 48, 'as long as the request');
      assert.deepEqual([...reply!.subarray(44, 48)], [1, 2, 3, 4], 'the padding to reflect kept after the 44-octet header');
      assert.equal(reply![41], 0, 'S-DSCP-ECN: the request arrived unmarked');
    } finally {
      sock.destroy();
      s.close();
      await server.close();
    }
  });

  it('perfSONAR twampd does not offer it: our sender works unchanged', async (t) => {
    const peers = requirePeersOrSkip(t);
    if (!peers) return;
    const d = await startTwampd(peers);
    try {
      const r = await runSenderSession({ ...SESSION, controlPort: d.port });
      assert.equal(r.dscpEcnMonitoring, false);
      assert.equal(r.stats.rxPackets, N, d.log());
      assert.equal(r.path!.outbound.reportedBy, null);
      assert.equal(r.path!.outbound.dscp, null);
    } finally {
      await d.stop();
    }
  });
});

describe('RFC 8972 Class of Service TLV (STAMP)', { timeout: 60_000 }, () => {
  async function lightReflector(opts: { native?: boolean; cosAllowDscp?: number[] } = {}): Promise<{ r: LightReflector; port: number }> {
    const r = new LightReflector({ host: '127.0.0.1', port: 0, clock, counters: newControlServerCounters(), ...opts });
    const { port } = await r.listen();
    return { r, port };
  }

  it('our STAMP sender asks with DSCP1; our reflector reports DSCP2/ECN and replies with DSCP1', async (t) => {
    if (!needNative(t)) return;
    const { r, port } = await lightReflector();
    try {
      const s = await runLightSenderSession({ ...SESSION, port, format: 'stamp' });
      assert.equal(s.stats.rxPackets, N);
      const out = s.path!.outbound;
      assert.equal(out.reportedBy, 'cos-tlv');
      assert.equal(out.dscp, EF);
      assert.equal(out.ecn, 0);
      assert.equal(out.tosSamples, N);
      assert.equal(out.replyDscpRefused, 0);
      assert.equal(s.path!.inbound.dscp, EF);
      assert.equal(s.path!.inbound.remarked, 0);
      assert.equal(r.cosAnswered, N);
    } finally {
      await r.close();
    }
  });

  it('without the TLV (cos: false) the outbound DSCP as received is unknown', async (t) => {
    if (!needNative(t)) return;
    const { r, port } = await lightReflector();
    try {
      const s = await runLightSenderSession({ ...SESSION, port, format: 'stamp', cos: false });
      assert.equal(s.stats.rxPackets, N);
      assert.equal(s.path!.outbound.reportedBy, null);
      assert.equal(r.cosAnswered, 0);
    } finally {
      await r.close();
    }
  });

  it('a reflector that cannot read the DS byte (node:dgram) leaves the TLV unprocessed: unknown, never invented', async (t) => {
    if (!needNative(t)) return;
    const { r, port } = await lightReflector({ native: false });
    try {
      const s = await runLightSenderSession({ ...SESSION, port, format: 'stamp' });
      assert.equal(s.stats.rxPackets, N);
      assert.equal(s.path!.outbound.reportedBy, null);
      assert.equal(s.path!.outbound.dscp, null);
      assert.equal(r.cosAnswered, 0);
    } finally {
      await r.close();
    }
  });

  /** One STAMP request with a CoS TLV asking for `dscp1`, sent with TOS `tos`; the reply as received. */
  async function exchange(port: number, tos: number, dscp1: number): Promise<RxDatagram> {
    let got: ((d: RxDatagram) => void) | undefined;
    const reply = new Promise<RxDatagram>((resolve) => { got = resolve; });
    const sock = await openTestSocket({
      family: 4, address: '127.0.0.1', port: 0, ttl: 255, tos, txTimestamps: false,
      onPackets: (b) => { for (const d of b) got?.(d); }, onError: () => {},
    });
    try {
      const req = Buffer.alloc(STAMP_BASE_SIZE + COS_TLV_SIZE);
      writeSenderHeader(req, testFormat('stamp'), { seq: 1, timestamp: 1n << 32n, errorEstimate: 1, ssid: 7 });
      writeCosTlv(req, STAMP_BASE_SIZE, dscp1);
      sock.send(req, '127.0.0.1', port);
      return await Promise.race([reply, new Promise<RxDatagram>((_, rej) => setTimeout(() => rej(new Error('no reply')), 3000))]);
    } finally {
      sock.close();
    }
  }

  it('policy: DSCP1 other than the received DSCP is refused by default (RP 1, reply keeps the received DSCP); allowed when listed', async (t) => {
    if (!needNative(t)) return;
    const strict = await lightReflector();
    try {
      // The request arrives as CS1 (a path that re-marked it) but asks for EF on the reply.
      const d = await exchange(strict.port, CS1 << 2, EF);
      assert.deepEqual(readCosValue(d.data, STAMP_BASE_SIZE + 4), { dscp1: EF, dscp2: CS1, ecn: 0, rp: 1 });
      assert.equal(d.tos >> 2, CS1, 'the reply leaves with the DSCP the request arrived with');
      assert.equal(strict.r.cosRefused, 1);
      // Asking for what already arrived is granted.
      const same = await exchange(strict.port, EF << 2, EF);
      assert.deepEqual(readCosValue(same.data, STAMP_BASE_SIZE + 4), { dscp1: EF, dscp2: EF, ecn: 0, rp: 0 });
      assert.equal(same.tos >> 2, EF);
    } finally {
      await strict.r.close();
    }
    const open = await lightReflector({ cosAllowDscp: [EF] });
    try {
      const d = await exchange(open.port, (CS1 << 2) | 1, EF);
      assert.deepEqual(readCosValue(d.data, STAMP_BASE_SIZE + 4), { dscp1: EF, dscp2: CS1, ecn: 1, rp: 0 });
      assert.equal(d.tos >> 2, EF, 'an allowed DSCP1 marks the reply');
      assert.equal(open.r.cosRefused, 0);
    } finally {
      await open.r.close();
    }
  });
});
