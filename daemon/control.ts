import { listenOwnerOnly } from '../src/util/unix-socket.js';
import net from 'node:net';
import { clipWord } from '../src/wire/clip-word.js';
import { MAX_LINE, WireError, isChange, parseCommand, PROTOCOL_VERSION, type Change, type Command } from '../src/wire/control.js';

/**
 * The control server: sessions over a Unix socket speaking the line
 * protocol of PROTOCOL.md. It parses, keeps each session's batch, and hands
 * whole batches to the daemon; a bad line gets an ERR reply and the session
 * goes on. Only the socket's file permissions (owner only) and SSH in front
 * of it decide who gets here.
 */

export type CommitResult =
  | { ok: true; ms: number }
  /** `errors` per change; `fatal` when the batch was fine but could not be made durable. */
  | { ok: false; errors: (WireError | undefined)[]; fatal?: WireError };

export type QueryOp = 'info?' | 'devices?' | 'links?' | 'rules?' | 'stats?' | 'configtime?' | 'vttif?' | 'infer?';

export interface ControlTarget {
  readonly machine: string;
  readonly version: string;
  /** Checks and applies a batch as one; never throws for a bad batch. */
  commit(changes: readonly Change[]): Promise<CommitResult>;
  setConfigTime(ms: number): Promise<void>;
  /** Changes VTTIF settings (persisted); throws WireError when they do not hold together. */
  setVttif(words: readonly string[]): Promise<string>;
  /** Listing lines for a query command (without the leading `* `); may throw WireError (the query cannot be answered here). */
  query(op: QueryOp): Iterable<string>;
  /** Stops the daemon once the reply to SHUTDOWN has been sent. */
  shutdown(): void;
}

/** Beyond this a batch is refused rather than buffered (a million-rule plan fits). */
export const MAX_BATCH = 4_000_000;

/** Reply bytes a client may leave unread before its session stops taking on commands, so one that never reads costs this, not memory without end. */
export const MAX_UNREAD = 4 << 20;

export class ControlServer {
  private readonly server: net.Server;
  private readonly sessions = new Set<net.Socket>();

  constructor(
    private readonly target: ControlTarget,
    private readonly log: (line: string) => void = () => {},
  ) {
    // Half-open: a client that ends its input (a pipe into `vnetd ctl`) still gets the replies to all it sent.
    this.server = net.createServer({ allowHalfOpen: true }, (socket) => this.session(socket));
    this.server.on('error', (e) => this.log(`control: ${e.message}`));
  }

  listen(socketPath: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      listenOwnerOnly(this.server, socketPath, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  close(): Promise<void> {
    for (const s of this.sessions) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Serves one connection; anything it sends gets a reply, and nothing it sends ends the daemon. */
  session(socket: net.Socket): void {
    this.sessions.add(socket);
    socket.on('close', () => this.sessions.delete(socket));
    socket.on('error', () => socket.destroy());
    const session = new Session(this.target, (text) => {
      if (!socket.destroyed) socket.write(text);
    });
    session.greet();
    const lines = new LineSplitter(
      (line) => session.push(line),
      () => session.tooLong(),
    );
    socket.on('data', (chunk: Buffer) => {
      lines.feed(chunk);
      // Apply backpressure while the session works through queued commands.
      if (session.backlog > 1000) socket.pause();
    });
    // The replies to what arrived together leave together: one write, so one packet (behind SSH, a Nagle-held
    // second packet would wait for the client's delayed ACK, up to 40 ms).
    session.onBusy = () => socket.cork();
    session.onIdle = () => {
      socket.uncork();
      socket.resume();
    };
    session.onDone = () => socket.end();
    session.unread = () => {
      if (socket.writableLength <= MAX_UNREAD || socket.destroyed) return undefined;
      // Corked, nothing would leave and 'drain' would never come.
      socket.uncork();
      return new Promise<void>((resolve) => {
        const go = () => {
          socket.off('drain', go);
          socket.off('close', go);
          socket.cork();
          resolve();
        };
        socket.on('drain', go);
        socket.on('close', go);
      });
    };
    socket.on('end', () => {
      const rest = lines.finish();
      if (rest !== undefined && rest.trim() !== '') session.unterminated(rest);
      session.push(undefined);
    });
  }
}

/**
 * Splits a byte stream into lines without ever holding more than MAX_LINE
 * bytes of one: a longer line is reported once and skipped to its end.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private skipping = false;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly onTooLong: () => void,
  ) {}

  feed(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      const end = nl === -1 ? chunk.length : nl;
      if (!this.skipping) {
        if (this.size + (end - start) > MAX_LINE) {
          this.skipping = true;
          this.parts = [];
          this.size = 0;
          this.onTooLong();
        } else if (end > start) {
          this.parts.push(chunk.subarray(start, end));
          this.size += end - start;
        }
      }
      if (nl === -1) return;
      if (this.skipping) this.skipping = false;
      else {
        // Byte for byte: the protocol is ASCII, and a stray byte is then quoted back as the \xNN it was, not as U+FFFD.
        let line = Buffer.concat(this.parts, this.size).toString('latin1');
        if (line.endsWith('\r')) line = line.slice(0, -1);
        this.parts = [];
        this.size = 0;
        this.onLine(line);
      }
      start = nl + 1;
    }
  }

  /** At the end of input: the last line, if it had no newline (and was not too long). */
  finish(): string | undefined {
    const rest = this.skipping || this.size === 0 ? undefined : Buffer.concat(this.parts, this.size).toString('latin1');
    this.parts = [];
    this.size = 0;
    this.skipping = false;
    return rest;
  }
}

/** One client's conversation: commands run strictly in order, each answered in order. */
class Session {
  /**
   * Lines waiting to be handled, refusals already worded (they break an open
   * batch), and undefined for the end of input; `head` is the next. An index,
   * not shift(): a batch queues millions.
   */
  private queue: (string | undefined | { refuse: string })[] = [];
  private head = 0;
  private running = false;
  private batch: Change[] | undefined;
  private batchBroken = false;
  onBusy: () => void = () => {};
  onIdle: () => void = () => {};
  onDone: () => void = () => {};
  /** While the client has too many replies unread: resolves once it has read them. */
  unread: () => Promise<void> | undefined = () => undefined;

  constructor(
    private readonly target: ControlTarget,
    private readonly write: (text: string) => void,
  ) {}

  get backlog(): number {
    return this.queue.length - this.head;
  }

  greet(): void {
    this.write(`OK vnetd ${this.target.version} protocol ${PROTOCOL_VERSION} machine ${this.target.machine}\n`);
  }

  tooLong(): void {
    this.enqueue({ refuse: `ERR E_TOOLONG line longer than ${MAX_LINE} bytes; skipped\n` });
  }

  /** The input ended inside a line: a client cut off mid-write may have sent a different command's prefix, so it is not run. */
  unterminated(line: string): void {
    this.enqueue({ refuse: `ERR E_SYNTAX the input ended inside a line ('${clipWord(line)}'): a command ends with a newline; not run\n` });
  }

  /** A line, or undefined at the end of input. */
  push(line: string | undefined): void {
    this.enqueue(line);
  }

  private enqueue(item: string | undefined | { refuse: string }): void {
    this.queue.push(item);
    if (!this.running) void this.drain();
  }

  private async drain(): Promise<void> {
    this.running = true;
    this.onBusy();
    while (this.head < this.queue.length) {
      const unread = this.unread();
      if (unread) await unread;
      const item = this.queue[this.head++];
      if (this.head === this.queue.length) {
        this.queue = [];
        this.head = 0;
      }
      if (item === undefined) {
        this.onDone();
        this.queue = [];
        this.head = 0;
        break;
      }
      try {
        const reply = typeof item === 'object' ? this.refuse(item.refuse) : await this.handle(item);
        if (reply === 'done' || reply === 'shutdown') {
          this.write(reply === 'done' ? 'OK bye\n' : 'OK stopping\n');
          this.onDone();
          if (reply === 'shutdown') this.target.shutdown();
          this.queue = [];
          this.head = 0;
          break;
        }
        this.write(reply);
      } catch (e) {
        // A fault of ours, not the client's: say so and keep serving.
        this.write(`ERR E_STATE internal error: ${(e as Error).message.split('\n')[0]}\n`);
      }
    }
    this.running = false;
    this.onIdle();
  }

  private refuse(reply: string): string {
    if (this.batch) this.batchBroken = true;
    return reply;
  }

  private async handle(line: string): Promise<string | 'done' | 'shutdown'> {
    if (line.trim() === '' || line.trimStart().startsWith('#')) return this.batch ? '' : 'OK\n';
    let cmd: Command;
    try {
      cmd = parseCommand(line);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      if (this.batch) this.batchBroken = true;
      return `ERR ${e.code} ${e.message}${this.batch ? ' (the batch will be rejected; ABORT it)' : ''}\n`;
    }
    if (this.batch) return this.inBatch(cmd);
    switch (cmd.op) {
      case 'hello':
        return `OK vnetd ${this.target.version} protocol ${PROTOCOL_VERSION} machine ${this.target.machine}\n`;
      case 'done':
      case 'shutdown':
        return cmd.op;
      case 'batch':
        this.batch = [];
        this.batchBroken = false;
        return 'OK batch open: send changes, then COMMIT (or ABORT)\n';
      case 'commit':
      case 'abort':
        return `ERR E_STATE no batch is open\n`;
      case 'configtime':
        await this.target.setConfigTime(cmd.ms);
        return `OK configuration time bound set to ${cmd.ms} ms\n`;
      case 'vttif':
        try {
          return `OK ${await this.target.setVttif(cmd.words)}\n`;
        } catch (e) {
          if (!(e instanceof WireError)) throw e;
          return `ERR ${e.code} ${e.message}\n`;
        }
      case 'info?':
      case 'devices?':
      case 'links?':
      case 'rules?':
      case 'stats?':
      case 'configtime?':
      case 'vttif?':
      case 'infer?': {
        const out: string[] = [];
        let n = 0;
        try {
          for (const l of this.target.query(cmd.op)) {
            out.push(`* ${l}\n`);
            n++;
          }
        } catch (e) {
          if (!(e instanceof WireError)) throw e;
          return `ERR ${e.code} ${e.message}\n`;
        }
        out.push(`OK ${n}\n`);
        return out.join('');
      }
      default:
        return this.commit([cmd as Change], false);
    }
  }

  private async inBatch(cmd: Command): Promise<string> {
    const batch = this.batch!;
    if (cmd.op === 'abort') {
      this.batch = undefined;
      return `OK aborted ${batch.length} queued change${batch.length === 1 ? '' : 's'}\n`;
    }
    if (cmd.op === 'commit') {
      this.batch = undefined;
      if (this.batchBroken) return 'ERR E_REJECTED the batch had a line in error; nothing applied\n';
      return this.commit(batch, true);
    }
    if (!isChange(cmd)) {
      this.batchBroken = true;
      return `ERR E_STATE ${cmd.op.toUpperCase()} cannot go in a batch (the batch will be rejected; ABORT it)\n`;
    }
    if (batch.length >= MAX_BATCH) {
      this.batchBroken = true;
      return `ERR E_BUSY a batch holds at most ${MAX_BATCH} changes\n`;
    }
    batch.push(cmd);
    return `OK queued ${batch.length}\n`;
  }

  private async commit(changes: Change[], batched: boolean): Promise<string> {
    const r = await this.target.commit(changes);
    if (!r.ok && r.fatal) return `ERR ${r.fatal.code} ${r.fatal.message}\n`;
    if (!batched) {
      if (r.ok) return 'OK\n';
      const e = r.errors.find((x) => x)!;
      return `ERR ${e.code} ${e.message}\n`;
    }
    const out = changes.map((_, i) => {
      const e = r.ok ? undefined : r.errors[i];
      return e ? `* ${i + 1} ERR ${e.code} ${e.message}\n` : `* ${i + 1} OK\n`;
    });
    if (r.ok) out.push(`OK committed ${changes.length} change${changes.length === 1 ? '' : 's'} in ${r.ms.toFixed(1)} ms\n`);
    else {
      const failed = r.errors.filter((x) => x).length;
      out.push(`ERR E_REJECTED ${failed} of ${changes.length} changes failed; nothing applied\n`);
    }
    return out.join('');
  }
}
