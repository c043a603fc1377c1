import { Mailbox, runRank, summarize, type BspOptions, type MessageSender } from '../../src/patterns/bsp.js';
import { fragmentCount, fragmentData, HEADER_BYTES, KIND_FRAGMENT, readHeader, writeHeader, type Fragment } from '../../src/patterns/message.js';
import { pattern, type Kind } from '../../src/patterns/topology.js';

/** Ranks in one process, fragments carried by setImmediate; `deliver` may drop or delay each one. */
function memoryNet(n: number, room: number, deliver: (f: Fragment, put: () => void) => void = (_f, put) => setImmediate(put)) {
  const run = 7;
  const mailboxes = Array.from({ length: n }, (_, r) => new Mailbox(r, run));
  const senders: MessageSender[] = mailboxes.map((mb) => ({
    async send(to, iteration, size) {
      const count = fragmentCount(size, room);
      for (let index = 0; index < count; index++) {
        // Through the real codec, as a transport would.
        const buf = Buffer.alloc(HEADER_BYTES + fragmentData(size, room, index));
        writeHeader(buf, 0, { kind: KIND_FRAGMENT, run, src: mb.rank, dst: to, iteration, index, count, size });
        const f = readHeader(buf, 0)!;
        deliver(f, () => mailboxes[to]!.fragment(f));
      }
    },
  }));
  return { mailboxes, senders };
}

type Deliver = (f: Fragment, put: () => void) => void;

/** `quickToGiveUp` ranks wait 200 ms for a message, the others long enough never to give up (so one loss does not spread). */
async function runAll(kind: Kind, n: number, opts: Partial<BspOptions> & { deliver?: (net: ReturnType<typeof memoryNet>) => Deliver; quickToGiveUp?: number[] } = {}) {
  const p = pattern(kind, n);
  let net: ReturnType<typeof memoryNet> | undefined;
  net = memoryNet(n, 1000, opts.deliver ? (f, put) => opts.deliver!(net!)(f, put) : undefined);
  const o: BspOptions = { iterations: 20, size: 4500, compute: { ms: 0 }, computeMode: 'sleep', timeoutMs: 5000, ...opts };
  const results = await Promise.all(
    net.mailboxes.map((mb, r) => runRank(p.script[r]!, mb, net.senders[r]!, { ...o, ...(opts.quickToGiveUp?.includes(r) ? { timeoutMs: 200 } : {}) })),
  );
  return summarize(kind, results);
}

describe('the BSP loop over an in-memory network', () => {
  test.each(['ring', 'all-to-all', 'bus', 'reduction', 'hypercube'] as Kind[])('%s of 8: every message of every iteration arrives, in fragments', async (kind) => {
    const r = await runAll(kind, 8);
    const edges = pattern(kind, 8).edges.length;
    expect(r).toMatchObject({ topology: kind, vms: 8, iterations: 20, lost: 0, late: 0 });
    expect(r.messagesSent).toBe(2 * edges * 20);
    expect(r.messagesReceived).toBe(r.messagesSent);
    expect(r.iterationsPerS).toBeGreaterThan(0);
  });

  test('a lost fragment costs the receiver one iteration, and the run goes on to the end', async () => {
    let dropped = 0;
    const r = await runAll('ring', 4, {
      quickToGiveUp: [2],
      deliver: () => (f, put) => {
        // Rank 1's message to rank 2 in iteration 3 loses its second of five fragments.
        if (f.src === 1 && f.dst === 2 && f.iteration === 3 && f.index === 1) dropped++;
        else setImmediate(put);
      },
    });
    expect(dropped).toBe(1);
    expect(r.iterations).toBe(20);
    expect(r.ranks.map((x) => x.lost)).toEqual([0, 0, 1, 0]);
    expect(r.messagesReceived).toBe(r.messagesSent - 1);
  });

  test('a message that arrives after its iteration was given up is counted late, not taken for a later one', async () => {
    // Rank 0's message to rank 1 in iteration 2 is held until rank 1 has given that iteration up.
    const r = await runAll('ring', 4, {
      quickToGiveUp: [1],
      deliver: (net) => {
        const held = (put: () => void): unknown => (net.mailboxes[1]!.current >= 3 ? put() : setImmediate(() => held(put)));
        return (f, put) => (f.src === 0 && f.dst === 1 && f.iteration === 2 ? held(put) : setImmediate(put));
      },
    });
    expect(r.ranks.map((x) => [x.lost, x.late])).toEqual([[0, 0], [1, 1], [0, 0], [0, 0]]);
    expect(r.messagesReceived).toBe(r.messagesSent);
  });

  test('a busy compute phase takes the CPU for at least the asked time; ratio 0 computes nothing', async () => {
    const busy = await runAll('ring', 2, { iterations: 5, compute: { ms: 4 }, computeMode: 'busy' });
    expect(busy.ranks.every((x) => x.computeMs >= 5 * 4)).toBe(true);
    const none = await runAll('ring', 2, { iterations: 5, compute: { ratio: 0 } });
    expect(none.computeS).toBe(0);
  });

  test('an abort signal ends the run after the current iteration', async () => {
    const ac = new AbortController();
    let seen = 0;
    const r = await runAll('ring', 4, {
      iterations: 1_000_000,
      signal: ac.signal,
      deliver: () => (_f, put) => {
        if (++seen === 200) ac.abort();
        setImmediate(put);
      },
    });
    expect(r.iterations).toBeLessThan(1_000_000);
    expect(r.iterations).toBeGreaterThan(0);
  });

  test('an abort cuts a waiting compute phase short, and the run ends in it: no message is sent for that iteration', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    // Ten minutes of compute: that the test ends within jest's timeout shows the phase was cut, with no timing assertion.
    const r = await runAll('ring', 4, { iterations: 5, compute: { ms: 600_000 }, signal: ac.signal });
    expect(r).toMatchObject({ iterations: 1, messagesSent: 0, lost: 0 });
  });
});

describe('the mailbox', () => {
  const frag = (index: number, count: number, iteration = 0, src = 1): Fragment => ({ kind: KIND_FRAGMENT, run: 1, src, dst: 0, iteration, index, count, size: 10 });

  test('assembles fragments in any order, once, and ignores duplicates', async () => {
    const mb = new Mailbox(0, 1);
    for (const i of [2, 0, 2, 1]) mb.fragment(frag(i, 3));
    expect(mb.received).toBe(1);
    mb.fragment(frag(0, 3)); // a duplicate of a finished message
    expect(mb.received).toBe(1);
    expect(await mb.take(0, [1], performance.now() + 10)).toBe(true);
    expect(await mb.take(0, [1], performance.now() + 10)).toBe(false);
  });

  test('keeps a message for a later iteration until the rank gets there; what is behind is late or dropped', async () => {
    const mb = new Mailbox(0, 1);
    mb.fragment(frag(0, 1, 5)); // from the future
    mb.fragment(frag(0, 2, 1, 2)); // half of iteration 1's message from rank 2
    mb.advance(4);
    expect(await mb.take(5, [1], performance.now() + 10)).toBe(true);
    mb.fragment(frag(1, 2, 1, 2)); // its other half: the first was dropped with iteration 1, so it never completes
    expect(mb.received).toBe(1);
    mb.fragment(frag(0, 1, 3)); // a whole message one iteration behind
    expect([mb.received, mb.late]).toEqual([2, 1]);
    expect(await mb.take(3, [1], performance.now() + 10)).toBe(false);
  });
});

describe('the header codec', () => {
  test('round-trips and refuses what is not a header', () => {
    const f: Fragment = { kind: KIND_FRAGMENT, run: 0xfffffffe, src: 65535, dst: 3, iteration: 123456, index: 4, count: 5, size: 99999 };
    const buf = Buffer.alloc(HEADER_BYTES + 2);
    writeHeader(buf, 2, f);
    expect(readHeader(buf, 2)).toEqual(f);
    expect(readHeader(buf.subarray(0, HEADER_BYTES), 2)).toBeNull(); // short
    const bad = Buffer.from(buf);
    bad.writeUInt16BE(5, 2 + 14); // index 5 of 5
    expect(readHeader(bad, 2)).toBeNull();
    bad.writeUInt8(9, 2 + 1); // another version
    expect(readHeader(bad, 2)).toBeNull();
  });

  test('a message is split into frames by the room each has', () => {
    expect(fragmentCount(0, 1000)).toBe(1);
    expect(fragmentCount(1000, 1000)).toBe(1);
    expect(fragmentCount(1001, 1000)).toBe(2);
    expect([0, 1, 2].map((i) => fragmentData(2500, 1000, i))).toEqual([1000, 1000, 500]);
  });
});
