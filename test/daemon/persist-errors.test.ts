import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Vnetd } from '../../daemon/vnetd-core.js';
import { WireError } from '../../src/wire/control.js';

/**
 * A store write that fails (a full disk, a read-only mount) reaches the
 * client as E_PERSIST with nothing applied, for settings as for commits.
 * The failure is made by replacing the store's append: no test can fill a
 * disk, and root can write through file modes.
 */
test('VTTIF and CONFIGTIME settings that cannot be saved are E_PERSIST and leave the daemon as it was', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-persist-'));
  const d = new Vnetd({ machine: 'h1', port: 0, listen: '127.0.0.1', stateDir: dir, interfaces: [], log: () => {} });
  await d.start();
  try {
    const before = [...d.query('vttif?')];
    const store = (d as unknown as { store: { append: () => Promise<void> } }).store;
    store.append = () => Promise.reject(new Error('no space left on device'));
    const failed = await d.setVttif(['update-hz=20']).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(WireError);
    expect(failed).toMatchObject({ code: 'E_PERSIST', message: expect.stringContaining('no space left on device') });
    expect([...d.query('vttif?')]).toEqual(before);
    await expect(d.setConfigTime(250)).rejects.toMatchObject({ code: 'E_PERSIST' });
    expect([...d.query('configtime?')].join('\n')).not.toContain('250');
  } finally {
    await d.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
