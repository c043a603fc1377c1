import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { Vnetd } from '../../daemon/vnetd-core.js';
import { isChange, parseCommand, WireError } from '../../src/wire/control.js';

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

test('saved state that does not apply to the daemon is refused, naming the snapshot entry or journal record', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-persist-'));
  const daemon = () => new Vnetd({ machine: 'h1', port: 0, listen: '127.0.0.1', stateDir: dir, interfaces: [], log: () => {} });
  const changes = (...lines: string[]) => lines.map((l) => parseCommand(l)).filter(isChange);
  const journal = path.join(dir, 'state.journal');
  const record = (j: object) => {
    const body = JSON.stringify(j);
    return `${(crc32(body) >>> 0).toString(16).padStart(8, '0')} ${body}\n`;
  };
  try {
    const d = daemon();
    await d.start();
    expect((await d.commit(changes(`LINK ADD h2 UDP DIAL 127.0.0.1:9 ${'ab'.repeat(32)}`, 'RULE ADD ANY ANY LINK h2'))).ok).toBe(true);
    await d.stop();
    const records = fs.readFileSync(journal, 'utf8');
    // A whole, checksummed record whose rule sends over a link no one made.
    fs.appendFileSync(journal, record({ seq: 2, changes: ['RULE ADD ANY 02:00:00:00:00:01 LINK h3'] }));
    await expect(daemon().start()).rejects.toThrow(/state\.journal: record 2 does not apply to this daemon \(.*h3.*\); vnetd will not start over it/);
    // A snapshot holding one rule twice.
    const snapshot = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as { seq: number; links: string[] };
    expect(records.split('\n')).toHaveLength(2);
    fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ ...snapshot, links: [`h2 UDP DIAL 127.0.0.1:9 ${'ab'.repeat(32)}`], rules: ['ANY ANY LINK h2', 'ANY ANY LINK h2'] }));
    fs.writeFileSync(journal, '');
    await expect(daemon().start()).rejects.toThrow(/state\.json: rules\[1\] does not apply to this daemon \(.*already has this rule.*\)/);
    // A bound no CONFIGTIME command could have set.
    fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ ...snapshot, links: [], rules: [] }));
    fs.writeFileSync(journal, record({ seq: snapshot.seq + 1, configTimeMs: -5 }));
    await expect(daemon().start()).rejects.toThrow(/state\.journal is damaged at record 1 \(configuration time -5, not null or whole milliseconds/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
