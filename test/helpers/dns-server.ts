/**
 * A tiny authoritative DNS responder over UDP for tests: A records from a map, an empty answer
 * for AAAA of a known name, NXDOMAIN for the rest. It records every question it is asked.
 */
import { createSocket, type Socket } from 'node:dgram';

export interface DnsServer {
  /** `name TYPE` of every question received, lower case (`web.test A`). */
  questions: string[];
  close(): Promise<void>;
}

const TYPES: Record<number, string> = { 1: 'A', 28: 'AAAA', 5: 'CNAME', 15: 'MX', 16: 'TXT', 33: 'SRV', 65: 'HTTPS' };

function readName(msg: Buffer, at: number): { name: string; end: number } {
  const labels: string[] = [];
  let i = at;
  for (;;) {
    const len = msg[i];
    if (len === undefined) throw new Error('truncated name');
    if (len === 0) return { name: labels.join('.'), end: i + 1 };
    if (len >= 0xc0) throw new Error('compressed name in a question');
    labels.push(msg.subarray(i + 1, i + 1 + len).toString('latin1'));
    i += 1 + len;
  }
}

function answer(query: Buffer, records: ReadonlyMap<string, string>, questions: string[]): Buffer | undefined {
  if (query.length < 12 || query.readUInt16BE(4) !== 1) return undefined;
  const { name, end } = readName(query, 12);
  const qtype = query.readUInt16BE(end);
  const lower = name.toLowerCase();
  questions.push(`${lower} ${TYPES[qtype] ?? qtype}`);
  const ip = records.get(lower);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0);
  // QR, the query's opcode and RD, AA, RA; NXDOMAIN for a name not served.
  const flags = 0x8000 | (query.readUInt16BE(2) & 0x7900) | 0x0400 | 0x0080 | (ip === undefined ? 3 : 0);
  header.writeUInt16BE(flags, 2);
  header.writeUInt16BE(1, 4);
  const question = query.subarray(12, end + 4);
  if (ip === undefined || qtype !== 1) return Buffer.concat([header, question]);
  header.writeUInt16BE(1, 6);
  const rr = Buffer.alloc(16);
  rr.writeUInt16BE(0xc00c, 0); // the name, pointing at the question's
  rr.writeUInt16BE(1, 2); // A
  rr.writeUInt16BE(1, 4); // IN
  rr.writeUInt32BE(60, 6);
  rr.writeUInt16BE(4, 10);
  ip.split('.').forEach((o, k) => rr.writeUInt8(Number(o), 12 + k));
  return Buffer.concat([header, question, rr]);
}

/** Serves `records` (name → IPv4 address) on `host`:`port` (UDP). */
export async function startDnsServer(host: string, records: Record<string, string>, port = 53): Promise<DnsServer> {
  const map = new Map(Object.entries(records).map(([k, v]) => [k.toLowerCase(), v]));
  const questions: string[] = [];
  const sock: Socket = createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    let reply: Buffer | undefined;
    try {
      reply = answer(msg, map, questions);
    } catch {
      return; // not a question this server reads
    }
    if (reply) sock.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, host, () => {
      sock.off('error', reject);
      resolve();
    });
  });
  return { questions, close: () => new Promise<void>((resolve) => sock.close(() => resolve())) };
}
