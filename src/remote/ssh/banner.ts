import type { Duplex } from 'node:stream';
import { clipWord } from '../../wire/clip-word.js';

/**
 * What a server said before its SSH identification line (`SSH-2.0-…`), kept
 * to tell why a login failed that early: a port that is another service
 * (a web server's `HTTP/1.1 400 Bad Request`, a mail server's `220 …`) says
 * so in its first line, which ssh2 only reports as "Header line too long"
 * or "Connection lost before handshake".
 */

/** Enough for a first line; a server that sends more before SSH- is not one. */
const KEPT = 1024;

export type Banner =
  /** It identified itself as SSH: whatever failed, failed later. */
  | { kind: 'ssh' }
  /** Nothing came at all. */
  | { kind: 'nothing' }
  /** It sent something else first: its first line, clipped and made printable. */
  | { kind: 'other'; said: string };

/** Listens on `sock` alongside ssh2 (call it before ssh2 is given the socket); the function says what came so far. */
export function tapBanner(sock: Duplex): () => Banner {
  let seen = Buffer.alloc(0);
  let ssh = false;
  const onData = (b: Buffer) => {
    seen = Buffer.concat([seen, b]).subarray(0, KEPT);
    // An identification line starts a line; lines before it are allowed (RFC 4253, 4.2).
    ssh = /(^|\n)SSH-/.test(seen.toString('latin1'));
    if (ssh || seen.length >= KEPT) sock.off('data', onData);
  };
  // Only as ssh2 starts reading: a listener of ours alone would set the stream flowing, and what is already buffered (a tunnel's) would pass ssh2 by.
  const whenRead = (event: string | symbol) => {
    if (event !== 'data') return;
    sock.off('newListener', whenRead);
    sock.on('data', onData);
  };
  sock.on('newListener', whenRead);
  return () => {
    if (ssh) return { kind: 'ssh' };
    const text = seen.toString('latin1');
    if (text === '') return { kind: 'nothing' };
    const first = text.split('\n').find((l) => l.trim() !== '') ?? text;
    return { kind: 'other', said: clipWord(first.replace(/\r$/, '').trim()) };
  };
}
