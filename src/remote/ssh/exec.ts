import type ssh2 from 'ssh2';

/** Running one command on an SSH connection (each in its own channel; the connection is shared). */

export interface ExecResult {
  code: number | null;
  signal: string | undefined;
  stdout: string;
  stderr: string;
}

/** Output beyond this is dropped: remote commands here print a few lines, a runaway one must not fill memory. */
const MAX_OUTPUT = 1 << 20;

/** How a command ended, in words: "exit 3", "killed by SIGTERM", or "no exit status" (the channel closed without one). */
export function ending(r: ExecResult): string {
  if (r.code !== null) return `exit ${r.code}`;
  return r.signal ? `killed by ${r.signal}` : 'no exit status';
}

export function execChannel(client: ssh2.Client, command: string): Promise<ssh2.ClientChannel> {
  return new Promise((resolve, reject) => client.exec(command, (err, ch) => (err ? reject(err) : resolve(ch))));
}

export async function run(client: ssh2.Client, command: string): Promise<ExecResult> {
  const ch = await execChannel(client, command);
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let code: number | null = null;
    let signal: string | undefined;
    ch.setEncoding('utf8');
    ch.stderr.setEncoding('utf8');
    ch.on('data', (s: string) => void (stdout.length < MAX_OUTPUT && (stdout += s)));
    ch.stderr.on('data', (s: string) => void (stderr.length < MAX_OUTPUT && (stderr += s)));
    ch.on('exit', (c: number | null, sig?: string) => {
      code = c;
      signal = sig;
    });
    ch.on('close', () => resolve({ code, signal, stdout, stderr }));
    ch.end();
  });
}
