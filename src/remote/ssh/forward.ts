import type ssh2 from 'ssh2';

/** A channel to a Unix socket on the remote machine, or undefined when sshd will not open one. */
export function forwardToSocket(client: ssh2.Client, socket: string): Promise<ssh2.ClientChannel | undefined> {
  return new Promise((resolve) => {
    try {
      client.openssh_forwardOutStreamLocal(socket, (err, ch) => resolve(err ? undefined : ch));
    } catch {
      resolve(undefined);
    }
  });
}
