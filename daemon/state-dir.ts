import { stat } from 'node:fs/promises';
import { StateError } from './store.js';

/**
 * Whom the state directory lets in. It holds the control socket and the
 * saved links with their keys, and the daemon writes there by name, so
 * whoever else may write to it can stand in for the socket, or plant a
 * link where the daemon's next write lands; as sshd does with StrictModes,
 * such a directory is refused rather than trusted.
 */
export async function checkStateDir(dir: string): Promise<void> {
  const st = await stat(dir);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new StateError(`the state directory ${dir} belongs to uid ${st.uid}, not to this daemon's user (uid ${uid}), who could then have its files replaced; chown ${uid} it, or name another --state-dir`);
  }
  if (st.mode & 0o022) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    throw new StateError(`the state directory ${dir} is mode ${mode}, so others can write to it and replace its socket or files; chmod go-w it (vnetd makes a new one 0700), or name another --state-dir`);
  }
}
