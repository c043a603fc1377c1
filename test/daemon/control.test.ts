import fc from 'fast-check';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ControlClient } from '../../src/remote/control-client.js';
import { formatCommand, formatRule, parseCommand, parseRuleLine, WireError, type Change } from '../../src/wire/control.js';
import { Config } from '../../daemon/config.js';
import { ControlServer, LineSplitter, type CommitResult, type ControlTarget } from '../../daemon/control.js';

const KEY = 'ab'.repeat(32);

describe('the control codec', () => {
  test.each([
    ['RULE ADD ANY ff:ff:ff:ff:ff:ff LINK h1', { op: 'rule-add', rule: { src: { q: 'any' }, dst: { q: 'exact', mac: 'ff:ff:ff:ff:ff:ff' }, dest: { kind: 'link', to: 'h1' } } }],
    ['rule delete NOT 00:50:56:00:00:01 NONE iface vm0', { op: 'rule-delete', rule: { src: { q: 'not', mac: '00:50:56:00:00:01' }, dst: { q: 'none' }, dest: { kind: 'interface', iface: 'vm0' } } }],
    [`LINK ADD h2 UDP DIAL 127.0.0.1:5001 ${KEY} AUTH-ONLY`, { op: 'link-add', link: { peer: 'h2', proto: 'udp', dial: true, address: '127.0.0.1:5001', key: KEY, mode: 'auth-only' } }],
    [`LINK ADD h2 TCP ACCEPT - ${KEY}`, { op: 'link-add', link: { peer: 'h2', proto: 'tcp', dial: false, address: undefined, key: KEY, mode: 'encrypt' } }],
    ['LINK DELETE h2', { op: 'link-delete', peer: 'h2' }],
    ['HANDLERS?', { op: 'links?' }],
    ['CONFIGTIME 250', { op: 'configtime', ms: 250 }],
  ])('%s', (line, cmd) => {
    expect(parseCommand(line)).toEqual(cmd);
    // And back: what a client prints, the daemon reads as the same command.
    expect(parseCommand(formatCommand(cmd as never))).toEqual(cmd);
  });

  test.each([
    ['FROB', 'E_UNKNOWN', "unknown command 'FROB'"],
    ['RULE ADD NONE ANY LINK h1', 'E_SYNTAX', 'NONE can only be a destination address'],
    ['RULE ADD ANY 00:50:56:00:00:0g LINK h1', 'E_SYNTAX', "'00:50:56:00:00:0g' is not a MAC address"],
    ['RULE ADD ANY ANY LINK', 'E_SYNTAX', 'expected the peer machine'],
    ['RULE ADD ANY ANY LINK h1 extra', 'E_SYNTAX', "unexpected 'extra'"],
    [`LINK ADD h2 TCP DIAL - ${KEY}`, 'E_SYNTAX', 'a link this end dials needs the peer address'],
    ['LINK ADD h2 TCP DIAL 127.0.0.1:5001 beef', 'E_SYNTAX', 'the link key must be 64 hex digits'],
    ["LINK DELETE 'h2;rm -rf /'", 'E_SYNTAX', 'is not a machine name'],
  ])('%s is refused with %s', (line, code, message) => {
    try {
      parseCommand(line);
      throw new Error('parsed');
    } catch (e) {
      expect(e).toBeInstanceOf(WireError);
      expect((e as WireError).code).toBe(code);
      expect((e as WireError).message).toContain(message);
    }
  });

  test('a RULES? line reads back into the rule and its counters', () => {
    expect(parseRuleLine('ANY 00:50:56:00:00:01 LINK h1 packets=3 bytes=180')).toEqual({
      rule: { src: { q: 'any' }, dst: { q: 'exact', mac: '00:50:56:00:00:01' }, dest: { kind: 'link', to: 'h1' } },
      counters: { packets: 3, bytes: 180 },
    });
  });
});

describe('the line splitter', () => {
  test('splits across chunks, drops CR, and skips an over-long line whole, once', () => {
    const lines: string[] = [];
    let long = 0;
    const s = new LineSplitter((l) => lines.push(l), () => long++);
    s.feed(Buffer.from('HEL'));
    s.feed(Buffer.from('LO\r\nRULES?\n'));
    s.feed(Buffer.alloc(100_000, 0x41));
    s.feed(Buffer.alloc(100_000, 0x41));
    s.feed(Buffer.from('\nDONE\n'));
    expect(lines).toEqual(['HELLO', 'RULES?', 'DONE']);
    expect(long).toBe(1);
  });
});

/** A target holding a real Config, without the daemon's I/O around it. */
class ConfigTarget implements ControlTarget {
  readonly machine = 'h1';
  readonly version = 'test';
  readonly config = new Config('h1', new Set(['vm0']));
  async commit(changes: readonly Change[]): Promise<CommitResult> {
    const r = this.config.apply(changes);
    if (!r.ok) return { ok: false, errors: r.errors };
    return { ok: true, ms: 0.1 };
  }
  async setConfigTime(): Promise<void> {}
  vttifWords: string[] = [];
  async setVttif(words: readonly string[]): Promise<string> {
    if (words.includes('window-s=0.01')) throw new WireError('E_REJECTED', 'window too short');
    this.vttifWords = [...words];
    return `vttif ${words.join(' ')}`;
  }
  shutdowns = 0;
  shutdown(): void {
    this.shutdowns++;
  }
  queries = 0;
  *query(op: string): Iterable<string> {
    this.queries++;
    if (op === 'rules?') for (const r of this.config.rules.values()) yield formatRule(r);
    if (op === 'links?') for (const l of this.config.links.values()) yield l.peer;
    if (op === 'infer?') throw new WireError('E_STATE', 'not the collector');
  }
}

describe('control sessions', () => {
  let dir: string;
  let server: ControlServer;
  let target: ConfigTarget;
  let sock: string;
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-ctl-'));
    sock = path.join(dir, 'ctl.sock');
    target = new ConfigTarget();
    server = new ControlServer(target);
    await server.listen(sock);
  });
  afterEach(async () => {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('greeting, queries, and errors that leave the session usable', async () => {
    const c = await ControlClient.connect(sock);
    expect((await c.greeting).text).toBe('vnetd test protocol 1 machine h1');
    expect(await c.request('FROB')).toMatchObject({ ok: false, code: 'E_UNKNOWN' });
    expect(await c.request('RULE ADD ANY ANY LINK h2')).toMatchObject({ ok: false, code: 'E_NOLINK' });
    expect(await c.request(`LINK ADD h2 TCP DIAL 127.0.0.1:5001 ${KEY}`)).toMatchObject({ ok: true });
    expect(await c.request('RULE ADD ANY ANY LINK h2')).toMatchObject({ ok: true });
    expect(await c.request('RULE ADD ANY ANY LINK h2')).toMatchObject({ ok: false, code: 'E_EXISTS' });
    expect(await c.request('LINK DELETE h2')).toMatchObject({ ok: false, code: 'E_INUSE', text: expect.stringContaining('1 rule still send') });
    expect(await c.request('RULE ADD ANY ANY IFACE eth9')).toMatchObject({ ok: false, code: 'E_NOIFACE', text: expect.stringContaining('open: vm0') });
    expect(await c.request('RULES?')).toEqual({ ok: true, data: ['ANY ANY LINK h2'], text: '1' });
    c.close();
  });

  test('VTTIF settings are checked word by word before the daemon sees them; a query the daemon cannot answer is an ERR', async () => {
    const c = await ControlClient.connect(sock);
    expect(await c.request('VTTIF collector=proxy update-hz=20 window-s=0.25')).toEqual({ ok: true, data: [], text: 'vttif collector=proxy update-hz=20 window-s=0.25' });
    expect(target.vttifWords).toEqual(['collector=proxy', 'update-hz=20', 'window-s=0.25']);
    expect(await c.request('VTTIF update-hz=50')).toMatchObject({ ok: false, code: 'E_SYNTAX', text: expect.stringContaining('from 0.000278 (one report per 3600 s, the longest window) to 20') });
    expect(await c.request('VTTIF colour=red')).toMatchObject({ ok: false, code: 'E_SYNTAX', text: expect.stringContaining('known: collector') });
    expect(await c.request('VTTIF collector=$(reboot)')).toMatchObject({ ok: false, code: 'E_SYNTAX' });
    // A bad value is quoted back as any word is: cut to 40 characters, no control or non-ASCII byte reaching the terminal.
    expect(await c.request('VTTIF collector=a\x1b[31mRED')).toEqual({ ok: false, code: 'E_SYNTAX', data: [], text: "collector 'a\\x1b[31mRED' is not a machine name (or '-' for none)" });
    expect((await c.request(`VTTIF sampling=${'é'.repeat(20_000)}`)).text).toBe(`sampling must be 'on' or 'off', not '${'\\xc3\\xa9'.repeat(19)}\\xc3…'`); // the line's bytes, as the daemon reads them
    expect((await c.request(`VTTIF ${'k'.repeat(300)}=1`)).text).toMatch(/^unknown VTTIF setting 'k{39}…' \(known: /);
    expect(await c.request('VTTIF')).toMatchObject({ ok: false, code: 'E_SYNTAX' });
    expect(await c.request('VTTIF window-s=0.01')).toMatchObject({ ok: false, code: 'E_REJECTED' });
    expect(await c.request('INFER?')).toMatchObject({ ok: false, code: 'E_STATE', text: 'not the collector' });
    expect(await c.request('INFO?')).toMatchObject({ ok: true });
    expect(target.vttifWords).toEqual(['collector=proxy', 'update-hz=20', 'window-s=0.25']);
    c.close();
  });

  test('SHUTDOWN is answered, ends the session and then asks the daemon to stop; QUIT only ends the session', async () => {
    const c = await ControlClient.connect(sock);
    expect(await c.request('QUIT')).toEqual({ ok: true, data: [], text: 'bye' });
    expect(target.shutdowns).toBe(0);
    const d = await ControlClient.connect(sock);
    expect(await d.request('shutdown')).toEqual({ ok: true, data: [], text: 'stopping' });
    expect(target.shutdowns).toBe(1);
    await expect(d.request('INFO?')).rejects.toThrow(/closed/);
  });

  test('a batch is all or nothing, with a result per step, in one round trip', async () => {
    const c = await ControlClient.connect(sock);
    const link: Change = { op: 'link-add', link: { peer: 'h2', proto: 'tcp', dial: true, address: '127.0.0.1:5001', key: KEY, mode: 'encrypt' } };
    const rule = (to: string): Change => ({ op: 'rule-add', rule: { src: { q: 'any' }, dst: { q: 'any' }, dest: { kind: 'link', to } } });
    const rejected = await c.batch([link, rule('h2'), rule('h3')]);
    expect(rejected).toEqual({
      ok: false,
      code: 'E_REJECTED',
      text: '1 of 3 changes failed; nothing applied',
      data: ['1 OK', '2 OK', '3 ERR E_NOLINK no link to h3; add the link first (in the same batch is fine)'],
    });
    expect(target.config.links.size + target.config.rules.size).toBe(0);
    const done = await c.batch([link, rule('h2')]);
    expect(done).toMatchObject({ ok: true, data: ['1 OK', '2 OK'], text: expect.stringMatching(/^committed 2 changes in/) });
    expect(target.config.rules.size).toBe(1);
    c.close();
  });

  test('a bad line inside a batch rejects the batch; ABORT and COMMIT outside one are answered', async () => {
    const c = await ControlClient.connect(sock);
    expect(await c.request('BATCH')).toMatchObject({ ok: true });
    expect(await c.request('RULE ADD BOGUS')).toMatchObject({ ok: false, code: 'E_SYNTAX' });
    expect(await c.request('COMMIT')).toMatchObject({ ok: false, code: 'E_REJECTED' });
    expect(await c.request('COMMIT')).toMatchObject({ ok: false, code: 'E_STATE', text: 'no batch is open' });
    expect(await c.request('BATCH')).toMatchObject({ ok: true });
    expect(await c.request('RULES?')).toMatchObject({ ok: false, code: 'E_STATE' });
    expect(await c.request('ABORT')).toMatchObject({ ok: true, text: 'aborted 0 queued changes' });
    c.close();
  });

  test('a client that ends its input at once (a pipe into vnetd ctl) still gets every reply, then the end', async () => {
    // A commit that takes a while, as a durable one does: its reply is due after the client's end of input.
    const slow = target.commit.bind(target);
    target.commit = async (changes) => (await new Promise((r) => setTimeout(r, 50)), slow(changes));
    const c = net.connect(sock);
    let out = '';
    c.on('data', (d: Buffer) => (out += d.toString('utf8')));
    const closed = new Promise((r) => c.on('close', r));
    c.end(`LINK ADD h2 TCP DIAL 127.0.0.1:5001 ${KEY}\nRULE ADD ANY ANY LINK h2\nRULES?\n`);
    await closed;
    expect(out.split('\n')).toEqual(['OK vnetd test protocol 1 machine h1', 'OK', 'OK', '* ANY ANY LINK h2', 'OK 1', '']);
  });

  test('input that ends inside a line: that line is refused, not run (a client cut off mid-write may have sent the prefix of another command)', async () => {
    const c = net.connect(sock);
    let out = '';
    c.on('data', (d: Buffer) => (out += d.toString('utf8')));
    const closed = new Promise((r) => c.on('close', r));
    c.end(`LINK ADD h2 TCP DIAL 127.0.0.1:5001 ${KEY}\nRULE ADD ANY ANY LINK h`);
    await closed;
    expect(out.split('\n')).toEqual(['OK vnetd test protocol 1 machine h1', 'OK', "ERR E_SYNTAX the input ended inside a line ('RULE ADD ANY ANY LINK h'): a command ends with a newline; not run", '']);
    expect(target.config.rules.size).toBe(0);
  });

  test('a client that does not read its replies stops being served until it does, and then gets every one', async () => {
    const rules = Array.from({ length: 200 }, (_, i) => `RULE ADD ANY 02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')} IFACE vm0`);
    const c = await ControlClient.connect(sock);
    expect(await c.batch(rules.map((r) => parseCommand(r) as Change))).toMatchObject({ ok: true });
    c.close();
    // Each RULES? reply is about 8 KB: 20,000 of them unread would be 160 MB.
    const n = 20_000;
    const raw = net.connect(sock);
    raw.pause();
    raw.write('RULES?\n'.repeat(n));
    await new Promise((r) => setTimeout(r, 1500));
    const served = target.queries;
    expect(served).toBeGreaterThan(100);
    expect(served).toBeLessThan(2_000);
    let replies = 0;
    let tail = '';
    const done = new Promise<void>((resolve) => {
      raw.on('data', (d: Buffer) => {
        const text = tail + d.toString('latin1');
        const lines = text.split('\n');
        tail = lines.pop()!;
        for (const l of lines) if (l === 'OK 200') replies++;
        if (replies === n) resolve();
      });
    });
    raw.resume();
    await done;
    expect(target.queries).toBe(n);
    raw.destroy();
  });

  test('a 10 MB line is refused and the session goes on', async () => {
    const c = await ControlClient.connect(sock);
    const reply = c.request('RULES? ' + 'x'.repeat(10 * 1024 * 1024));
    expect(await reply).toMatchObject({ ok: false, code: 'E_TOOLONG' });
    expect(await c.request('HELLO')).toMatchObject({ ok: true });
    c.close();
  });

  test('bytes that are not ASCII are quoted back as the bytes they were, \\xNN each, whether UTF-8 or not', async () => {
    const s = net.connect(sock);
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString('utf8')));
    const closed = new Promise((r) => s.on('close', r));
    // An invalid UTF-8 pair, then a right-to-left override (U+202E), which could garble a terminal showing the reply.
    s.end(Buffer.concat([Buffer.from('RULE ADD '), Buffer.from([0xff, 0xfe]), Buffer.from(' ANY IFACE vm0\nRULE ADD a'), Buffer.from('\u202e', 'utf8'), Buffer.from(' ANY IFACE vm0\n')]));
    await closed;
    const errors = out.split('\n').filter((l) => l.startsWith('ERR'));
    expect(errors).toEqual([expect.stringContaining("'\\xff\\xfe'"), expect.stringContaining("'a\\xe2\\x80\\xae'")]);
  });

  test('fuzz: random bytes get only well-formed replies, and the session still answers', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }), async (chunks) => {
        const s = net.connect(sock);
        let out = '';
        s.setEncoding('latin1');
        s.on('data', (t: string) => (out += t));
        await new Promise((r) => s.once('connect', r));
        for (const c of chunks) s.write(c);
        s.write('\nHELLO fuzz\n');
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`no answer to HELLO after garbage; got ${JSON.stringify(out.slice(-200))}`)), 5000);
          const check = () => {
            if (/\nOK vnetd test protocol 1 machine h1\n$/.test(out)) {
              clearTimeout(t);
              resolve();
            } else setTimeout(check, 5);
          };
          check();
        });
        s.destroy();
        for (const line of out.split('\n').filter(Boolean)) expect(line).toMatch(/^(OK( .*)?|ERR E_[A-Z]+ .*|\* .*)$/);
      }),
      { numRuns: 200 },
    );
  });
});
