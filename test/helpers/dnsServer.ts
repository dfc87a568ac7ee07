// A small authoritative DNS responder over UDP on loopback (RFC 1035 §4 message
// format; SRV rdata RFC 2782; AAAA RFC 3596), answering A, AAAA and SRV
// questions from a table the test edits while it runs. A name not in the table
// is NXDOMAIN; a name in it without records of the asked type is an empty
// NOERROR answer (NODATA). `failing` makes a name answer SERVFAIL, or not at
// all ('drop') to look like a timeout.
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';

export interface SrvRecord { priority?: number; weight?: number; port: number; target: string }

export interface DnsRecords { A?: string[]; AAAA?: string[]; SRV?: SrvRecord[] }

export interface TestDnsServer {
  /** `127.0.0.1:PORT`, for Resolver.setServers() or a dns_servers setting. */
  readonly address: string;
  /** Records by name (case-insensitive, no trailing dot); edit freely. */
  readonly records: Map<string, DnsRecords>;
  /** Names that answer SERVFAIL, or nothing at all. */
  readonly failing: Map<string, 'servfail' | 'drop'>;
  /** Questions received, as `TYPE name`. */
  readonly queries: string[];
  set(name: string, r: DnsRecords): void;
  delete(name: string): void;
  close(): Promise<void>;
}

const TYPE = { A: 1, AAAA: 28, SRV: 33 } as const;
const TYPE_NAME = new Map<number, string>(Object.entries(TYPE).map(([k, v]) => [v, k]));
const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4 } as const;

const norm = (name: string) => name.toLowerCase().replace(/\.$/, '');

export async function startDnsServer(): Promise<TestDnsServer> {
  const socket = dgram.createSocket('udp4');
  const records = new Map<string, DnsRecords>();
  const failing = new Map<string, 'servfail' | 'drop'>();
  const queries: string[] = [];
  socket.on('message', (msg, rinfo) => {
    let reply: Buffer | undefined;
    try {
      reply = answer(msg, records, failing, queries);
    } catch {
      reply = undefined; // malformed question: no answer
    }
    if (reply) socket.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => { socket.off('error', reject); resolve(); });
  });
  const { port } = socket.address();
  return {
    address: `127.0.0.1:${port}`,
    records,
    failing,
    queries,
    set: (name, r) => { records.set(norm(name), r); },
    delete: (name) => { records.delete(norm(name)); },
    close: () => new Promise((r) => socket.close(() => r())),
  };
}

function answer(q: Buffer, records: Map<string, DnsRecords>, failing: Map<string, 'servfail' | 'drop'>, queries: string[]): Buffer | undefined {
  if (q.length < 12) return undefined;
  const id = q.readUInt16BE(0);
  const flags = q.readUInt16BE(2);
  if (flags & 0x8000) return undefined; // a response, not a query
  if (q.readUInt16BE(4) !== 1) return undefined;
  // Question: QNAME, QTYPE, QCLASS (RFC 1035 §4.1.2).
  const labels: string[] = [];
  let off = 12;
  for (;;) {
    const len = q[off]!;
    if (len === undefined) return undefined;
    off++;
    if (len === 0) break;
    if (len > 63) return undefined;
    labels.push(q.subarray(off, off + len).toString('latin1'));
    off += len;
  }
  const qtype = q.readUInt16BE(off);
  const question = q.subarray(12, off + 4);
  const name = norm(labels.join('.'));
  queries.push(`${TYPE_NAME.get(qtype) ?? String(qtype)} ${name}`);
  const fail = failing.get(name);
  if (fail === 'drop') return undefined;
  const header = (rcode: number, ancount: number) => {
    const h = Buffer.alloc(12);
    h.writeUInt16BE(id, 0);
    // QR, the query's opcode and RD, AA, RA.
    h.writeUInt16BE(0x8000 | (flags & 0x7900) | 0x0400 | 0x0080 | rcode, 2);
    h.writeUInt16BE(1, 4);
    h.writeUInt16BE(ancount, 6);
    return h;
  };
  if (fail === 'servfail') return Buffer.concat([header(RCODE.SERVFAIL, 0), question]);
  const r = records.get(name);
  if (!r) return Buffer.concat([header(RCODE.NXDOMAIN, 0), question]);
  const rdatas: Buffer[] = [];
  if (qtype === TYPE.A) for (const a of r.A ?? []) rdatas.push(Buffer.from(a.split('.').map(Number)));
  else if (qtype === TYPE.AAAA) for (const a of r.AAAA ?? []) rdatas.push(ipv6Bytes(a));
  else if (qtype === TYPE.SRV) {
    for (const s of r.SRV ?? []) {
      const fixed = Buffer.alloc(6);
      fixed.writeUInt16BE(s.priority ?? 0, 0);
      fixed.writeUInt16BE(s.weight ?? 0, 2);
      fixed.writeUInt16BE(s.port, 4);
      rdatas.push(Buffer.concat([fixed, encodeName(s.target)]));
    }
  } else return Buffer.concat([header(RCODE.NOTIMP, 0), question]);
  const answers = rdatas.map((rdata) => {
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0); // NAME: pointer to the question's name
    rr.writeUInt16BE(qtype, 2);
    rr.writeUInt16BE(1, 4); // IN
    rr.writeUInt32BE(5, 6); // TTL
    rr.writeUInt16BE(rdata.length, 10);
    return Buffer.concat([rr, rdata]);
  });
  return Buffer.concat([header(RCODE.NOERROR, answers.length), question, ...answers]);
}

function encodeName(name: string): Buffer {
  const parts = norm(name).split('.').filter((l) => l.length > 0);
  return Buffer.concat([...parts.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])), Buffer.from([0])]);
}

function ipv6Bytes(a: string): Buffer {
  if (!isIPv6(a)) throw new Error(`not an IPv6 address: ${a}`);
  const [head, tail] = a.includes('::') ? a.split('::') as [string, string] : [a, undefined];
  const groups = (s: string | undefined) => (s ? s.split(':') : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}
