import type { IParserErrorMessageProvider, IRecognitionException, IToken, TokenType } from 'chevrotain';
import { EmbeddedActionsParser, EOF, tokenMatcher } from './chevrotain.js';
import type { DiagnosticSink, Span } from '../diag/diagnostic.js';
import { Msg, type MessageDef } from '../diag/messages.js';
import { parseMac } from '../model/mac.js';
import type { Address } from '../model/state.js';
import type {
  AddressNode,
  BlockHead,
  EdgeDest,
  ForwardStmt,
  HostDecl,
  Ident,
  InterfaceDest,
  LinkStmt,
  Statement,
} from './ast.js';
import type { Scanner } from './scanner.js';
import {
  Add,
  allTokens,
  Any,
  At,
  Begin,
  Delete,
  Edge,
  End,
  Forward,
  Host,
  Interface,
  keywordTokens,
  Link,
  Mac,
  Name,
  None,
  Not,
  NumberTok,
  statementKeywords,
  Tcp,
  Udp,
} from './tokens.js';

/**
 * The grammar, as Chevrotain rules with embedded actions that build the AST
 * directly (no CST: the formatter works from the AST plus comment spans, and
 * skipping the CST is the faster of Chevrotain's two styles).
 *
 * The papers' structure (Fig. 4, and Fig. 5 of the thesis) is
 *
 *   program = BEGIN host* ((ADD | DELETE) link* rule*)* END
 *
 * The parser reads it as a flat list of statements, `BEGIN statement* END`,
 * where ADD and DELETE open a block that lasts until the next ADD, DELETE or
 * END. That way every statement keyword is a point where Chevrotain can
 * re-synchronise after an error, and a HOST in the wrong place gets a message
 * that says so rather than a lost block. Within a block, links and rules may
 * be interleaved: order inside a block does not change its meaning.
 *
 * Statements are handed to a visitor as they are parsed, not gathered into a
 * tree: checking a million-line program then keeps only the resulting State,
 * and only the formatter, which needs the whole tree, builds one.
 */

// What a slot expects, in words. Chevrotain hands these back in its
// exceptions, and toDiagnostic() adds what was found.
const USER = 'a user name';
const MACHINE = 'a machine name';
const PORT = 'a port number';
const IFACE = 'an interface name';
const MAC = 'a MAC address';
const DEST = 'a destination (an interface, or the two machines of a link)';
const ADDRESS = 'an address (a MAC, NOT <mac>, ANY or NONE)';
const STATEMENT = 'a statement (HOST, ADD, DELETE, LINK or FORWARD) or END';

// CONSUME options, allocated once rather than on every token.
const USER_SLOT = { ERR_MSG: USER };
const MACHINE_SLOT = { ERR_MSG: MACHINE };
const PORT_SLOT = { ERR_MSG: PORT };
const IFACE_SLOT = { ERR_MSG: IFACE };
const MAC_SLOT = { ERR_MSG: MAC };
const DEST_SLOT = { ERR_MSG: DEST };

const errorMessages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage: ({ expected }) => expected.LABEL ?? expected.name,
  buildNotAllInputParsedMessage: () => 'the end of the file',
  buildNoViableAltMessage: ({ ruleName }) => (ruleName.endsWith('Address') ? ADDRESS : STATEMENT),
  buildEarlyExitMessage: ({ expectedIterationPaths }) =>
    expectedIterationPaths.map((p) => p[0]?.LABEL ?? p[0]?.name).join(' or '),
};

function span(t: IToken): Span {
  return { start: t.startOffset, end: t.endOffset! + 1 };
}

function ident(t: IToken): Ident {
  return { text: t.image, start: t.startOffset, end: t.endOffset! + 1 };
}

const ANY_ADDRESS: Address = Object.freeze({ q: 'any' });
const NONE_ADDRESS: Address = Object.freeze({ q: 'none' });
const addressStart = [Mac, Not, Any, None];

interface Structural {
  def: MessageDef;
  span: Span;
  args: string[];
}

/** Token batch the parser pulls from the scanner at a time. */
const BATCH = 2048;

/**
 * Chevrotain internals the streaming adapter below works with. Chevrotain
 * keeps token access in one trait (LexerAdapter) so that it can be replaced
 * by lazy or streaming lexers; these are the parts of it that the typings
 * leave out. The version is pinned, and the parser tests exercise every path.
 */
interface LexerAdapterInternals {
  currIdx: number;
  exportLexerState(): number;
  getLexerPosition(): number;
  moveToTerminatedState(): void;
  reset(): void;
}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
interface VnetParser extends LexerAdapterInternals {}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
class VnetParser extends EmbeddedActionsParser {
  /** Set when a statement had to be dropped while recovering from an error. */
  dropped = false;
  /** Misplaced statements. */
  structural: Structural[] = [];
  /** Whether an ADD or DELETE has been seen: statements after it belong to a block. */
  private inBlock = false;
  private visit: (s: Statement) => void = () => {};

  // ── streaming token access ────────────────────────────────────────────
  // Tokens are pulled from the scanner in batches into `window`, which holds
  // the tokens from global index `base` on. Consumed tokens are released,
  // unless Chevrotain has taken a position it may rewind to (it does so only
  // while recovering from an error); from then on everything is kept.
  private scanner: Scanner | undefined;
  private window: IToken[] = [];
  private base = 0;
  private exhausted = true;
  private pinned = false;

  constructor() {
    super(allTokens, { recoveryEnabled: true, maxLookahead: 2, errorMessageProvider: errorMessages });
    this.performSelfAnalysis();
  }

  stream(scanner: Scanner, visit: (s: Statement) => void): void {
    this.reset();
    this.visit = visit;
    this.inBlock = false;
    this.scanner = scanner;
    this.window = [];
    this.base = 0;
    this.exhausted = false;
    this.pinned = false;
    this.dropped = false;
    this.structural = [];
  }

  /** Drops the scanner and any tokens still held. */
  release(): void {
    this.visit = () => {};
    this.scanner = undefined;
    this.window = [];
    this.exhausted = true;
  }

  private pull(): boolean {
    if (this.exhausted) return false;
    if (!this.pinned && this.currIdx - this.base > BATCH) {
      // Slide in place, keeping LA(0) (error messages and recovery look one token back).
      const drop = this.currIdx - 1 - this.base;
      const w = this.window;
      w.copyWithin(0, drop);
      w.length -= drop;
      this.base += drop;
    }
    if (this.scanner!.fill(this.window, BATCH) === 0) this.exhausted = true;
    return !this.exhausted;
  }

  protected override LA(howMuch: number): IToken {
    const idx = this.currIdx + howMuch;
    if (idx < 0) return EOF_TOKEN;
    let local = idx - this.base;
    while (local >= this.window.length) {
      if (!this.pull()) return EOF_TOKEN;
      local = idx - this.base;
    }
    return this.window[local]!;
  }

  protected override LA_FAST(howMuch: number): IToken {
    return this.LA(howMuch);
  }

  protected override SKIP_TOKEN(): IToken {
    this.currIdx++;
    return this.LA(1);
  }

  // Positions Chevrotain may come back to: keep every token from here on.
  exportLexerState(): number {
    this.pinned = true;
    return this.currIdx;
  }

  // Asked once per repetition to see progress; no rewind follows.
  getLexerPosition(): number {
    return this.currIdx;
  }

  moveToTerminatedState(): void {
    while (this.pull());
    this.currIdx = this.base + this.window.length - 1;
  }

  // ── the grammar ───────────────────────────────────────────────────────
  // Alternatives and option bodies are built once, as fields: a fresh array
  // of closures per call is most of a parser's cost at a million rules
  // (Chevrotain's performance guide says the same).

  /** Chevrotain invents tokens while recovering; a statement built on one is not what the user wrote. */
  private invented(t: IToken | undefined): boolean {
    if (t !== undefined && t.isInsertedInRecovery !== true) return false;
    this.dropped = true;
    return true;
  }

  program = this.RULE('program', (): ProgramBounds | undefined => {
    const begin = this.CONSUME(Begin);
    this.MANY(() => {
      const s = this.SUBRULE(this.statement);
      this.ACTION(() => this.place(s));
    });
    const end = this.CONSUME(End);
    return this.ACTION(() => ({ begin: span(begin), end: span(end) }));
  });

  /** Checks where a statement stands, then hands it on. */
  private place(s: Statement | undefined): void {
    if (!s) {
      this.dropped = true;
    } else if (s.kind === 'block') {
      this.inBlock = true;
      this.visit(s);
    } else if (s.kind === 'host') {
      // Handed on even when misplaced, so its machine still counts as declared.
      if (this.inBlock) this.structural.push({ def: Msg.HostAfterBlock, span: s, args: [] });
      this.visit(s);
    } else if (this.inBlock) {
      this.visit(s);
    } else {
      this.structural.push({ def: Msg.StatementOutsideBlock, span: s, args: [s.kind === 'link' ? 'LINK' : 'FORWARD'] });
      this.dropped = true;
    }
  }

  private readonly statementAlts = [
    { ALT: () => this.SUBRULE(this.hostDecl) },
    { ALT: () => this.SUBRULE(this.blockHead) },
    { ALT: () => this.SUBRULE(this.linkStmt) },
    { ALT: () => this.SUBRULE(this.forwardStmt) },
  ];
  statement = this.RULE('statement', (): Statement | undefined => this.OR(this.statementAlts));

  hostDecl = this.RULE('hostDecl', (): HostDecl | undefined => {
    const kw = this.CONSUME(Host);
    const user = this.CONSUME(Name, USER_SLOT);
    const at = this.CONSUME(At);
    const machine = this.CONSUME2(Name, MACHINE_SLOT);
    const port = this.CONSUME(NumberTok, PORT_SLOT);
    const iface = this.CONSUME3(Name, IFACE_SLOT);
    return this.ACTION(() => {
      if (this.invented(user) || this.invented(at) || this.invented(machine) || this.invented(port) || this.invented(iface)) {
        return undefined;
      }
      const text = port.image;
      return {
        kind: 'host' as const,
        user: ident(user),
        machine: ident(machine),
        port: { text, value: Number(text), start: port.startOffset, end: port.endOffset! + 1 },
        iface: ident(iface),
        start: kw.startOffset,
        end: iface.endOffset! + 1,
      };
    });
  });

  private readonly blockAlts = [{ ALT: () => this.CONSUME(Add) }, { ALT: () => this.CONSUME(Delete) }];

  /** ADD or DELETE: the statements after it, up to the next ADD, DELETE or END, form its block. */
  blockHead = this.RULE('blockHead', (): BlockHead | undefined => {
    const head = this.OR(this.blockAlts);
    return this.ACTION(() => ({
      kind: 'block' as const,
      action: head.tokenType === Add ? ('add' as const) : ('delete' as const),
      start: head.startOffset,
      end: head.endOffset! + 1,
    }));
  });

  private readonly protoAlts = [{ ALT: () => this.CONSUME(Tcp) }, { ALT: () => this.CONSUME(Udp) }];
  private readonly proto = () => this.OR(this.protoAlts);
  private readonly dialer = () => this.CONSUME3(Name, MACHINE_SLOT);

  linkStmt = this.RULE('linkStmt', (): LinkStmt | undefined => {
    const kw = this.CONSUME(Link);
    const proto = this.OPTION(this.proto);
    const a = this.CONSUME(Name, MACHINE_SLOT);
    const b = this.CONSUME2(Name, MACHINE_SLOT);
    const dialer = this.OPTION2(this.dialer);
    return this.ACTION(() => {
      if (this.invented(a) || this.invented(b)) return undefined;
      return {
        kind: 'link' as const,
        proto: proto === undefined ? null : proto.tokenType === Tcp ? ('tcp' as const) : ('udp' as const),
        a: ident(a),
        b: ident(b),
        dialer: dialer ? ident(dialer) : null,
        start: kw.startOffset,
        end: (dialer ?? b).endOffset! + 1,
      };
    });
  });

  private readonly ruleTypeAlts = [{ ALT: () => this.CONSUME(Edge) }, { ALT: () => this.CONSUME(Interface) }];
  private readonly ruleType = () => this.OR(this.ruleTypeAlts);

  forwardStmt = this.RULE('forwardStmt', (): ForwardStmt | undefined => {
    const kw = this.CONSUME(Forward);
    const ruleType = this.OPTION(this.ruleType);
    const machine = this.CONSUME(Name, MACHINE_SLOT);
    const src = this.SUBRULE(this.srcAddress);
    const dst = this.SUBRULE(this.dstAddress);
    const dest = this.SUBRULE(this.destination);
    return this.ACTION(() => {
      if (this.invented(machine) || !src || !dst || !dest) {
        this.dropped = true;
        return undefined;
      }
      return {
        kind: 'forward' as const,
        ruleType: ruleType === undefined ? null : ruleType.tokenType === Edge ? ('edge' as const) : ('interface' as const),
        machine: ident(machine),
        src,
        dst,
        dest,
        start: kw.startOffset,
        end: dest.end,
      };
    });
  });

  // Address alternatives, shared by both slots.
  private readonly exactAlt = {
    ALT: (): AddressNode | undefined => {
      const t = this.CONSUME(Mac, MAC_SLOT);
      return this.ACTION(() =>
        this.invented(t) ? undefined : { addr: exact('exact', t), start: t.startOffset, end: t.endOffset! + 1 },
      );
    },
  };
  private readonly notAlt = {
    ALT: (): AddressNode | undefined => {
      const kw = this.CONSUME(Not);
      const t = this.CONSUME2(Mac, MAC_SLOT);
      return this.ACTION(() =>
        this.invented(t) ? undefined : { addr: exact('not', t), start: kw.startOffset, end: t.endOffset! + 1 },
      );
    },
  };
  private readonly noneAlt = {
    ALT: (): AddressNode | undefined => {
      const kw = this.CONSUME(None);
      return this.ACTION(() => ({ addr: NONE_ADDRESS, start: kw.startOffset, end: kw.endOffset! + 1 }));
    },
  };
  private readonly anyFiller = () => this.CONSUME3(Mac);

  /** `ANY`, or the seed grammar's `ANY <mac>`, whose MAC means nothing. */
  private any(takeMac: () => boolean): AddressNode | undefined {
    const kw = this.CONSUME(Any);
    const filler = this.OPTION({ GATE: takeMac, DEF: this.anyFiller });
    return this.ACTION(() => ({ addr: ANY_ADDRESS, start: kw.startOffset, end: (filler ?? kw).endOffset! + 1 }));
  }

  /**
   * In the source slot, a MAC after ANY could be ANY's filler or the
   * destination address: it is the filler only if another address follows.
   */
  private readonly macIsFiller = () => addressStart.some((t) => tokenMatcher(this.LA(2), t));
  private readonly always = () => true;
  private readonly srcAlts = [this.exactAlt, this.notAlt, { ALT: () => this.any(this.macIsFiller) }, this.noneAlt];
  private readonly dstAlts = [this.exactAlt, this.notAlt, { ALT: () => this.any(this.always) }, this.noneAlt];

  srcAddress = this.RULE('srcAddress', (): AddressNode | undefined => this.OR(this.srcAlts));
  dstAddress = this.RULE('dstAddress', (): AddressNode | undefined => this.OR(this.dstAlts));

  private readonly secondHop = () => this.CONSUME2(Name, MACHINE_SLOT);

  destination = this.RULE('destination', (): EdgeDest | InterfaceDest | undefined => {
    const first = this.CONSUME(Name, DEST_SLOT);
    const second = this.OPTION(this.secondHop);
    return this.ACTION(() => {
      if (this.invented(first) || (second !== undefined && this.invented(second))) return undefined;
      return second
        ? { kind: 'edge' as const, from: ident(first), to: ident(second), start: first.startOffset, end: second.endOffset! + 1 }
        : { kind: 'interface' as const, iface: ident(first), start: first.startOffset, end: first.endOffset! + 1 };
    });
  });
}

/** What LA() answers past the end; Chevrotain's own EOF token shape. */
const EOF_TOKEN: IToken = {
  image: '',
  startOffset: NaN,
  endOffset: NaN,
  tokenType: EOF,
  tokenTypeIdx: EOF.tokenTypeIdx!,
};

function exact(q: 'exact' | 'not', t: IToken): Address {
  const image = t.image;
  const parsed = parseMac(image);
  // A malformed MAC was reported by the scanner; keep its text so the rest still checks.
  return { q, mac: parsed.ok ? parsed.mac : image };
}

/** Built once: Chevrotain's grammar analysis is the expensive part. */
let instance: VnetParser | undefined;
export function parserInstance(): VnetParser {
  return (instance ??= new VnetParser());
}

export type { VnetParser };

// ── turning Chevrotain's exceptions into diagnostics ───────────────────────

const keywordSet = new Set<TokenType>(keywordTokens);
const statementStarts = new Set<TokenType>(statementKeywords);
const NAME_ROLES = new Set([USER, MACHINE, IFACE, DEST]);
const MAX_IMAGE = 40;

function describe(t: IToken): string {
  if (t.tokenType === EOF) return 'the end of the file';
  const image = t.image.length > MAX_IMAGE ? t.image.slice(0, MAX_IMAGE) + '…' : t.image;
  return `'${image}'`;
}

function toDiagnostic(e: IRecognitionException, sink: DiagnosticSink): void {
  const t = e.token;
  const atEof = t.tokenType === EOF || Number.isNaN(t.startOffset);
  const previous = (e as IRecognitionException & { previousToken?: IToken }).previousToken;
  const afterPrevious = previous && !Number.isNaN(previous.startOffset) ? previous.endOffset! + 1 : undefined;
  // At the end of the file, point just after the last word, where the missing part belongs.
  const eofAt = afterPrevious ?? sink.file.text.length;
  const where: Span = atEof ? { start: eofAt, end: eofAt } : span(t);
  const expected = e.message;
  if (e.name === 'NotAllInputParsedException') return sink.report(Msg.UnexpectedAfterEnd, where, [describe(t)]);
  if (expected === 'END' && atEof) return sink.report(Msg.MissingEnd, where);
  if (expected === 'BEGIN') {
    return sink.report(Msg.Expected, where, ['BEGIN', describe(t)], {
      hint: 'a program starts with BEGIN, then HOST lines, then ADD/DELETE blocks, then END',
    });
  }
  if (expected === MAC && t.tokenType === None) return sink.report(Msg.QualifiedNone, where, ['NOT']);
  // The statement stopped short: point just past its last word, where the missing part belongs.
  if ((atEof || statementStarts.has(t.tokenType)) && afterPrevious !== undefined && expected !== 'END') {
    return sink.report(Msg.Incomplete, { start: afterPrevious, end: afterPrevious }, [expected, previous!.image]);
  }
  if (NAME_ROLES.has(expected) && keywordSet.has(t.tokenType)) {
    return sink.report(Msg.KeywordAsName, where, [expected, t.image]);
  }
  sink.report(Msg.Expected, where, [expected === 'END' ? STATEMENT : expected, describe(t)]);
}

function offsetOf(e: IRecognitionException): number {
  const o = e.token.startOffset;
  return Number.isNaN(o) || e.token.tokenType === EOF ? Number.MAX_SAFE_INTEGER : o;
}

/**
 * One error per statement: after the first, Chevrotain's recovery guesses,
 * and what it reports next is about its guess, not about the text.
 * `starts` are the offsets of statement keywords, in order.
 */
function firstPerStatement(errors: IRecognitionException[], starts: Int32Array): IRecognitionException[] {
  // The last statement keyword strictly before the offset: a keyword that
  // cuts a statement short belongs to the statement it cut.
  const statementOf = (offset: number): number => {
    let lo = -1;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! < offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const seen = new Set<number>();
  const out: IRecognitionException[] = [];
  for (const e of [...errors].sort((a, b) => offsetOf(a) - offsetOf(b))) {
    if (e.name !== 'NotAllInputParsedException') {
      const s = statementOf(offsetOf(e));
      if (seen.has(s)) continue;
      seen.add(s);
    }
    out.push(e);
  }
  return out;
}

/** Where BEGIN and END are; absent when the text is not a program at all. */
export interface ProgramBounds {
  begin: Span;
  end: Span;
}

export interface ParseResult {
  bounds: ProgramBounds | undefined;
  /** True when some statement was lost to a syntax error, or is out of place. */
  incomplete: boolean;
}

/** Parses the scanner's tokens, handing each statement to `visit` in order. */
export function parse(scanner: Scanner, sink: DiagnosticSink, visit: (s: Statement) => void): ParseResult {
  const parser = parserInstance();
  parser.stream(scanner, visit);
  try {
    const bounds = parser.program();
    const errors = parser.errors;
    // Past the scanner's error cap the text is noise; what the parser makes of it is not news.
    if (!scanner.abandoned && errors.length > 0) {
      for (const e of firstPerStatement(errors, scanner.statements)) toDiagnostic(e, sink);
    }
    for (const d of parser.structural) sink.report(d.def, d.span, d.args);
    return { bounds, incomplete: parser.dropped || errors.length > 0 || parser.structural.length > 0 };
  } finally {
    parser.release();
  }
}
