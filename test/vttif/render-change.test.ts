import { Chalk } from 'chalk';
import { changeLine } from '../../src/vttif/render/change.js';
import type { Inference } from '../../src/vttif/types.js';
import { ring, settling } from './fixtures.js';

/** The settling fixture once its star has settled. */
function star(): Inference {
  const s = settling(8);
  return { ...s, state: 'settled', topology: s.current, changes: 4, settledAt: '2026-11-24T21:00:07.500Z' };
}

describe('vttif change line', () => {
  test('the first topology seen', () => {
    expect(changeLine(null, ring(8))).toBe('2026-11-24T21:00:05.000Z  change 3: 8 VMs, 8 edges  first topology seen');
  });

  test('edges added and removed since the previous settled topology', () => {
    // Ring 0-1-…-7-0 to a star around 0: 0-2..0-6 appear, the six ring edges not touching 0 go.
    expect(changeLine(ring(8).topology, star())).toBe('2026-11-24T21:00:07.500Z  change 4: 8 VMs, 7 edges  +5 -6 edges');
    expect(changeLine(star().topology, ring(8))).toContain('+6 -5 edges');
  });

  test('same edges: says only the intensities moved', () => {
    const prev = ring(8).topology;
    const next = ring(8);
    next.topology = { ...next.topology, edges: next.topology.edges.map((e) => ({ ...e, intensity: e.intensity / 2 })) };
    expect(changeLine(prev, next)).toMatch(/same edges, new intensities$/);
  });

  test('without a settle time, the time of the reading; colour only through the painter', () => {
    expect(changeLine(null, { ...ring(4), settledAt: null }).startsWith('2026-11-24T21:00:06.250Z  ')).toBe(true);
    const coloured = changeLine(ring(8).topology, star(), new Chalk({ level: 1 }));
    expect(coloured).toContain('\u001b[32m+5\u001b[39m');
    expect(coloured.replace(/\u001b\[\d+m/g, '')).toBe(changeLine(ring(8).topology, star()));
  });
});
