import type ssh2 from 'ssh2';
import { ReachError } from '../transport.js';
import { deadline } from '../../util/timer.js';

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

/**
 * How long a channel may take to open, and what to say when it does not.
 * Past the handshake nothing else bounds it: sshd answers keepalives while
 * a session request goes unanswered.
 */
export interface OpenBound {
  ms: number;
  late: () => Error;
}

/** Resolves what `open` hands its callback, or rejects with the bound's error; a channel that opens after that is closed at once (undefined: none opened). */
export function within<T extends { close(): unknown } | undefined>(bound: OpenBound | undefined, open: (done: (err: Error | undefined, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    let gaveUp = false;
    const timer = bound && setTimeout(() => {
      gaveUp = true;
      reject(bound.late());
    }, bound.ms);
    open((err, value) => {
      clearTimeout(timer);
      if (gaveUp) return void (err || value?.close());
      if (err) reject(err);
      else resolve(value);
    });
  });
}

export function execChannel(client: ssh2.Client, command: string, bound?: OpenBound): Promise<Exec> {
  return within<Exec & { close(): void }>(bound, (done) =>
    client.exec(command, (err, ch) => {
      if (err) return done(err, undefined as never);
      // Listened for here, not by whoever awaits this: a quick command's exit status can arrive in the same read as the exec's success, before an awaiting caller runs.
      let code: number | null = null;
      let signal: string | undefined;
      ch.on('exit', (c: number | null, sig?: string) => {
        code = c;
        signal = sig;
      });
      done(undefined, { ch, ended: new Promise((end) => ch.once('close', () => end({ code, signal }))), close: () => ch.close() });
    }),
  );
}

/** Bounds on one short remote command: opening its channel, then running it to the end. */
export interface RunBounds {
  machine: string;
  /** What the command is for, for the message: "asking for the home directory". */
  what: string;
  open: OpenBound;
  runMs: number;
}

/** `ms` to open a channel (`what`: a session, or a channel to a socket), and the error past it: the login was fine, the channel is what the server withholds. */
export const openBound = (machine: string, ms: number, what = 'a session'): OpenBound => ({
  ms,
  late: () =>
    new ReachError(machine, `sshd on ${machine} accepted the login but did not open ${what} within ${seconds(ms)} s`, `check that its sshd is not overloaded or out of sessions (MaxSessions), e.g. with ssh ${machine} true; ConnectTimeout in ~/.ssh/config sets the bound`),
});

/**
 * A short command's bounds: the login shell's (the connect bound: to open
 * the session, and again to get going), plus what its own work may take.
 */
export const commandBounds = (machine: string, shellMs: number, what: string, workMs = 0): RunBounds => ({
  machine,
  what,
  open: openBound(machine, shellMs),
  runMs: shellMs + workMs,
});

export const seconds = (ms: number): number => Math.max(1, Math.round(ms / 1000));

export async function run(client: ssh2.Client, command: string, bounds?: RunBounds): Promise<ExecResult> {
  const { ch, ended } = await execChannel(client, command, bounds?.open);
  let stdout = '';
  let stderr = '';
  ch.setEncoding('utf8');
  ch.stderr.setEncoding('utf8');
  ch.on('data', (s: string) => void (stdout.length < MAX_OUTPUT && (stdout += s)));
  ch.stderr.on('data', (s: string) => void (stderr.length < MAX_OUTPUT && (stderr += s)));
  ch.end();
  return { ...(await finished(ch, ended, bounds)), stdout, stderr };
}

/** How the command ended, or its bound's error; a command given up on has its channel closed (sshd then hangs up on it). */
function finished(ch: ssh2.ClientChannel, ended: Promise<Ending>, bounds: RunBounds | undefined): Promise<Ending> {
  if (!bounds) return ended;
  const { machine, what, runMs } = bounds;
  return deadline(
    ended,
    runMs,
    () =>
      new ReachError(
        machine,
        `a command on ${machine} (${what}) did not finish within ${seconds(runMs)} s`,
        `its login shell may be stuck (a home on NFS that does not answer, a startup file waiting for input): check that ssh ${machine} true returns at once`,
      ),
    () => ch.close(),
  );
}
