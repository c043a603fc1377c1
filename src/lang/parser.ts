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
import { colonWordHint } from './colon-words.js';
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
  Keyword,
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
  // A name slot with alternatives (the HOST line's user and machine) names its role in ERR_MSG.
  buildNoViableAltMessage: ({ ruleName, customUserDescription }) => customUserDescription ?? (ruleName.endsWith('Address') ? ADDRESS : STATEMENT),
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
/** How far a recovery may look ahead for a place to resume; past it, the rest is noise. */
const MAX_RESYNC = 65_536;
/** Recognition errors after which the parser stops: the rest cannot be a program. */
const MAX_PARSE_ERRORS = 1_000;

/**
 * Chevrotain internals the streaming adapter below works with. Chevrotain
 * keeps token access in one trait (LexerAdapter) so that it can be replaced
 * by lazy or streaming lexers; these are the parts of it, and of its error
 * handling, that the typings leave out. The version is pinned, and the parser
 * tests exercise every path.
 */
interface ChevrotainInternals {
  currIdx: number;
  exportLexerState(): number;
  importLexerState(state: number): void;
  getLexerPosition(): number;
  moveToTerminatedState(): void;
  reset(): void;
  SAVE_ERROR(error: IRecognitionException): IRecognitionException;
  addToResyncTokens(token: IToken, resyncTokens: IToken[]): IToken[];
}

const chevrotainParser = EmbeddedActionsParser.prototype as unknown as ChevrotainInternals;

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
interface VnetParser extends ChevrotainInternals {}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
class VnetParser extends EmbeddedActionsParser {
  /** Set when a statement had to be dropped while recovering from an error. */
  dropped = false;
  /** Problems the grammar tolerates, to report once parsing is done: misplaced statements, keywords as names. */
  structural: Structural[] = [];
  /** Whether an ADD or DELETE has been seen: statements after it belong to a block. */
  private inBlock = false;
  /** Whether BEGIN was read: then every statement was seen, even if END is missing. */
  begun = false;
  /** Where the parser gave up (too many errors), as a source offset. */
  stoppedAt: number | undefined;
  private errorsSeen = 0;
  private visit: (s: Statement) => void = () => {};

  // ── streaming token access ────────────────────────────────────────────
  // Tokens are pulled from the scanner in batches into `window`, which holds
  // the tokens from global index `base` on, and consumed tokens are let go.
  // While Chevrotain recovers from an error it may note a position and come
  // back to it (it does so in one place, tryInRepetitionRecovery); tokens
  // from that position are kept until it either comes back (importLexerState)
  // or commits to its recovery by recording the error (SAVE_ERROR).
  private scanner: Scanner | undefined;
  private window: IToken[] = [];
  private base = 0;
  private exhausted = true;
  private pinnedAt: number | undefined;

  constructor() {
    super(allTokens, { recoveryEnabled: true, maxLookahead: 2, errorMessageProvider: errorMessages });
    this.performSelfAnalysis();
  }

  stream(scanner: Scanner, visit: (s: Statement) => void): void {
    this.reset();
    this.visit = visit;
    this.inBlock = false;
    this.begun = false;
    this.scanner = scanner;
    this.window = [];
    this.base = 0;
    this.exhausted = false;
    this.pinnedAt = undefined;
    this.stoppedAt = undefined;
    this.errorsSeen = 0;
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
    // Keep LA(0) (messages and recovery look one token back) and any pinned position.
    const keepFrom = Math.min(this.currIdx - 1, this.pinnedAt ?? Infinity);
    if (keepFrom - this.base > BATCH) {
      const drop = keepFrom - this.base;
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
    // After giving up, or too far into a recovery's search for a place to
    // resume (the grammar itself never looks more than two tokens ahead),
    // the rest reads as the end.
    if (this.stoppedAt !== undefined && howMuch > 0) return EOF_TOKEN;
    if (howMuch > MAX_RESYNC || (this.pinnedAt !== undefined && idx - this.pinnedAt > MAX_RESYNC)) return EOF_TOKEN;
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

  exportLexerState(): number {
    this.pinnedAt = Math.min(this.pinnedAt ?? Infinity, this.currIdx);
    return this.currIdx;
  }

  importLexerState(state: number): void {
    this.currIdx = state;
    this.pinnedAt = undefined;
  }

  // Asked once per repetition to see progress; no rewind follows.
  getLexerPosition(): number {
    return this.currIdx;
  }

  SAVE_ERROR(error: IRecognitionException): IRecognitionException {
    this.pinnedAt = undefined;
    if (++this.errorsSeen === MAX_PARSE_ERRORS) {
      const t = this.LA(1);
      this.stoppedAt = Number.isNaN(t.startOffset) ? undefined : t.startOffset;
    }
    return chevrotainParser.SAVE_ERROR.call(this, error);
  }

  /**
   * Chevrotain keeps every token it skips while recovering, on the error; on
   * a file of garbage that is every token of the file. vnetc never reads
   * them, so none are kept.
   */
  addToResyncTokens(_token: IToken, resyncTokens: IToken[]): IToken[] {
    return resyncTokens;
  }

  /** Skips to the end: the rest of the tokens are counted, not kept. */
  moveToTerminatedState(): void {
    while (!this.exhausted) {
      const last = this.window[this.window.length - 1];
      this.base += this.window.length;
      this.window = last ? [last] : [];
      this.base -= this.window.length;
      if (this.scanner!.fill(this.window, BATCH) === 0) this.exhausted = true;
    }
    this.currIdx = this.base + this.window.length - 1;
  }

  /**
   * Never recover by deleting a statement keyword: it would glue the next,
   * correct, statement onto a broken one and blame the good line. (Chevrotain
   * passes the type it expected; the token it would delete is LA(1).)
   */
  protected override canTokenTypeBeDeletedInRecovery(_expected: TokenType): boolean {
    return !statementStarts.has(this.LA(1).tokenType);
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
    this.ACTION(() => (this.begun = true));
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
      // Handed on even when misplaced, so later statements can use its
      // machine; but earlier ones used it undeclared, which is not news.
      if (this.inBlock) {
        this.structural.push({ def: Msg.HostAfterBlock, span: s, args: [] });
        this.dropped = true;
      }
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

  /**
   * `host` or `end` are plausible machine and user names, but keywords. In a
   * HOST line the shape settles it (a user is followed by AT, a machine by
   * the port), so a keyword there is read as the name it was meant to be,
   * with one clear error, instead of derailing the parse.
   */
  private keywordAsName(t: IToken, role: string): IToken {
    this.ACTION(() => this.structural.push({ def: Msg.KeywordAsName, span: span(t), args: [role, t.image] }));
    return t;
  }
  private readonly userAlts = [
    { ALT: () => this.CONSUME(Name, USER_SLOT) },
    { GATE: () => tokenMatcher(this.LA(2), At), ALT: () => this.keywordAsName(this.CONSUME(Keyword), USER) },
  ];
  private readonly hostMachineAlts = [
    { ALT: () => this.CONSUME2(Name, MACHINE_SLOT) },
    { GATE: () => tokenMatcher(this.LA(2), NumberTok), ALT: () => this.keywordAsName(this.CONSUME2(Keyword), MACHINE) },
    // An IPv6 address, read as a MAC-shaped word: the port after it shows it was
    // meant as the machine, which the name check then refuses with a way forward
    // (and hostDecl takes back the scanner's malformed-MAC report).
    { GATE: () => tokenMatcher(this.LA(2), NumberTok), ALT: () => this.CONSUME(Mac) },
  ];

  hostDecl = this.RULE('hostDecl', (): HostDecl | undefined => {
    const kw = this.CONSUME(Host);
    const user = this.OR({ DEF: this.userAlts, ERR_MSG: USER });
    const at = this.CONSUME(At);
    const machine = this.OR2({ DEF: this.hostMachineAlts, ERR_MSG: MACHINE });
    const port = this.CONSUME(NumberTok, PORT_SLOT);
    const iface = this.CONSUME3(Name, IFACE_SLOT);
    return this.ACTION(() => {
      if (this.invented(user) || this.invented(at) || this.invented(machine) || this.invented(port) || this.invented(iface)) {
        return undefined;
      }
      // Only once the HOST line stands, so the name check is sure to report the word instead.
      if (machine.tokenType === Mac) this.scanner!.readAsName(machine);
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
   * destination address: it is the filler only if another address follows,
   * and a MAC that is not followed by a destination is none (`ANY <mac>
   * eth0:1`: a colon word meant as the interface).
   */
  private readonly macIsFiller = () =>
    addressStart.some((t) => tokenMatcher(this.LA(2), t)) && (!tokenMatcher(this.LA(2), Mac) || tokenMatcher(this.LA(3), Name));
  private readonly always = () => true;
  private readonly srcAlts = [this.exactAlt, this.notAlt, { ALT: () => this.any(this.macIsFiller) }, this.noneAlt];
  private readonly dstAlts = [this.exactAlt, this.notAlt, { ALT: () => this.any(this.always) }, this.noneAlt];

  srcAddress = this.RULE('srcAddress', (): AddressNode | undefined => this.OR(this.srcAlts));
  dstAddress = this.RULE('dstAddress', (): AddressNode | undefined => this.OR(this.dstAlts));

  // A colon word after the first hop is read as the second (no statement starts with one), for the name check to refuse with a way forward.
  private readonly secondHopAlts = [{ ALT: () => this.CONSUME2(Name, MACHINE_SLOT) }, { ALT: () => this.CONSUME3(Mac) }];
  private readonly secondHop = () => this.OR(this.secondHopAlts);

  destination = this.RULE('destination', (): EdgeDest | InterfaceDest | undefined => {
    const first = this.CONSUME(Name, DEST_SLOT);
    const second = this.OPTION(this.secondHop);
    return this.ACTION(() => {
      if (this.invented(first) || (second !== undefined && this.invented(second))) return undefined;
      if (second?.tokenType === Mac) this.scanner!.readAsName(second);
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

/**
 * Reports one recognition error. Returns the offset of a statement keyword
 * that was taken to be a name, whose "statement" is then no statement at all.
 */
function toDiagnostic(e: IRecognitionException, sink: DiagnosticSink, scanner: Scanner): number | undefined {
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
  if (expected === MAC && t.tokenType === None) {
    // Point at NOT NONE: the NOT is what to remove.
    const from = afterPrevious !== undefined ? previous!.startOffset : where.start;
    return sink.report(Msg.QualifiedNone, { start: from, end: where.end }, ['NOT']);
  }
  if (NAME_ROLES.has(expected) && statementStarts.has(t.tokenType) && afterPrevious !== undefined) {
    // A statement keyword where a name belongs: on the same line it was meant
    // as the name (`LINK host h2`); on a later line, the statement stopped short.
    if (!/[\r\n]/.test(sink.file.text.slice(afterPrevious, t.startOffset))) {
      sink.report(Msg.KeywordAsName, where, [expected, t.image]);
      return t.startOffset;
    }
    return sink.report(Msg.Incomplete, { start: afterPrevious, end: afterPrevious }, [expected, previous!.image]);
  }
  if ((atEof || statementStarts.has(t.tokenType)) && afterPrevious !== undefined && expected !== 'END') {
    return sink.report(Msg.Incomplete, { start: afterPrevious, end: afterPrevious }, [expected, previous!.image]);
  }
  if (NAME_ROLES.has(expected) && keywordSet.has(t.tokenType)) {
    return sink.report(Msg.KeywordAsName, where, [expected, t.image]);
  }
  if (NAME_ROLES.has(expected) && t.tokenType === Mac) {
    // A colon word where a name belongs: the scanner's malformed-MAC report on it would only repeat this one.
    scanner.readAsName(t);
    return sink.report(Msg.Expected, where, [expected, describe(t)], { hint: colonWordHint(t.image, expected === MACHINE ? 'machine' : 'name') });
  }
  return sink.report(Msg.Expected, where, [expected === 'END' ? STATEMENT : expected, describe(t)]);
}

function offsetOf(e: IRecognitionException): number {
  const o = e.token.startOffset;
  return Number.isNaN(o) || e.token.tokenType === EOF ? Number.MAX_SAFE_INTEGER : o;
}

/**
 * Reports the errors, one per statement: after the first, Chevrotain's
 * recovery guesses, and what it reports next is about its guess, not about
 * the text. The scanner's `statements` are the offsets of statement keywords, in order.
 */
function reportErrors(errors: IRecognitionException[], scanner: Scanner, sink: DiagnosticSink): void {
  const starts = scanner.statements;
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
  const notStatements = new Set<number>();
  for (const e of [...errors].sort((a, b) => offsetOf(a) - offsetOf(b))) {
    if (e.name !== 'NotAllInputParsedException') {
      const s = statementOf(offsetOf(e));
      if (seen.has(s) || (s >= 0 && notStatements.has(starts[s]!))) continue;
      seen.add(s);
    }
    const swallowed = toDiagnostic(e, sink, scanner);
    if (swallowed !== undefined) notStatements.add(swallowed);
  }
}

/** Where BEGIN and END are; absent when the text is not a program at all. */
export interface ProgramBounds {
  begin: Span;
  end: Span;
}

export interface ParseResult {
  bounds: ProgramBounds | undefined;
  /** BEGIN was read, so every statement after it was seen (even without END). */
  begun: boolean;
  /** True when some statement was lost to a syntax error (or a HOST line is out of place). */
  incomplete: boolean;
}

/** Parses the scanner's tokens, handing each statement to `visit` in order. */
export function parse(scanner: Scanner, sink: DiagnosticSink, visit: (s: Statement) => void): ParseResult {
  const parser = parserInstance();
  parser.stream(scanner, visit);
  // Chevrotain signals recognition errors with exceptions; their stack traces
  // are never shown and, on a file of garbage, cost more than the parse.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    const bounds = parser.program();
    let errors = parser.errors;
    const stoppedAt = parser.stoppedAt;
    if (stoppedAt !== undefined) {
      // What the parser thought of the end it was made to see is not news.
      errors = errors.filter((e) => offsetOf(e) < stoppedAt);
      sink.stop(stoppedAt);
    }
    // Past the scanner's error cap the text is noise; what the parser makes of it is not news.
    if (!scanner.abandoned && errors.length > 0) reportErrors(errors, scanner, sink);
    for (const d of parser.structural) sink.report(d.def, d.span, d.args);
    // Only a lost statement makes the program incomplete; a missing END, stray
    // words or a misplaced HOST leave every statement known.
    return { bounds, begun: parser.begun, incomplete: parser.dropped || stoppedAt !== undefined };
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
    parser.release();
  }
}
