/**
 * Who besides this process's user could stand in for what a directory
 * holds (replace its socket, plant a file where a write lands), or for a
 * socket itself. The state directory of vnetd, the keepers' directory and
 * the local transport's directories all refuse such a place rather than
 * trust it, as sshd's StrictModes does; each says so in its own words.
 */
export type Stranger = { owner: number; me: number } | { mode: number };

/**
 * Why `st` (of a directory or a socket) is not this user's alone, or
 * undefined when it is. `mask`: the permission bits others must not have
 * (group and other write, by default; 0o077 to keep them out altogether).
 */
export function strangerIn(st: { uid: number; mode: number }, mask = 0o022): Stranger | undefined {
  const me = process.getuid?.();
  // No uids (Windows): there are no other users' files to be wary of.
  if (me === undefined) return undefined;
  if (st.uid !== me) return { owner: st.uid, me };
  if (st.mode & mask) return { mode: st.mode };
  return undefined;
}

/** A mode as chmod takes it: `0777`, `1777`. */
export const modeText = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, '0');
