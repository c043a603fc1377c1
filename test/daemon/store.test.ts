import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StateError, StateStore, type SavedState } from '../../daemon/store.js';

const KEY = '0f'.repeat(32);
const STATE: SavedState = {
  machine: 'h1',
  links: [{ peer: 'proxy', proto: 'tcp', dial: true, address: '127.0.0.1:5000', key: KEY, mode: 'encrypt' }],
  rules: [
    { src: { q: 'exact', mac: '00:50:56:00:00:01' }, dst: { q: 'none' }, dest: { kind: 'link', to: 'proxy' } },
    { src: { q: 'any' }, dst: { q: 'exact', mac: '00:50:56:00:00:01' }, dest: { kind: 'interface', iface: 'vm0' } },
  ],
  configTimeMs: 120,
};

describe('the state store', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-store-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('nothing saved: a first start', async () => {
    expect(await new StateStore(dir).load()).toBeUndefined();
  });

  test('saves and loads back exactly, owner-only, with no temporary file left', async () => {
    const store = new StateStore(path.join(dir, 'state'));
    await store.save(STATE);
    expect(await store.load()).toEqual(STATE);
    expect(fs.statSync(store.file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(store.dir).mode & 0o777).toBe(0o700);
    expect(fs.readdirSync(store.dir)).toEqual(['state.json']);
  });

  test('a write torn before its rename leaves the previous state whole', async () => {
    const store = new StateStore(dir);
    await store.save(STATE);
    // What a crash between write and rename leaves: a partial temporary file beside the state.
    fs.writeFileSync(`${store.file}.tmp-99999`, '{"format":"vnetd-state","ver');
    expect(await store.load()).toEqual(STATE);
    await store.save({ ...STATE, rules: [] });
    expect((await store.load())!.rules).toEqual([]);
  });

  test('a damaged file is an error that says what to do, never an empty start', async () => {
    const store = new StateStore(dir);
    fs.writeFileSync(store.file, '{"format":"vnetd-state","version":1,"machine":"h1","links":["proxy TCP DIAL"],"rules":[]}');
    await expect(store.load()).rejects.toThrow(StateError);
    await expect(store.load()).rejects.toThrow(/is damaged .*will not start over it.*Move it aside/);
    fs.writeFileSync(store.file, 'garbage');
    await expect(store.load()).rejects.toThrow(/is damaged/);
  });
});
