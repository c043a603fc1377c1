import type net from 'node:net';

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
