import { isGroupMac, parseMac } from '../model/mac.js';
import { isKeyword } from '../lang/tokens.js';
import { isInterfaceName, isMachineName, isUserName } from '../model/names.js';
import { InputError } from '../util/input-error.js';

/**
 * The requirements `vnetc gen` expands (docs/GEN.md): one statement per
 * line, words separated by blanks, `#` to the end of the line a comment.
 *
 *   proxy <machine> [user U] [port P] [iface I] [lan on|off]
 *   host <machine> [user U] [port P] [iface I]
 *   vm <name> <mac> on <machine>
 *   topology star | ring | all-to-all | bus
 *   edge <vm> <vm>
 *   defaults [user U] [port P] [iface I]
 */

export type TopologyKind = 'star' | 'ring' | 'all-to-all' | 'bus';
export const TOPOLOGY_KINDS: readonly TopologyKind[] = ['star', 'ring', 'all-to-all', 'bus'];

export interface MachineReq {
  machine: string;
  user: string;
  port: number;
  iface: string;
}

export interface VmReq {
  name: string;
  mac: string;
  machine: string;
}

export interface Requirements {
  proxy: MachineReq & { lan: boolean };
  hosts: MachineReq[];
  vms: VmReq[];
  topology: TopologyKind;
  /** Application edges between VMs, by name, in file order. */
  edges: [string, string][];
}

const DEFAULTS = { user: 'vnet', port: 5000, proxyIface: 'eth0', hostIface: 'vmnet1' };

interface Word {
  text: string;
  column: number;
}

function words(line: string): Word[] {
  const out: Word[] = [];
  const code = line.replace(/#.*$/, '');
  for (const m of code.matchAll(/\S+/g)) out.push({ text: m[0], column: m.index + 1 });
  return out;
}

export function parseRequirements(name: string, text: string): Requirements {
  const fail = (line: number, column: number, message: string): never => {
    throw new InputError(`${name}:${line}:${column}: ${message}`);
  };
  const defaults = { user: DEFAULTS.user, port: DEFAULTS.port, iface: undefined as string | undefined };
  let proxy: (Partial<MachineReq> & { machine: string; lan: boolean; line: number }) | undefined;
  const hosts: (Partial<MachineReq> & { machine: string; line: number })[] = [];
  const vms: (VmReq & { line: number; column: number })[] = [];
  const edges: { a: Word; b: Word; line: number }[] = [];
  let topology: TopologyKind | undefined;
  const machines = new Map<string, number>();

  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const w = words(raw);
    if (w.length === 0) return;
    const [head, ...rest] = w;
    const options = (allowed: readonly string[], from: Word[]): Record<string, Word> => {
      const out: Record<string, Word> = {};
      for (let k = 0; k < from.length; k += 2) {
        const key = from[k]!;
        if (!allowed.includes(key.text)) fail(line, key.column, `unknown option '${key.text}' for ${head!.text}; expected one of: ${allowed.join(', ')}`);
        const value = from[k + 1];
        if (!value) fail(line, key.column, `'${key.text}' needs a value`);
        if (out[key.text]) fail(line, key.column, `'${key.text}' is given twice`);
        out[key.text] = value!;
      }
      return out;
    };
    // Names go into the .vnet file, where a keyword would be read as one.
    const notKeyword = (word: Word): void => {
      if (isKeyword(word.text)) fail(line, word.column, `'${word.text}' is a keyword of the .vnet language and cannot be a name there; choose another name`);
    };
    const machineOptions = (o: Record<string, Word>): Partial<MachineReq> => {
      const out: Partial<MachineReq> = {};
      for (const w of [o.user, o.iface].filter((x): x is Word => x !== undefined).sort((x, y) => x.column - y.column)) notKeyword(w);
      if (o.user) out.user = isUserName(o.user.text) ? o.user.text : fail(line, o.user.column, `'${o.user.text}' is not a valid user name`);
      if (o.port) {
        const p = Number(o.port.text);
        out.port = /^\d+$/.test(o.port.text) && p >= 1 && p <= 65535 ? p : fail(line, o.port.column, `port '${o.port.text}' is not a whole number from 1 to 65535`);
      }
      if (o.iface) out.iface = isInterfaceName(o.iface.text) ? o.iface.text : fail(line, o.iface.column, `'${o.iface.text}' is not a valid interface name`);
      return out;
    };
    const machineName = (word: Word | undefined, what: string): string => {
      if (!word) return fail(line, head!.column, `${head!.text} needs ${what}`);
      if (!isMachineName(word.text)) fail(line, word.column, `'${word.text}' is not a valid machine name`);
      notKeyword(word);
      return word.text;
    };
    const declare = (machine: string, column: number): void => {
      const before = machines.get(machine);
      if (before !== undefined) fail(line, column, `machine '${machine}' is already declared on line ${before}`);
      machines.set(machine, line);
    };

    switch (head!.text) {
      case 'defaults': {
        const o = machineOptions(options(['user', 'port', 'iface'], rest));
        Object.assign(defaults, o);
        return;
      }
      case 'proxy': {
        if (proxy) fail(line, head!.column, `the Proxy is already declared on line ${proxy.line}; there is one`);
        const machine = machineName(rest[0], 'a machine name');
        declare(machine, rest[0]!.column);
        const o = options(['user', 'port', 'iface', 'lan'], rest.slice(1));
        if (o.lan && o.lan.text !== 'on' && o.lan.text !== 'off') fail(line, o.lan.column, `lan is 'on' or 'off', not '${o.lan.text}'`);
        proxy = { machine, line, lan: o.lan?.text !== 'off', ...machineOptions(o) };
        return;
      }
      case 'host': {
        const machine = machineName(rest[0], 'a machine name');
        declare(machine, rest[0]!.column);
        hosts.push({ machine, line, ...machineOptions(options(['user', 'port', 'iface'], rest.slice(1))) });
        return;
      }
      case 'vm': {
        if (rest.length !== 4 || rest[2]!.text !== 'on') fail(line, head!.column, 'expected: vm <name> <mac> on <machine>');
        const [vmName, macWord, , at] = rest as [Word, Word, Word, Word];
        if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(vmName.text)) fail(line, vmName.column, `'${vmName.text}' is not a VM name (letters, digits, '.', '_', '-')`);
        const mac = parseMac(macWord.text);
        if (!mac.ok) return fail(line, macWord.column, `'${macWord.text}' is not a MAC address: ${mac.reason}`);
        if (isGroupMac(mac.mac)) fail(line, macWord.column, `${mac.mac} is a broadcast or multicast address, which no VM can have`);
        const same = vms.find((v) => v.name === vmName.text || v.mac === mac.mac);
        if (same) fail(line, vmName.column, `VM ${same.name === vmName.text ? `name '${vmName.text}'` : mac.mac} is already declared on line ${same.line}`);
        vms.push({ name: vmName.text, mac: mac.mac, machine: machineName(at, 'a machine'), line, column: at.column });
        return;
      }
      case 'topology': {
        if (rest.length !== 1) fail(line, head!.column, `expected: topology ${TOPOLOGY_KINDS.join(' | ')}`);
        if (topology) fail(line, head!.column, 'the topology is already given');
        const kind = rest[0]!.text as TopologyKind;
        if (!TOPOLOGY_KINDS.includes(kind)) fail(line, rest[0]!.column, `unknown topology '${rest[0]!.text}'; expected one of: ${TOPOLOGY_KINDS.join(', ')}`);
        topology = kind;
        return;
      }
      case 'edge': {
        if (rest.length !== 2) fail(line, head!.column, 'expected: edge <vm> <vm> (two VM names)');
        edges.push({ a: rest[0]!, b: rest[1]!, line });
        return;
      }
      default:
        // A .vnet program given in its place starts with BEGIN (or HOST, where BEGIN was left out).
        if (/^(begin|host)$/i.test(head!.text)) fail(line, head!.column, `'${head!.text}' starts a .vnet program, which gen writes: it reads a requirements file (proxy, host, vm, topology, edge and defaults lines; docs/GEN.md)`);
        fail(line, head!.column, `unknown statement '${head!.text}'; expected proxy, host, vm, topology, edge or defaults`);
    }
  });

  if (!proxy) throw new InputError(`${name}: no proxy line; say which machine is the Proxy, e.g. 'proxy proxy iface eth0'`);
  const p = proxy;
  const byName = new Map(vms.map((v) => [v.name, v]));
  for (const v of vms) {
    if (v.machine === p.machine) fail(v.line, v.column, `VM '${v.name}' is on the Proxy; VMs run on hosts (declare one with 'host <machine>')`);
    if (!machines.has(v.machine)) fail(v.line, v.column, `machine '${v.machine}' is not declared; add 'host ${v.machine}'`);
  }
  const pairs: [string, string][] = [];
  for (const e of edges) {
    for (const end of [e.a, e.b]) if (!byName.has(end.text)) fail(e.line, end.column, `no VM is named '${end.text}'`);
    if (e.a.text === e.b.text) fail(e.line, e.b.column, 'an edge joins two different VMs');
    pairs.push([e.a.text, e.b.text]);
  }
  const machine = (m: Partial<MachineReq> & { machine: string }, iface: string): MachineReq => ({
    machine: m.machine,
    user: m.user ?? defaults.user,
    port: m.port ?? defaults.port,
    iface: m.iface ?? iface,
  });
  return {
    proxy: { ...machine(p, DEFAULTS.proxyIface), lan: p.lan },
    hosts: hosts.map((h) => machine(h, defaults.iface ?? DEFAULTS.hostIface)),
    vms: vms.map(({ name, mac, machine }) => ({ name, mac, machine })),
    topology: topology ?? 'star',
    edges: pairs,
  };
}
