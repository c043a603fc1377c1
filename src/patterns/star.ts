import { hostStarRulesOn, proxyBroadcastRule, proxyVmRule } from '../gen/rules.js';
import { formatLinkConfig, formatRule, type LinkConfig } from '../wire/control.js';

/**
 * The control lines that join VMs spread over hosts through the Proxy star
 * (Fig. 1 and Fig. 2 of the LCR 2004 paper), as the patterns bed and the
 * namespace tests configure real daemons with them: each host links to the
 * Proxy, and the tables are src/gen/rules.ts's, so `vnetc gen`, `vnetc
 * adapt` and the bed agree on what a working star is.
 */

export interface StarVm {
  mac: string;
  /** The machine whose daemon the VM is attached to. */
  host: string;
  /** That daemon's interface the VM is on. */
  iface: string;
}

export interface StarOptions {
  /** host:port where the Proxy's daemon listens. */
  proxyAddress: string;
  proto: 'tcp' | 'udp';
  mode: 'encrypt' | 'auth-only';
  /** A fresh link key (64 hex digits) per host. */
  key: () => string;
}

const PROXY = 'proxy';

/** Per machine, its batch of LINK ADD and RULE ADD lines; the Proxy first (it must accept before hosts dial). */
export function starLines(vms: readonly StarVm[], opts: StarOptions): Map<string, string[]> {
  const link = (l: LinkConfig) => `LINK ADD ${formatLinkConfig(l)}`;
  const proxy: string[] = [];
  const out = new Map<string, string[]>([[PROXY, proxy]]);
  for (const host of [...new Set(vms.map((v) => v.host))]) {
    const key = opts.key();
    const mine = vms.filter((v) => v.host === host);
    const byIface = new Map<string, string[]>();
    for (const v of mine) byIface.set(v.iface, [...(byIface.get(v.iface) ?? []), v.mac]);
    proxy.push(link({ peer: host, proto: opts.proto, dial: false, address: undefined, key, mode: opts.mode }));
    proxy.push(...[proxyBroadcastRule(PROXY, host), ...mine.map((v) => proxyVmRule(PROXY, { mac: v.mac, machine: host }))].map((r) => `RULE ADD ${formatRule(r)}`));
    out.set(host, [
      link({ peer: PROXY, proto: opts.proto, dial: true, address: opts.proxyAddress, key, mode: opts.mode }),
      ...hostStarRulesOn(host, PROXY, byIface).map((r) => `RULE ADD ${formatRule(r)}`),
    ]);
  }
  return out;
}
