import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ControlClient } from '../../src/remote/control-client.js';

/**
 * Whatever is at the other end of a control stream (a login shell that
 * prints on an exec channel, a stranger's socket), the client says so to
 * every request waiting, and the process carries on.
 */
test('a peer that does not speak the protocol fails the waiting requests with a reason, not the process', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-ctl-'));
  const sock = path.join(dir, 'x.sock');
  const server = net.createServer((s) => s.write('Welcome to the machine!\n'));
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    await expect(ControlClient.connect(sock)).rejects.toThrow(/not vnetd's protocol/);
  } finally {
    await new Promise((r) => server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
