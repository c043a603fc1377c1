import { applySettingWords, DEFAULT_SETTINGS } from '../vttif/params.js';
import { printAddress } from '../lang/print.js';
import { parseMac } from '../model/mac.js';
import { isInterfaceName, isMachineName } from '../model/names.js';
import { clipWord } from './clip-word.js';
import { parseHostPort } from './hostport.js';
import type { Address, Destination, Proto, Rule } from '../model/state.js';

/**
 * The control protocol's words, shared by vnetd (which parses commands and
 * prints replies) and by clients (which do the reverse), so the two can
 * never drift apart. PROTOCOL.md is the reference.
 *
 * Every command is one line of space-separated words, keywords in any case.
 * Every reply ends with one line starting `OK` or `ERR <code>`; lines before
 * it start with `* ` and carry data.
 */

export const PROTOCOL_VERSION = 1;
/** A daemon greets as soon as it accepts; anything slower than SSH's bound for connecting is not coming. */
export const GREETING_MS = 10_000;
/** The longest a daemon that owes a reply may send nothing: a batch of a million changes commits in about 7 s. REPLY_WHOLE_MS bounds the whole reply. */
export const REPLY_MS = 60_000;
/**
 * The longest one reply may take in all, however steadily its bytes come:
 * ten minutes, in which the largest reply a real daemon sends (about 120
 * MiB, see MAX_REPLY_DATA) crosses a link of 2 Mbit/s. Only this stops a
 * peer that sends a byte every 59 s, which REPLY_MS never would.
 */
export const REPLY_WHOLE_MS = 600_000;
/** Longer lines are not buffered: the daemon refuses a command line as long (and skips to its end); a client drops a daemon that sends one (OversizedReply). */
export const MAX_LINE = 64 * 1024;
/**
 * The most a client holds of one reply's data lines, counting each line's
 * characters and LINE_COST for the string and its slot that hold it. The
 * largest replies a real daemon sends are COMMIT's, a line per change (`* 123
 * OK`; about 90 characters when a rejected batch names its error), and RULES?
 * (under 120 characters a rule): a million-change batch rejected whole is
 * some 120 MiB by this count, a million-rule table some 110 MiB, which is
 * already more than vnetc's plan of that size leaves room for. Twice that is
 * not a daemon but a peer that sends for ever, and is cut off while the
 * memory it took still fits in a small heap.
 */
export const MAX_REPLY_DATA = 256 * 1024 * 1024;
const LINE_COST = 32;

export type LinkMode = 'encrypt' | 'auth-only';

/** A link as the control plane configures it on one end. */
export interface LinkConfig {
  peer: string;
  proto: Proto;
  /** This end opens the connection. */
  dial: boolean;
  /** `host:port` of the peer's daemon; required to dial (and for UDP, where to send). */
  address: string | undefined;
  /** 32 bytes, as 64 hex digits; both ends hold the same. */
  key: string;
  mode: LinkMode;
}

export type Command =
  | { op: 'hello'; client: string | undefined }
  | { op: 'done' }
  | { op: 'devices?' }
  | { op: 'links?' }
  | { op: 'rules?' }
  | { op: 'stats?' }
  | { op: 'configtime?' }
  | { op: 'info?' }
  | { op: 'vttif?' }
  | { op: 'infer?' }
  | { op: 'shutdown' }
  | { op: 'vttif'; words: string[] }
  | { op: 'configtime'; ms: number }
  | { op: 'link-add'; link: LinkConfig }
  | { op: 'link-delete'; peer: string }
  | { op: 'rule-add'; rule: WireRule }
  | { op: 'rule-delete'; rule: WireRule }
  | { op: 'batch' }
  | { op: 'commit' }
  | { op: 'abort' };

/** A rule in a daemon's own table: the machine is the daemon. */
export type WireRule = Omit<Rule, 'machine'>;

/** The commands that change configuration, and so may go in a batch. */
export type Change = Extract<Command, { op: 'link-add' | 'link-delete' | 'rule-add' | 'rule-delete' }>;

export const isChange = (c: Command): c is Change =>
  c.op === 'link-add' || c.op === 'link-delete' || c.op === 'rule-add' || c.op === 'rule-delete';

export class WireError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Error codes a reply can carry (PROTOCOL.md lists them with their meaning). */
export type ErrorCode =
  | 'E_SYNTAX'
  | 'E_UNKNOWN'
  | 'E_TOOLONG'
  | 'E_STATE'
  | 'E_EXISTS'
  | 'E_MISSING'
  | 'E_NOLINK'
  | 'E_NOIFACE'
  | 'E_INUSE'
  | 'E_ADDRESS'
  | 'E_REJECTED'
  | 'E_PERSIST'
  | 'E_BUSY';

const KEY = /^[0-9a-f]{64}$/;

const syntax = (message: string): never => {
  throw new WireError('E_SYNTAX', message);
};

/** Reads words off a command line, with errors that say what was expected. */
class Words {
  private i = 0;
  constructor(private readonly words: string[]) {}
  next(what: string): string {
    const w = this.words[this.i++];
    if (w === undefined) syntax(`expected ${what}`);
    return w!;
  }
  peek(): string | undefined {
    return this.words[this.i];
  }
  optional(): string | undefined {
    return this.words[this.i++];
  }
  end(): void {
    if (this.i < this.words.length) syntax(`unexpected '${clipWord(this.words[this.i]!)}' at the end of the command`);
  }
}

/** The largest configuration-time bound CONFIGTIME takes (nine digits), and saved state may hold. */
export const MAX_CONFIG_TIME_MS = 999_999_999;


function machineWord(w: string): string {
  if (!isMachineName(w)) syntax(`'${clipWord(w)}' is not a machine name`);
  return w;
}

function addressWords(words: Words, allowNone: boolean): Address {
  const w = words.next('an address (a MAC, NOT <mac>, ANY or NONE)');
  const upper = w.toUpperCase();
  if (upper === 'ANY') return { q: 'any' };
  if (upper === 'NONE') {
    if (!allowNone) syntax('NONE can only be a destination address');
    return { q: 'none' };
  }
  if (upper === 'NOT') return { q: 'not', mac: mac(words.next('a MAC after NOT')) };
  return { q: 'exact', mac: mac(w) };
}

function mac(w: string): string {
  const r = parseMac(w);
  if (!r.ok) syntax(`'${clipWord(w)}' is not a MAC address: ${r.reason}`);
  return (r as { mac: string }).mac;
}

function destinationWords(words: Words): Destination {
  const kind = words.next('LINK <peer> or IFACE <name>').toUpperCase();
  if (kind === 'LINK') return { kind: 'link', to: machineWord(words.next('the peer machine')) };
  if (kind === 'IFACE') {
    const name = words.next('the interface name');
    if (!isInterfaceName(name)) syntax(`'${clipWord(name)}' is not an interface name`);
    return { kind: 'interface', iface: name };
  }
  return syntax(`expected LINK or IFACE, not '${clipWord(kind)}'`);
}

function ruleWords(words: Words): WireRule {
  const src = addressWords(words, false);
  const dst = addressWords(words, true);
  const dest = destinationWords(words);
  words.end();
  return { src, dst, dest };
}

/** `<peer> TCP|UDP DIAL|ACCEPT`: how a link starts, in LINK ADD and in LINKS? lines alike. */
function linkHeadWords(words: Words): { peer: string; proto: Proto; dial: boolean } {
  const peer = machineWord(words.next('the peer machine'));
  const proto = words.next('TCP or UDP').toLowerCase();
  if (proto !== 'tcp' && proto !== 'udp') syntax(`expected TCP or UDP, not '${clipWord(proto)}'`);
  const role = words.next('DIAL or ACCEPT').toLowerCase();
  if (role !== 'dial' && role !== 'accept') syntax(`expected DIAL or ACCEPT, not '${clipWord(role)}'`);
  return { peer, proto: proto as Proto, dial: role === 'dial' };
}

function modeWord(w: string): LinkMode {
  const mode = w.toLowerCase();
  if (mode !== 'auth-only' && mode !== 'encrypt') syntax(`expected ENCRYPT or AUTH-ONLY, not '${clipWord(mode)}'`);
  return mode as LinkMode;
}

function linkAddWords(words: Words): LinkConfig {
  const { peer, proto, dial } = linkHeadWords(words);
  let address: string | undefined;
  const next = words.next('the peer address host:port (or - ) then the key');
  if (next !== '-') {
    if (!parseHostPort(next)) syntax(`'${clipWord(next)}' is not host:port`);
    address = next;
  }
  if (dial && address === undefined) syntax('a link this end dials needs the peer address');
  const key = words.next('the link key (64 hex digits)').toLowerCase();
  if (!KEY.test(key)) syntax('the link key must be 64 hex digits (32 bytes)');
  const mode = words.optional();
  words.end();
  return { peer, proto, dial, address, key, mode: mode === undefined ? 'encrypt' : modeWord(mode) };
}

/** Parses one command line (without its newline). Throws WireError. */
export function parseCommand(line: string): Command {
  const words = line.trim().split(/[ \t]+/).filter(Boolean);
  if (words.length === 0) syntax('empty command');
  const w = new Words(words);
  const head = w.next('a command').toUpperCase();
  const simple = (op: Command['op']): Command => (w.end(), { op } as Command);
  switch (head) {
    case 'HELLO': {
      const client = w.optional();
      return { op: 'hello', client };
    }
    case 'DONE':
    case 'QUIT':
      return simple('done');
    case 'DEVICES?':
      return simple('devices?');
    case 'LINKS?':
    case 'HANDLERS?':
      return simple('links?');
    case 'RULES?':
      return simple('rules?');
    case 'STATS?':
      return simple('stats?');
    case 'CONFIGTIME?':
      return simple('configtime?');
    case 'INFO?':
      return simple('info?');
    case 'SHUTDOWN':
      return simple('shutdown');
    case 'VTTIF?':
      return simple('vttif?');
    case 'INFER?':
      return simple('infer?');
    case 'VTTIF': {
      const settings: string[] = [];
      for (let word = w.optional(); word !== undefined; word = w.optional()) settings.push(word);
      if (settings.length === 0) syntax('expected settings such as collector=proxy update-hz=5 window-s=1 threshold=0.2');
      try {
        applySettingWords(DEFAULT_SETTINGS, settings);
      } catch (e) {
        syntax((e as Error).message);
      }
      return { op: 'vttif', words: settings };
    }
    case 'CONFIGTIME': {
      const v = w.next('the bound in milliseconds');
      // Nine digits at most: MAX_CONFIG_TIME_MS.
      if (!/^\d{1,9}$/.test(v)) syntax('the bound is a whole number of milliseconds');
      w.end();
      return { op: 'configtime', ms: Number(v) };
    }
    case 'BATCH':
      return simple('batch');
    case 'COMMIT':
      return simple('commit');
    case 'ABORT':
      return simple('abort');
    case 'LINK':
    case 'RULE': {
      const verb = w.next('ADD or DELETE').toUpperCase();
      if (verb !== 'ADD' && verb !== 'DELETE') syntax(`expected ADD or DELETE, not '${clipWord(verb)}'`);
      if (head === 'RULE') return { op: verb === 'ADD' ? 'rule-add' : 'rule-delete', rule: ruleWords(w) };
      if (verb === 'ADD') return { op: 'link-add', link: linkAddWords(w) };
      const peer = machineWord(w.next('the peer machine'));
      w.end();
      return { op: 'link-delete', peer };
    }
    default:
      throw new WireError('E_UNKNOWN', `unknown command '${clipWord(words[0]!)}'; try INFO?, DEVICES?, LINKS?, RULES?, STATS?, VTTIF?, INFER?, LINK ADD, RULE ADD, BATCH`);
  }
}

// ── printing (the client's side, and the daemon's listings) ─────────────

export function formatRule(r: WireRule): string {
  const dest = r.dest.kind === 'link' ? `LINK ${r.dest.to}` : `IFACE ${r.dest.iface}`;
  return `${printAddress(r.src)} ${printAddress(r.dst)} ${dest}`;
}

/** The words after `LINK ADD`. */
export function formatLinkConfig(l: LinkConfig): string {
  return `${l.peer} ${l.proto.toUpperCase()} ${l.dial ? 'DIAL' : 'ACCEPT'} ${l.address ?? '-'} ${l.key} ${l.mode.toUpperCase()}`;
}

export function formatCommand(c: Command): string {
  switch (c.op) {
    case 'hello':
      return c.client === undefined ? 'HELLO' : `HELLO ${c.client}`;
    case 'done':
      return 'DONE';
    case 'configtime':
      return `CONFIGTIME ${c.ms}`;
    case 'vttif':
      return `VTTIF ${c.words.join(' ')}`;
    case 'link-add':
      return `LINK ADD ${formatLinkConfig(c.link)}`;
    case 'link-delete':
      return `LINK DELETE ${c.peer}`;
    case 'rule-add':
      return `RULE ADD ${formatRule(c.rule)}`;
    case 'rule-delete':
      return `RULE DELETE ${formatRule(c.rule)}`;
    default:
      return c.op.toUpperCase();
  }
}

/** A rule line of `RULES?`: the rule, then its counters as key=value words. */
export function parseRuleLine(line: string): { rule: WireRule; counters: Record<string, number> } {
  const words = line.trim().split(/ +/);
  const counters: Record<string, number> = {};
  while (words.length && /^[a-z]+=\d+$/.test(words[words.length - 1]!)) {
    const [k, v] = words.pop()!.split('=');
    counters[k!] = Number(v);
  }
  return { rule: ruleWords(new Words(words)), counters };
}

/** One line of a `LINKS?` listing: the link as configured, then its state and counters. */
export interface LinkStatus {
  link: Omit<LinkConfig, 'key'>;
  state: 'up' | 'connecting' | 'down';
  rttMs: number | undefined;
  counters: Record<string, number>;
  /** A link captured to a file (`vnetd --capture link:PEER=FILE`): frames written, left out, write errors. */
  capture?: { frames: number; dropped: number; errors: number };
}

/** A capture's counters as `LINKS?` and `DEVICES?` end a captured link's or interface's line. */
export const captureWords = (c: { frames: number; dropped: number; errors: number }): string => ` capture-frames=${c.frames} capture-dropped=${c.dropped} capture-errors=${c.errors}`;

/** A `LINKS?` data line, as the daemon lists each link; parseLinkLine reads it back. */
export function formatLinkLine(s: LinkStatus): string {
  const l = s.link;
  const c = (k: string): number => s.counters[k] ?? 0;
  return (
    `${l.peer} ${l.proto.toUpperCase()} ${l.dial ? 'DIAL' : 'ACCEPT'} ${l.address ?? '-'} ${l.mode.toUpperCase()} ${s.state}` +
    ` rtt-ms=${s.rttMs === undefined ? '-' : s.rttMs.toFixed(3)} tx=${c('tx-frames')}/${c('tx-bytes')} rx=${c('rx-frames')}/${c('rx-bytes')}` +
    ` auth-failures=${c('auth-failures')} reconnects=${c('reconnects')} moves=${c('moves')}` +
    ` dropped=${c('dropped')} rejected=${c('rejected')} replayed=${c('replayed')}` +
    (s.capture ? captureWords(s.capture) : '')
  );
}

/** Reads a `LINKS?` data line; the inverse of formatLinkLine. Throws WireError. */
export function parseLinkLine(line: string): LinkStatus {
  const w = new Words(line.trim().split(/ +/));
  const head = linkHeadWords(w);
  const addr = w.next('the peer address');
  const mode = modeWord(w.next('ENCRYPT or AUTH-ONLY'));
  const state = w.next('the link state');
  if (state !== 'up' && state !== 'connecting' && state !== 'down') syntax(`'${clipWord(state)}' is not a link state`);
  let rttMs: number | undefined;
  const counters: Record<string, number> = {};
  for (let word = w.optional(); word !== undefined; word = w.optional()) {
    const m = /^([a-z-]+)=(.*)$/.exec(word);
    if (!m) syntax(`'${clipWord(word)}' is not name=value`);
    const [, k, v] = m!;
    // Checked as the daemon prints them, so no NaN or 1e308 from a daemon gone wrong reaches show, infer or adapt's sums.
    if (k === 'rtt-ms') {
      if (v !== '-' && !/^\d{1,9}(\.\d{1,6})?$/.test(v!)) syntax(`rtt-ms=${clipWord(v!)} is not a round trip in milliseconds`);
      rttMs = v === '-' ? undefined : Number(v);
    } else if (/^\d{1,16}\/\d{1,16}$/.test(v!)) {
      const [frames, bytes] = v!.split('/');
      counters[`${k}-frames`] = Number(frames);
      counters[`${k}-bytes`] = Number(bytes);
    } else if (/^\d{1,16}$/.test(v!)) counters[k!] = Number(v);
    else syntax(`${k}=${clipWord(v!)} is not a count`);
  }
  const captured = counters['capture-frames'];
  const capture = captured === undefined ? undefined : { frames: captured, dropped: counters['capture-dropped'] ?? 0, errors: counters['capture-errors'] ?? 0 };
  for (const k of ['capture-frames', 'capture-dropped', 'capture-errors']) delete counters[k];
  return {
    link: { ...head, address: addr === '-' ? undefined : addr, mode },
    state: state as LinkStatus['state'],
    rttMs,
    counters,
    ...(capture ? { capture } : {}),
  };
}

/** Reads `name value` data lines (INFO?, STATS?, CONFIGTIME?) into a map. */
export function parseFields(data: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of data) {
    const sp = line.indexOf(' ');
    if (sp > 0) out.set(line.slice(0, sp), line.slice(sp + 1));
  }
  return out;
}

// ── replies ─────────────────────────────────────────────────────────────

export type Reply = { ok: true; data: string[]; text: string } | { ok: false; data: string[]; code: string; text: string };

/** How much of a reply a client holds: a reply line's length (every line a daemon sends is under 1 KiB: names are at most 253 bytes and quoted words are cut to 40), and all of one reply's data lines. */
export interface ReplyLimits {
  line: number;
  data: number;
}

export const REPLY_LIMITS: ReplyLimits = { line: MAX_LINE, data: MAX_REPLY_DATA };

/** A peer sent more than ReplyLimits allow; `what` says how much, as in `a reply line longer than 64 KiB`. */
export class OversizedReply extends Error {
  constructor(readonly what: string) {
    super(`the control connection sent ${what}`);
  }
}

const sizeText = (n: number): string => (n % (1 << 20) === 0 ? `${n / (1 << 20)} MiB` : n % 1024 === 0 ? `${n / 1024} KiB` : `${n} bytes`);

/**
 * Splits a stream of reply lines into replies: data lines (`* …`) gather
 * until an `OK …` or `ERR <code> …` line ends the reply. Lengths are counted
 * in characters, which are bytes for the ASCII a daemon sends.
 */
export class ReplyReader {
  private data: string[] = [];
  private held = 0;

  constructor(private readonly limits: ReplyLimits = REPLY_LIMITS) {}

  /** Throws OversizedReply when `length` characters without a newline are already more than a line may be. */
  partial(length: number): void {
    if (length > this.limits.line) throw new OversizedReply(`a reply line longer than ${sizeText(this.limits.line)}`);
  }

  /** Feeds one line; returns a reply when this line completes one. */
  line(line: string): Reply | undefined {
    this.partial(line.length);
    if (line.startsWith('* ')) {
      this.held += line.length + LINE_COST;
      if (this.held > this.limits.data) throw new OversizedReply(`a reply longer than ${sizeText(this.limits.data)}`);
      this.data.push(line.slice(2));
      return undefined;
    }
    const data = this.data;
    this.data = [];
    this.held = 0;
    if (line === 'OK' || line.startsWith('OK ')) return { ok: true, data, text: line.slice(3) };
    const m = /^ERR (E_[A-Z]+) ?(.*)$/.exec(line);
    if (m) return { ok: false, data, code: m[1]!, text: m[2]! };
    throw new Error(`not a control protocol reply line: ${JSON.stringify(line.slice(0, 80))}`);
  }
}
