import { renderSvg } from '../../src/vttif/render/svg.js';
import { logScale, rampColour } from '../../src/vttif/render/svg-heatmap.js';
import { esc, vmLabels } from '../../src/vttif/render/svg-kit.js';
import { knownVms } from '../../src/vttif/render/vms.js';
import type { Inference } from '../../src/vttif/types.js';
import { runTool, toolMissing } from '../support/tools.js';
import { allToAll, mac, noData, ring, settling } from './fixtures.js';

const circles = (svg: string) => [...svg.matchAll(/<circle [^>]*><title>([^<]*)<\/title>/g)].map((m) => m[1]!);
const cells = (svg: string) => [...svg.matchAll(/<rect [^>]*fill="(#[0-9a-f]{6})"><title>([^<]*→[^<]*)<\/title>/g)].map((m) => ({ fill: m[1]!, tip: m[2]! }));
/** Settled edges of the circle, as (intensity, width), from their tooltips. */
const edgePaths = (svg: string) =>
  [...svg.matchAll(/<path d="M [^"]+ Q [^"]+" fill="none" stroke="#24466b" stroke-width="([\d.]+)"[^>]*><title>[^<]*intensity ([\d.]+)/g)].map((m) => ({ width: Number(m[1]), intensity: Number(m[2]) }));

const idle = (): Inference => ({ ...ring(8), state: 'idle', matrix: [], current: { vms: [], edges: [] } });

describe('vttif svg', () => {
  test('every VM once on the circle, once per axis of the heat map', () => {
    for (const inf of [ring(8), allToAll(16), settling(8)]) {
      const svg = renderSvg(inf);
      const vms = knownVms(inf);
      expect(circles(svg).map((t) => t.split(' on ')[0]).sort()).toEqual(vms);
      // Its label by the circle, and one per axis.
      for (const vm of vms) expect(svg.split(`<title>${vm}</title></text>`).length - 1).toBe(3);
    }
  });

  test('edges grow wider with intensity, the strongest drawn last (on top)', () => {
    const es = edgePaths(renderSvg(allToAll(16)));
    expect(es).toHaveLength(120);
    expect(es.map((e) => e.intensity)).toEqual([...es.map((e) => e.intensity)].sort((a, b) => a - b));
    for (let i = 1; i < es.length; i++) {
      if (es[i]!.intensity > es[i - 1]!.intensity) expect(es[i]!.width).toBeGreaterThan(es[i - 1]!.width);
    }
  });

  test('a heat-map cell per matrix entry, coloured on a log scale from the weakest to the strongest pair', () => {
    const inf = allToAll(16);
    const cs = cells(renderSvg(inf));
    expect(cs).toHaveLength(inf.matrix.length);
    const max = Math.max(...inf.matrix.map((m) => m.bytesPerS));
    const min = Math.min(...inf.matrix.map((m) => m.bytesPerS));
    const strongest = inf.matrix.find((m) => m.bytesPerS === max)!;
    const weakest = inf.matrix.find((m) => m.bytesPerS === min)!;
    expect(cs.find((c) => c.tip.startsWith(`${strongest.src} → ${strongest.dst}:`))!.fill).toBe(rampColour(1));
    expect(cs.find((c) => c.tip.startsWith(`${weakest.src} → ${weakest.dst}:`))!.fill).toBe(rampColour(0));
    expect(renderSvg(inf)).toContain('bytes/s, log scale');
  });

  test('the log scale spans at most four decades and says when it clips', () => {
    const s = logScale([1e6, 1e3, 10])!;
    expect(s.lo).toBe(100);
    expect(s.clipped).toBe(true);
    expect(s.at(1e6)).toBe(1);
    expect(s.at(1e4)).toBeCloseTo(0.5);
    expect(s.at(10)).toBe(0);
    expect(logScale([5, 5])!.at(5)).toBe(1);
    expect(logScale([0, -1])).toBeUndefined();
  });

  test('settling: appearing edges dashed green, disappearing ones dotted grey, and a legend for both', () => {
    const svg = renderSvg(settling(8));
    expect(svg.match(/stroke="#2a8a3a" stroke-width="[\d.]+" stroke-opacity="[\d.]+" stroke-dasharray="8 5"/g)).toHaveLength(5);
    expect(svg.match(/stroke="#8a8a8a" stroke-width="[\d.]+" stroke-opacity="[\d.]+" stroke-dasharray="2 4"/g)).toHaveLength(6);
    expect(svg).toContain('appearing (not yet settled)');
  });

  test('no-data: a message panel, nothing drawn', () => {
    const svg = renderSvg(noData());
    expect(svg).toContain('No data yet');
    expect(svg).toContain('update 5 Hz, window 1 s, threshold 0.05');
    expect(circles(svg)).toHaveLength(0);
  });

  test('idle: the last settled topology, and a heat map that says the window is quiet', () => {
    const svg = renderSvg(idle());
    expect(circles(svg)).toHaveLength(8);
    expect(svg).toContain('No traffic in the window: the VMs are quiet');
    expect(cells(svg)).toHaveLength(0);
  });

  test('labels drop the octets all VMs share, keep at least two, and show anything else whole up to 20 characters', () => {
    expect(vmLabels([mac(1), mac(2)])).toEqual({ of: new Map([[mac(1), '00:01'], [mac(2), '00:02']]), prefix: '00:50:56:00:', longest: 5 });
    expect(vmLabels(['02:00:00:00:00:01', '04:00:00:00:00:01']).prefix).toBe('');
    expect(vmLabels(['not a mac at all, far too long']).of.get('not a mac at all, far too long')).toBe('not a mac at all, f…');
  });

  test('label sizes scale: radial labels past 12 VMs, upright heat-map columns past 16, every text inside the picture', () => {
    const fontSizes: number[] = [];
    for (const count of [4, 8, 12, 16, 32, 64]) {
      const svg = renderSvg(ring(count, { perHost: 4 }));
      const [, w, h] = /<svg [^>]*width="([\d.]+)" height="([\d.]+)"/.exec(svg)!.map(Number);
      const texts = [...svg.matchAll(/<text x="([\d.-]+)" y="([\d.-]+)" font-size="([\d.]+)"([^>]*)>/g)];
      for (const t of texts) {
        expect(Number(t[1])).toBeGreaterThanOrEqual(0);
        expect(Number(t[2])).toBeGreaterThanOrEqual(0);
        expect(Number(t[3])).toBeGreaterThanOrEqual(5.5);
      }
      const group = (cls: string) => svg.slice(svg.indexOf(`<g class="${cls}">`), svg.indexOf('</g>', svg.indexOf(`<g class="${cls}">`)));
      const rotations = (cls: string) => new Set([...group(cls).matchAll(/rotate\(([\d.-]+) /g)].map((m) => Number(m[1])));
      expect([...rotations('heatmap-columns')]).toEqual([count <= 16 ? -45 : -90]);
      expect(rotations('heatmap-rows').size).toBe(0);
      // Horizontal by the circle up to 12 VMs, then radial: one angle per VM, but the one at 3 o'clock needs no turn.
      expect(rotations('topology-labels').size).toBe(count <= 12 ? 0 : count - 1);
      const fonts = (cls: string) => [...group(cls).matchAll(/font-size="([\d.]+)"/g)].map((m) => Number(m[1]));
      fontSizes.push(Math.max(...fonts('heatmap-rows')));
      expect(w).toBeGreaterThan(900);
      expect(h).toBeGreaterThan(500);
    }
    // Heat-map labels shrink as the VMs multiply, never grow.
    expect([...fontSizes].sort((a, b) => b - a)).toEqual(fontSizes);
    expect(fontSizes[0]).toBeGreaterThan(fontSizes.at(-1)!);
  });

  test('XML escaping: markup, entities, controls and lone surrogates in names cannot break out', () => {
    expect(esc(`<a href="x">&'\u0000\ud800`)).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&#39;·\ufffd');
    const svg = renderSvg(hostile());
    expect(svg).not.toContain('<script');
    expect(svg).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ud800-\udfff]/u);
    expect(svg).toContain('&lt;/text&gt;&lt;script&gt;');
  });
});

/** Names a broken daemon or a hostile guest could put in the inference. */
function hostile(): Inference {
  const names = ['</text><script>alert(1)</script>', ']]><!--', 'a&b;&amp;', '"\'\u0007\ud800', 'x\ny'];
  const inf = ring(8, { hostName: (i) => names[i % names.length]!, collector: '<proxy & "co">' });
  // A VM id that is no MAC at all: the inference is input, and must not be trusted to be well formed.
  const odd = '<vm id="9">\u001b';
  return { ...inf, hosts: { ...inf.hosts, [odd]: names[0]! }, matrix: [...inf.matrix, { src: odd, dst: mac(0), bytesPerS: 1000, framesPerS: 1 }] };
}

const xmllintMissing = toolMissing('xmllint', ['--version'], 'libxml2-utils');
(xmllintMissing ? describe.skip : describe)(`vttif svg through xmllint (${xmllintMissing ?? 'xmllint --noout'})`, () => {
  const count = (svg: string, xpath: string) => runTool('xmllint', ['--xpath', xpath, '-'], svg).stdout.trim();

  test.each([
    ['ring of 8', ring(8)],
    ['ring of 4', ring(4)],
    ['all-to-all of 16', allToAll(16)],
    ['all-to-all of 64', allToAll(64, { perHost: 8 })],
    ['settling', settling(8)],
    ['idle', idle()],
    ['no-data', noData()],
    ['hostile names', hostile()],
  ])('%s: well formed', (_, inf) => {
    const r = runTool('xmllint', ['--noout', '-'], renderSvg(inf));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  test('hostile names: the parsed document has exactly the circles and cells it should', () => {
    const inf = hostile();
    const svg = renderSvg(inf);
    expect(count(svg, 'count(//*[local-name()="circle"])')).toBe(String(knownVms(inf).length));
    expect(count(svg, 'count(//*[local-name()="script"])')).toBe('0');
    expect(count(svg, 'count(//*[local-name()="rect"]/*[local-name()="title"][contains(., "→")])')).toBe(String(inf.matrix.length));
  });
});
