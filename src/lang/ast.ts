import type { Span } from '../diag/diagnostic.js';
import type { Address, Proto } from '../model/state.js';

/**
 * The syntax tree keeps what a person wrote, canonicalised where the
 * language says two spellings mean the same (keyword case, MAC spelling,
 * `ANY <mac>` = `ANY`), plus spans for diagnostics and the formatter. So
 * parse(print(ast)) equals ast up to spans.
 *
 * Every node is itself a Span (`start`/`end`), rather than holding one: a
 * million-rule program is millions of nodes, and each object costs.
 */

export interface Ident extends Span {
  text: string;
}

export interface PortLit extends Span {
  /** As written; kept so an out-of-range port prints back unchanged. */
  text: string;
  value: number;
}

export interface AddressNode extends Span {
  /** A malformed MAC keeps its text here; the scanner has already reported it. */
  addr: Address;
}

export interface HostDecl extends Span {
  kind: 'host';
  user: Ident;
  machine: Ident;
  port: PortLit;
  iface: Ident;
}

export interface LinkStmt extends Span {
  kind: 'link';
  /** null when written in the Fig. 4 form without a type (which means TCP). */
  proto: Proto | null;
  a: Ident;
  b: Ident;
  /** null when no dialer is written (the first end dials). */
  dialer: Ident | null;
}

export interface EdgeDest extends Span {
  kind: 'edge';
  from: Ident;
  to: Ident;
}

export interface InterfaceDest extends Span {
  kind: 'interface';
  iface: Ident;
}

export interface ForwardStmt extends Span {
  kind: 'forward';
  /** The Fig. 5 EDGE/INTERFACE keyword, or null in the Fig. 4 form. */
  ruleType: 'edge' | 'interface' | null;
  machine: Ident;
  src: AddressNode;
  dst: AddressNode;
  dest: EdgeDest | InterfaceDest;
}

export type BlockStmt = LinkStmt | ForwardStmt;

/** ADD or DELETE: opens a block that runs to the next ADD, DELETE or END. */
export interface BlockHead extends Span {
  kind: 'block';
  action: 'add' | 'delete';
}

/** What the parser hands on, one at a time and in order. */
export type Statement = HostDecl | BlockHead | BlockStmt;

export interface Block extends BlockHead {
  /** The ADD/DELETE keyword alone (the block's own span runs to its last statement). */
  head: Span;
  statements: BlockStmt[];
}

export interface Program {
  begin: Span;
  hosts: HostDecl[];
  blocks: Block[];
  end: Span;
}
