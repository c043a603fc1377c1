import fc from 'fast-check';
import type { IToken } from 'chevrotain';
import { Lexer } from '../../src/lang/chevrotain.js';
import { scanAll } from '../../src/lang/scanner.js';
import { allTokens } from '../../src/lang/tokens.js';
import { sinkFor } from '../support/compile.js';

/**
 * The hand-written scanner must classify text exactly as a Chevrotain Lexer
 * built from the token definitions would: the definitions are the reference
 * (they also drive the railroad diagrams and the TextMate test), the scanner
 * is the fast path.
 */
const reference = new Lexer(allTokens, { ensureOptimizations: false, positionTracking: 'full' });

interface Tok {
  type: string;
  start: number;
  end: number;
  image: string;
}

const norm = (t: IToken): Tok => ({ type: t.tokenType.name, start: t.startOffset, end: t.endOffset!, image: t.image });

function both(text: string) {
  const sink = sinkFor(text);
  const { tokens, scanner } = scanAll(sink);
  const ref = reference.tokenize(text);
  return {
    ours: tokens.map(norm),
    theirs: ref.tokens.map(norm),
    ourComments: scanner.comments.map((c) => text.slice(c.start, c.end)),
    theirComments: (ref.groups['comments'] ?? []).map((t) => t.image),
    ourErrors: sink.list.filter((d) => d.code === 'VN1001').map((d) => d.span!.start),
    theirErrors: ref.errors.map((e) => e.offset),
  };
}

const keywordish = fc
  .constantFrom('begin', 'END', 'Host', 'at', 'ADD', 'delete', 'link', 'FORWARD', 'not', 'Any', 'none', 'tcp', 'UDP', 'edge', 'interface')
  .chain((k) => fc.constantFrom(k, k + 'x', 'x' + k, k + '-1', k.toUpperCase(), k + ':'));
const macish = fc.oneof(
  fc.constantFrom('00:50:56:00:21:01', 'FF:FF:FF:FF:FF:FF', '0:50:56:0:21:1', '00-50-56-00-21-01', '00-50-56-00-21-01x', 'a:b', ':', '::', '00:50:56:00:21'),
  fc.stringMatching(/^[0-9a-fA-F:.-]{1,20}$/),
);
const namey = fc.stringMatching(/^[!-"$-~]{1,12}$/);
const number = fc.stringMatching(/^[0-9]{1,6}$/);
const space = fc.constantFrom(' ', '  ', '\t', '\n', '\r\n', '\r', '\v', '\f', '\n\n');
const comment = fc.stringMatching(/^[^\r\n]{0,20}$/).map((s) => `#${s}`);
const stray = fc.constantFrom('\u0000', '\u0001', 'é', '\u00a0', '\u2028', '☃', '\u007f');
const piece = fc.oneof(
  { arbitrary: keywordish, weight: 4 },
  { arbitrary: macish, weight: 3 },
  { arbitrary: namey, weight: 3 },
  { arbitrary: number, weight: 2 },
  { arbitrary: comment, weight: 1 },
  { arbitrary: stray, weight: 1 },
);
const text = fc.array(fc.tuple(piece, space), { maxLength: 40 }).map((parts) => parts.map(([p, s]) => p + s).join(''));

describe('scanner', () => {
  it('agrees with the Chevrotain reference lexer on generated text', () => {
    fc.assert(
      fc.property(text, (t) => {
        const r = both(t);
        expect(r.ours).toEqual(r.theirs);
        expect(r.ourComments).toEqual(r.theirComments);
        expect(r.ourErrors).toEqual(r.theirErrors);
      }),
      { numRuns: 2000 },
    );
  });

  it('agrees on the samples', async () => {
    const fs = await import('node:fs');
    const dir = new URL('../../samples/', import.meta.url);
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.vnet'))) {
      const r = both(fs.readFileSync(new URL(f, dir), 'utf8'));
      expect(r.ours).toEqual(r.theirs);
      expect(r.ours.length).toBeGreaterThan(10);
    }
  });

  it('reads keywords in any case, and only as whole words', () => {
    const types = both('forward FORWARD Forward forwarder for-ward').ours.map((t) => t.type);
    expect(types).toEqual(['FORWARD', 'FORWARD', 'FORWARD', 'Word', 'Word']);
  });

  it('reads any word with a colon, and the dash form, as an address', () => {
    const types = both('00:50:56:00:21:01 0:1 eth0:1 00-50-56-00-21-01 00-50-56 host-1 5000').ours.map((t) => t.type);
    expect(types).toEqual(['Mac', 'Mac', 'Mac', 'Mac', 'Word', 'Word', 'Number']);
  });

  it('reports a malformed address once, with the reason, and keeps it as an address', () => {
    const sink = sinkFor('00:50:56:00:21 00:50:56:00:21:0g 000:50:56:00:21:01 00:50:56:00:21:01');
    const { tokens } = scanAll(sink);
    expect(tokens.map((t) => t.tokenType.name)).toEqual(['Mac', 'Mac', 'Mac', 'Mac']);
    expect(sink.list.map((d) => [d.code, d.message])).toEqual([
      ['VN1007', "malformed MAC address '00:50:56:00:21': it has 5 octets, not 6"],
      ['VN1007', "malformed MAC address '00:50:56:00:21:0g': 'g' is not a hexadecimal digit"],
      ['VN1007', "malformed MAC address '000:50:56:00:21:01': octet '000' is not two hexadecimal digits"],
    ]);
  });

  it('keeps comment spans, and a comment may hold any text', () => {
    const t = 'BEGIN # é ☃ \u0001\nEND#x';
    const r = both(t);
    expect(r.ourComments).toEqual(['# é ☃ \u0001', '#x']);
    expect(r.ours.map((x) => x.type)).toEqual(['BEGIN', 'END']);
  });

  it('reports a run of stray characters once, naming the first', () => {
    const sink = sinkFor('BEGIN \u0000\u0000\u0001 é END');
    scanAll(sink);
    expect(sink.list.map((d) => [d.code, d.message, d.span])).toEqual([
      ['VN1001', 'unexpected character U+0000', { start: 6, end: 9 }],
      ['VN1001', "unexpected character U+00E9 'é'", { start: 10, end: 11 }],
    ]);
    const mark = sinkFor('BEGIN e\u0301 END');
    scanAll(mark);
    expect(mark.list.map((d) => d.message)).toEqual(['unexpected character U+0301']);
  });

  it('gives up on a file that is mostly stray characters', () => {
    const sink = sinkFor('BEGIN ' + 'x\u0001'.repeat(100_000));
    const { scanner } = scanAll(sink);
    expect(scanner.abandoned).toBe(true);
    expect(sink.errorCount).toBe(100);
  });

  it('records where statements start', () => {
    const { scanner } = scanAll(sinkFor('BEGIN HOST u AT m 1 e ADD LINK a b FORWARD x ANY NONE e END'));
    expect([...scanner.statements]).toEqual([0, 6, 22, 26, 35, 56]);
  });
});
