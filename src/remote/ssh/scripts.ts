import { shCommand } from './quote.js';

/**
 * The shell scripts run on a remote machine. Each is a constant: values
 * (paths, names, the daemon's argv) never become part of the script text;
 * they travel as positional parameters, each single-quoted by shCommand, and
 * the script refers to them as "$1", "$@". One line each, so any login
 * shell (sh, bash, fish, csh) passes it to sh unchanged.
 */

/** `/bin/sh -c SCRIPT sh ARGS...` as one quoted command line (by path: the PATH is the machine's to choose). */
export const shScript = (script: string, args: readonly string[]): string => shCommand(['/bin/sh', '-c', script, 'sh', ...args]);

/** A process counts as running when it exists and is not a zombie waiting for its parent. */
const ALIVE = `alive() { kill -0 "$1" 2>/dev/null && ! grep -qs '^State:[[:space:]]*Z' /proc/"$1"/status; };`;
/** Whether pid $1 is a daemon whose argv has state directory $2 as a word: the pid file may be stale and the pid reused. */
const OURS = `ours() { alive "$1" && tr '\\000' '\\n' </proc/"$1"/cmdline 2>/dev/null | grep -qxF -- "$2"; };`;

export const EXIT = {
  noSocket: 100,
  running: 91,
  exited: 92,
  startTimeout: 93,
  foreign: 94,
  stopTimeout: 95,
  noHome: 97,
  unsafe: 96,
} as const;

/*
 * Anyone who can write in the directories vnetc uses there could plant the
 * daemon it runs, or a symlink it writes the pid or log through. So every
 * script that reads or writes under them first checks a chain of them
 * (parents first) passed as `N ROOT DIR1 … DIRN` ahead of its own
 * parameters: each that exists must be a directory of the SSH user's, not a
 * symlink, closed to writes by group and others. Otherwise it prints
 * `unsafe=PATH` and `ls -ldn PATH`, and exits unsafe.
 *
 * The one exception is ROOT, the remote root when one is given: it may be a
 * symlink (homes moved to /data with /home -> /data/home, a root kept on a
 * bigger disk), since the person chose it by name. Where a symlink leads is
 * up to whoever can replace it, so LINKED trusts one only when nobody but
 * the SSH user and root could have made it or could re-point it: the link
 * is theirs, every directory from / down to the one holding it and down to
 * the one it resolves to is theirs and closed to writes by group and others
 * (or sticky, like /tmp, where nobody else may replace the link), and the
 * directory it resolves to passes the check above, and is named when it
 * does not. Below the root nothing may be a symlink: vnetc names those
 * paths itself.
 */
const UNSAFE = `unsafe() { printf 'unsafe=%s\\n' "$1"; ls -ldn "$1"; exit ${EXIT.unsafe}; };`;
/**
 * `mine P`: P is the SSH user's and closed to writes by group and others. `held P`: P (a symlink's own owner counts, not its mode) is root's or the SSH user's.
 * `sound P`: P is held, and closed to writes by group and others unless sticky. Each fails when find does (missing, or P unreadable): printing nothing then proves nothing.
 */
const TRUST =
  ` mine() { _f=$(find "$1" -prune \\( ! -user "$(id -u)" -o -perm -020 -o -perm -002 \\) -print) && [ -z "$_f" ]; };` +
  ` held() { _f=$(find "$1" -prune ! -user 0 ! -user "$(id -u)" -print) && [ -z "$_f" ]; };` +
  ` sound() { held "$1" && _f=$(find "$1" -prune \\( -perm -020 -o -perm -002 \\) ! -perm -1000 -print) && [ -z "$_f" ]; };`;
/** `along P`: every directory from the physical path P up to / is sound. */
const ALONG = ` along() { _p=$1; while :; do sound "$_p" || unsafe "$_p"; [ "$_p" = / ] && return; _p=\${_p%/*}; _p=\${_p:-/}; done; };`;
const LINKED =
  TRUST + ALONG +
  ` linked() { held "$1" || unsafe "$1"; _up=\${1%/*}; _up=$(cd -P "\${_up:-/}" && pwd -P) || unsafe "$1"; along "$_up";` +
  ` if _to=$(cd -P "$1" 2>/dev/null && pwd -P); then along "$_to"; mine "$_to" || unsafe "$_to"; fi; };`;
const CHECK =
  UNSAFE + LINKED +
  ` check() { if [ -L "$1" ]; then if [ "$1" = "$root" ]; then linked "$1"; return; fi; unsafe "$1"; fi; if [ -e "$1" ] && ! mine "$1"; then unsafe "$1"; fi; };`;
/** `guard "$@"` checks the chain; `made "$@"` creates each directory of it before checking it, so nothing is made inside one that fails. The caller then skips them with shift $(($1+2)). */
const GUARD =
  CHECK +
  ` guard() { n=$1 root=$2; shift 2; while [ "$n" -gt 0 ]; do check "$1"; shift; n=$((n-1)); done; };` +
  ` made() { n=$1 root=$2; shift 2; while [ "$n" -gt 0 ]; do mkdir -p "$1" || exit 1; check "$1"; shift; n=$((n-1)); done; };`;
/** Files written with `>` or `>>` follow a symlink, wherever it points: refused, as anything but a plain file is. */
const PLAIN = `plain() { for f in "$@"; do if [ -L "$f" ] || { [ -e "$f" ] && [ ! -f "$f" ]; }; then unsafe "$f"; fi; done; };`;

/** Directories a guarded script checks, parents first; `root`, the remote root when one is given, is the one that may be a symlink. */
export interface Chain {
  dirs: readonly string[];
  root: string | undefined;
}

/** The `N ROOT DIR1 … DIRN` a guarded script takes first; ROOT is empty without a remote root. */
export const chain = ({ dirs, root }: Chain): string[] => [String(dirs.length), root ?? '', ...dirs];

/**
 * What the machine offers: its home, Node and vnetd versions, whether it has
 * flock(1) (vnetd locks its state directory with it), and whether this
 * build's daemon is uploaded already. A chain, then $1: the install dir,
 * relative to home or absolute.
 */
export const PROBE =
  GUARD +
  ` cd || exit ${EXIT.noHome}; guard "$@"; shift $(($1+2)); printf 'home=%s\\n' "$PWD"; ` +
  `if command -v node >/dev/null 2>&1; then printf 'node=%s\\n' "$(node --version 2>&1)"; fi; ` +
  `if command -v vnetd >/dev/null 2>&1; then printf 'vnetd=%s\\n' "$(vnetd --version 2>&1 | head -n 1)"; fi; ` +
  `if command -v flock >/dev/null 2>&1; then echo flock=yes; fi; ` +
  `if [ -f "$1/daemon/vnetd.js" ]; then echo installed=yes; fi; exit 0`;

/** Prints the home directory (where relative remote paths start). */
export const HOME = `cd || exit ${EXIT.noHome}; pwd`;

/**
 * An upload's scratch directories are $1/*.tmp-*. One older than a day is
 * an upload's that no longer runs: an upload gives up after UPLOAD_MS (an
 * hour, see install.ts), and a scratch directory's mtime is never earlier
 * than its upload's start. Whether its uploader still runs cannot be asked
 * here (it ran on another machine, maybe one of several sharing this home
 * over NFS), so age is what tells; a day is far beyond the hour, and beyond
 * any skew between an NFS server's clock, which sets mtime, and this
 * machine's, which find compares with. Only the SSH user's own are removed,
 * and never through a symlink. find -mtime +0 is POSIX for "a day or more".
 */
const SWEEP = `sweep() { for d in "$1"/*.tmp-*; do if [ -n "$(find "$d" -prune -type d -user "$(id -u)" -mtime +0 -print 2>/dev/null)" ]; then rm -rf "$d"; fi; done; };`;

/** Makes the chain, removes stale scratch directories from the cache root $1, then makes directories $2... (for an upload). */
export const MKDIRS = GUARD + SWEEP + ` umask 022; made "$@"; shift $(($1+2)); sweep "$1"; shift; for d in "$@"; do mkdir -p "$d" || exit 1; done`;

/**
 * Moves the uploaded tree $1 into place at $2, with POSIX mv: GNU's -T is
 * not there on BSD or older BusyBox. An empty directory at $2 (left by
 * nobody vnetc knows, but -T would have replaced it) goes first. A plain mv
 * onto a directory that exists moves the tree into it, as $2/NAME: that name
 * is the scratch directory's own, unique to this upload, so finding it there
 * means $2 was in place already. Then, as when mv fails, the tree is removed;
 * a complete daemon at $2 means a concurrent upload got there first (fine),
 * anything else is a failure, said on stderr.
 */
export const INSTALL =
  `rmdir "$2" 2>/dev/null; e=$(mv "$1" "$2" 2>&1) || { rm -rf "$1"; [ -f "$2/daemon/vnetd.js" ] && exit 0; printf '%s\\n' "$e" >&2; exit 1; };` +
  ` in=$2/\${1##*/}; [ -e "$in" ] || [ -L "$in" ] || exit 0; rm -rf "$in"; [ -f "$2/daemon/vnetd.js" ] && exit 0;` +
  ` printf '%s is in the way: a directory that holds no vnetd\\n' "$2" >&2; exit 1`;

/** Removes the scratch directory $1 of an upload that failed. */
export const DISCARD = `rm -rf "$1"`;

/** Connects stdin/stdout to the control socket $1 by running `$2... ctl --state-dir DIR`, or exits noSocket. */
export const CONTROL = `[ -S "$1" ] || exit ${EXIT.noSocket}; shift; exec "$@"`;

/**
 * Starts the daemon `$5...` detached (own session, stdin from /dev/null,
 * output appended to the log $2) and waits for its control socket $4.
 * A chain ending with the state dir first, then $1 state dir, $3 pid file.
 * Prints the pid.
 */
export const START =
  ALIVE + OURS + GUARD + PLAIN +
  ` umask 077; made "$@"; shift $(($1+2)); state=$1 log=$2 pidf=$3 sock=$4; shift 4; mkdir -p "$state" || exit 1; plain "$pidf" "$log";` +
  ` if [ -f "$pidf" ] && ours "$(cat "$pidf")" "$state"; then cat "$pidf"; exit ${EXIT.running}; fi;` +
  // A socket left by a daemon that died answers nobody (we start only when none answered); gone, the wait below waits for the new one's.
  ` rm -f "$sock";` +
  // The subshell exits at once, so the daemon is not our child: init reaps it, and kill -0 tells whether it runs.
  ` (setsid "$@" </dev/null >>"$log" 2>&1 & echo $! >"$pidf"); pid=$(cat "$pidf"); i=0;` +
  ` while [ ! -S "$sock" ]; do if ! alive "$pid"; then tail -n 20 "$log"; exit ${EXIT.exited}; fi;` +
  ` i=$((i+1)); if [ "$i" -gt 300 ]; then exit ${EXIT.startTimeout}; fi; sleep 0.1; done; echo "$pid"`;

/**
 * Stops the daemon recorded in pid file $2 (state dir $1) with SIGTERM and
 * waits up to 10 s for it to exit; SIGCONT after, so that a suspended one
 * (SIGSTOP, ^Z) gets to act on it. $3 the socket.
 */
export const STOP =
  ALIVE + OURS +
  ` state=$1 pidf=$2 sock=$3; if [ ! -f "$pidf" ]; then if [ -S "$sock" ]; then exit ${EXIT.foreign}; fi; exit 0; fi;` +
  ` pid=$(cat "$pidf"); if ours "$pid" "$state"; then kill -TERM "$pid"; kill -CONT "$pid" 2>/dev/null; i=0;` +
  ` while alive "$pid"; do i=$((i+1)); if [ "$i" -gt 100 ]; then exit ${EXIT.stopTimeout}; fi; sleep 0.1; done; fi; rm -f "$pidf"`;
