import { Opener, Sealer, type DirectionKeys } from './crypto.js';
import { ReplayWindow } from './replay.js';
import type { LinkMode } from './types.js';
import { readTag } from './wire.js';

/**
 * An established session: the two directions' keys and the ordering rule of
 * its transport. TCP delivers in order, so anything but the next sequence
 * number is tampering; UDP may reorder, so a window accepts each number once.
 */
export type Ordering = 'strict' | 'window';

export type OpenResult =
  | { ok: true; type: number; payload: Buffer }
  | { ok: false; reason: 'malformed' | 'auth' | 'replay' };

export class Session {
  private readonly sealer: Sealer;
  private readonly opener: Opener;
  private readonly window: ReplayWindow | null;
  private next = 0;
  readonly tag: number;

  constructor(
    keys: DirectionKeys,
    role: 'dialer' | 'acceptor',
    mode: LinkMode,
    headroom: number,
    ordering: Ordering,
  ) {
    const encrypt = mode === 'encrypt';
    const [tx, rx] = role === 'dialer' ? [keys.d2a, keys.a2d] : [keys.a2d, keys.d2a];
    this.tag = keys.tag;
    this.sealer = new Sealer(tx, encrypt, headroom, keys.tag);
    this.opener = new Opener(rx, encrypt);
    this.window = ordering === 'window' ? new ReplayWindow() : null;
  }

  seal(type: number, payload: Uint8Array): Buffer | null {
    return this.sealer.seal(type, payload);
  }

  /** Where a payload built for `sealInPlace` starts in its record. */
  get prefix(): number {
    return this.sealer.prefix;
  }

  sealInPlace(type: number, record: Buffer, length: number): Buffer | null {
    return this.sealer.sealInPlace(type, record, length);
  }

  open(record: Buffer): OpenResult {
    const seq = Opener.peekSeq(record);
    // Another session's record (or a guess): refused before paying for authentication.
    if (seq < 0 || readTag(record) !== this.tag) return { ok: false, reason: 'malformed' };
    if (this.window ? !this.window.check(seq) : seq !== this.next) return { ok: false, reason: 'replay' };
    const opened = this.opener.open(record, seq);
    if (!opened) return { ok: false, reason: 'auth' };
    if (this.window) this.window.mark(seq);
    else this.next++;
    return { ok: true, type: opened.type, payload: opened.payload };
  }
}
