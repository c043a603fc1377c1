import type { Reached } from '../remote/fetch.js';
import type { PortState, PortStates } from './trace.js';

/**
 * The ports as each daemon reported them when route asked: a link by its
 * own end's state (LINKS?), which is what that daemon forwards by; an
 * interface is up while it is open (DEVICES?), as vnetd attaches it on
 * opening. A daemon that did not report has no table either, so route
 * never asks about its ports.
 */
export function reportedPorts(reached: ReadonlyMap<string, Reached>): PortStates {
  const links = new Map<string, PortState>();
  const ifaces = new Set<string>();
  for (const [machine, r] of reached) {
    for (const l of r.report?.links ?? []) links.set(`${machine} ${l.link.peer}`, l.state);
    for (const d of r.report?.devices ?? []) ifaces.add(`${machine} ${d.split(' ')[0]}`);
  }
  return (machine, dest) =>
    dest.kind === 'link' ? (links.get(`${machine} ${dest.to}`) ?? 'absent') : ifaces.has(`${machine} ${dest.iface}`) ? 'up' : 'absent';
}
