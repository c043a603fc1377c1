/**
 * Writes the sample programs in samples/: VNET's startup star (LCR 2004
 * paper, Fig. 1, with the forwarding tables of Fig. 2), the fast-path
 * topologies of its §4, the 28-VM scaling test of the thesis proposal
 * (§9.4), and a program in the thesis's extended grammar (Fig. 5).
 *
 * Compile with tsc, then run from the repository root:
 *   node <outDir>/generate.js [directory]      (directory defaults to samples)
 * The output depends on nothing but this file.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Fig. 4 spelling (`LINK a b`, `FORWARD m ...`) or Fig. 5 (`LINK TCP a b a`, `FORWARD EDGE m ...`). */
type Grammar = 'fig4' | 'fig5';
type Proto = 'TCP' | 'UDP';
type Pair = [number, number];

/** A block's lines: statements, `# comments`, and '' for a blank line. */
interface Block {
  action: 'ADD' | 'DELETE';
  lines: string[];
}

interface Program {
  /** The file's header comment, as one paragraph per string. */
  header: string[];
  hosts: string[];
  blocks: Block[];
}

const BROADCAST = 'ff:ff:ff:ff:ff:ff';
const WIDTH = 72;
const OVER_LINK = 'At each end, frames for the other VM take the link: exact/exact beats the default.';

const host = (i: number): string => `host${i}`;
/** VM i's MAC (one VM per host): 00:50:56:00:21:XX, XX the two-digit hex of i. */
const mac = (i: number): string => `00:50:56:00:21:${i.toString(16).padStart(2, '0')}`;
const range = (n: number): number[] => Array.from({ length: n }, (_, k) => k + 1);

/** `text` as `#` comment lines of at most WIDTH characters. */
function comment(text: string): string[] {
  const lines: string[] = [];
  let line = '#';
  for (const word of text.split(' ')) {
    if (line.length > 1 && line.length + 1 + word.length > WIDTH) {
      lines.push(line);
      line = '#';
    }
    line += ' ' + word;
  }
  return [...lines, line];
}

/** A link; the first end dials (Fig. 5 names it: the end behind NAT). */
function link(g: Grammar, a: string, b: string, proto: Proto = 'TCP'): string {
  return g === 'fig4' ? `LINK ${a} ${b}` : `LINK ${proto} ${a} ${b} ${a}`;
}

/** A rule at `at` sending frames from `src` to `dst` over its link to `next`. */
function edge(g: Grammar, at: string, src: string, dst: string, next: string): string {
  return `FORWARD ${g === 'fig5' ? 'EDGE ' : ''}${at} ${src} ${dst} ${at} ${next}`;
}

/** A rule at `at` injecting frames from `src` to `dst` into its interface `iface`. */
function inject(g: Grammar, at: string, src: string, dst: string, iface: string): string {
  return `FORWARD ${g === 'fig5' ? 'INTERFACE ' : ''}${at} ${src} ${dst} ${iface}`;
}

/** The startup star for n hosts, one VM each: HOST lines, and an ADD block of Fig. 1's links and Fig. 2's rules. */
function star(n: number, g: Grammar): Program {
  const hosts = ['HOST vnet AT proxy 5000 eth0', ...range(n).map((i) => `HOST vnet AT ${host(i)} 5000 vmnet1`)];
  const dials = g === 'fig5' ? 'every host is behind NAT and dials the Proxy' : 'every host dials the Proxy';
  const lines = comment(`The resilient star (Fig. 1): ${dials}.`);
  lines.push(...range(n).map((i) => link(g, host(i), 'proxy')));
  lines.push(
    '',
    ...comment(
      "Each host's table (Fig. 2): broadcasts from elsewhere and frames for its VM are injected into vmnet1;" +
        ' by default, everything else the VM sends goes to the Proxy.',
    ),
  );
  for (const i of range(n)) {
    if (i > 1) lines.push('');
    lines.push(
      inject(g, host(i), `NOT ${mac(i)}`, BROADCAST, 'vmnet1'),
      inject(g, host(i), 'ANY', mac(i), 'vmnet1'),
      edge(g, host(i), mac(i), 'NONE', 'proxy'),
    );
  }
  lines.push('', ...comment("The Proxy's table: frames for VM i go to host i."));
  lines.push(...range(n).map((i) => edge(g, 'proxy', 'ANY', mac(i), host(i))));
  lines.push(
    '',
    ...comment(
      'Broadcasts go to every host and to the LAN: the rules tie, so each gets the frame,' +
        ' except the link or interface it came in on.',
    ),
    ...range(n).map((i) => edge(g, 'proxy', 'ANY', BROADCAST, host(i))),
    inject(g, 'proxy', 'ANY', BROADCAST, 'eth0'),
    '',
    ...comment("By default, frames are for machines on the user's LAN."),
    inject(g, 'proxy', 'ANY', 'NONE', 'eth0'),
  );
  return { header: [], hosts, blocks: [{ action: 'ADD', lines }] };
}

/**
 * Fast-path links between pairs of hosts, and at each end a rule sending
 * frames for the other end's VM over the link (exact/exact beats the
 * exact/NONE default that goes to the Proxy). Rules are grouped by table.
 */
function fastPaths(g: Grammar, pairs: Pair[], proto: Proto = 'TCP'): string[] {
  const lines = pairs.map(([i, j]) => link(g, host(i), host(j), proto));
  const partners = new Map<number, number[]>();
  for (const [i, j] of pairs) {
    partners.set(i, [...(partners.get(i) ?? []), j]);
    partners.set(j, [...(partners.get(j) ?? []), i]);
  }
  const ends = [...partners.keys()].sort((a, b) => a - b);
  // A blank line before each table's rules, unless every table has just one.
  const spaced = ends.some((i) => partners.get(i)!.length > 1);
  for (const i of ends) {
    if (spaced || i === ends[0]) lines.push('');
    for (const j of partners.get(i)!.sort((a, b) => a - b)) lines.push(edge(g, host(i), mac(i), mac(j), host(j)));
  }
  return lines;
}

const ring = (n: number): Pair[] => range(n).map((i): Pair => [i, (i % n) + 1]);
const allPairs = (n: number): Pair[] => range(n).flatMap((i) => range(n - i).map((d): Pair => [i, i + d]));

/**
 * A line of links host1-host2-...-hostn, and for every ordered VM pair (i, j)
 * a rule at each host from i up to (not including) j, sending frames from VM i
 * to VM j on to the next host along the line. Rules are grouped by table.
 */
function bus(g: Grammar, n: number): string[] {
  const lines = range(n - 1).map((i) => link(g, host(i), host(i + 1)));
  for (const k of range(n)) {
    lines.push('');
    for (const i of range(n)) {
      for (const j of range(n)) {
        const onPath = (i <= k && k < j) || (j < k && k <= i);
        if (onPath) lines.push(edge(g, host(k), mac(i), mac(j), host(j > i ? k + 1 : k - 1)));
      }
    }
  }
  return lines;
}

/** A star of n hosts, then an ADD block of fast paths. */
function withFastPaths(n: number, what: string, lines: string[]): Program {
  const p = star(n, 'fig4');
  p.blocks.push({ action: 'ADD', lines: [...comment(what), ...lines] });
  return p;
}

/** A four-host star, UDP fast paths in the Fig. 5 spelling, then one fast path added and one deleted. */
function udpExtended(): Program {
  const p = star(4, 'fig5');
  const fast = (pairs: Pair[]): string[] => fastPaths('fig5', pairs, 'UDP');
  p.blocks.push(
    {
      action: 'ADD',
      lines: [
        ...comment(`UDP fast paths (thesis §3.4.1) for the VM pairs 1-2 and 3-4. ${OVER_LINK}`),
        ...fast([[1, 2], [3, 4]]),
      ],
    },
    { action: 'ADD', lines: [...comment('VMs 2 and 3 start talking: a fast path for them.'), ...fast([[2, 3]])] },
    {
      action: 'DELETE',
      lines: [
        ...comment('VMs 3 and 4 have gone quiet: their fast path goes, and their frames take the star again.'),
        ...fast([[3, 4]]),
      ],
    },
  );
  return p;
}

/** The canonical layout: header, BEGIN, HOST lines and blocks at two spaces, block lines at four, END. */
function render(p: Program): string {
  const out = [...p.header.flatMap(comment), '', 'BEGIN', ...p.hosts.map((h) => `  ${h}`)];
  for (const b of p.blocks) out.push('', `  ${b.action}`, ...b.lines.map((l) => (l === '' ? '' : `    ${l}`)));
  out.push('END');
  return out.join('\n') + '\n';
}

const PAPER = 'the LCR 2004 paper (Dynamic Topology Adaptation of Virtual Networks of Virtual Machines)';
const THESIS = "Sundararaj's thesis proposal (2005)";
const GENERATED = 'Generated by samples/generate.ts; edit that, not this file.';

const titled = (header: string[], p: Program): Program => ({ ...p, header: [...header, GENERATED] });
const starTitle = (n: number, words: string): string[] => [
  `star${n}.vnet: VNET's startup topology for ${words} hosts, one VM each, and the Proxy on the user's LAN.`,
  `Reproduces Fig. 1 (the resilient star, §2.1) of ${PAPER}, with the forwarding tables of Fig. 2,` +
    ' in the grammar of Fig. 4.',
];
const ALL_TO_ALL = `Fast paths for all-to-all: every pair of VMs has its own link. ${OVER_LINK}`;

const samples: Record<string, Program> = {
  'star4.vnet': titled(starTitle(4, 'four'), star(4, 'fig4')),
  'star8.vnet': titled(starTitle(8, 'eight'), star(8, 'fig4')),
  'ring8.vnet': titled(
    [
      'ring8.vnet: the eight-host star plus fast paths for a ring application topology' +
        ' (host1-host2-...-host8-host1).',
      `Reproduces the adaptation of Fig. 8 (there with four VMs) and the ring of the eight-VM experiments` +
        ` of §4 of ${PAPER}, in the grammar of Fig. 4.`,
    ],
    withFastPaths(
      8,
      `Fast paths for a ring: each VM sends to its two neighbours directly. ${OVER_LINK}`,
      fastPaths('fig4', ring(8)),
    ),
  ),
  'all2all8.vnet': titled(
    [
      'all2all8.vnet: the eight-host star plus all 28 fast-path links of an all-to-all application topology.',
      `Reproduces the all-to-all setup of §4.1 (Fig. 9) and Fig. 11 of ${PAPER}, in the grammar of Fig. 4.`,
    ],
    withFastPaths(8, ALL_TO_ALL, fastPaths('fig4', allPairs(8))),
  ),
  'bus8.vnet': titled(
    [
      'bus8.vnet: the eight-host star plus fast paths for a bus application topology' +
        ' (host1-host2-...-host8): 7 links but 168 rules.',
      `Reproduces the bus setup of §4.1 (Fig. 9) and Fig. 12 of ${PAPER}: a bus takes more rules than links` +
        ' because VNET forwards on source and destination, not hierarchically. In the grammar of Fig. 4.',
    ],
    withFastPaths(
      8,
      'Fast paths for a bus: a line of links, and at each host a rule for every VM pair whose path crosses it,' +
        ' sending its frames on towards the destination.',
      bus('fig4', 8),
    ),
  ),
  'all2all28.vnet': titled(
    [
      'all2all28.vnet: the 28-VM scaling test: a star over 28 hosts, one VM each, plus all 378 fast-path' +
        ' links of an all-to-all topology.',
      `Reproduces §9.4 (Scaling) of ${THESIS}. The star and tables are those of Fig. 1 and Fig. 2` +
        ' of the LCR 2004 paper, in the grammar of its Fig. 4.',
    ],
    withFastPaths(28, ALL_TO_ALL, fastPaths('fig4', allPairs(28))),
  ),
  'udp-extended.vnet': titled(
    [
      'udp-extended.vnet: a four-host star and UDP fast paths in the extended grammar, then an evolution:' +
        ' one fast path is added, another deleted.',
      `Reproduces Fig. 5 of ${THESIS}: every link names its transport and the end that dials,` +
        " every rule says EDGE or INTERFACE. UDP links are the thesis's §3.4.1; the star and tables" +
        ' are Fig. 1 and Fig. 2 of the LCR 2004 paper.',
    ],
    udpExtended(),
  ),
};

const dir = process.argv[2] ?? 'samples';
for (const [name, program] of Object.entries(samples)) writeFileSync(join(dir, name), render(program));
