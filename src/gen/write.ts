/**
 * Writing generated .vnet text in the canonical layout `vnetc fmt` prints
 * (LANGUAGE.md, "Formatting"): comments wrapped at 72 columns, block
 * statements at four spaces, one blank line between groups.
 */

const WIDTH = 72;

/** `text` as `# ` comment lines of at most WIDTH characters (after `indent`). */
export function commentLines(text: string, indent = ''): string[] {
  const lines: string[] = [];
  let line = '#';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line.length > 1 && indent.length + line.length + 1 + word.length > WIDTH) {
      lines.push(indent + line);
      line = '#';
    }
    line += ' ' + word;
  }
  return [...lines, indent + line];
}

/** A run of statements with an optional comment above it. */
export interface Group {
  comment?: string;
  statements: string[];
}

/** An ADD or DELETE block: its head at two spaces, groups at four, separated by blank lines. */
export function blockText(action: 'ADD' | 'DELETE', groups: readonly Group[]): string[] {
  const out = ['', `  ${action}`];
  let first = true;
  for (const g of groups) {
    // A comment about statements there are none of (the star of a network without hosts) would describe nothing.
    if (g.statements.length === 0) continue;
    if (!first) out.push('');
    first = false;
    if (g.comment !== undefined) out.push(...commentLines(g.comment, '    '));
    out.push(...g.statements.map((s) => `    ${s}`));
  }
  return out;
}
