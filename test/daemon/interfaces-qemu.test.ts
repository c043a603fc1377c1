import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { interfaceFromSpec } from '../../daemon/interfaces/from-spec.js';
import { pcapBinding } from '../../daemon/interfaces/pcap.js';
import { QemuStreamInterface } from '../../daemon/interfaces/qemu-stream.js';
import { QemuUdpInterface } from '../../daemon/interfaces/qemu-udp.js';
import { freePort } from '../support/sshd.js';
import { collect, connect, prefixed, syntheticVm } from '../support/synthetic-vm.js';

const frame = (n: number, fill: number): Buffer => {
  const f = Buffer.alloc(n, fill);
  f.writeUInt16BE(0x88b5, 12);
  return f;
};

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const closed = (s: net.Socket) => new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r())));

let dir: string;
beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-ifaces-'))));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe.each([
  ['inet', async () => `listen=127.0.0.1:${await freePort()}`],
  ['unix', async () => `path=${path.join(dir, 'vm.sock')}`],
])('qemu-stream over %s', (_kind, params) => {
  let iface: QemuStreamInterface;
  let received: Buffer[];
  const target = () => (_kind === 'inet' ? iface.port : path.join(dir, 'vm.sock'));

  beforeEach(async () => {
    iface = QemuStreamInterface.parse('vm1', await params());
    received = [];
    iface.on('frame', (f: Buffer) => received.push(Buffer.from(f)));
    await iface.open();
  });
  afterEach(() => iface.close());

  test('frames both ways, whole, split across reads one byte at a time, and several per read', async () => {
    const vm = await connect(target());
    const fromVm = collect(vm);
    await until('the VM attached', () => iface.connected);
    const a = frame(60, 1);
    const b = frame(1514, 2);
    const c = frame(9000, 3);
    vm.write(prefixed(a));
    for (const byte of prefixed(b)) vm.write(Buffer.from([byte]));
    vm.write(Buffer.concat([prefixed(c), prefixed(a)]));
    await until('four frames in', () => received.length === 4);
    expect(received.map((f) => f.length)).toEqual([60, 1514, 9000, 60]);
    expect(received[1]!.equals(b)).toBe(true);
    expect(received[2]!.equals(c)).toBe(true);

    expect(iface.send(b)).toBe(true);
    expect(iface.send(a)).toBe(true);
    await until('two frames out', () => fromVm.length === 2);
    expect(fromVm[0]!.equals(b)).toBe(true);
    expect(fromVm[1]!.equals(a)).toBe(true);
    expect(iface.counters).toMatchObject({ rxFrames: 4, rxBytes: 60 + 1514 + 9000 + 60, txFrames: 2, txBytes: 1514 + 60, errors: 0 });
    vm.destroy();
  });

  test.each([
    ['a zero length', Buffer.from([0, 0, 0, 0])],
    ['a length under an Ethernet header', prefixed(Buffer.alloc(13))],
    ['a length over 64 KiB', Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 2, 3])],
    ['HTTP instead of frames', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
  ])('%s closes that connection, counted; the next VM attaches', async (_what, bytes) => {
    const vm = await connect(target());
    await until('the VM attached', () => iface.connected);
    vm.write(bytes);
    await closed(vm);
    expect(iface.counters.errors).toBe(1);
    expect(received).toEqual([]);
    await until('the VM detached', () => !iface.connected);

    const again = await connect(target());
    const fromVm = collect(again);
    await until('the next VM attached', () => iface.connected);
    again.write(prefixed(frame(64, 9)));
    await until('its frame', () => received.length === 1);
    iface.send(frame(64, 8));
    await until('our frame at the VM', () => fromVm.length === 1);
    again.destroy();
  });

  test('one VM at a time: a second connection is refused, counted and said, the first goes on', async () => {
    const notes: string[] = [];
    iface.on('note', (l: string) => notes.push(l));
    const first = await connect(target());
    const fromFirst = collect(first);
    await until('the VM attached', () => iface.connected);
    const second = await connect(target());
    await closed(second);
    expect(iface.counters.errors).toBe(1);
    expect(notes.filter((l) => l.startsWith('refused a second connection'))).toEqual([expect.stringMatching(/a VM is attached already/)]);
    first.write(prefixed(frame(64, 5)));
    await until('the first VM still heard', () => received.length === 1);
    iface.send(frame(64, 6));
    await until('the first VM still served', () => fromFirst.length === 1);
    first.destroy();
  });

  test('a peer that connects and hangs up over and over is held to 20 log lines each 10 s, not two a connection', async () => {
    const notes: string[] = [];
    iface.on('note', (l: string) => notes.push(l));
    for (let i = 0; i < 30; i++) {
      const vm = await connect(target());
      await until('the VM attached', () => iface.connected);
      vm.destroy();
      await until('the VM detached', () => !iface.connected);
    }
    // 60 unlimited; at most 20, a summary and 20 more should a slow machine cross into a second window.
    expect(notes.length).toBeGreaterThanOrEqual(20);
    expect(notes.length).toBeLessThanOrEqual(41);
  });

  test('with no VM attached, frames towards it are refused, not queued', () => {
    expect(iface.connected).toBe(false);
    expect(iface.send(frame(64, 1))).toBe(false);
    expect(iface.counters.txFrames).toBe(0);
  });
});

/** QEMU's listening side (`server=on`), played by a plain server: hands over each connection vnetd makes. */
class FakeQemu {
  readonly conns: net.Socket[] = [];
  private server: net.Server | undefined;
  constructor(readonly at: string | number) {}
  async listen(): Promise<void> {
    const server = net.createServer((s) => this.conns.push(s));
    await new Promise<void>((r) => (typeof this.at === 'number' ? server.listen(this.at, '127.0.0.1', () => r()) : server.listen(this.at, () => r())));
    this.server = server;
  }
  /** Stops listening and drops every connection, as a QEMU that exits. */
  async exit(): Promise<void> {
    for (const c of this.conns) c.destroy();
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}

describe.each([
  ['inet', async () => {
    const port = await freePort();
    return { qemu: new FakeQemu(port), params: `connect=127.0.0.1:${port}`, where: `127.0.0.1:${port}` };
  }],
  ['unix', async () => {
    const file = path.join(dir, 'qemu.sock');
    return { qemu: new FakeQemu(file), params: `connect-path=${file}`, where: file };
  }],
])('qemu-stream dialling a listening QEMU over %s', (_kind, setup) => {
  let iface: QemuStreamInterface;
  let qemu: FakeQemu;
  let where: string;
  let received: Buffer[];
  let notes: string[];

  beforeEach(async () => {
    let params: string;
    ({ qemu, params, where } = await setup());
    iface = QemuStreamInterface.parse('vm1', params);
    received = [];
    notes = [];
    iface.on('frame', (f: Buffer) => received.push(Buffer.from(f)));
    iface.on('note', (n: string) => notes.push(n));
  });
  afterEach(async () => {
    await iface.close();
    await qemu.exit();
  });

  test('connects, carries frames both ways, and counts them like the listening side', async () => {
    await qemu.listen();
    await iface.open();
    await until('vnetd to connect', () => qemu.conns.length === 1 && iface.connected);
    const vm = qemu.conns[0]!;
    const fromVnetd = collect(vm);
    vm.write(Buffer.concat([prefixed(frame(60, 1)), prefixed(frame(1514, 2))]));
    await until('two frames in', () => received.length === 2);
    expect(received[1]!.equals(frame(1514, 2))).toBe(true);
    expect(iface.send(frame(9000, 3))).toBe(true);
    await until('a frame out', () => fromVnetd.length === 1);
    expect(fromVnetd[0]!.equals(frame(9000, 3))).toBe(true);
    expect(iface.counters).toEqual({ rxFrames: 2, rxBytes: 60 + 1514, txFrames: 1, txBytes: 9000, errors: 0 });
    expect(notes).toEqual([`connected to QEMU at ${where}`]);
  });

  test('waits for a QEMU that is not there yet, saying so once, and reconnects after it exits and comes back', async () => {
    await iface.open();
    await until('the outage noted', () => notes.length === 1);
    expect(notes[0]).toBe(`QEMU is not listening at ${where} (nothing listens there); retrying until it is (start QEMU with server=on, or socket,listen=)`);
    expect(iface.send(frame(64, 1))).toBe(false);
    await qemu.listen();
    await until('vnetd to connect', () => iface.connected);

    await qemu.exit();
    await until('vnetd to see QEMU gone', () => !iface.connected);
    await qemu.listen();
    await until('vnetd to reconnect', () => iface.connected && qemu.conns.length === 2);
    const fromVnetd = collect(qemu.conns[1]!);
    iface.send(frame(64, 2));
    await until('a frame to the new QEMU', () => fromVnetd.length === 1);
    expect(notes).toEqual([
      notes[0],
      `connected to QEMU at ${where}`,
      `QEMU closed the connection; reconnecting to ${where}`,
      `connected to QEMU at ${where}`,
    ]);
    expect(iface.counters.errors).toBe(0);
  });

  test('garbage from QEMU closes that connection, counted, and vnetd dials again', async () => {
    await qemu.listen();
    await iface.open();
    await until('vnetd to connect', () => iface.connected);
    qemu.conns[0]!.write(Buffer.from([0, 0, 0, 0]));
    await until('vnetd to dial again', () => qemu.conns.length === 2);
    expect(iface.counters.errors).toBe(1);
    expect(notes[1]).toBe(`QEMU sent a length of 0, not a frame: closed the connection; reconnecting to ${where}`);
    await until('the new connection', () => iface.connected);
    qemu.conns[1]!.write(prefixed(frame(64, 7)));
    await until('its frame', () => received.length === 1);
  });

  test('close() stops dialling', async () => {
    await iface.open();
    await until('the first attempt failed', () => notes.length === 1);
    await iface.close();
    await qemu.listen();
    // Longer than the next two retries would have taken.
    await new Promise((r) => setTimeout(r, 1000));
    expect(qemu.conns).toEqual([]);
  });
});

describe('qemu-stream on a Unix socket path', () => {
  test('is owner-only, replaces a stale socket file, and refuses a live one or a regular file', async () => {
    // A socket file with nobody behind it, as a SIGKILLed daemon leaves one
    // (a clean close() unlinks the path, so keep a second name for it).
    const file = path.join(dir, 'live.sock');
    const copy = path.join(dir, 'dead.sock');
    const dead = net.createServer();
    await new Promise<void>((r) => dead.listen(file, () => r()));
    fs.linkSync(file, copy);
    await new Promise<void>((r) => dead.close(() => r()));
    expect(fs.lstatSync(copy).isSocket()).toBe(true);

    const iface = QemuStreamInterface.parse('vm1', `path=${copy}`);
    await iface.open();
    expect(fs.statSync(copy).mode & 0o777).toBe(0o600);
    const twin = QemuStreamInterface.parse('vm2', `path=${copy}`);
    await expect(twin.open()).rejects.toThrow(`${copy} is in use by another process`);
    await iface.close();

    const regular = path.join(dir, 'regular');
    fs.writeFileSync(regular, 'keep me');
    await expect(QemuStreamInterface.parse('vm3', `path=${regular}`).open()).rejects.toThrow('exists and is not a socket');
    expect(fs.readFileSync(regular, 'utf8')).toBe('keep me');
  });
});

describe('qemu-stream: who can attach', () => {
  test('a socket path is owner-only from the moment it exists, whatever the umask', async () => {
    const sock = path.join(dir, 'umask.sock');
    const iface = QemuStreamInterface.parse('vm1', `path=${sock}`);
    // Watch the bind itself: a chmod after it would leave the socket 0777 for a moment under umask 000.
    let atBind: number | undefined;
    const watcher = fs.watch(dir, () => {
      if (atBind === undefined && fs.existsSync(sock)) atBind = fs.statSync(sock).mode & 0o777;
    });
    const mask = process.umask(0);
    try {
      await iface.open();
    } finally {
      process.umask(mask);
      watcher.close();
    }
    try {
      expect(fs.statSync(sock).mode & 0o777).toBe(0o600);
      if (atBind !== undefined) expect(atBind).toBe(0o600);
    } finally {
      await iface.close();
    }
  });

  test.each([
    ['0.0.0.0', true],
    ['127.0.0.1', false],
    ['[::1]', false],
  ])('listening on %s: a warning that anyone who reaches it can be the VM, %s', async (host, warned) => {
    // Bound for a moment and closed, with nothing sent: only the warning is looked at.
    const iface = QemuStreamInterface.parse('vm1', `listen=${host}:${await freePort()}`);
    const notes: string[] = [];
    iface.on('note', (n: string) => notes.push(n));
    await iface.open();
    await iface.close();
    expect(notes.some((n) => n.includes("which is not a loopback address: QEMU's stream has no authentication"))).toBe(warned);
  });
});

const nativeBuilt = typeof pcapBinding() !== 'string';
if (!nativeBuilt) process.stderr.write('interfaces-qemu.test: the native addon (vnetd-pcap) is not built; qemu-udp is tested on Node\'s socket only\n');

describe.each(nativeBuilt ? [['the addon\'s', true], ['Node\'s', false]] as const : [['Node\'s', false]] as const)('qemu-udp on %s socket', (_which, native) => {
  const open = async (listen: string, peer: string) => opened(QemuUdpInterface.parse('vm1', `listen=${listen},peer=${peer}`, { native }));
  const opened = async (iface: QemuUdpInterface): Promise<{ iface: QemuUdpInterface; received: Buffer[] }> => {
    const received: Buffer[] = [];
    iface.on('frame', (f: Buffer) => received.push(Buffer.from(f)));
    await iface.open();
    return { iface, received };
  };

  test.each([
    ['IPv4', '127.0.0.1', '127.0.0.1'],
    ['IPv6', '[::1]', '::1'],
  ])('frames both ways over %s, each datagram one frame, counted', async (_family, bracketed, host) => {
    const vm = await syntheticVm(host);
    const port = await freePort();
    const { iface, received } = await open(`${bracketed}:${port}`, `${bracketed}:${vm.port}`);
    try {
      const sizes = [60, 1514, 9000, 65000];
      for (const [i, n] of sizes.entries()) vm.sock.send(frame(n, i + 1), port, host);
      await until('four frames in', () => received.length === 4);
      expect(received.map((f) => f.length)).toEqual(sizes);
      expect(received.map((f) => f[20])).toEqual([1, 2, 3, 4]);
      expect(iface.send(frame(1514, 7))).toBe(true);
      expect(iface.send(frame(64, 8))).toBe(true);
      await until('two frames at the VM', () => vm.got.length === 2);
      expect(vm.got.map((f) => [f.length, f[20]])).toEqual([[1514, 7], [64, 8]]);
      expect(iface.counters).toEqual({ rxFrames: 4, rxBytes: 60 + 1514 + 9000 + 65000, txFrames: 2, txBytes: 1514 + 64, errors: 0 });
    } finally {
      await iface.close();
      vm.sock.close();
    }
  });

  test('datagrams from anyone but the peer, and runts from the peer, are counted and dropped', async () => {
    const vm = await syntheticVm();
    const other = await syntheticVm();
    const elsewhere = await syntheticVm('127.0.0.2');
    const port = await freePort();
    const { iface, received } = await open(`127.0.0.1:${port}`, `127.0.0.1:${vm.port}`);
    try {
      other.sock.send(frame(100, 1), port, '127.0.0.1');
      // The peer's port, but another address: only the VM's QEMU may inject.
      elsewhere.sock.send(frame(100, 2), port, '127.0.0.1');
      vm.sock.send(Buffer.alloc(13), port, '127.0.0.1');
      vm.sock.send(frame(100, 4), port, '127.0.0.1');
      await until('the good frame', () => received.length === 1);
      await until('three errors', () => iface.counters.errors === 3);
      expect(received[0]![20]).toBe(4);
      expect(iface.counters).toMatchObject({ rxFrames: 1, rxBytes: 100, errors: 3 });
    } finally {
      await iface.close();
      for (const s of [vm, other, elsewhere]) s.sock.close();
    }
  });

  test('a port in use, or a peer that does not resolve, is refused with the interface and address named', async () => {
    const taken = await syntheticVm();
    await expect(open(`127.0.0.1:${taken.port}`, '127.0.0.1:9')).rejects.toThrow(
      `interface vm1 (qemu-udp listen=127.0.0.1:${taken.port}): the address is in use (another daemon or VM on this port?)`,
    );
    taken.sock.close();
    const port = await freePort();
    await expect(open(`127.0.0.1:${port}`, 'no-such-host.invalid:9')).rejects.toThrow(
      `interface vm1 (qemu-udp listen=127.0.0.1:${port}): cannot resolve peer host 'no-such-host.invalid' to an IPv4 address`,
    );
  });

  test('asked for any port (as the patterns bed asks), it says which it got, and frames arrive there', async () => {
    const vm = await syntheticVm();
    const { iface, received } = await opened(new QemuUdpInterface('vm1', 'qemu-udp:bed', { host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: vm.port }, native));
    try {
      expect(iface.port).toBeGreaterThan(0);
      vm.sock.send(frame(60, 1), iface.port, '127.0.0.1');
      await until('the frame', () => received.length === 1);
    } finally {
      await iface.close();
      vm.sock.close();
    }
  });

  test('closed from its own frame handler, it closes once, and the port is free again', async () => {
    const vm = await syntheticVm();
    const port = await freePort();
    const { iface, received } = await open(`127.0.0.1:${port}`, `127.0.0.1:${vm.port}`);
    let closing: Promise<void> | undefined;
    iface.on('frame', () => (closing ??= iface.close()));
    for (let n = 1; n <= 5; n++) vm.sock.send(frame(100, n), port, '127.0.0.1');
    await until('a frame', () => received.length > 0);
    await closing;
    expect(iface.send(frame(64, 1))).toBe(false);
    // What it did: the socket was closed, and only once (twice would close a descriptor since reused, or crash).
    await new Promise((r) => setTimeout(r, 50));
    const again = await open(`127.0.0.1:${port}`, `127.0.0.1:${vm.port}`);
    vm.sock.send(frame(100, 9), port, '127.0.0.1');
    await until('a frame on the new socket', () => again.received.length === 1);
    await again.iface.close();
    vm.sock.close();
  });

  test('after close nothing is sent, and the port is free again at once', async () => {
    const vm = await syntheticVm();
    const port = await freePort();
    const first = await open(`127.0.0.1:${port}`, `127.0.0.1:${vm.port}`);
    await first.iface.close();
    expect(first.iface.send(frame(64, 1))).toBe(false);
    const again = await open(`127.0.0.1:${port}`, `127.0.0.1:${vm.port}`);
    await again.iface.close();
    vm.sock.close();
  });
});

describe('--iface specs', () => {
  const either = 'listen=HOST:PORT or path=/SOCKET (QEMU connects to vnetd), connect=HOST:PORT or connect-path=/SOCKET (vnetd connects to QEMU)';
  test.each([
    ['vm0=qemu-stream:', `qemu-stream: give one: ${either}`],
    ['vm0=qemu-stream:listen=127.0.0.1:1,path=/x', `qemu-stream: give only one, not listen and path: ${either}`],
    ['vm0=qemu-stream:listen=127.0.0.1:1,connect=127.0.0.1:2', 'give only one, not listen and connect'],
    ['vm0=qemu-stream:path=/x,connect-path=/y', 'give only one, not path and connect-path'],
    ['vm0=qemu-stream:path=rel.sock', "qemu-stream: path 'rel.sock' must be an absolute path (for example path=/run/vnetd/vm0.sock)"],
    ['vm0=qemu-stream:connect-path=run/vm0.sock', "qemu-stream: connect-path 'run/vm0.sock' must be an absolute path (for example connect-path=/run/vnetd/vm0.sock)"],
    ['vm0=qemu-stream:listen=nowhere', "qemu-stream: listen 'nowhere' is not HOST:PORT with a port 1-65535 (for example listen=127.0.0.1:7001, or [::1]:7001)"],
    ['vm0=qemu-stream:connect=nowhere', "qemu-stream: connect 'nowhere' is not HOST:PORT with a port 1-65535 (for example connect=127.0.0.1:7001, or [::1]:7001)"],
    ['vm0=qemu-stream:connect=127.0.0.1:0', "connect '127.0.0.1:0' is not HOST:PORT"],
    ['vm0=qemu-stream:connect=127.0.0.1:70000', "connect '127.0.0.1:70000' is not HOST:PORT"],
    ['vm0=qemu-stream:connect=::1:7001', "connect '::1:7001' is not HOST:PORT"],
    ['vm0=qemu-stream:connect=', "connect '' is not HOST:PORT"],
    ['vm0=qemu-stream:connect=127.0.0.1:1,connect=127.0.0.1:2', "qemu-stream: 'connect' is given twice"],
    ['vm0=qemu-stream:lisen=127.0.0.1:1', "qemu-stream has no parameter 'lisen' (known: listen, path, connect, connect-path)"],
    ['vm0=qemu-udp:listen=127.0.0.1:1', 'qemu-udp needs peer=HOST:PORT'],
    ['vm0=qemu-udp:listen', "qemu-udp: 'listen' is not KEY=VALUE"],
    ['vm0=tap:tap0', "unknown interface kind 'tap'"],
  ])('%s → %s', (spec, message) => {
    expect(() => interfaceFromSpec(spec)).toThrow(message);
  });

  test.each([
    ['vm0=qemu-stream:connect=127.0.0.1:7001'],
    ['vm0=qemu-stream:connect=[::1]:7001'],
    ['vm0=qemu-stream:connect=qemu-host.example:7001'],
    ['vm0=qemu-stream:connect-path=/run/vnetd/vm0.sock'],
  ])('%s is a dialling stream interface', (spec) => {
    const i = interfaceFromSpec(spec) as QemuStreamInterface;
    expect(i).toBeInstanceOf(QemuStreamInterface);
    expect(i.connected).toBe(false);
  });

  test('a good one names the interface and keeps its spec for DEVICES?', () => {
    const i = interfaceFromSpec('vm7=qemu-stream:path=/run/vnetd/vm7.sock');
    expect(i.name).toBe('vm7');
    expect(i.spec).toBe('qemu-stream:path=/run/vnetd/vm7.sock');
  });
});
