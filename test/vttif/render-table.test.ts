import { Chalk } from 'chalk';
import { renderTable } from '../../src/vttif/render/table.js';
import { formatRate, intensityBar } from '../../src/vttif/render/units.js';
import type { Inference } from '../../src/vttif/types.js';
import { allToAll, mac, noData, ring, settling } from './fixtures.js';

/** Lines of the edge table: after the EDGE heading, up to the blank line. */
function edgeRows(text: string): string[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trimStart().startsWith('EDGE'));
  expect(start).toBeGreaterThan(0);
  const rows: string[] = [];
  for (const l of lines.slice(start + 1)) {
    if (l === '') break;
    rows.push(l);
  }
  return rows;
}

/** The VMs listed under VMS BY HOST, as host → MACs. */
function hostSection(text: string): Map<string, string[]> {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trim() === 'VMS BY HOST');
  expect(start).toBeGreaterThan(0);
  const out = new Map<string, string[]>();
  let host = '';
  for (const l of lines.slice(start + 1)) {
    const m = /^ {4}(\S*)\s+((?:[0-9a-f:]{17}\s*)+)$/.exec(l);
    if (!m) break;
    if (m[1]) host = m[1];
    out.set(host, [...(out.get(host) ?? []), ...m[2]!.trim().split(/\s+/)]);
  }
  return out;
}

describe('vttif table', () => {
  test('header: collector, state, parameters, changes, settle time; then freshness', () => {
    const [first, second] = renderTable(ring(8)).split('\n');
    expect(first).toBe('proxy  settled  ·  update 20 Hz, window 0.25 s, threshold 0.1  ·  3 changes, settled 1.3 s ago');
    expect(second).toBe('8 VMs on 4 hosts, 8 edges  ·  at 2026-11-24T21:00:06.250Z  ·  4 daemons reporting, oldest report 0.1 s (host1)');
  });

  test('edges strongest first, with intensity, a bar as long as the intensity, bytes/s and hosts', () => {
    const rows = edgeRows(renderTable(ring(8)));
    expect(rows).toHaveLength(8);
    expect(rows[0]).toBe(`  ${mac(0)} — ${mac(1)}  1.00 ██████████  2.00 MB/s  host1 (same host)`);
    expect(rows[1]).toBe(`  ${mac(0)} — ${mac(7)}  0.50 █████       1.00 MB/s  host1 — host4`);
    const intensities = rows.map((r) => Number(/ (\d\.\d\d) /.exec(r)![1]));
    expect([...intensities].sort((a, b) => b - a)).toEqual(intensities);
  });

  test('every VM appears once under its host', () => {
    const inf = allToAll(16);
    const section = hostSection(renderTable(inf));
    expect([...section.keys()]).toEqual(['host1', 'host2', 'host3', 'host4', 'host5', 'host6', 'host7', 'host8']);
    const listed = [...section.values()].flat();
    expect(listed.sort()).toEqual(Array.from({ length: 16 }, (_, i) => mac(i)));
    for (const [host, vms] of section) for (const vm of vms) expect(inf.hosts[vm]).toBe(host);
    expect(edgeRows(renderTable(inf))).toHaveLength(120);
  });

  test('settling: the settled edges, then what is appearing and disappearing', () => {
    const inf = settling(8);
    const text = renderTable(inf);
    expect(text.split('\n')[0]).toContain('  settling  ·');
    const rows = edgeRows(text);
    const appearing = rows.filter((r) => r.startsWith('  + '));
    const disappearing = rows.filter((r) => r.startsWith('  - '));
    // The ring 0-1-…-7-0 becoming a star around 0: 0-1 and 0-7 stay, 0-2..0-6 appear, the other six ring edges go.
    expect(appearing.map((r) => r.slice(4, 41))).toEqual([2, 3, 4, 5, 6].map((i) => `${mac(0)} — ${mac(i)}`));
    expect(appearing.every((r) => r.endsWith('appearing') && r.includes(' 600 kB/s'))).toBe(true);
    expect(disappearing).toHaveLength(6);
    expect(disappearing.every((r) => r.endsWith('disappearing'))).toBe(true);
    expect(rows.filter((r) => r.startsWith('    '))).toHaveLength(8);
    expect(text).toContain('Settling: the window shows the + and - changes');
  });

  test('settled and idle inferences show no pending changes, even when the window is empty', () => {
    const idle: Inference = { ...ring(4), state: 'idle', matrix: [], current: { vms: [], edges: [] } };
    const text = renderTable(idle);
    expect(text).toContain('No traffic in the window: the last settled topology stands');
    expect(edgeRows(text).every((r) => !/^ {2}[+-] /.test(r))).toBe(true);
    expect(text).not.toContain('Settling');
  });

  test('no-data: says so and what to check, no table', () => {
    const text = renderTable(noData());
    expect(text.split('\n')[0]).toBe('proxy  no-data  ·  update 5 Hz, window 1 s, threshold 0.05  ·  0 changes, never settled');
    expect(text).toContain('No traffic seen since the collector started');
    expect(text).toContain('Daemons report every 0.2 s');
    expect(text).not.toContain('EDGE');
  });

  test('colour only through the painter given; control characters never reach the terminal', () => {
    const hostile = ring(4, { collector: 'proxy\u001b[2J', hostName: (i) => `h${i}\u001b]0;owned\u0007\u202e` });
    const plainText = renderTable(hostile);
    expect(plainText).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/u);
    expect(plainText).toContain('proxy·[2J');
    const coloured = renderTable(ring(4), new Chalk({ level: 1 }));
    expect(coloured).toContain('\u001b[32msettled\u001b[39m');
    expect(coloured.replace(/\u001b\[\d+m/g, '')).toBe(renderTable(ring(4)));
  });
});

describe('vttif units', () => {
  test('bytes/s in decimal units, three significant digits, rounding across a unit', () => {
    expect([0, 0.5, 850, 999.4, 999.7, 12_345, 1_250_000, 3e9, 7.2e12].map(formatRate)).toEqual([
      '0 B/s', '0.50 B/s', '850 B/s', '999 B/s', '1.00 kB/s', '12.3 kB/s', '1.25 MB/s', '3.00 GB/s', '7.20 TB/s',
    ]);
    expect(formatRate(Number.NaN)).toBe('? B/s');
  });

  test('a bar is always as wide as asked, in eighths', () => {
    for (const x of [0, 0.01, 0.5, 0.55, 0.999, 1, 3, -1]) expect([...intensityBar(x, 10)]).toHaveLength(10);
    expect(intensityBar(0.55, 10)).toBe('█████▌    ');
    expect(intensityBar(1, 4)).toBe('████');
  });
});
