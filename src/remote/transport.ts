import type { Host } from '../model/state.js';
import type { ControlClient, DaemonFailures } from './control-client.js';

/**
 * How vnetc reaches the daemon of one machine a .vnet file names: over SSH
 * (src/remote/ssh/), or directly when the daemon runs on this machine
 * (src/remote/local.ts). Everything above this line (fetch, apply, show,
 * route, up/down) is the same for both.
 *
 * One Session per host per command: it is opened once and reused for every
 * query, batch, start and stop, then closed.
 */
export interface Transport {
  /** Opens a session to the host's machine; rejects with a ReachError when the machine cannot be reached. */
  open(host: Host): Promise<Session>;
}

/** How a started daemon is configured: the HOST line, and how its interfaces are opened. */
export interface DaemonLaunch {
  host: Host;
  /**
   * `--iface` arguments (`NAME=KIND:PARAMS`), already checked by
   * interfaceFromSpec's grammar; each travels as one argv word.
   */
  ifaces: readonly string[];
}

export interface Session {
  readonly machine: string;
  /** Decides how a started daemon's interfaces are opened by default (see launch.ts). */
  readonly kind: 'local' | 'ssh';
  /**
   * `host:port` at which other daemons' overlay links reach this machine's
   * daemon: what a dialing end is told in `LINK ADD … DIAL <address>`.
   */
  readonly overlayAddress: string;
  /** How the session reached the machine, for messages: `ssh vnet@host1:22`, `local 127.0.0.3`. */
  readonly describe: string;
  /**
   * Connects to the running daemon's control socket (through the session).
   * Resolves undefined when no daemon runs there: a host to create, not an
   * error. Rejects with a ReachError when the daemon is there but cannot be
   * talked to.
   */
  control(): Promise<ControlClient | undefined>;
  /** Starts the machine's daemon and resolves when its control socket answers. */
  start(launch: DaemonLaunch): Promise<void>;
  /** Stops the machine's daemon, if it runs; resolves when it has exited. */
  stop(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A machine or its daemon could not be reached. The message is for a
 * person: what failed, on which machine, and what to try.
 */
export class ReachError extends Error {
  constructor(
    readonly machine: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** A start that finds the machine's daemon already running (pid as it reports it), whatever the transport. */
export const alreadyRuns = (machine: string, pid: number | string): ReachError =>
  new ReachError(machine, `a vnetd already runs for ${machine} (pid ${pid})`, 'stop it first, or apply to it instead of starting it');

/**
 * What a daemon that accepted the control connection and then said nothing
 * (suspended, wedged) fails with, whatever the transport: `who` names it,
 * `log` and `pid` say where its log and pid are.
 */
export const silentDaemon =
  (machine: string, who: string, log: string, pid: string) =>
  (greeting: boolean, ms: number): ReachError =>
    new ReachError(
      machine,
      `${who} ${greeting ? 'accepted the connection but did not greet' : 'did not answer'} within ${ms / 1000} s`,
      `it may be suspended (SIGSTOP) or wedged: its log is ${log}; kill it (its pid is in ${pid}) and start it again with vnetc up`,
    );

/**
 * What a daemon that sends more than any reply of vnetd's holds fails with,
 * whatever the transport: `log` says where its log is.
 */
export const oversizedReply =
  (machine: string, log: string) =>
  (what: string): ReachError =>
    new ReachError(
      machine,
      `the daemon of ${machine} sent ${what}, which vnetd never does`,
      `what answers on its control socket may not be vnetd, or it has gone wrong: see its log (${log}), then stop it and start it again with vnetc up`,
    );

/**
 * What a control connection that carries lines other than vnetd's protocol
 * fails with (a stranger listening where the daemon should): `log` says
 * where the daemon's log is.
 */
export const garbledReply =
  (machine: string, log: string) =>
  (what: string): ReachError =>
    new ReachError(
      machine,
      `the control connection to ${machine} sent ${what}`,
      `what answers on its control socket may not be vnetd: see its log (${log}), then stop whatever answers there and start the daemon again with vnetc up`,
    );

/**
 * A daemon that greeted with our protocol yet answered with lines that do
 * not read: a vnetd build other than this vnetc's, or something posing as
 * one. `what` says which reply and what in it is wrong.
 */
export const unreadableReply = (machine: string, what: string): ReachError =>
  new ReachError(machine, `the daemon of ${machine} sent ${what}`, `run the vnetd of this vnetc's release on ${machine} ('vnetd --version' there says which it runs), then run this command again`);

/**
 * The control connection to a machine's daemon broke after the daemon had
 * greeted, while a reply was owed: the machine was reached, so this is not
 * said as "cannot reach" (VN5003, not VN5001).
 */
export class BrokenReply extends ReachError {
  /** The message after "the connection to the daemon of <machine> broke ", as VN5003 puts it. */
  readonly detail: string;

  constructor(
    machine: string,
    /** The request whose reply was owed (its command word, or `a batch of N changes`). */
    request: string,
    /** Part of that reply had come. */
    during: boolean,
    /** Why it broke: the stream's error, or that the daemon closed it. */
    readonly why: string,
    hint: string,
  ) {
    const detail = `${during ? 'during' : 'before'} the reply to ${request}: ${why}`;
    super(machine, `the connection to the daemon of ${machine} broke ${detail}`, hint);
    this.detail = detail;
  }
}

/** What a daemon that sends a reply without end, or too slowly to finish it, fails with (`who`, `log`, `pid` as for silentDaemon). */
export const slowReply =
  (machine: string, who: string, log: string, pid: string) =>
  (request: string, ms: number): ReachError =>
    new ReachError(
      machine,
      `${who} kept sending its reply to ${request} but did not finish it within ${ms / 1000} s`,
      `it may be stuck partway (or the path to it is throttled to a trickle): see its log (${log}); if it is wedged, kill it (its pid is in ${pid}) and start it again with vnetc up`,
    );

/** What a connection that broke while a reply was owed fails with: `log` says where the daemon's log is. */
export const brokenReply =
  (machine: string, log: string) =>
  (request: string, during: boolean, cause: string): BrokenReply =>
    new BrokenReply(
      machine,
      request,
      during,
      cause,
      `the daemon may have exited or been restarted, or the connection to the machine was cut: see its log (${log}), then run the command again (vnetc plan shows what the daemon holds now)`,
    );

/** Every way a daemon can let a client down, said for one daemon whatever the transport. */
export const daemonFailures = (machine: string, who: string, log: string, pid: string): DaemonFailures => ({
  error: silentDaemon(machine, who, log, pid),
  oversized: oversizedReply(machine, log),
  garbled: garbledReply(machine, log),
  slow: slowReply(machine, who, log, pid),
  broken: brokenReply(machine, log),
});
