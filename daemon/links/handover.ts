import type { Socket } from 'node:net';
import type { LengthPrefixReader } from './framing.js';

/** Node's own handle of a socket: its descriptor, and reading stopped and started. Internal, but unchanged for years. */
type NodeHandle = { fd?: unknown; readStop?: () => number; readStart?: () => number };

/**
 * Gives a connected socket's descriptor to the fast path, for a TCP link
 * (tcp.ts) and a QEMU stream (qemu-stream.ts) alike. Not at once: the chunk
 * being read may hold records after the one that asked; and not before Node
 * has sent all it holds, which the fast path's writes would overtake.
 * `attach` gets the descriptor and the bytes of a record begun but not
 * finished. If it throws, the connection stays with Node, which carries it
 * as before, only slower: those bytes go back through `reader` to
 * `deliver`, and reading starts again. `taken` follows a hand-over that
 * worked; nothing happens once `wanted` says no (the socket closed, or the
 * offer was withdrawn).
 */
export function handOverSocket(
  socket: Socket,
  reader: LengthPrefixReader,
  deliver: (record: Buffer) => void,
  wanted: () => boolean,
  attach: (fd: number, pending: Buffer) => void,
  taken: () => void,
): void {
  const handle = (socket as unknown as { _handle?: NodeHandle })._handle;
  const take = (): void => {
    if (!wanted() || !handle || typeof handle.fd !== 'number' || !handle.readStop || !handle.readStart) return;
    if (socket.writableLength > 0) return void socket.once('drain', () => setImmediate(take));
    handle.readStop();
    const pending = reader.takePartial();
    try {
      attach(handle.fd, pending);
    } catch {
      reader.push(pending, deliver);
      handle.readStart();
      return;
    }
    taken();
  };
  setImmediate(take);
}
