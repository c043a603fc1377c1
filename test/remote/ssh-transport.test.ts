import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Host } from '../../src/model/state.js';
import type { ReachError } from '../../src/remote/transport.js';
import { closingSessions, reachError } from '../support/sessions.js';
import { shCommand } from '../../src/remote/ssh/quote.js';
import { run } from '../../src/remote/ssh/exec.js';
import { connectChain } from '../../src/remote/ssh/connect.js';
import { configSources, SshConfig } from '../../src/remote/ssh/config.js';
import { SshTransport } from '../../src/remote/ssh/ssh-transport.js';
import { freePort, keygen, startSshd, type Sshd } from '../support/sshd.js';
import { localSide, noNotice, sshdForSuites, withAgent } from '../support/ssh-suites.js';
import { jest } from '@jest/globals';

const open = closingSessions();

// Each test starts daemons and SSH sessions on a shared, loaded machine: seconds, not milliseconds.
jest.setTimeout(30_000);

/**
 * SshTransport against a real OpenSSH sshd on loopback: host keys, ssh_config,
 * ProxyJump, authentication, and bootstrapping a real vnetd through it.
 */

const { sshd, suite } = await sshdForSuites('SSH transport');

let n = 0;
/** A fresh local side per test: its own home, ssh config and known_hosts. */
function side(config: (s: Sshd, home: string) => string, known?: string) {
  return localSide(sshd!, `local${++n}`, ({ home, knownHosts }) => config(sshd!, home).replaceAll('$KNOWN', knownHosts), known);
}

const plainConfig = (s: Sshd) => `Host h1 h2\n  HostName 127.0.0.1\n  Port ${s.port}\n  IdentityFile ${s.userKey}\n  UserKnownHostsFile $KNOWN\n  GlobalKnownHostsFile none\n`;
const knownLine = (s: Sshd) => `[127.0.0.1]:${s.port} ${s.hostKeyPub}\n`;
const host = (machine: string, port = 5000): Host => ({ machine, user: sshd!.user, port, iface: 'vm0' });

afterAll(async () => {
  await sshd?.stop();
});

suite('host keys', () => {
  test('first contact is refused without accept-new, and nothing is recorded', async () => {
    const { knownHosts, opts } = side(plainConfig);
    const e = await reachError(new SshTransport(opts()).open(host('h1')));
    expect(e.machine).toBe('h1');
    expect(e.message).toMatch(/is not a known host \(its key is ssh-ed25519 SHA256:/);
    expect(e.hint).toMatch(/--accept-new-host-keys/);
    expect(fs.existsSync(knownHosts)).toBe(false);
  });

  test('accept-new records the key, and the next connection is checked against it', async () => {
    const { knownHosts, opts } = side(plainConfig);
    const s = await open(new SshTransport(opts({ acceptNewHostKeys: true })), host('h1'));
    expect(s.describe).toBe(`ssh ${sshd!.user}@127.0.0.1:${sshd!.port}`);
    expect(s.overlayAddress).toBe('127.0.0.1:5000');
    expect(fs.readFileSync(knownHosts, 'utf8')).toBe(knownLine(sshd!));
    await open(new SshTransport(opts()), host('h2'));
  });

  test('a hashed entry is honoured, and HashKnownHosts records hashed', async () => {
    const { knownHosts, opts } = side((s) => plainConfig(s) + '  HashKnownHosts yes\n');
    await open(new SshTransport(opts({ acceptNewHostKeys: true })), host('h1'));
    const line = fs.readFileSync(knownHosts, 'utf8');
    expect(line).toMatch(/^\|1\|[A-Za-z0-9+/=]+\|[A-Za-z0-9+/=]+ ssh-ed25519 /);
    expect(line).not.toContain('127.0.0.1');
    await open(new SshTransport(opts()), host('h1'));
  });

  test('a changed host key is refused, naming the known_hosts line, even with accept-new', async () => {
    const other = keygen(path.join(sshd!.dir, `other${++n}`)).split(' ').slice(0, 2).join(' ');
    const { knownHosts, opts } = side(plainConfig, `# first line\n[127.0.0.1]:${sshd!.port} ${other}\n`);
    for (const acceptNewHostKeys of [false, true]) {
      const e = await reachError(new SshTransport(opts({ acceptNewHostKeys })).open(host('h1')));
      expect(e.message).toMatch(/has CHANGED/);
      expect(e.message).toContain(`${knownHosts}:2`);
      expect(e.hint).toContain(`ssh-keygen -R '[127.0.0.1]:${sshd!.port}'`);
    }
    expect(fs.readFileSync(knownHosts, 'utf8')).not.toContain(sshd!.hostKeyPub);
  });

  test('a key on record of a type ssh2 cannot verify (a security key) is passed over, and the host is checked against the one it can', async () => {
    const sk = `[127.0.0.1]:${sshd!.port} sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIBSkjCCqdumIKGrqLOWKl4MqzsfHnn95TsBSAWy6ADZ0AAAABHNzaDo=\n`;
    const { opts } = side(plainConfig, sk + knownLine(sshd!));
    await open(new SshTransport(opts()), host('h1'));
  });

  test('a @revoked key is refused', async () => {
    const { opts } = side(plainConfig, `@revoked * ${sshd!.hostKeyPub}\n${knownLine(sshd!)}`);
    expect((await reachError(new SshTransport(opts()).open(host('h1')))).message).toMatch(/revoked/);
  });
});

suite('reaching and logging in', () => {
  test('a closed port is "connection refused", with a hint', async () => {
    const port = await freePort();
    const { opts } = side(() => `Host h1\n  HostName 127.0.0.1\n  Port ${port}\n  UserKnownHostsFile $KNOWN\n  IdentityFile ${sshd!.userKey}\n`);
    const e = await reachError(new SshTransport(opts()).open(host('h1')));
    expect(e.message).toBe(`cannot connect to ${sshd!.user}@127.0.0.1:${port} (h1): connection refused`);
    expect(e.hint).toMatch(/sshd running/);
  });

  test('host names go through the resolver (injected here: nothing is asked of real DNS); a name that does not resolve is said so', async () => {
    const asked: string[] = [];
    const resolve = async (name: string): Promise<string> => {
      asked.push(name);
      if (name === 'sshd.test') return '127.0.0.1';
      throw Object.assign(new Error(`getaddrinfo ${name === 'flaky.test' ? 'EAI_AGAIN' : 'ENOTFOUND'} ${name}`), { code: name === 'flaky.test' ? 'EAI_AGAIN' : 'ENOTFOUND' });
    };
    const cfg = (s: Sshd) => `Host h1\n  HostName sshd.test\nHost h2\n  HostName nosuch.test\nHost h3\n  HostName flaky.test\nHost *\n  Port ${s.port}\n  IdentityFile ${s.userKey}\n  UserKnownHostsFile $KNOWN\n`;
    const { opts } = side(cfg, `[sshd.test]:${sshd!.port} ${sshd!.hostKeyPub}\n`);
    const t = new SshTransport(opts({ resolve }));
    // Resolved to the real sshd, and its key checked under the name as configured.
    await open(t, host('h1'));
    const missing = await reachError(t.open(host('h2')));
    expect(missing.message).toBe("cannot resolve the host name 'nosuch.test' (HostName of h2)");
    expect(missing.hint).toMatch(/HostName in ~\/\.ssh\/config/);
    expect((await reachError(t.open(host('h3')))).message).toBe("cannot resolve the host name 'flaky.test' (HostName of h3)");
    expect(asked).toEqual(['sshd.test', 'nosuch.test', 'flaky.test']);
  });

  test('a server that never speaks SSH times out within the bound', async () => {
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const { opts } = side(() => `Host h1\n  HostName 127.0.0.1\n  Port ${port}\n  ConnectTimeout 1\n  IdentityFile ${sshd!.userKey}\n`);
      const e = await reachError(new SshTransport(opts()).open(host('h1')));
      expect(e.message).toMatch(/no SSH answer from .* within 1 s/);
    } finally {
      silent.close();
    }
  });

  test('a port that is not sshd: what it answered is said, whether it hangs up or waits', async () => {
    // A web server's answer to a line it cannot read: one closes after it, one waits (the bound ends it).
    for (const hangUp of [true, false]) {
      const web = net.createServer((c) => {
        c.on('error', () => {});
        if (hangUp) c.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
        else c.write('HTTP/1.1 400 Bad Request\r\n');
      });
      await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
      const port = (web.address() as net.AddressInfo).port;
      try {
        const { opts } = side(() => `Host h1\n  HostName 127.0.0.1\n  Port ${port}\n  ConnectTimeout 1\n  IdentityFile ${sshd!.userKey}\n  UserKnownHostsFile $KNOWN\n`);
        const e = await reachError(new SshTransport(opts()).open(host('h1')));
        expect(e.message).toBe(`${sshd!.user}@127.0.0.1:${port} (h1) is not an SSH server: it answered 'HTTP/1.1 400 Bad Request' rather than identifying as SSH`);
        expect(e.hint).toBe('check Port and HostName for h1 in ~/.ssh/config: that port serves something else (ssh -v h1 shows the same)');
      } finally {
        web.close();
      }
    }
  });

  test('a port that takes the connection and drops it without a word: said so, with where to look', async () => {
    const dropper = net.createServer((c) => c.destroy());
    await new Promise<void>((r) => dropper.listen(0, '127.0.0.1', r));
    const port = (dropper.address() as net.AddressInfo).port;
    try {
      const { opts } = side(() => `Host h1\n  HostName 127.0.0.1\n  Port ${port}\n  IdentityFile ${sshd!.userKey}\n  UserKnownHostsFile $KNOWN\n`);
      const e = await reachError(new SshTransport(opts()).open(host('h1')));
      expect(e.message).toBe(`${sshd!.user}@127.0.0.1:${port} (h1) closed the connection without identifying as SSH`);
      expect(e.hint).toMatch(/^something took the connection and dropped it at once: check Port and HostName for h1 .*hosts\.deny.*MaxStartups/);
    } finally {
      dropper.close();
    }
  });

  test('accept-new with a UserKnownHostsFile that cannot be written: the key is not taken unrecorded, and what to do is said', async () => {
    // Root writes wherever permissions say no; nobody can make a file inside a file.
    const { home, opts } = side((s, home) => plainConfig(s).replace('$KNOWN', path.join(home, 'afile', 'known_hosts')));
    fs.writeFileSync(path.join(home, 'afile'), '');
    const knownHosts = path.join(home, 'afile', 'known_hosts');
    const e = await reachError(new SshTransport(opts({ acceptNewHostKeys: true })).open(host('h1')));
    expect(e.message).toMatch(new RegExp(`^${sshd!.user}@127\\.0\\.0\\.1:${sshd!.port} \\(h1\\) is not a known host \\(its key is ssh-ed25519 SHA256:\\S+\\), and vnetc cannot record it in ${knownHosts}: a directory on its path \\(${path.join(home, 'afile')} or above\\) is a file$`));
    expect(e.hint).toBe(`make ${knownHosts} a file you can write (UserKnownHostsFile in ~/.ssh/config names it), or confirm the fingerprint and add the key there yourself (ssh-keyscan -p ${sshd!.port} 127.0.0.1)`);
  });

  test('keys from ssh-agent, and the default identity when no IdentityFile is configured', async () => {
    const cfgText = (s: Sshd) => `Host h1\n  HostName 127.0.0.1\n  Port ${s.port}\n  UserKnownHostsFile $KNOWN\n`;
    const agentSide = side(cfgText, knownLine(sshd!));
    await withAgent(
      agentSide.home,
      (env) => expect(spawnSync('ssh-add', [sshd!.userKey], { env, encoding: 'utf8' }).status).toBe(0),
      async (sock) => void (await open(new SshTransport(agentSide.opts({ local: { home: agentSide.home, authSock: sock } })), host('h1'))),
    );
    const plain = side(cfgText, knownLine(sshd!));
    expect((await reachError(new SshTransport(plain.opts()).open(host('h1')))).message).toMatch(/^no SSH key to log in to .*: no agent/);
    fs.mkdirSync(path.join(plain.home, '.ssh'));
    fs.copyFileSync(sshd!.userKey, path.join(plain.home, '.ssh', 'id_ed25519'));
    await open(new SshTransport(plain.opts()), host('h1'));
  });

  test("the agent's key that is an IdentityFile is offered before its other keys, as ssh does: more of them than sshd's MaxAuthTries do not lock it out", async () => {
    const { home, opts } = side((s, home) => `Host h1\n  HostName 127.0.0.1\n  Port ${s.port}\n  IdentityFile ${path.join(home, 'mine')}\n  UserKnownHostsFile $KNOWN\n`, knownLine(sshd!));
    // Only its public half on disk: the key itself is the agent's.
    fs.writeFileSync(path.join(home, 'mine.pub'), fs.readFileSync(`${sshd!.userKey}.pub`));
    const strangers = Array.from({ length: 7 }, (_, i) => path.join(home, `stranger${i}`));
    for (const k of strangers) keygen(k);
    await withAgent(
      home,
      // sshd (MaxAuthTries 6) lets a client try six keys: the agent lists the seven strangers first.
      (env) => expect(spawnSync('ssh-add', [...strangers, sshd!.userKey], { env, encoding: 'utf8' }).status).toBe(0),
      async (sock) => void (await open(new SshTransport(opts({ local: { home, authSock: sock } })), host('h1'))),
    );
  });

  test('an agent socket nobody answers on, or that is not a socket: the key files are tried, and one line says why the agent was not', async () => {
    const { home, opts } = side(plainConfig, knownLine(sshd!));
    const dead = path.join(home, 'dead.sock');
    // A socket left behind by an agent that is gone: bound, then closed without unlinking.
    const bound = spawnSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', dead]);
    expect(bound.status).toBe(0);
    const plainFile = path.join(home, 'not-a-socket');
    fs.writeFileSync(plainFile, '');
    for (const [sock, why] of [
      ['dead.sock', 'connection refused: no agent listens there'],
      ['not-a-socket', 'not a socket'],
    ] as const) {
      const said: string[] = [];
      const transport = new SshTransport(opts({ local: { home, authSock: path.join(home, sock) }, say: (l) => said.push(l) }));
      // Two machines, one line.
      await open(transport, host('h1'));
      await open(transport, host('h2'));
      expect(said).toEqual([`the SSH agent at ~/${sock} cannot be used (${why}); going on without it`]);
    }
  });

  test('a key the server does not accept: every key tried is named', async () => {
    const stranger = path.join(sshd!.dir, `stranger${++n}`);
    keygen(stranger);
    const { opts } = side(() => `Host h1\n  HostName 127.0.0.1\n  Port ${sshd!.port}\n  IdentityFile ${stranger}\n  IdentityFile /nonexistent/key\n  IdentityFile no-such-key-vnetc\n  UserKnownHostsFile $KNOWN\n`, knownLine(sshd!));
    const e = await reachError(new SshTransport(opts()).open(host('h1')));
    expect(e.message).toMatch(/refused every key we offered/);
    expect(e.message).toContain(stranger);
    expect(e.message).toContain('/nonexistent/key: no such file');
    // A relative one is named as the path tried, in the current directory (as ssh opens it).
    expect(e.message).toContain(`${path.resolve('no-such-key-vnetc')}: no such file`);
    expect(e.hint).toMatch(/authorized_keys/);
  });

  test('ssh_config alias: wildcard Host, negation, first value wins, Port, IdentityFile with %d; the .vnet user wins over User', async () => {
    const { home, opts } = side(
      (s) =>
        `Host *-never !db-*\n  Port 1\n` +
        `Host db-* !db-x\n  HostName 127.0.0.1\n` +
        `Host db-*\n  Port ${s.port}\n  User somebody-else\n  IdentityFile %d/key\n  UserKnownHostsFile $KNOWN\n` +
        // Too late for db-1: HostName was obtained above (127.0.0.2 would refuse: sshd listens on .1 only).
        `Host *\n  HostName 127.0.0.2\n`,
      knownLine(sshd!),
    );
    fs.copyFileSync(sshd!.userKey, path.join(home, 'key'));
    fs.chmodSync(path.join(home, 'key'), 0o600);
    const s = await open(new SshTransport(opts()), host('db-1'));
    expect(s.describe).toBe(`ssh ${sshd!.user}@127.0.0.1:${sshd!.port}`);
    // db-x is excluded from the first HostName by negation and gets the catch-all's.
    const cfg = new SshConfig(configSources(home, path.join(home, 'ssh_config')), { home, localUser: 'me', authSock: undefined }, noNotice).lookup('db-x');
    expect([cfg.hostname, cfg.port, cfg.user, cfg.identityFiles]).toEqual(['127.0.0.2', sshd!.port, 'somebody-else', [path.join(home, 'key')]]);
  });

  test('ProxyJump through two hops (the same sshd twice), each hop host-key checked', async () => {
    const { opts } = side(
      (s) =>
        `Host target\n  HostName 127.0.0.1\n  Port ${s.port}\n  ProxyJump jump,${s.user}@127.0.0.1:${s.port}\n` +
        `Host jump\n  HostName 127.0.0.1\n  Port ${s.port}\n` +
        `Host *\n  IdentityFile ${s.userKey}\n  UserKnownHostsFile $KNOWN\n  GlobalKnownHostsFile none\n`,
      knownLine(sshd!),
    );
    const s = await open(new SshTransport(opts()), host('target'));
    expect(s.describe).toBe(`ssh ${sshd!.user}@127.0.0.1:${sshd!.port} via jump,127.0.0.1`);
    expect(await s.control()).toBeUndefined();
  });

  test('an ssh_config error names the file and line', async () => {
    const { configFile, opts } = side(() => `Host h1\n  Port 99999\n`);
    const e = await reachError(new SshTransport(opts()).open(host('h1')));
    expect(e.message).toBe(`ssh config: ${configFile}:2: port must be 1..65535, not '99999'`);
  });
});

suite('the daemon through SSH', () => {
  test('bootstrap: no daemon, upload, start, HELLO over the SSH control stream, stop', async () => {
    const { home, opts } = side(plainConfig, knownLine(sshd!));
    const t = new SshTransport(opts());
    const port = await freePort();
    const s = await open(t, host('h1', port));
    expect(await s.control()).toBeUndefined();
    const [ifacePort, vmPort] = [await freePort(), await freePort()];
    await s.start({ host: host('h1', port), ifaces: [`vm0=qemu-udp:listen=127.0.0.1:${ifacePort},peer=127.0.0.1:${vmPort}`] });
    const state = path.join(home, 'remote', 'state', 'h1');
    const pid = Number(fs.readFileSync(path.join(state, 'vnetd.pid'), 'utf8'));
    try {
      // Uploaded into the versioned cache, with nothing beyond Node to run it.
      const cache = fs.readdirSync(path.join(home, 'remote', 'cache'));
      expect(cache).toEqual([expect.stringMatching(/^\d+\.\d+\.\d+-[0-9a-f]{12}$/)]);
      expect(JSON.parse(fs.readFileSync(path.join(home, 'remote', 'cache', cache[0]!, 'package.json'), 'utf8')).type).toBe('module');

      const c = await s.control();
      expect(c).toBeDefined();
      expect((await c!.request('HELLO test')).ok).toBe(true);
      const devices = await c!.request('DEVICES?');
      expect(devices.data.join('\n')).toContain(`vm0 qemu-udp:`);
      c!.close();

      // A second start while it runs is refused, not a second daemon.
      expect((await reachError(s.start({ host: host('h1', port), ifaces: [] }))).message).toMatch(/already runs/);

      // A new session (a new command) finds the upload and the daemon.
      const s2 = await open(t, host('h1', port));
      const c2 = await s2.control();
      expect(c2).toBeDefined();
      c2!.close();

      await s.stop();
      expect(alive(pid)).toBe(false);
      expect(fs.existsSync(path.join(state, 'vnetd.pid'))).toBe(false);
      expect(await s.control()).toBeUndefined();
      await s.stop(); // stopping a stopped daemon is fine
      expect(fs.readFileSync(path.join(state, 'vnetd.log'), 'utf8')).toMatch(/SIGTERM: stopping/);
    } finally {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
  });

  /** A daemon for h1 started over SSH: its session, port, remote state directory and pid. */
  async function started() {
    const { home, opts } = side(plainConfig, knownLine(sshd!));
    const port = await freePort();
    const s = await open(new SshTransport(opts()), host('h1', port));
    await s.start({ host: host('h1', port), ifaces: [] });
    const state = path.join(home, 'remote', 'state', 'h1');
    return { s, port, state, pid: Number(fs.readFileSync(path.join(state, 'vnetd.pid'), 'utf8')) };
  }

  test('a daemon killed without a goodbye: its stale socket means no daemon, and it starts again', async () => {
    const { s, port, state, pid: first } = await started();
    let pid = first;
    try {
      process.kill(pid, 'SIGKILL');
      while (alive(pid)) await new Promise((r) => setTimeout(r, 10));
      expect(fs.existsSync(path.join(state, 'vnetd.sock'))).toBe(true);
      expect(await s.control()).toBeUndefined();
      await s.start({ host: host('h1', port), ifaces: [] });
      pid = Number(fs.readFileSync(path.join(state, 'vnetd.pid'), 'utf8'));
      await s.stop();
      expect(alive(pid)).toBe(false);
    } finally {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
  });

  test('a suspended daemon: reaching it fails within 10 s, naming its log and pid file, rather than wait for ever; stop still stops it', async () => {
    const { s, state, pid } = await started();
    try {
      // Its socket still accepts (the kernel queues the connection, sshd forwards to it), but nothing greets.
      process.kill(pid, 'SIGSTOP');
      expectSilent(await reachError(s.control()), state);
      // SIGTERM alone would wait for a SIGCONT that never comes.
      await s.stop();
      expect(alive(pid)).toBe(false);
    } finally {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
  });

  test('a daemon that cannot start: its own message comes back', async () => {
    const { opts } = side(plainConfig, knownLine(sshd!));
    const s = await open(new SshTransport(opts()), host('h1', await freePort()));
    const e = await reachError(s.start({ host: host('h1'), ifaces: ['vm0=qemu-udp:listen=127.0.0.1:1,peer=nowhere'] }));
    expect(e.message).toMatch(/^vnetd on h1 exited at start: .*--iface/);
    expect(e.hint).toMatch(/vnetd\.log/);
  });
});

suite('machines without what vnetd needs', () => {
  test('sshd refuses stream-local forwarding: the control stream goes through `vnetd ctl` instead', async () => {
    const strict = await startSshd(['AllowStreamLocalForwarding no']);
    if (typeof strict === 'string') throw new Error(strict);
    try {
      const { home, opts } = side(
        () => `Host strict\n  HostName 127.0.0.1\n  Port ${strict.port}\n  IdentityFile ${strict.userKey}\n  UserKnownHostsFile $KNOWN\n`,
        `[127.0.0.1]:${strict.port} ${strict.hostKeyPub}\n`,
      );
      const port = await freePort();
      const s = await open(new SshTransport(opts()), host('strict', port));
      const [ifacePort, vmPort] = [await freePort(), await freePort()];
      await s.start({ host: host('strict', port), ifaces: [`vm0=qemu-udp:listen=127.0.0.1:${ifacePort},peer=127.0.0.1:${vmPort}`] });
      const pid = Number(fs.readFileSync(path.join(home, 'remote', 'state', 'strict', 'vnetd.pid'), 'utf8'));
      try {
        const c = await s.control();
        expect((await c!.request('INFO?')).data).toContain('machine strict');
        c!.close();
        // Through `vnetd ctl` as well, a daemon that does not greet is named rather than waited on.
        process.kill(pid, 'SIGSTOP');
        // The ctl of the query above may still wait for the daemon's goodbye (60 s once its input ended): only the next one is watched.
        const earlier = ctlPids(path.join(home, 'remote', 'state', 'strict'));
        expectSilent(await reachError(s.control()), path.join(home, 'remote', 'state', 'strict'));
        // The `vnetd ctl` sshd ran for it gives up too, rather than linger there while the daemon stays suspended.
        expect(await ctlGone(path.join(home, 'remote', 'state', 'strict'), earlier)).toBe(true);
        await s.stop();
        expect(alive(pid)).toBe(false);
      } finally {
        if (alive(pid)) process.kill(pid, 'SIGKILL');
        await s.close();
      }
    } finally {
      await strict.stop();
    }
  }, 60_000);

  /** The ReachError of starting vnetd on `name`, an sshd whose sessions have PATH `pathEnv`, and the side's home: the probe refuses before any upload. */
  async function refusedStart(name: string, pathEnv: string): Promise<{ e: ReachError; home: string }> {
    const bare = await startSshd([`SetEnv PATH=${pathEnv}`]);
    if (typeof bare === 'string') throw new Error(bare);
    try {
      const { home, opts } = side(
        () => `Host ${name}\n  HostName 127.0.0.1\n  Port ${bare.port}\n  IdentityFile ${bare.userKey}\n  UserKnownHostsFile $KNOWN\n`,
        `[127.0.0.1]:${bare.port} ${bare.hostKeyPub}\n`,
      );
      const s = await open(new SshTransport(opts()), host(name));
      expect(await s.control()).toBeUndefined();
      const e = await reachError(s.start({ host: host(name), ifaces: [] }));
      expect(fs.existsSync(path.join(home, 'remote', 'cache'))).toBe(false);
      await s.close();
      return { e, home };
    } finally {
      await bare.stop();
    }
  }

  test('no node on the PATH: a clear message before any upload', async () => {
    const { e } = await refusedStart('bare', '/nonexistent');
    expect(e.message).toBe('node is not installed on bare (vnetd needs Node 20.19 or later)');
    expect(e.hint).toMatch(/install Node 20\.19 or later there/);
  });

  test('no flock on the PATH: said with what to install, before any upload', async () => {
    // Everything this machine's PATH has (node first), but flock.
    const bin = fs.mkdtempSync(path.join(sshd!.dir, 'noflock-bin-'));
    for (const dir of [path.dirname(process.execPath), ...(process.env.PATH ?? '').split(':')]) {
      for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
        if (name !== 'flock' && !fs.existsSync(path.join(bin, name))) fs.symlinkSync(path.join(dir, name), path.join(bin, name));
      }
    }
    const { e, home } = await refusedStart('noflock', bin);
    expect(e.message).toBe('flock is not installed on noflock (vnetd locks its state directory with it)');
    expect(e.hint).toBe("install util-linux (or BusyBox) there, with flock on the SSH user's PATH (that of a non-interactive SSH session)");
    expect(fs.existsSync(path.join(home, 'remote', 'state', 'noflock'))).toBe(false);
  });
});

suite('hostile names', () => {
  const pwned = () => path.join(sshd!.dir, 'pwned');
  const hostile = () => `x';touch ${pwned()};'`;

  test('validation: a hostile interface name never reaches the machine', async () => {
    const { opts } = side(plainConfig, knownLine(sshd!));
    const s = await open(new SshTransport(opts()), host('h1', await freePort()));
    const e = await reachError(s.start({ host: host('h1'), ifaces: [`${hostile()}=qemu-udp:listen=127.0.0.1:1,peer=127.0.0.1:2`] }));
    expect(e.message).toMatch(/does not start with an interface name/);
    expect((await reachError(new SshTransport(opts()).open({ ...host('h1'), machine: hostile() }))).message).toMatch(/is not a machine name/);
    expect((await reachError(new SshTransport(opts()).open({ ...host('h1'), user: `-oProxyCommand=touch ${pwned()}` }))).message).toMatch(/is not a user name/);
    expect(fs.existsSync(pwned())).toBe(false);
  });

  test('quoting alone: every hostile word arrives in the remote shell as itself', async () => {
    const { opts } = side(plainConfig, knownLine(sshd!));
    const cfg = new SshConfig(configSources(sshd!.dir, opts().configFile), { home: sshd!.dir, localUser: sshd!.user, authSock: undefined }, noNotice).lookup('h1', { user: sshd!.user });
    const [client] = await connectChain([], cfg, { machine: 'h1', acceptNew: false, timeoutMs: 5000, home: sshd!.dir });
    try {
      const words = [hostile(), `$(touch ${pwned()})`, `\`touch ${pwned()}\``, `a"b'c\\d`, ' spaced\tand\nnewline ', '', '*'];
      const r = await run(client!, shCommand(['printf', '%s\\0', ...words]));
      expect(r.code).toBe(0);
      expect(r.stdout.split('\0').slice(0, -1)).toEqual(words);
    } finally {
      client!.end();
    }
    expect(fs.existsSync(pwned())).toBe(false);
  });
});

/** Running and not a zombie (the daemon's parent is init, which may reap it late). */
function alive(pid: number): boolean {
  try {
    return !/^State:\s*Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** The pids of the `vnetd ctl` processes for the state directory `state`. */
const ctlPids = (state: string): number[] =>
  spawnSync('pgrep', ['-f', `ctl --state-dir ${state}`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);

/** Waits (up to 15 s) until no `vnetd ctl` for `state` runs but those in `earlier`. */
async function ctlGone(state: string, earlier: number[]): Promise<boolean> {
  const deadline = Date.now() + 15_000;
  const running = () => ctlPids(state).some((p) => !earlier.includes(p));
  while (running() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return !running();
}

/** The error for a daemon whose socket accepted and then said nothing, with state directory `state` there. */
function expectSilent(e: { message: string; hint?: string | undefined }, state: string): void {
  expect(e.message).toMatch(/^vnetd on \w+ accepted the connection but did not greet within 10 s$/);
  expect(e.hint).toBe(`it may be suspended (SIGSTOP) or wedged: its log is ${path.join(state, 'vnetd.log')} there; kill it (its pid is in ${path.join(state, 'vnetd.pid')} there) and start it again with vnetc up`);
}
