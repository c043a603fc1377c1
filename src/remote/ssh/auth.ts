import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import type { AnyAuthMethod } from 'ssh2';
import type { SshHostConfig } from './config.js';

/**
 * The ways to prove who we are, in the order OpenSSH tries them: the agent's
 * keys, then identity files (IdentityFile, or the default ones when none is
 * configured). Keys that cannot be used (missing, passphrase-protected,
 * unreadable) are skipped and named in the failure message.
 */

export interface AuthPlan {
  methods: AnyAuthMethod[];
  /** What was tried and what was skipped, for a person reading why it failed. */
  notes: string[];
}

const DEFAULT_IDENTITIES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

export function authPlan(cfg: SshHostConfig, home: string): AuthPlan {
  const methods: AnyAuthMethod[] = [];
  const notes: string[] = [];
  const username = cfg.user;
  const short = (p: string) => (p.startsWith(home + path.sep) ? '~' + p.slice(home.length) : p);

  if (cfg.agentSocket && !cfg.identitiesOnly) {
    if (existsSync(cfg.agentSocket)) {
      methods.push({ type: 'agent', username, agent: cfg.agentSocket });
      notes.push(`the agent's keys (${short(cfg.agentSocket)})`);
    } else {
      notes.push(`no agent: ${short(cfg.agentSocket)} does not exist`);
    }
  } else if (!cfg.identitiesOnly) {
    notes.push('no agent (SSH_AUTH_SOCK is not set)');
  }

  const configured = cfg.identityFiles.length > 0;
  const files = configured ? cfg.identityFiles : DEFAULT_IDENTITIES.map((n) => path.join(home, '.ssh', n));
  for (const file of files) {
    let text: Buffer;
    try {
      text = readFileSync(file);
    } catch (e) {
      // Missing default identities are normal; a missing configured one is worth saying.
      if (configured || (e as NodeJS.ErrnoException).code !== 'ENOENT') notes.push(`${short(file)}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
      continue;
    }
    const key = ssh2.utils.parseKey(text);
    if (key instanceof Error) {
      const encrypted = /encrypted|passphrase/i.test(key.message);
      notes.push(`${short(file)}: ${encrypted ? 'protected by a passphrase (add it to ssh-agent)' : `not a usable private key (${key.message})`}`);
      continue;
    }
    methods.push({ type: 'publickey', username, key: text });
    notes.push(short(file));
  }
  return { methods, notes };
}
