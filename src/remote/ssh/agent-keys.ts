import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';

/**
 * ssh-agent under `IdentitiesOnly yes`, as ssh(1) uses it: of the agent's
 * keys, only those that are one of the identity files (compared by public
 * key) are offered. That is how a passphrase-protected IdentityFile loaded
 * with ssh-add logs in without its passphrase, while the agent's other
 * keys stay out of the server's sight.
 */
export class MatchingAgent extends ssh2.OpenSSHAgent {
  private readonly wanted: Set<string>;

  constructor(
    socketPath: string,
    /** The identity files' public key blobs. */
    wanted: readonly Buffer[],
  ) {
    super(socketPath);
    this.wanted = new Set(wanted.map((b) => b.toString('base64')));
  }

  override getIdentities(cb: (err: Error | undefined, keys?: ParsedKey[]) => void): void {
    super.getIdentities((err, keys) => {
      // An agent that cannot be asked leaves the identity files to be tried, as ssh goes on without it.
      if (err || !keys) return cb(undefined, []);
      const parsed = keys.map((k) => ssh2.utils.parseKey(k as ParsedKey)).filter((k): k is ParsedKey => !(k instanceof Error));
      cb(undefined, parsed.filter((k) => this.wanted.has(k.getPublicSSH().toString('base64'))));
    });
  }
}
