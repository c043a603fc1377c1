import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import type { Diagnostic } from '../src/diag/diagnostic.js';
import { Msg } from '../src/diag/messages.js';
import { jsonDiagnostic, renderDiagnostics, validateReport } from '../src/diag/render.js';
import { SourceFile } from '../src/diag/source.js';
import { compileText, decode, parseSource } from '../src/lang/compile.js';
import { format } from '../src/lang/format.js';
import { expectNoCrash, runVnetcAsync, SAMPLES, VNETC, type Run } from './support/vnetc.js';
import { prng } from '../src/util/prng.js';

/**
 * Whatever a person or a broken tool sends, vnetc answers with a diagnostic
 * (a code, a location, usually a way forward) and an exit code, never with a
 * stack trace. The first part runs the built binary on hostile files; the
 * second throws generated text at the front end in-process.
 */

const MB = 1024 * 1024;
const MAX_OUTPUT_LINE = 300;
const SLOW = 120_000;

let tmp = '';

function vnetc(args: string[], input: string | Buffer = '', opts: { nodeArgs?: string[]; cwd?: string } = {}): Promise<Run> {
  return runVnetcAsync(args, { cwd: tmp, input, ...opts });
}

function longestLine(text: string): number {
  let max = 0;
  for (const line of text.split('\n')) max = Math.max(max, line.length);
  return max;
}

type JsonReport = ReturnType<typeof validateReport>;

interface Expectation {
  /** validate's exit code */
  exit: 1 | 2;
  /** a code that must be reported (a pattern: `VN20\\d\\d` is any syntax error) */
  code: string;
  /** where, when known: `line:column`; without it, any position or none (a whole-file diagnostic) */
  at?: string;
  /** an error of meaning, not of syntax: fmt has nothing to say about it */
  meaning?: boolean;
}

/**
 * Runs `validate`, `validate --json` and `fmt --check` on a file and checks
 * each names the code and the file, exits as it should, and does not crash.
 * Returns the human and JSON reports for further checks.
 */
async function expectDiagnosed(name: string, want: Expectation): Promise<{ human: Run; json: JsonReport }> {
  const [human, j, f] = await Promise.all([
    vnetc(['validate', name]),
    vnetc(['validate', '--json', name]),
    vnetc(['fmt', '--check', name]),
  ]);
  expectNoCrash(human);
  expect(human.status).toBe(want.exit);
  expect(human.stdout).toMatch(new RegExp(`error\\[${want.code}\\]`));
  const where = want.at ? `:${want.at}` : '(?::\\d+:\\d+)?';
  expect(human.stdout).toMatch(new RegExp(`^${name.replace(/\./g, '\\.')}${where}: error\\[${want.code}\\]`, 'm'));
  expect(human.stdout).toMatch(/\d+ errors? in 1 file\.\n$/);

  expectNoCrash(j);
  expect(j.status).toBe(want.exit);
  const json = JSON.parse(j.stdout) as JsonReport;
  expect(json.valid).toBe(false);
  expect(json.diagnostics.some((d) => new RegExp(`^${want.code}$`).test(d.code))).toBe(true);
  // errorCount covers the listed errors, and any a too-many-errors note stands for.
  const listed = json.diagnostics.filter((d) => d.severity === 'error' && d.code !== 'VN1006').length;
  if (json.diagnostics.some((d) => d.code === 'VN1006')) expect(json.errorCount).toBeGreaterThanOrEqual(listed);
  else expect(json.errorCount).toBe(listed);

  expectNoCrash(f);
  if (want.meaning) {
    expect(f.stderr).toBe('');
  } else {
    expect(f.status).toBe(want.exit);
    expect(f.stdout).toBe('');
    expect(f.stderr).toMatch(new RegExp(`error\\[${want.code}\\]`));
  }
  return { human, json };
}

function write(name: string, data: string | Buffer): string {
  const full = path.join(tmp, name);
  fs.writeFileSync(full, data);
  return full;
}


/** About 1 MB of words of printable ASCII other than `#`, separated by spaces (and newlines, unless `oneLine`). */
function garbageChunk(seed: number, oneLine: boolean): string {
  const rand = prng(seed);
  const parts: string[] = [];
  let size = 0;
  while (size < MB) {
    const len = 1 + Math.floor(rand() * 8);
    let w = '';
    for (let i = 0; i < len; i++) {
      let c = 0x21 + Math.floor(rand() * 94);
      if (c === 0x23) c = 0x40; // no comments: they would hide the garbage
      w += String.fromCharCode(c);
    }
    const sep = !oneLine && rand() < 0.1 ? '\n' : ' ';
    parts.push(w + sep);
    size += w.length + 1;
  }
  return parts.join('');
}

/** Writes `head`, then `chunk` until the file reaches `bytes`, then `tail`. */
function writeLarge(name: string, head: string, chunk: string, bytes: number, tail = '', dir = tmp): void {
  const fd = fs.openSync(path.join(dir, name), 'w');
  try {
    fs.writeSync(fd, head);
    let written = head.length;
    const buf = Buffer.from(chunk);
    while (written < bytes) {
      fs.writeSync(fd, buf);
      written += buf.length;
    }
    fs.writeSync(fd, tail);
  } finally {
    fs.closeSync(fd);
  }
}

beforeAll(() => {
  if (!fs.existsSync(VNETC)) throw new Error(`${VNETC} is missing: run 'npm run build' (npm test does) first`);
});

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-robust-'));
});

afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const VALID = `BEGIN
  HOST vnet AT proxy 5000 eth0
  HOST vnet AT host1 5000 vmnet1
  ADD
    LINK host1 proxy
    FORWARD host1 ANY 00:50:56:00:21:01 vmnet1
END
`;

// ── what is not text ──────────────────────────────────────────────────────

describe('input that is not a program', () => {
  test('random binary bytes with a NUL: VN1002, with the offset', async () => {
    const rand = prng(1);
    const bytes = Buffer.alloc(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256);
    bytes[100] = 0;
    const firstNul = bytes.indexOf(0);
    write('blob.vnet', bytes);
    const { human } = await expectDiagnosed('blob.vnet', { exit: 1, code: 'VN1002' });
    expect(human.stdout).toContain(`NUL byte at offset ${firstNul}`);
    expect(human.stdout).toContain('hint:');
  });

  test('binary on standard input', async () => {
    const r = await vnetc(['validate', '-'], Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0x00]));
    expectNoCrash(r);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('<stdin>:1:8: error[VN1002]');
    const f = await vnetc(['fmt', '-'], Buffer.from([0, 1, 2, 3]));
    expectNoCrash(f);
    expect(f.status).toBe(1);
    expect(f.stderr).toContain('<stdin>:1:1: error[VN1002]');
  });

  test('a NUL in an otherwise valid program', async () => {
    write('nul.vnet', VALID.replace('ADD', 'ADD\0'));
    const before = VALID.slice(0, VALID.indexOf('ADD') + 3).split('\n');
    const { human } = await expectDiagnosed('nul.vnet', { exit: 1, code: 'VN1002', at: `${before.length}:${before.at(-1)!.length + 1}` });
    expect(human.stdout).toContain(`offset ${VALID.indexOf('ADD') + 3}`);
  });

  const utf8 = (...parts: (string | number[])[]): Buffer =>
    Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

  test.each([
    ['a stray 0xFF', utf8('BEGIN ', [0xff, 0xfe], ' END\n'), 'FF', 6, '1:7'],
    ['a truncated sequence', utf8('BEGIN\n# caf', [0xc3], '\nEND\n'), 'C3', 11, '2:6'],
    ['Latin-1 text', Buffer.from('# r\xe9seau\nBEGIN\nEND\n', 'latin1'), 'E9', 3, '1:4'],
    ['after a BOM and a multi-byte character', utf8([0xef, 0xbb, 0xbf], 'BEGIN\n\t# café ', [0xff], '\nEND\n'), 'FF', 18, '2:9'],
  ])('invalid UTF-8 without a NUL (%s): VN1003, with the byte and offset, and where it is', async (_what, bytes, hex, offset, at) => {
    expect(bytes.includes(0)).toBe(false);
    write('latin.vnet', bytes);
    const { human } = await expectDiagnosed('latin.vnet', { exit: 1, code: 'VN1003', at });
    expect(human.stdout).toContain(`bad byte 0x${hex} at offset ${offset}`);
    expect(human.stdout).toContain('hint: re-save the file as UTF-8');
  });

  // Regression: byte sequences that Buffer.isUtf8 rejects but a looser check
  // accepted (surrogates ED A0 80, overlong E0 80 80 / F0 80 80 80, F4 90 80 80
  // above U+10FFFF) used to crash decode() (exit 70, stack trace).
  test.each([
    ['an encoded surrogate', [0xed, 0xa0, 0x80], 'ED'],
    ['an overlong NUL', [0xe0, 0x80, 0x80], 'E0'],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80], 'F4'],
  ])('invalid UTF-8 that looks well formed (%s): VN1003, not a crash', async (_what, seq, hex) => {
    write('tricky.vnet', utf8('BEGIN ', seq, ' END\n'));
    const { human } = await expectDiagnosed('tricky.vnet', { exit: 1, code: 'VN1003' });
    expect(human.stdout).toContain(`bad byte 0x${hex} at offset 6`);
  });

  // Regression: the same crash, in process.
  test('decode never throws on arbitrary bytes, and names the first bad byte', () => {
    const piece = fc.oneof(
      fc.constantFrom([0x41], [0x20], [0x0a], [0xc3, 0xa9], [0xe2, 0x82, 0xac], [0xf0, 0x9f, 0x96, 0xa5]), // valid
      fc.constantFrom([0xed, 0xa0, 0x80], [0xe0, 0x80, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc0, 0x80], [0xff], [0x80]), // not
      fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 4 }),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
        const bytes = Uint8Array.from(pieces.flat());
        const { diagnostics } = decode('b.vnet', bytes);
        let valid = true;
        try {
          new TextDecoder('utf-8', { fatal: true }).decode(bytes);
        } catch {
          valid = false;
        }
        if (bytes.includes(0)) expect(diagnostics.map((d) => d.code)).toEqual(['VN1002']);
        else if (!valid) expect(diagnostics.map((d) => d.code)).toEqual(['VN1003']);
        else expect(diagnostics).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  test('random bytes without a NUL that are not UTF-8', async () => {
    const rand = prng(7);
    const bytes = Buffer.alloc(100_000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = 1 + Math.floor(rand() * 255);
    write('noise.vnet', bytes);
    await expectDiagnosed('noise.vnet', { exit: 1, code: 'VN1003' });
  });

  test('a file larger than 256 MiB is refused without being read', async () => {
    const file = write('huge.vnet', '');
    fs.truncateSync(file, 300 * MB); // sparse: costs no disk
    const { human } = await expectDiagnosed('huge.vnet', { exit: 1, code: 'VN1005' });
    expect(human.stdout).toContain(`the file is ${300 * MB} bytes`);
  });
});

// ── nothing to read ───────────────────────────────────────────────────────

describe('files with no program in them', () => {
  test('an empty file: VN1004', async () => {
    write('empty.vnet', '');
    const { human } = await expectDiagnosed('empty.vnet', { exit: 1, code: 'VN1004' });
    expect(human.stdout).toContain('hint: a program is `BEGIN`');
  });

  test('empty standard input: VN1004', async () => {
    const r = await vnetc(['validate', '-'], '');
    expectNoCrash(r);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('<stdin>: error[VN1004]');
  });

  test('a whitespace-only file: VN1004', async () => {
    write('blank.vnet', ' \n\t\n\r\n\f   \n');
    await expectDiagnosed('blank.vnet', { exit: 1, code: 'VN1004' });
  });

  test('a byte-order mark and nothing else: VN1004', async () => {
    write('bom.vnet', '\ufeff');
    await expectDiagnosed('bom.vnet', { exit: 1, code: 'VN1004' });
  });

  test('a comments-only file: VN2001, expected BEGIN, at the end of the file', async () => {
    write('comments.vnet', '# just a note\n# and another\n');
    const { human } = await expectDiagnosed('comments.vnet', { exit: 1, code: 'VN2001', at: '3:1' });
    expect(human.stdout).toContain('expected BEGIN, found the end of the file');
    expect(human.stdout).toContain('hint: a program starts with BEGIN');
  });

  test('a file that is only END: VN2001, expected BEGIN', async () => {
    write('end.vnet', 'END\n');
    const { human } = await expectDiagnosed('end.vnet', { exit: 1, code: 'VN2001', at: '1:1' });
    expect(human.stdout).toContain("expected BEGIN, found 'END'");
  });

  test('a missing file: VN1000, exit 2', async () => {
    const r = await vnetc(['validate', 'ghost.vnet']);
    expectNoCrash(r);
    expect(r.status).toBe(2);
    expect(r.stdout).toContain("ghost.vnet: error[VN1000]: cannot read 'ghost.vnet': no such file");
    const f = await vnetc(['fmt', '--check', 'ghost.vnet']);
    expectNoCrash(f);
    expect(f.status).toBe(2);
    expect(f.stderr).toContain('error[VN1000]');
  });

  test('a path through a regular file: VN1000, exit 2', async () => {
    write('plain.vnet', VALID);
    const r = await vnetc(['validate', 'plain.vnet/inner.vnet']);
    expectNoCrash(r);
    expect(r.status).toBe(2);
    expect(r.stdout).toContain('error[VN1000]');
  });
});

// ── large and hostile text ────────────────────────────────────────────────

describe('large and hostile text', () => {
  test('50 MB on one line: the excerpt is windowed', async () => {
    // Plain names: on printable garbage (colons, so malformed MACs) vnetc
    // takes ~20 s for this file, and the next test covers memory.
    const rand = prng(43);
    const names: string[] = [];
    for (let size = 0; size < MB; ) {
      const name = `w${Math.floor(rand() * 1e6)}`;
      names.push(name);
      size += name.length + 1;
    }
    writeLarge('oneline.vnet', 'BEGIN ', names.join(' ') + ' ', 50 * MB, 'END');
    const r = await vnetc(['validate', 'oneline.vnet']);
    expectNoCrash(r);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/oneline\.vnet:1:\d+: error\[VN\d{4}\]/);
    expect(r.stdout).toMatch(/^ 1 \| .*…$/m);
    expect(longestLine(r.stdout)).toBeLessThanOrEqual(MAX_OUTPUT_LINE);
  }, SLOW);

  test('a 50 MB line with the error at its far end: right column, windowed excerpt, caret under the word', async () => {
    writeLarge('far.vnet', 'BEGIN', ' '.repeat(MB), 50 * MB, 'bogus END\n');
    const column = 'BEGIN'.length + 50 * MB + 1; // 'BEGIN' and 50 chunks of 1 MB of spaces before 'bogus'
    const r = await vnetc(['validate', 'far.vnet']);
    expectNoCrash(r);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`far.vnet:1:${column}: error[VN2001]`);
    expect(r.stdout).toContain("found 'bogus'");
    expect(longestLine(r.stdout)).toBeLessThanOrEqual(MAX_OUTPUT_LINE);
    const lines = r.stdout.split('\n');
    const excerpt = lines.find((l) => /^ 1 \| /.test(l))!;
    const caret = lines[lines.indexOf(excerpt) + 1]!;
    expect(excerpt).toContain('bogus');
    expect(caret.indexOf('^')).toBe(excerpt.indexOf('bogus'));
    expect(caret).toMatch(/\^~~~~$/);
  }, SLOW);

  // Regression: messages and hints used to quote the offending word in full,
  // making output lines of a megabyte.
  test('an enormous word is quoted shortened, not in full', async () => {
    const huge = 'h'.repeat(MB);
    write(
      'word.vnet',
      `BEGIN\n  HOST vnet AT ${huge} 5000 eth0\n  ADD\n    LINK x ${huge}\n    FORWARD x ${'a:'.repeat(MB / 2)}b ANY eth0\nEND\n`,
    );
    const r = await vnetc(['validate', 'word.vnet']);
    expectNoCrash(r);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('error[VN3015]');
    expect(r.stdout).toContain('error[VN1007]');
    expect(longestLine(r.stdout)).toBeLessThanOrEqual(MAX_OUTPUT_LINE);
  }, SLOW);

  test('200,000 stray control characters in one run: one VN1001, windowed', async () => {
    const rand = prng(3);
    const controls = [0x01, 0x02, 0x03, 0x07, 0x08, 0x0e, 0x1b, 0x1f, 0x7f];
    let text = '';
    for (let i = 0; i < 200_000; i++) text += String.fromCharCode(controls[Math.floor(rand() * controls.length)]!);
    write('ctrl.vnet', text);
    const { human } = await expectDiagnosed('ctrl.vnet', { exit: 1, code: 'VN1001', at: '1:1' });
    expect(longestLine(human.stdout)).toBeLessThanOrEqual(MAX_OUTPUT_LINE);
    // eslint-disable-next-line no-control-regex
    expect(human.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/); // shown as visible cells, not sent to the terminal
  });

  test('200,000 stray control characters between whitespace: errors capped', async () => {
    const rand = prng(4);
    const controls = [0x01, 0x02, 0x03, 0x07, 0x08, 0x0e, 0x1b, 0x1f, 0x7f];
    const spaces = [' ', '\n', '\t'];
    let text = '';
    for (let i = 0; i < 200_000; i++) {
      text += String.fromCharCode(controls[Math.floor(rand() * controls.length)]!);
      if (rand() < 0.3) text += spaces[Math.floor(rand() * spaces.length)]!;
    }
    write('ctrl2.vnet', text);
    const { human, json } = await expectDiagnosed('ctrl2.vnet', { exit: 1, code: 'VN1001', at: '1:1' });
    expect(json.diagnostics.length).toBeLessThanOrEqual(101);
    expect(longestLine(human.stdout)).toBeLessThanOrEqual(MAX_OUTPUT_LINE);
    // eslint-disable-next-line no-control-regex
    expect(human.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
  });

  // Regression (a bug in commit a93b9d8, fixed in the working tree since):
  // when the scanner reached 100 errors it abandoned the file, but as nothing
  // had been dropped yet no VN1006 note was added, so the user saw exactly
  // 100 errors with no sign that the rest of the file was never checked.
  // Repro: 150 lines of "\x01" between BEGIN and END.
  test('past 100 stray characters, the "too many errors" note says the rest was not checked', async () => {
    write('c150.vnet', 'BEGIN\n' + '\x01\n'.repeat(150) + 'END\n');
    const { json } = await expectDiagnosed('c150.vnet', { exit: 1, code: 'VN1001' });
    expect(json.diagnostics.at(-1)!.code).toBe('VN1006');
  });

  test('non-ASCII in a name: VN1001 names the character', async () => {
    write('accent.vnet', 'BEGIN\n  HOST vnet AT hôst 5000 eth0\n  HOST vnet AT 🖥️ 5000 eth0\nEND\n');
    const { human } = await expectDiagnosed('accent.vnet', { exit: 1, code: 'VN1001', at: '2:17' });
    expect(human.stdout).toContain("U+00F4 'ô'");
    expect(human.stdout).toContain('U+1F5A5');
  });

  test('a huge valid-looking program with an error near the end: reported at the right line', async () => {
    const lines = ['BEGIN', '  HOST vnet AT proxy 5000 eth0', '  HOST vnet AT host1 5000 vmnet1', '  ADD', '    LINK host1 proxy'];
    const rules = 100_000;
    const badAt = rules - 10;
    let badLine = 0;
    for (let i = 0; i < rules; i++) {
      const hex = (n: number): string => n.toString(16).padStart(2, '0');
      const mac = `00:50:${hex((i >> 16) & 255)}:${hex((i >> 8) & 255)}:${hex(i & 255)}:01`;
      if (i === badAt) {
        lines.push(`    FORWARD host1 ANY ${mac} host1 porxy`);
        badLine = lines.length;
      } else {
        lines.push(`    FORWARD host1 ANY ${mac} host1 proxy`);
      }
    }
    lines.push('END', '');
    write('big.vnet', lines.join('\n'));
    const column = lines[badLine - 1]!.indexOf('porxy') + 1;
    const { human, json } = await expectDiagnosed('big.vnet', { exit: 1, code: 'VN3001', at: `${badLine}:${column}`, meaning: true });
    expect(json.diagnostics).toHaveLength(1);
    expect(json.diagnostics[0]).toMatchObject({ code: 'VN3001', line: badLine, column, hint: "did you mean 'proxy'?" });
    expect(human.stdout).toContain(`${badLine} |     FORWARD host1 ANY`);
  }, SLOW);

  test.each([
    ['BEGIN', 100_000, 'VN2001'],
    ['NOT', 100_000, 'VN2001'],
    ['ANY', 100_000, 'VN2001'],
    ['END', 100_000, 'VN2002'],
    // Each of these starts a statement that fails (which syntax error is
    // reported is the parser's business): 2,000 is far past the error cap,
    // and each costs vnetc tens of microseconds of parser recovery (a
    // million take it half a minute).
    ['HOST', 2_000, 'VN20\\d\\d'],
    ['FORWARD', 2_000, 'VN20\\d\\d'],
    ['LINK', 2_000, 'VN20\\d\\d'],
  ])('deeply repeated keywords: BEGIN %s ... %i times (%s)', async (keyword, times, code) => {
    write('repeat.vnet', `BEGIN ${`${keyword} `.repeat(times)}`);
    const { human, json } = await expectDiagnosed('repeat.vnet', { exit: 1, code });
    expect(json.diagnostics.length).toBeLessThanOrEqual(101);
    expect(longestLine(human.stdout)).toBeLessThanOrEqual(MAX_OUTPUT_LINE);
  }, SLOW);

  test('BEGIN BEGIN BEGIN ... on separate lines', async () => {
    write('begins.vnet', 'BEGIN\n'.repeat(100_000));
    const { human } = await expectDiagnosed('begins.vnet', { exit: 1, code: 'VN2001', at: '2:1' });
    expect(human.stdout).toContain("found 'BEGIN'");
  });
});

// ── 50 MB of garbage ──────────────────────────────────────────────────────

describe('50 MB of printable garbage words', () => {
  // vnetc reads all 50 MB even after the error cap, which takes it seconds,
  // so the file is written once and the runs share the machine's cores.
  let dir = '';
  let json: Promise<Run>;
  let smallHeap: Promise<Run>;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-garbage-'));
    writeLarge('garbage.vnet', '', garbageChunk(42, false), 50 * MB, '', dir);
    json = vnetc(['validate', '--json', 'garbage.vnet'], '', { cwd: dir });
    smallHeap = vnetc(['validate', 'garbage.vnet'], '', { cwd: dir, nodeArgs: ['--max-old-space-size=512'] });
  });

  afterAll(async () => {
    await Promise.allSettled([json, smallHeap]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('at most 100 errors and the "too many errors" note', async () => {
    const j = await json;
    expectNoCrash(j);
    expect(j.status).toBe(1);
    const report = JSON.parse(j.stdout) as JsonReport;
    expect(report.diagnostics.length).toBeLessThanOrEqual(101);
    expect(report.errorCount).toBeGreaterThan(100);
    expect(report.diagnostics.at(-1)!.code).toBe('VN1006');
    expect(report.diagnostics.at(-1)!.message).toMatch(/^too many errors\b/);
    expect(report.diagnostics.filter((d) => d.code !== 'VN1006').every((d) => d.line !== null && d.column !== null)).toBe(true);
    expect(report.diagnostics.every((d) => d.message.length + (d.hint ?? '').length <= MAX_OUTPUT_LINE)).toBe(true);
  }, SLOW);

  // Regression: after a syntax error the parser's token window used to keep
  // every token of the file (V8 heap out of memory on 50 MB of garbage).
  test('fits in a 512 MB heap', async () => {
    const r = await smallHeap;
    expect(r.stderr).not.toMatch(/heap out of memory/);
    expectNoCrash(r);
    // and the human report says what the JSON one does
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^garbage\.vnet(:\d+:\d+)?: error\[VN1006\]: too many errors/m);
    expect(r.stdout).toMatch(/^garbage\.vnet:\d+:\d+: error\[VN\d{4}\]/m);
    expect(r.stdout).toMatch(/\n\d+ errors in 1 file\.\n$/);
    expect(r.stdout.match(/^\S+: error\[/gm)!.length).toBeLessThanOrEqual(101);
    expect(longestLine(r.stdout)).toBeLessThanOrEqual(MAX_OUTPUT_LINE);
  }, SLOW);

});

// ── in-process properties ─────────────────────────────────────────────────

describe('the front end on generated text', () => {
  const codes = new Map<string, string>(Object.values(Msg).map((m) => [m.code, m.severity]));
  const sample = fs.readFileSync(path.join(SAMPLES, 'udp-extended.vnet'), 'utf8');

  function checkDiagnostics(text: string, diagnostics: readonly Diagnostic[]): void {
    const inText = (s: { start: number; end: number }): boolean =>
      Number.isInteger(s.start) && Number.isInteger(s.end) && 0 <= s.start && s.start <= s.end && s.end <= text.length;
    for (const d of diagnostics) {
      if (codes.get(d.code) !== d.severity) throw new Error(`unknown code or wrong severity: ${d.code} ${d.severity}`);
      if (d.span && !inText(d.span)) throw new Error(`${d.code} span ${JSON.stringify(d.span)} outside 0..${text.length}`);
      for (const r of d.related ?? []) {
        if (!inText(r.span)) throw new Error(`${d.code} related span ${JSON.stringify(r.span)} outside 0..${text.length}`);
      }
    }
    // Rendering, for people and for machines, must not throw either.
    renderDiagnostics(diagnostics);
    diagnostics.forEach(jsonDiagnostic);
  }

  /** The whole contract: no throw, known codes, spans in the text, format round-trips. */
  function check(text: string): void {
    const compiled = compileText('gen.vnet', text);
    checkDiagnostics(text, compiled.diagnostics);

    const file = new SourceFile('gen.vnet', text);
    const parsed = parseSource(file);
    checkDiagnostics(text, parsed.diagnostics);
    if (!parsed.syntaxOk) return;
    const once = format(file, parsed.program!, parsed.comments);
    const file2 = new SourceFile('gen.vnet', once);
    const reparsed = parseSource(file2);
    if (!reparsed.syntaxOk) {
      throw new Error(`formatted text does not parse:\n${once}\n${renderDiagnostics(reparsed.diagnostics)}`);
    }
    const twice = format(file2, reparsed.program!, reparsed.comments);
    if (twice !== once) throw new Error(`format is not idempotent:\n--- once\n${once}--- twice\n${twice}`);
    // Comments survive, in order.
    const comments = (s: string): string[] => (s.match(/#[^\n]*/g) ?? []).map((c) => c.trimEnd());
    expect(comments(once)).toEqual(comments(text));
  }

  const VOCAB = [
    'BEGIN', 'END', 'HOST', 'AT', 'ADD', 'DELETE', 'LINK', 'FORWARD', 'NOT', 'ANY', 'NONE', 'TCP', 'UDP',
    'EDGE', 'INTERFACE', 'begin', 'Forward', 'proxy', 'host1', 'host2', 'vnet', 'eth0', 'vmnet1', '5000',
    '0', '65536', '00:50:56:00:21:01', 'FF:FF:FF:FF:FF:FF', '0:50:56:0:21:1', '00-50-56-00-21-02',
    '00:50:56', 'zz:zz:zz:zz:zz:zz', '#', '# note', '\n', '\r\n', '\t', ' ', '\u00e9', '\u0001',
  ];

  test('arbitrary strings', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), check), { numRuns: 400 });
  });

  test('arbitrary strings of grammar words', () => {
    const soup = fc.array(fc.constantFrom(...VOCAB), { maxLength: 60 }).map((ws) => ws.join(' '));
    fc.assert(fc.property(soup, check), { numRuns: 600 });
  });

  type Mutation =
    | { kind: 'deleteLine' | 'deleteWord'; at: number }
    | { kind: 'duplicateLine' | 'duplicateWord'; at: number; to: number }
    | { kind: 'insertWord'; at: number; word: string }
    | { kind: 'insertText'; at: number; text: string };

  function mutate(text: string, mutations: readonly Mutation[]): string {
    const words = (t: string): string[] => t.split(/(\s+)/); // words at even indexes
    const word = (parts: string[], at: number): number => 2 * (at % Math.ceil(parts.length / 2));
    for (const m of mutations) {
      const lines = text.split('\n');
      const parts = words(text);
      switch (m.kind) {
        case 'deleteLine':
          lines.splice(m.at % lines.length, 1);
          text = lines.join('\n');
          break;
        case 'duplicateLine':
          lines.splice(m.to % (lines.length + 1), 0, lines[m.at % lines.length]!);
          text = lines.join('\n');
          break;
        case 'deleteWord':
          parts[word(parts, m.at)] = '';
          text = parts.join('');
          break;
        case 'duplicateWord': {
          const to = word(parts, m.to);
          parts[to] = `${parts[to]} ${parts[word(parts, m.at)]}`;
          text = parts.join('');
          break;
        }
        case 'insertWord': {
          const at = word(parts, m.at);
          parts[at] = `${m.word} ${parts[at]}`;
          text = parts.join('');
          break;
        }
        case 'insertText': {
          const at = m.at % (text.length + 1);
          text = text.slice(0, at) + m.text + text.slice(at);
          break;
        }
      }
    }
    return text;
  }

  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    fc.record({ kind: fc.constantFrom('deleteLine' as const, 'deleteWord' as const), at: fc.nat() }),
    fc.record({ kind: fc.constantFrom('duplicateLine' as const, 'duplicateWord' as const), at: fc.nat(), to: fc.nat() }),
    fc.record({ kind: fc.constant('insertWord' as const), at: fc.nat(), word: fc.constantFrom(...VOCAB) }),
    fc.record({ kind: fc.constant('insertText' as const), at: fc.nat(), text: fc.string({ maxLength: 5 }) }),
  );

  test('the sample itself round-trips unchanged', () => {
    const file = new SourceFile('s.vnet', sample);
    const parsed = parseSource(file);
    expect(parsed.syntaxOk).toBe(true);
    expect(format(file, parsed.program!, parsed.comments)).toBe(sample);
    expect(compileText('s.vnet', sample).diagnostics).toEqual([]);
  });

  test('mutations of a valid sample: deleted, inserted and duplicated words and lines', () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 6 }), (ms) => check(mutate(sample, ms))),
      { numRuns: 400 },
    );
  });

  test('the sample re-spaced: any whitespace and comments between its words', () => {
    const words = sample.replace(/#[^\n]*/g, '').split(/\s+/).filter(Boolean);
    const sep = fc.constantFrom(' ', '\n', '\n\n\n', '\t', '\r\n', ' # c\n', '\n# own line\n', ' #\n\n');
    fc.assert(
      fc.property(fc.array(sep, { minLength: words.length, maxLength: words.length }), (seps) => {
        const text = words.map((w, i) => w + seps[i]!).join('');
        const parsed = parseSource(new SourceFile('r.vnet', text));
        expect(parsed.syntaxOk).toBe(true);
        check(text);
      }),
      { numRuns: 60 },
    );
  });
});

test('what a remote machine said reaches the terminal as text: a message, note or hint quoting it cannot carry control sequences', async () => {
  const { diagnostic } = await import('../src/diag/diagnostic.js');
  const { Verbatim } = await import('../src/diag/messages.js');
  const file = new SourceFile('evil.vnet', 'BEGIN\nEND\n');
  const said = '\u001b]0;owned\u0007\u001b[2J\u001b[31mEVIL';
  const d = diagnostic(Msg.Unreachable, file, { start: 0, end: 5 }, ['evil', new Verbatim(`cannot run commands on evil (exit 3): ${said}`)], {
    hint: `look at ${said} there`,
    related: [{ span: { start: 6, end: 9 }, message: said }],
  });
  const out = renderDiagnostics([d]);
  expect(out).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
  expect(out).toContain('cannot run commands on evil (exit 3): ·]0;owned··[2J·[31mEVIL');
  expect(out).toContain('hint: look at ·]0;owned··[2J·[31mEVIL there');
  // JSON quotes it as it was: a program reading it escapes nothing by accident.
  expect(jsonDiagnostic(d).message).toContain(said);
});
