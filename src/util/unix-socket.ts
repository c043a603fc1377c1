import net from 'node:net';

/**
 * Binds a Unix socket that only its owner can connect to from the moment
 * it exists: connecting takes write permission on it, and the bind makes
 * it under the process umask, so a chmod afterwards would leave a window
 * (and a umask of 000 an open door). The bind happens within listen(), so
 * the umask is back before anything else runs.
 */
export function listenOwnerOnly(server: net.Server, socketPath: string, listening: () => void): void {
  const mask = process.umask(0o177);
  try {
    server.listen(socketPath, listening);
  } finally {
    process.umask(mask);
  }
}

/** Whether something accepts connections on the Unix socket `socketPath`: a live daemon's, rather than one a killed daemon left. */
export function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}
