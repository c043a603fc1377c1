/**
 * Every diagnostic vnetc can report, in one table: a stable code, a severity,
 * the message template and an optional hint template. `{0}`, `{1}` … are
 * filled from arguments. Codes never change meaning once released; the docs
 * list each one and a test keeps them in step.
 *
 * VN1xxx input and lexical, VN2xxx syntax, VN3xxx meaning (LANGUAGE.md);
 * VN4xxx plans (PLAN.md); VN5xxx reaching daemons (APPLY.md).
 */
export type Severity = 'error' | 'warning';

export interface MessageDef {
  readonly code: string;
  readonly severity: Severity;
  readonly text: string;
  readonly hint?: string;
}

function def(code: string, severity: Severity, text: string, hint?: string): MessageDef {
  return hint === undefined ? { code, severity, text } : { code, severity, text, hint };
}

export const Msg = {
  // ── input and lexical ────────────────────────────────────────────────
  CannotRead: def('VN1000', 'error', 'cannot read {0}: {1}'),
  UnexpectedCharacter: def(
    'VN1001',
    'error',
    'unexpected character {0}',
    'names, numbers and MAC addresses use printable ASCII; `#` starts a comment',
  ),
  BinaryFile: def(
    'VN1002',
    'error',
    'this looks like a binary file, not a .vnet program (NUL byte at offset {0})',
    'pass the .vnet text file itself',
  ),
  InvalidUtf8: def(
    'VN1003',
    'error',
    'the file is not valid UTF-8 (bad byte 0x{0} at offset {1})',
    're-save the file as UTF-8',
  ),
  EmptyFile: def(
    'VN1004',
    'error',
    'the file is empty',
    'a program is `BEGIN`, then HOST lines, then ADD/DELETE blocks, then `END`',
  ),
  FileTooLarge: def(
    'VN1005',
    'error',
    'the file is {0} bytes; vnetc reads programs of at most {1} bytes',
    'split the network into several files',
  ),
  TooManyErrors: def(
    'VN1006',
    'error',
    'too many errors: {0}',
    'fix the errors above and run again',
  ),
  MalformedMac: def(
    'VN1007',
    'error',
    "malformed MAC address '{0}': {1}",
    'write six hexadecimal octets separated by colons, such as 00:50:56:00:21:01',
  ),

  // ── syntax ────────────────────────────────────────────────────────────
  Expected: def('VN2001', 'error', 'expected {0}, found {1}'),
  UnexpectedAfterEnd: def(
    'VN2002',
    'error',
    'unexpected {0} after END',
    'a file holds one program; everything after END must be a comment',
  ),
  MissingEnd: def('VN2003', 'error', 'the program ends without END', 'add `END` after the last block'),
  HostAfterBlock: def(
    'VN2004',
    'error',
    'HOST declarations must come before the first ADD or DELETE block',
    'move this HOST line up, next to the other HOST lines',
  ),
  StatementOutsideBlock: def(
    'VN2005',
    'error',
    '{0} must be inside an ADD or DELETE block',
    'start a block with `ADD` (or `DELETE`) before it',
  ),
  Incomplete: def('VN2008', 'error', "expected {0} after '{1}'", 'the statement ends here; complete it or remove it'),
  QualifiedNone: def('VN2007', 'error', 'NONE cannot be qualified with {0}', 'write NONE alone'),
  KeywordAsName: def(
    'VN2006',
    'error',
    "expected {0}, found the keyword '{1}'",
    'keywords are reserved; choose another name',
  ),

  // ── meaning ───────────────────────────────────────────────────────────
  // Its hint is a "did you mean" or how to declare the machine, chosen where it is reported.
  UndeclaredMachine: def('VN3001', 'error', "machine '{0}' is not declared by a HOST line"),
  DuplicateHost: def('VN3002', 'error', "machine '{0}' is declared twice", 'each machine runs one daemon and has one HOST line'),
  PortOutOfRange: def('VN3003', 'error', "port '{0}' is outside 1..65535"),
  NoneAsSource: def(
    'VN3004',
    'error',
    'NONE can only be a destination address',
    'NONE makes a default rule; for "any source" write ANY',
  ),
  FirstHopNotOwnMachine: def(
    'VN3005',
    'error',
    "a rule on '{0}' must send over one of its own links, but this hop starts at '{1}'",
    "write the hop as '{0} <next machine>'",
  ),
  LinkMissingForRule: def(
    'VN3006',
    'error',
    "rule sends over link {0}–{1}, which does not exist{2}",
    'add `LINK {0} {1}` in an ADD block, or send over an existing link',
  ),
  SelfLink: def('VN3007', 'error', "a link from '{0}' to itself", 'a link joins two different machines'),
  DuplicateLink: def(
    'VN3008',
    'error',
    'link {0}–{1} already exists',
    'a pair of machines has at most one link; DELETE it first to change it',
  ),
  DuplicateRule: def('VN3009', 'error', "this rule already exists on '{0}'"),
  InterfaceNotDeclared: def(
    'VN3010',
    'warning',
    "'{0}' is not the interface declared for '{1}' ('{2}')",
    "the daemon on '{1}' must be started with an interface named '{0}'",
  ),
  DeleteMissingLink: def('VN3011', 'error', 'cannot delete link {0}–{1}: it does not exist at this point'),
  DeleteMissingRule: def('VN3012', 'error', "cannot delete this rule: '{0}' has no such rule at this point"),
  DialerNotEndpoint: def(
    'VN3013',
    'error',
    "the dialing machine '{0}' is not an end of link {1}–{2}",
    'the third machine of a LINK names which end opens the connection',
  ),
  // Its hint depends on which way round the mismatch is, and is chosen where it is reported.
  RuleTypeMismatch: def('VN3014', 'error', '{0} rule has {1}'),
  InvalidMachineName: def(
    'VN3015',
    'error',
    "invalid machine name '{0}'",
    'machine names are host names or SSH aliases: letters, digits, `.`, `_` and `-`, starting with a letter or digit, and at most 253 characters',
  ),
  InvalidUserName: def(
    'VN3016',
    'error',
    "invalid user name '{0}'",
    'user names use letters, digits, `.`, `_` and `-`, do not start with `-`, and are at most 32 characters',
  ),
  InvalidInterfaceName: def(
    'VN3017',
    'error',
    "invalid interface name '{0}'",
    'interface names use letters, digits, `.`, `_` and `-`, start with a letter or digit, and are at most 15 characters',
  ),
  LinkChangedOnDelete: def(
    'VN3018',
    'error',
    'link {0}–{1} is {2}, not {3}',
    'write the link as it was added, or leave out what you do not mean to match',
  ),
  GroupSource: def(
    'VN3019',
    'warning',
    'source address {0} is a group (multicast) address; no frame is sent from it',
    'a source is the MAC of the sending machine; did you swap source and destination?',
  ),

  // ── plans (PLAN.md) ──────────────────────────────────────────────────
  BackboneDelete: def(
    'VN4001',
    'error',
    "the plan deletes {0} of the Proxy '{1}': {2}",
    'the star of links to the Proxy keeps every host reachable; keep them in the file, or pass --allow-backbone-delete if you mean it',
  ),
  StalePlan: def(
    'VN4002',
    'error',
    'this saved plan was computed against live state {0}, but the live state is now {1}',
    'the daemons changed since the plan was made; run vnetc plan again and review the new plan',
  ),
  UnknownProxy: def('VN4003', 'error', "{0} names '{1}', which the file does not declare", 'name a machine from a HOST line'),
  PlanAsLiveState: def(
    'VN4004',
    'error',
    'this is a saved plan (a program of changes), not a description of live state',
    'pass the state the daemons hold, such as the file you applied before',
  ),
  PlanProxyDisagrees: def(
    'VN4006',
    'error',
    "this saved plan was made for the Proxy '{0}', but --proxy names '{1}'",
    "drop --proxy to use the plan as it was reviewed, or plan again from the whole file with --proxy {1}",
  ),
  DamagedPlanHeader: def(
    'VN4005',
    'error',
    'this file starts as a saved plan does, but its first line is damaged, so it is neither a plan nor a whole network',
    "a saved plan's first line is '# vnetc plan: changes to live state sha256:' followed by 64 hexadecimal digits; restore it, or save the plan again with vnetc plan --out",
  ),

  // ── reaching daemons (APPLY.md) ──────────────────────────────────────
  Unreachable: def('VN5001', 'error', 'cannot reach {0}: {1}', 'check that the machine is up and reachable over SSH, then run the command again'),
  DamagedLaunch: def('VN5002', 'warning', 'the record of the local daemon {0} is damaged, so it is left out: {1}', 'remove its directory if its daemon no longer runs'),
  ReplyBroke: def('VN5003', 'error', 'the connection to the daemon of {0} broke {1}', 'run the command again; vnetc plan shows what the daemon holds now'),
} as const satisfies Record<string, MessageDef>;

export type MessageKey = keyof typeof Msg;

/** The most of a user's word a message quotes: a megabyte-long "name" stays out of the terminal. */
const MAX_QUOTED = 60;

export function clip(text: string): string {
  return text.length > MAX_QUOTED ? text.slice(0, MAX_QUOTED - 1) + '…' : text;
}

/** A message argument vnetc wrote itself (a transport's explanation), shown whole. */
export class Verbatim {
  constructor(readonly text: string) {}
}

export type MessageArg = string | number | Verbatim;

export function format(template: string, args: readonly MessageArg[]): string {
  return template.replace(/\{(\d)\}/g, (_, i: string) => {
    const a = args[Number(i)];
    return a instanceof Verbatim ? a.text : clip(String(a ?? ''));
  });
}
