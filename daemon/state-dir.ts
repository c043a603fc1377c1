import { stat } from 'node:fs/promises';
import { modeText, strangerIn } from '../src/util/strangers.js';
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
  const who = strangerIn(st);
  if (!who) return;
  if ('owner' in who) {
    throw new StateError(`the state directory ${dir} belongs to uid ${who.owner}, not to this daemon's user (uid ${who.me}), who could then have its files replaced; chown ${who.me} it, or name another --state-dir`);
  }
  throw new StateError(`the state directory ${dir} is mode ${modeText(who.mode & 0o777)}, so others can write to it and replace its socket or files; chmod go-w it (vnetd makes a new one 0700), or name another --state-dir`);
}
