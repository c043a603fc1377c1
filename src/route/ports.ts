import type { Reached } from '../remote/fetch.js';
import type { PortState, PortStates } from './trace.js';

/**
 * The ports as each daemon reported them when route asked: a link by its
 * own end's state (LINKS?), which is what that daemon forwards by; an
 * interface is up while it is open (DEVICES?), as vnetd attaches it on
 * opening, unless its device is missing (`device=missing`: vnetd waits for
 * it, with the interface down). A daemon that did not report has no table
 * either, so route never asks about its ports.
 */
export function reportedPorts(reached: ReadonlyMap<string, Reached>): PortStates {
  const links = new Map<string, PortState>();
  const ifaces = new Map<string, PortState>();
  for (const [machine, r] of reached) {
    for (const l of r.report?.links ?? []) links.set(`${machine} ${l.link.peer}`, l.state);
    for (const d of r.report?.devices ?? []) ifaces.set(`${machine} ${d.split(' ')[0]}`, / device=missing\b/.test(d) ? 'down' : 'up');
  }
  return (machine, dest) => (dest.kind === 'link' ? links : ifaces).get(`${machine} ${dest.kind === 'link' ? dest.to : dest.iface}`) ?? 'absent';
}
