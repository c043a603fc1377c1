import { EventEmitter } from 'node:events';
import { lstat, rm } from 'node:fs/promises';
import { answers, connectUnix, listenOwnerOnly, tooLong } from '../../src/util/unix-socket.js';
import net from 'node:net';
import path from 'node:path';
import { formatHostPort, parseHostPort, type HostPort } from '../../src/wire/hostport.js';
import { MAX_FRAME, MIN_FRAME } from '../../src/model/frame.js';
import { LogLimiter } from '../log-limiter.js';
import { backoffDelay, DEFAULT_BACKOFF } from '../links/backoff.js';
import { LengthPrefixReader, withLength } from '../links/framing.js';
import { handOverSocket } from '../links/handover.js';
import type { BackoffOptions, TcpFastPath, TcpTakeover } from '../links/types.js';
import { openError, type Interface } from './interface.js';
import { parseParams } from './params.js';

/**
 * Bytes queued to a VM that reads slower than we send; beyond this frames
 * are dropped, not buffered without end. The fast path's limit for a
 * connection it holds is the same (fastpath.c's TCP_TX_LIMIT).
 */
const MAX_QUEUED_BYTES = 1 << 20;

/**
 * Re-dialling a QEMU that went away: the links' backoff, capped lower. QEMU
 * is local and a connection attempt costs next to nothing, while a VM cut off
 * for the links' 30 s ceiling after its QEMU restarts would be felt.
 */
const DIAL_BACKOFF: BackoffOptions = { ...DEFAULT_BACKOFF, maxMs: 5000 };
/** A connection that held this long earns a fresh backoff; one closed at once (garbage) keeps backing off. */
const HELD_MS = 2000;
const DIAL_TIMEOUT_MS = 10_000;
/**
 * Idle time before TCP keepalive probes a VM's connection. libuv then probes
 * every second, ten times, so a QEMU whose machine vanished without a word
 * (power lost, cable cut) frees the interface within about 15 s instead of
 * holding it, and refusing the VM's next connection, for ever.
 */
const KEEPALIVE_IDLE_MS = 5000;

const KEYS = ['listen', 'path', 'connect', 'connect-path'] as const;

/** Where the stream is, and which side listens. */
type Endpoint = { tcp: HostPort } | { unix: string };

/**
 * QEMU's stream socket netdev: each frame is a 4-byte big-endian length, then
 * the frame. Either side may listen.
 *
 * vnetd listens (`listen=`, `path=`) and the VM connects:
 *   -netdev stream,id=n0,server=off,addr.type=inet,addr.host=HOST,addr.port=PORT
 *   -netdev stream,id=n0,server=off,addr.type=unix,addr.path=PATH
 *   -netdev socket,id=n0,connect=HOST:PORT
 * One VM at a time, like QEMU's own listening side: a second connection is
 * refused while the first is up (keepalive ends one whose peer vanished).
 *
 * QEMU listens (`connect=`, `connect-path=`) and vnetd dials:
 *   -netdev stream,id=n0,server=on,addr.type=inet,addr.host=HOST,addr.port=PORT
 *   -netdev stream,id=n0,server=on,addr.type=unix,addr.path=PATH
 *   -netdev socket,id=n0,listen=HOST:PORT
 * vnetd retries with backoff until QEMU is there and whenever it goes away,
 * which is what QEMU 7.2's own dialling side cannot do.
 *
 * Either way, a length QEMU would never send (0, under an Ethernet header,
 * over 64 KiB) means the stream is garbage: that connection is closed and
 * counted, and the interface waits for (or dials) the next.
 *
 * With the fast path, each connection is handed over to it once up
 * (`offerConnections`): C reads and writes it from then on, and only the
 * frames of flows it has not cached come here (`frameFromVm`).
 */
export class QemuStreamInterface extends EventEmitter implements Interface {
  readonly counters = { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, errors: 0 };
  private server: net.Server | undefined;
  private vm: net.Socket | undefined;
  /** The VM's connection as the fast path takes it over; `fast` once it has. */
  private conn: TcpTakeover | undefined;
  private fast: TcpFastPath | null = null;
  private offerTo: ((conn: TcpTakeover | null) => void) | undefined;
  private closing = false;
  // Dialling only.
  private dialing: net.Socket | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private attempts = 0;
  /** Set once a failed dial was logged, cleared when connected: one line per outage, not one per retry. */
  private outageLogged = false;
  /** Anyone who can reach the socket can connect and hang up over and over: what each connection logs is limited. */
  private readonly notes = new LogLimiter((l) => this.emit('note', l), (n) => `${n} more connection note(s) suppressed`);

  constructor(
    readonly name: string,
    readonly spec: string,
    private readonly at: Endpoint,
    private readonly dial: boolean,
  ) {
    super();
  }

  /** Parses `listen=HOST:PORT`, `path=/abs/socket`, `connect=HOST:PORT` or `connect-path=/abs/socket`. */
  static parse(name: string, params: string): QemuStreamInterface {
    const kv = parseParams('qemu-stream', params, KEYS);
    const given = KEYS.filter((k) => kv.has(k));
    if (given.length !== 1) {
      const which = given.length ? `give only one, not ${given.join(' and ')}` : 'give one';
      throw new Error(`qemu-stream: ${which}: listen=HOST:PORT or path=/SOCKET (QEMU connects to vnetd), connect=HOST:PORT or connect-path=/SOCKET (vnetd connects to QEMU)`);
    }
    const key = given[0]!;
    const value = kv.get(key)!;
    const dial = key.startsWith('connect');
    const spec = `qemu-stream:${params}`;
    if (key === 'path' || key === 'connect-path') {
      if (!path.isAbsolute(value)) throw new Error(`qemu-stream: ${key} '${value}' must be an absolute path (for example ${key}=/run/vnetd/${name}.sock)`);
      const long = tooLong(value);
      if (long) throw new Error(`qemu-stream: ${key}: ${long.message}`);
      return new QemuStreamInterface(name, spec, { unix: value }, dial);
    }
    const hp = parseHostPort(value);
    if (!hp) throw new Error(`qemu-stream: ${key} '${value}' is not HOST:PORT with a port 1-65535 (for example ${key}=127.0.0.1:7001, or [::1]:7001)`);
    return new QemuStreamInterface(name, spec, { tcp: hp }, dial);
  }

  async open(): Promise<void> {
    if (this.dial) return this.connect();
    if ('unix' in this.at) await removeStaleSocket(this.at.unix);
    const server = net.createServer((s) => this.accept(s));
    await new Promise<void>((resolve, reject) => {
      const failed = (e: Error) => reject(openError(`interface ${this.name} (qemu-stream listen=${this.where})`, e));
      server.once('error', failed);
      const done = () => (server.off('error', failed), resolve());
      // Whoever can connect can put frames on this VM's port: owner only.
      if ('unix' in this.at) listenOwnerOnly(server, this.at.unix, done);
      else server.listen(this.at.tcp.port, this.at.tcp.host, done);
    });
    server.on('error', () => this.counters.errors++);
    if ('tcp' in this.at && !isLoopback(this.at.tcp.host)) {
      this.emit('note', `listening on ${this.where}, which is not a loopback address: QEMU's stream has no authentication, so anyone who reaches it first can be this VM or hold its port; prefer 127.0.0.1 or path=`);
    }
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

  private get where(): string {
    return 'unix' in this.at ? this.at.unix : formatHostPort(this.at.tcp);
  }

  private accept(s: net.Socket): void {
    const from = s.remoteAddress ? `from ${formatHostPort({ host: s.remoteAddress, port: s.remotePort! })}` : `on ${this.where}`;
    if (this.vm) {
      this.counters.errors++;
      this.notes.line(`refused a second connection ${from}: a VM is attached already (one QEMU NIC per interface)`);
      s.destroy();
      return;
    }
    this.attach(s, `QEMU connected ${from}`);
  }

  /** One dial attempt; a failure schedules the next. */
  private connect(): void {
    if (this.closing) return;
    const s = 'unix' in this.at ? connectUnix(this.at.unix) : net.connect(this.at.tcp.port, this.at.tcp.host);
    this.dialing = s;
    const failed = (e: NodeJS.ErrnoException) => {
      this.dialing = undefined;
      s.destroy();
      if (this.closing) return;
      if (!this.outageLogged) {
        this.outageLogged = true;
        const why = e.code === 'ECONNREFUSED' || e.code === 'ENOENT' ? 'nothing listens there' : e.code === 'ENOTFOUND' ? 'no such host' : e.message;
        this.emit('note', `QEMU is not listening at ${this.where} (${why}); retrying until it is (start QEMU with server=on, or socket,listen=)`);
      }
      this.retry();
    };
    s.once('error', failed);
    // A host that drops the SYN would hold each attempt for the kernel's two minutes.
    s.setTimeout(DIAL_TIMEOUT_MS, () => s.destroy(Object.assign(new Error(`no answer within ${DIAL_TIMEOUT_MS / 1000} s`), { code: 'ETIMEDOUT' })));
    s.once('connect', () => {
      s.setTimeout(0);
      s.off('error', failed);
      this.dialing = undefined;
      this.outageLogged = false;
      this.attach(s, `connected to QEMU at ${this.where}`);
    });
  }

  private retry(): void {
    if (this.closing || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, backoffDelay(this.attempts++, DIAL_BACKOFF)).unref();
  }

  /** The VM's connection, whichever side opened it: frames in, garbage out, and what follows when it ends. */
  private attach(s: net.Socket, hello: string): void {
    this.vm = s;
    const since = performance.now();
    // Both are no-ops on a Unix socket, whose peer cannot vanish without the kernel knowing.
    s.setNoDelay(true);
    s.setKeepAlive(true, KEEPALIVE_IDLE_MS);
    this.notes.line(hello);
    let why = 'QEMU closed the connection';
    const reader = new LengthPrefixReader(MAX_FRAME);
    const garbage = (what: string) => {
      this.counters.errors++;
      why = `QEMU sent ${what}, not a frame: closed the connection`;
      reader.stopped = true;
      s.destroy();
    };
    const deliver = (frame: Buffer) => (frame.length < MIN_FRAME ? garbage(`a length of ${frame.length}`) : this.frameFromVm(frame));
    s.on('data', (chunk: Buffer) => {
      const bad = reader.push(chunk, deliver);
      if (bad) garbage(bad === 'empty' ? 'a length of 0' : `a length over ${MAX_FRAME}`);
    });
    // A reset is QEMU going away, said in the log line below; `errors` counts what vnetd refused or dropped.
    s.on('error', (e) => (why = `the connection failed: ${e.message}`));
    let offered: TcpFastPath | null = null;
    const conn: TcpTakeover = {
      handOver: (to) => {
        offered = to;
        const taken = () => {
          offered = null;
          this.fast = to;
        };
        handOverSocket(s, reader, deliver, () => this.conn === conn && offered === to, (fd, pending) => to.attach(fd, pending), taken);
      },
      // C read the connection: what it found ends it as the same thing read here would.
      failed: (reason, isGarbage) => {
        if (isGarbage) return garbage(reason);
        if (reason !== 'closed') why = `the connection failed: ${reason}`;
        s.destroy();
      },
      reclaim: () => {
        offered = null;
        const fast = this.fast;
        this.fast = null;
        const unsent = fast?.release();
        if (unsent?.length && !s.destroyed) s.write(unsent);
      },
    };
    this.conn = conn;
    this.offerTo?.(conn);
    s.on('close', () => {
      if (this.vm === s) this.vm = undefined;
      if (this.conn === conn) {
        this.conn = undefined;
        this.offerTo?.(null);
      }
      if (this.closing) return;
      if (!this.dial) return void this.notes.line(`${why}; waiting for QEMU to connect again`);
      this.notes.line(`${why}; reconnecting to ${this.where}`);
      if (performance.now() - since >= HELD_MS) this.attempts = 0;
      // The first retry after a loss is a logged outage already: do not log its failure again.
      this.outageLogged = true;
      this.retry();
    });
  }

  /** From now on each VM connection is offered to the fast path when it comes (the one up now at once), and withdrawn (null) when it ends. */
  offerConnections(offer: (conn: TcpTakeover | null) => void): void {
    this.offerTo = offer;
    if (this.conn) offer(this.conn);
  }

  /** A frame from the VM, read here or, for a flow it has not cached, by the fast path. */
  frameFromVm(frame: Buffer): void {
    this.counters.rxFrames++;
    this.counters.rxBytes += frame.length;
    this.emit('frame', frame);
  }

  send(frame: Uint8Array): boolean {
    const s = this.vm;
    if (!s) return false;
    const fast = this.fast;
    if ((fast ? fast.queued() : s.writableLength) > MAX_QUEUED_BYTES) {
      this.counters.errors++;
      return false;
    }
    const record = withLength(frame);
    // Handed over, it goes after the frames C forwarded: C sends those before JavaScript runs again.
    if (fast) {
      if (!fast.write(record)) return false;
    } else {
      s.write(record);
    }
    this.counters.txFrames++;
    this.counters.txBytes += frame.length;
    return true;
  }

  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.dialing?.destroy();
    this.vm?.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** A socket file left by a daemon that died goes; anything else at that path is the operator's and stays. */
async function removeStaleSocket(file: string): Promise<void> {
  const st = await lstat(file).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) throw new Error(`${file} exists and is not a socket; choose another path`);
  if (await answers(file)) throw new Error(`${file} is in use by another process`);
  await rm(file, { force: true });
}

/** Whether a listening address takes connections from this machine only. */
function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return net.isIPv4(host) && host.startsWith('127.');
}
