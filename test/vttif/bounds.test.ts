import { VttifAgent } from '../../daemon/vttif/agent.js';
import { macToNumber } from '../../src/model/mac48.js';
import { DEFAULT_SETTINGS } from '../../src/vttif/params.js';
import { linkKey } from '../../src/model/state.js';
import { SlidingWindow } from '../../src/vttif/window.js';
import { decodeReport, encodeReport, MAX_REPORT_PAIRS, PAIR_FIELDS, type Report } from '../../src/wire/vttif-report.js';

/**
 * What a peer's reports cannot do to the collector, however they are made:
 * kill it (a pair that claims bytes but no frames), or grow it without bound
 * (more pairs in a round than a sampler counts, or more than the window holds).
 */

/** VM i's MAC, as the 48-bit number reports carry: 02:50:00:00:00:00 + i. */
const vm = (i: number): number => macToNumber('02:50:00:00:00:00') + i;

/** A report of the pairs [src, dst, bytes, frames]. */
function report(pairs: [number, number, number, number][]): Report {
  const a = new Float64Array(pairs.length * PAIR_FIELDS);
  pairs.forEach(([s, d, bytes, frames], i) => a.set([vm(s), vm(d), bytes, frames], i * PAIR_FIELDS));
  return { hosted: [], pairs: a };
}

/** The wire form of a report, with no check on the way out: what a buggy or hostile peer can send. */
function raw(pairs: [number, number, number, number][], round = 0): Buffer {
  return encodeReport(report(pairs), 1 << 20, round)[0]!;
}

test('a pair with bytes but no frames, or more bytes than its frames can hold, is a bad report, and the collector lives on', () => {
  expect(() => decodeReport(raw([[1, 2, 1000, 10], [1, 3, 5000, 0]]))).toThrow(/report pair 1: a pair with no frames/);
  expect(() => decodeReport(raw([[1, 2, 65535 * 3, 3], [1, 3, 65535 * 3 + 1, 3]]))).toThrow(/report pair 1: 196606 bytes in 3 frames, more than 65535 bytes a frame/);
  const logs: string[] = [];
  const agent = new VttifAgent({ machine: 'proxy', send: () => true, log: (l) => logs.push(l) });
  agent.configure({ ...DEFAULT_SETTINGS, collector: 'proxy', sampling: false });
  try {
    agent.received('evil', raw([[1, 2, 1000, 10], [1, 3, 5000, 0]]));
    agent.received('host1', raw([[1, 2, 1000, 10]]));
    // Reading the inference evaluates the window: with the zero-frame pair kept, this threw (a pair the window had already let go).
    expect(agent.inference()).toContain('pair 02:50:00:00:00:01 02:50:00:00:00:02 bytes-per-s=1000 frames-per-s=10');
    const status = [...agent.status()];
    expect(status).toContain('bad-reports 1');
    expect(status).toContain('reports-in 1');
    expect(logs).toEqual(['vttif: bad report from evil: report pair 1: a pair with no frames']);
  } finally {
    agent.stop();
  }
});

describe('the window is bounded', () => {
  const pairs = (n: number, from = 0): [number, number, number, number][] => Array.from({ length: n }, (_, i) => [from + i, from + i + 1, 100, 1]);

  test('a round carries at most what a sampler counts: a chunk past it is refused whole', () => {
    const w = new SlidingWindow(1000, 100);
    w.add('h1', report(pairs(MAX_REPORT_PAIRS - 1)), 7, 0);
    expect(() => w.add('h1', report(pairs(2, 70_000)), 7, 1)).toThrow(`round 7 carries more than ${MAX_REPORT_PAIRS} pairs, more than a daemon's sampler counts`);
    expect([...w.pairs()]).toHaveLength(MAX_REPORT_PAIRS - 1);
    // The next round starts afresh.
    w.add('h1', report(pairs(2, 70_000)), 8, 100);
    expect([...w.pairs()]).toHaveLength(MAX_REPORT_PAIRS + 1);
  });

  test('pair counts and distinct pairs, all daemons together; a refused chunk leaves the window as it was', () => {
    const w = new SlidingWindow(10_000, 100, { pairs: 10, distinct: 6 });
    w.add('h1', report(pairs(4)), 0, 0);
    w.add('h2', report(pairs(4)), 0, 0); // the same four pairs: counts 8, distinct 4
    expect(() => w.add('h3', report(pairs(3)), 0, 0)).toThrow('the window holds 8 pair counts and takes at most 10; shorten the window or lower the rate');
    expect(() => w.add('h3', report(pairs(2, 10)), 0, 0)).not.toThrow(); // counts 10, distinct 6
    w.expire(20_000); // every round gone: nothing held
    expect([...w.pairs()]).toEqual([]);
    w.add('h1', report(pairs(6)), 1, 20_000);
    expect(() => w.add('h2', report(pairs(1, 100)), 1, 20_000)).toThrow('the window holds 6 distinct VM pairs and takes at most 6');
    w.add('h2', report(pairs(2)), 1, 20_000); // pairs it already has
    expect([...w.pairs()].map((p) => p.frames)).toEqual([2, 2, 1, 1, 1, 1]);
  });

  test('empty chunks joining a round are not kept', () => {
    const w = new SlidingWindow(1000, 100, { pairs: 10, distinct: 10 });
    w.add('h1', report(pairs(1)), 3, 0);
    for (let i = 0; i < 1000; i++) w.add('h1', report([]), 3, 1);
    w.add('h1', report(pairs(9, 10)), 3, 2); // would not fit if the empties counted
    expect([...w.pairs()]).toHaveLength(10);
  });
});

test('names are shared, not lost: each direction is named right whichever came first, and the window keeps no name once its pairs have gone', () => {
  const w = new SlidingWindow(200, 100);
  const named = () => [...w.pairs()].map(({ src, dst, a, b, edge }) => ({ src, dst, a, b, edge }));
  const [one, two] = ['02:50:00:00:00:01', '02:50:00:00:00:02'];
  w.add('h2', report([[2, 1, 100, 1]]), 0, 0);
  w.add('h1', report([[1, 2, 100, 1]]), 0, 0);
  const edge = linkKey(one, two);
  expect(named()).toEqual([
    { src: two, dst: one, a: one, b: two, edge },
    { src: one, dst: two, a: one, b: two, edge },
  ]);
  // h2's direction leaves the window; h1's stays and keeps the edge's name, which it shared.
  w.add('h2', report([]), 1, 100);
  w.add('h2', report([]), 2, 200);
  expect(named()).toEqual([{ src: one, dst: two, a: one, b: two, edge }]);
  w.add('h1', report([]), 1, 100);
  w.add('h1', report([]), 2, 200);
  expect(named()).toEqual([]);
  // What names the pairs is counted per pair, so it empties with them rather than grow with every VM ever seen.
  expect((w as unknown as { macs: Map<number, unknown> }).macs.size).toBe(0);
});
