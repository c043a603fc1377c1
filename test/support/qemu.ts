import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { toolMissing } from './tools.js';

/**
 * A real qemu-system-x86_64 run by a test, headless, with what it printed
 * kept for the failure message. Always stopped by the test that started it.
 */
export const QEMU = 'qemu-system-x86_64';

/** Why QEMU tests cannot run here, printed once; undefined when they can. */
export const qemuMissing = (): string | undefined => toolMissing(QEMU, ['--version'], 'qemu-system-x86');

export interface Qemu {
  proc: ChildProcess;
  /** Everything QEMU (and a guest on its serial port) printed so far. */
  output(): string;
  /** '' while QEMU runs; once it has exited, a line saying so with the command line and its output. */
  gone(): string;
}

export function startQemu(args: string[]): Qemu {
  const all = ['-nodefaults', '-display', 'none', '-monitor', 'none', ...args];
  // stdin stays an open pipe: a guest's serial port on stdio must not read end-of-file.
  const proc = spawn(QEMU, all, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b));
  proc.stderr!.on('data', (b: Buffer) => (out += b));
  proc.on('error', (e) => (out += `\n${e.message}`));
  return {
    proc,
    output: () => out,
    gone: () => (proc.exitCode !== null || proc.signalCode !== null ? `: QEMU exited (${proc.exitCode ?? proc.signalCode}):\n${QEMU} ${all.join(' ')}\n${out}` : ''),
  };
}

export async function stopQemu({ proc }: Qemu): Promise<void> {
  proc.stdin?.destroy();
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const hard = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(hard);
}

/** Waits until `ok`, or QEMU exits (the error then says why), or 60 seconds pass. */
export async function until(what: string, ok: () => boolean, qemu?: Qemu, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    const gone = qemu?.gone() ?? '';
    if (gone) throw new Error(`waiting for ${what}${gone}`);
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${qemu ? `; QEMU printed:\n${qemu.output()}` : ''}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** `n` distinct UDP ports on 127.0.0.1 that nothing holds now (all held at once while chosen, so none repeats), for vnetd's and QEMU's datagram ends. */
export async function freeUdpPorts(n: number): Promise<number[]> {
  const socks = await Promise.all(Array.from({ length: n }, () => new Promise<dgram.Socket>((resolve) => {
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1', () => resolve(s));
  })));
  const ports = socks.map((s) => s.address().port);
  await Promise.all(socks.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}
