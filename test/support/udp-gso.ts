import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { packageRoot } from '../../src/util/package-root.js';

/**
 * Segmented UDP sends (UDP_SEGMENT) from a dgram socket, through
 * test/support/udp-gso-send.c: on loopback the receiver, with UDP_GRO on,
 * gets each as one joined buffer and its segment size, as GRO would join a
 * burst, which is the receive path a plain dgram send never reaches.
 */
export interface GsoSender {
  /** Sends `buf` in segments of `seg` bytes (0: as one datagram, no UDP_SEGMENT); resolves to 0, or the errno the kernel refused it with. */
  send(seg: number, buf: Buffer): Promise<number>;
  close(): Promise<void>;
}

/** Compiles the sender into `dir` (once per dir). */
export function buildGsoSender(dir: string): string {
  const exe = path.join(dir, 'udp-gso-send');
  if (fs.existsSync(exe)) return exe;
  const cc = spawnSync('cc', ['-O2', '-o', exe, path.join(packageRoot(), 'test', 'support', 'udp-gso-send.c')], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cannot build the segmented UDP sender with cc (apt-get install gcc): ${cc.stderr ?? cc.error?.message}`);
  return exe;
}

/** A sender on `sock` (bound; its file descriptor is lent to the helper, so the datagrams come from its address) to host:port. */
export function gsoSender(exe: string, sock: dgram.Socket, host: string, port: number): GsoSender {
  // dgram keeps its descriptor on the handle; there is no public way to it.
  const fd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
  if (!(fd >= 0)) throw new Error('the dgram socket has no file descriptor (not bound?)');
  const child: ChildProcess = spawn(exe, [host, String(port)], { stdio: ['pipe', 'pipe', 'inherit', fd] });
  const waiting: ((errno: number) => void)[] = [];
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  readline.createInterface({ input: child.stdout! }).on('line', (l) => waiting.shift()?.(Number(l)));
  child.once('exit', (code, signal) => {
    for (const w of waiting.splice(0)) w(-1);
    if (code !== 0 && signal === null) process.stderr.write(`udp-gso-send exited ${code}\n`);
  });
  return {
    send(seg, buf) {
      const head = Buffer.alloc(6);
      head.writeUInt16BE(seg);
      head.writeUInt32BE(buf.length, 2);
      return new Promise<number>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(-1);
        waiting.push(resolve);
        child.stdin!.write(Buffer.concat([head, buf]));
      });
    },
    async close() {
      child.stdin!.end();
      await exited;
    },
  };
}
