import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { SshTransportOptions } from '../../src/remote/ssh/ssh-transport.js';
import { startSshd, type Sshd } from './sshd.js';

/*
 * Fixtures the SSH test files share (jest's, so not in sshd.ts, which the
 * benchmarks build too).
 */

/**
 * An sshd for a test file, and the `describe` to put its suites in: the
 * real one, or `describe.skip` with the reason said once when sshd cannot
 * run here.
 */
export async function sshdForSuites(what: string, extraConfig: string[] = []): Promise<{ sshd: Sshd | undefined; suite: typeof describe }> {
  const started = await startSshd(extraConfig);
  if (typeof started === 'string') {
    console.warn(`SKIPPING the ${what} tests: ${started}`);
    return { sshd: undefined, suite: describe.skip };
  }
  return { sshd: started, suite: describe };
}

/** For lookups that expect no notice (an unapplied Match, say): one fails the test. */
export const noNotice = (line: string): never => {
  throw new Error(`unexpected notice: ${line}`);
};

/**
 * A local side for one SSH test: a fresh home under the sshd's directory,
 * an ssh_config written from `config` (told where home and known_hosts
 * are), known_hosts holding `known` when given, and SshTransport options
 * rooted there, `defaults` and then each call's `extra` on top.
 */
export function localSide(
  s: Sshd,
  name: string,
  config: (files: { home: string; knownHosts: string }) => string,
  known?: string,
  defaults: (home: string) => SshTransportOptions = () => ({}),
) {
  const home = path.join(s.dir, name);
  fs.mkdirSync(home);
  const knownHosts = path.join(home, 'known_hosts');
  if (known !== undefined) fs.writeFileSync(knownHosts, known);
  const configFile = path.join(home, 'ssh_config');
  fs.writeFileSync(configFile, config({ home, knownHosts }));
  const base = defaults(home);
  const opts = (extra: SshTransportOptions = {}): SshTransportOptions => ({
    configFile,
    local: { home, authSock: undefined },
    remoteRoot: path.join(home, 'remote'),
    listen: '127.0.0.1',
    connectTimeoutMs: 5000,
    ...base,
    ...extra,
  });
  return { home, knownHosts, configFile, opts };
}

/** A real ssh-agent on a socket in `home`, holding the keys `add` loads (given the agent's environment); killed after `body`. */
export async function withAgent(home: string, add: (env: NodeJS.ProcessEnv) => void, body: (sock: string) => Promise<void>): Promise<void> {
  const sock = path.join(home, 'agent.sock');
  const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
  try {
    // Not for ever: an agent that exits (or is not installed) never makes its socket.
    for (const end = Date.now() + 10_000; !fs.existsSync(sock); await new Promise((r) => setTimeout(r, 10))) {
      if (agent.exitCode !== null || agent.signalCode !== null || Date.now() > end) throw new Error(`ssh-agent did not make its socket ${sock}`);
    }
    add({ ...process.env, SSH_AUTH_SOCK: sock });
    await body(sock);
  } finally {
    agent.kill();
  }
}
