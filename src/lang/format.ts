import type { Span } from '../diag/diagnostic.js';
import type { SourceFile } from '../diag/source.js';
import type { BlockStmt, ForwardStmt, HostDecl, LinkStmt, Program } from './ast.js';
import { printAddress } from './print.js';

/**
 * The canonical form of a program (LANGUAGE.md, "Formatting"): printed from
 * the tree, so spelling is canonical, with comments and single blank lines
 * carried over from the source by position.
 */

const INDENT = '  ';

function printHost(h: HostDecl): string {
  return `HOST ${h.user.text} AT ${h.machine.text} ${h.port.text} ${h.iface.text}`;
}

function printLink(l: LinkStmt): string {
  const proto = l.proto ? ` ${l.proto.toUpperCase()}` : '';
  const dialer = l.dialer ? ` ${l.dialer.text}` : '';
  return `LINK${proto} ${l.a.text} ${l.b.text}${dialer}`;
}

function printForward(f: ForwardStmt): string {
  const type = f.ruleType ? ` ${f.ruleType.toUpperCase()}` : '';
  const dest = f.dest.kind === 'edge' ? `${f.dest.from.text} ${f.dest.to.text}` : f.dest.iface.text;
  return `FORWARD${type} ${f.machine.text} ${printAddress(f.src.addr)} ${printAddress(f.dst.addr)} ${dest}`;
}

export function printStatement(s: HostDecl | BlockStmt): string {
  return s.kind === 'host' ? printHost(s) : s.kind === 'link' ? printLink(s) : printForward(s);
}

/** One printed line of the program, with the source span it came from. */
interface Item extends Span {
  depth: number;
  text: string;
}

function items(program: Program): Item[] {
  const out: Item[] = [{ ...program.begin, depth: 0, text: 'BEGIN' }];
  for (const h of program.hosts) out.push({ start: h.start, end: h.end, depth: 1, text: printHost(h) });
  for (const b of program.blocks) {
    out.push({ ...b.head, depth: 1, text: b.action === 'add' ? 'ADD' : 'DELETE' });
    for (const s of b.statements) out.push({ start: s.start, end: s.end, depth: 2, text: printStatement(s) });
  }
  out.push({ ...program.end, depth: 0, text: 'END' });
  return out;
}

/**
 * Formats a program that parsed without errors. `comments` are the comment
 * spans the scanner found, in order.
 */
export function format(file: SourceFile, program: Program, comments: readonly Span[]): string {
  const lineOf = (offset: number): number => file.position(offset).line;
  const commentText = (c: Span): string => file.text.slice(c.start, c.end).trimEnd();
  const out: string[] = [];
  let lastLine = 0; // last source line emitted; 0 = nothing yet

  const emit = (depth: number, text: string, firstLine: number, endLine: number): void => {
    // One blank line where the source had one or more.
    if (lastLine > 0 && firstLine - lastLine > 1) out.push('');
    out.push(INDENT.repeat(depth) + text);
    lastLine = endLine;
  };

  const list = items(program);
  let c = 0;
  for (let i = 0; i < list.length; i++) {
    const item = list[i]!;
    // A comment that closes a block, just before END, stays with the block.
    const commentDepth = item.text === 'END' && i > 0 ? list[i - 1]!.depth : item.depth;
    // Comments before this item's end come first: those between items, and
    // those inside a statement written over several lines.
    while (c < comments.length && comments[c]!.start < item.end) {
      const at = comments[c]!.start;
      const line = lineOf(at);
      // A comment inside the statement follows the statement's first line, not a blank one.
      emit(commentDepth, commentText(comments[c]!), at > item.start ? Math.min(line, lineOf(item.start)) : line, line);
      c++;
    }
    const endLine = lineOf(item.end - 1);
    let text = item.text;
    // A comment on the item's last line stays at its end, unless another item follows on that line before it: the comment is that one's.
    const next = list[i + 1];
    if (c < comments.length && lineOf(comments[c]!.start) === endLine && !(next && next.start < comments[c]!.start)) {
      text += ' ' + commentText(comments[c]!);
      c++;
    }
    emit(item.depth, text, lineOf(item.start), endLine);
  }
  for (; c < comments.length; c++) {
    const line = lineOf(comments[c]!.start);
    emit(0, commentText(comments[c]!), line, line);
  }
  return out.join('\n') + '\n';
}
