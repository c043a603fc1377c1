import type { IToken, TokenType } from 'chevrotain';
import type { DiagnosticSink, Span } from '../diag/diagnostic.js';
import { Msg } from '../diag/messages.js';
import { parseMac } from '../model/mac.js';
import { keywordTokens, Mac, NumberTok, statementKeywords, Word } from './tokens.js';

/**
 * A hand-written, incremental scanner that emits Chevrotain tokens.
 *
 * Why not Chevrotain's Lexer: on a million-line program it needs 2.3 s and
 * builds all six million tokens before parsing starts. This loop looks at
 * each character once, and the parser pulls tokens from it a batch at a time,
 * so tokens die young instead of filling the old generation.
 *
 * It also checks MAC addresses on the spot, so a malformed one is reported
 * once and the parser can still treat it as an address. Where the parser
 * reads a MAC-shaped word otherwise (a HOST line's machine, a FORWARD's
 * second hop, a word where only a name may stand), it takes the report back
 * (readAsName) and says better itself.
 */

const enum Ch {
  Invalid = 0,
  Space = 1,
  Word = 2,
  Hash = 3,
}

const CLASS = new Uint8Array(128);
for (let c = 0x21; c <= 0x7e; c++) CLASS[c] = Ch.Word;
CLASS[0x23] = Ch.Hash;
for (const c of [0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]) CLASS[c] = Ch.Space;

/** Keywords by length; compared case-insensitively without slicing. */
const KEYWORDS_BY_LENGTH: [string, TokenType][][] = [];
for (const t of keywordTokens) {
  (KEYWORDS_BY_LENGTH[t.name.length] ??= []).push([t.name.toLowerCase(), t]);
}

function keywordAt(text: string, start: number, len: number): TokenType | undefined {
  const candidates = KEYWORDS_BY_LENGTH[len];
  if (!candidates) return undefined;
  outer: for (const [lower, type] of candidates) {
    for (let i = 0; i < len; i++) {
      // Keywords are all letters, and OR-ing 0x20 lower-cases an ASCII letter.
      if ((text.charCodeAt(start + i) | 0x20) !== lower.charCodeAt(i)) continue outer;
    }
    return type;
  }
  return undefined;
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 102);
}

/** Mirrors the Mac token pattern applied to a whole word. */
function isMacShaped(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (text.charCodeAt(i) === 58) return true;
  if (end - start !== 17) return false;
  for (let i = 0; i < 17; i++) {
    const c = text.charCodeAt(start + i);
    if (i % 3 === 2 ? c !== 45 : !isHex(c)) return false;
  }
  return true;
}

function isDigits(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/**
 * One shape for every token, so the parser's property reads stay
 * monomorphic; the image is sliced only when someone reads it.
 */
class Token implements IToken {
  constructor(
    private readonly src: string,
    readonly startOffset: number,
    readonly endOffset: number,
    readonly tokenType: TokenType,
    readonly tokenTypeIdx: number,
  ) {}

  get image(): string {
    return this.src.slice(this.startOffset, this.endOffset + 1);
  }
}

const statementStart = new Set<TokenType>(statementKeywords);

/** `U+00E9 'é'`; the character itself only when showing it cannot disturb a terminal or its neighbours. */
function describeChar(code: number): string {
  const hex = code.toString(16).toUpperCase().padStart(4, '0');
  const ch = String.fromCodePoint(code);
  // A combining mark would fuse with the quote before it.
  return /[\p{C}\p{Z}\p{M}]/u.test(ch) ? `U+${hex}` : `U+${hex} '${ch}'`;
}

export class Scanner {
  /** Comment spans in source order, for the formatter. */
  readonly comments: Span[] = [];
  /** Set when the scanner gave up: past the error cap, stray characters mean this is not a program. */
  abandoned = false;
  private statementStarts = new Int32Array(1024);
  private statementCount = 0;
  private pos = 0;
  private readonly text: string;

  constructor(private readonly sink: DiagnosticSink) {
    this.text = sink.file.text;
  }

  /** Offsets of statement keywords seen so far, in order. */
  get statements(): Int32Array {
    return this.statementStarts.subarray(0, this.statementCount);
  }

  /** Appends up to `max` tokens to `out`; returns how many it added (0 at the end). */
  fill(out: IToken[], max: number): number {
    const text = this.text;
    const n = text.length;
    let i = this.pos;
    let added = 0;
    while (i < n && added < max && !this.abandoned) {
      const c = text.charCodeAt(i);
      const cls = c < 128 ? CLASS[c]! : Ch.Invalid;
      if (cls === Ch.Space) {
        i++;
      } else if (cls === Ch.Word) {
        const start = i;
        i++;
        while (i < n) {
          const d = text.charCodeAt(i);
          if (d >= 128 || CLASS[d] !== Ch.Word) break;
          i++;
        }
        out.push(this.word(start, i));
        added++;
      } else if (cls === Ch.Hash) {
        // A comment ends at a line break, a lone CR included (SourceFile's lines).
        const start = i;
        while (i < n) {
          const d = text.charCodeAt(i);
          if (d === 10 || d === 13) break;
          i++;
        }
        this.comments.push({ start, end: i });
      } else {
        // Unexpected characters: one diagnostic for a whole run of them.
        const start = i;
        const first = text.codePointAt(i)!;
        while (i < n) {
          const d = text.charCodeAt(i);
          if (d < 128 && CLASS[d] !== Ch.Invalid) break;
          i++;
        }
        this.sink.report(Msg.UnexpectedCharacter, { start, end: i }, [describeChar(first)]);
        if (this.sink.full) {
          this.abandoned = true;
          this.sink.stop(i);
        }
      }
    }
    this.pos = i;
    return added;
  }

  /**
   * The parser read a MAC-shaped word as something other than an address:
   * an IPv6 address as a HOST line's machine, a colon word as a FORWARD's
   * second hop (which the name checks refuse), or as a misplaced word (its
   * syntax error). Each says better what is wrong, so the malformed-MAC
   * report made on the spot would only repeat the mistake.
   */
  readAsName(t: IToken): void {
    const span = { start: t.startOffset, end: t.endOffset! + 1 };
    if (!parseMac(this.text.slice(span.start, span.end)).ok) this.sink.withdraw(Msg.MalformedMac, span);
  }

  private word(start: number, end: number): Token {
    const text = this.text;
    const kw = keywordAt(text, start, end - start);
    if (kw) {
      if (statementStart.has(kw)) this.noteStatement(start);
      return new Token(text, start, end - 1, kw, kw.tokenTypeIdx!);
    }
    if (isMacShaped(text, start, end)) {
      const image = text.slice(start, end);
      const mac = parseMac(image);
      if (!mac.ok) this.sink.report(Msg.MalformedMac, { start, end }, [image, mac.reason]);
      return new Token(text, start, end - 1, Mac, Mac.tokenTypeIdx!);
    }
    if (isDigits(text, start, end)) return new Token(text, start, end - 1, NumberTok, NumberTok.tokenTypeIdx!);
    return new Token(text, start, end - 1, Word, Word.tokenTypeIdx!);
  }

  private noteStatement(offset: number): void {
    if (this.statementCount === this.statementStarts.length) {
      const bigger = new Int32Array(this.statementStarts.length * 2);
      bigger.set(this.statementStarts);
      this.statementStarts = bigger;
    }
    this.statementStarts[this.statementCount++] = offset;
  }
}

/** Every token at once: for tests and tools that want the whole list. */
export function scanAll(sink: DiagnosticSink): { tokens: IToken[]; scanner: Scanner } {
  const scanner = new Scanner(sink);
  const tokens: IToken[] = [];
  while (scanner.fill(tokens, 4096) > 0);
  return { tokens, scanner };
}
