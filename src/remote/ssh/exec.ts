import type ssh2 from 'ssh2';

/** Running one command on an SSH connection (each in its own channel; the connection is shared). */

export interface ExecResult {
  code: number | null;
  signal: string | undefined;
  stdout: string;
  stderr: string;
}

export type Ending = Pick<ExecResult, 'code' | 'signal'>;

/** Output beyond this is dropped: remote commands here print a few lines, a runaway one must not fill memory. */
const MAX_OUTPUT = 1 << 20;

/** How a command ended, in words: "exit 3", "killed by SIGTERM", or "no exit status" (the channel closed without one). */
export function ending(r: Ending): string {
  if (r.code !== null) return `exit ${r.code}`;
  return r.signal ? `killed by ${r.signal}` : 'no exit status';
}

/** A command's channel, and how the command ended: resolved when the channel closes. */
export interface Exec {
  ch: ssh2.ClientChannel;
  ended: Promise<Ending>;
}

export function execChannel(client: ssh2.Client, command: string): Promise<Exec> {
  return new Promise((resolve, reject) =>
    client.exec(command, (err, ch) => {
      if (err) return reject(err);
      // Listened for here, not by whoever awaits this: a quick command's exit status can arrive in the same read as the exec's success, before an awaiting caller runs.
      let code: number | null = null;
      let signal: string | undefined;
      ch.on('exit', (c: number | null, sig?: string) => {
        code = c;
        signal = sig;
      });
      resolve({ ch, ended: new Promise((done) => ch.once('close', () => done({ code, signal }))) });
    }),
  );
}

export async function run(client: ssh2.Client, command: string): Promise<ExecResult> {
  const { ch, ended } = await execChannel(client, command);
  let stdout = '';
  let stderr = '';
  ch.setEncoding('utf8');
  ch.stderr.setEncoding('utf8');
  ch.on('data', (s: string) => void (stdout.length < MAX_OUTPUT && (stdout += s)));
  ch.stderr.on('data', (s: string) => void (stderr.length < MAX_OUTPUT && (stderr += s)));
  ch.end();
  return { ...(await ended), stdout, stderr };
}
