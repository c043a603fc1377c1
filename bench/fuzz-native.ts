import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { DirectionKeys } from '../daemon/links/crypto.js';
import { ACCEPT, CHALLENGE, CLOSE, DATA, HELLO, PING, PONG, PROOF, REPORT } from '../daemon/links/wire.js';
import { prng } from '../src/util/prng.js';
import { formatHostPort } from '../src/wire/hostport.js';
import { open as openRecord, seal as sealRecord, tcpDial, udpDial } from '../test/support/link-peer.js';
import { freePort } from '../test/support/sshd.js';
import { buildGsoSender, gsoSender, type GsoSender } from '../test/support/udp-gso.js';
import { collect, syntheticVm } from '../test/support/synthetic-vm.js';
import { batch, ok, startVnetd, stopVnetd, waitFor, type SpawnedVnetd } from '../test/support/vnetd-process.js';

/**
 * A bounded fuzzer for vnetd's C code (the pcap addon's fast path and the
 * session cipher), run against a real daemon: usually one built with
 * AddressSanitizer and UBSan (daemon/README.md says how).
 *
 *   node dist/bench/fuzz-native.js [--inputs N] [--seconds S] [--seed K] [--auth-only] [--v6]
 *
 * The daemon gets a UDP link and a TCP link whose keys this process knows,
 * a QEMU stream interface and a QEMU datagram interface; this process plays
 * both link peers and both VMs. It sends (a) random and mutated datagrams,
 * and authentic records with hostile contents, to the UDP link, (b) the same
 * as a byte stream on authenticated TCP connections the fast path reads,
 * and a share of (a) as segmented sends (UDP_SEGMENT, through
 * test/support/udp-gso-send.c), which reach the daemon's UDP_GRO socket as
 * one joined buffer and its segment size: authentic records of one length
 * (some forged or mangled, the last shorter) or random bytes, cut at sizes
 * from 1 byte to more than the whole,
 * (c) length-prefixed frames, good and bad, on the QEMU stream, and (d) raw
 * frames to the QEMU datagram socket. The daemon must not exit or print a
 * sanitizer report, and afterwards must still carry frames every way.
 */

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const INPUTS = arg('inputs', 200_000);
const SECONDS = arg('seconds', 240);
const SEED = arg('seed', 1);
/** --auth-only: the links' records are authenticated, not enciphered (the other branch of vnetd_session.c). --v6: everything on ::1, the daemon's UDP socket dual-stack. */
const AUTH_ONLY = process.argv.includes('--auth-only');
const MODE = AUTH_ONLY ? 'auth-only' : 'encrypt';
const HOST = process.argv.includes('--v6') ? '::1' : '127.0.0.1';

/* Seeded, so a run's inputs can be made again. */
const rnd = prng(SEED);
const int = (n: number): number => Math.floor(rnd() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
const bytes = (n: number): Buffer => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = int(256);
  return b;
};
/** Mostly small, sometimes around the interesting bounds, sometimes huge. */
const length = (limit: number): number => {
  const max = Math.max(0, limit);
  const r = rnd();
  if (r < 0.5) return int(Math.min(max, 200) + 1);
  if (r < 0.8) return int(Math.min(max, 1600) + 1);
  if (r < 0.9) return Math.max(0, Math.min(max, pick([0, 1, 13, 14, 15, 17, 18, 33, 34, 53, 54, 73, 74, 1514, 65482, 65483, 65535]) + int(3) - 1));
  return int(max + 1);
};

const MAC = { vm: '020000000a01', vu: '020000000a02', pu: '020000000a03', pt: '020000000a04' } as const;
const colon = (m: string) => m.match(/../g)!.join(':');

/** An Ethernet frame of `len` bytes: known addresses mostly, and headers that is_tcp_syn and the MSS clamp look into. */
function frame(len: number, src: string): Buffer {
  const f = bytes(len);
  const head = Buffer.alloc(60);
  Buffer.from(rnd() < 0.85 ? pick([MAC.vm, MAC.vu, MAC.pu, MAC.pt]) : rnd() < 0.5 ? 'ffffffffffff' : bytes(6).toString('hex'), 'hex').copy(head, 0);
  Buffer.from(rnd() < 0.9 ? src : bytes(6).toString('hex'), 'hex').copy(head, 6);
  let o = 12;
  for (let tags = int(4); tags > 0; tags--, o += 4) head.writeUInt16BE(pick([0x8100, 0x88a8]), o);
  const type = pick([0x0800, 0x86dd, 0x0800, 0x86dd, 0x88b5, int(65536)]);
  head.writeUInt16BE(type, o);
  o += 2;
  let t = o + 20;
  if (type === 0x0800) {
    head[o] = 0x40 | pick([5, 5, 5, 0, 1, 4, 6, 15]);
    head[o + 6] = rnd() < 0.8 ? 0 : int(256);
    head[o + 7] = rnd() < 0.8 ? 0 : int(256);
    head[o + 9] = rnd() < 0.8 ? 6 : int(256);
    t = o + (head[o]! & 15) * 4;
  } else if (type === 0x86dd) {
    head[o] = 0x60;
    head[o + 6] = rnd() < 0.8 ? 6 : int(256);
    t = o + 40;
  }
  if (t + 14 <= head.length) head[t + 13] = rnd() < 0.6 ? 0x02 : int(256);
  head.copy(f, 0, 0, Math.min(len, head.length));
  return f;
}

const seal = (key: Buffer, tag: number, type: number, seq: number, payload: Buffer): Buffer => sealRecord(key, tag, MODE, type, seq, payload);
const open = (key: Buffer, rec: Buffer) => openRecord(key, MODE, rec);

/** A record mangled: bits flipped, cut short, lengthened, its header rewritten. */
function mutate(rec: Buffer): Buffer {
  const b = Buffer.from(rec);
  switch (int(6)) {
    case 0:
      for (let k = 1 + int(4); k > 0 && b.length; k--) {
        const i = int(b.length);
        b[i] = b[i]! ^ (1 << int(8));
      }
      return b;
    case 1:
      return b.subarray(0, int(b.length));
    case 2:
      return Buffer.concat([b, bytes(1 + int(40))]);
    case 3:
      b.writeUIntBE(int(2 ** 48), 3, 6);
      return b;
    case 4:
      b[0] = pick([DATA, PING, PONG, REPORT, 0x15, 0xff, HELLO, PROOF]);
      return b;
    default:
      b.writeUInt16BE(int(65536), 1);
      return b;
  }
}

const count = { udp: 0, udpAuthentic: 0, udpStranger: 0, udpJoined: 0, udpJoinedSegments: 0, udpJoinedRefused: 0, tcpRecords: 0, tcpConnections: 0, stream: 0, streamConnections: 0, dgram: 0 };
const total = () => count.udp + count.udpStranger + count.udpJoined + count.tcpRecords + count.stream + count.dgram;
/** Each kind's share of the inputs: TCP costs a handshake per connection, so it gets fewer. */
const budget = { udp: 0.4 * INPUTS, tcp: 0.2 * INPUTS, stream: 0.25 * INPUTS, dgram: 0.15 * INPUTS };
const done = { udp: () => count.udp + count.udpStranger + count.udpJoined, tcp: () => count.tcpRecords, stream: () => count.stream, dgram: () => count.dgram };
const deadline = Date.now() + SECONDS * 1000;
/** Set when a fuzzing loop fails: the others stop too. */
let stopped = false;
const more = (kind: keyof typeof budget) => done[kind]() < budget[kind] && Date.now() < deadline && !ended() && !stopped;
const tick = () => new Promise<void>((r) => setImmediate(r));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** The last inputs of each kind, written out (in hex) if the daemon dies. */
const recent: Record<string, Buffer[]> = {};
const note = (kind: string, b: Buffer) => {
  const l = (recent[kind] ??= []);
  l.push(b);
  if (l.length > 64) l.shift();
};

let daemon: SpawnedVnetd | undefined;
/** How the daemon ended, once it has. */
const ended = (): string | null => {
  const p = daemon?.proc;
  return p && (p.exitCode !== null || p.signalCode !== null) ? `vnetd exited (${p.exitCode ?? p.signalCode})` : null;
};

function lengthPrefixed(b: Buffer, len = b.length): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(len >>> 0);
  return Buffer.concat([h, b]);
}

/* --- the UDP link ------------------------------------------------------ */

interface UdpPeer {
  sock: dgram.Socket;
  keys: DirectionKeys;
  next: number;
  /** DATA frames the daemon sent us, opened (only when asked to keep them: fuzzing sends it many). */
  got: Buffer[];
}

const udpHandshake = (sock: dgram.Socket, port: number, key: Buffer) => udpDial(sock, HOST, port, key, { self: 'pu', peer: 'fz', mode: MODE });

async function udpPeer(port: number, key: Buffer, keep: boolean): Promise<UdpPeer> {
  const sock = dgram.createSocket(HOST === '::1' ? 'udp6' : 'udp4');
  await new Promise<void>((r) => sock.bind(0, HOST, () => r()));
  const keys = await udpHandshake(sock, port, key);
  const peer: UdpPeer = { sock, keys, next: 0, got: [] };
  sock.on('message', (m) => {
    const r = keep && m[0] === DATA ? open(peer.keys.a2d, m) : null;
    if (r) peer.got.push(r.payload);
  });
  return peer;
}

/** A segment size for `buf`: mostly one that cuts it evenly or nearly, sometimes 1, 2, one past the whole, or the largest. */
function segmentSize(buf: Buffer, usual: number): number {
  const r = rnd();
  const seg = r < 0.7 ? usual : r < 0.8 ? pick([1, 2, 3, 13, 14, 15, 33, 34]) : r < 0.9 ? 1 + int(Math.max(1, buf.length)) : pick([buf.length, buf.length - 1, buf.length + 1, 65535]);
  return Math.min(65535, Math.max(1, seg));
}

/** One segmented send's buffer: authentic records of one length back to back (some forged or mangled, the last perhaps shorter), or random bytes. */
function joined(peer: UdpPeer): { seg: number; buf: Buffer } {
  const { d2a, tag } = peer.keys;
  if (rnd() < 0.3) {
    const buf = bytes(length(65507));
    for (let o = 0; o + 3 <= buf.length && rnd() < 0.5; o += 1 + int(200)) {
      buf[o] = DATA;
      buf.writeUInt16BE(tag, o + 1);
    }
    return { seg: segmentSize(buf, 1 + int(1600)), buf };
  }
  const flen = rnd() < 0.1 ? pick([0, 1, 13, 14, 15]) : length(rnd() < 0.8 ? 200 : 1500);
  const n = 2 + int(rnd() < 0.8 ? 12 : 130);
  const records: Buffer[] = [];
  // Up to a little past what one UDP datagram can hold, which the kernel refuses.
  for (let i = 0, size = 0; i < n && size < 65_600; i++) {
    const f = frame(i === n - 1 && rnd() < 0.5 ? int(flen + 1) : flen, MAC.pu);
    const seq = rnd() < 0.9 ? peer.next++ : Math.max(0, peer.next - 1 - int(100));
    let rec = seal(d2a, tag, rnd() < 0.95 ? DATA : pick([PING, PONG, REPORT, 0x15, 0xff]), seq, f);
    const how = rnd();
    if (how < 0.1) {
      // Forged in place: the same length, so the segments still line up with the records.
      rec = Buffer.from(rec);
      const at = int(rec.length);
      rec[at] = rec[at]! ^ (1 << int(8));
    } else if (how < 0.15) rec = mutate(rec);
    records.push(rec);
    size += rec.length;
  }
  const buf = Buffer.concat(records);
  return { seg: segmentSize(buf, records[0]!.length), buf };
}

async function fuzzUdp(peer: UdpPeer, port: number, key: Buffer, gso: { peer: GsoSender; stranger: (s: dgram.Socket) => GsoSender }): Promise<void> {
  const stranger = dgram.createSocket(HOST === '::1' ? 'udp6' : 'udp4');
  await new Promise<void>((r) => stranger.bind(0, HOST, () => r()));
  const strangerGso = gso.stranger(stranger);
  const send = (s: dgram.Socket, b: Buffer) => s.send(b, port, HOST);
  try {
    while (more('udp')) {
      // A burst, read by the daemon in one recvmmsg or a few.
      for (let k = 1 + int(40); k > 0 && more('udp'); k--) {
        if (rnd() < 0.12) {
          // Joined by GRO: from the peer mostly, its records; from a stranger, bytes.
          const fromPeer = rnd() < 0.85;
          const { seg, buf } = fromPeer ? joined(peer) : { seg: segmentSize(Buffer.alloc(0), 1 + int(1500)), buf: bytes(length(65507)) };
          const head = Buffer.alloc(2);
          head.writeUInt16BE(seg);
          note(fromPeer ? 'udp-joined (2-byte segment size, then the buffer)' : 'udp-joined-stranger', Buffer.concat([head, buf]));
          const errno = await (fromPeer ? gso.peer : strangerGso).send(seg, buf);
          if (errno < 0) throw new Error('the segmented UDP sender (test/support/udp-gso-send.c) died');
          if (errno === 0) count.udpJoinedSegments += Math.max(1, Math.ceil(buf.length / seg));
          else count.udpJoinedRefused++;
          count.udpJoined++;
          continue;
        }
        const r = rnd();
        let d: Buffer;
        const { d2a, tag } = peer.keys;
        if (r < 0.35) {
          // Authentic: a hostile frame, at the next number, a replayed one, or a jump ahead.
          const how = rnd();
          const seq = how < 0.8 ? peer.next++ : how < 0.9 ? Math.max(0, peer.next - 1 - int(2000)) : (peer.next += 1 + int(rnd() < 0.9 ? 5000 : 2 ** 32));
          d = seal(d2a, tag, rnd() < 0.9 ? DATA : pick([PING, PONG, REPORT, 0x15, 0x80, 0xff]), seq, frame(length(65482), MAC.pu));
          count.udpAuthentic++;
        } else if (r < 0.75) {
          d = mutate(seal(d2a, tag, DATA, peer.next++, frame(length(2000), MAC.pu)));
        } else if (r < 0.9) {
          d = bytes(length(65507));
          if (d.length && rnd() < 0.6) d[0] = DATA;
          if (d.length >= 3 && rnd() < 0.5) d.writeUInt16BE(tag, 1);
        } else {
          d = bytes(length(2000));
          if (d.length && rnd() < 0.5) d[0] = pick([DATA, HELLO, PROOF, CHALLENGE, ACCEPT]);
          note('udp-stranger', d);
          send(stranger, d);
          count.udpStranger++;
          continue;
        }
        note('udp', d);
        send(peer.sock, d);
        count.udp++;
      }
      await sleep(int(3));
      if (rnd() < 0.002) {
        // An authentic CLOSE: the session ends; a new handshake makes another.
        const d = seal(peer.keys.d2a, peer.keys.tag, CLOSE, peer.next++, Buffer.alloc(0));
        note('udp', d);
        send(peer.sock, d);
        count.udp++;
        await sleep(20);
        peer.keys = await udpHandshake(peer.sock, port, key);
        peer.next = 0;
      }
    }
  } finally {
    await strangerGso.close();
    stranger.close();
  }
}

/* --- the TCP link ------------------------------------------------------ */

interface TcpPeer {
  sock: net.Socket;
  keys: DirectionKeys;
  next: number;
  got: Buffer[];
  closed: boolean;
}

async function tcpPeer(port: number, key: Buffer, keep: boolean): Promise<TcpPeer> {
  const t = await tcpDial(HOST, port, key, { self: 'pt', peer: 'fz', mode: MODE });
  const peer: TcpPeer = { sock: t.sock, keys: t.keys, next: 0, got: [], closed: false };
  t.onRecord = (m) => {
    const r = keep && m[0] === DATA ? open(peer.keys.a2d, m) : null;
    for (let o = 0; r && o + 2 <= r.payload.length; ) {
      const n = r.payload.readUInt16BE(o);
      peer.got.push(r.payload.subarray(o + 2, o + 2 + n));
      o += 2 + n;
    }
  };
  t.sock.on('close', () => (peer.closed = true));
  t.sock.on('error', () => {});
  return peer;
}

/** A DATA payload of frames, each after its u16 length: well formed, or not. */
function dataBatch(good: boolean): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  for (let k = 1 + int(rnd() < 0.9 ? 8 : 60); k > 0 && size + 2 <= 65537; k--) {
    const f = frame(length(Math.min(65535, 65535 - size)), MAC.pt);
    if (size + 2 + f.length > 65537) break;
    const h = Buffer.alloc(2);
    h.writeUInt16BE(f.length);
    parts.push(h, f);
    size += 2 + f.length;
  }
  const b = Buffer.concat(parts);
  if (good) return b;
  // Entries that do not exactly fill it: cut, lengthened, or a length rewritten.
  const r = rnd();
  if (r < 0.3 && b.length) return b.subarray(0, int(b.length));
  if (r < 0.6) return Buffer.concat([b, bytes(1 + int(3))]);
  if (b.length >= 2) b.writeUInt16BE(int(65536), 0);
  return b;
}

/** Writes `data` in pieces of random sizes, so records straddle the daemon's reads. */
async function dribble(s: net.Socket, data: Buffer): Promise<void> {
  for (let o = 0; o < data.length && !s.destroyed; ) {
    const n = rnd() < 0.5 ? data.length - o : 1 + int(Math.min(data.length - o, rnd() < 0.5 ? 8 : 70_000));
    s.write(data.subarray(o, o + n));
    o += n;
    if (rnd() < 0.3) await tick();
  }
}

async function fuzzTcp(port: number, key: Buffer): Promise<void> {
  while (more('tcp')) {
    let peer: TcpPeer;
    try {
      peer = await tcpPeer(port, key, false);
    } catch (e) {
      if (ended()) return;
      throw e;
    }
    count.tcpConnections++;
    // A peer that does not read: what the daemon sends it queues in C, up to the limit.
    if (rnd() < 0.2) peer.sock.pause();
    // Some of the first bytes reach JavaScript before it hands the connection over.
    if (rnd() < 0.5) await sleep(int(5));
    const stream: Buffer[] = [];
    for (let k = 1 + int(30); k > 0; k--) {
      const type = rnd() < 0.85 ? DATA : pick([PING, PONG, REPORT, 0x15, 0xff]);
      const rec = seal(peer.keys.d2a, peer.keys.tag, type, peer.next++, type === DATA ? dataBatch(true) : bytes(length(600)));
      stream.push(lengthPrefixed(rec));
      note('tcp', rec);
      count.tcpRecords++;
    }
    // How the connection ends: well, or with something that must end it.
    const end = rnd();
    let last: Buffer | null = null;
    const { d2a, tag } = peer.keys;
    if (end < 0.2) last = lengthPrefixed(seal(d2a, tag, DATA, peer.next++, dataBatch(false)));
    else if (end < 0.3) last = lengthPrefixed(seal(d2a, tag, DATA, peer.next + 1 + int(5), dataBatch(true)));
    else if (end < 0.4) last = lengthPrefixed(seal(d2a, tag, DATA, Math.max(0, peer.next - 1 - int(3)), dataBatch(true)));
    else if (end < 0.5) last = lengthPrefixed(mutate(seal(d2a, tag, DATA, peer.next++, dataBatch(true))));
    else if (end < 0.6) {
      // A length prefix that lies: none, too big, too small for a record, or not what follows.
      const body = seal(d2a, tag, DATA, peer.next++, dataBatch(true));
      last = lengthPrefixed(body, pick([0, 1, 24, 25, 65562, 65563, 0xffffffff, body.length + 1 + int(100), Math.max(0, body.length - 1 - int(20))]));
    } else if (end < 0.7) last = bytes(length(5000));
    else if (end < 0.75) last = lengthPrefixed(seal(d2a, tag, CLOSE, peer.next++, Buffer.alloc(0)));
    if (last) {
      stream.push(last);
      note('tcp', last);
      count.tcpRecords++;
    }
    await dribble(peer.sock, Buffer.concat(stream));
    if (rnd() < 0.3) peer.sock.end();
    for (let t = 0; t < 50 && !peer.closed && last !== null; t++) await sleep(2);
    peer.sock.destroy();
  }
}

/* --- the QEMU interfaces -------------------------------------------------- */

async function fuzzStream(port: number): Promise<void> {
  while (more('stream')) {
    const s = await new Promise<net.Socket>((resolve, reject) => {
      const c = net.connect(port, HOST);
      c.once('error', reject);
      c.once('connect', () => resolve(c));
    }).catch(() => null);
    if (!s) {
      await sleep(20);
      continue;
    }
    count.streamConnections++;
    s.on('error', () => {});
    s.on('data', () => {});
    let closed = false;
    s.on('close', () => (closed = true));
    // Wait for the daemon to take it (it refuses a second VM while one is connected).
    await sleep(5);
    const parts: Buffer[] = [];
    for (let k = 1 + int(60); k > 0; k--) {
      parts.push(lengthPrefixed(frame(14 + length(65535 - 14), MAC.vm)));
      count.stream++;
    }
    const r = rnd();
    if (r < 0.5) {
      const bad = lengthPrefixed(Buffer.alloc(0), pick([0, 1, 5, 13, 65536, 0x7fffffff, 0xffffffff]));
      parts.push(Buffer.concat([bad, bytes(int(40))]));
      count.stream++;
    } else if (r < 0.6) {
      parts.push(lengthPrefixed(frame(100, MAC.vm), 200).subarray(0, 50));
      count.stream++;
    }
    for (const p of parts) note('stream', p);
    await dribble(s, Buffer.concat(parts));
    for (let t = 0; t < 50 && !closed && r < 0.5; t++) await sleep(2);
    if (rnd() < 0.5) s.end();
    else s.destroy();
    await sleep(2);
  }
}

async function fuzzDatagram(vm: dgram.Socket, port: number): Promise<void> {
  while (more('dgram')) {
    for (let k = 1 + int(20); k > 0 && more('dgram'); k--) {
      const f = rnd() < 0.8 ? frame(length(65507), MAC.vu) : bytes(length(65507));
      note('dgram', f);
      vm.send(f, port, HOST);
      count.dgram++;
    }
    await sleep(int(3));
  }
}

/* --- the run -------------------------------------------------------------- */

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-fuzz-'));
  const [linkPort, streamPort, dgramPort] = [await freePort(HOST), await freePort(HOST), await freePort(HOST)];
  const vu = await syntheticVm(HOST);
  const d: SpawnedVnetd = (daemon = { machine: 'fz', port: linkPort, dir, log: '' });
  let up: UdpPeer | undefined;
  let peerGso: GsoSender | undefined;
  let failure = '';
  try {
    await startVnetd(d, ['--iface', `vm0=qemu-stream:listen=${formatHostPort({ host: HOST, port: streamPort })}`,
      '--iface', `vu0=qemu-udp:listen=${formatHostPort({ host: HOST, port: dgramPort })},peer=${formatHostPort({ host: HOST, port: vu.port })}`], { listen: HOST });
    const [ku, kt] = [Buffer.alloc(32, 0x5a), Buffer.alloc(32, 0xa5)];
    await batch(d, [`LINK ADD pu UDP ACCEPT - ${ku.toString('hex')} ${MODE.toUpperCase()}`, `LINK ADD pt TCP ACCEPT - ${kt.toString('hex')} ${MODE.toUpperCase()}`,
      `RULE ADD ANY ${colon(MAC.vm)} IFACE vm0`, `RULE ADD ANY ${colon(MAC.vu)} IFACE vu0`, `RULE ADD ANY ${colon(MAC.pu)} LINK pu`,
      `RULE ADD ANY ${colon(MAC.pt)} LINK pt`]);
    const stat = async (name: string) => Number((await ok(d, 'STATS?')).data.find((l) => l.startsWith(`${name} `))?.split(' ')[1]);
    up = await udpPeer(linkPort, ku, false);
    const gsoExe = buildGsoSender(dir);
    const sender = (s: dgram.Socket) => gsoSender(gsoExe, s, HOST, linkPort);
    peerGso = sender(up.sock);
    const started = Date.now();
    const loops = [fuzzUdp(up, linkPort, ku, { peer: peerGso, stranger: sender }), fuzzTcp(linkPort, kt), fuzzStream(streamPort), fuzzDatagram(vu.sock, dgramPort)];
    for (const l of loops) l.catch(() => (stopped = true));
    await Promise.all(loops);
    const secs = (Date.now() - started) / 1000;
    process.stdout.write(`fuzzed for ${secs.toFixed(0)} s: ${JSON.stringify(count)}, ${total()} inputs\n`);
    if (ended()) throw new Error("no input was refused: it died");

    // Afterwards: frames still cross every way, and (on the fast path) through C.
    await sleep(300);
    const vm = await waitFor('the stream VM to be taken', async () => {
      const s = net.connect(streamPort, HOST);
      const connected = await new Promise<boolean>((r) => (s.once('connect', () => r(true)), s.once('error', () => r(false))));
      return connected ? s : undefined;
    });
    const vmGot = collect(vm);
    await waitFor('the stream on the fast path', async () => ((await ok(d, 'DEVICES?')).data.some((l) => l.startsWith('vm0 ') && / vm=up$/.test(l)) ? true : undefined));
    const u = await udpPeer(linkPort, ku, true);
    const t = await tcpPeer(linkPort, kt, true);
    await waitFor('both links up', async () => ((await ok(d, 'LINKS?')).data.filter((l) => / up /.test(l)).length === 2 ? true : undefined));
    await sleep(50);
    const eth = (dst: string, src: string, n: number) => {
      const f = Buffer.alloc(100, n);
      Buffer.from(dst, 'hex').copy(f, 0);
      Buffer.from(src, 'hex').copy(f, 6);
      f.writeUInt16BE(0x88b5, 12);
      return f;
    };
    const carriedBefore = await stat('fast-path.frames');
    const N = 50;
    for (let n = 1; n <= N; n++) {
      u.sock.send(seal(u.keys.d2a, u.keys.tag, DATA, u.next++, eth(MAC.vm, MAC.pu, n)), linkPort, HOST);
      const b = eth(MAC.vm, MAC.pt, n);
      const h = Buffer.alloc(2);
      h.writeUInt16BE(b.length);
      t.sock.write(lengthPrefixed(seal(t.keys.d2a, t.keys.tag, DATA, t.next++, Buffer.concat([h, b]))));
      vm.write(lengthPrefixed(eth(MAC.pu, MAC.vm, n)));
      vm.write(lengthPrefixed(eth(MAC.pt, MAC.vm, n)));
      vu.sock.send(eth(MAC.pu, MAC.vu, n), dgramPort, HOST);
      await sleep(2);
    }
    await waitFor('the frames after fuzzing', () => (vmGot.length === 2 * N && u.got.length === 2 * N && t.got.length === N ? true : undefined), 10_000).catch(() => {
      throw new Error(`after fuzzing, frames did not all cross: vm ${vmGot.length}/${2 * N}, udp peer ${u.got.length}/${2 * N}, tcp peer ${t.got.length}/${N}`);
    });
    const carried = (await stat('fast-path.frames')) - carriedBefore;
    process.stdout.write(`after fuzzing: every frame crossed (${carried} of ${5 * N} by the fast path)\n`);
    process.stdout.write(`LINKS?\n${(await ok(d, 'LINKS?')).data.join('\n')}\nDEVICES?\n${(await ok(d, 'DEVICES?')).data.join('\n')}\n`);
    u.sock.close();
    t.sock.destroy();
    vm.destroy();
  } catch (e) {
    // The daemon dying is the finding, what a loop then tripped over is not; its exit may be reported after the loop's error.
    for (let t = 0; t < 25 && !ended(); t++) await sleep(20);
    const exit = ended();
    failure = exit ? `${exit} while fuzzed (${(e as Error).message})` : (e as Error).message;
  } finally {
    await stopVnetd(d);
    await peerGso?.close();
    up?.sock.close();
    vu.sock.close();
    const sanitizer = /AddressSanitizer|runtime error|LeakSanitizer/.test(d.log);
    if (failure || sanitizer) {
      const dump = path.join(os.tmpdir(), `vnetd-fuzz-${SEED}-${process.pid}.json`);
      const inputs = Object.fromEntries(Object.entries(recent).map(([kind, l]) => [kind, l.map((b) => b.toString('hex'))]));
      fs.writeFileSync(dump, JSON.stringify({ seed: SEED, count, failure, recent: inputs, log: d.log }, null, 1));
      process.stderr.write(`FAILED: ${failure || 'sanitizer report'}\n${d.log.slice(-6000)}\nlast inputs: ${dump}\n`);
      process.exitCode = 1;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
