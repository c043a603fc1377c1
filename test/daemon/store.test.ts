import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { MemoryInterface } from '../../bench/memory-interface.js';
import { Config } from '../../daemon/config.js';
import { StateError, StateStore, type LoadedState, type SavedState } from '../../daemon/store.js';
import { Vnetd } from '../../daemon/vnetd-core.js';
import { version } from '../../src/version.js';
import { formatLinkConfig, formatRule, type Change, type LinkConfig, type WireRule } from '../../src/wire/control.js';

const KEY = '0f'.repeat(32);
const PROXY: LinkConfig = { peer: 'proxy', proto: 'tcp', dial: true, address: '127.0.0.1:5000', key: KEY, mode: 'encrypt' };
const LINK: Change = { op: 'link-add', link: PROXY };
const mac = (i: number) => `00:50:56:${((i >> 16) & 0xff).toString(16).padStart(2, '0')}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
const rule = (i: number): WireRule => ({ src: { q: 'any' }, dst: { q: 'exact', mac: mac(i) }, dest: i % 2 ? { kind: 'link', to: 'proxy' } : { kind: 'interface', iface: 'vm0' } });
const add = (i: number): Change => ({ op: 'rule-add', rule: rule(i) });
const del = (i: number): Change => ({ op: 'rule-delete', rule: rule(i) });

/** The configuration a saved state stands for, in a comparable form. */
function fold(s: LoadedState | undefined): { links: string[]; rules: string[]; configTimeMs: number | null } {
  const c = new Config('h1', new Set(['vm0']));
  if (s) {
    const r = c.apply([...s.links.map((link): Change => ({ op: 'link-add', link })), ...s.rules.map((r): Change => ({ op: 'rule-add', rule: r })), ...s.journal]);
    if (!r.ok) throw new Error(`saved state does not apply: ${r.errors.find((e) => e)!.message}`);
  }
  return { links: [...c.links.values()].map(formatLinkConfig).sort(), rules: [...c.rules.values()].map(formatRule).sort(), configTimeMs: s?.configTimeMs ?? null };
}

/** A client of the store as vnetd is: a Config it applies batches to, and the store it saves them in. */
class Writer {
  readonly config = new Config('h1', new Set(['vm0']));
  configTimeMs: number | null = null;
  constructor(readonly store: StateStore) {}
  whole = (): SavedState => ({ machine: 'h1', links: [...this.config.links.values()], rules: [...this.config.rules.values()], configTimeMs: this.configTimeMs });
  async commit(changes: Change[]): Promise<void> {
    const r = this.config.apply(changes);
    if (!r.ok) throw new Error(r.errors.find((e) => e)!.message);
    await this.store.append({ changes }, this.whole);
  }
  expected() {
    return { links: [...this.config.links.values()].map(formatLinkConfig).sort(), rules: [...this.config.rules.values()].map(formatRule).sort(), configTimeMs: this.configTimeMs };
  }
}

async function reopen(dir: string): Promise<{ store: StateStore; loaded: LoadedState | undefined }> {
  const store = new StateStore(dir);
  const loaded = await store.load();
  return { store, loaded };
}

describe('the state store', () => {
  let dir: string;
  const open: StateStore[] = [];
  const track = (s: StateStore) => (open.push(s), s);
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-store-'))));
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('nothing saved: a first start', async () => {
    expect(await new StateStore(dir).load()).toBeUndefined();
  });

  test('prepared at start, an empty snapshot is on disk and even the first commit goes to the journal', async () => {
    const store = track(new StateStore(path.join(dir, 'state')));
    expect(await store.load()).toBeUndefined();
    const w = new Writer(store);
    await store.prepare(w.whole());
    expect(fs.readdirSync(store.dir).sort()).toEqual(['state.journal', 'state.json']);
    expect(fs.statSync(store.journalFile).size).toBe(0);
    const snapshot = fs.readFileSync(store.file, 'utf8');
    await w.commit([LINK, add(1)]);
    // The snapshot is untouched: the commit is one journal record.
    expect(fs.readFileSync(store.file, 'utf8')).toBe(snapshot);
    expect(fs.statSync(store.journalFile).size).toBeGreaterThan(0);
    const { store: again, loaded } = await reopen(store.dir);
    track(again);
    expect(loaded!.journal).toHaveLength(2);
    expect(fold(loaded)).toEqual(w.expected());
    // Preparing a store that has a snapshot writes nothing new.
    await again.prepare(w.whole());
    expect(fs.readFileSync(store.file, 'utf8')).toBe(snapshot);
  });

  test('the first commit writes a snapshot, later ones a journal; both load back, owner-only', async () => {
    const store = track(new StateStore(path.join(dir, 'state')));
    expect(await store.load()).toBeUndefined();
    const w = new Writer(store);
    await w.commit([LINK, add(1), add(2)]);
    expect(fs.readdirSync(store.dir)).toEqual(['state.json']);
    await w.commit([add(3), del(1)]);
    w.configTimeMs = 120;
    await store.append({ configTimeMs: 120 }, w.whole);
    await w.commit([add(4)]);
    expect(fs.readdirSync(store.dir).sort()).toEqual(['state.journal', 'state.json']);
    // Three small records, each well under a kilobyte: a commit costs its own size.
    expect(fs.statSync(store.journalFile).size).toBeLessThan(600);
    for (const f of [store.file, store.journalFile]) expect(fs.statSync(f).mode & 0o777).toBe(0o600);
    expect(fs.statSync(store.dir).mode & 0o777).toBe(0o700);
    const { store: again, loaded } = await reopen(store.dir);
    track(again);
    expect(loaded!.machine).toBe('h1');
    expect(loaded!.journal).toHaveLength(3);
    expect(fold(loaded)).toEqual(w.expected());
    expect(loaded!.notes).toEqual([]);
  });

  test('a journal torn at any byte of its last record loads as the state before that record', async () => {
    const store = track(new StateStore(dir));
    await store.load();
    const w = new Writer(store);
    await w.commit([LINK, add(1)]);
    await w.commit([add(2), add(3)]);
    const before = w.expected();
    const start = fs.statSync(store.journalFile).size;
    await w.commit([add(4), del(2), add(5)]);
    const after = w.expected();
    const whole = fs.readFileSync(store.journalFile);
    await store.close();
    for (let cut = start; cut <= whole.length; cut++) {
      fs.writeFileSync(store.journalFile, whole.subarray(0, cut));
      const { store: s, loaded } = await reopen(dir);
      expect(fold(loaded)).toEqual(cut === whole.length ? after : before);
      // The torn bytes are gone, and said to be; the next commit lands on a clean boundary.
      expect(fs.statSync(store.journalFile).size).toBe(cut === whole.length ? whole.length : start);
      expect(loaded!.notes.some((n) => /dropped a torn record/.test(n))).toBe(cut > start && cut < whole.length);
      await s.close();
    }
    // After recovery from a tear the journal takes new records and reads back whole.
    fs.writeFileSync(store.journalFile, whole.subarray(0, whole.length - 3));
    const { store: s2, loaded } = await reopen(dir);
    track(s2);
    expect(loaded!.journal).toEqual([add(2), add(3)]);
    const w2 = new Writer(s2);
    w2.config.apply([LINK, add(1), ...loaded!.journal]);
    await w2.commit([add(9)]);
    expect(fold((await reopen(dir)).loaded)).toEqual(w2.expected());
  });

  test('a torn record in the middle, or a whole record out of sequence, is damage: refused with a way forward', async () => {
    const store = track(new StateStore(dir));
    await store.load();
    const w = new Writer(store);
    await w.commit([LINK]);
    await w.commit([add(1)]);
    await w.commit([add(2)]);
    await store.close();
    const good = fs.readFileSync(store.journalFile, 'utf8');
    const lines = good.split('\n');
    // A flipped byte inside the first record, with a good one after it.
    fs.writeFileSync(store.journalFile, good.replace('RULE ADD', 'RULE ADX'));
    await expect(new StateStore(dir).load()).rejects.toThrow(/state.journal is damaged at record 1 \(checksum mismatch\).*Move state.json and state.journal aside/);
    // A whole, checksummed record repeated: the sequence says it does not belong.
    fs.writeFileSync(store.journalFile, `${lines[0]}\n${lines[1]}\n${lines[1]}\n`);
    await expect(new StateStore(dir).load()).rejects.toThrow(StateError);
    await expect(new StateStore(dir).load()).rejects.toThrow(/record 3 \(sequence 3 after 3\)/);
    // A journal whose snapshot is gone is half a configuration.
    fs.writeFileSync(store.journalFile, good);
    fs.renameSync(store.file, `${store.file}.aside`);
    await expect(new StateStore(dir).load()).rejects.toThrow(/state.json is missing/);
  });

  test('a damaged snapshot is an error that says what to do, never an empty start', async () => {
    const store = new StateStore(dir);
    fs.writeFileSync(store.file, '{"format":"vnetd-state","version":2,"seq":0,"machine":"h1","links":["proxy TCP DIAL"],"rules":[]}');
    await expect(store.load()).rejects.toThrow(StateError);
    await expect(store.load()).rejects.toThrow(/is damaged: links\[0\]: .*will not start over it.*Move state.json and state.journal aside/);
    fs.writeFileSync(store.file, 'garbage');
    await expect(store.load()).rejects.toThrow(/state.json is damaged(:\d+:\d+)?: not JSON/);
    // Each wrong field is named, whatever it holds instead.
    const good = { format: 'vnetd-state', version: 2, seq: 0, machine: 'h1', configTimeMs: null, links: [formatLinkConfig(PROXY)], rules: ['ANY ANY LINK proxy'] };
    for (const [change, said] of [
      [null, 'the file: expected an object, got null'],
      [{ links: undefined }, 'links: expected an array, got nothing'],
      [{ links: { a: 1 } }, 'links: expected an array'],
      [{ machine: undefined }, 'machine: expected a string, got nothing'],
      [{ rules: ['ANY ANY LINK proxy', 'zz ANY LINK proxy'] }, "rules[1]: 'zz' is not a MAC address"],
      [{ rules: [7] }, 'rules[0]: expected a string, got 7'],
      [{ configTimeMs: -5 }, 'configTimeMs: expected null or whole milliseconds from 0 to 999999999, got -5'],
      [{ configTimeMs: '250x' }, 'configTimeMs: expected null or whole milliseconds'],
      [{ seq: 1.5 }, 'seq: expected a whole number ≥ 0, got 1.5'],
      [{ version: 0 }, 'format and version: expected "vnetd-state", 2, got ["vnetd-state",0]'],
      [{ version: '3' }, 'format and version: expected "vnetd-state", 2'],
      [{ format: 'other', version: 3 }, 'format and version: expected "vnetd-state", 2, got ["other",3]'],
    ] as const) {
      fs.writeFileSync(store.file, JSON.stringify(change === null ? null : { ...good, ...change }));
      await expect(new StateStore(dir).load()).rejects.toThrow(`state.json is damaged: ${said}`);
    }
    fs.writeFileSync(store.file, JSON.stringify(good));
    expect((await new StateStore(dir).load())!.rules).toHaveLength(1);
    // The version 1 format (no journal yet) still loads.
    fs.writeFileSync(store.file, `{"format":"vnetd-state","version":1,"machine":"h1","configTimeMs":null,"links":["${formatLinkConfig(PROXY)}"],"rules":[]}`);
    expect((await new StateStore(dir).load())!.links).toHaveLength(1);
  });

  test('state from a newer vnetd is not called damaged: run that vnetd or restore a backup, never start empty', async () => {
    const store = track(new StateStore(dir));
    await store.load();
    const w = new Writer(store);
    await w.commit([LINK]);
    await w.commit([add(1)]);
    await store.close();
    const snapshot = JSON.parse(fs.readFileSync(store.file, 'utf8')) as Record<string, unknown>;
    const newer =
      `was written by a newer vnetd (state format version 3; this vnetd, ${version()}, reads versions up to 2). ` +
      'Run that newer vnetd with this state directory, or restore state.json and state.journal from a backup this vnetd wrote.';
    fs.writeFileSync(store.file, JSON.stringify({ ...snapshot, version: 3, rules: 'in a shape this vnetd does not know' }));
    const failed = await new StateStore(dir).load().catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(StateError);
    expect((failed as Error).message).toBe(`${store.file} ${newer}`);
    expect((failed as Error).message).not.toMatch(/damaged|start empty|aside/);
    // A journal record that carries a version, a later one, is a newer vnetd's too.
    fs.writeFileSync(store.file, JSON.stringify(snapshot));
    const journal = fs.readFileSync(store.journalFile, 'utf8').split('\n');
    const body = JSON.stringify({ version: 3, seq: snapshot.seq as number + 2, what: 'a change this vnetd does not know' });
    fs.writeFileSync(store.journalFile, `${journal[0]}\n${crc32(body).toString(16).padStart(8, '0')} ${body}\n`);
    const alsoFailed = await new StateStore(dir).load().catch((e: unknown) => e);
    expect((alsoFailed as Error).message).toBe(`${store.journalFile}: record 2 ${newer}`);
    // Without a version, the same record is what it always was: damage.
    const plain = JSON.stringify({ seq: snapshot.seq as number + 2, changes: ['RULE ADX'] });
    fs.writeFileSync(store.journalFile, `${journal[0]}\n${crc32(plain).toString(16).padStart(8, '0')} ${plain}\n`);
    await expect(new StateStore(dir).load()).rejects.toThrow(/state\.journal is damaged at record 2 .*Move state\.json and state\.journal aside/);
  });

  test("the file's own bytes in a start-up error are quoted, never printed as they are", async () => {
    const store = track(new StateStore(dir));
    await store.load();
    await new Writer(store).commit([LINK]);
    await store.close();
    const snapshot = JSON.parse(fs.readFileSync(store.file, 'utf8')) as Record<string, unknown>;
    const refusal = async (start: () => Promise<unknown>) => {
      const e = await start().catch((x: unknown) => x);
      expect(e).toBeInstanceOf(StateError);
      expect((e as Error).message).not.toMatch(/[\x00-\x1f\x7f]/);
      return (e as Error).message;
    };
    fs.writeFileSync(store.file, '{"format":\0}');
    expect(await refusal(() => new StateStore(dir).load())).toMatch(/^\S*state\.json is damaged: not JSON \(Unexpected token '\\x00'\); expected a vnetd state file; vnetd will not start over it/);
    // A machine --machine would refuse, as the daemon reads it on start: refused as such, not echoed to the terminal.
    fs.writeFileSync(store.file, JSON.stringify({ ...snapshot, machine: 'h\x1b[2Jp' }));
    const daemon = new Vnetd({ machine: 'h1', port: 0, listen: '127.0.0.1', stateDir: dir, interfaces: [], log: () => {} });
    expect(await refusal(() => daemon.start())).toMatch(/^\S*state\.json is damaged: machine: 'h\\x1b\[2Jp' is not a machine name; vnetd will not start over it/);
  });

  test('compaction folds the journal into a snapshot; a crash before the journal is emptied replays nothing twice', async () => {
    const store = track(new StateStore(dir));
    await store.load();
    const w = new Writer(store);
    await w.commit([LINK, ...Array.from({ length: 100 }, (_, i) => add(i))]);
    let n = 100;
    while (!store.wantsCompaction) await w.commit([add(n++)]);
    expect(n).toBeGreaterThan(200);
    const journal = fs.readFileSync(store.journalFile);
    await store.compact(w.whole());
    expect(fs.statSync(store.journalFile).size).toBe(0);
    expect(store.wantsCompaction).toBe(false);
    expect(fold((await reopen(dir)).loaded)).toEqual(w.expected());
    // New records after the compaction continue the sequence.
    await w.commit([del(0), add(n)]);
    const after = fs.readFileSync(store.journalFile);
    expect(fold((await reopen(dir)).loaded)).toEqual(w.expected());
    // As if the journal's truncation had not reached the disk: the old records, then the new one.
    fs.writeFileSync(store.journalFile, Buffer.concat([journal, after]));
    const { loaded } = await reopen(dir);
    expect(fold(loaded)).toEqual(w.expected());
    expect(loaded!.journal).toHaveLength(2);
  });

  test('a snapshot write cut short leaves a temporary file, removed on start; the previous state stands', async () => {
    const store = track(new StateStore(dir));
    await store.load();
    const w = new Writer(store);
    await w.commit([LINK, add(1)]);
    fs.writeFileSync(`${store.file}.tmp-99999`, '{"format":"vnetd-state","ver');
    const { loaded } = await reopen(dir);
    expect(fold(loaded)).toEqual(w.expected());
    expect(loaded!.notes).toEqual([`${dir}: removed state.json.tmp-99999, left by a snapshot write cut short`]);
    expect(fs.readdirSync(dir)).toEqual(['state.json']);
  });
});

describe('configuration batches', () => {
  test('a failing batch is taken back whole, including what the in-use check counts', () => {
    const c = new Config('h1', new Set(['vm0']));
    expect(c.apply([LINK, add(1)]).ok).toBe(true);
    const r = c.apply([del(1), { op: 'link-delete', peer: 'proxy' }, add(4), add(4)]);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.map((e) => e?.code)).toEqual([undefined, undefined, undefined, 'E_EXISTS']);
    expect([...c.rules.values()]).toEqual([rule(1)]);
    expect(c.links.has('proxy')).toBe(true);
    // The rule over the link is back, so the link is in use again.
    const d = c.apply([{ op: 'link-delete', peer: 'proxy' }]);
    expect(d.ok ? [] : d.errors.map((e) => e?.code)).toEqual(['E_INUSE']);
    // And undo takes back an accepted batch (what vnetd does when it cannot save one).
    const ok = c.apply([add(5), { op: 'link-add', link: { ...PROXY, mode: 'auth-only' } }]);
    expect(ok.ok).toBe(true);
    if (ok.ok) c.undo(ok.applied);
    expect([...c.rules.values()]).toEqual([rule(1)]);
    expect(c.links.get('proxy')!.mode).toBe('encrypt');
  });
});

describe('vnetd restarts', () => {
  test('everything committed, across compactions, comes back after a restart', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-restart-'));
    const make = () => new Vnetd({ machine: 'h1', port: 0, listen: '127.0.0.1', stateDir: dir, interfaces: [new MemoryInterface('vm0')], log: () => {} });
    let d = make();
    try {
      await d.start();
      expect((await d.commit([LINK, ...Array.from({ length: 50 }, (_, i) => add(i))])).ok).toBe(true);
      for (let i = 50; i < 1500; i++) expect((await d.commit(i % 7 === 0 ? [del(i - 50)] : [add(i)])).ok).toBe(true);
      await d.setConfigTime(250);
      const rules = [...d.query('rules?')].map((l) => l.replace(/ packets=.*/, '')).sort();
      const links = [...d.query('links?')].map((l) => l.split(' ').slice(0, 5).join(' '));
      await d.stop();
      // The journal was folded at least once: it is far smaller than 1,450 records.
      expect(fs.statSync(path.join(dir, 'state.journal')).size).toBeLessThan(64 * 1024 + 200);
      d = make();
      await d.start();
      expect([...d.query('rules?')].map((l) => l.replace(/ packets=.*/, '')).sort()).toEqual(rules);
      expect([...d.query('links?')].map((l) => l.split(' ').slice(0, 5).join(' '))).toEqual(links);
      expect([...d.query('configtime?')][0]).toBe('bound-ms 250');
    } finally {
      await d.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a UDP link to an address of the other family', () => {
  const udp = (address: string): Change => ({ op: 'link-add', link: { peer: 'far', proto: 'udp', dial: true, address, key: KEY, mode: 'encrypt' } });
  const tcp = (address: string): Change => ({ op: 'link-add', link: { peer: 'far', proto: 'tcp', dial: true, address, key: KEY, mode: 'encrypt' } });

  test('is refused when added, naming the address and what to change; what the socket can reach, and TCP, are not', async () => {
    const cases: [string, Change, string | null][] = [
      ['127.0.0.1', udp('[::1]:5000'), "[::1]:5000 is IPv6, but this daemon's UDP socket is IPv4 (--listen 127.0.0.1): it can never send there; give the peer's IPv4 address, or start vnetd with --listen :: (both families)"],
      ['::1', udp('127.0.0.1:5000'), "127.0.0.1:5000 is IPv4, but this daemon's UDP socket is IPv6 (--listen ::1): it can never send there; give the peer's IPv6 address, or start vnetd with --listen :: (both families)"],
      ['127.0.0.1', udp('127.0.0.2:5000'), null],
      ['127.0.0.1', udp('far.example:5000'), null],
      ['127.0.0.1', tcp('[::1]:5000'), null],
      ['::', udp('127.0.0.1:5000'), null],
      ['::', udp('[::1]:5000'), null],
    ];
    for (const [listen, change, refused] of cases) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-family-'));
      const d = new Vnetd({ machine: 'h1', port: 0, listen, stateDir: dir, interfaces: [], log: () => {} });
      try {
        await d.start();
        const r = await d.commit([change]);
        if (refused === null) expect(r.ok).toBe(true);
        else expect(r.ok ? [] : r.errors.map((e) => e && `${e.code} ${e.message}`)).toEqual([`E_ADDRESS ${refused}`]);
      } finally {
        await d.stop();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  test('restored under a --listen that cannot reach it, it is kept, and its dial failure says why', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-family-'));
    const lines: string[] = [];
    const make = (listen: string) => new Vnetd({ machine: 'h1', port: 0, listen, stateDir: dir, interfaces: [], log: (l) => lines.push(l) });
    let d = make('::');
    try {
      await d.start();
      expect((await d.commit([udp('[::1]:9')])).ok).toBe(true);
      await d.stop();
      d = make('127.0.0.1');
      await d.start();
      expect([...d.query('links?')][0]).toMatch(/^far UDP DIAL \[::1\]:9 /);
      for (let i = 0; i < 100 && !lines.some((l) => /link far: dial failed/.test(l)); i++) await new Promise((r) => setTimeout(r, 20));
      expect(lines).toContain("link far: dial failed: [::1]:9 is IPv6, but this daemon's UDP socket is IPv4 (--listen 127.0.0.1): it can never send there; give the peer's IPv4 address, or start vnetd with --listen :: (both families)");
    } finally {
      await d.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
