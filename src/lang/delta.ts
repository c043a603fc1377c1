import type { Span } from '../diag/diagnostic.js';
import { linkKey } from '../model/state.js';

/**
 * A saved plan is a .vnet program of changes rather than of a whole
 * network: its DELETE statements refer to the live state it was computed
 * against. Its first line says so, and names that state by fingerprint.
 */
const HEADER = /^# vnetc plan: changes to live state (sha256:[0-9a-f]{64})[ \t]*(?:\r?\n|$)/;

export const DELTA_HEADER_PREFIX = '# vnetc plan: changes to live state ';

export function deltaHeader(fingerprint: string): string {
  return DELTA_HEADER_PREFIX + fingerprint;
}

/**
 * How a saved plan's first line starts, however damaged the rest: a file
 * that starts so and does not match HEADER is a damaged plan, never a whole
 * network (read as one, its few statements would plan to delete the rest).
 */
const LOOKS_LIKE_HEADER = /^# vnetc plan:/;

/** The first line of a file that starts as a saved plan does but whose header is not one (hash damaged or gone); undefined otherwise. */
export function damagedDeltaHeader(text: string): Span | undefined {
  if (!LOOKS_LIKE_HEADER.test(text) || HEADER.test(text)) return undefined;
  const eol = text.search(/\r?\n/);
  return { start: 0, end: eol < 0 ? text.length : eol };
}

/** The fingerprint a plan file was computed against, or undefined if the text is not a plan. */
export function deltaBase(text: string): string | undefined {
  return HEADER.exec(text)?.[1];
}

/**
 * The lines right under a saved plan's header that record how it was made,
 * each starting `# vnetc plan: `; read as comments by anything else.
 */
const NOTE_PREFIX = '# vnetc plan: ';

interface Note {
  text: string;
  /** Where the line starts in the file. */
  start: number;
}

function planNotes(text: string): Note[] {
  if (deltaBase(text) === undefined) return [];
  const notes: Note[] = [];
  let start = text.indexOf('\n') + 1;
  while (start > 0 && text.startsWith(NOTE_PREFIX, start)) {
    const eol = text.indexOf('\n', start);
    const end = eol < 0 ? text.length : eol;
    notes.push({ text: text.slice(start, end).replace(/[ \t\r]+$/, ''), start });
    start = end + 1;
  }
  return notes;
}

/**
 * The Proxy the plan was made for, whether `--proxy` named it or it was
 * found: which links are the backbone depends on it, and the first HOST of
 * the saved plan need not be the first of the file it was made from.
 */
const PROXY_PREFIX = `${NOTE_PREFIX}made for the Proxy `;
const PROXY = /^# vnetc plan: made for the Proxy ([\w.-]+)$/;

export function proxyLine(proxy: string): string {
  return PROXY_PREFIX + proxy;
}

/** The Proxy a saved plan records, if it does, and where its name is. */
export function savedProxy(text: string): { name: string; span: Span } | undefined {
  for (const note of planNotes(text)) {
    const m = PROXY.exec(note.text);
    if (m) return { name: m[1]!, span: { start: note.start + PROXY_PREFIX.length, end: note.start + note.text.length } };
  }
  return undefined;
}

/**
 * When a saved plan deletes links of the Proxy star and was made with
 * --allow-backbone-delete: the consent travels with the plan, as terraform
 * applies a saved plan without the flags it was made with. It names the
 * links (by the plan's JSON addresses, `link.a~b`), so a backbone deletion
 * added to the file by hand still needs the flag.
 */
const BACKBONE_PREFIX = `${NOTE_PREFIX}made with --allow-backbone-delete, for `;
const BACKBONE = /^# vnetc plan: made with --allow-backbone-delete, for (link\.[\w.-]+~[\w.-]+(?: link\.[\w.-]+~[\w.-]+)*)$/;

/** The consent line for deleting these backbone links, each given by its two ends. */
export function backboneConsentLine(links: readonly { a: string; b: string }[]): string {
  return BACKBONE_PREFIX + links.map((l) => `link.${linkKey(l.a, l.b).replace(' ', '~')}`).join(' ');
}

/**
 * The backbone links a saved plan was allowed to delete when it was made,
 * as link keys; empty for anything but a saved plan that says so.
 */
export function backboneConsent(text: string): Set<string> {
  for (const note of planNotes(text)) {
    const m = BACKBONE.exec(note.text);
    if (m) return new Set(m[1]!.split(' ').map((address) => address.slice('link.'.length).replace('~', ' ')));
  }
  return new Set();
}
