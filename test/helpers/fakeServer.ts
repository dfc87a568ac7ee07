// A scripted TWAMP-Control server for sender tests: answers each step with
// what the test says (refusals, bad ports, silence) and records what the
// client sent, so a test can check e.g. that Stop-Sessions always arrives.
import { createServer, type Server, type Socket } from 'node:net';
import {
  ServerGreeting, ServerStart, AcceptSession, StartAck, Mode, SetupResponse, RequestTwSession,
} from '../../src/protocol/index.js';

export interface FakeScript {
  modes?: number;
  serverStartAccept?: number;
  /** Accept-Session's Accept and Port ('zero': port 0; 'echo': the requested Receiver Port, 0 included). */
  acceptSession?: { accept: number; port: number | 'zero' | 'echo' };
  startAck?: number;
  /** Stop answering after this step (the client must time out). */
  silentAfter?: 'greeting' | 'server-start' | 'accept-session';
}

export interface FakeServer {
  port: number;
  /** Every client command's first octet, in order (5, 2, 3 …). */
  commands: number[];
  requests: RequestTwSession.RequestTwSession[];
  stopSessionsSeen: Promise<Buffer>;
  close(): Promise<void>;
}

export async function startFakeServer(script: FakeScript): Promise<FakeServer> {
  const commands: number[] = [];
  const requests: RequestTwSession.RequestTwSession[] = [];
  const sockets = new Set<Socket>();
  let resolveStop!: (b: Buffer) => void;
  const stopSessionsSeen = new Promise<Buffer>((r) => { resolveStop = r; });
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let step = 0;
    let silent = false;
    s.write(ServerGreeting.encode({ modes: script.modes ?? Mode.UNAUTHENTICATED, count: 1024 }));
    if (script.silentAfter === 'greeting') return;
    s.on('data', (d: Buffer) => {
      if (silent) return;
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (step === 0) {
          if (buf.length < SetupResponse.SIZE) return;
          buf = buf.subarray(SetupResponse.SIZE);
          s.write(ServerStart.encode({ accept: script.serverStartAccept ?? 0, startTime: 1n << 32n }));
          step = 1;
          if (script.silentAfter === 'server-start') { silent = true; return; }
          continue;
        }
        if (buf.length < 16) return;
        const cmd = buf[0]!;
        const len = cmd === 5 ? 112 : 32;
        if (buf.length < len) return;
        const msg = buf.subarray(0, len);
        buf = buf.subarray(len);
        commands.push(cmd);
        if (cmd === 5) {
          const req = RequestTwSession.decode(msg);
          requests.push(req);
          if (script.silentAfter === 'accept-session') { silent = true; return; }
          const a = script.acceptSession ?? { accept: 0, port: 'zero' };
          const port = a.port === 'zero' ? 0 : a.port === 'echo' ? req.receiverPort : a.port;
          s.write(AcceptSession.encode({ accept: a.accept, port }));
        } else if (cmd === 2) {
          s.write(StartAck.encode({ accept: script.startAck ?? 0 }));
        } else if (cmd === 3) {
          resolveStop(Buffer.from(msg));
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    port, commands, requests, stopSessionsSeen,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}
