import fs from 'node:fs';
import path from 'node:path';
import { cpio } from './cpio.js';

/**
 * A tiny Linux guest for QEMU: Debian's own kernel (linux-image-amd64) and
 * an initramfs built here from busybox-static and the kernel's virtio-net
 * driver (modules in Debian's kernel, loaded in dependency order). Its /init
 * brings up eth0, pings a peer until it answers, then prints the result of
 * five more pings on the serial console and stays up to answer the peer's
 * pings until the test stops it.
 */
export interface GuestParts {
  kernel: string;
  /** The virtio-net driver's modules, each after those it needs. */
  modules: { name: string; data: Buffer }[];
  busybox: Buffer;
}

/** The modules a NIC on virtio-net-pci needs; what they need in turn comes from the kernel's modules.dep. */
const WANTED = ['kernel/drivers/virtio/virtio_pci.ko', 'kernel/drivers/net/virtio_net.ko'];

/** WANTED and everything under them, each after the modules it needs; undefined if any is missing or compressed. */
function moduleOrder(version: string): string[] | undefined {
  const dir = path.join('/lib/modules', version);
  const depFile = path.join(dir, 'modules.dep');
  if (!fs.existsSync(depFile)) return undefined;
  const deps = new Map(fs.readFileSync(depFile, 'utf8').split('\n').filter((l) => l.includes(':')).map((l) => {
    const [mod, rest] = l.split(':') as [string, string];
    return [mod, rest.trim().split(/\s+/).filter(Boolean)];
  }));
  const order: string[] = [];
  const visit = (m: string): boolean => {
    if (order.includes(m)) return true;
    const needs = deps.get(m);
    // busybox's insmod reads plain .ko files only.
    if (!needs || !m.endsWith('.ko') || !fs.existsSync(path.join(dir, m)) || !needs.every(visit)) return false;
    order.push(m);
    return true;
  };
  return WANTED.every(visit) ? order.map((m) => path.join(dir, m)) : undefined;
}

const BUSYBOX = '/bin/busybox';

/** The kernel, driver and busybox found on this machine, or why they cannot be. */
export function findGuestParts(): GuestParts | string {
  const kernels = fs.existsSync('/boot') ? fs.readdirSync('/boot').filter((f) => f.startsWith('vmlinuz-')).sort().reverse() : [];
  const usable = kernels.map((k) => k.slice('vmlinuz-'.length)).find((v) => moduleOrder(v));
  if (!usable) return 'no /boot/vmlinuz-VERSION with its virtio-net modules (uncompressed) under /lib/modules/VERSION (apt-get install linux-image-amd64 tiny-initramfs)';
  if (!fs.existsSync(BUSYBOX) || !isStatic(fs.readFileSync(BUSYBOX))) return `${BUSYBOX} is missing or not statically linked (apt-get install busybox-static)`;
  return {
    kernel: `/boot/vmlinuz-${usable}`,
    modules: moduleOrder(usable)!.map((m) => ({ name: path.basename(m), data: fs.readFileSync(m) })),
    busybox: fs.readFileSync(BUSYBOX),
  };
}

/** A 64-bit ELF with no PT_INTERP program header needs no dynamic loader, so it runs alone in the initramfs. */
function isStatic(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return false;
  const phoff = Number(elf.readBigUInt64LE(32));
  const phentsize = elf.readUInt16LE(54);
  const phnum = elf.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) if (elf.readUInt32LE(phoff + i * phentsize) === 3) return false;
  return true;
}

/** Lines the guest prints that the test reads; anything else on the console is the kernel's. */
export const MARK = 'VNET-GUEST';

export function guestInitramfs(parts: GuestParts, me: string, peer: string): Buffer {
  const init = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
for m in ${parts.modules.map((m) => m.name).join(' ')}; do insmod /$m || echo "${MARK} FAIL insmod $m"; done
ip link set lo up
ip link set eth0 up
ip addr add ${me}/24 dev eth0
echo "${MARK} UP"
# The first pings may go before the peer has booted: retry until one is answered, for at most 75 s of uptime.
until ping -c 1 -W 1 ${peer} >/dev/null; do
  if [ "$(cut -d. -f1 /proc/uptime)" -ge 75 ]; then echo "${MARK} FAIL no answer from ${peer}"; break; fi
done
echo "${MARK} RESULT $(ping -c 5 -i 0.2 -W 2 ${peer} | grep 'packets transmitted')"
while :; do sleep 60; done
`;
  return cpio([
    { path: 'bin', dir: true }, { path: 'dev', dir: true }, { path: 'proc', dir: true }, { path: 'sys', dir: true },
    { path: 'dev/console', charDevice: [5, 1] },
    { path: 'bin/busybox', file: parts.busybox, mode: 0o755 },
    ...parts.modules.map((m) => ({ path: m.name, file: m.data, mode: 0o644 })),
    { path: 'init', file: Buffer.from(init), mode: 0o755 },
  ]);
}

/** QEMU's arguments for a guest booted under TCG (no KVM needed), its console on stdout, its NIC on `netdev`. */
export function guestArgs(parts: GuestParts, initrd: string, mac: string, netdev: string): string[] {
  return [
    '-machine', 'q35', '-accel', 'tcg', '-m', '192', '-no-reboot', '-serial', 'stdio',
    '-kernel', parts.kernel, '-initrd', initrd, '-append', 'console=ttyS0 quiet panic=-1',
    '-device', `virtio-net-pci,netdev=n0,mac=${mac}`, '-netdev', netdev,
  ];
}
