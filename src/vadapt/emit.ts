import { directRules, hostStarRules, proxyBroadcastRule, proxyVmRule } from '../gen/rules.js';
import { blockText, commentLines, type Group } from '../gen/write.js';
import { printLink, printRule } from '../lang/print.js';
import { linkKey, tableKey, type Link, type Rule, type State } from '../model/state.js';
import type { Problem } from './problem.js';
import type { HostPair } from './topology.js';

/**
 * A chosen configuration as changes to the base spec: the base text as it
 * is, then a DELETE block (only when VMs move: the rules that name a moved
 * VM) and an ADD block with the fast paths, their rules, and the star rules
 * for moved VMs at their new hosts. The result evaluates to the complete
 * desired state, and its own comments say why each addition is there.
 */

export interface Additions {
  deletes: Rule[];
  /** Groups of statements with their comments, for the ADD block. */
  groups: Group[];
  /** Counts, for the report. */
  links: number;
  rules: number;
}

export interface LinkNote {
  pair: HostPair;
  intensity: number;
  /** What the score loses without this link, in Mbit/s. */
  gain: number;
}

/** Mbit/s for people: whole numbers from 100, one decimal from 1, two significant digits below. */
export const formatMbps = (x: number): string => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(1) : x.toPrecision(2));
/** A change of score, signed either way (a link the greedy keeps can cost score: -1998, not +-1998). */
export const formatGain = (x: number): string => (x < 0 ? '' : '+') + formatMbps(x);

export function additions(p: Problem, base: State, proxy: string, place: Int32Array, notes: readonly LinkNote[]): Additions {
  const name = (i: number): string => p.machines[i]!;
  const has = (r: Rule): boolean => base.tables.get(r.machine)?.has(tableKey(r)) ?? false;
  const moved = new Set<number>();
  for (let v = 0; v < p.vms.length; v++) if (p.movable[v] && place[v] !== p.current[v]) moved.add(v);
  const movedMacs = new Set([...moved].map((v) => p.vms[v]!));
  const mentions = (r: Rule): boolean =>
    ((r.src.q === 'exact' || r.src.q === 'not') && movedMacs.has(r.src.mac)) || ((r.dst.q === 'exact' || r.dst.q === 'not') && movedMacs.has(r.dst.mac));
  const deletes: Rule[] = [];
  for (const table of base.tables.values()) for (const r of table.values()) if (mentions(r)) deletes.push(r);
  const deleted = new Set(deletes.map((r) => `${r.machine} ${tableKey(r)}`));
  const present = (r: Rule): boolean => has(r) && !deleted.has(`${r.machine} ${tableKey(r)}`);
  const added = new Set<string>();
  const fresh = (rs: Rule[]): string[] =>
    rs
      .filter((r) => {
        const k = `${r.machine} ${tableKey(r)}`;
        if (present(r) || added.has(k)) return false;
        added.add(k);
        return true;
      })
      .map(printRule);
  const groups: Group[] = [];
  let links = 0;
  let rules = 0;

  if (moved.size) {
    const starLinks = new Set<string>();
    const starRules: Rule[] = [];
    for (const v of [...moved].sort((x, y) => x - y)) {
      const h = name(place[v]!);
      const host = base.hosts.get(h)!;
      if (!base.links.has(linkKey(h, proxy))) starLinks.add(printLink({ a: h, b: proxy, proto: 'tcp', dialer: h }));
      starRules.push(...hostStarRules(h, host.iface, proxy, [p.vms[v]!]), proxyVmRule(proxy, { mac: p.vms[v]!, machine: h }), proxyBroadcastRule(proxy, h));
    }
    const statements = [...starLinks, ...fresh(starRules)];
    links += starLinks.size;
    rules += statements.length - starLinks.size;
    groups.push({ comment: 'Moved VMs at their new hosts: the star rules of Fig. 2 (LCR 2004), and the Proxy sends their frames there.', statements });
  }

  const newLinks: Link[] = notes.map((n) => ({ a: name(n.pair.a), b: name(n.pair.b), proto: 'tcp', dialer: name(n.pair.a) }));
  if (newLinks.length) {
    groups.push({
      comment: 'Fast paths (VADAPT topology adaptation; the header says why each). At each end, frames from a local VM for the other take the link: exact/exact beats the default to the Proxy.',
      statements: newLinks.map(printLink),
    });
    links += newLinks.length;
  }
  // Rules for every communicating VM pair across a fast path, new or from the base.
  const noted = new Set(notes.flatMap((n) => [n.pair.a * p.size + n.pair.b, n.pair.b * p.size + n.pair.a]));
  const linked = (a: number, b: number): boolean => p.baseLinks[a * p.size + b] === 1 || noted.has(a * p.size + b);
  const perMachine = new Map<string, Rule[]>();
  for (const { a, b } of p.pairs) {
    const ha = place[a]!;
    const hb = place[b]!;
    if (ha === hb || ha === p.proxy || hb === p.proxy || !linked(ha, hb)) continue;
    for (const r of directRules({ mac: p.vms[a]!, machine: name(ha) }, { mac: p.vms[b]!, machine: name(hb) })) {
      if (!perMachine.has(r.machine)) perMachine.set(r.machine, []);
      perMachine.get(r.machine)!.push(r);
    }
  }
  for (const m of [...perMachine.keys()].sort()) {
    // By code unit, as every order in the file: the same adaptation writes the same bytes whatever the locale.
    const statements = fresh(perMachine.get(m)!).sort();
    rules += statements.length;
    if (statements.length) groups.push({ statements });
  }
  return { deletes, groups, links, rules };
}

/** The base text with the header above it and the blocks before its END. */
export function compose(baseText: string, endOffset: number, header: readonly string[], a: Additions): string {
  const blocks: string[] = [];
  if (a.deletes.length) {
    blocks.push(...blockText('DELETE', [{ comment: 'Rules that name a VM that moves: they describe where it was.', statements: a.deletes.map(printRule) }]));
  }
  if (a.groups.length) blocks.push(...blockText('ADD', a.groups));
  const before = baseText.slice(0, endOffset).replace(/\s*$/, '');
  const after = baseText.slice(endOffset);
  return [...header.flatMap((h) => (h === '' ? ['#'] : commentLines(h))), '', before, ...blocks, after.replace(/\s*$/, '')].join('\n') + '\n';
}
