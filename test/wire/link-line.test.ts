import { formatLinkLine, parseLinkLine } from '../../src/wire/control.js';

test('a LINKS? line reads back into the link as configured, its state, RTT and counters', () => {
  const s = parseLinkLine('host1 UDP DIAL 127.0.0.2:5000 AUTH-ONLY up rtt-ms=0.512 tx=3/180 rx=4/240 auth-failures=1 reconnects=2 moves=1 dropped=5 rejected=6 replayed=7');
  expect(s).toEqual({
    link: { peer: 'host1', proto: 'udp', dial: true, address: '127.0.0.2:5000', mode: 'auth-only' },
    state: 'up',
    rttMs: 0.512,
    counters: { 'tx-frames': 3, 'tx-bytes': 180, 'rx-frames': 4, 'rx-bytes': 240, 'auth-failures': 1, reconnects: 2, moves: 1, dropped: 5, rejected: 6, replayed: 7 },
  });
  expect(parseLinkLine('proxy TCP ACCEPT - ENCRYPT connecting rtt-ms=-')).toMatchObject({ link: { address: undefined, dial: false }, rttMs: undefined });
  expect(() => parseLinkLine('proxy TCP ACCEPT - ENCRYPT sideways')).toThrow("'sideways' is not a link state");
  expect(() => parseLinkLine('proxy SCTP ACCEPT - ENCRYPT up')).toThrow('expected TCP or UDP');
});

test('the daemon\'s formatter and the reader are inverses', () => {
  for (const line of [
    'host1 UDP DIAL 127.0.0.2:5000 AUTH-ONLY up rtt-ms=0.512 tx=3/180 rx=4/240 auth-failures=1 reconnects=2 moves=1 dropped=5 rejected=6 replayed=7',
    'proxy TCP ACCEPT - ENCRYPT down rtt-ms=- tx=0/0 rx=0/0 auth-failures=0 reconnects=0 moves=0 dropped=0 rejected=0 replayed=0',
    'h2 TCP DIAL 10.0.0.2:5000 ENCRYPT up rtt-ms=1.000 tx=9/900 rx=8/800 auth-failures=0 reconnects=0 moves=0 dropped=0 rejected=0 replayed=0 capture-frames=17 capture-dropped=3 capture-errors=0',
  ]) {
    expect(formatLinkLine(parseLinkLine(line))).toBe(line);
  }
});

test('a captured link\'s line says how much of it its capture file holds, apart from the link\'s own counters', () => {
  const s = parseLinkLine('h2 TCP DIAL 10.0.0.2:5000 ENCRYPT up rtt-ms=1.000 tx=9/900 rx=8/800 dropped=0 capture-frames=17 capture-dropped=3 capture-errors=1');
  expect(s.capture).toEqual({ frames: 17, dropped: 3, errors: 1 });
  expect(s.counters).toEqual({ 'tx-frames': 9, 'tx-bytes': 900, 'rx-frames': 8, 'rx-bytes': 800, dropped: 0 });
  expect(parseLinkLine('h2 TCP DIAL 10.0.0.2:5000 ENCRYPT up rtt-ms=-').capture).toBeUndefined();
});

test('a LINKS? line from a daemon gone wrong is refused, not read as NaN or an RTT that would swamp every sum', () => {
  const line = (tail: string) => `h2 TCP DIAL 10.0.0.2:5000 ENCRYPT up ${tail}`;
  expect(() => parseLinkLine(line('rtt-ms=abc'))).toThrow("rtt-ms=abc is not a round trip in milliseconds");
  expect(() => parseLinkLine(line(`rtt-ms=1${'0'.repeat(308)}`))).toThrow(/^rtt-ms=1000.* is not a round trip in milliseconds$/);
  expect(() => parseLinkLine(line('rtt-ms=-1'))).toThrow('is not a round trip');
  expect(() => parseLinkLine(line('rtt-ms=Infinity'))).toThrow('is not a round trip');
  expect(() => parseLinkLine(line('rtt-ms=- tx=x/1'))).toThrow("tx=x/1 is not a count");
  expect(() => parseLinkLine(line('rtt-ms=- dropped=1e400'))).toThrow("dropped=1e400 is not a count");
  expect(() => parseLinkLine(line('rtt-ms=- dropped='))).toThrow("dropped= is not a count");
  expect(parseLinkLine(line('rtt-ms=999999999.999')).rttMs).toBe(999999999.999);
});
