import net from 'node:net';

/**
 * Binds a Unix socket that only its owner can connect to from the moment
 * it exists: connecting takes write permission on it, and the bind makes
 * it under the process umask, so a chmod afterwards would leave a window
 * (and a umask of 000 an open door). The bind happens within listen(), so
 * the umask is back before anything else runs.
 */
export function listenOwnerOnly(server: net.Server, socketPath: string, listening: () => void): void {
  const long = tooLong(socketPath);
  if (long) return void process.nextTick(() => server.emit('error', long));
  const mask = process.umask(0o177);
  try {
    server.listen(socketPath, listening);
  } finally {
    process.umask(mask);
  }
}

/**
 * Linux keeps a Unix socket's path in 108 bytes, the last a NUL. libuv
 * cuts a longer path short without a word, and binds or connects to that
 * other path: a daemon whose control socket nobody finds, or a client that
 * reaches whatever listens at the shorter name.
 */
const SOCKET_PATH_MAX = 107;

/** Why `socketPath` cannot be a Unix socket's path (code ENAMETOOLONG), or undefined when it can. */
export function tooLong(socketPath: string): Error | undefined {
  const n = Buffer.byteLength(socketPath);
  if (n <= SOCKET_PATH_MAX) return undefined;
  return Object.assign(new Error(`the socket path ${socketPath} is ${n} bytes long, and a Unix socket's can be at most ${SOCKET_PATH_MAX}: use a shorter directory`), { code: 'ENAMETOOLONG' });
}

/** net.connect to a Unix socket; a path too long for one fails as an 'error' event, like the connection's other failures. */
export function connectUnix(socketPath: string): net.Socket {
  const long = tooLong(socketPath);
  if (!long) return net.connect(socketPath);
  const s = new net.Socket();
  process.nextTick(() => s.destroy(long));
  return s;
}

/** Whether something accepts connections on the Unix socket `socketPath`: a live daemon's, rather than one a killed daemon left. */
export function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connectUnix(socketPath);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}
