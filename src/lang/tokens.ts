import type { TokenType } from 'chevrotain';
import { createToken, Lexer } from './chevrotain.js';

/**
 * The token vocabulary. The parser, the railroad diagrams and the reference
 * lexer are built from these definitions; the fast scanner (scanner.ts) must
 * classify text exactly as a Chevrotain Lexer over `allTokens` would, and a
 * differential test holds it to that.
 *
 * A "word" is a run of printable ASCII other than `#`. Words are then sorted
 * into keywords (case-insensitive), MAC-shaped words, numbers and other words.
 */

export const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /[ \t\r\n\f\v]+/, group: Lexer.SKIPPED });
export const Comment = createToken({ name: 'Comment', pattern: /#[^\r\n]*/, group: 'comments' });

/** Names are words; a machine may well be called `1` or a user `1000`. */
export const Name = createToken({ name: 'Name', pattern: Lexer.NA, label: 'a name' });

export const Word = createToken({ name: 'Word', pattern: /[!"$-~]+/, categories: [Name], label: 'a name' });

/**
 * Any word with a colon (names never have one), or the dash form
 * `00-50-56-00-21-01`: such a word was meant as an address, so a malformed
 * one is reported as a bad MAC rather than as a misplaced name.
 */
export const Mac = createToken({
  name: 'Mac',
  pattern: /[!"$-~]*:[!"$-~]*|[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){5}/,
  longer_alt: Word,
  label: 'a MAC address',
});

export const NumberTok = createToken({
  name: 'Number',
  pattern: /[0-9]+/,
  longer_alt: Word,
  categories: [Name],
  label: 'a number',
});

/** Every keyword, so a name slot can recognise one that was meant as a name. */
export const Keyword = createToken({ name: 'Keyword', pattern: Lexer.NA, label: 'a keyword' });

function keyword(word: string): TokenType {
  return createToken({ name: word, pattern: new RegExp(word, 'i'), longer_alt: Word, categories: [Keyword], label: word });
}

export const Begin = keyword('BEGIN');
export const End = keyword('END');
export const Host = keyword('HOST');
export const At = keyword('AT');
export const Add = keyword('ADD');
export const Delete = keyword('DELETE');
export const Link = keyword('LINK');
export const Forward = keyword('FORWARD');
export const Not = keyword('NOT');
export const Any = keyword('ANY');
export const None = keyword('NONE');
export const Tcp = keyword('TCP');
export const Udp = keyword('UDP');
export const Edge = keyword('EDGE');
export const Interface = keyword('INTERFACE');

export const keywordTokens: readonly TokenType[] = [
  Begin, End, Host, At, Add, Delete, Link, Forward, Not, Any, None, Tcp, Udp, Edge, Interface,
];

/** Upper-case spelling → token type. */
export const keywordByName: ReadonlyMap<string, TokenType> = new Map(keywordTokens.map((t) => [t.name, t]));

/** Whether a word is read as a keyword (in any case), so it cannot stand for a name. */
export const isKeyword = (word: string): boolean => keywordByName.has(word.toUpperCase());

/** Statement-leading keywords: where a statement (and error recovery) starts. */
export const statementKeywords: readonly TokenType[] = [Begin, End, Host, Add, Delete, Link, Forward];

/** Order matters for the reference Lexer: first match wins, then longer_alt. */
export const allTokens: TokenType[] = [WhiteSpace, Comment, Mac, ...keywordTokens, NumberTok, Word, Name, Keyword];
