import fs from 'node:fs';
import fc from 'fast-check';
import { Lexer } from '../src/lang/chevrotain.js';
import { parseMac } from '../src/model/mac.js';
import { allTokens, keywordTokens, Mac, NumberTok, WhiteSpace, Word } from '../src/lang/tokens.js';

/**
 * Holds grammar/vnet.ebnf and grammar/vnet.tmLanguage.json to the token
 * vocabulary (src/lang/tokens.ts) and the parser's rules, so that neither can
 * drift from the compiler. The TextMate grammar is exercised with a small
 * tokenizer that follows TextMate's rules for `match` patterns: from the
 * current position, the pattern whose match starts first wins, ties going to
 * the earlier pattern; captures scope their groups inside the match.
 */

const read = (file: string): string => fs.readFileSync(new URL(`../grammar/${file}`, import.meta.url), 'utf8');

const KEYWORDS = keywordTokens.map((t) => t.name).sort();

/** The scope each keyword must get from the TextMate grammar. */
const KEYWORD_SCOPE: Record<string, string> = {
  BEGIN: 'keyword.control.vnet',
  END: 'keyword.control.vnet',
  ADD: 'keyword.control.vnet',
  DELETE: 'keyword.control.vnet',
  HOST: 'keyword.other.vnet',
  AT: 'keyword.other.vnet',
  LINK: 'keyword.other.vnet',
  FORWARD: 'keyword.other.vnet',
  NOT: 'keyword.operator.vnet',
  ANY: 'constant.language.vnet',
  NONE: 'constant.language.vnet',
  TCP: 'storage.modifier.vnet',
  UDP: 'storage.modifier.vnet',
  EDGE: 'storage.modifier.vnet',
  INTERFACE: 'storage.modifier.vnet',
};

const MAC_SCOPE = 'constant.numeric.mac.vnet';
const BAD_MAC_SCOPE = 'invalid.illegal.mac.vnet';
const NAME_SCOPE = 'variable.other.vnet';
const isKeywordScope = (scope: string | undefined): boolean =>
  scope !== undefined && /^(keyword|storage|constant\.language)\./.test(scope);

/** Upper-case runs of two or more letters: how both files spell keywords. */
const upperWords = (text: string): Set<string> => new Set(text.match(/(?<![A-Za-z])[A-Z]{2,}(?![A-Za-z])/g) ?? []);

// ── the TextMate grammar ─────────────────────────────────────────────────

interface TmRule {
  match?: string;
  begin?: string;
  name?: string;
  include?: string;
  patterns?: TmRule[];
  captures?: Record<string, { name?: string }>;
}

interface TmGrammar {
  name: string;
  scopeName: string;
  fileTypes: string[];
  patterns: TmRule[];
  repository: Record<string, TmRule>;
}

const grammar = JSON.parse(read('vnet.tmLanguage.json')) as TmGrammar;

/** JS RegExp has no inline `(?i)`: a leading one becomes the `i` flag. */
function compile(source: string, flags = ''): RegExp {
  return source.startsWith('(?i)') ? new RegExp(source.slice(4), flags + 'i') : new RegExp(source, flags);
}

interface Compiled {
  re: RegExp;
  rule: TmRule;
}

/** The top-level patterns in order, includes resolved. */
function flatten(rules: TmRule[], seen: string[] = []): Compiled[] {
  const out: Compiled[] = [];
  for (const rule of rules) {
    if (rule.include !== undefined) {
      const key = rule.include.replace(/^#/, '');
      const target = grammar.repository[key];
      if (!target) throw new Error(`include of unknown repository entry ${rule.include}`);
      if (seen.includes(key)) throw new Error(`recursive include of ${rule.include}`);
      out.push(...flatten([target], [...seen, key]));
    } else if (rule.patterns) {
      out.push(...flatten(rule.patterns, seen));
    } else if (rule.match !== undefined) {
      // `m`: in Oniguruma, TextMate's engine, `$` is always the end of a line.
      out.push({ re: compile(rule.match, 'dgm'), rule });
    } else {
      throw new Error(`a rule this test cannot follow: ${JSON.stringify(rule)}`);
    }
  }
  return out;
}

/** Every rule in the file, reached or not. */
function allRules(): TmRule[] {
  const out: TmRule[] = [];
  const walk = (r: TmRule): void => {
    out.push(r);
    r.patterns?.forEach(walk);
  };
  grammar.patterns.forEach(walk);
  Object.values(grammar.repository).forEach(walk);
  return out;
}

interface Tok {
  text: string;
  /** The innermost scope, or undefined for text no pattern scoped. */
  scope: string | undefined;
}

/** Tokenizes one line as vscode-textmate does (it appends the newline). */
function tokenize(line: string): Tok[] {
  const text = line + '\n';
  const scopes: string[][] = Array.from({ length: text.length }, () => []);
  const rules = flatten(grammar.patterns);
  let pos = 0;
  while (pos < text.length) {
    let best: { m: RegExpExecArray; rule: TmRule } | undefined;
    for (const { re, rule } of rules) {
      re.lastIndex = pos;
      const m = re.exec(text);
      if (m && (!best || m.index < best.m.index)) best = { m, rule };
    }
    if (!best) break;
    const { m, rule } = best;
    const end = m.index + m[0].length;
    for (let i = m.index; i < end; i++) if (rule.name) scopes[i]!.push(rule.name);
    for (const [group, capture] of Object.entries(rule.captures ?? {})) {
      const span = m.indices![Number(group)];
      if (span && capture.name) for (let i = span[0]; i < span[1]; i++) scopes[i]!.push(capture.name);
    }
    pos = end > pos ? end : pos + 1;
  }
  const toks: Tok[] = [];
  let start = 0;
  for (let i = 1; i <= line.length; i++) {
    if (i === line.length || scopes[i]!.join(' ') !== scopes[start]!.join(' ')) {
      const s = scopes[start]!;
      toks.push({ text: line.slice(start, i), scope: s[s.length - 1] });
      start = i;
    }
  }
  // Unscoped whitespace between words is not a token worth comparing.
  return toks.filter((t) => t.scope !== undefined || t.text.trim() !== '');
}

const pairs = (line: string): [string, string | undefined][] => tokenize(line).map((t) => [t.text, t.scope]);

describe('vnet.tmLanguage.json', () => {
  test('identifies the language', () => {
    expect(grammar.scopeName).toBe('source.vnet');
    expect(grammar.fileTypes).toEqual(['vnet']);
    expect(grammar.name).toBe('VNET');
  });

  test('every regex compiles as a JS RegExp, with (?i) only as a leading flag', () => {
    const rules = allRules().filter((r) => r.match !== undefined || r.begin !== undefined);
    expect(rules.length).toBeGreaterThan(5);
    for (const r of rules) {
      for (const source of [r.match, r.begin]) {
        if (source === undefined) continue;
        expect(source.slice(source.startsWith('(?i)') ? 4 : 0)).not.toContain('(?i');
        expect(() => compile(source)).not.toThrow();
      }
    }
    // Every repository entry is reachable from the top level.
    const reached = new Set(flatten(grammar.patterns).map((c) => c.rule));
    for (const [key, entry] of Object.entries(grammar.repository)) {
      const leaves = entry.patterns ?? [entry];
      expect([key, leaves.every((l) => reached.has(l))]).toEqual([key, true]);
    }
  });

  test('the keywords it knows are exactly those of tokens.ts', () => {
    expect(Object.keys(KEYWORD_SCOPE).sort()).toEqual(KEYWORDS);
    const sources = allRules().flatMap((r) => [r.match ?? '', r.begin ?? '']);
    expect([...upperWords(sources.join(' '))].sort()).toEqual(KEYWORDS);
    // The generic keyword patterns name each keyword once, under its scope.
    const keywordRules = grammar.repository['keywords']!.patterns!;
    const named = keywordRules.flatMap((r) => [...upperWords(r.match!)].map((w) => [w, r.name]));
    expect(named.map(([w]) => w).sort()).toEqual(KEYWORDS);
    expect(Object.fromEntries(named)).toEqual(KEYWORD_SCOPE);
  });

  test('keywords match in any case, as whole words, wherever they stand', () => {
    for (const kw of KEYWORDS) {
      const scope = KEYWORD_SCOPE[kw];
      const mixed = kw.charAt(0) + kw.slice(1).toLowerCase();
      for (const spelling of [kw, kw.toLowerCase(), mixed]) {
        expect([spelling, pairs(spelling)]).toEqual([spelling, [[spelling, scope]]]);
        expect([spelling, pairs(`\tfoo ${spelling}  bar`)[1]]).toEqual([spelling, [spelling, scope]]);
        expect([spelling, pairs(`${spelling}#c`)]).toEqual([
          spelling,
          [
            [spelling, scope],
            ['#', 'punctuation.definition.comment.vnet'],
            ['c', 'comment.line.number-sign.vnet'],
          ],
        ]);
      }
    }
  });

  test('a keyword inside a longer word is not highlighted', () => {
    const words = ['hostadd', 'add-1', 'add.x', 'HOSTS', 'xend', 'any_mac', 'link/2', '"NONE"', 'at@home', 'begin!'];
    for (const kw of KEYWORDS) words.push(`${kw}x`, `x${kw.toLowerCase()}`, `${kw}-1`, `${kw}.${kw}`, `${kw}_`);
    for (const word of words) {
      expect([word, pairs(word)]).toEqual([word, [[word, NAME_SCOPE]]]);
      expect([word, pairs(`LINK ${word} b`)[1]]).toEqual([word, [word, 'variable.other.machine.vnet']]);
    }
    // All of them on one line: not one keyword-like scope.
    expect(tokenize(words.join(' ')).filter((t) => isKeywordScope(t.scope))).toEqual([]);
    // With a colon a word is read as an address, keyword or not.
    expect(pairs('ADD:')).toEqual([['ADD:', BAD_MAC_SCOPE]]);
  });

  test('HOST lines', () => {
    expect(pairs('  HOST vnet AT proxy 5000 eth0')).toEqual([
      ['HOST', 'keyword.other.vnet'],
      ['vnet', 'variable.other.user.vnet'],
      ['AT', 'keyword.other.vnet'],
      ['proxy', 'entity.name.machine.vnet'],
      ['5000', 'constant.numeric.integer.vnet'],
      ['eth0', 'variable.other.interface.vnet'],
    ]);
    expect(pairs('host 1000 at 10.0.0.1 22 vmnet1 # lab')).toEqual([
      ['host', 'keyword.other.vnet'],
      ['1000', 'variable.other.user.vnet'],
      ['at', 'keyword.other.vnet'],
      ['10.0.0.1', 'entity.name.machine.vnet'],
      ['22', 'constant.numeric.integer.vnet'],
      ['vmnet1', 'variable.other.interface.vnet'],
      ['#', 'punctuation.definition.comment.vnet'],
      [' lab', 'comment.line.number-sign.vnet'],
    ]);
    // Split across lines, each piece still gets what it can.
    expect(pairs('HOST vnet')).toEqual([
      ['HOST', 'keyword.other.vnet'],
      ['vnet', 'variable.other.user.vnet'],
    ]);
    expect(pairs('  AT proxy')).toEqual([
      ['AT', 'keyword.other.vnet'],
      ['proxy', 'entity.name.machine.vnet'],
    ]);
    // A keyword is never taken for a name, nor a non-number for a port.
    expect(pairs('HOST AT host1 eth0 5000')).toEqual([
      ['HOST', 'keyword.other.vnet'],
      ['AT', 'keyword.other.vnet'],
      ['host1', 'entity.name.machine.vnet'],
      ['eth0', NAME_SCOPE],
      ['5000', NAME_SCOPE],
    ]);
  });

  test('LINK lines', () => {
    expect(pairs('    LINK host1 proxy')).toEqual([
      ['LINK', 'keyword.other.vnet'],
      ['host1', 'variable.other.machine.vnet'],
      ['proxy', 'variable.other.machine.vnet'],
    ]);
    expect(pairs('link udp host-1 proxy host-1')).toEqual([
      ['link', 'keyword.other.vnet'],
      ['udp', 'storage.modifier.vnet'],
      ['host-1', 'variable.other.machine.vnet'],
      ['proxy', 'variable.other.machine.vnet'],
      ['host-1', 'variable.other.machine.dialer.vnet'],
    ]);
    // Two statements on one line: the second LINK is not the first one's dialer.
    expect(pairs('LINK TCP a b LINK c d').map(([, s]) => s)).toEqual([
      'keyword.other.vnet',
      'storage.modifier.vnet',
      'variable.other.machine.vnet',
      'variable.other.machine.vnet',
      'keyword.other.vnet',
      'variable.other.machine.vnet',
      'variable.other.machine.vnet',
    ]);
  });

  test('FORWARD lines', () => {
    expect(pairs('FORWARD host1 NOT 00:50:56:00:21:01 ff:ff:ff:ff:ff:ff vmnet1 # c')).toEqual([
      ['FORWARD', 'keyword.other.vnet'],
      ['host1', 'variable.other.machine.vnet'],
      ['NOT', 'keyword.operator.vnet'],
      ['00:50:56:00:21:01', MAC_SCOPE],
      ['ff:ff:ff:ff:ff:ff', MAC_SCOPE],
      ['vmnet1', NAME_SCOPE],
      ['#', 'punctuation.definition.comment.vnet'],
      [' c', 'comment.line.number-sign.vnet'],
    ]);
    expect(pairs('forward Edge host1 any 0:50:56:0:21:1 NONE host1 proxy')).toEqual([
      ['forward', 'keyword.other.vnet'],
      ['Edge', 'storage.modifier.vnet'],
      ['host1', 'variable.other.machine.vnet'],
      ['any', 'constant.language.vnet'],
      ['0:50:56:0:21:1', MAC_SCOPE],
      ['NONE', 'constant.language.vnet'],
      ['host1', NAME_SCOPE],
      ['proxy', NAME_SCOPE],
    ]);
    expect(pairs('FORWARD INTERFACE h ANY 00-50-56-00-21-0A vmnet1')).toEqual([
      ['FORWARD', 'keyword.other.vnet'],
      ['INTERFACE', 'storage.modifier.vnet'],
      ['h', 'variable.other.machine.vnet'],
      ['ANY', 'constant.language.vnet'],
      ['00-50-56-00-21-0A', MAC_SCOPE],
      ['vmnet1', NAME_SCOPE],
    ]);
  });

  test('program structure lines', () => {
    expect(pairs('BEGIN # Fig. 1')).toEqual([
      ['BEGIN', 'keyword.control.vnet'],
      ['#', 'punctuation.definition.comment.vnet'],
      [' Fig. 1', 'comment.line.number-sign.vnet'],
    ]);
    expect(pairs('  ADD')).toEqual([['ADD', 'keyword.control.vnet']]);
    expect(pairs('  delete')).toEqual([['delete', 'keyword.control.vnet']]);
    expect(pairs('end')).toEqual([['end', 'keyword.control.vnet']]);
    // A comment may hold anything, and hides keywords and addresses.
    expect(pairs('# HOST 00:50:56:00:21:01 ünïcode')).toEqual([
      ['#', 'punctuation.definition.comment.vnet'],
      [' HOST 00:50:56:00:21:01 ünïcode', 'comment.line.number-sign.vnet'],
    ]);
    // Outside a comment, a non-ASCII character ends a word and is an error.
    expect(pairs('hosté')).toEqual([
      ['host', 'keyword.other.vnet'],
      ['é', 'invalid.illegal.character.vnet'],
    ]);
  });

  test('MAC addresses: the accepted forms, whole words only', () => {
    const good = ['00:50:56:00:21:01', 'FF:FF:FF:FF:FF:FF', '0:50:56:0:21:1', 'a:B:c:D:e:F', '00-50-56-00-21-01', 'aA-bB-cC-dD-eE-fF'];
    for (const mac of good) expect([mac, pairs(mac)]).toEqual([mac, [[mac, MAC_SCOPE]]]);
    const malformed = ['00:50:56:00:21', '00:50:56:00:21:01:02', '000:50:56:00:21:01', 'gg:50:56:00:21:01', '00:50:56::21:01', 'x00:50:56:00:21:01', '00:50:56:00:21:01x', ':'];
    for (const w of malformed) expect([w, pairs(w)]).toEqual([w, [[w, BAD_MAC_SCOPE]]]);
    // Without a colon, only the exact dash form is an address; other words are names.
    const names = ['0-50-56-00-21-01', '00-50-56-00-21', '00-50-56-00-21-01-02', '005056002101', 'ff-ff-ff-ff-ff-fg'];
    for (const w of names) expect([w, pairs(w)]).toEqual([w, [[w, NAME_SCOPE]]]);
  });

  test('classifies every word as the reference lexer and parseMac do', () => {
    const lexer = new Lexer(allTokens, { positionTracking: 'onlyOffset' });
    const expected = (word: string): string => {
      const { tokens, errors } = lexer.tokenize(word);
      if (errors.length > 0 || tokens.length !== 1) throw new Error(`'${word}' is not one word`);
      const type = tokens[0]!.tokenType;
      if (type === Mac) return parseMac(word).ok ? MAC_SCOPE : BAD_MAC_SCOPE;
      if (type === Word || type === NumberTok) return NAME_SCOPE;
      const scope = KEYWORD_SCOPE[type.name];
      if (!scope) throw new Error(`unexpected token type ${type.name}`);
      return scope;
    };
    const piece = fc.oneof(
      fc.constantFrom(...KEYWORDS).chain((k) => fc.mixedCase(fc.constant(k))),
      fc.constantFrom('0', '5', 'a', 'F', 'g', '00', 'fF', '012', ':', '-', '.', '_', '!', '"', '~'),
    );
    const word = fc.array(piece, { minLength: 1, maxLength: 11 }).map((p) => p.join(''));
    // Words of the shapes that matter most, to be sure they are well covered.
    const octet = fc.stringMatching(/^[0-9A-Fa-f]{1,3}$/);
    const macLike = fc
      .tuple(fc.array(octet, { minLength: 5, maxLength: 7 }), fc.constantFrom(':', '-'))
      .map(([octets, sep]) => octets.join(sep));
    fc.assert(
      fc.property(fc.oneof(word, macLike), (w) => {
        expect([w, pairs(w)]).toEqual([w, [[w, expected(w)]]]);
      }),
      { numRuns: 3000 },
    );
  });
});

// ── the EBNF ─────────────────────────────────────────────────────────────

describe('vnet.ebnf', () => {
  const ebnf = read('vnet.ebnf');
  const code = ebnf.replace(/\/\*[\s\S]*?\*\//g, ' ');
  /** symbol → right-hand side, whitespace collapsed. */
  const productions = new Map<string, string>();
  for (const m of code.matchAll(/^([A-Za-z][A-Za-z0-9]*)\s*::=([\s\S]*?)(?=^[A-Za-z][A-Za-z0-9]*\s*::=|(?![\s\S]))/gm)) {
    if (productions.has(m[1]!)) throw new Error(`two productions for ${m[1]}`);
    productions.set(m[1]!, m[2]!.trim().replace(/\s+/g, ' '));
  }
  const rhs = (symbol: string): string => {
    const r = productions.get(symbol);
    if (r === undefined) throw new Error(`no production for ${symbol}`);
    return r;
  };

  test('says which notation it uses', () => {
    expect(ebnf.slice(0, 600)).toMatch(/W3C EBNF/);
    expect(code).not.toMatch(/\/\*|\*\//);
  });

  test('every symbol used is defined', () => {
    for (const [symbol, body] of productions) {
      const used = body.replace(/"[^"]*"|\[[^\]]*\]/g, ' ').match(/[A-Za-z][A-Za-z0-9]*/g) ?? [];
      for (const u of used) expect([symbol, u, productions.has(u)]).toEqual([symbol, u, true]);
    }
  });

  test('the keywords it knows are exactly those of tokens.ts, each reserved and case-insensitive', () => {
    expect([...upperWords(code)].sort()).toEqual(KEYWORDS);
    expect(rhs('keyword').split('|').map((s) => s.trim()).sort()).toEqual(KEYWORDS);
    for (const kw of KEYWORDS) {
      const letters = [...kw].map((c) => `[${c}${c.toLowerCase()}]`).join(' ');
      expect([kw, rhs(kw)]).toEqual([kw, letters]);
      // Used by the grammar proper, not only defined.
      const users = [...productions].filter(([s, b]) => s !== kw && s !== 'keyword' && new RegExp(`\\b${kw}\\b`).test(b));
      expect([kw, users.length > 0]).toEqual([kw, true]);
    }
    expect(rhs('name')).toBe('word - ( keyword | macShaped )');
  });

  test('has a production for every parser rule', () => {
    const parser = fs.readFileSync(new URL('../src/lang/parser.ts', import.meta.url), 'utf8');
    const rules = [...parser.matchAll(/this\.RULE\('([A-Za-z]+)'/g)].map((m) => m[1]!);
    expect(rules).toContain('program');
    expect(rules.length).toBeGreaterThanOrEqual(9);
    for (const r of rules) expect([r, productions.has(r)]).toEqual([r, true]);
  });

  test('states the structure of the language', () => {
    expect(rhs('program')).toBe('BEGIN hostDecl* block* END');
    expect(rhs('block')).toBe('( ADD | DELETE ) ( linkStmt | forwardStmt )*');
    expect(rhs('parsedProgram')).toBe('BEGIN statement* END');
    expect(rhs('statement')).toBe('hostDecl | blockHead | linkStmt | forwardStmt');
    expect(rhs('hostDecl')).toBe('HOST user AT machine port interfaceName');
    expect(rhs('linkStmt')).toBe('LINK transport? machine machine dialer?');
    expect(rhs('forwardStmt')).toBe('FORWARD ruleType? machine srcAddress dstAddress destination');
    expect(rhs('srcAddress')).toBe('address');
    expect(rhs('dstAddress')).toBe('address | NONE');
    expect(rhs('address')).toBe('mac | NOT mac | ANY mac?');
    expect(rhs('destination')).toBe('machine machine | interfaceName');
  });

  /** A W3C EBNF character class as a JS one. */
  const charClass = (symbol: string): RegExp => {
    const m = /^(\[[^\]]+\])([+*]?)$/.exec(rhs(symbol));
    if (!m) throw new Error(`${symbol} is not a character class`);
    return new RegExp(`^${m[1]!.replace(/#x([0-9A-Fa-f]+)/g, (_, h: string) => `\\u{${h}}`)}$`, 'u');
  };
  /** One character of a token pattern: its source minus the trailing `+`. */
  const tokenClass = (pattern: unknown): RegExp => new RegExp(`^${String((pattern as RegExp).source).replace(/\+$/, '')}$`);

  test('words and whitespace are the characters tokens.ts says', () => {
    const pairsOf = (a: RegExp, b: RegExp): number[] => {
      const differ: number[] = [];
      for (let c = 0; c < 0x300; c++) if (a.test(String.fromCodePoint(c)) !== b.test(String.fromCodePoint(c))) differ.push(c);
      return differ;
    };
    expect(pairsOf(charClass('wordChar'), tokenClass(Word.PATTERN))).toEqual([]);
    expect(pairsOf(charClass('whitespace'), tokenClass(WhiteSpace.PATTERN))).toEqual([]);
    expect(rhs('word')).toBe('wordChar+');
    expect(rhs('comment')).toBe('"#" [^#x0A#x0D]*');
    expect(rhs('number')).toBe('[0-9]+');
  });
});
