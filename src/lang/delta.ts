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
export function damagedDeltaHeader(text: string): { start: number; end: number } | undefined {
  if (!LOOKS_LIKE_HEADER.test(text) || HEADER.test(text)) return undefined;
  const eol = text.search(/\r?\n/);
  return { start: 0, end: eol < 0 ? text.length : eol };
}

/** The fingerprint a plan file was computed against, or undefined if the text is not a plan. */
export function deltaBase(text: string): string | undefined {
  return HEADER.exec(text)?.[1];
}

/**
 * A saved plan's second line, when it deletes links of the Proxy star and
 * was made with --allow-backbone-delete: the consent travels with the plan,
 * as terraform applies a saved plan without the flags it was made with.
 * It names the links (by the plan's JSON addresses, `link.a~b`), so a
 * backbone deletion added to the file by hand still needs the flag.
 */
const BACKBONE_PREFIX = '# vnetc plan: made with --allow-backbone-delete, for ';
const BACKBONE = /^# vnetc plan: made with --allow-backbone-delete, for (link\.[\w.-]+~[\w.-]+(?: link\.[\w.-]+~[\w.-]+)*)[ \t]*$/;

/** The consent line for deleting these backbone links, each given by its two ends. */
export function backboneConsentLine(links: readonly { a: string; b: string }[]): string {
  return BACKBONE_PREFIX + links.map((l) => `link.${linkKey(l.a, l.b).replace(' ', '~')}`).join(' ');
}

/**
 * The backbone links a saved plan was allowed to delete when it was made,
 * as link keys; empty for anything but a saved plan whose second line says so.
 */
export function backboneConsent(text: string): Set<string> {
  if (deltaBase(text) === undefined) return new Set();
  const from = text.indexOf('\n') + 1;
  const to = text.indexOf('\n', from);
  const m = BACKBONE.exec(text.slice(from, to < 0 ? text.length : to).replace(/\r$/, ''));
  if (!m) return new Set();
  return new Set(m[1]!.split(' ').map((address) => address.slice('link.'.length).replace('~', ' ')));
}
