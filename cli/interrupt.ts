import { constants } from 'node:os';
import type { Io } from './io.js';

/**
 * Ctrl-C and SIGTERM for a command that runs until it is done or stopped and
 * has things of its own to remove at the end (daemons, a temporary
 * directory): Node's default ends the process on the spot and leaves them.
 *
 * The first signal aborts `signal`, and says so: the command winds down as
 * it does at its end (its report, then its cleanup). A second one does not
 * wait for that: the cleanups given to `atExit` run, then the process exits
 * 128 + the signal's number, the status a shell reports for a process the
 * signal ended. A third, while they run, exits at once.
 */
export interface Interrupt {
  readonly signal: AbortSignal;
  /** 128 + the number of the first signal; undefined while none came. */
  readonly status: number | undefined;
  /** Work a second signal must still do before the process exits. */
  atExit(cleanup: () => Promise<unknown>): void;
  /** What a second signal says last, as the process exits without finishing (what is left running, and how to stop it). */
  sayAtExit(note: () => string): void;
}

type Name = 'SIGINT' | 'SIGTERM';

/** How a person sends the signal again, for the notice. */
const AGAIN: Record<Name, string> = { SIGINT: 'Ctrl-C', SIGTERM: 'SIGTERM' };

/**
 * Runs `command` with SIGINT and SIGTERM caught as above. `stopping` says
 * what the first signal makes the command do ('stopping after the current
 * iteration, then removing the daemons').
 */
export async function interruptible<T>(io: Io, stopping: string, command: (i: Interrupt) => Promise<T>): Promise<T> {
  const stop = new AbortController();
  const cleanups: (() => Promise<unknown>)[] = [];
  const notes: (() => string)[] = [];
  let status: number | undefined;
  let received = 0;
  const on = (name: Name) => () => {
    const code = 128 + constants.signals[name];
    received++;
    if (received === 1) {
      status = code;
      io.stderr.write(`vnetc: ${name}: ${stopping} (${AGAIN[name]} again to stop at once)\n`);
      stop.abort();
    } else if (received === 2) {
      io.stderr.write(`vnetc: ${name} again: stopping now${cleanups.length ? ', once what it started is removed' : ''}\n`);
      // A cleanup that fails has nothing left to report to: the process is ending either way.
      void Promise.allSettled(cleanups.map((f) => f())).then(() => {
        for (const note of notes) io.stderr.write(`vnetc: ${note()}\n`);
        process.exit(code);
      });
    } else {
      process.exit(code);
    }
  };
  const handlers = { SIGINT: on('SIGINT'), SIGTERM: on('SIGTERM') };
  for (const [name, handler] of Object.entries(handlers)) process.on(name, handler);
  try {
    return await command({
      signal: stop.signal,
      get status() {
        return status;
      },
      atExit: (cleanup) => void cleanups.push(cleanup),
      sayAtExit: (note) => void notes.push(note),
    });
  } finally {
    for (const [name, handler] of Object.entries(handlers)) process.off(name, handler);
  }
}
