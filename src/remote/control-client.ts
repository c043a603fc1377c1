import type { Duplex } from 'node:stream';
import { connectUnix } from '../util/unix-socket.js';
import { clipWord } from '../wire/clip-word.js';
import { formatCommand, GREETING_MS, OversizedReply, REPLY_LIMITS, REPLY_MS, REPLY_WHOLE_MS, ReplyReader, type Change, type Reply, type ReplyLimits } from '../wire/control.js';

/** How a client fails its waiting requests, for each way a daemon can let it down. */
export interface DaemonFailures {
  /** Silence: `greeting` when not even the greeting came (whole) in time, else no byte of an owed reply for `ms`. */
  error: (greeting: boolean, ms: number) => Error;
  /**
   * The daemon sends more than a reply may hold (`what`: how much, as in `a
   * reply line longer than 64 KiB`). Sending is not silence, so only this
   * bound stops a peer that sends for ever.
   */
  oversized?: (what: string) => Error;
  /** The daemon sends lines that are not the protocol (`what`: which, and why); it was reached, so this is not "cannot reach". */
  garbled?: (what: string) => Error;
  /** One reply (to `request`, its command word) took longer than `ms` in all, though bytes kept coming. */
  slow?: (request: string, ms: number) => Error;
  /**
   * The connection broke (`cause`) after the greeting, while the reply to
   * `request` was owed; `during`: part of that reply had come.
   */
  broken?: (request: string, during: boolean, cause: string) => Error;
}

/**
 * How long a daemon may take before the client gives up on it: the greeting,
 * which a daemon sends whole as soon as it accepts; any later reply, without
 * a byte (a large batch commits in seconds); and any one reply in all,
 * which bounds a peer that trickles a byte now and then.
 */
export interface Patience extends DaemonFailures {
  greetingMs: number;
  replyMs: number;
  wholeMs: number;
}

/** The bounds every transport gives a daemon, failing as `failures` says. */
export const daemonPatience = (failures: DaemonFailures): Patience => ({ greetingMs: GREETING_MS, replyMs: REPLY_MS, wholeMs: REPLY_WHOLE_MS, ...failures });

/** A request waiting for its reply, and the command word it is named by in messages (never the whole line: LINK ADD carries a key). */
interface Waiter {
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
  request: string;
}

/**
 * A client of vnetd's control protocol over any byte stream: a Unix socket
 * here, an SSH channel later. Requests are pipelined: each gets the next
 * reply, in order.
 */
export class ControlClient {
  private readonly reader: ReplyReader;
  private readonly waiting: Waiter[] = [];
  private buffered = '';
  private head = 0;
  private closed: Error | undefined;
  private outgoing: string | undefined;
  private replies = 0;
  /** Lines of the reply being read so far: a break after any is one during that reply. */
  private sinceReply = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Whether `timer` bounds a reply's silence (not the greeting's). */
  private timerOnReply = false;
  /** The bound on the reply now owed, in all. */
  private whole: NodeJS.Timeout | undefined;
  /** The greeting line the daemon sends on connect. */
  readonly greeting: Promise<Reply>;

  /** Without `patience`, waits as long as the stream stays open. `limits`: smaller ones for tests. */
  constructor(
    private readonly stream: Duplex,
    private readonly patience?: Patience,
    limits: ReplyLimits = REPLY_LIMITS,
  ) {
    this.reader = new ReplyReader(limits);
    this.greeting = new Promise((resolve, reject) => this.waiting.push({ resolve, reject, request: 'the greeting' }));
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
        const what = `something that is not vnetd's protocol: ${(e as Error).message}`;
        this.fail(this.patience?.garbled?.(what) ?? new Error(`the control connection sent ${what}`));
        stream.destroy();
      }
    });
    stream.on('error', (e: Error) => this.broke(e, e.message));
    // 'end' too: an SSH channel whose far side went away may send EOF and wait for us to close.
    const closed = () => this.broke(new Error('the daemon closed the control connection'), 'the daemon closed it');
    stream.on('end', closed);
    stream.on('close', closed);
  }

  /**
   * The stream failed (`e`) or ended. Once the daemon has greeted, a reply
   * it owed was cut short: that it was reached is known, and said.
   */
  private broke(e: Error, cause: string): void {
    if (this.closed) return;
    const owed = this.waiting[this.head];
    if (this.replies === 0 || !owed) return this.fail(e);
    const during = this.sinceReply > 0 || this.buffered.length > 0;
    this.fail(this.patience?.broken?.(owed.request, during, cause) ?? new Error(`the control connection broke ${during ? 'during' : 'before'} the reply to ${owed.request}: ${cause}`));
  }

  /**
   * (Re)starts the bounds while the daemon owes a reply; stops them when it
   * owes none. `heard`: it has just sent something; `replied`: a whole reply,
   * so the next one owed starts its own count in all.
   */
  private wait(heard = false, replied = false): void {
    const patience = this.patience;
    if (!patience || this.closed) return;
    if (this.waiting.length === this.head) return this.stopBounds();
    const greeting = this.replies === 0;
    // The greeting is one line sent at once: its bound is on the whole of it, not renewed by each byte.
    if (this.timer === undefined || (heard && !greeting)) {
      // Renewed on each chunk of a long reply: the same bound again, without a new timer each time.
      if (this.timer !== undefined && this.timerOnReply) this.timer.refresh();
      else {
        clearTimeout(this.timer);
        const ms = greeting ? patience.greetingMs : patience.replyMs;
        this.timer = setTimeout(() => this.giveUp(patience.error(greeting, ms)), ms);
        this.timerOnReply = !greeting;
      }
    }
    if (!greeting && (this.whole === undefined || replied)) {
      clearTimeout(this.whole);
      const request = this.waiting[this.head]!.request;
      const ms = patience.wholeMs;
      this.whole = setTimeout(() => this.giveUp(patience.slow?.(request, ms) ?? new Error(`the reply to ${request} took more than ${ms / 1000} s`)), ms);
    }
  }

  private stopBounds(): void {
    clearTimeout(this.timer);
    clearTimeout(this.whole);
    this.timer = this.whole = undefined;
  }

  private giveUp(e: Error): void {
    this.fail(e);
    this.stream.destroy();
  }

  private fail(e: Error): void {
    this.stopBounds();
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
    let replied = false;
    while ((nl = this.buffered.indexOf('\n', start)) !== -1) {
      const line = this.buffered.slice(start, nl);
      const reply = this.reader.line(line);
      start = nl + 1;
      this.sinceReply++;
      if (reply) {
        this.replies++;
        this.sinceReply = 0;
        replied = true;
        const waiter = this.next();
        // Replies pair with requests by order alone: one nobody asked for would be taken as the answer to the next request (a change said done that was not).
        if (!waiter) throw new Error(`a reply no request was waiting for: ${JSON.stringify(line.slice(0, 80))}`);
        waiter.resolve(reply);
      }
    }
    this.buffered = this.buffered.slice(start);
    // Checked as it comes: a peer that never ends its line would otherwise be buffered without end.
    this.reader.partial(this.buffered.length);
    this.wait(true, replied);
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
    const request = clipWord(line.trim().split(/[ \t]/)[0]!);
    const p = new Promise<Reply>((resolve, reject) => this.waiting.push({ resolve, reject, request }));
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
    const request = `a batch of ${changes.length} change${changes.length === 1 ? '' : 's'}`;
    for (let i = 0; i < lines.length; i++) replies.push(new Promise((resolve, reject) => this.waiting.push({ resolve, reject, request })));
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
