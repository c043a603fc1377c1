import type { Duplex } from 'node:stream';
import { connectUnix } from '../util/unix-socket.js';
import { formatCommand, GREETING_MS, OversizedReply, REPLY_LIMITS, REPLY_MS, ReplyReader, type Change, type Reply, type ReplyLimits } from '../wire/control.js';

/**
 * How long a daemon may owe an answer without sending a byte before the
 * client gives up on it: the greeting, which a daemon sends as soon as it
 * accepts, and any later reply (a large batch commits in seconds).
 */
export interface Patience {
  greetingMs: number;
  replyMs: number;
  /** What every waiting request fails with: `greeting` when not even the greeting came. */
  error: (greeting: boolean, ms: number) => Error;
  /**
   * What they fail with when the daemon sends more than a reply may hold
   * (`what`: how much, as in `a reply line longer than 64 KiB`). Sending is
   * not silence, so only this bound stops a peer that sends for ever.
   */
  oversized?: (what: string) => Error;
}

/** The bounds every transport gives a daemon, failing with `error` and `oversized`. */
export const daemonPatience = (error: Patience['error'], oversized: (what: string) => Error): Patience => ({ greetingMs: GREETING_MS, replyMs: REPLY_MS, error, oversized });

/**
 * A client of vnetd's control protocol over any byte stream: a Unix socket
 * here, an SSH channel later. Requests are pipelined: each gets the next
 * reply, in order.
 */
export class ControlClient {
  private readonly reader: ReplyReader;
  private readonly waiting: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  private buffered = '';
  private head = 0;
  private closed: Error | undefined;
  private outgoing: string | undefined;
  private replies = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The greeting line the daemon sends on connect. */
  readonly greeting: Promise<Reply>;

  /** Without `patience`, waits as long as the stream stays open. `limits`: smaller ones for tests. */
  constructor(
    private readonly stream: Duplex,
    private readonly patience?: Patience,
    limits: ReplyLimits = REPLY_LIMITS,
  ) {
    this.reader = new ReplyReader(limits);
    this.greeting = new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
    this.wait();
    stream.setEncoding('utf8');
    stream.on('data', (text: string) => {
      try {
        this.onData(text);
      } catch (e) {
        if (e instanceof OversizedReply) {
          this.fail(this.patience?.oversized?.(e.what) ?? e);
          stream.destroy();
          return;
        }
        // Not the protocol (a login shell's chatter on an exec channel, a stranger on the socket): every waiter gets the reason, not the process a stack trace.
        this.fail(new Error(`the control connection sent something that is not vnetd's protocol: ${(e as Error).message}`));
        stream.destroy();
      }
    });
    stream.on('error', (e: Error) => this.fail(e));
    // 'end' too: an SSH channel whose far side went away may send EOF and wait for us to close.
    const closed = () => this.fail(new Error('the daemon closed the control connection'));
    stream.on('end', closed);
    stream.on('close', closed);
  }

  /**
   * (Re)starts the bound on the daemon's silence while it owes a reply; stops
   * it when it owes none. `fresh`: it has just been heard from.
   */
  private wait(fresh = false): void {
    if (!this.patience || this.closed) return;
    if (this.waiting.length === this.head) {
      clearTimeout(this.timer);
      this.timer = undefined;
      return;
    }
    if (this.timer !== undefined && !fresh) return;
    clearTimeout(this.timer);
    const greeting = this.replies === 0;
    const ms = greeting ? this.patience.greetingMs : this.patience.replyMs;
    this.timer = setTimeout(() => {
      this.fail(this.patience!.error(greeting, ms));
      this.stream.destroy();
    }, ms);
  }

  private fail(e: Error): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.closed ??= e;
    for (const w of this.waiting.splice(0).slice(this.head)) w.reject(e);
    this.head = 0;
  }

  static connect(socketPath: string, patience?: Patience, limits?: ReplyLimits): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const s = connectUnix(socketPath);
      s.once('error', reject);
      s.once('connect', () => {
        s.off('error', reject);
        const c = new ControlClient(s, patience, limits);
        c.greeting.then(() => resolve(c), reject);
      });
    });
  }

  private onData(text: string): void {
    this.buffered += text;
    let start = 0;
    let nl: number;
    while ((nl = this.buffered.indexOf('\n', start)) !== -1) {
      const reply = this.reader.line(this.buffered.slice(start, nl));
      start = nl + 1;
      if (reply) {
        this.replies++;
        this.next()?.resolve(reply);
      }
    }
    this.buffered = this.buffered.slice(start);
    // Checked as it comes: a peer that never ends its line would otherwise be buffered without end.
    this.reader.partial(this.buffered.length);
    this.wait(true);
  }

  /** The oldest waiter. An index, not shift(): a batch waits for a million replies. */
  private next() {
    const w = this.waiting[this.head];
    if (w === undefined) return undefined;
    this.waiting[this.head++] = undefined as never;
    if (this.head === this.waiting.length) {
      this.waiting.length = 0;
      this.head = 0;
    }
    return w;
  }

  /**
   * Lines sent in one turn of the event loop go in one write: over SSH that
   * is one packet, so the daemon gets them together and answers them together.
   */
  private send(text: string): void {
    if (this.outgoing === undefined) {
      this.outgoing = text;
      queueMicrotask(() => {
        const out = this.outgoing!;
        this.outgoing = undefined;
        if (!this.closed) this.stream.write(out);
      });
    } else this.outgoing += text;
  }

  /** Sends one command line and waits for its reply. */
  request(line: string): Promise<Reply> {
    if (this.closed) return Promise.reject(this.closed);
    const p = new Promise<Reply>((resolve, reject) => this.waiting.push({ resolve, reject }));
    this.wait();
    this.send(line + '\n');
    return p;
  }

  /**
   * Sends changes as one all-or-nothing batch in one round trip; resolves to
   * the COMMIT reply, whose data lines give each step's result.
   */
  async batch(changes: readonly Change[]): Promise<Reply> {
    if (this.closed) throw this.closed;
    const replies: Promise<Reply>[] = [];
    const lines = ['BATCH', ...changes.map(formatCommand), 'COMMIT'];
    for (let i = 0; i < lines.length; i++) replies.push(new Promise((resolve, reject) => this.waiting.push({ resolve, reject })));
    this.wait();
    this.send(lines.join('\n') + '\n');
    const all = await Promise.all(replies);
    return all[all.length - 1]!;
  }

  close(): void {
    this.stream.end();
    if (!this.patience) return;
    // A wedged daemon may never close its side, and a half-closed socket keeps vnetc running.
    const t = setTimeout(() => this.stream.destroy(), this.patience.greetingMs);
    this.stream.once('close', () => clearTimeout(t));
  }
}
