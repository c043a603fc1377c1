import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { both, inference, oneEach } from './support.js';
import { expectNoCrash, runVnetc, SAMPLES, type Run } from '../support/vnetc.js';

/** vnetc adapt and gen as a user runs them: files written, checked by validate and plan, and bad input in one line. */

let tmp = '';
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-adapt-'));
  fs.writeFileSync(path.join(tmp, 'm.json'), JSON.stringify(inference(both([[1, 2], [2, 3], [3, 4]]), oneEach(8))));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const vnetc = (...args: string[]): Run => runVnetc(args, { cwd: tmp });
const star8 = path.join(SAMPLES, 'star8.vnet');

test('adapt writes a file that validates and plans as additions only; --delta writes a saved plan of the same', () => {
  const r = vnetc('adapt', '-m', 'm.json', '-s', star8, '--k', '2', '-o', 'out.vnet');
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toContain('2 fast paths added');
  expect(vnetc('validate', 'out.vnet').status).toBe(0);
  expect(vnetc('fmt', '--check', 'out.vnet').status).toBe(0);
  const plan = JSON.parse(vnetc('plan', 'out.vnet', '--state', star8, '--json').stdout) as { resource_changes: { change: { actions: string[] } }[] };
  const changes = plan.resource_changes.map((c) => c.change.actions.join()).filter((a) => a !== 'no-op');
  expect(changes).toEqual(Array(6).fill('create')); // two links, a rule at each end of each
  const d = vnetc('adapt', '-m', 'm.json', '-s', star8, '--k', '2', '--delta', '--json', '-o', 'delta.vnet');
  expect(d.status).toBe(0);
  expect(JSON.parse(d.stdout).links).toHaveLength(2);
  expect(vnetc('validate', 'delta.vnet').status).toBe(0);
  expect(fs.readFileSync(path.join(tmp, 'delta.vnet'), 'utf8')).toMatch(/^# vnetc plan: changes to live state sha256:/);
});

test('an idle window is said in the summary: the fast paths are for the topology that settled before it', () => {
  const settled = inference(both([[1, 2], [2, 3], [3, 4]]), oneEach(8));
  fs.writeFileSync(path.join(tmp, 'idle.json'), JSON.stringify({ ...settled, state: 'idle', matrix: [], current: { vms: [], edges: [] } }));
  const r = vnetc('adapt', '-m', 'idle.json', '-s', star8, '-o', 'out.vnet');
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^Adapted to the application topology VTTIF settled on \(change 1, at .*: 3 VM pairs; the window is idle now \(no traffic\), which keeps it\)\.$/m);
  expect(r.stdout).toContain('3 fast paths added');
  // A settled window needs no such line.
  expect(vnetc('adapt', '-m', 'm.json', '-s', star8, '-o', 'out.vnet').stdout).not.toContain('Adapted to');
});

test.each([
  [['--k', 'x'], 2, "-k must be a whole number or 'all', not 'x'"],
  [['--k', '2', '--budget', '3'], 2, 'give -k or --budget, not both'],
  [['--json'], 2, 'with --json the report goes to standard output'],
])('flags are checked: %j', (extra, status, message) => {
  const r = vnetc('adapt', '-m', 'm.json', '-s', star8, ...extra);
  expectNoCrash(r);
  expect(r.status).toBe(status);
  expect(r.stderr).toContain(message);
});

test.each([
  ['{"matrix": [', /^vnetc: error: bad\.json(:\d+:\d+)?: not JSON \(.*\); expected the JSON object 'vnetc infer --json' prints/],
  ['[1, 2]', /^vnetc: error: bad\.json: not an inference; expected the JSON object/],
  [
    JSON.stringify({ ...inference([[1, 2, 5]], oneEach(2)), matrix: [{ src: '00:50:56:00:21:01', dst: '00:50:56:00:21:02', bytesPerS: 'fast', framesPerS: 1 }] }),
    /^vnetc: error: bad\.json: matrix\[0\]\.bytesPerS: expected a number ≥ 0, got "fast"$/m,
  ],
  [JSON.stringify(inference([[1, 2, 5]], { 1: 'host1', 2: 'hots2' })), /hosts\["00:50:56:00:21:02"\]: machine 'hots2' is not a HOST of .*star8\.vnet/],
  // Finite but past any link: the figures would print as Infinity and NaN.
  [JSON.stringify(inference([[1, 2, 1e308]], oneEach(2))), /^vnetc: error: bad\.json: matrix\[0\]\.bytesPerS: expected a number from 0 to 1e15 \(8 Pbit\/s, beyond any link\), got 1e\+308$/m],
  // An inference written before edges carried their directions: say how to get one adapt can route.
  [
    JSON.stringify((({ topology: t, ...rest }) => ({ ...rest, topology: { ...t, edges: t.edges.map(({ aToBBytesPerS: _, ...e }) => e) } }))(inference([[1, 2, 5]], oneEach(2)))),
    /^vnetc: error: bad\.json: topology\.edges\[0\]\.aToBBytesPerS: expected a number \(what a sends to b\), got nothing; the file predates it: write it again with 'vnetc infer --json'$/m,
  ],
  [
    JSON.stringify((({ topology: t, ...rest }) => ({ ...rest, topology: { ...t, edges: t.edges.map((e) => ({ ...e, aToBBytesPerS: 6 })) } }))(inference([[1, 2, 5]], oneEach(2)))),
    /^vnetc: error: bad\.json: topology\.edges\[0\]\.aToBBytesPerS: expected a number from 0 to the edge's bytesPerS \(5\), got 6$/m,
  ],
  // The same pair twice would be routed as twice its traffic; a VM with itself is no pair at all.
  [
    JSON.stringify((({ topology: t, ...rest }) => ({ ...rest, topology: { ...t, edges: [...t.edges, { ...t.edges[0]!, a: t.edges[0]!.b, b: t.edges[0]!.a }] } }))(inference([[1, 2, 5]], oneEach(2)))),
    /^vnetc: error: bad\.json: topology\.edges\[1\]: expected a VM pair not given before, got .*; topology\.edges\[0\] is the same pair, 00:50:56:00:21:02 and 00:50:56:00:21:01; keep one entry per pair$/m,
  ],
  [
    JSON.stringify((({ topology: t, ...rest }) => ({ ...rest, topology: { ...t, edges: t.edges.map((e) => ({ ...e, b: e.a })) } }))(inference([[1, 2, 5]], oneEach(2)))),
    /^vnetc: error: bad\.json: topology\.edges\[0\]\.b: expected a VM other than a \(00:50:56:00:21:01\): an edge joins two VMs, got "00:50:56:00:21:01"$/m,
  ],
])('a bad matrix file is one located line: %s', (text, message) => {
  fs.writeFileSync(path.join(tmp, 'bad.json'), text);
  const r = vnetc('adapt', '-m', 'bad.json', '-s', star8);
  expectNoCrash(r);
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(message);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
});

test('a network bandwidth past any link is one located line, not Infinity in the summary', () => {
  fs.writeFileSync(path.join(tmp, 'net.json'), JSON.stringify({ default: { mbps: 1e308 } }));
  const r = vnetc('adapt', '-m', 'm.json', '-s', star8, '-n', 'net.json');
  expect(r.status).toBe(1);
  expect(r.stderr).toBe('vnetc: error: net.json: default.mbps: expected a number of Mbit/s above 0, at most 8e9 (8 Pbit/s, beyond any link), got 1e+308\n');
});

// Finite but absurd: a cost of 1e308 swallows the smaller ones added to it or doubles to Infinity; two latencies of 1e308 make an Infinite round trip.
test.each([
  [{ default: { cost: 1e308 } }, 'default.cost: expected a number from 0 to 1e9 (costs only compare with each other and --budget: scale them all down)'],
  [{ ruleCost: 1e308 }, 'ruleCost: expected a number from 0 to 1e9 (costs only compare with each other and --budget: scale them all down)'],
  [{ pairs: [{ between: ['host1', 'host2'], latencyMs: 1e308 }] }, 'pairs[0].latencyMs: expected a number of ms from 0 to 1e7 (nearly three hours, past any path)'],
])('a network cost or latency past any link is one located line: %j', (net, message) => {
  fs.writeFileSync(path.join(tmp, 'net.json'), JSON.stringify(net));
  const r = vnetc('adapt', '-m', 'm.json', '-s', star8, '-n', 'net.json', '--budget', '1e308', '--placement');
  expect(r.stderr).toBe(`vnetc: error: net.json: ${message}, got 1e+308\n`);
  expect(r.status).toBe(1);
});

test('a bad network file is one located line', () => {
  fs.writeFileSync(path.join(tmp, 'net.json'), JSON.stringify({ pairs: [{ between: ['host1', 'host9'], mbps: 5 }] }));
  const r = vnetc('adapt', '-m', 'm.json', '-s', star8, '-n', 'net.json');
  expect(r.status).toBe(1);
  expect(r.stderr).toBe(`vnetc: error: net.json: pairs[0].between[1]: machine 'host9' is not a HOST of ${star8}\n`);
});

test('gen writes a valid file; a mistake in the requirements is one located line', () => {
  expect(vnetc('gen', path.join(SAMPLES, 'ring3.vgen'), '-o', 'ring3.vnet').status).toBe(0);
  expect(vnetc('validate', 'ring3.vnet').status).toBe(0);
  fs.writeFileSync(path.join(tmp, 'bad.vgen'), 'proxy p\nhost h1\nvm a 00:50:56:00:21:01 on h2\n');
  const r = vnetc('gen', 'bad.vgen');
  expect(r.status).toBe(1);
  expect(r.stderr).toBe("vnetc: error: bad.vgen:3:27: machine 'h2' is not declared; add 'host h2'\n");
});
