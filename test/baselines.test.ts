import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { load, type Io } from '../cli/io.js';
import type { Diagnostic } from '../src/diag/diagnostic.js';
import { Msg } from '../src/diag/messages.js';
import { plain, renderDiagnostics, summary } from '../src/diag/render.js';
import { compileSource, MAX_FILE_BYTES } from '../src/lang/compile.js';

/**
 * Golden ("baseline") tests for diagnostics, after the TypeScript compiler's
 * tests/cases and tests/baselines/reference/*.errors.txt: a reviewer reads
 * exactly what a user would see.
 *
 * Inputs are test/cases/<case>.vnet. Each is read the way the CLI reads a
 * file, with load() from cli/io.ts and the repository root as the working
 * directory (so the checks on raw bytes, NUL, UTF-8, BOM, run too), then
 * compiled with compileSource().
 *
 * BASELINE FORMAT. test/baselines/<case>.errors.txt holds exactly what
 * `vnetc validate --no-color test/cases/<case>.vnet` prints on stdout, run
 * from the repository root:
 *
 *   - each diagnostic as renderDiagnostics() draws it with the plain
 *     painter, diagnostics separated by a blank line, file names as
 *     `test/cases/<case>.vnet` (relative to the root, so a baseline does not
 *     depend on where the repository lives);
 *   - when there are diagnostics, a blank line after the last one;
 *   - then the summary() line and a newline. A clean case's baseline is the
 *     single line `1 file valid.`
 *
 * UPDATING. `UPDATE_BASELINES=1` (like TypeScript's baseline-accept) writes
 * the baselines from the current output instead of comparing, and deletes
 * baselines whose case is gone. Accepted baselines are not thereby right:
 * review every changed .errors.txt in the diff before committing, as a user
 * would read it.
 *
 *   UPDATE_BASELINES=1 node --experimental-vm-modules --no-warnings=ExperimentalWarning \
 *     node_modules/jest/bin/jest.js test/baselines.test.ts
 *
 * BYTE-LEVEL CASES. Some cases are about their bytes, which a baseline does
 * not show; they were written by a one-off script and are committed as is
 * (test/cases/.gitattributes keeps git from converting their line ends):
 *
 *   empty-file                  0 bytes                                   VN1004
 *   whitespace-only             spaces, tabs, CR LF, form feed            VN1004
 *   binary-nul                  a comment line, then a NUL byte           VN1002
 *   utf16-file                  UTF-16LE text with a byte-order mark      VN1002
 *   invalid-utf8                a comment in Latin-1 (byte 0xE9)          VN1003
 *   invalid-utf8-truncated      ends inside a 3-byte sequence (E2 82)     VN1003
 *   control-character           SOH, ESC (an ANSI colour), DEL, VT        VN1001
 *   non-ascii-outside-comment   ô, NBSP, curly quotes, CJK; UTF-8 comments VN1001
 *   clean-bom-crlf-tabs         BOM, CRLF, tabs, form feed                clean
 *   bom-crlf-tabs-errors        the same, with errors (columns, excerpts)
 *   too-many-characters         105 × U+0001                              VN1001
 *   long-line                   one 800-column line (excerpt windows)
 *
 * Two codes cannot come from a file's content and are tested here instead:
 * VN1000 (a path that cannot be read) and VN1005 (a file over
 * MAX_FILE_BYTES, made sparse in the temporary directory).
 *
 * Finally, the code table is held to the tests and to the documentation:
 * every code in Msg must show up in some baseline (or in the two tests
 * above), and LANGUAGE.md's tables must list exactly Msg's codes, with the
 * same severities.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CASES = 'test/cases';
const BASELINES = 'test/baselines';
const SUFFIX = '.errors.txt';
const UPDATE = process.env.UPDATE_BASELINES === '1';

const io: Io = {
  stdout: { write: () => true },
  stderr: { write: () => true },
  readStdin: async () => Buffer.alloc(0),
  cwd: ROOT,
  env: {},
};

const abs = (rel: string): string => path.join(ROOT, rel);

function listDir(rel: string, suffix: string): string[] {
  return fs
    .readdirSync(abs(rel))
    .filter((f) => f.endsWith(suffix))
    .map((f) => f.slice(0, -suffix.length))
    .sort();
}

/** What `vnetc validate` reports for one path: load, then compile what loaded. */
async function diagnose(relPath: string): Promise<Diagnostic[]> {
  const loaded = await load(io, relPath);
  return loaded.ok ? compileSource(loaded.file).diagnostics : loaded.diagnostics;
}

/** The baseline text: `vnetc validate --no-color <path>`'s stdout. */
function render(diags: readonly Diagnostic[]): string {
  return (diags.length ? renderDiagnostics(diags, plain) + '\n' : '') + summary(1, diags) + '\n';
}

const cases = listDir(CASES, '.vnet');
const baselinePath = (name: string): string => abs(`${BASELINES}/${name}${SUFFIX}`);

/** `severity[code]` as every rendered diagnostic heads its first line. */
const HEAD = /\b(error|warning)\[(VN\d{4})\]/g;

describe('diagnostic baselines', () => {
  test('there are cases', () => {
    expect(cases.length).toBeGreaterThan(0);
  });

  test.each(cases)('%s', async (name) => {
    const actual = render(await diagnose(`${CASES}/${name}.vnet`));
    const file = baselinePath(name);
    if (UPDATE) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, actual);
      return;
    }
    if (!fs.existsSync(file)) {
      throw new Error(`no baseline ${BASELINES}/${name}${SUFFIX}; run with UPDATE_BASELINES=1, then review it`);
    }
    expect(actual).toBe(fs.readFileSync(file, 'utf8'));
  });

  test('every baseline has its case (no orphans)', () => {
    const known = new Set(cases);
    const orphans = listDir(BASELINES, SUFFIX).filter((b) => !known.has(b));
    if (UPDATE) {
      for (const o of orphans) fs.rmSync(baselinePath(o));
      return;
    }
    expect(orphans).toEqual([]);
  });

  test('every case has its baseline', () => {
    const have = new Set(listDir(BASELINES, SUFFIX));
    expect(cases.filter((c) => !have.has(c))).toEqual([]);
  });
});

describe('diagnostics that no file content can cause', () => {
  test('VN1000: a path that does not exist', async () => {
    const diags = await diagnose(`${CASES}/no-such-case.vnet`);
    expect(render(diags)).toBe(
      [
        "test/cases/no-such-case.vnet: error[VN1000]: cannot read 'test/cases/no-such-case.vnet': no such file",
        '',
        '1 error in 1 file.',
        '',
      ].join('\n'),
    );
    expect(diags.map((d) => d.code)).toEqual([Msg.CannotRead.code]);
  });

  test('VN1000: a directory', async () => {
    const diags = await diagnose(CASES);
    expect(render(diags)).toBe(
      ["test/cases: error[VN1000]: cannot read 'test/cases': it is a directory", '', '1 error in 1 file.', ''].join('\n'),
    );
    expect(diags.map((d) => d.code)).toEqual([Msg.CannotRead.code]);
  });

  test('VN1005: a file over MAX_FILE_BYTES (sparse, so it takes no disk)', async () => {
    expect(MAX_FILE_BYTES).toBe(256 * 1024 * 1024); // LANGUAGE.md says 256 MiB
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-baselines-'));
    const big = path.join(dir, 'too-large.vnet');
    try {
      fs.writeFileSync(big, '');
      fs.truncateSync(big, MAX_FILE_BYTES + 1);
      const diags = await diagnose(big);
      expect(render(diags)).toBe(
        [
          `${big}: error[VN1005]: the file is 268435457 bytes; vnetc reads programs of at most 268435456 bytes`,
          '  hint: split the network into several files',
          '',
          '1 error in 1 file.',
          '',
        ].join('\n'),
      );
      expect(diags.map((d) => d.code)).toEqual([Msg.FileTooLarge.code]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the code table, the tests and LANGUAGE.md agree', () => {
  const msgSeverity = new Map<string, string>(Object.values(Msg).map((m) => [m.code, m.severity]));

  test('codes in Msg are unique', () => {
    const codes = Object.values(Msg).map((m) => m.code);
    expect(codes.filter((c, i) => codes.indexOf(c) !== i)).toEqual([]);
  });

  test('every code in Msg is produced by some baseline (or by the tests above)', () => {
    // Read from disk, so this holds for the committed baselines whatever ran before.
    const seen = new Map<string, Set<string>>([
      [Msg.CannotRead.code, new Set(['(VN1000 tests)'])],
      [Msg.FileTooLarge.code, new Set(['(VN1005 test)'])],
      // Plan diagnostics come from two files, not one: test/plan/cli-plan.test.ts asserts each.
      ...[Msg.BackboneDelete, Msg.StalePlan, Msg.UnknownProxy, Msg.PlanAsLiveState, Msg.PlanProxyDisagrees].map(
        (m) => [m.code, new Set(['(test/plan/cli-plan.test.ts)'])] as [string, Set<string>],
      ),
      // Reaching daemons needs daemons: test/integration/ssh-apply.test.ts asserts it against a real sshd.
      [Msg.Unreachable.code, new Set(['(test/integration/ssh-apply.test.ts)'])],
      [Msg.DamagedLaunch.code, new Set(['(test/cli-daemons.test.ts)'])],
      [Msg.ReplyBroke.code, new Set(['(test/cli-daemons.test.ts)'])],
    ]);
    const wrongSeverity: string[] = [];
    for (const b of listDir(BASELINES, SUFFIX)) {
      for (const [, severity, code] of fs.readFileSync(baselinePath(b), 'utf8').matchAll(HEAD)) {
        if (!seen.has(code!)) seen.set(code!, new Set());
        seen.get(code!)!.add(b);
        if (msgSeverity.get(code!) !== severity) wrongSeverity.push(`${b}: ${severity}[${code}]`);
      }
    }
    expect([...msgSeverity.keys()].filter((c) => !seen.has(c))).toEqual([]);
    expect([...seen.keys()].filter((c) => !msgSeverity.has(c))).toEqual([]);
    expect(wrongSeverity).toEqual([]);
  });

  // The language's codes are LANGUAGE.md's; the plan's are PLAN.md's.
  test.each([
    ['LANGUAGE.md', /^VN[123]/],
    ['PLAN.md', /^VN4/],
    ['APPLY.md', /^VN5/],
  ])("%s's tables list exactly its codes of Msg, with the same severities", (file, family) => {
    const doc = fs.readFileSync(abs(file), 'utf8');
    const rows = [...doc.matchAll(/^\|\s*(VN\d{4})\s*\|\s*([a-z]+)\s*\|/gm)].map(([, code, severity]) => [code!, severity!]);
    const documented = new Map(rows.map(([c, s]) => [c!, s!]));
    expect(rows.length).toBe(documented.size); // no code listed twice
    const mine = [...msgSeverity].filter(([c]) => family.test(c)).sort();
    expect(mine.length).toBeGreaterThan(0);
    expect(Object.fromEntries([...documented].sort())).toEqual(Object.fromEntries(mine));
    // And no code named anywhere in the prose that Msg lacks.
    const mentioned = new Set([...doc.matchAll(/\bVN\d{4}\b/g)].map(([c]) => c));
    expect([...mentioned].filter((c) => !msgSeverity.has(c))).toEqual([]);
  });
});
