import { readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';
import type { Ask } from './passphrase.js';

/**
 * Passphrase-protected identity files, used the way ssh(1) uses them: the
 * key's public half is offered first, and the passphrase is asked only
 * when the server would accept that key; a wrong one is said so and asked
 * again, as many tries in all as the host's NumberOfPasswordPrompts (3
 * unless set; none under BatchMode); an empty answer gives up on the key.
 * One KeyUnlocker serves one command: each key is asked for once, however
 * many machines (or jump hosts) use it, and the prompts come one at a time.
 */

/** Why a protected key could not be used. */
export type LockedReason = 'no-way-to-ask' | 'not-asked' | 'not-given' | 'wrong';

export class KeyLocked extends Error {
  constructor(
    /** The key as shown to the person (~/.ssh/id_ed25519). */
    readonly shown: string,
    readonly reason: LockedReason,
    /** The tries the host's configuration allowed. */
    readonly tries: number,
  ) {
    super(`key ${shown} is passphrase-protected and stayed locked (${reason})`);
  }
}

export class KeyUnlocker {
  private readonly unlocked = new Map<string, Promise<ParsedKey | KeyLocked>>();
  /** Prompts in turn: machines connect in parallel, a person answers one question at a time. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    /** How to ask; undefined when nobody can be asked (no terminal, no askpass), or nobody must be (a keeper). */
    private readonly ask: Ask | undefined,
    /** One line for the person at the terminal (a wrong passphrase). */
    private readonly say: (line: string) => void,
  ) {}

  /**
   * The decrypted key of `file` (named `shown` to the person), asked for at
   * most once, in at most `tries` prompts (0: never asked, as under BatchMode).
   */
  unlock(file: string, shown: string, text: Buffer, tries: number): Promise<ParsedKey | KeyLocked> {
    // A host that may not ask neither asks nor uses up the key's one turn for the hosts that may.
    if (tries === 0) return Promise.resolve(this.unlocked.get(file) ?? new KeyLocked(shown, 'not-asked', 0));
    let p = this.unlocked.get(file);
    if (!p) {
      // A terminal that fails midway (EIO) is no answer, not an error that would leave the login hanging.
      p = this.queue.then(() => this.askFor(shown, text, tries)).catch(() => new KeyLocked(shown, 'not-given', tries));
      this.queue = p;
      this.unlocked.set(file, p);
    }
    return p;
  }

  private async askFor(shown: string, text: Buffer, tries: number): Promise<ParsedKey | KeyLocked> {
    const ask = this.ask;
    if (!ask) return new KeyLocked(shown, 'no-way-to-ask', tries);
    for (let i = 1; i <= tries; i++) {
      const passphrase = await ask(`Enter passphrase for key '${shown}': `);
      if (passphrase === undefined) return new KeyLocked(shown, 'not-given', tries);
      const key = ssh2.utils.parseKey(text, passphrase);
      if (!(key instanceof Error)) return key;
      this.say(`wrong passphrase for key ${shown}${i < tries ? ', try again' : `: ${tries} ${tries === 1 ? 'try' : 'tries'}, giving up on it`}`);
    }
    return new KeyLocked(shown, 'wrong', tries);
  }
}

/**
 * The public half of a protected key, without its passphrase: the `.pub`
 * beside it (as ssh does), else the unencrypted header of an OpenSSH-format
 * key. Undefined for a legacy PEM key with no `.pub`: it must be unlocked
 * before it can even be offered.
 */
export function publicHalf(file: string, text: Buffer): ParsedKey | undefined {
  try {
    const pub = ssh2.utils.parseKey(readFileSync(`${file}.pub`));
    if (!(pub instanceof Error)) return pub;
  } catch {
    // no .pub: look inside the key
  }
  const blob = openSshPublicBlob(text);
  const key = blob && ssh2.utils.parseKey(blob);
  return key && !(key instanceof Error) ? key : undefined;
}

/** "openssh-key-v1\0", cipher, kdf, kdf options, key count, then the first public key, all in clear. */
function openSshPublicBlob(text: Buffer): Buffer | undefined {
  const lines = text.toString('utf8').trim().split(/\r?\n/);
  if (lines[0] !== '-----BEGIN OPENSSH PRIVATE KEY-----') return undefined;
  const b = Buffer.from(lines.filter((l) => !l.startsWith('-----')).join(''), 'base64');
  const magic = 'openssh-key-v1\0';
  if (b.toString('latin1', 0, magic.length) !== magic) return undefined;
  let at = magic.length;
  const field = (): Buffer | undefined => {
    if (at + 4 > b.length) return undefined;
    const n = b.readUInt32BE(at);
    if (at + 4 + n > b.length) return undefined;
    const v = b.subarray(at + 4, at + 4 + n);
    at += 4 + n;
    return v;
  };
  if (!field() || !field() || !field() || at + 4 > b.length) return undefined;
  at += 4;
  return field();
}

/**
 * An ssh2 agent holding one protected key file: ssh2 offers its public
 * half, and signs through it only once the server has accepted that key
 * (USERAUTH_PK_OK), which is when the passphrase is asked. A key that
 * stays locked fails the signature with KeyLocked: ssh2 then goes on to
 * the next way of logging in.
 */
export class ProtectedKeyAgent extends ssh2.BaseAgent<ParsedKey> {
  constructor(
    private readonly file: string,
    private readonly shown: string,
    private readonly text: Buffer,
    private readonly unlocker: KeyUnlocker,
    /** Prompts the host allows (its NumberOfPasswordPrompts; 0 under BatchMode). */
    private readonly tries: number,
    /** Told the key was unlocked to sign with, or why it stayed locked. */
    private readonly outcome: (k: ParsedKey | KeyLocked) => void,
    /** Told while the key is being unlocked (a person may be typing): the login's time bound must not run meanwhile. */
    private readonly waiting: (busy: boolean) => void,
  ) {
    super();
  }

  getIdentities(cb: (err: Error | undefined, keys?: ParsedKey[]) => void): void {
    const pub = publicHalf(this.file, this.text);
    if (pub) return cb(undefined, [pub]);
    void this.key().then((k) => {
      if (k instanceof KeyLocked) this.outcome(k);
      cb(undefined, k instanceof KeyLocked ? [] : [k]);
    });
  }

  sign(_pub: ParsedKey, data: Buffer, options: { hash?: string } | ((err: Error | undefined, sig?: Buffer) => void), cb?: (err: Error | undefined, sig?: Buffer) => void): void {
    const done = typeof options === 'function' ? options : cb!;
    const hash = typeof options === 'function' ? undefined : options.hash;
    void this.key().then((k) => {
      this.outcome(k);
      if (k instanceof KeyLocked) return done(k);
      const sig = k.sign(data, hash);
      if (sig instanceof Error) return done(sig);
      done(undefined, sig);
    });
  }

  private async key(): Promise<ParsedKey | KeyLocked> {
    this.waiting(true);
    try {
      return await this.unlocker.unlock(this.file, this.shown, this.text, this.tries);
    } finally {
      this.waiting(false);
    }
  }
}
