/**
 * Hands frames to the network a batch per event-loop turn. A BSP
 * communication phase sends every message at once; unpaced, a burst of
 * thousands of datagrams lands in one receive buffer (a daemon's interface
 * socket on loopback, or the far end's) before anyone reads, and most are
 * dropped. Between two batches the loop polls, so the receivers drain.
 */
export class Pacer {
  private readonly queue: (() => void)[] = [];
  private head = 0;
  private scheduled = false;

  constructor(private readonly perTurn = 32) {}

  /** Queues the sends; resolves once the last of them has run. */
  run(sends: (() => void)[]): Promise<void> {
    return new Promise((resolve) => {
      this.queue.push(...sends, resolve);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.drain());
  }

  private drain(): void {
    this.scheduled = false;
    const end = Math.min(this.queue.length, this.head + this.perTurn);
    while (this.head < end) this.queue[this.head++]!();
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else {
      this.schedule();
    }
  }
}
