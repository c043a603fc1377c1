import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { commOf, descendants } from './descendants.js';

/**
 * A real OpenSSH sshd for tests: its own host key, one authorized user key,
 * listening on a free loopback port, with every file in a temp directory.
 * The SSH user is whoever runs the tests (root in CI, hence
 * PermitRootLogin prohibit-password).
 */

export interface Sshd {
  port: number;
  dir: string;
  user: string;
  /** The authorized private key. */
  userKey: string;
  /** The host's public key line (`ssh-ed25519 AAAA…`). */
  hostKeyPub: string;
  /** What sshd has logged so far (LogLevel ERROR unless the extra config says otherwise). */
  log(): string;
  /** The sshd processes serving the connections made so far (the listener's descendants that are sshd), to suspend them. */
  sessions(): number[];
  stop(): Promise<void>;
}

const SSHD = '/usr/sbin/sshd';

/** A TCP port free on `host` a moment ago. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export function keygen(file: string): string {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'vnetc-test', '-f', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr || r.error?.message}`);
  return fs.readFileSync(`${file}.pub`, 'utf8').trim();
}

/** Starts sshd, or resolves the reason it cannot run here (for a skip message). */
export async function startSshd(extraConfig: string[] = []): Promise<Sshd | string> {
  if (!fs.existsSync(SSHD)) return `${SSHD} is not installed (apt-get install openssh-server)`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-sshd-'));
  const hostKey = path.join(dir, 'host_ed25519');
  const userKey = path.join(dir, 'id_ed25519');
  const hostKeyPub = keygen(hostKey).split(' ').slice(0, 2).join(' ');
  fs.writeFileSync(path.join(dir, 'authorized_keys'), keygen(userKey) + '\n');
  // Debian's sshd refuses to start without its privilege separation directory, which systemd normally makes.
  if (process.getuid?.() === 0) fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  const cfg = path.join(dir, 'sshd_config');
  fs.writeFileSync(
    cfg,
    [
      // First: for most keywords sshd takes the first value it reads, so these win over the defaults below.
      ...extraConfig,
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'StrictModes no',
      'UsePAM no',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'AllowTcpForwarding yes',
      'Subsystem sftp internal-sftp',
      'LogLevel ERROR',
    ].join('\n') + '\n',
  );
  const proc: ChildProcess = spawn(SSHD, ['-D', '-e', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr!.on('data', (b: Buffer) => (log += b.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 5000;
  while (!(await answers(port))) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      await stop();
      return `sshd did not start: ${log.trim() || 'no message'}`;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { port, dir, user: os.userInfo().username, userKey, hostKeyPub, log: () => log, sessions: () => sshdDescendants(proc.pid!), stop };
}

/** sshd processes below `root` (a daemon a session started is below it too until it detaches, and is not sshd). */
const sshdDescendants = (root: number): number[] => descendants(root).filter((p) => commOf(p) === 'sshd');

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
