import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import type { Host } from '../../src/model/state.js';
import { configSources, SshConfig } from '../../src/remote/ssh/config.js';
import { KeeperDir } from '../../src/remote/ssh/keeper-dir.js';
import { pidPath, socketPath } from '../../src/remote/ssh/keeper.js';
import { SshTransport } from '../../src/remote/ssh/ssh-transport.js';
import { closingSessions, reachError } from '../support/sessions.js';
import { noNotice } from '../support/ssh-suites.js';
import { keygen } from '../support/sshd.js';
import { jest } from '@jest/globals';

/**
 * Servers that log us in and then never answer (ssh2's own Server, in
 * process): every channel open and every short remote command is bounded,
 * and the error says which step there did not answer.
 */

jest.setTimeout(30_000);

const open = closingSessions();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-bounds-'));
const hostKey = path.join(dir, 'host');
const hostKeyPub = keygen(hostKey).split(' ').slice(0, 2).join(' ');
const userKey = path.join(dir, 'user');
keygen(userKey);
const servers: { server: ssh2.Server; clients: Set<ssh2.Connection> }[] = [];

afterAll(async () => {
  for (const { server, clients } of servers) {
    for (const c of clients) c.end();
    await new Promise((r) => server.close(r));
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

type Stubbornness = 'no session' | 'stuck shell' | 'no tcpip' | 'no streamlocal';

/** A server that accepts any login, then withholds what `how` says; resolves its port. */
async function stubborn(how: Stubbornness): Promise<number> {
  const clients = new Set<ssh2.Connection>();
  const server = new ssh2.Server({ hostKeys: [fs.readFileSync(hostKey)] }, (client) => {
    clients.add(client);
    client.on('error', () => {});
    client.on('close', () => clients.delete(client));
    client.on('authentication', (ctx) => ctx.accept());
    client.on('ready', () => {
      // A listener that never calls accept or reject: the request stays unanswered (without one, ssh2 refuses it).
      if (how === 'no session') client.on('session', () => {});
      if (how === 'no tcpip') client.on('tcpip', () => {});
      if (how === 'no streamlocal') client.on('openssh.streamlocal', () => {});
      if (how === 'stuck shell') client.on('session', (accept) => accept().on('exec', (accept) => void accept()));
    });
  });
  servers.push({ server, clients });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

let n = 0;
/** A local side: its home, and an ssh_config of `config` plus the key and known_hosts (holding the servers at `ports`). */
function localFiles(config: string, ports: number[]): { home: string; configFile: string } {
  const home = path.join(dir, `local${++n}`);
  fs.mkdirSync(home);
  const knownHosts = path.join(home, 'known_hosts');
  fs.writeFileSync(knownHosts, ports.map((p) => `[127.0.0.1]:${p} ${hostKeyPub}\n`).join(''));
  const configFile = path.join(home, 'ssh_config');
  fs.writeFileSync(configFile, `${config}Host *\n  IdentityFile ${userKey}\n  UserKnownHostsFile ${knownHosts}\n  GlobalKnownHostsFile none\n`);
  return { home, configFile };
}

function transport(config: string, ports: number[], remoteRoot: string): SshTransport {
  const { home, configFile } = localFiles(config, ports);
  return new SshTransport({ configFile, local: { home, authSock: undefined }, remoteRoot, connectTimeoutMs: 5000 });
}

const host: Host = { machine: 'h1', user: 'vnet', port: 5000, iface: 'vm0' };

test('a server that logs us in but never opens a session: named, with the bound, rather than waited on for ever', async () => {
  const port = await stubborn('no session');
  const t = transport(`Host h1\n  HostName 127.0.0.1\n  Port ${port}\n  ConnectTimeout 1\n`, [port], '/srv/vnet');
  const s = await open(t, host);
  const e = await reachError(s.control());
  expect(e.message).toBe('sshd on h1 accepted the login but did not open a session within 1 s');
  expect(e.hint).toMatch(/MaxSessions/);
});

test('a login shell that never gets going: the command is given up on, saying what it was for', async () => {
  const port = await stubborn('stuck shell');
  const t = transport(`Host h1\n  HostName 127.0.0.1\n  Port ${port}\n  ConnectTimeout 1\n`, [port], 'relative');
  const s = await open(t, host);
  const e = await reachError(s.control());
  expect(e.message).toBe('a command on h1 (asking for the home directory) did not finish within 1 s');
  expect(e.hint).toMatch(/login shell may be stuck/);
});

test('a jump host that takes the request for the next hop and never answers it', async () => {
  const jump = await stubborn('no tcpip');
  const t = transport(`Host h1\n  HostName 127.0.0.1\n  Port 2222\n  ConnectTimeout 1\n  ProxyJump jump\nHost jump\n  HostName 127.0.0.1\n  Port ${jump}\n`, [jump], '/srv/vnet');
  const e = await reachError(t.open(host));
  expect(e.message).toBe('jump host jump did not open a connection to 127.0.0.1:2222 within 1 s');
  expect(e.hint).toMatch(/reachable from jump/);
});

/** Everything a client of a socket reads until the other end closes it. */
function readAll(sock: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(sock);
    let text = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => (text += d));
    c.on('error', reject);
    c.on('close', () => resolve(text));
  });
}

test('a keeper whose channel to the daemon does not open: its client is told so in place of the greeting, and the connection is let go', async () => {
  for (const [how, route, what] of [
    ['no streamlocal', { socket: '/srv/vnet/h1.sock' }, 'a channel to /srv/vnet/h1.sock'],
    ['no session', { exec: 'vnetd ctl' }, 'a session'],
  ] as const) {
    const port = await stubborn(how);
    const { home, configFile } = localFiles(`Host h1\n  HostName 127.0.0.1\n  Port ${port}\n  ConnectTimeout 1\n`, [port]);
    const target = new SshConfig(configSources(home, configFile), { home, localUser: 'me', authSock: undefined }, noNotice).lookup('h1', { user: 'vnet' });
    const keepers = new KeeperDir(path.join(home, 'kept'));
    const key = keepers.keyOf({ machine: 'h1', hops: [], target, configFile, remoteRoot: '/srv/vnet' });
    keepers.spawn([{ key, machine: 'h1', hops: [], target, route }], { home, idleMs: 30_000, timeoutMs: 5000 });
    try {
      const sock = socketPath(path.join(home, 'kept'), key);
      while (!fs.existsSync(pidPath(path.join(home, 'kept'), key))) await new Promise((r) => setTimeout(r, 20));
      expect(await readAll(sock)).toBe(`ERR E_CHANNEL sshd on h1 accepted the login but did not open ${what} within 1 s\n`);
      // Let go: the keeper held nothing else, so it is gone, and its socket with it.
      while (fs.existsSync(sock) || fs.readdirSync(path.join(home, 'kept')).some((f) => f.startsWith('proc-'))) await new Promise((r) => setTimeout(r, 20));
    } finally {
      await keepers.stopAll();
    }
  }
});
