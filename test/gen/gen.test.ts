import fc from 'fast-check';
import fs from 'node:fs';
import path from 'node:path';
import { expand } from '../../src/gen/expand.js';
import { parseRequirements } from '../../src/gen/requirements.js';
import { SourceFile } from '../../src/diag/source.js';
import { compileText, parseSource } from '../../src/lang/compile.js';
import { format } from '../../src/lang/format.js';
import { liveFromState } from '../../src/model/live.js';
import type { State } from '../../src/model/state.js';
import { diff } from '../../src/plan/diff.js';
import { trace } from '../../src/route/trace.js';
import { SAMPLES } from '../support/vnetc.js';

/**
 * vnetc gen: what it writes is valid, canonical, and makes every VM reach
 * every other through the generated tables (traced frame by frame), unicast
 * and broadcast; fast paths are taken where asked; and the papers' sample
 * networks come out of a few lines of requirements.
 */

const mac = (i: number): string => `00:50:56:00:21:${i.toString(16).padStart(2, '0')}`;

function generate(text: string): State {
  const vnet = expand(parseRequirements('r.vgen', text), 'r.vgen');
  const r = compileText('gen.vnet', vnet);
  expect(r.diagnostics).toEqual([]);
  return r.state!;
}

const paper = (n: number, topology: string): string =>
  ['proxy proxy iface eth0', ...Array.from({ length: n }, (_, k) => `host host${k + 1}\nvm v${k + 1} ${mac(k + 1)} on host${k + 1}`), `topology ${topology}`].join('\n');

const sampleState = (name: string): State => compileText(name, fs.readFileSync(path.join(SAMPLES, name), 'utf8')).state!;

test.each([
  ['star', 'star8.vnet'],
  ['ring', 'ring8.vnet'],
  ['all-to-all', 'all2all8.vnet'],
  ['bus', 'bus8.vnet'],
])('topology %s over 8 hosts gives the rules and links of %s', (kind, file) => {
  const steps = diff(liveFromState(sampleState(file)), generate(paper(8, kind))).steps;
  // Which end of a ring's closing link dials may differ; nothing else.
  expect(steps.filter((s) => s.kind !== 'link' || s.action !== 'replace')).toEqual([]);
});

test('the sample requirements expand to canonical text', () => {
  const text = fs.readFileSync(path.join(SAMPLES, 'ring3.vgen'), 'utf8');
  const vnet = expand(parseRequirements('ring3.vgen', text), 'ring3.vgen');
  expect(compileText('x', vnet).diagnostics).toEqual([]);
});

test.each([
  ['a Proxy alone', 'proxy p'],
  ['the ring3 sample', fs.readFileSync(path.join(SAMPLES, 'ring3.vgen'), 'utf8')],
])('%s expands to exactly what vnetc fmt prints of it', (_, text) => {
  const vnet = expand(parseRequirements('r.vgen', text), 'r.vgen');
  const parsed = parseSource(new SourceFile('gen.vnet', vnet));
  expect(format(parsed.file, parsed.program!, parsed.comments)).toBe(vnet);
});

/** Every VM reaches every VM on another host exactly once, at its host's interface; broadcasts reach every other host with VMs. */
function checkReachability(state: State, vms: { mac: string; machine: string; iface: string }[], fast: Set<string>): void {
  for (const s of vms) {
    for (const d of vms) {
      if (s.machine === d.machine) continue;
      const t = trace(state, s.machine, { kind: 'interface', iface: s.iface }, s.mac, d.mac);
      expect(t.endings).toEqual([{ kind: 'delivered', machine: d.machine, iface: d.iface }]);
      if (fast.has(`${s.mac} ${d.mac}`)) expect(t.hops.map((h) => h.machine)).toEqual([s.machine, d.machine]);
    }
    const b = trace(state, s.machine, { kind: 'interface', iface: s.iface }, s.mac, 'ff:ff:ff:ff:ff:ff');
    const reached = new Set(b.endings.filter((e) => e.kind === 'delivered').map((e) => e.machine));
    for (const d of vms) if (d.machine !== s.machine) expect(reached).toContain(d.machine);
    expect(reached).not.toContain(s.machine);
    // The Proxy drops a broadcast it has nowhere else to send (only its sender's host, and no LAN); nothing else may go astray.
    expect(b.endings.filter((e) => e.kind !== 'delivered' && !(e.kind === 'dead-end' && e.machine === 'p'))).toEqual([]);
  }
}

test('random requirements: every VM reaches every other, broadcasts included, and fast paths are direct', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 5 }),
      fc.array(fc.nat(4), { minLength: 1, maxLength: 8 }),
      fc.constantFrom('star', 'ring', 'all-to-all', 'bus'),
      fc.array(fc.tuple(fc.nat(7), fc.nat(7)), { maxLength: 4 }),
      fc.boolean(),
      (hosts, where, topology, edges, lan) => {
        const vms = where.map((w, i) => ({ name: `v${i}`, mac: mac(i + 1), machine: `h${w % hosts}`, iface: 'vmnet1' }));
        const explicit = topology === 'bus' ? [] : edges.map(([a, b]) => [a % vms.length, b % vms.length]).filter(([a, b]) => a !== b);
        const text = [
          `proxy p iface eth0 lan ${lan ? 'on' : 'off'}`,
          ...Array.from({ length: hosts }, (_, k) => `host h${k}`),
          ...vms.map((v) => `vm ${v.name} ${v.mac} on ${v.machine}`),
          `topology ${topology}`,
          ...explicit.map(([a, b]) => `edge v${a} v${b}`),
        ].join('\n');
        const state = generate(text);
        const fast = new Set<string>();
        const pair = (a: number, b: number) => fast.add(`${vms[a]!.mac} ${vms[b]!.mac}`).add(`${vms[b]!.mac} ${vms[a]!.mac}`);
        if (topology === 'all-to-all') vms.forEach((_, a) => vms.forEach((__, b) => a !== b && pair(a, b)));
        if (topology === 'ring' && vms.length > 1) vms.forEach((_, a) => pair(a, (a + 1) % vms.length));
        for (const [a, b] of explicit) pair(a!, b!);
        checkReachability(state, vms, fast);
      },
    ),
    { numRuns: 150 },
  );
});

test.each([
  ['host h1\nvm a 00:50:56:00:21:01 on h1', "r.vgen: no proxy line; say which machine is the Proxy, e.g. 'proxy proxy iface eth0'"],
  ['proxy p\nvm a 00:50:56:00:21:01 on h9', "r.vgen:2:27: machine 'h9' is not declared; add 'host h9'"],
  ['proxy p\nhost h1\nvm a 00:50:56:00:21:zz on h1', "r.vgen:3:6: '00:50:56:00:21:zz' is not a MAC address: 'z' is not a hexadecimal digit"],
  ['proxy p\ntopology mesh', "r.vgen:2:10: unknown topology 'mesh'; expected one of: star, ring, all-to-all, bus"],
  ['proxy p\nhost h1 port 70000', "r.vgen:2:14: port '70000' is not a whole number from 1 to 65535"],
  ['proxy p\nhost h1\nvm a 00:50:56:00:21:01 on h1\nedge a b', "r.vgen:4:8: no VM is named 'b'"],
  ['proxy p\nhost p', "r.vgen:2:6: machine 'p' is already declared on line 1"],
  ['proxy p\nlink h1 h2', "r.vgen:2:1: unknown statement 'link'; expected proxy, host, vm, topology, edge or defaults"],
  // A .vnet program where requirements belong.
  ['BEGIN\n  HOST vnet AT proxy 5000 eth0\nEND', "r.vgen:1:1: 'BEGIN' starts a .vnet program, which gen writes: it reads a requirements file (proxy, host, vm, topology, edge and defaults lines; docs/GEN.md)"],
  // Keywords of the .vnet language, in any case, cannot be the names written into it.
  ['proxy ANY\nhost h1\nvm a 00:50:56:00:21:01 on h1', "r.vgen:1:7: 'ANY' is a keyword of the .vnet language and cannot be a name there; choose another name"],
  ['proxy p\nhost end', "r.vgen:2:6: 'end' is a keyword"],
  ['proxy p\nhost h1 iface Link user tcp', "r.vgen:2:15: 'Link' is a keyword"],
  ['proxy p\ndefaults user NONE', "r.vgen:2:15: 'NONE' is a keyword"],
])('a mistake is located: %j', (text, message) => {
  expect(() => expand(parseRequirements('r.vgen', text), 'r.vgen')).toThrow(message);
});
