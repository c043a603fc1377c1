import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SshConfigError } from './config-file.js';

/**
 * Another local user's home directory, for `~user/` in ssh_config paths, as
 * OpenSSH's getpwnam(3) finds it. getent(1) asks the same name service
 * switch (LDAP, sssd and the like, not only /etc/passwd); it is run
 * directly, never through a shell, and `--` keeps a name starting with `-`
 * from reading as an option. Where getent is not installed, /etc/passwd is
 * all there is to read.
 */

/** One passwd line's home, when its name is exactly `user` (getent also answers a uid given as a name). */
function homeIn(lines: string, user: string): string | undefined {
  for (const line of lines.split('\n')) {
    const f = line.split(':');
    if (f.length >= 7 && f[0] === user) return f[5];
  }
  return undefined;
}

/** The home directory, or undefined when there is no such user. Throws when neither source can be read. */
export function passwdHome(user: string): string | undefined {
  try {
    return homeIn(execFileSync('getent', ['passwd', '--', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }), user);
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { status?: number };
    // getent's exit status 2: the name service has no such key.
    if (err.status === 2) return undefined;
    if (err.code !== 'ENOENT') throw new Error(`getent passwd failed: ${err.message}`);
  }
  return homeIn(readFileSync('/etc/passwd', 'utf8'), user);
}

/** `~` and `~user` at the start of an ssh_config path, each user looked up once. */
export class Tilde {
  private readonly homes = new Map<string, string | undefined>();

  constructor(
    /** This side's home, for a bare `~`. */
    private readonly home: string,
    private readonly lookup: (user: string) => string | undefined = passwdHome,
  ) {}

  /** The path with its leading `~` or `~user` replaced; `at` is the file and line it came from. */
  expand(p: string, at: string): string {
    if (!p.startsWith('~')) return p;
    const slash = p.indexOf('/');
    const user = p.slice(1, slash === -1 ? undefined : slash);
    const rest = slash === -1 ? '' : p.slice(slash + 1);
    const home = user === '' ? this.home : this.homeOf(user, at);
    return rest ? path.join(home, rest) : home;
  }

  private homeOf(user: string, at: string): string {
    if (!this.homes.has(user)) {
      try {
        this.homes.set(user, this.lookup(user));
      } catch (e) {
        throw new SshConfigError(`${at}: cannot look up the home of '~${user}': ${(e as Error).message}`);
      }
    }
    const home = this.homes.get(user);
    if (home === undefined) throw new SshConfigError(`${at}: '~${user}' names no local user '${user}' (getent passwd ${user} finds none); name an existing user, or write the path in full`);
    return home;
  }
}
