import { statSync } from 'node:fs';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';
import { ioErrorText } from '../../util/io-error.js';

/**
 * ssh-agent, as ssh(1) uses it (sshconnect2.c, pubkey_prepare): the agent's
 * keys that are one of the identity files (compared by public key) come
 * first, in the agent's order, then its other keys, so that a configured
 * key is offered before sshd's MaxAuthTries runs out on an agent full of
 * others. Under `IdentitiesOnly yes` only the first kind is offered: that
 * is how a passphrase-protected IdentityFile loaded with ssh-add logs in
 * without its passphrase, while the agent's other keys stay out of the
 * server's sight. An agent that cannot be asked (a socket left behind by an
 * agent that is gone, a path that is not a socket) offers no keys, so the
 * identity files are tried next, as ssh goes on without it; `unusable` is
 * told why.
 */
export class AgentKeys extends ssh2.OpenSSHAgent {
  private readonly files: Set<string>;
  /** The keys the agent listed (base64 public blobs), offered or not: empty until it is asked, and when it cannot be. */
  private readonly listed = new Set<string>();

  constructor(
    private readonly socketPath: string,
    /** The identity files' public key blobs. */
    files: readonly Buffer[],
    /** IdentitiesOnly: none of the agent's other keys. */
    private readonly filesOnly: boolean,
    /** Why the agent could not be asked. */
    private readonly unusable: (why: string) => void,
  ) {
    super(socketPath);
    this.files = new Set(files.map((b) => b.toString('base64')));
  }

  /** As ssh2's, but keeping why the connection failed, which ssh2's own replaces with one generic message. */
  override getStream(cb: (err: Error | undefined, stream?: Duplex) => void): void {
    const sock = net.connect(this.socketPath);
    let settled = false;
    const settle = (err?: Error) => {
      if (settled) return;
      settled = true;
      if (!err) return cb(undefined, sock);
      sock.destroy();
      cb(err);
    };
    sock.once('connect', () => settle());
    sock.on('error', (e) => settle(new Error(whyNotConnected(this.socketPath, e as NodeJS.ErrnoException))));
    sock.once('close', () => settle(new Error('it closed the connection')));
  }

  /** Whether the agent holds this public key (base64 blob); known once ssh2 has asked it, which it does before any identity file's turn. */
  holds(blob: string): boolean {
    return this.listed.has(blob);
  }

  override getIdentities(cb: (err: Error | undefined, keys?: ParsedKey[]) => void): void {
    super.getIdentities((err, keys) => {
      if (err || !keys) {
        this.unusable(err?.message ?? 'it listed no keys');
        return cb(undefined, []);
      }
      const parsed = keys.map((k) => ssh2.utils.parseKey(k as ParsedKey)).filter((k): k is ParsedKey => !(k instanceof Error));
      for (const k of parsed) this.listed.add(k.getPublicSSH().toString('base64'));
      const isFile = (k: ParsedKey) => this.files.has(k.getPublicSSH().toString('base64'));
      cb(undefined, [...parsed.filter(isFile), ...(this.filesOnly ? [] : parsed.filter((k) => !isFile(k)))]);
    });
  }
}

/** connect(2) on a path that is not a socket is refused as if nobody listened: the two are told apart by what the path is. */
function whyNotConnected(socketPath: string, e: NodeJS.ErrnoException): string {
  if (e.code !== 'ECONNREFUSED') return ioErrorText(e);
  try {
    return statSync(socketPath).isSocket() ? 'connection refused: no agent listens there' : 'not a socket';
  } catch (gone) {
    return ioErrorText(gone);
  }
}
