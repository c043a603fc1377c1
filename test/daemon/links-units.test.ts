import { randomBytes } from 'node:crypto';
import { addressKey, sourceOf } from '../../daemon/links/address.js';
import { parseHostPort } from '../../src/wire/hostport.js';
import { backoffDelay } from '../../daemon/links/backoff.js';
import { Sealer, sealCopy, sessionKeys } from '../../daemon/links/crypto.js';
import { LengthPrefixReader } from '../../daemon/links/framing.js';
import { AcceptorHandshake, DialerHandshake, MAX_CHALLENGES } from '../../daemon/links/handshake.js';
import { REPLAY_WINDOW, ReplayWindow } from '../../daemon/links/replay.js';
import type { Channel } from '../../daemon/links/channel.js';
import { Link } from '../../daemon/links/link.js';
import { Session, sessionImpl, type SessionImpl } from '../../daemon/links/session.js';
import { DATA, HEADER_BYTES, SEQ_LIMIT, TAG_BYTES, decodeHello, encodeHello, type Hello } from '../../daemon/links/wire.js';

const KEY = randomBytes(32);

function handshake(dialerKey = KEY, acceptorKey = KEY, mode: 'encrypt' | 'auth-only' = 'encrypt') {
  const dialer = new DialerHandshake(dialerKey, { self: 'h1', peer: 'proxy', proto: 'tcp', mode });
  const hello = decodeHello(dialer.hello)!;
  const acceptor = new AcceptorHandshake(dialer.hello, hello, acceptorKey);
  return { dialer, acceptor, hello };
}

function sessions(mode: 'encrypt' | 'auth-only', ordering: 'strict' | 'window', headroom = 0, impl: SessionImpl = sessionImpl()) {
  const { dialer, acceptor } = handshake(KEY, KEY, mode);
  const proof = dialer.answer(acceptor.challenge)!;
  const v = acceptor.verify(proof);
  if (!v.ok) throw new Error('handshake failed');
  const f = dialer.finish(v.accept);
  if (!f.ok) throw new Error('finish failed');
  return {
    d: new Session(f.keys, 'dialer', mode, 0, ordering, impl),
    a: new Session(v.keys, 'acceptor', mode, headroom, ordering, impl),
  };
}

describe('handshake', () => {
  test('both ends derive the same keys, one per direction', () => {
    const { dialer, acceptor } = handshake();
    const v = acceptor.verify(dialer.answer(acceptor.challenge)!);
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    const f = dialer.finish(v.accept);
    expect(f.ok).toBe(true);
    if (!f.ok) return;
    expect(f.keys.d2a.equals(v.keys.d2a)).toBe(true);
    expect(f.keys.a2d.equals(v.keys.a2d)).toBe(true);
    expect(f.keys.d2a.equals(f.keys.a2d)).toBe(false);
  });

  test('a wrong key fails at the acceptor, which reveals nothing first', () => {
    const { dialer, acceptor } = handshake(KEY, randomBytes(32));
    expect(acceptor.verify(dialer.answer(acceptor.challenge)!)).toEqual({ ok: false, reason: 'auth' });
  });

  test('an acceptor without the key cannot fake its ACCEPT', () => {
    const { dialer, acceptor } = handshake();
    dialer.answer(acceptor.challenge);
    expect(dialer.finish(Buffer.concat([Buffer.from([0x04]), randomBytes(32)]))).toEqual({ ok: false, reason: 'auth' });
    expect(dialer.finish(Buffer.from([0x04]))).toEqual({ ok: false, reason: 'malformed' });
  });

  test('a recorded PROOF is useless against a fresh CHALLENGE', () => {
    const { dialer, acceptor, hello } = handshake();
    const recorded = dialer.answer(acceptor.challenge)!;
    expect(acceptor.verify(recorded).ok).toBe(true);
    const again = new AcceptorHandshake(dialer.hello, hello, KEY);
    expect(again.verify(recorded)).toEqual({ ok: false, reason: 'auth' });
  });

  test('a recorded ACCEPT is useless to a dialer with a fresh nonce', () => {
    const first = handshake();
    const v = first.acceptor.verify(first.dialer.answer(first.acceptor.challenge)!);
    if (!v.ok) throw new Error('handshake failed');
    const second = new DialerHandshake(KEY, { self: 'h1', peer: 'proxy', proto: 'tcp', mode: 'encrypt' });
    second.answer(first.acceptor.challenge);
    expect(second.finish(v.accept)).toEqual({ ok: false, reason: 'auth' });
  });

  test('the HELLO is bound: a downgrade to auth-only in transit breaks the proof', () => {
    const dialer = new DialerHandshake(KEY, { self: 'h1', peer: 'proxy', proto: 'tcp', mode: 'encrypt' });
    const tampered = Buffer.from(dialer.hello);
    tampered[2] = tampered[2]! | 0x02;
    const acceptor = new AcceptorHandshake(tampered, decodeHello(tampered)!, KEY);
    expect(acceptor.verify(dialer.answer(acceptor.challenge)!)).toEqual({ ok: false, reason: 'auth' });
  });

  test('a retransmitted CHALLENGE gets the same PROOF', () => {
    const { dialer, acceptor } = handshake();
    const p1 = dialer.answer(acceptor.challenge)!;
    expect(dialer.answer(Buffer.from(acceptor.challenge))!.equals(p1)).toBe(true);
  });

  test('a forged CHALLENGE ahead of the real one: each gets its PROOF, and the real ACCEPT completes', () => {
    const { dialer, acceptor } = handshake();
    const forged = Buffer.concat([Buffer.from([0x02]), randomBytes(32)]);
    const toForger = dialer.answer(forged)!;
    const toAcceptor = dialer.answer(acceptor.challenge)!;
    expect(toForger.equals(toAcceptor)).toBe(false);
    expect(acceptor.verify(toForger)).toEqual({ ok: false, reason: 'auth' });
    const v = acceptor.verify(toAcceptor);
    if (!v.ok) throw new Error('the real PROOF failed');
    const f = dialer.finish(v.accept);
    expect(f).toEqual({ ok: true, keys: v.keys });
  });

  test(`a dial answers at most ${MAX_CHALLENGES} distinct CHALLENGEs; a bogus ACCEPT fails them all`, () => {
    const { dialer } = handshake();
    const challenges = Array.from({ length: MAX_CHALLENGES + 1 }, () => Buffer.concat([Buffer.from([0x02]), randomBytes(32)]));
    expect(challenges.map((c) => dialer.answer(c) !== null)).toEqual([...Array<boolean>(MAX_CHALLENGES).fill(true), false]);
    expect(dialer.finish(Buffer.concat([Buffer.from([0x04]), randomBytes(32)]))).toEqual({ ok: false, reason: 'auth' });
  });

  test('HELLO decoding is strict', () => {
    const h: Hello = { proto: 'udp', mode: 'auth-only', nonce: randomBytes(32), from: 'h1.example', to: 'proxy' };
    const bytes = encodeHello(h);
    expect(decodeHello(bytes)).toEqual(h);
    expect(decodeHello(Buffer.concat([bytes, Buffer.from([0])]))).toBeNull();
    expect(decodeHello(bytes.subarray(0, bytes.length - 1))).toBeNull();
    const version = Buffer.from(bytes);
    for (const v of [1, 3]) {
      version[1] = v;
      expect(decodeHello(version)).toBeNull();
    }
    const flags = Buffer.from(bytes);
    flags[2] = 0x80;
    expect(decodeHello(flags)).toBeNull();
    expect(decodeHello(encodeHello({ ...h, from: '-bad' }))).toBeNull();
    expect(decodeHello(randomBytes(100))).toBeNull();
    expect(decodeHello(Buffer.alloc(0))).toBeNull();
  });
});

describe('session records', () => {
  const frame = Buffer.from('00505600000100505600000208004500 an ethernet frame, more or less');

  test.each(['encrypt', 'auth-only'] as const)('%s: frames cross both ways', (mode) => {
    const { d, a } = sessions(mode, 'strict');
    for (let i = 0; i < 3; i++) {
      const r = a.open(d.seal(DATA, frame)!);
      expect(r).toEqual({ ok: true, type: DATA, payload: frame });
      expect(d.open(a.seal(DATA, frame)!)).toEqual({ ok: true, type: DATA, payload: frame });
    }
  });

  test('encrypt hides the frame, auth-only shows it; both authenticate it', () => {
    const enc = sessions('encrypt', 'strict');
    const clear = sessions('auth-only', 'strict');
    const r1 = enc.d.seal(DATA, frame)!;
    const r2 = clear.d.seal(DATA, frame)!;
    expect(r1.includes(frame)).toBe(false);
    expect(r2.subarray(HEADER_BYTES, HEADER_BYTES + frame.length).equals(frame)).toBe(true);
    for (const [s, r] of [
      [enc.a, r1],
      [clear.a, r2],
    ] as const) {
      const bad = Buffer.from(r);
      bad[HEADER_BYTES + 3] = bad[HEADER_BYTES + 3]! ^ 1;
      expect(s.open(bad)).toEqual({ ok: false, reason: 'auth' });
    }
  });

  test('a flipped type byte or tag fails', () => {
    const { d, a } = sessions('encrypt', 'window');
    const r = d.seal(DATA, frame)!;
    const typed = Buffer.from(r);
    typed[0] = 0x11;
    expect(a.open(typed)).toEqual({ ok: false, reason: 'auth' });
    const tagged = Buffer.from(r);
    tagged[tagged.length - 1] = tagged[tagged.length - 1]! ^ 0x80;
    expect(a.open(tagged)).toEqual({ ok: false, reason: 'auth' });
    expect(a.open(r).ok).toBe(true);
  });

  test('sequence numbers only grow, so no nonce is used twice', () => {
    const { d } = sessions('encrypt', 'strict');
    const seqs = [0, 1, 2].map(() => d.seal(DATA, frame)!.readUInt32BE(5));
    expect(seqs).toEqual([0, 1, 2]);
    const [x, y] = [d.seal(DATA, frame)!, d.seal(DATA, frame)!];
    expect(x.subarray(HEADER_BYTES).equals(y.subarray(HEADER_BYTES))).toBe(false);
  });

  test('a record cannot be reflected back to its sender', () => {
    const { d } = sessions('encrypt', 'window');
    expect(d.open(d.seal(DATA, frame)!)).toEqual({ ok: false, reason: 'auth' });
  });

  test('strict ordering (TCP) refuses a replay and a gap', () => {
    const { d, a } = sessions('encrypt', 'strict');
    const r0 = d.seal(DATA, frame)!;
    d.seal(DATA, frame);
    const r2 = d.seal(DATA, frame)!;
    // Copies, as a replay arrives: opening deciphers a record in place.
    expect(a.open(Buffer.from(r0)).ok).toBe(true);
    expect(a.open(Buffer.from(r0))).toEqual({ ok: false, reason: 'replay' });
    expect(a.open(r2)).toEqual({ ok: false, reason: 'replay' });
  });

  test('window ordering (UDP) takes reordering once and refuses duplicates', () => {
    const { d, a } = sessions('auth-only', 'window');
    const rs = [0, 1, 2, 3].map(() => d.seal(DATA, frame)!);
    for (const i of [2, 0, 3, 1]) expect(a.open(rs[i]!).ok).toBe(true);
    for (const r of rs) expect(a.open(r)).toEqual({ ok: false, reason: 'replay' });
  });

  test.each(sessionImpl() === 'native' ? ['node', 'native'] as const : ['node'] as const)(
    '%s: a stray record with the session\'s tag and a number already seen is a forgery, not a replay',
    (impl) => {
      for (const ordering of ['window', 'strict'] as const) {
        const { d, a } = sessions('encrypt', ordering, 0, impl);
        const r = d.seal(DATA, frame)!;
        expect(a.open(Buffer.from(r)).ok).toBe(true);
        // Its header (type, tag, number) as sent; anything after it made up.
        const stray = Buffer.from(r).fill(0x5a, HEADER_BYTES);
        expect(a.open(stray)).toEqual({ ok: false, reason: 'auth' });
        expect(a.open(Buffer.from(r))).toEqual({ ok: false, reason: 'replay' });
      }
    },
  );

  test('a forged record does not move the window', () => {
    const { d, a } = sessions('encrypt', 'window');
    const r = d.seal(DATA, frame)!;
    const forged = Buffer.from(r);
    forged.writeUInt32BE(5000, 5);
    expect(a.open(forged)).toEqual({ ok: false, reason: 'auth' });
    expect(a.open(r).ok).toBe(true);
  });

  test('short records are malformed, not a crash', () => {
    const { a } = sessions('encrypt', 'window');
    expect(a.open(Buffer.alloc(HEADER_BYTES + TAG_BYTES - 1))).toEqual({ ok: false, reason: 'malformed' });
    expect(a.open(Buffer.alloc(0))).toEqual({ ok: false, reason: 'malformed' });
  });

  test('a spent sequence space refuses to seal rather than wrap', () => {
    const s = new Sealer(randomBytes(32), true, 0, 0);
    (s as unknown as { seq: number }).seq = SEQ_LIMIT;
    expect(sealCopy(s, DATA, frame)).toBeNull();
  });

  test('session keys depend on the transcript', () => {
    const t1 = randomBytes(32);
    const t2 = randomBytes(32);
    expect(sessionKeys(KEY, t1).d2a.equals(sessionKeys(KEY, t2).d2a)).toBe(false);
  });
});

describe('replay window', () => {
  test('accepts each number once, in any order, within the window', () => {
    const w = new ReplayWindow();
    for (const s of [5, 3, 4, 0, 10]) {
      expect(w.check(s)).toBe(true);
      w.mark(s);
      expect(w.check(s)).toBe(false);
    }
    expect(w.check(1)).toBe(true);
  });

  test('refuses what fell behind the window, and clears what a jump skipped', () => {
    const w = new ReplayWindow();
    w.mark(0);
    w.mark(REPLAY_WINDOW + 10);
    expect(w.check(10)).toBe(false);
    expect(w.check(11)).toBe(true);
    w.mark(10 * REPLAY_WINDOW);
    expect(w.check(10 * REPLAY_WINDOW - 1)).toBe(true);
    expect(w.check(REPLAY_WINDOW + 10)).toBe(false);
    expect(w.check(-1)).toBe(false);
  });

  test('a slot reused after the window moves on is fresh', () => {
    const w = new ReplayWindow();
    for (let s = 0; s < 3 * REPLAY_WINDOW; s++) {
      expect(w.check(s)).toBe(true);
      w.mark(s);
    }
    expect(w.check(3 * REPLAY_WINDOW - 1)).toBe(false);
    expect(w.check(2 * REPLAY_WINDOW)).toBe(false);
  });
});

describe('length-prefixed framing', () => {
  const rec = (s: string): Buffer => {
    const b = Buffer.from(s);
    const out = Buffer.alloc(4 + b.length);
    out.writeUInt32BE(b.length);
    b.copy(out, 4);
    return out;
  };

  test('records split anywhere, even byte by byte, come out whole', () => {
    const stream = Buffer.concat([rec('one'), rec('two two'), rec('x'.repeat(1000))]);
    const out: string[] = [];
    const r = new LengthPrefixReader(2000);
    for (let i = 0; i < stream.length; i++) expect(r.push(stream.subarray(i, i + 1), (b) => out.push(b.toString()))).toBeNull();
    expect(out).toEqual(['one', 'two two', 'x'.repeat(1000)]);
    out.length = 0;
    expect(r.push(stream, (b) => out.push(b.toString()))).toBeNull();
    expect(out).toHaveLength(3);
  });

  test('a 10 MB length is refused before any of it is buffered', () => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(10 * 1024 * 1024);
    expect(new LengthPrefixReader(70_000).push(head, () => {})).toBe('oversize');
    expect(new LengthPrefixReader(70_000).push(Buffer.alloc(4), () => {})).toBe('empty');
  });

  test('the bound can rise between records, and a stop is honoured mid-chunk', () => {
    const r = new LengthPrefixReader(3);
    const got: string[] = [];
    expect(
      r.push(Buffer.concat([rec('abc'), rec('longer')]), (b) => {
        got.push(b.toString());
        r.max = 100;
      }),
    ).toBeNull();
    expect(got).toEqual(['abc', 'longer']);
    const s = new LengthPrefixReader(100);
    const seen: string[] = [];
    s.push(Buffer.concat([rec('a'), rec('b')]), (b) => {
      seen.push(b.toString());
      s.stopped = true;
    });
    expect(seen).toEqual(['a']);
  });
});

describe('backoff and addresses', () => {
  const o = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 };

  test('grows, caps, and jitters only downwards', () => {
    expect([0, 1, 2, 3, 4, 10].map((n) => backoffDelay(n, o, () => 0))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(backoffDelay(1, o, () => 1)).toBe(100);
    expect(backoffDelay(1000, o, () => 0)).toBe(1000);
  });

  test('host:port forms', () => {
    expect(parseHostPort('127.0.0.1:5000')).toEqual({ host: '127.0.0.1', port: 5000 });
    expect(parseHostPort('proxy.example:1')).toEqual({ host: 'proxy.example', port: 1 });
    expect(parseHostPort('[::1]:5000')).toEqual({ host: '::1', port: 5000 });
    for (const bad of ['::1:5000', 'host', 'host:0', 'host:70000', '[nothex]:5', ':5', 'a b:5']) expect(parseHostPort(bad)).toBeNull();
    expect(addressKey('::ffff:10.0.0.1', 7)).toBe('10.0.0.1:7');
    expect(addressKey('::1', 7)).toBe('[::1]:7');
  });

  test('pending handshakes are counted per IPv4 address, and per IPv6 /64 however it is spelt', () => {
    expect(sourceOf('10.0.0.1')).toBe('10.0.0.1');
    expect(sourceOf('::ffff:10.0.0.1')).toBe('10.0.0.1');
    const prefix = '2001:db8:0:1::/64';
    for (const ip of ['2001:db8:0:1::1', '2001:0db8:0000:0001:ffff:ffff:ffff:ffff', '2001:db8:0:1:0:0:10.0.0.1', '2001:db8::1:0:0:0:1', '2001:db8:0:1::1%eth0']) {
      expect(sourceOf(ip)).toBe(prefix);
    }
    expect(sourceOf('2001:db8:0:2::1')).toBe('2001:db8:0:2::/64');
    expect(sourceOf('::1')).toBe('0:0:0:0::/64');
    expect(sourceOf('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  });
});

describe('a link on a stub transport', () => {
  function stubLink(batching: boolean, headroom = 0) {
    const { d, a } = sessions('encrypt', batching ? 'strict' : 'window', headroom);
    const events: string[] = [];
    const frames: Buffer[] = [];
    const link = new Link(
      { peer: 'p', proto: batching ? 'tcp' : 'udp', dial: false, key: KEY, mode: 'encrypt' },
      {
        frame: (_peer, f) => frames.push(f),
        report: (_peer, p) => events.push(`report ${p.length}`),
        up: () => events.push('up'),
        down: (_peer, reason) => events.push(`down: ${reason}`),
        path: (_peer, session) => events.push(session ? 'path' : 'no path'),
        redial: () => {},
        log: () => {},
      },
      { keepaliveMs: 60_000, deadMs: 180_000, backoff: { initialMs: 1, maxMs: 1, factor: 2, jitter: 0 } },
    );
    const written: Buffer[] = [];
    const channel: Channel = {
      remote: 'stub',
      headroom,
      maxFrame: 1000,
      batching,
      onRecord: () => false,
      onClose: () => {},
      congested: () => false,
      write: (r) => written.push(r),
      close: (farewell) => {
        if (farewell) written.push(farewell);
      },
    };
    link.attach(a, channel);
    return { link, peer: d, channel, events, frames, written };
  }

  test('a batch whose entries do not fill it exactly is rejected and ends the session', () => {
    const t = stubLink(true);
    const bad = Buffer.from([0, 5, 1, 2, 3]);
    t.channel.onRecord(t.peer.seal(DATA, bad)!);
    expect(t.frames).toEqual([]);
    expect(t.link.stats()).toMatchObject({ rejected: 1, state: 'down', lastError: 'malformed frame batch from the peer' });
    expect(t.events).toEqual(['path', 'up', 'no path', 'down: malformed frame batch from the peer']);
  });

  test('a good batch delivers every frame, an empty frame included', () => {
    const t = stubLink(true);
    const batch = Buffer.from([0, 2, 0xaa, 0xbb, 0, 0, 0, 1, 0xcc]);
    t.channel.onRecord(t.peer.seal(DATA, batch)!);
    expect(t.frames.map((f) => f.toString('hex'))).toEqual(['aabb', '', 'cc']);
    t.link.shutdown();
  });

  test('batches built in place across turns: every frame arrives whole and in order, and no record is written over by the next', async () => {
    const HEADROOM = 4;
    const t = stubLink(true, HEADROOM);
    const sent: Buffer[] = [];
    const send = (n: number, size: number) => {
      for (let i = 0; i < n; i++) {
        const f = randomBytes(size);
        sent.push(f);
        expect(t.link.send(f)).toBe(true);
      }
    };
    const turn = () => new Promise((r) => setImmediate(r));
    // Small, then a burst that outgrows the first batch buffer and then a whole record, then small again.
    send(3, 60);
    await turn();
    send(80, 1000);
    await turn();
    send(1, 1000);
    await turn();
    const received: Buffer[] = [];
    for (const w of t.written) {
      const r = t.peer.open(w.subarray(HEADROOM));
      if (!r.ok || r.type !== DATA) continue;
      for (let o = 0; o < r.payload.length; ) {
        const len = r.payload.readUInt16BE(o);
        received.push(r.payload.subarray(o + 2, o + 2 + len));
        o += 2 + len;
      }
    }
    expect(received.length).toBe(sent.length);
    expect(received.every((f, i) => f.equals(sent[i]!))).toBe(true);
    t.link.shutdown();
  });

  test('frames too large for the transport are dropped, and a CLOSE is sent on shutdown', () => {
    const t = stubLink(false);
    expect(t.link.send(Buffer.alloc(1001))).toBe(false);
    expect(t.link.send(Buffer.alloc(1000))).toBe(true);
    t.link.shutdown();
    const types = t.written.map((r) => t.peer.open(r)).map((r) => (r.ok ? r.type : r.reason));
    expect(types).toEqual([0x11, DATA, 0x13]);
    expect(t.link.stats()).toMatchObject({ dropped: 1, txFrames: 1, state: 'down' });
  });
});
