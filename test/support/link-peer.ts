import { createCipheriv } from 'node:crypto';
import type dgram from 'node:dgram';
import net from 'node:net';
import { nonceFor, Opener, type DirectionKeys, type Opened } from '../../daemon/links/crypto.js';
import { LengthPrefixReader, withLength } from '../../daemon/links/framing.js';
import { DialerHandshake } from '../../daemon/links/handshake.js';
import { ACCEPT, CHALLENGE, HEADER_BYTES, MAX_RECORD, TAG_BYTES, writeHeader } from '../../daemon/links/wire.js';
import type { LinkMode } from '../../daemon/links/types.js';

/**
 * The dialing end of a link, played by hand: its handshake, then records
 * sealed with any sequence number and any payload, as a hostile peer that
 * holds the key would send them (for tests of what a daemon does with them,
 * and bench/fuzz-native.ts). Records are sealed by node:crypto here, never
 * by the code under test; what the daemon sends back is opened by its
 * JavaScript Opener, which the C fast path's records must satisfy too.
 */

export interface Names {
  self: string;
  peer: string;
  mode: LinkMode;
}

/** A session record of `type` under `key` (the dialer's: keys.d2a), carrying `payload` at sequence number `seq`. */
export function seal(key: Buffer, tag: number, mode: LinkMode, type: number, seq: number, payload: Buffer): Buffer {
  const rec = Buffer.alloc(HEADER_BYTES + payload.length + TAG_BYTES);
  writeHeader(rec, 0, type, tag, seq);
  payload.copy(rec, HEADER_BYTES);
  const c = createCipheriv('chacha20-poly1305', key, nonceFor(Buffer.alloc(12), seq), { authTagLength: TAG_BYTES });
  if (mode === 'auth-only') {
    c.setAAD(rec.subarray(0, HEADER_BYTES + payload.length), { plaintextLength: 0 });
  } else {
    c.setAAD(rec.subarray(0, HEADER_BYTES), { plaintextLength: payload.length });
    c.update(payload).copy(rec, HEADER_BYTES);
  }
  c.final();
  c.getAuthTag().copy(rec, HEADER_BYTES + payload.length);
  return rec;
}

/** A record from the acceptor (under keys.a2d), at whatever sequence number it claims: null when it does not authenticate. */
export function open(key: Buffer, mode: LinkMode, rec: Buffer): Opened | null {
  const seq = Opener.peekSeq(rec);
  return seq < 0 ? null : new Opener(key, mode === 'encrypt').open(rec, seq);
}

/** A UDP link's handshake from `sock` to host:port: the session's keys. */
export function udpDial(sock: dgram.Socket, host: string, port: number, key: Buffer, names: Names, ms = 10_000): Promise<DirectionKeys> {
  const hs = new DialerHandshake(key, { ...names, proto: 'udp' });
  return new Promise((resolve, reject) => {
    const retransmit = setInterval(() => sock.send(hs.hello, port, host), 200);
    const deadline = setTimeout(() => finish(new Error(`no UDP handshake with ${host}:${port} within ${ms} ms`)), ms);
    const finish = (e: Error | null, keys?: DirectionKeys) => {
      clearInterval(retransmit);
      clearTimeout(deadline);
      sock.off('message', on);
      if (e) reject(e);
      else resolve(keys!);
    };
    const on = (m: Buffer) => {
      if (m[0] === CHALLENGE) {
        const proof = hs.answer(m);
        // A UDP PROOF carries the cookie and the HELLO back: the acceptor kept nothing.
        if (proof) sock.send(Buffer.concat([proof, m.subarray(1), hs.hello]), port, host);
      } else if (m[0] === ACCEPT) {
        const r = hs.finish(m);
        if (r.ok) finish(null, r.keys);
      }
    };
    sock.on('message', on);
    sock.send(hs.hello, port, host);
  });
}

/** Calls `on` with each length-prefixed message of a stream (of at most `max` bytes; a longer or an empty one ends the stream with an error). */
export function messages(s: net.Socket, on: (m: Buffer) => void, max = MAX_RECORD): void {
  const reader = new LengthPrefixReader(max);
  s.on('data', (c: Buffer) => {
    const bad = reader.push(c, on);
    if (bad) s.destroy(new Error(`${s.remoteAddress}:${s.remotePort} sent a length prefix that is ${bad === 'empty' ? 'zero' : `over ${max}`}`));
  });
}

export interface TcpPeer {
  sock: net.Socket;
  keys: DirectionKeys;
  /** Called with each record from the acceptor once the handshake is done. */
  onRecord: (record: Buffer) => void;
}

/** A TCP link's connection to host:port, its handshake done. */
export function tcpDial(host: string, port: number, key: Buffer, names: Names, ms = 10_000): Promise<TcpPeer> {
  const hs = new DialerHandshake(key, { ...names, proto: 'tcp' });
  const sock = net.connect(port, host);
  sock.setNoDelay(true);
  return new Promise((resolve, reject) => {
    let peer: TcpPeer | null = null;
    const deadline = setTimeout(() => fail(new Error(`no TCP handshake with ${host}:${port} within ${ms} ms`)), ms);
    const fail = (e: Error) => {
      clearTimeout(deadline);
      sock.destroy();
      reject(e);
    };
    sock.once('connect', () => sock.write(withLength(hs.hello)));
    sock.on('error', (e) => peer || fail(e));
    sock.on('close', () => peer || fail(new Error(`${host}:${port} closed the connection during the handshake`)));
    messages(sock, (m) => {
      if (peer) return peer.onRecord(m);
      if (!hs.answered) {
        const proof = hs.answer(m);
        return proof ? void sock.write(withLength(proof)) : fail(new Error('the acceptor sent no CHALLENGE'));
      }
      const r = hs.finish(m);
      if (!r.ok) return fail(new Error(`the acceptor's ACCEPT: ${r.reason}`));
      clearTimeout(deadline);
      peer = { sock, keys: r.keys, onRecord: () => {} };
      resolve(peer);
    });
  });
}
