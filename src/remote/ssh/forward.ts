import type ssh2 from 'ssh2';
import { within, type OpenBound } from './exec.js';

/** A channel to a Unix socket on the remote machine, or undefined when sshd will not open one; an open that takes longer than `bound` rejects with its error. */
export function forwardToSocket(client: ssh2.Client, socket: string, bound?: OpenBound): Promise<ssh2.ClientChannel | undefined> {
  return within<ssh2.ClientChannel | { close(): void }>(bound, (done) => {
    try {
      client.openssh_forwardOutStreamLocal(socket, (err, ch) => done(undefined, err ? REFUSED : ch));
    } catch {
      done(undefined, REFUSED);
    }
  }).then((ch) => (ch === REFUSED ? undefined : (ch as ssh2.ClientChannel)));
}

/** A refusal, told apart from a channel (within's values must be closable, should they come late). */
const REFUSED = { close(): void {} };
