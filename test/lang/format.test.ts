import fc from 'fast-check';
import { SourceFile } from '../../src/diag/source.js';
import type { AddressNode, HostDecl, Program } from '../../src/lang/ast.js';
import { parseSource } from '../../src/lang/compile.js';
import { format } from '../../src/lang/format.js';
import type { Address } from '../../src/model/state.js';

function fmt(text: string): string {
  const p = parseSource(new SourceFile('t.vnet', text));
  if (!p.syntaxOk || !p.program) throw new Error(`does not parse:\n${text}\n${p.diagnostics.map((d) => d.message).join('\n')}`);
  return format(p.file, p.program, p.comments);
}

function parsed(text: string): Program {
  const p = parseSource(new SourceFile('t.vnet', text));
  expect(p.syntaxOk).toBe(true);
  return p.program!;
}

/** The tree without positions: what must survive formatting. */
function strip(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(strip);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === 'head' || ((k === 'start' || k === 'end') && typeof v === 'number')) continue;
      out[k] = strip(v);
    }
    return out;
  }
  return value;
}

// ── generated programs ──────────────────────────────────────────────────

const name = fc.constantFrom('proxy', 'host1', 'h-2', 'node.example.org', '10.0.0.7', 'x_y', 'hostadd', 'any1', '42', 'a');
const iface = fc.constantFrom('eth0', 'vmnet1', 'veth-h1', 'tap0', 'br0.100');
const hex2 = fc.integer({ min: 0, max: 255 }).map((n) => n.toString(16).padStart(2, '0'));
const mac = fc.array(hex2, { minLength: 6, maxLength: 6 }).map((o) => o.join(':'));
const address = (source: boolean): fc.Arbitrary<Address> =>
  fc.oneof(
    mac.map((m): Address => ({ q: 'exact', mac: m })),
    mac.map((m): Address => ({ q: 'not', mac: m })),
    fc.constant<Address>({ q: 'any' }),
    ...(source ? [] : [fc.constant<Address>({ q: 'none' })]),
  );

type HostM = Pick<HostDecl, 'kind'> & { user: string; machine: string; port: string; iface: string };
type Stmt =
  | { kind: 'link'; proto: 'tcp' | 'udp' | null; a: string; b: string; dialer: string | null }
  | { kind: 'forward'; ruleType: 'edge' | 'interface' | null; machine: string; src: Address; dst: Address; dest: { kind: 'edge'; from: string; to: string } | { kind: 'interface'; iface: string } };
interface Model {
  hosts: HostM[];
  blocks: { action: 'add' | 'delete'; statements: Stmt[] }[];
}

const hostM = fc.record({
  kind: fc.constant('host' as const),
  user: fc.constantFrom('vnet', 'pdinda', 'u1000', 'a.b'),
  machine: name,
  port: fc.constantFrom('1', '5000', '65535', '99999', '05000'),
  iface,
});
const linkM = fc.record({
  kind: fc.constant('link' as const),
  proto: fc.constantFrom<'tcp' | 'udp' | null>('tcp', 'udp', null),
  a: name,
  b: name,
  dialer: fc.option(name, { nil: null }),
});
const forwardM = fc.record({
  kind: fc.constant('forward' as const),
  ruleType: fc.constantFrom<'edge' | 'interface' | null>('edge', 'interface', null),
  machine: name,
  src: address(true),
  dst: address(false),
  dest: fc.oneof(
    fc.record({ kind: fc.constant('edge' as const), from: name, to: name }),
    fc.record({ kind: fc.constant('interface' as const), iface }),
  ),
});
const model: fc.Arbitrary<Model> = fc.record({
  hosts: fc.array(hostM, { maxLength: 4 }),
  blocks: fc.array(
    fc.record({ action: fc.constantFrom<'add' | 'delete'>('add', 'delete'), statements: fc.array(fc.oneof(linkM, forwardM), { maxLength: 6 }) }),
    { maxLength: 4 },
  ),
});

/** The tree a model must parse to (positions aside). */
function expectedTree(m: Model): unknown {
  const id = (text: string) => ({ text });
  const addr = (a: Address): Omit<AddressNode, 'start' | 'end'> => ({ addr: a });
  return {
    begin: {},
    end: {},
    hosts: m.hosts.map((h) => ({ kind: 'host', user: id(h.user), machine: id(h.machine), port: { text: h.port, value: Number(h.port) }, iface: id(h.iface) })),
    blocks: m.blocks.map((b) => ({
      kind: 'block',
      action: b.action,
      statements: b.statements.map((s): unknown =>
        s.kind === 'link'
          ? { kind: 'link', proto: s.proto, a: id(s.a), b: id(s.b), dialer: s.dialer === null ? null : id(s.dialer) }
          : {
              kind: 'forward',
              ruleType: s.ruleType,
              machine: id(s.machine),
              src: addr(s.src),
              dst: addr(s.dst),
              dest: s.dest.kind === 'edge' ? { kind: 'edge', from: id(s.dest.from), to: id(s.dest.to) } : { kind: 'interface', iface: id(s.dest.iface) },
            },
      ),
    })),
  };
}

/** Choices for writing a model messily: spellings, spacing, comments. */
interface Style {
  upper: boolean[];
  gaps: string[];
  macForm: number[];
  anyFiller: boolean[];
  comments: (string | null)[];
  /** How a comment's line ends. */
  eol: string[];
}
const style: fc.Arbitrary<Style> = fc.record({
  upper: fc.array(fc.boolean(), { minLength: 1, maxLength: 30 }),
  gaps: fc.array(fc.constantFrom(' ', '  ', '\t', '\n', '\n\n', '\n\n\n', ' \n  ', '\r\n', '\r', '\r\r'), { minLength: 1, maxLength: 30 }),
  macForm: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 30 }),
  anyFiller: fc.array(fc.boolean(), { minLength: 1, maxLength: 30 }),
  comments: fc.array(fc.option(fc.stringMatching(/^[^\n\r]{0,12}$/), { nil: null, freq: 3 }), { minLength: 1, maxLength: 30 }),
  eol: fc.array(fc.constantFrom('\n', '\r\n', '\r'), { minLength: 1, maxLength: 5 }),
});

/** Writes a model: canonically, or messily according to a style (same meaning either way). */
function write(m: Model, s?: Style): { text: string; comments: string[] } {
  let i = 0;
  const pick = <T>(arr: T[]): T => arr[i++ % arr.length]!;
  const kw = (k: string): string => (s && !pick(s.upper) ? k.toLowerCase() : k);
  const writeMac = (x: string): string => {
    if (!s) return x;
    switch (pick(s.macForm)) {
      case 1:
        return x.toUpperCase();
      case 2:
        return x.replace(/:/g, '-');
      case 3:
        return x.split(':').map((o) => o.replace(/^0(.)/, '$1')).join(':');
      default:
        return x;
    }
  };
  const writeAddr = (a: Address, source: boolean): string[] => {
    if (a.q === 'exact') return [writeMac(a.mac)];
    if (a.q === 'not') return [kw('NOT'), writeMac(a.mac)];
    if (a.q === 'none') return [kw('NONE')];
    // The seed grammar's ANY <mac>; in the source slot only when an address follows (always so here).
    return s && pick(s.anyFiller) && source !== undefined ? [kw('ANY'), writeMac('00:11:22:33:44:55')] : [kw('ANY')];
  };
  const lines: string[][] = [[kw('BEGIN')]];
  for (const h of m.hosts) lines.push([kw('HOST'), h.user, kw('AT'), h.machine, h.port, h.iface]);
  for (const b of m.blocks) {
    lines.push([kw(b.action.toUpperCase())]);
    for (const st of b.statements) {
      if (st.kind === 'link') {
        lines.push([kw('LINK'), ...(st.proto ? [kw(st.proto.toUpperCase())] : []), st.a, st.b, ...(st.dialer ? [st.dialer] : [])]);
      } else {
        const dest = st.dest.kind === 'edge' ? [st.dest.from, st.dest.to] : [st.dest.iface];
        lines.push([kw('FORWARD'), ...(st.ruleType ? [kw(st.ruleType.toUpperCase())] : []), st.machine, ...writeAddr(st.src, true), ...writeAddr(st.dst, false), ...dest]);
      }
    }
  }
  lines.push([kw('END')]);
  if (!s) {
    const depth = (line: string[]): number => (['BEGIN', 'END'].includes(line[0]!) ? 0 : ['HOST', 'ADD', 'DELETE'].includes(line[0]!) ? 1 : 2);
    return { text: lines.map((l) => '  '.repeat(depth(l)) + l.join(' ')).join('\n') + '\n', comments: [] };
  }
  const comments: string[] = [];
  let text = '';
  for (const line of lines) {
    for (const word of line) {
      text += word + pick(s.gaps);
      const c = pick(s.comments);
      if (c !== null) {
        const comment = `#${c}`.trimEnd();
        comments.push(comment);
        text += comment + pick(s.eol);
      }
    }
  }
  return { text, comments };
}

const commentsIn = (text: string): string[] => (text.match(/#[^\n]*/g) ?? []).map((c) => c.trimEnd());

describe('fmt', () => {
  it('round-trips: printing a tree and parsing it back gives the same tree', () => {
    fc.assert(
      fc.property(model, (m) => {
        const { text } = write(m);
        expect(strip(parsed(text))).toEqual(expectedTree(m));
        expect(fmt(text)).toBe(text); // the canonical writer above and the formatter agree
      }),
      { numRuns: 500 },
    );
  });

  it('keeps the meaning and every comment of messy text, and is idempotent', () => {
    fc.assert(
      fc.property(model, style, (m, s) => {
        const { text, comments } = write(m, s);
        const once = fmt(text);
        expect(strip(parsed(once))).toEqual(strip(parsed(text)));
        expect(strip(parsed(once))).toEqual(expectedTree(m));
        expect(fmt(once)).toBe(once);
        expect(commentsIn(once)).toEqual(comments);
        expect(once).not.toMatch(/[ \t]$/m);
        expect(once).not.toMatch(/\n\n\n/);
        // Blank lines are kept, never made.
        if (!/(?:\r\n|\r(?!\n)|\n)[ \t]*(?:\r\n|\r(?!\n)|\n)/.test(text)) expect(once).not.toMatch(/\n\n/);
        expect(once.endsWith('\n') && !once.endsWith('\n\n')).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('places comments: trailing stays, mid-statement moves above, block-closing stays in the block', () => {
    const text = ['# head', '', '', 'begin # b', 'HOST u AT m 1 e', 'add', '  link m', '  # inside', '   n # t', '# closes', 'END', '# after', ''].join('\n');
    expect(fmt(text)).toBe(
      ['# head', '', 'BEGIN # b', '  HOST u AT m 1 e', '  ADD', '    # inside', '    LINK m n # t', '    # closes', 'END', '# after', ''].join('\n'),
    );
  });

  it('a comment after several statements on one line stays with the last of them, the one it follows', () => {
    const text = ['BEGIN', 'HOST u AT p 1 e  HOST u AT h 1 e # about h', 'ADD LINK h p  FORWARD h any any h p # the route', 'END', ''].join('\n');
    expect(fmt(text)).toBe(['BEGIN', '  HOST u AT p 1 e', '  HOST u AT h 1 e # about h', '  ADD', '    LINK h p', '    FORWARD h ANY ANY h p # the route', 'END', ''].join('\n'));
  });

  it('canonicalises spelling but keeps the grammar generation the user chose', () => {
    expect(fmt('BEGIN HOST u AT m 1 e add link m n forward m any 00:11:22:33:44:55 0:A:B:C:D:E n m END')).toBe(
      ['BEGIN', '  HOST u AT m 1 e', '  ADD', '    LINK m n', '    FORWARD m ANY 00:0a:0b:0c:0d:0e n m', 'END', ''].join('\n'),
    );
    expect(fmt('BEGIN ADD LINK udp m n n FORWARD interface m ANY NONE e END')).toBe(
      ['BEGIN', '  ADD', '    LINK UDP m n n', '    FORWARD INTERFACE m ANY NONE e', 'END', ''].join('\n'),
    );
  });

  it('formats every sample to itself', async () => {
    const fs = await import('node:fs');
    const dir = new URL('../../samples/', import.meta.url);
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.vnet'))) {
      const text = fs.readFileSync(new URL(f, dir), 'utf8');
      expect(fmt(text)).toBe(text);
    }
  });
});
