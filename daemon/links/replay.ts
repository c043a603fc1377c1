/**
 * Sliding anti-replay window for datagrams (RFC 6479's bitmap idea): UDP
 * may reorder and duplicate, so a record is accepted once, in any order, if
 * it is no more than WINDOW behind the newest one seen.
 */
export const REPLAY_WINDOW = 1024;

const WORDS = REPLAY_WINDOW / 32;

export class ReplayWindow {
  private top = -1;
  private readonly bits = new Uint32Array(WORDS);

  /** Whether `seq` may still be accepted; cheap, so it runs before authentication. */
  check(seq: number): boolean {
    if (seq < 0) return false;
    if (seq > this.top) return true;
    if (this.top - seq >= REPLAY_WINDOW) return false;
    const i = seq % REPLAY_WINDOW;
    return (this.bits[i >>> 5]! & (1 << (i & 31))) === 0;
  }

  /** Records `seq` as seen; call only after the record proved authentic, so forgeries cannot slide the window. */
  mark(seq: number): void {
    if (seq > this.top) {
      const advance = seq - this.top;
      if (advance >= REPLAY_WINDOW) this.bits.fill(0);
      else for (let s = this.top + 1; s <= seq; s++) this.clear(s % REPLAY_WINDOW);
      this.top = seq;
    }
    const i = seq % REPLAY_WINDOW;
    this.bits[i >>> 5]! |= 1 << (i & 31);
  }

  private clear(i: number): void {
    this.bits[i >>> 5]! &= ~(1 << (i & 31));
  }
}
