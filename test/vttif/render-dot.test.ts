import { penwidth, renderDot } from '../../src/vttif/render/dot.js';
import type { Inference } from '../../src/vttif/types.js';
import { runTool, toolMissing } from '../support/tools.js';
import { allToAll, mac, noData, ring, settling } from './fixtures.js';

const EDGE = /^ {2}"([^"]+)" -- "([^"]+)" \[penwidth=([\d.]+), label="([\d.]+)[^"]*"/;

function edges(dot: string) {
  return dot.split('\n').flatMap((l) => {
    const m = EDGE.exec(l);
    return m ? [{ a: m[1]!, b: m[2]!, penwidth: Number(m[3]), intensity: Number(m[4]), line: l }] : [];
  });
}

/** The same inference with every collection in another order. */
function shuffled(inf: Inference): Inference {
  const rev = <T>(xs: T[]) => [...xs].reverse();
  return {
    ...inf,
    topology: { vms: rev(inf.topology.vms), edges: rev(inf.topology.edges).map((e) => ({ ...e, a: e.b, b: e.a })) },
    current: { vms: rev(inf.current.vms), edges: rev(inf.current.edges) },
    matrix: rev(inf.matrix),
    hosts: Object.fromEntries(rev(Object.entries(inf.hosts))),
    reporters: Object.fromEntries(rev(Object.entries(inf.reporters))),
  };
}

describe('vttif dot', () => {
  test('edges sorted by (a, b), one per topology edge', () => {
    const inf = allToAll(16);
    const es = edges(renderDot(inf));
    expect(es).toHaveLength(inf.topology.edges.length);
    const keys = es.map((e) => `${e.a} ${e.b}`);
    expect(keys).toEqual([...keys].sort());
    expect(es.every((e) => e.a < e.b)).toBe(true);
  });

  test('penwidth grows with intensity, from 1 to 6', () => {
    const es = edges(renderDot(allToAll(16))).sort((x, y) => x.intensity - y.intensity);
    expect(new Set(es.map((e) => e.intensity)).size).toBeGreaterThan(3);
    for (let i = 1; i < es.length; i++) {
      if (es[i]!.intensity > es[i - 1]!.intensity) expect(es[i]!.penwidth).toBeGreaterThan(es[i - 1]!.penwidth);
      else expect(es[i]!.penwidth).toBe(es[i - 1]!.penwidth);
    }
    expect(es.at(-1)!.penwidth).toBe(6);
    expect(penwidth(0.1)).toBeLessThan(penwidth(0.11));
  });

  test('every VM is declared once, inside its host cluster', () => {
    const dot = renderDot(ring(8));
    for (let i = 0; i < 8; i++) {
      const decl = dot.split('\n').filter((l) => l.startsWith(`    "${mac(i)}" [label=`));
      expect(decl).toHaveLength(1);
      const cluster = dot.slice(0, dot.indexOf(decl[0]!)).lastIndexOf('subgraph "cluster ');
      expect(dot.slice(cluster).startsWith(`subgraph "cluster host${1 + (i >> 1)}"`)).toBe(true);
    }
  });

  test('the same input in any order gives the same bytes', () => {
    for (const inf of [ring(8), allToAll(16), settling(8)]) expect(renderDot(shuffled(inf))).toBe(renderDot(inf));
  });

  test('settling: leaving edges dotted, new ones dashed', () => {
    const es = edges(renderDot(settling(8)));
    expect(es.filter((e) => e.line.includes('style=dashed')).map((e) => e.b)).toEqual([2, 3, 4, 5, 6].map(mac));
    expect(es.filter((e) => e.line.includes('style=dotted'))).toHaveLength(6);
    expect(es).toHaveLength(8 + 5);
  });
});

const dotMissing = toolMissing('dot', ['-V'], 'graphviz');
(dotMissing ? describe.skip : describe)(`vttif dot through Graphviz (${dotMissing ?? 'dot -Tsvg'})`, () => {
  const render = (inf: Inference) => runTool('dot', ['-Tsvg'], renderDot(inf));
  const count = (svg: string, cls: string) => svg.split(`class="${cls}"`).length - 1;

  test.each([
    ['ring of 8', ring(8), 8, 8, 4],
    ['all-to-all of 16', allToAll(16), 16, 120, 8],
    ['settling', settling(8), 8, 13, 4],
    ['no-data', noData(), 0, 0, 0],
  ])('%s: parsed without a warning, every node, edge and cluster drawn', (_, inf, nodes, edgeCount, clusters) => {
    const r = render(inf);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(count(r.stdout, 'node')).toBe(nodes);
    expect(count(r.stdout, 'edge')).toBe(edgeCount);
    expect(count(r.stdout, 'cluster')).toBe(clusters);
  });

  test('hostile names stay names: quotes, backslashes, braces and line breaks cannot add nodes or break out', () => {
    const names = ['evil" ] ; "x" -- "y', 'back\\', 'new\nline -- "z"', '}\ngraph g {', 'cluster\\N\\G'];
    const inf = ring(8, { hostName: (i) => names[i % names.length]!, collector: 'p"roxy\\' });
    const r = render(inf);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(count(r.stdout, 'node')).toBe(8);
    expect(count(r.stdout, 'edge')).toBe(8);
    expect(count(r.stdout, 'cluster')).toBe(names.length);
    // Labels print the names as given (line breaks made visible), not as DOT escapes.
    // Graphviz writes - as &#45; in its SVG.
    for (const shown of ['back\\', 'cluster\\N\\G', 'new·line &#45;&#45; &quot;z&quot;', '}·graph g {', 'p&quot;roxy\\']) expect(r.stdout).toContain(shown);
  });
});
