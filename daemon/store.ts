import { constants, mkdir, open, readdir, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { isMachineName } from '../src/model/names.js';
import { version as vnetdVersion } from '../src/version.js';
import { applySettingWords, DEFAULT_SETTINGS } from '../src/vttif/params.js';
import { InputError, parseJsonFile } from '../src/util/input-error.js';
import { JsonReader } from '../src/util/json-reader.js';
import { clipWord } from '../src/wire/clip-word.js';
import { formatCommand, formatLinkConfig, formatRule, isChange, MAX_CONFIG_TIME_MS, parseCommand, type Change, type Command, type LinkConfig, type WireRule } from '../src/wire/control.js';

/**
 * What survives a restart: links (with their keys) and rules, as a snapshot
 * (`state.json`) and a journal of the batches committed since
 * (`state.journal`).
 *
 * A commit appends one record to the journal and syncs it (the journal is
 * opened O_DSYNC: the write returns once the record is on disk) before the
 * client hears OK, so its cost is the size of the batch, not of the state. When the
 * journal has grown past half the snapshot, the whole state is written as a
 * new snapshot (temporary file, sync, rename, directory sync) and the journal
 * emptied; records carry sequence numbers and the snapshot the last one it
 * holds, so a crash between the two steps replays nothing twice.
 *
 * A crash mid-append leaves a torn last record: it was never acknowledged,
 * so it is dropped (and said so). Anything else that does not read back,
 * a damaged snapshot or a bad record before the last, stops the daemon: it
 * never starts empty over a configuration it could not read. Nor over one
 * a later vnetd wrote (a version above ours): that is not damage, and is
 * said so.
 */

export interface SavedState {
  machine: string;
  links: LinkConfig[];
  rules: WireRule[];
  configTimeMs: number | null;
  /** VTTIF settings as the VTTIF command's words (formatSettings); absent until first set. */
  vttif?: string;
}

/** The state as found on start: the snapshot, and the journal's changes to apply after it, in order. */
export interface LoadedState extends SavedState {
  journal: Change[];
  /** The journal record (its line) each of `journal`'s changes came from, for a message that says where. */
  journalRecords: number[];
  /** Lines for the log: what recovery did (a torn record dropped, stale files removed). */
  notes: string[];
}

/** One journal record: a committed batch, or a new configuration-time bound. */
interface JournalEntry {
  changes?: readonly Change[];
  configTimeMs?: number | null;
  vttif?: string;
}

const FORMAT = 'vnetd-state';
/** Version 2 added `seq`; a version 1 file is a snapshot at sequence 0. */
const VERSION = 2;
/** The journal is folded into a new snapshot once it is this fraction of the snapshot's size... */
const COMPACT_FRACTION = 0.5;
/** ...and at least this large, so a small state is not rewritten on every commit. */
const COMPACT_MIN_BYTES = 64 * 1024;
/** `crc32hex SP json LF`. */
const RECORD = /^([0-9a-f]{8}) (.*)$/s;

export class StateError extends Error {}

/**
 * A state file from a later vnetd is not damaged, and starting empty would
 * throw its configuration away: the remedy is that vnetd, or a backup.
 */
function newerState(what: string, version: number): StateError {
  return new StateError(
    `${what} was written by a newer vnetd (state format version ${version}; this vnetd, ${vnetdVersion()}, reads versions up to ${VERSION}). ` +
      'Run that newer vnetd with this state directory, or restore state.json and state.journal from a backup this vnetd wrote.',
  );
}

/** Versions only grow: one above ours is a later vnetd's. */
const isNewer = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > VERSION;

/** What a person can do about state files vnetd will not start over. */
export const MOVE_ASIDE = 'vnetd will not start over it and lose the configuration. Move state.json and state.journal aside to start empty, or restore them from a backup.';

/**
 * Says what to do about a state directory, or a file in it, that this
 * process may not use (`file`: the one it was at, when the error does not
 * name it); undefined for other failures. Permissions are the usual cause: a
 * daemon started once by root, or by another user, leaves files this one
 * cannot read or replace.
 */
function accessProblem(dir: string, e: unknown, file?: string): StateError | undefined {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case 'EACCES':
    case 'EPERM':
      return new StateError(
        `the state directory ${dir} and its files must be readable and writable by the user vnetd runs as (uid ${process.getuid?.() ?? '?'}), ` +
          `and are not (${err.message}); give them to that user (chown -R), or start vnetd as their owner`,
      );
    case 'EROFS':
      return new StateError(`the state directory ${dir} is on a read-only file system (${err.message}); vnetd saves its state there: make it writable, or name another --state-dir`);
    case 'EISDIR':
      return new StateError(`${err.path ?? file ?? dir} is a directory where vnetd keeps a file of its state; move that directory out of ${dir}`);
    default:
      return undefined;
  }
}

/** The snapshot's machine, held to what --machine takes: it is echoed in messages, and names this daemon to its peers. */
function machineName(m: string): string {
  if (!isMachineName(m)) throw new RangeError(`'${clipWord(m)}' is not a machine name`);
  return m;
}

/** Saved bounds are held to the CONFIGTIME command's range. */
const configTime = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= MAX_CONFIG_TIME_MS;

/** Settings words as saved, checked the way the VTTIF command checks them; throws RangeError. */
function checkedVttif(v: unknown): string {
  if (typeof v !== 'string') throw new RangeError('VTTIF settings are not a string');
  applySettingWords(DEFAULT_SETTINGS, v.split(' '));
  return v;
}

export class StateStore {
  readonly file: string;
  readonly journalFile: string;
  /** Sequence number of the last record made durable, in the snapshot or the journal. */
  private seq = 0;
  private snapshotSeq = 0;
  private hasSnapshot = false;
  private snapshotBytes = 0;
  private journalBytes = 0;
  private journal: FileHandle | null = null;
  private loaded = false;
  /** Set when a failed append could not be taken back: nothing more may be appended after it. */
  private broken: string | null = null;

  constructor(readonly dir: string) {
    this.file = path.join(dir, 'state.json');
    this.journalFile = path.join(dir, 'state.journal');
  }

  /**
   * Checks that this process can save in the directory, which must exist: a
   * daemon must find out before it restores and dials its links, not after.
   * Only a lack of permission refuses; a full disk, say, leaves the daemon
   * to forward by what it has, and commits fail (E_PERSIST).
   */
  async checkWritable(): Promise<void> {
    try {
      const probe = `${this.file}.tmp-${process.pid}`;
      await (await open(probe, 'w', 0o600)).close();
      await rm(probe, { force: true });
      await (await open(this.journalFile, constants.O_WRONLY | constants.O_APPEND)).close();
    } catch (e) {
      const problem = accessProblem(this.dir, e);
      if (problem) throw problem;
    }
  }

  /** The saved state, or undefined on first start. Must be called once before anything is saved. */
  async load(): Promise<LoadedState | undefined> {
    const notes = await this.removeStaleTemporaries();
    const snapshot = await this.readSnapshot();
    const journal = await readOptional(this.journalFile);
    this.loaded = true;
    if (!snapshot) {
      if (journal && journal.length > 0) {
        throw new StateError(
          `${this.journalFile} has records but ${this.file} is missing; vnetd will not start from half a configuration. ` +
            'Restore state.json from a backup, or move state.journal aside too to start empty.',
        );
      }
      return undefined;
    }
    this.hasSnapshot = true;
    this.seq = this.snapshotSeq = snapshot.seq;
    const state: LoadedState = { ...snapshot.state, journal: [], journalRecords: [], notes };
    if (journal) {
      const { valid, torn } = this.replay(journal, state);
      if (torn > 0) {
        const fh = await open(this.journalFile, 'r+');
        try {
          await fh.truncate(valid);
          await fh.datasync();
        } finally {
          await fh.close();
        }
        notes.push(`${this.journalFile}: dropped a torn record at its end (${torn} bytes, from a commit cut short by a crash and never acknowledged)`);
      }
      this.journalBytes = valid;
    }
    return state;
  }

  /**
   * Makes a committed batch durable (synced) before it returns. `whole` is
   * the state including it, used only when there is no snapshot yet.
   */
  async append(entry: JournalEntry, whole: () => SavedState): Promise<void> {
    if (!this.loaded) throw new Error('StateStore.load must run before anything is saved');
    if (this.broken) throw new Error(this.broken);
    if (!this.hasSnapshot) {
      await this.writeSnapshot(whole(), this.seq + 1);
      return;
    }
    const seq = this.seq + 1;
    const body = JSON.stringify({
      seq,
      ...(entry.changes ? { changes: entry.changes.map(formatCommand) } : {}),
      ...(entry.configTimeMs !== undefined ? { configTimeMs: entry.configTimeMs } : {}),
      ...(entry.vttif !== undefined ? { vttif: entry.vttif } : {}),
    });
    const record = Buffer.from(`${crc32hex(body)} ${body}\n`);
    const fh = await this.openJournal();
    try {
      // One write that returns once the record is on disk (O_DSYNC): a sync per commit, in one trip to the thread pool.
      const { bytesWritten } = await fh.write(record);
      if (bytesWritten !== record.length) throw new Error(`short write to ${this.journalFile} (${bytesWritten} of ${record.length} bytes)`);
    } catch (e) {
      // Take the record back, so the next one does not land after a half-written one.
      try {
        await fh.truncate(this.journalBytes);
        await fh.datasync();
      } catch (e2) {
        this.broken = `${this.journalFile} could not be restored after a failed write (${(e2 as Error).message}); restart vnetd`;
      }
      throw e;
    }
    this.seq = seq;
    this.journalBytes += record.length;
  }

  /**
   * Writes the first snapshot (`initial`, when there is none yet) and opens
   * the journal, so that a commit, even the first, costs one append and one
   * sync while a client waits. Optional: append works without it.
   */
  async prepare(initial: SavedState): Promise<void> {
    if (!this.loaded) throw new Error('StateStore.load must run before prepare');
    if (!this.hasSnapshot) await this.writeSnapshot(initial, this.seq);
    await this.openJournal();
  }

  /** True once folding the journal into a new snapshot is worth its cost. */
  get wantsCompaction(): boolean {
    return this.journalBytes >= Math.max(COMPACT_MIN_BYTES, this.snapshotBytes * COMPACT_FRACTION);
  }

  /** Writes `s` (the state as of the last record) as the snapshot and empties the journal. */
  async compact(s: SavedState): Promise<void> {
    if (this.broken) throw new Error(this.broken);
    await this.writeSnapshot(s, this.seq);
    const fh = await this.openJournal();
    // If this is cut short, the records left are at or below the snapshot's sequence and skipped on load.
    await fh.truncate(0);
    await fh.datasync();
    this.journalBytes = 0;
  }

  async close(): Promise<void> {
    const fh = this.journal;
    this.journal = null;
    await fh?.close();
  }

  private async openJournal(): Promise<FileHandle> {
    if (this.journal) return this.journal;
    await explained(this.dir, mkdir(this.dir, { recursive: true, mode: 0o700 }));
    // Link keys are secrets: owner only.
    this.journal = await explained(this.dir, open(this.journalFile, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_DSYNC, 0o600));
    await syncDir(this.dir);
    return this.journal;
  }

  private async writeSnapshot(s: SavedState, seq: number): Promise<void> {
    await explained(this.dir, mkdir(this.dir, { recursive: true, mode: 0o700 }));
    const body =
      JSON.stringify({
        format: FORMAT,
        version: VERSION,
        seq,
        machine: s.machine,
        configTimeMs: s.configTimeMs,
        ...(s.vttif !== undefined ? { vttif: s.vttif } : {}),
        // The same words as the control protocol's LINK ADD and RULE ADD: one codec, readable by a person.
        links: s.links.map(formatLinkConfig),
        rules: s.rules.map(formatRule),
      }) + '\n';
    const tmp = `${this.file}.tmp-${process.pid}`;
    const fh = await explained(this.dir, open(tmp, 'w', 0o600));
    try {
      await fh.writeFile(body);
      await fh.sync();
    } catch (e) {
      await fh.close();
      await rm(tmp, { force: true });
      throw e;
    }
    await fh.close();
    await explained(this.dir, rename(tmp, this.file));
    await syncDir(this.dir);
    this.hasSnapshot = true;
    this.seq = this.snapshotSeq = seq;
    this.snapshotBytes = Buffer.byteLength(body);
  }

  /** The snapshot, every field checked: a damaged one is refused, said at the field (`rules[3]`), never half-used. */
  private async readSnapshot(): Promise<{ state: SavedState; seq: number } | undefined> {
    const raw = await readOptional(this.file);
    if (!raw) return undefined;
    this.snapshotBytes = raw.length;
    const damaged = `${this.file} is damaged`;
    const r = new JsonReader(damaged);
    /** The field at `path` as `read` makes it; a wrong one stops the daemon, saying where. */
    const field = <T>(path: string, read: () => T): T => {
      try {
        return read();
      } catch (e) {
        const m = (e as Error).message;
        throw new StateError(`${e instanceof InputError ? m : `${damaged}: ${path}: ${m}`}; ${MOVE_ASIDE}`);
      }
    };
    const j = field('', () => r.object(parseJsonFile(damaged, raw.toString('utf8'), 'a vnetd state file'), 'the file'));
    if (j.format === FORMAT && isNewer(j.version)) throw newerState(this.file, j.version);
    if (j.format !== FORMAT || (j.version !== 1 && j.version !== VERSION)) field('format', () => r.fail('format and version', `"${FORMAT}", ${VERSION}`, [j.format, j.version]));
    const seq = j.version === 1 ? 0 : field('seq', () => r.integer(j.seq, 'seq', 0));
    const commands = <T>(key: 'links' | 'rules', verb: string, pick: (c: Command) => T | undefined): T[] =>
      field(key, () => r.array(j[key], key)).map((x, i) =>
        field(`${key}[${i}]`, () => pick(parseCommand(`${verb} ${r.string(x, `${key}[${i}]`)}`)) ?? r.fail(`${key}[${i}]`, `what ${verb} takes`, x)),
      );
    const links = commands('links', 'LINK ADD', (c) => (c.op === 'link-add' ? c.link : undefined));
    const rules = commands('rules', 'RULE ADD', (c) => (c.op === 'rule-add' ? c.rule : undefined));
    const bound = j.configTimeMs ?? null;
    if (bound !== null && !configTime(bound)) field('configTimeMs', () => r.fail('configTimeMs', `null or whole milliseconds from 0 to ${MAX_CONFIG_TIME_MS}`, bound));
    const state: SavedState = { machine: field('machine', () => machineName(r.string(j.machine, 'machine'))), links, rules, configTimeMs: bound as number | null };
    if (j.vttif !== undefined) state.vttif = field('vttif', () => checkedVttif(j.vttif));
    return { seq, state };
  }

  /**
   * Adds the journal's records after the snapshot to `state`. Returns how
   * many bytes are good, and how many at the end are a torn record. A bad
   * record anywhere but last is damage, not a crash, and is refused.
   */
  private replay(journal: Buffer, state: LoadedState): { valid: number; torn: number } {
    let offset = 0;
    let line = 1;
    while (offset < journal.length) {
      const nl = journal.indexOf(0x0a, offset);
      const end = nl < 0 ? journal.length : nl + 1;
      const r = nl < 0 ? { problem: 'unterminated', torn: true } : this.replayRecord(journal.toString('utf8', offset, nl), state, line);
      if (r) {
        // Torn: a record whose bytes did not all reach the disk, and the
        // file's last (a crash mid-append leaves at most one). A whole record
        // that says something wrong, or a bad one with more after it, is damage.
        if (r.torn && end === journal.length) return { valid: offset, torn: journal.length - offset };
        throw new StateError(`${this.journalFile} is damaged at record ${line} (${r.problem}); ${MOVE_ASIDE}`);
      }
      offset = end;
      line++;
    }
    return { valid: offset, torn: 0 };
  }

  /** Applies one record to `state`, or says why it cannot, and whether that is what a torn write looks like. */
  private replayRecord(text: string, state: LoadedState, line: number): { problem: string; torn: boolean } | null {
    const m = RECORD.exec(text);
    if (!m) return { problem: 'not a journal record', torn: true };
    if (crc32hex(m[2]!) !== m[1]) return { problem: 'checksum mismatch', torn: true };
    const bad = (problem: string) => ({ problem, torn: false });
    let j: { version?: unknown; seq?: unknown; changes?: unknown; configTimeMs?: unknown; vttif?: unknown };
    try {
      j = JSON.parse(m[2]!) as typeof j;
    } catch {
      return bad('not JSON');
    }
    // Records carry no version today; one that does, and a later one, is a newer vnetd's, whatever else it holds.
    if (isNewer(j.version)) throw newerState(`${this.journalFile}: record ${line}`, j.version);
    if (typeof j.seq !== 'number' || !Number.isSafeInteger(j.seq)) return bad('no sequence number');
    // Already in the snapshot: a compaction was cut short before it emptied the journal.
    if (j.seq <= this.snapshotSeq) return null;
    if (j.seq !== this.seq + 1) return bad(`sequence ${j.seq} after ${this.seq}`);
    const changes: Change[] = [];
    if (j.changes !== undefined) {
      if (!Array.isArray(j.changes)) return bad('changes are not a list');
      for (const line of j.changes) {
        let c;
        try {
          c = parseCommand(String(line));
        } catch (e) {
          return bad(`bad change: ${(e as Error).message}`);
        }
        if (!isChange(c)) return bad(`not a change: ${String(line)}`);
        changes.push(c);
      }
    }
    if (j.configTimeMs !== undefined && j.configTimeMs !== null && !configTime(j.configTimeMs)) {
      return bad(`configuration time ${JSON.stringify(j.configTimeMs)}, not null or whole milliseconds from 0 to ${MAX_CONFIG_TIME_MS}`);
    }
    for (const c of changes) {
      state.journal.push(c);
      state.journalRecords.push(line);
    }
    if (j.configTimeMs !== undefined) state.configTimeMs = j.configTimeMs;
    if (j.vttif !== undefined) {
      try {
        state.vttif = checkedVttif(j.vttif);
      } catch (e) {
        return bad(`bad VTTIF settings: ${(e as Error).message}`);
      }
    }
    this.seq = j.seq;
    return null;
  }

  /** A crash during a snapshot write leaves its temporary file; the rename never happened, so it is garbage. */
  private async removeStaleTemporaries(): Promise<string[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const stale = names.filter((n) => n.startsWith('state.json.tmp-'));
    for (const n of stale) await rm(path.join(this.dir, n), { force: true });
    return stale.map((n) => `${this.dir}: removed ${n}, left by a snapshot write cut short`);
  }
}

function crc32hex(text: string): string {
  return crc32(text).toString(16).padStart(8, '0');
}

/** `p`, its failure said as what to do where that is a matter of permissions (accessProblem). */
async function explained<T>(dir: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw accessProblem(dir, e) ?? e;
  }
}

async function readOptional(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw accessProblem(path.dirname(file), e, file) ?? new StateError(`cannot read ${file}: ${(e as Error).message}`);
  }
}

async function syncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}
