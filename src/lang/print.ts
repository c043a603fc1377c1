import type { Address, Host, Link, Rule, State } from '../model/state.js';
import { allRules } from '../model/state.js';

/**
 * The model written back as .vnet statements, in the canonical spelling of
 * `vnetc fmt` (LANGUAGE.md, "Formatting"), using the Fig. 4 forms wherever
 * they say everything: plans, `show --vnet` and generated files all print
 * through here.
 */

export function printAddress(a: Address): string {
  switch (a.q) {
    case 'exact':
      return a.mac;
    case 'not':
      return `NOT ${a.mac}`;
    case 'any':
      return 'ANY';
    case 'none':
      return 'NONE';
  }
}

export function printHost(h: Host): string {
  return `HOST ${h.user} AT ${h.machine} ${h.port} ${h.iface}`;
}

/** `LINK a b` when the link is TCP dialed by its first end (Fig. 4); the Fig. 5 form otherwise. */
export function printLink(l: Link): string {
  if (l.proto === 'tcp' && l.dialer === l.a) return `LINK ${l.a} ${l.b}`;
  return `LINK ${l.proto.toUpperCase()} ${l.a} ${l.b}${l.dialer === l.a ? '' : ` ${l.dialer}`}`;
}

export function printRule(r: Rule): string {
  const dest = r.dest.kind === 'link' ? `${r.machine} ${r.dest.to}` : r.dest.iface;
  return `FORWARD ${r.machine} ${printAddress(r.src)} ${printAddress(r.dst)} ${dest}`;
}

/** A whole state as one program that evaluates back to it. */
export function printState(state: State, header: readonly string[] = []): string {
  const out = header.map((line) => (line ? `# ${line}` : '#'));
  out.push('BEGIN');
  for (const h of state.hosts.values()) out.push(`  ${printHost(h)}`);
  const body = [...[...state.links.values()].map(printLink), ...[...allRules(state)].map(printRule)];
  if (body.length) out.push('', '  ADD', ...body.map((s) => `    ${s}`));
  out.push('END');
  return out.join('\n') + '\n';
}
