import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { LinkManager, type LinkManagerOptions, type LinkSpec, type LinkStats } from '../../daemon/links/manager.js';
import type { ListenerStats } from '../../daemon/links/types.js';
import { DialerHandshake } from '../../daemon/links/handshake.js';
import { withLength } from '../../daemon/links/framing.js';
import { MAX_FRAME, UDP_MAX_FRAME } from '../../daemon/links/wire.js';
import { FastPath } from '../../daemon/forward/fast-path.js';
import { ForwardingTable } from '../../daemon/forward/table.js';
import { mssOf, mssOption, SACK_OK, tcpChecksumSum, tcpFrame } from '../support/tcp-frames.js';

// Short timers so that failures, timeouts and re-dials happen within a test;
// no assertion depends on them beyond "eventually".
const FAST: Partial<LinkManagerOptions> = {
  keepaliveMs: 100,
  deadMs: 400,
  handshakeMs: 400,
  backoff: { initialMs: 20, maxMs: 150 },
};

const open: LinkManager[] = [];
const cleanups: Array<() => void | Promise<void>> = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((m) => m.close()));
  for (const c of cleanups.splice(0)) await c();
});

/**
 * Every test runs twice: links in JavaScript, and links whose records the
 * fast path reads and writes (its UDP socket, its hand-over of TCP
 * connections, its opening of records), as vnetd runs them when the pcap
 * addon is built.
 */
let withFastPath = false;
const noFastPath = FastPath.create(new ForwardingTable(), { sampled: () => {} }) ? null : 'the pcap addon (vnetd-pcap) is not built';
if (noFastPath) process.stderr.write(`links.test: only links in JavaScript are tested: ${noFastPath}\n`);

async function daemon(self: string, opts: Partial<LinkManagerOptions> = {}): Promise<LinkManager> {
  const fast = withFastPath ? FastPath.create(new ForwardingTable(), { sampled: () => {} }) : null;
  const m = new LinkManager({ self, port: 0, ...FAST, ...(fast ? { openUdp: fast.openUdp } : {}), ...opts });
  fast?.serve(m);
  open.push(m);
  await m.start();
  return m;
}

async function until<T>(what: string, probe: () => T | null | undefined | false, timeoutMs = 4000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const link = (m: LinkManager, peer: string): LinkStats | undefined => m.stats().find((s) => s.peer === peer);
const listener = (m: LinkManager): ListenerStats => m.listenerStats();
const up = (m: LinkManager, peer: string): Promise<LinkStats> => until(`${peer} up`, () => link(m, peer)?.state === 'up' && link(m, peer));

function inbox(m: LinkManager): Array<{ peer: string; frame: Buffer }> {
  const got: Array<{ peer: string; frame: Buffer }> = [];
  m.on('frame', (peer, frame) => got.push({ peer, frame: Buffer.from(frame) }));
  return got;
}

/** `a` dials `b` at `address` (b's own port unless told). */
function connectPair(
  a: LinkManager,
  b: LinkManager,
  o: Partial<LinkSpec> & { aKey?: Buffer; bKey?: Buffer; bPeer?: string } = {},
): void {
  const key = o.key ?? randomBytes(32);
  const base = { proto: o.proto ?? 'tcp', mode: o.mode ?? 'encrypt' } as const;
  a.add({ ...base, peer: o.peer ?? 'b', dial: true, address: o.address ?? `127.0.0.1:${b.port}`, key: o.aKey ?? key });
  b.add({ ...base, peer: o.bPeer ?? 'a', dial: false, key: o.bKey ?? key });
}

const frameOf = (n: number, fill: number): Buffer => Buffer.alloc(n, fill);

/** Forwards TCP connections to a port; can cut every one of them, or flip a bit on the way. */
async function tcpProxy(targetPort: number): Promise<{ port: number; cut(): void; corruptNext: boolean }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => {
      if (proxy.corruptNext) {
        proxy.corruptNext = false;
        chunk[chunk.length - 1] = chunk[chunk.length - 1]! ^ 1;
      }
      upstream.write(chunk);
    });
    upstream.pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const cut = (): void => {
    for (const s of sockets) s.destroy();
  };
  cleanups.push(() => {
    cut();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const proxy = { port: (server.address() as { port: number }).port, cut, corruptNext: false };
  return proxy;
}

/** A one-client UDP middlebox: records, duplicates or swallows what it relays. */
async function udpRelay(targetPort: number) {
  const socket: UdpSocket = createSocket('udp4');
  const relay = {
    port: 0,
    client: null as RemoteInfo | null,
    fromClient: [] as Buffer[],
    blackhole: false,
    duplicateData: false,
    /** Sends the client a CHALLENGE of its own making just before each real one, as an off-path spoofer faster than the acceptor would. */
    forgeChallenges: false,
    send: (msg: Buffer) => socket.send(msg, targetPort, '127.0.0.1'),
  };
  socket.on('message', (msg, rinfo) => {
    if (relay.blackhole) return;
    if (rinfo.port === targetPort) {
      if (!relay.client) return;
      if (relay.forgeChallenges && msg[0] === 0x02) socket.send(Buffer.concat([msg.subarray(0, 1), randomBytes(32)]), relay.client.port, relay.client.address);
      socket.send(msg, relay.client.port, relay.client.address);
      return;
    }
    relay.client = rinfo;
    relay.fromClient.push(Buffer.from(msg));
    socket.send(msg, targetPort, '127.0.0.1');
    if (relay.duplicateData && msg[0] === 0x10) socket.send(msg, targetPort, '127.0.0.1');
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  relay.port = socket.address().port;
  cleanups.push(() => new Promise<void>((r) => socket.close(() => r())));
  return relay;
}

/** A bare connection; `closed` (node's own) turns true once it is closed, by either end. */
async function rawTcp(port: number, from?: string): Promise<Socket & { gone: Promise<void> }> {
  const s = connect({ port, host: '127.0.0.1', ...(from ? { localAddress: from } : {}) }) as Socket & { gone: Promise<void> };
  s.on('error', () => {});
  s.gone = new Promise((r) => s.on('close', () => r()));
  await new Promise<void>((r) => s.once('connect', r));
  cleanups.push(() => void s.destroy());
  return s;
}

describe.each([['in JavaScript', false], ['through the fast path', true]] as const)('links %s', (_how, fast) => {
  const maybe = fast && noFastPath ? describe.skip : describe;
  beforeAll(() => {
    withFastPath = fast;
  });

  maybe('frames between two daemons', () => {
    test.each([
      ['tcp', 'encrypt'],
      ['tcp', 'auth-only'],
      ['udp', 'encrypt'],
      ['udp', 'auth-only'],
    ] as const)('%s, %s: frames cross both ways, counted', async (proto, mode) => {
      const a = await daemon('a');
      const b = await daemon('b');
      const atA = inbox(a);
      const atB = inbox(b);
      connectPair(a, b, { proto, mode });
      await Promise.all([up(a, 'b'), up(b, 'a')]);
      const sizes = [60, 1514, 9018];
      sizes.forEach((n, i) => expect(a.send('b', frameOf(n, i + 1))).toBe(true));
      sizes.forEach((n, i) => expect(b.send('a', frameOf(n, i + 11))).toBe(true));
      await until('frames', () => atA.length === 3 && atB.length === 3);
      expect(atB.map((f) => [f.peer, f.frame.length, f.frame[0]])).toEqual(sizes.map((n, i) => ['a', n, i + 1]));
      expect(atA.map((f) => [f.peer, f.frame.length, f.frame[0]])).toEqual(sizes.map((n, i) => ['b', n, i + 11]));
      const total = sizes.reduce((x, y) => x + y, 0);
      expect(link(a, 'b')).toMatchObject({ proto, mode, state: 'up', txFrames: 3, txBytes: total, rxFrames: 3, rxBytes: total, authFailures: 0 });
      expect(link(b, 'a')).toMatchObject({ dial: false, txFrames: 3, rxFrames: 3, rejected: 0, replayed: 0 });
    });

    test.each(['udp', 'tcp'] as const)('%s over IPv6, and from a v4 peer to a dual-stack daemon: frames cross both ways', async (proto) => {
      const a = await daemon('a', { host: '::' });
      const b = await daemon('b', { host: '::1' });
      const c = await daemon('c', { host: '127.0.0.1' });
      const [atA, atB, atC] = [inbox(a), inbox(b), inbox(c)];
      connectPair(b, a, { proto, peer: 'a', bPeer: 'b', address: `[::1]:${a.port}` });
      connectPair(c, a, { proto, peer: 'a', bPeer: 'c', address: `127.0.0.1:${a.port}` });
      await Promise.all([up(a, 'b'), up(a, 'c'), up(b, 'a'), up(c, 'a')]);
      const sizes = [60, 1514, 9018];
      for (const [m, peer] of [[b, 'a'], [c, 'a'], [a, 'b'], [a, 'c']] as const) sizes.forEach((n, i) => expect(m.send(peer, frameOf(n, i + 1))).toBe(true));
      await until('frames', () => atA.length === 6 && atB.length === 3 && atC.length === 3);
      const got = (box: typeof atA, from: string) => box.filter((f) => f.peer === from).map((f) => [f.frame.length, f.frame[0]]);
      const want = sizes.map((n, i) => [n, i + 1]);
      expect([got(atA, 'b'), got(atA, 'c'), got(atB, 'a'), got(atC, 'a')]).toEqual([want, want, want, want]);
      expect(link(a, 'b')?.remote).toMatch(/^\[::1\]:\d+$/);
      expect(link(a, 'c')?.remote).toMatch(/127\.0\.0\.1\]?:\d+$/);
    });

    test('a TCP SYN crossing a UDP link has its MSS clamped to what the path carries unfragmented, by the end that knows the path, either way; over TCP it crosses as it was', async () => {
      // Only b knows its path: a 1400-byte IPv4 MTU to every peer, 1372 bytes of UDP payload. Less the record (25), 1347-byte frames: MSS 1293.
      const spec = { options: [mssOption(1460), SACK_OK] };
      for (const [proto, mss] of [['udp', 1293], ['tcp', 1460]] as const) {
        const a = await daemon('a');
        const b = await daemon('b', { pathRoom: () => 1372 });
        const [atA, atB] = [inbox(a), inbox(b)];
        connectPair(a, b, { proto });
        await Promise.all([up(a, 'b'), up(b, 'a')]);
        expect(a.send('b', tcpFrame(spec))).toBe(true);
        expect(b.send('a', tcpFrame(spec))).toBe(true);
        await until('the SYNs', () => atA.length === 1 && atB.length === 1);
        for (const got of [atA[0]!.frame, atB[0]!.frame]) expect([mssOf(got, spec), tcpChecksumSum(got, spec)]).toEqual([mss, 0xffff]);
      }
    });

    test('three daemons: a proxy relays between a TCP host and a UDP host', async () => {
      const proxy = await daemon('proxy');
      const h1 = await daemon('h1');
      const h2 = await daemon('h2');
      connectPair(h1, proxy, { peer: 'proxy', bPeer: 'h1', proto: 'tcp' });
      connectPair(h2, proxy, { peer: 'proxy', bPeer: 'h2', proto: 'udp', mode: 'auth-only' });
      proxy.on('frame', (from, frame) => proxy.send(from === 'h1' ? 'h2' : 'h1', frame));
      const at1 = inbox(h1);
      const at2 = inbox(h2);
      await Promise.all([up(h1, 'proxy'), up(h2, 'proxy'), up(proxy, 'h1'), up(proxy, 'h2')]);
      h1.send('proxy', frameOf(100, 0xa1));
      h2.send('proxy', frameOf(200, 0xb2));
      await until('relayed frames', () => at1.length === 1 && at2.length === 1);
      expect(at2[0]!.frame.equals(frameOf(100, 0xa1))).toBe(true);
      expect(at1[0]!.frame.equals(frameOf(200, 0xb2))).toBe(true);
      expect(proxy.stats().map((s) => [s.peer, s.proto, s.rxFrames, s.txFrames])).toEqual([
        ['h1', 'tcp', 1, 1],
        ['h2', 'udp', 1, 1],
      ]);
    });

    test('frames up to the transport limit cross; larger ones and sends on a down link are dropped', async () => {
      const a = await daemon('a');
      const b = await daemon('b');
      const c = await daemon('c');
      const atB = inbox(b);
      const atC = inbox(c);
      expect(a.send('b', frameOf(60, 1))).toBe(false);
      connectPair(a, b, { proto: 'tcp' });
      connectPair(a, c, { peer: 'c', proto: 'udp' });
      expect(a.send('b', frameOf(60, 1))).toBe(false);
      await Promise.all([up(a, 'b'), up(a, 'c')]);
      expect(a.send('b', frameOf(MAX_FRAME, 2))).toBe(true);
      expect(a.send('b', frameOf(MAX_FRAME + 1, 3))).toBe(false);
      expect(a.send('c', frameOf(UDP_MAX_FRAME, 4))).toBe(true);
      expect(a.send('c', frameOf(UDP_MAX_FRAME + 1, 5))).toBe(false);
      expect(a.send('nobody', frameOf(60, 6))).toBe(false);
      await until('jumbo frames', () => atB.length === 1 && atC.length === 1);
      expect(atB[0]!.frame.length).toBe(MAX_FRAME);
      expect(atC[0]!.frame.length).toBe(UDP_MAX_FRAME);
      expect(link(a, 'b')!.dropped).toBe(2);
      expect(link(a, 'c')!.dropped).toBe(1);
    });

    test('a burst of frames in one turn is batched over TCP and arrives whole and in order', async () => {
      const a = await daemon('a');
      const b = await daemon('b');
      const atB = inbox(b);
      connectPair(a, b, { proto: 'tcp' });
      await up(a, 'b');
      // Sizes chosen so that batches fill up and are cut mid-turn, yet the
      // whole burst stays under the send queue's limit (beyond it, frames are dropped).
      const sizes = Array.from({ length: 300 }, (_, i) => (i % 50 === 0 ? MAX_FRAME : i % 7 === 0 ? 4000 : 60 + i));
      sizes.forEach((n, i) => {
        const f = randomBytes(n);
        f.writeUInt16BE(i, 0);
        expect(a.send('b', f)).toBe(true);
      });
      await until('all frames', () => atB.length === sizes.length);
      expect(atB.map((f) => [f.frame.length, f.frame.readUInt16BE(0)])).toEqual(sizes.map((n, i) => [n, i]));
      expect(link(b, 'a')!.rxBytes).toBe(sizes.reduce((x, y) => x + y, 0));
    });

    test('a burst beyond the send queue limit is dropped, not queued', async () => {
      const a = await daemon('a');
      const b = await daemon('b');
      connectPair(a, b, { proto: 'tcp' });
      await up(a, 'b');
      // 26 MB in one turn: more than the kernel's socket buffer (which the fast path writes into at once) and the daemon's 1 MiB queue.
      const results = Array.from({ length: 400 }, () => a.send('b', frameOf(MAX_FRAME, 1)));
      expect(results.filter((r) => !r).length).toBeGreaterThan(0);
      expect(link(a, 'b')).toMatchObject({ state: 'up', dropped: results.filter((r) => !r).length });
    });

    test('keep-alives measure the round trip', async () => {
      const a = await daemon('a');
      const b = await daemon('b');
      connectPair(a, b, { proto: 'udp' });
      const rtt = await until('an RTT sample', () => link(a, 'b')?.rttMs ?? null);
      expect(rtt).toBeGreaterThanOrEqual(0);
      await until('an RTT at the acceptor too', () => link(b, 'a')?.rttMs !== null);
    });
  });

  maybe('authentication', () => {
    test.each(['tcp', 'udp'] as const)('%s: a wrong key is refused, counted by the dialing link and the accepting daemon; the dialer\'s log lists the likely causes and points to the peer\'s', async (proto) => {
      const logged: string[] = [];
      const a = await daemon('a', { log: (l) => logged.push(l) });
      const b = await daemon('b');
      let ups = 0;
      a.on('up', () => ups++);
      b.on('up', () => ups++);
      connectPair(a, b, { proto, aKey: randomBytes(32), bKey: randomBytes(32) });
      await until('two refusals', () => listener(b).authFailures >= 2 && link(a, 'b')!.authFailures >= 2);
      // At the acceptor a wrong key looks like anyone naming the link: the daemon counts it, the link does not.
      expect(link(b, 'a')!.authFailures).toBe(0);
      expect(link(a, 'b')!.lastError).toMatch(/refused/);
      const detail = proto === 'tcp' ? 'peer closed after our proof' : 'peer did not accept our proof';
      expect(logged).toContain(
        `link b: dial failed: refused: ${detail}: likely a wrong key, no link to accept from a at b, or a link there that is not ${proto} encrypt; ` +
          `b's log names the reason, on its line "links: refused 'a' ..."`,
      );
      expect(ups).toBe(0);
      expect(a.send('b', frameOf(60, 0))).toBe(false);
    });

    test.each(['tcp', 'udp'] as const)('%s: a new link refused once because its peer has not got its end yet (apply configures both at once) counts no auth failure; a later refusal does', async (proto) => {
      const a = await daemon('a');
      const b = await daemon('b');
      const key = randomBytes(32);
      a.add({ peer: 'b', proto, mode: 'encrypt', dial: true, address: `127.0.0.1:${b.port}`, key });
      await until('the first refusal', () => /refused/.test(link(a, 'b')!.lastError ?? '') || null);
      b.add({ peer: 'a', proto, mode: 'encrypt', dial: false, key });
      await until('up', () => link(a, 'b')!.state === 'up' || null);
      expect(link(a, 'b')!.authFailures).toBe(0);
      // Once the link has been up, a refusal means something: the peer's end changed.
      b.add({ peer: 'a', proto, mode: 'encrypt', dial: false, key: randomBytes(32) });
      await until('a refusal after being up', () => link(a, 'b')!.authFailures >= 1 || null);
    });

    test.each(['tcp', 'udp'] as const)('%s: unknown peers, peers we dial ourselves, and misaddressed handshakes are refused', async (proto) => {
      const key = randomBytes(32);
      const b = await daemon('b');
      const stranger = await daemon('stranger');
      stranger.add({ peer: 'b', proto, dial: true, address: `127.0.0.1:${b.port}`, key, mode: 'encrypt' });
      await until('unknown peer', () => listener(b).unknownPeer >= 1);

      const a = await daemon('a');
      b.add({ peer: 'a', proto, dial: true, address: '127.0.0.1:9', key, mode: 'encrypt' });
      a.add({ peer: 'b', proto, dial: true, address: `127.0.0.1:${b.port}`, key, mode: 'encrypt' });
      const before = listener(b).unknownPeer;
      await until('a refused: b dials a itself', () => listener(b).unknownPeer > before);

      // The right key, sent to the right port, but addressed to another name.
      b.add({ peer: 'a', proto, dial: false, key, mode: 'encrypt' });
      a.add({ peer: 'c', proto, dial: true, address: `127.0.0.1:${b.port}`, key, mode: 'encrypt' });
      a.remove('b');
      const before2 = listener(b).unknownPeer;
      await until('misaddressed refused', () => listener(b).unknownPeer > before2);
      expect(b.stats().every((s) => s.state !== 'up')).toBe(true);
      await until('the stranger counts its refusal', () => link(stranger, 'b')!.authFailures >= 1);
    });

    test('a stranger naming a link with a junk PROOF is counted by the daemon, not on the link it named', async () => {
      const b = await daemon('b');
      b.add({ peer: 'a', proto: 'tcp', dial: false, key: randomBytes(32), mode: 'encrypt' });
      const hello = new DialerHandshake(randomBytes(32), { self: 'a', peer: 'b', proto: 'tcp', mode: 'encrypt' }).hello;
      const s = await rawTcp(b.port);
      const challenge = new Promise<void>((r) => s.once('data', () => r()));
      s.write(withLength(hello));
      await challenge;
      s.write(withLength(Buffer.concat([Buffer.from([0x03]), randomBytes(32)])));
      await s.gone;
      await until('the refusal counted', () => listener(b).authFailures === 1);
      expect(link(b, 'a')!.authFailures).toBe(0);
    });

    test('a mode mismatch is refused, and counted as such', async () => {
      const a = await daemon('a');
      const b = await daemon('b');
      const key = randomBytes(32);
      a.add({ peer: 'b', proto: 'tcp', dial: true, address: `127.0.0.1:${b.port}`, key, mode: 'encrypt' });
      b.add({ peer: 'a', proto: 'tcp', dial: false, key, mode: 'auth-only' });
      await until('mismatch', () => listener(b).mismatch >= 1);
      expect(link(a, 'b')!.state).not.toBe('up');
    });

    test('a replayed UDP datagram is rejected, and the frame arrives once', async () => {
      const a = await daemon('a');
      const b = await daemon('b');
      const relay = await udpRelay(b.port);
      relay.duplicateData = true;
      const atB = inbox(b);
      connectPair(a, b, { proto: 'udp', address: `127.0.0.1:${relay.port}` });
      await up(a, 'b');
      for (let i = 0; i < 5; i++) a.send('b', frameOf(80, i));
      await until('duplicates rejected', () => link(b, 'a')!.replayed >= 5 && atB.length >= 5);
      // A late replay of the first data datagram, after the window moved on.
      relay.send(relay.fromClient.find((m) => m[0] === 0x10)!);
      await until('late replay rejected', () => link(b, 'a')!.replayed >= 6);
      expect(atB.map((f) => f.frame[0])).toEqual([0, 1, 2, 3, 4]);
    });

    test('a forged CHALLENGE from the acceptor\'s address ahead of each real one neither keeps a UDP link down nor counts as a wrong key', async () => {
      const a = await daemon('a');
      const b = await daemon('b');
      const relay = await udpRelay(b.port);
      relay.forgeChallenges = true;
      const proofs = (): number => relay.fromClient.filter((m) => m[0] === 0x03).length;
      connectPair(a, b, { proto: 'udp', address: `127.0.0.1:${relay.port}` });
      await Promise.all([up(a, 'b'), up(b, 'a')]);
      // The dialer answered the forgery too: its PROOF reached the acceptor, which had never issued that cookie.
      expect(proofs()).toBeGreaterThanOrEqual(2);
      await until('the PROOF to the forgery dropped', () => listener(b).strays >= 1);
      expect(link(a, 'b')).toMatchObject({ authFailures: 0, reconnects: 0, lastError: null });
      expect(listener(b)).toMatchObject({ authFailures: 0, handshakes: 1 });
    });

    test('a recorded UDP handshake replayed later opens nothing', async () => {
      const a = await daemon('a');
      const b = await daemon('b');
      const relay = await udpRelay(b.port);
      connectPair(a, b, { proto: 'udp', address: `127.0.0.1:${relay.port}` });
      await up(b, 'a');
      a.remove('b');
      await until('b sees a go', () => link(b, 'a')!.state === 'down');
      const hello = relay.fromClient.find((m) => m[0] === 0x01)!;
      const proof = relay.fromClient.find((m) => m[0] === 0x03)!;
      const before = listener(b);
      // At once: the acceptor remembers the handshake and answers with its old
      // ACCEPT (as for a retransmission); no second session opens.
      relay.send(proof);
      await new Promise((r) => setTimeout(r, 50));
      expect(listener(b).handshakes).toBe(before.handshakes);
      // Later than the cookie lives (two time slots of handshakeMs): the PROOF
      // carries a cookie the acceptor no longer computes, and goes nowhere.
      await new Promise((r) => setTimeout(r, 850));
      relay.send(hello);
      await new Promise((r) => setTimeout(r, 50));
      relay.send(proof);
      await until('stale proof ignored', () => listener(b).strays >= before.strays + 1);
      await new Promise((r) => setTimeout(r, 50));
      expect(listener(b).handshakes).toBe(before.handshakes);
      expect(link(b, 'a')!.state).toBe('down');
    });
  });

  /** A NAT in front of a dialer: the dialer talks to `port`; the NAT talks to the target from an outside port it can change. */
  async function nat(targetPort: number) {
    const inside: UdpSocket = createSocket('udp4');
    let client: RemoteInfo | null = null;
    const outsides: UdpSocket[] = [];
    const fromClient: Buffer[] = [];
    const bind = async (): Promise<UdpSocket> => {
      const s = createSocket('udp4');
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
      s.on('message', (msg) => {
        // A NAT forwards back only what arrives at the current mapping.
        if (s === outsides[outsides.length - 1] && client) inside.send(msg, client.port, client.address);
      });
      outsides.push(s);
      return s;
    };
    await bind();
    inside.on('message', (msg, rinfo) => {
      client = rinfo;
      fromClient.push(Buffer.from(msg));
      outsides[outsides.length - 1]!.send(msg, targetPort, '127.0.0.1');
    });
    await new Promise<void>((r) => inside.bind(0, '127.0.0.1', r));
    cleanups.push(async () => {
      for (const s of [inside, ...outsides]) await new Promise<void>((r) => s.close(() => r()));
    });
    return {
      port: inside.address().port,
      fromClient,
      outsidePort: () => outsides[outsides.length - 1]!.address().port,
      /** The mapping expires and the next datagram leaves from a new port. */
      rebind: bind,
    };
  }

  maybe('NAT rebinding and spoofing (UDP)', () => {
    test('a peer whose address changes is followed once a record from the new address authenticates, never before', async () => {
      const a = await daemon('a');
      const b = await daemon('b');
      const atA = inbox(a);
      const atB = inbox(b);
      const n = await nat(b.port);
      connectPair(a, b, { proto: 'udp', address: `127.0.0.1:${n.port}` });
      await Promise.all([up(a, 'b'), up(b, 'a')]);
      expect(a.send('b', frameOf(100, 1))).toBe(true);
      await until('first frame', () => atB.length === 1);
      const first = n.outsidePort();
      expect(link(b, 'a')!.remote).toBe(`127.0.0.1:${first}`);

      // From another address: a recorded authentic record (a replay) and one altered in transit. Neither moves the link.
      const data = n.fromClient.filter((m) => m[0] === 0x10);
      const spoofer = createSocket('udp4');
      cleanups.push(() => new Promise<void>((r) => spoofer.close(() => r())));
      await new Promise<void>((r) => spoofer.bind(0, '127.0.0.1', r));
      const altered = Buffer.from(data[data.length - 1]!);
      altered[altered.length - 1] = altered[altered.length - 1]! ^ 1;
      const strays = listener(b).strays;
      spoofer.send(data[data.length - 1]!, b.port, '127.0.0.1');
      spoofer.send(altered, b.port, '127.0.0.1');
      await until('spoofed records dropped', () => listener(b).strays >= strays + 2);
      expect(link(b, 'a')).toMatchObject({ remote: `127.0.0.1:${first}`, moves: 0, state: 'up' });
      expect(atB).toHaveLength(1);

      // The NAT rebinds: the next record comes from a new port, authenticates, and the link follows it both ways.
      await n.rebind();
      expect(a.send('b', frameOf(100, 2))).toBe(true);
      await until('frame via the new mapping', () => atB.length === 2);
      expect(link(b, 'a')).toMatchObject({ remote: `127.0.0.1:${n.outsidePort()}`, moves: 1, reconnects: 0, state: 'up' });
      expect(b.send('a', frameOf(100, 3))).toBe(true);
      await until('reply through the new mapping', () => atA.length === 1);
      expect(atA[0]!.frame[0]).toBe(3);
      expect(link(a, 'b')).toMatchObject({ reconnects: 0, moves: 0 });
    });

    test('a flood of HELLOs from many addresses leaves no state behind: each gets a stateless CHALLENGE, and a real dialer gets through', async () => {
      const a = await daemon('a');
      const b = await daemon('b');
      let challenges = 0;
      const hello = () => new DialerHandshake(randomBytes(32), { self: 'a', peer: 'b', proto: 'udp', mode: 'encrypt' }).hello;
      // More sources than the 256 half-open handshakes an acceptor used to hold, each never finishing.
      const SOURCES = 320;
      const flooders: UdpSocket[] = [];
      cleanups.push(async () => {
        for (const f of flooders) await new Promise<void>((r) => f.close(() => r()));
      });
      for (let i = 0; i < SOURCES; i++) {
        const f = createSocket('udp4');
        f.on('message', (m) => m[0] === 0x02 && challenges++);
        await new Promise<void>((r) => f.bind(0, '127.0.0.1', r));
        flooders.push(f);
        for (let k = 0; k < 3; k++) f.send(hello(), b.port, '127.0.0.1');
      }
      await until('challenges', () => challenges >= SOURCES * 3 * 0.9);
      // A PROOF with a cookie this daemon never issued is not even checked against a key.
      flooders[0]!.send(Buffer.concat([Buffer.from([0x03]), randomBytes(64), hello()]), b.port, '127.0.0.1');
      connectPair(a, b, { proto: 'udp' });
      await Promise.all([up(a, 'b'), up(b, 'a')]);
      await until('forged proof dropped', () => listener(b).strays >= 1);
      expect(listener(b)).toMatchObject({ busy: 0, authFailures: 0, unknownPeer: 0, handshakes: 1 });
    });
  });

  maybe('bad input', () => {
    test('garbage, a 10 MB length prefix, a truncated handshake and a silent connection are dropped and counted', async () => {
      const b = await daemon('b');
      const a = await daemon('a');

      const http = await rawTcp(b.port);
      http.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await http.gone;

      const huge = await rawTcp(b.port);
      const prefix = Buffer.alloc(4);
      prefix.writeUInt32BE(10 * 1024 * 1024);
      huge.write(Buffer.concat([prefix, randomBytes(4096)]));
      await huge.gone;

      const junk = await rawTcp(b.port);
      junk.write(withLength(Buffer.from('hello there')));
      await junk.gone;

      const hello = new DialerHandshake(randomBytes(32), { self: 'a', peer: 'b', proto: 'tcp', mode: 'encrypt' }).hello;
      const truncated = await rawTcp(b.port);
      truncated.end(withLength(hello).subarray(0, 20));
      await truncated.gone;

      const silent = await rawTcp(b.port);
      await silent.gone;

      await until('all counted', () => {
        const s = listener(b);
        return s.oversize >= 2 && s.malformed >= 1 && s.aborted >= 1 && s.timeouts >= 1 && s;
      });
      expect(listener(b).connections).toBe(5);

      // Still serving.
      connectPair(a, b, { proto: 'tcp' });
      await up(a, 'b');
    });

    test('silent connections from one address hold at most 16 handshakes: each newer one closes the oldest, said with where it came from; a dialer from there still gets through', async () => {
      const logged: string[] = [];
      const b = await daemon('b', { handshakeMs: 5000, log: (l) => logged.push(l) });
      const a = await daemon('a');
      const sockets = await Promise.all(Array.from({ length: 140 }, () => rawTcp(b.port)));
      await until('all but 16 closed', () => sockets.filter((s) => s.closed).length === 140 - 16);
      expect(sockets.slice(-16).every((s) => !s.closed)).toBe(true);
      expect(listener(b).busy).toBe(140 - 16);
      expect(logged.find((l) => l.includes('make room'))).toMatch(/^links: refused 127\.0\.0\.1:\d+: closed to make room for a newer connection: too many handshakes pending$/);
      connectPair(a, b, { proto: 'tcp' });
      await up(a, 'b');
      await until('the oldest silent one closed for the dialer', () => sockets.filter((s) => !s.closed).length === 15);
    });

    test('silent connections from many addresses filling every pending slot do not keep a dialer out: it takes the oldest silent one\'s place', async () => {
      const b = await daemon('b', { handshakeMs: 5000 });
      const a = await daemon('a');
      // Eight addresses, sixteen each: the whole pool of 128, none over its own bound.
      const sources = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);
      const sockets = await Promise.all(sources.flatMap((from) => Array.from({ length: 16 }, () => rawTcp(b.port, from))));
      await until('every one pending', () => listener(b).connections === 128);
      connectPair(a, b, { proto: 'tcp' });
      await up(a, 'b');
      await until('one silent one closed for the dialer', () => sockets.some((s) => s.closed));
      expect(listener(b).busy).toBe(1);
      expect(sockets.filter((s) => s.closed)).toHaveLength(1);
    });

    test('a UDP dial the kernel will not send is said as such when it gives up, not as a silent peer', async () => {
      const a = await daemon('a');
      // Broadcast without SO_BROADCAST: the kernel refuses every datagram (EACCES).
      a.add({ peer: 'b', proto: 'udp', mode: 'encrypt', dial: true, address: '255.255.255.255:9', key: randomBytes(32) });
      const s = await until('the dial to fail', () => (link(a, 'b')?.lastError ? link(a, 'b') : undefined));
      expect(s.lastError).toBe('unreachable: cannot send to 255.255.255.255:9: send EACCES 255.255.255.255:9');
    });

    test('a flood of malformed HELLOs does not keep the refusal of an unknown name out of the log', async () => {
      const logged: string[] = [];
      const b = await daemon('b', { log: (l) => logged.push(l) });
      const s = createSocket('udp4');
      cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
      const junk = Buffer.concat([Buffer.from([0x01, 0x01, 0x00]), randomBytes(60)]);
      for (let i = 0; i < 50; i++) s.send(junk, b.port, '127.0.0.1');
      await until('the junk counted', () => listener(b).malformed === 50);
      const stranger = await daemon('stranger');
      stranger.add({ peer: 'b', proto: 'udp', dial: true, address: `127.0.0.1:${b.port}`, key: randomBytes(32), mode: 'encrypt' });
      await until('the unknown name refused', () => listener(b).unknownPeer >= 1);
      expect(logged).toContainEqual(expect.stringMatching(/^links: refused 'stranger' \(udp, encrypt\) from 127\.0\.0\.1:\d+: no link to accept from that name here$/));
      expect(logged.filter((l) => l.endsWith('not a link handshake'))).toHaveLength(20);
    });

    test('garbage datagrams are ignored and counted', async () => {
      const b = await daemon('b');
      const a = await daemon('a');
      const s = createSocket('udp4');
      cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
      const garbage = [
        Buffer.from([0x10, 1, 2, 3]),
        Buffer.from([0xff]),
        Buffer.alloc(0),
        Buffer.concat([Buffer.from([0x03]), randomBytes(32)]),
        Buffer.concat([Buffer.from([0x01, 0x01, 0x00]), randomBytes(60)]),
        randomBytes(1400),
      ];
      for (const g of garbage) s.send(g, b.port, '127.0.0.1');
      // Every one, the empty datagram too, whichever side (C or JavaScript) reads the socket.
      await until('counted', () => listener(b).strays + listener(b).malformed >= garbage.length);
      expect(listener(b).strays + listener(b).malformed).toBe(garbage.length);
      connectPair(a, b, { proto: 'udp' });
      await up(a, 'b');
    });
  });

  maybe('resilience', () => {
    test('a TCP link cut in the middle is re-dialed and traffic resumes', async () => {
      const a = await daemon('a');
      const b = await daemon('b');
      const proxy = await tcpProxy(b.port);
      const atB = inbox(b);
      const downs: string[] = [];
      a.on('down', (peer, reason) => downs.push(`${peer}: ${reason}`));
      connectPair(a, b, { proto: 'tcp', address: `127.0.0.1:${proxy.port}` });
      await up(a, 'b');
      proxy.cut();
      await until('down', () => downs.length >= 1);
      await until('re-dialed', () => link(a, 'b')!.state === 'up' && link(a, 'b')!.reconnects >= 1);
      await until('b up again', () => link(b, 'a')!.state === 'up');
      expect(a.send('b', frameOf(64, 7))).toBe(true);
      await until('frame after re-dial', () => atB.length === 1);
    });

    test('a TCP record altered in transit is rejected; the link is re-established', async () => {
      const a = await daemon('a');
      const b = await daemon('b');
      const proxy = await tcpProxy(b.port);
      const atB = inbox(b);
      connectPair(a, b, { proto: 'tcp', mode: 'auth-only', address: `127.0.0.1:${proxy.port}` });
      await up(b, 'a');
      proxy.corruptNext = true;
      a.send('b', frameOf(100, 1));
      await until('rejected', () => link(b, 'a')!.rejected === 1);
      expect(link(b, 'a')!.lastError).toBe('record failed authentication');
      expect(atB).toHaveLength(0);
      await until('back up', () => link(a, 'b')!.state === 'up' && link(a, 'b')!.reconnects === 1);
    });

    test.each(['tcp', 'udp'] as const)('%s: restarting the accepting daemon on the same port brings the link back', async (proto) => {
      const a = await daemon('a');
      const b = await daemon('b');
      const key = randomBytes(32);
      connectPair(a, b, { proto, key });
      await up(a, 'b');
      const port = b.port;
      await b.close();
      await until('a sees b go', () => link(a, 'b')!.state !== 'up');
      const b2 = await daemon('b', { port });
      b2.add({ peer: 'a', proto, dial: false, key, mode: 'encrypt' });
      const atB2 = inbox(b2);
      await up(a, 'b');
      await up(b2, 'a');
      expect(link(a, 'b')!.reconnects).toBe(1);
      a.send('b', frameOf(64, 9));
      await until('frame to the new b', () => atB2.length === 1);
    });

    test('a UDP peer that falls silent is declared dead, and the link recovers when it returns', async () => {
      const a = await daemon('a');
      const b = await daemon('b');
      const relay = await udpRelay(b.port);
      const reasons: string[] = [];
      a.on('down', (_peer, reason) => reasons.push(reason));
      connectPair(a, b, { proto: 'udp', address: `127.0.0.1:${relay.port}` });
      await up(a, 'b');
      relay.blackhole = true;
      await until('dead peer', () => reasons.length >= 1);
      expect(reasons[0]).toMatch(/silent/);
      await until('b notices too', () => link(b, 'a')!.state === 'down');
      relay.blackhole = false;
      await up(a, 'b');
      await up(b, 'a');
    });

    test.each(['tcp', 'udp'] as const)('%s: remove() closes the link at both ends', async (proto) => {
      const a = await daemon('a');
      const b = await daemon('b');
      connectPair(a, b, { proto });
      await Promise.all([up(a, 'b'), up(b, 'a')]);
      const bDown = new Promise<string>((r) => b.once('down', (_peer, reason) => r(reason)));
      a.remove('b');
      expect(await bDown).toBe('peer closed the link');
      expect(link(a, 'b')).toBeUndefined();
      expect(a.send('b', frameOf(60, 0))).toBe(false);
      expect(link(b, 'a')!.state).toBe('down');
    });

    test('add() is idempotent, and a changed spec replaces the link', async () => {
      const a = await daemon('a');
      const b = await daemon('b');
      const key = randomBytes(32);
      connectPair(a, b, { proto: 'tcp', key });
      await up(a, 'b');
      let downs = 0;
      a.on('down', () => downs++);
      a.add({ peer: 'b', proto: 'tcp', dial: true, address: `127.0.0.1:${b.port}`, key: Buffer.from(key), mode: 'encrypt' });
      expect(link(a, 'b')!.state).toBe('up');
      expect(downs).toBe(0);
      b.add({ peer: 'a', proto: 'udp', dial: false, key, mode: 'auth-only' });
      a.add({ peer: 'b', proto: 'udp', dial: true, address: `127.0.0.1:${b.port}`, key, mode: 'auth-only' });
      expect(downs).toBe(1);
      const s = await up(a, 'b');
      expect(s).toMatchObject({ proto: 'udp', mode: 'auth-only', reconnects: 0 });
      const atB = inbox(b);
      a.send('b', frameOf(60, 3));
      await until('frame over the new link', () => atB.length === 1);
    });

    test('an invalid spec is refused at add()', async () => {
      const a = await daemon('a');
      const key = randomBytes(32);
      expect(() => a.add({ peer: 'b', proto: 'tcp', dial: true, key, mode: 'encrypt' })).toThrow(/address/);
      expect(() => a.add({ peer: 'b', proto: 'tcp', dial: false, key: key.subarray(0, 16), mode: 'encrypt' })).toThrow(/32 bytes/);
      expect(() => a.add({ peer: 'a', proto: 'tcp', dial: false, key, mode: 'encrypt' })).toThrow(/itself/);
      expect(() => a.add({ peer: '-x', proto: 'tcp', dial: false, key, mode: 'encrypt' })).toThrow(/name/);
      expect(a.stats()).toEqual([]);
    });
  });
});
