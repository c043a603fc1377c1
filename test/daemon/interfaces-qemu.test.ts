import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { interfaceFromSpec } from '../../daemon/interfaces/from-spec.js';
import { QemuStreamInterface } from '../../daemon/interfaces/qemu-stream.js';
import { freePort } from '../support/sshd.js';

/** QEMU's stream netdev, played by a plain socket: 4-byte big-endian length, then the frame. */

const frame = (n: number, fill: number): Buffer => {
  const f = Buffer.alloc(n, fill);
  f.writeUInt16BE(0x88b5, 12);
  return f;
};
const prefixed = (f: Buffer): Buffer => {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(f.length);
  return Buffer.concat([h, f]);
};

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function connect(to: string | number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = typeof to === 'number' ? net.connect(to, '127.0.0.1') : net.connect(to);
    s.once('error', reject);
    s.once('connect', () => resolve(s));
  });
}

/** Everything the "VM" receives, split back into frames. */
function collect(s: net.Socket): Buffer[] {
  const got: Buffer[] = [];
  let buf = Buffer.alloc(0);
  s.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      const n = buf.readUInt32BE(0);
      got.push(buf.subarray(4, 4 + n));
      buf = buf.subarray(4 + n);
    }
  });
  return got;
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

  test('one VM at a time: a second connection is refused and counted, the first goes on', async () => {
    const first = await connect(target());
    const fromFirst = collect(first);
    await until('the VM attached', () => iface.connected);
    const second = await connect(target());
    await closed(second);
    expect(iface.counters.errors).toBe(1);
    first.write(prefixed(frame(64, 5)));
    await until('the first VM still heard', () => received.length === 1);
    iface.send(frame(64, 6));
    await until('the first VM still served', () => fromFirst.length === 1);
    first.destroy();
  });

  test('with no VM attached, frames towards it are refused, not queued', () => {
    expect(iface.connected).toBe(false);
    expect(iface.send(frame(64, 1))).toBe(false);
    expect(iface.counters.txFrames).toBe(0);
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

describe('--iface specs', () => {
  test.each([
    ['vm0=qemu-stream:', 'qemu-stream needs exactly one of listen=HOST:PORT or path=/SOCKET'],
    ['vm0=qemu-stream:listen=127.0.0.1:1,path=/x', 'exactly one of'],
    ['vm0=qemu-stream:path=rel.sock', "path 'rel.sock' must be absolute"],
    ['vm0=qemu-stream:listen=nowhere', "listen 'nowhere' is not HOST:PORT"],
    ['vm0=qemu-stream:lisen=127.0.0.1:1', "qemu-stream has no parameter 'lisen' (known: listen, path)"],
    ['vm0=qemu-udp:listen=127.0.0.1:1', 'qemu-udp needs peer=HOST:PORT'],
    ['vm0=qemu-udp:listen', "qemu-udp: 'listen' is not KEY=VALUE"],
    ['vm0=tap:tap0', "unknown interface kind 'tap'"],
  ])('%s → %s', (spec, message) => {
    expect(() => interfaceFromSpec(spec)).toThrow(message);
  });

  test('a good one names the interface and keeps its spec for DEVICES?', () => {
    const i = interfaceFromSpec('vm7=qemu-stream:path=/run/vnetd/vm7.sock');
    expect(i.name).toBe('vm7');
    expect(i.spec).toBe('qemu-stream:path=/run/vnetd/vm7.sock');
  });
});
