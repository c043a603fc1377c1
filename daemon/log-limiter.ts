/**
 * Log lines that the network can cause, at most `burst` in each window of
 * `windowMs`: a peer that repeats itself (reconnecting, probing) must not
 * be able to fill the disk through the log. What was held back is counted,
 * and said with the next line that gets through.
 */
export class LogLimiter {
  private start = -Infinity;
  private lines = 0;
  private suppressed = 0;

  constructor(
    private readonly log: (line: string) => void,
    /** The line that says how many were held back. */
    private readonly summary: (suppressed: number) => string,
    private readonly burst = 20,
    private readonly windowMs = 10_000,
  ) {}

  line(text: string): void {
    const now = performance.now();
    if (now - this.start >= this.windowMs) {
      if (this.suppressed > 0) this.log(this.summary(this.suppressed));
      this.start = now;
      this.lines = 0;
      this.suppressed = 0;
    }
    if (this.lines++ < this.burst) this.log(text);
    else this.suppressed++;
  }
}

/**
 * One LogLimiter per kind of line, for a fixed, small set of kinds: a flood
 * of one kind (junk anyone can send) must not use up the lines of another
 * (the one an operator is looking for). Each kind says its own summary.
 */
export class KeyedLogLimiter<K> {
  private readonly limiters = new Map<K, LogLimiter>();

  constructor(
    private readonly log: (line: string) => void,
    private readonly summary: (key: K, suppressed: number) => string,
    private readonly burst = 20,
    private readonly windowMs = 10_000,
  ) {}

  line(key: K, text: string): void {
    let limiter = this.limiters.get(key);
    if (!limiter) {
      limiter = new LogLimiter(this.log, (n) => this.summary(key, n), this.burst, this.windowMs);
      this.limiters.set(key, limiter);
    }
    limiter.line(text);
  }
}
