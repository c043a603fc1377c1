import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import type ssh2 from 'ssh2';
import type { SshHostConfig } from './config.js';
import { connectChain } from './connect.js';
import { execChannel, openBound } from './exec.js';
import { ReachError } from '../transport.js';
import { forwardToSocket } from './forward.js';
import { mapBounded } from '../../util/pool.js';
import { isAlive } from '../../util/process-alive.js';
import { listenOwnerOnly } from '../../util/unix-socket.js';

/**
 * The keeper: a small detached process that holds verified SSH connections
 * for later commands, as OpenSSH's ControlPersist does. For each connection
 * it listens on a local Unix socket (owner-only, in KeeperDir's checked
 * directory); every client of that socket gets a fresh channel to the
 * machine's daemon control socket (the way the command that left it behind
 * reached it: stream-local forwarding or `vnetd ctl`), and the bytes are
 * relayed unchanged. A connection unused for `idleMs` is closed, as is one
 * whose SSH connection drops; the process exits when it holds none.
 *
 * It connects on its own (a connection cannot be handed across processes),
 * with the same ssh_config entries the command used, and with unknown host
 * keys refused: the command has already checked (and, if told to, recorded)
 * the key, so the keeper only ever talks to that key.
 */

/** How a kept connection reaches the daemon: the socket to forward to, or the command whose stdio is the control stream. */
export type ControlRoute = { socket: string } | { exec: string };

export interface KeptSpec {
  /** KeeperDir.keyOf: names the local socket and pid file. */
  key: string;
  machine: string;
  hops: SshHostConfig[];
  target: SshHostConfig;
  route: ControlRoute;
}

export interface KeeperJob {
  /** The KeeperDir directory (already checked by the command). */
  dir: string;
  home: string;
  idleMs: number;
  timeoutMs: number;
  kept: KeptSpec[];
}

/**
 * The longest a keeper waits for sshd to open a client's channel, however
 * long the connect bound: a command gives up on a keeper that brings no
 * greeting within KeeperDir's wait, which must cover this bound for the
 * command to read the keeper's `ERR E_CHANNEL` (and act on it) rather than
 * give up first. A channel on a connection already made needs one round trip.
 */
export const KEPT_OPEN_MS = 3000;

/** Handshakes under way at once. */
const CONNECTING_AT_ONCE = 8;

export const socketPath = (dir: string, key: string): string => `${dir}/${key}.sock`;
export const pidPath = (dir: string, key: string): string => `${dir}/${key}.pid`;
/** Each running keeper process, by pid. */
export const procPath = (dir: string, pid: number): string => `${dir}/proc-${pid}`;


/** Runs a job read from `jobFile` (which is removed); resolves when nothing is kept any more. */
export async function runKeeper(jobFile: string): Promise<void> {
  const job = JSON.parse(readFileSync(jobFile, 'utf8')) as KeeperJob;
  rmSync(jobFile, { force: true });
  // Known from the start, connecting or not, so that `ssh-close` finds it.
  const me = procPath(job.dir, process.pid);
  writeFileSync(me, '', { mode: 0o600 });
  process.on('exit', () => rmSync(me, { force: true }));
  const held = new Set<() => void>();
  const kept: Promise<void>[] = [];
  let ending = false;
  const endAll = () => {
    ending = true;
    for (const end of [...held]) end();
  };
  process.on('SIGTERM', endAll);
  process.on('SIGINT', endAll);
  process.on('SIGHUP', endAll);
  // Bounded: sshd drops unauthenticated connections beyond MaxStartups (10 by default).
  await mapBounded(job.kept, CONNECTING_AT_ONCE, async (spec) => {
    let clients: ssh2.Client[];
    const hostKeys: string[] = [];
    try {
      clients = await connectChain(spec.hops, spec.target, {
        machine: spec.machine,
        acceptNew: false,
        timeoutMs: job.timeoutMs,
        home: job.home,
        onHostKey: (hop, blob) => void (hostKeys[hop] = blob.toString('base64')),
      });
    } catch {
      return; // Nothing kept: the next command connects itself and reports what fails.
    }
    if (ending) return void closeChain(clients);
    // Serving starts now; the slot is free for the next connection while this one is kept.
    kept.push(new Promise<void>((resolve) => keep(job, spec, clients, hostKeys, held, resolve)));
  });
  await Promise.all(kept);
}

function keep(job: KeeperJob, spec: KeptSpec, clients: ssh2.Client[], hostKeys: string[], held: Set<() => void>, done: () => void): void {
  const client = clients[clients.length - 1]!;
  const sock = socketPath(job.dir, spec.key);
  const pidFile = pidPath(job.dir, spec.key);
  const relays = new Set<net.Socket>();
  let idle: NodeJS.Timeout | undefined;
  let ended = false;
  const server = net.createServer((local) => relay(local));
  const end = () => {
    if (ended) return;
    ended = true;
    held.delete(end);
    clearTimeout(idle);
    server.close();
    for (const r of relays) r.destroy();
    // Only our own files: a later keeper may have taken the key over.
    if (readPid(pidFile) === process.pid) {
      rmSync(sock, { force: true });
      rmSync(pidFile, { force: true });
    }
    closeChain(clients);
    done();
  };
  held.add(end);
  const arm = () => {
    clearTimeout(idle);
    if (relays.size === 0) idle = setTimeout(end, job.idleMs);
  };
  for (const c of clients) {
    c.on('close', end);
    c.on('error', end);
  }

  const relay = (local: net.Socket): void => {
    relays.add(local);
    clearTimeout(idle);
    local.on('error', () => local.destroy());
    local.on('close', () => {
      relays.delete(local);
      arm();
    });
    local.pause();
    void open(client, spec, job.timeoutMs).then(
      (ch) => {
        if (local.destroyed) return void ch.close();
        ch.on('error', () => local.destroy());
        ch.on('close', () => local.destroy());
        local.on('close', () => ch.close());
        local.pipe(ch);
        ch.pipe(local);
        local.resume();
      },
      (e: Error) => {
        // Said where the greeting would be, so the client knows why it has none and connects itself.
        if (!local.destroyed) local.end(`ERR E_CHANNEL ${oneLine(e.message)}\n`);
        // A connection whose channels do not open would hold up every later command for the bound: it is let go, and the next command connects afresh.
        if (e instanceof ReachError) end();
      },
    );
  };

  // Another keeper got there first (two commands close to each other both asked for one): it serves, this one goes.
  const other = readPid(pidFile);
  if (other !== undefined && other !== process.pid && isAlive(other)) return end();
  // A socket of the same name otherwise is a dead keeper's.
  rmSync(sock, { force: true });
  listenOwnerOnly(server, sock, () => {
    // The pid, then the host keys (base64, jump hosts first) this connection verified: a command checks them against its own known_hosts before using it.
    writeFileSync(pidFile, `${process.pid}\n${hostKeys.join(' ')}\n`, { mode: 0o600 });
    arm();
  });
  server.on('error', end);
}

/**
 * A channel to the daemon's control stream, opened within the connect
 * bound as a command's would be, and at most KEPT_OPEN_MS; rejects with
 * openBound's ReachError when sshd does not open it in time, or with a
 * plain Error when it refuses.
 */
async function open(client: ssh2.Client, spec: KeptSpec, timeoutMs: number): Promise<ssh2.ClientChannel> {
  const { machine, route } = spec;
  const ms = Math.min(spec.target.connectTimeoutMs ?? timeoutMs, KEPT_OPEN_MS);
  if ('socket' in route) {
    const ch = await forwardToSocket(client, route.socket, openBound(machine, ms, `a channel to ${route.socket}`));
    if (!ch) throw new Error(`sshd on ${machine} would not open a channel to ${route.socket}`);
    return ch;
  }
  return (await execChannel(client, route.exec, openBound(machine, ms))).ch;
}

const oneLine = (text: string): string => text.replace(/[\r\n]+/g, ' ');

function closeChain(clients: ssh2.Client[]): void {
  for (const c of [...clients].reverse()) c.end();
}

/** A keeper's pid file: its pid, and the host keys its connection verified. */
export function readPidFile(file: string): { pid: number; hostKeys: Buffer[] } | undefined {
  try {
    const [first, keys] = readFileSync(file, 'utf8').split('\n');
    const pid = Number(first);
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    return { pid, hostKeys: (keys ?? '').split(' ').filter(Boolean).map((k) => Buffer.from(k, 'base64')) };
  } catch {
    return undefined;
  }
}

export const readPid = (file: string): number | undefined => readPidFile(file)?.pid;
