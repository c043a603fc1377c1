import { jest } from '@jest/globals';
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Host } from '../../src/model/state.js';
import { SshTransport } from '../../src/remote/ssh/ssh-transport.js';
import { ReachError } from '../../src/remote/transport.js';
import { closingSessions } from '../support/sessions.js';
import { keygen } from '../support/sshd.js';
import { localSide, sshdForSuites, withAgent } from '../support/ssh-suites.js';

const open = closingSessions();
const run = promisify(execFile);

jest.setTimeout(30_000);

/**
 * Which keys are offered, and how often, against a real sshd that allows
 * two failed offers per login (MaxAuthTries 2, logging each refused key):
 * a key offered twice uses up both, and the login fails before the key the
 * server takes gets its turn.
 */

const { sshd, suite } = await sshdForSuites('SSH key order', ['MaxAuthTries 2', 'LogLevel VERBOSE']);

const host: Host = { machine: 'h1', user: '', port: 5000, iface: 'vm0' };

afterAll(async () => {
  await sshd?.stop();
});

let n = 0;
/** A local side whose h1 names `stranger` (a key the server refuses) and then the authorized key, with `extra` config. */
function side(extra: string) {
  const s = sshd!;
  const name = `order${++n}`;
  const { home, configFile, opts } = localSide(
    s,
    name,
    ({ home, knownHosts }) =>
      `Host h1\n${extra}  HostName 127.0.0.1\n  Port ${s.port}\n  User ${s.user}\n  IdentityFile ${path.join(home, 'stranger')}\n  IdentityFile ${s.userKey}\n  UserKnownHostsFile ${knownHosts}\n  GlobalKnownHostsFile none\n`,
    `[127.0.0.1]:${s.port} ${s.hostKeyPub}\n`,
    // Nobody to ask for a passphrase: no terminal, no askpass.
    (home) => ({ passphrase: { env: {}, terminal: path.join(home, 'no-tty') } }),
  );
  const stranger = path.join(home, 'stranger');
  keygen(stranger);
  const fp = spawnSync('ssh-keygen', ['-l', '-f', `${stranger}.pub`], { encoding: 'utf8' }).stdout.split(' ')[1]!;
  return { home, configFile, opts, stranger, fp };
}

/** How many times sshd refused the key with fingerprint `fp` in the login it logged after `from` (before it accepted one: sshd logs in order). */
function refusals(from: number, fp: string): number {
  const lines = sshd!.log().slice(from).split(/\r?\n/);
  const accepted = lines.findIndex((l) => l.startsWith('Accepted publickey'));
  expect(accepted).toBeGreaterThan(-1);
  return lines.slice(0, accepted).filter((l) => l.startsWith('Failed publickey') && l.endsWith(` ${fp}`)).length;
}

suite('the order keys are offered in', () => {
  test.each([
    ['an unprotected IdentityFile', false, ''],
    ['a passphrase-protected IdentityFile, under IdentitiesOnly', true, '  IdentitiesOnly yes\n'],
  ])('a key both in the agent and %s is offered once, by the agent', async (_what, isProtected, extra) => {
    const s = side(extra);
    if (isProtected) expect(spawnSync('ssh-keygen', ['-q', '-p', '-N', 'not asked for', '-f', s.stranger]).status).toBe(0);
    await withAgent(
      s.home,
      // The agent holds the key unprotected (ssh-add of a copy made before the file was protected would do the same).
      (env) => {
        const plain = path.join(s.home, 'plain');
        fs.copyFileSync(s.stranger, plain);
        fs.chmodSync(plain, 0o600);
        if (isProtected) expect(spawnSync('ssh-keygen', ['-q', '-p', '-P', 'not asked for', '-N', '', '-f', plain]).status).toBe(0);
        expect(spawnSync('ssh-add', ['-q', plain], { env, stdio: 'ignore' }).status).toBe(0);
      },
      async (sock) => {
        // ssh itself logs in so: the reference.
        const from = sshd!.log().length;
        // Not spawnSync: sshd's log is read by this process's event loop meanwhile.
        const ssh = await run('ssh', ['-F', s.configFile, '-o', 'BatchMode yes', 'h1', 'true'], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
        expect(ssh.stderr).toBe('');
        expect(refusals(from, s.fp)).toBe(1);

        const before = sshd!.log().length;
        await open(new SshTransport(s.opts({ local: { home: s.home, authSock: sock } })), { ...host, user: sshd!.user });
        expect(refusals(before, s.fp)).toBe(1);
      },
    );
  });

  // sshd drops the connection after MaxAuthTries refusals: that is said with what was offered and how ssh users get past it, not as ssh2's bare words.
  test('an agent with more keys than the server lets a login try: the failure names them and says to pick one', async () => {
    const s = side('');
    await withAgent(
      s.home,
      (env) => {
        for (const k of ['other1', 'other2']) {
          keygen(path.join(s.home, k));
          expect(spawnSync('ssh-add', ['-q', path.join(s.home, k)], { env, stdio: 'ignore' }).status).toBe(0);
        }
        expect(spawnSync('ssh-add', ['-q', s.stranger], { env, stdio: 'ignore' }).status).toBe(0);
      },
      async (sock) => {
        const e = await open(new SshTransport(s.opts({ local: { home: s.home, authSock: sock } })), { ...host, user: sshd!.user }).then(
          () => undefined,
          (x: unknown) => x as ReachError,
        );
        expect(e).toBeInstanceOf(ReachError);
        expect(e!.message).toBe(`${sshd!.user}@127.0.0.1:${sshd!.port} (h1) ended the login after too many refused keys (sshd's MaxAuthTries; the keys, in the order offered: the agent's keys (~/agent.sock); ~/stranger; ${sshd!.userKey})`);
        expect(e!.hint).toBe(`set IdentitiesOnly yes and the IdentityFile the server takes for h1 in ~/.ssh/config, so that only that key is offered`);
      },
    );
  });

  test('with the agent unusable, the file is offered itself', async () => {
    const s = side('');
    const said: string[] = [];
    // Not a socket: the agent lists nothing, so nothing stands in for the file.
    const notSock = path.join(s.home, 'not-a-socket');
    fs.writeFileSync(notSock, '');
    const before = sshd!.log().length;
    await open(new SshTransport(s.opts({ local: { home: s.home, authSock: notSock }, say: (l) => said.push(l) })), { ...host, user: sshd!.user });
    expect(refusals(before, s.fp)).toBe(1);
    expect(said).toEqual([`the SSH agent at ~/not-a-socket cannot be used (not a socket); going on without it`]);
  });
});
