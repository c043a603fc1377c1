import { EventEmitter } from 'node:events';
import { chmod, lstat, rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { parseHostPort, type HostPort } from '../../src/wire/hostport.js';
import { MAX_FRAME, MIN_FRAME } from '../frame.js';
import { LengthPrefixReader } from '../links/framing.js';
import type { Interface } from './interface.js';
import { parseParams } from './params.js';

/** Frames queued to a VM that reads slower than we send; beyond this they are dropped, not buffered without end. */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

/**
 * QEMU's stream socket netdev: each frame is a 4-byte big-endian length, then
 * the frame. vnetd listens and the VM connects:
 *   -netdev stream,id=n0,server=off,addr.type=inet,addr.host=HOST,addr.port=PORT
 *   -netdev stream,id=n0,server=off,addr.type=unix,addr.path=PATH
 * (or the older `-netdev socket,id=n0,connect=HOST:PORT`). One VM at a time,
 * like QEMU's own listening side: a second connection is refused while the
 * first is up. A length QEMU would never send (0, under an Ethernet header,
 * over 64 KiB) means the stream is garbage: that connection is closed and
 * counted, the interface keeps listening.
 */
export class QemuStreamInterface extends EventEmitter implements Interface {
  readonly counters = { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, errors: 0 };
  private server: net.Server | undefined;
  private vm: net.Socket | undefined;

  constructor(
    readonly name: string,
    readonly spec: string,
    private readonly at: { tcp: HostPort } | { unix: string },
  ) {
    super();
  }

  /** Parses `listen=HOST:PORT` or `path=/abs/socket`. */
  static parse(name: string, params: string): QemuStreamInterface {
    const kv = parseParams('qemu-stream', params, ['listen', 'path']);
    const listen = kv.get('listen');
    const file = kv.get('path');
    const spec = `qemu-stream:${params}`;
    if ((listen === undefined) === (file === undefined)) throw new Error('qemu-stream needs exactly one of listen=HOST:PORT or path=/SOCKET');
    if (file !== undefined) {
      if (!path.isAbsolute(file)) throw new Error(`qemu-stream: path '${file}' must be absolute`);
      return new QemuStreamInterface(name, spec, { unix: file });
    }
    const hp = parseHostPort(listen!);
    if (!hp) throw new Error(`qemu-stream: listen '${listen}' is not HOST:PORT`);
    return new QemuStreamInterface(name, spec, { tcp: hp });
  }

  async open(): Promise<void> {
    if ('unix' in this.at) await removeStaleSocket(this.at.unix);
    const server = net.createServer((s) => this.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const done = () => (server.off('error', reject), resolve());
      if ('unix' in this.at) server.listen(this.at.unix, done);
      else server.listen(this.at.tcp.port, this.at.tcp.host, done);
    });
    server.on('error', () => this.counters.errors++);
    // Whoever can connect can put frames on this VM's port: owner only.
    if ('unix' in this.at) await chmod(this.at.unix, 0o600);
    this.server = server;
  }

  /** The TCP port actually bound (the spec may say 0 in tests). */
  get port(): number {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : 'tcp' in this.at ? this.at.tcp.port : 0;
  }

  /** Whether a VM is attached now. */
  get connected(): boolean {
    return this.vm !== undefined;
  }

  private accept(s: net.Socket): void {
    if (this.vm) {
      this.counters.errors++;
      s.destroy();
      return;
    }
    this.vm = s;
    s.setNoDelay?.(true);
    const reader = new LengthPrefixReader(MAX_FRAME);
    const garbage = () => {
      this.counters.errors++;
      reader.stopped = true;
      s.destroy();
    };
    s.on('data', (chunk: Buffer) => {
      const bad = reader.push(chunk, (frame) => {
        if (frame.length < MIN_FRAME) return garbage();
        this.counters.rxFrames++;
        this.counters.rxBytes += frame.length;
        this.emit('frame', frame);
      });
      if (bad) garbage();
    });
    s.on('error', () => this.counters.errors++);
    s.on('close', () => {
      if (this.vm === s) this.vm = undefined;
    });
  }

  send(frame: Uint8Array): boolean {
    const s = this.vm;
    if (!s || s.writableLength > MAX_QUEUED_BYTES) {
      if (s) this.counters.errors++;
      return false;
    }
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32BE(frame.length, 0);
    s.cork();
    s.write(head);
    s.write(frame);
    s.uncork();
    this.counters.txFrames++;
    this.counters.txBytes += frame.length;
    return true;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.vm?.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** A socket file left by a daemon that died goes; anything else at that path is the operator's and stays. */
async function removeStaleSocket(file: string): Promise<void> {
  const st = await lstat(file).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) throw new Error(`${file} exists and is not a socket; choose another path`);
  const live = await new Promise<boolean>((resolve) => {
    const c = net.connect(file);
    c.once('connect', () => (c.destroy(), resolve(true)));
    c.once('error', () => resolve(false));
  });
  if (live) throw new Error(`${file} is in use by another process`);
  await rm(file, { force: true });
}
