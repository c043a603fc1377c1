import { createHash } from 'node:crypto';
import { SshConfigError } from './config-file.js';

/**
 * ssh_config(5) TOKENS: which `%x` each keyword takes, and their values.
 * A token a keyword does not take is an error, as it is for ssh.
 */

/** What CertificateFile, IdentityAgent, IdentityFile, Match exec and UserKnownHostsFile take. */
export const PATH_TOKENS = ['C', 'd', 'h', 'i', 'j', 'k', 'L', 'l', 'n', 'p', 'r', 'u'] as const;
/** What ProxyJump (and ProxyCommand) take. */
export const JUMP_TOKENS = ['h', 'n', 'p', 'r'] as const;

/**
 * %C: OpenSSH 9.2's hash of %l%h%p%r, so that paths built from it name the
 * files the installed ssh uses. (Newer OpenSSH releases append %j;
 * the two agree whenever ProxyJump is unset.)
 */
export const connectionHash = (l: string, h: string, p: string, r: string): string => createHash('sha1').update(l + h + p + r).digest('hex');

/**
 * Expands `%x` tokens; `%%` is a literal percent sign. `tokens` holds
 * exactly the ones this keyword takes. With `env`, `${NAME}` is that
 * environment variable, as for ssh's paths, in the same pass: a value is
 * never expanded again.
 */
export function expandTokens(text: string, tokens: Readonly<Record<string, string>>, at: string, keyword = 'this keyword', env?: Readonly<Record<string, string | undefined>>): string {
  return text.replace(env ? /%(.)?|\$\{([^}]*)(\})?/gs : /%(.)?/gs, (m: string, t: string | undefined, name: string | undefined, close: string | undefined) => {
    if (m.startsWith('$')) {
      if (!close || !name) throw new SshConfigError(`${at}: '${m}' in '${text}' is not an environment variable (write \${NAME})`);
      const v = env![name];
      if (v === undefined) throw new SshConfigError(`${at}: environment variable ${name} in '${text}' is not set; set it, or write the path without it`);
      return v;
    }
    if (t === '%') return '%';
    const v = t === undefined ? undefined : tokens[t];
    if (v === undefined) {
      const takes = ['%%', ...Object.keys(tokens).map((k) => `%${k}`)].join(' ');
      throw new SshConfigError(`${at}: unknown or unsupported token '%${t ?? ''}' in '${text}' (${keyword} takes ${takes}; write %% for a percent sign)`);
    }
    return v;
  });
}

/** Only the named tokens of a full set. */
export function only<K extends string>(all: Readonly<Record<K, string>>, keys: readonly K[]): Record<string, string> {
  return Object.fromEntries(keys.map((k) => [k, all[k]]));
}
