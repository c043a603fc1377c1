import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { shCommand, shQuote } from '../../src/remote/ssh/quote.js';
import { shScript } from '../../src/remote/ssh/scripts.js';

/**
 * The quoting function on its own, against a real /bin/sh: whatever a word
 * holds, the shell sees exactly that word and runs nothing from it.
 */

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-quote-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const pwned = path.join(dir, 'pwned');

/** What sh makes of a quoted command line: the argv printf receives. */
function shWords(words: string[]): string[] {
  const r = spawnSync('/bin/sh', ['-c', shCommand(['printf', '%s\\0', ...words])], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  return r.stdout.split('\0').slice(0, -1);
}

test('a hostile interface name is one literal word and runs nothing', () => {
  const hostile = [`x';touch ${pwned};'`, `$(touch ${pwned})`, `\`touch ${pwned}\``, `;touch ${pwned}`, `"; touch ${pwned}; "`, `x'\\''; touch ${pwned}`];
  expect(shWords(hostile)).toEqual(hostile);
  // The same word through a script's positional parameter, as the start script gets the daemon's argv.
  const r = spawnSync('/bin/sh', ['-c', shScript('printf "%s" "$1"', [hostile[0]!])], { encoding: 'utf8' });
  expect(r.stdout).toBe(hostile[0]);
  expect(fs.existsSync(pwned)).toBe(false);
});

/** Shell metacharacters, weighted up, among any other characters (well-formed, so they survive UTF-8). */
const word = fc
  .string({ unit: fc.oneof(fc.constantFrom("'", '"', '\\', '$', '`', '\n', ' ', ';', '*', '(', '|', '&', '!', '~'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })) })
  .filter((s) => !s.includes('\0') && Buffer.from(s).toString() === s);

test('any word without NUL round-trips through sh', () => {
  fc.assert(
    fc.property(fc.array(word, { minLength: 1, maxLength: 5 }), (words) => {
      expect(shWords(words)).toEqual(words);
    }),
    { numRuns: 150 },
  );
  expect(fs.existsSync(pwned)).toBe(false);
});

test('a NUL cannot be quoted, so it is refused', () => {
  expect(() => shQuote('a\0b')).toThrow(/NUL/);
  expect(shQuote("it's")).toBe(`'it'\\''s'`);
});
