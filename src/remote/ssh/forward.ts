import type ssh2 from 'ssh2';
import { within, type OpenBound } from './exec.js';

/** A channel to a Unix socket on the remote machine, or undefined when sshd will not open one; an open that takes longer than `bound` rejects with its error. */
export function forwardToSocket(client: ssh2.Client, socket: string, bound?: OpenBound): Promise<ssh2.ClientChannel | undefined> {
  return within<ssh2.ClientChannel | undefined>(bound, (done) => {
    try {
      client.openssh_forwardOutStreamLocal(socket, (err, ch) => done(undefined, err ? undefined : ch));
    } catch {
      done(undefined, undefined);
    }
  });
}
