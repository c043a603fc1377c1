import { createCipheriv, createDecipheriv } from 'node:crypto';
import type dgram from 'node:dgram';
import net from 'node:net';
import type { DirectionKeys } from '../../daemon/links/crypto.js';
import { withLength } from '../../daemon/links/framing.js';
import { DialerHandshake } from '../../daemon/links/handshake.js';
import { ACCEPT, CHALLENGE, HEADER_BYTES, RECORD_OVERHEAD, SEQ_OFFSET, TAG_BYTES, TAG_OFFSET } from '../../daemon/links/wire.js';
import type { LinkMode } from '../../daemon/links/types.js';

/**
 * The dialing end of a link, played by hand: its handshake, then records
 * sealed with any sequence number and any payload, as a hostile peer that
 * holds the key would send them (for tests of what a daemon does with them,
 * and bench/fuzz-native.ts). Records are sealed by node:crypto here, never
 * by the code under test.
 */

export interface Names {
  self: string;
  peer: string;
  mode: LinkMode;
}

function nonce(seq: number): Buffer {
  const n = Buffer.alloc(12);
  n.writeUIntBE(seq, 6, 6);
  return n;
}

/** A session record of `type` under `key` (the dialer's: keys.d2a), carrying `payload` at sequence number `seq`. */
export function seal(key: Buffer, tag: number, mode: LinkMode, type: number, seq: number, payload: Buffer): Buffer {
  const rec = Buffer.alloc(HEADER_BYTES + payload.length + TAG_BYTES);
  rec[0] = type;
  rec.writeUInt16BE(tag, TAG_OFFSET);
  rec.writeUIntBE(seq, SEQ_OFFSET, 6);
  payload.copy(rec, HEADER_BYTES);
  const c = createCipheriv('chacha20-poly1305', key, nonce(seq), { authTagLength: TAG_BYTES });
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

/** A record from the acceptor (under keys.a2d): its type and payload, or null when it does not authenticate. */
export function open(key: Buffer, mode: LinkMode, rec: Buffer): { type: number; payload: Buffer } | null {
  if (rec.length < RECORD_OVERHEAD) return null;
  const end = rec.length - TAG_BYTES;
  const d = createDecipheriv('chacha20-poly1305', key, nonce(rec.readUIntBE(SEQ_OFFSET, 6)), { authTagLength: TAG_BYTES });
  const authOnly = mode === 'auth-only';
  d.setAAD(rec.subarray(0, authOnly ? end : HEADER_BYTES), { plaintextLength: authOnly ? 0 : end - HEADER_BYTES });
  d.setAuthTag(rec.subarray(end));
  try {
    const body = authOnly ? Buffer.alloc(0) : d.update(rec.subarray(HEADER_BYTES, end));
    d.final();
    return { type: rec[0]!, payload: authOnly ? Buffer.from(rec.subarray(HEADER_BYTES, end)) : body };
  } catch {
    return null;
  }
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

/** Calls `on` with each length-prefixed message of a stream. */
export function messages(s: net.Socket, on: (m: Buffer) => void): void {
  let buf: Buffer = Buffer.alloc(0);
  s.on('data', (c: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, c]) : c;
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      const n = buf.readUInt32BE(0);
      on(buf.subarray(4, 4 + n));
      buf = buf.subarray(4 + n);
    }
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
