/**
 * The control lines that join VMs spread over hosts through the Proxy star
 * (Fig. 1 and Fig. 2 of the LCR 2004 paper): each host links to the Proxy;
 * the Proxy sends each VM's unicast to its host and broadcasts to every
 * host; a host delivers to its VMs and sends its VMs' other frames to the
 * Proxy. Several VMs may share one interface; broadcasts reach every
 * interface and the Proxy at once (rules of equal priority).
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

const BCAST = 'ff:ff:ff:ff:ff:ff';

/** Per machine, its batch of LINK ADD and RULE ADD lines; the Proxy first (it must accept before hosts dial). */
export function starLines(vms: readonly StarVm[], opts: StarOptions): Map<string, string[]> {
  const proto = opts.proto.toUpperCase();
  const mode = opts.mode === 'auth-only' ? ' AUTH-ONLY' : '';
  const proxy: string[] = [];
  const out = new Map<string, string[]>([['proxy', proxy]]);
  for (const host of [...new Set(vms.map((v) => v.host))]) {
    const key = opts.key();
    const mine = vms.filter((v) => v.host === host);
    proxy.push(`LINK ADD ${host} ${proto} ACCEPT - ${key}${mode}`, `RULE ADD ANY ${BCAST} LINK ${host}`);
    const lines = [`LINK ADD proxy ${proto} DIAL ${opts.proxyAddress} ${key}${mode}`, `RULE ADD ANY ${BCAST} LINK proxy`];
    for (const iface of new Set(mine.map((v) => v.iface))) lines.push(`RULE ADD ANY ${BCAST} IFACE ${iface}`);
    for (const v of mine) {
      proxy.push(`RULE ADD ANY ${v.mac} LINK ${host}`);
      lines.push(`RULE ADD ANY ${v.mac} IFACE ${v.iface}`, `RULE ADD ${v.mac} NONE LINK proxy`);
    }
    out.set(host, lines);
  }
  return out;
}
